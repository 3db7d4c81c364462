//! Who the AWS caller is, and which Google principals Workload Identity Federation maps it
//! to: the provider's attribute mapping evaluated locally (Google's default AWS mapping when
//! none is given).

use std::collections::BTreeMap;

use super::attribute_mapping::{AttributeMapping, AwsAssertion, MappedAttributes};
use super::config::ExternalAccountConfig;
use super::credentials::Credentials;
use crate::error::{Error, Result, Step};

/// The caller as AWS and Google see it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Whoami {
    /// AWS caller ARN, e.g. `arn:aws:sts::123456789012:assumed-role/ROLE/SESSION`.
    pub aws_arn: String,
    /// `attribute.aws_role` under the mapping, if it maps one.
    pub aws_role: Option<String>,
    /// `principal://.../subject/<google.subject>`.
    pub google_subject: String,
    /// `principalSet://.../attribute.aws_role/<aws_role>`, the usual IAM binding target.
    pub google_principal_set: Option<String>,
    /// Every mapped attribute except `google.subject` (`attribute.aws_role`, …).
    pub attributes: BTreeMap<String, String>,
    /// Whether Google's default AWS mapping was assumed (no mapping given).
    pub default_mapping: bool,
    /// The impersonated service account, if any.
    pub service_account: Option<String>,
}

impl Whoami {
    /// The principals of `arn` under `mapping` (default: Google's AWS default) for `config`.
    pub fn compute(
        arn: &str,
        config: &ExternalAccountConfig,
        mapping: Option<&AttributeMapping>,
    ) -> Result<Self> {
        let default = AttributeMapping::google_default_aws();
        let mapped: MappedAttributes = mapping
            .unwrap_or(&default)
            .evaluate(&AwsAssertion::from_arn(arn))
            .map_err(|e| {
                Error::failed(
                    Step::AwsIdentity,
                    false,
                    format!("the attribute mapping cannot map {arn}: {e}"),
                )
            })?;
        let p = &config.provider;
        let pool = format!(
            "iam.{}/projects/{}/locations/{}/workloadIdentityPools/{}",
            config.universe_domain, p.project_number, p.location, p.pool_id
        );
        Ok(Whoami {
            aws_arn: arn.to_string(),
            aws_role: mapped.attributes.get("attribute.aws_role").cloned(),
            google_subject: mapped.principal(&pool),
            google_principal_set: mapped.principal_set(&pool, "aws_role"),
            attributes: mapped.attributes,
            default_mapping: mapping.is_none(),
            service_account: config
                .impersonation
                .as_ref()
                .map(|i| i.service_account.clone()),
        })
    }
}

impl Credentials {
    /// Asks AWS STS who the caller is and derives the Google principals under Google's
    /// default AWS attribute mapping.
    pub async fn whoami(&self) -> Result<Whoami> {
        self.whoami_with(None).await
    }

    /// Like [`Credentials::whoami`] under the provider's own attribute mapping.
    pub async fn whoami_with(&self, mapping: Option<&AttributeMapping>) -> Result<Whoami> {
        let config = self.config().await?;
        let arn = self.caller_arn().await?;
        Whoami::compute(&arn, &config, mapping)
    }

    /// The AWS caller's ARN (STS `GetCallerIdentity`), before any mapping.
    pub async fn caller_arn(&self) -> Result<String> {
        let identity = self.aws_identity().await?;
        let sts = aws_sdk_sts::Client::new(&identity.sdk_config().await);
        let out = sts.get_caller_identity().send().await.map_err(|e| {
            Error::failed_with(
                Step::AwsIdentity,
                true,
                "AWS STS GetCallerIdentity failed",
                e,
            )
        })?;
        out.arn().map(str::to_string).ok_or_else(|| {
            Error::failed(
                Step::AwsIdentity,
                false,
                "GetCallerIdentity returned no ARN",
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ExternalAccountConfig {
        let json = r#"{"type":"external_account","audience":"//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/pool/providers/aws","subject_token_type":"urn:ietf:params:aws:token-type:aws4_request","token_url":"https://sts.googleapis.com/v1/token","credential_source":{"environment_id":"aws1","regional_cred_verification_url":"https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15"}}"#;
        ExternalAccountConfig::from_json(json, false).unwrap()
    }

    const POOL: &str =
        "iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/pool";

    #[test]
    fn default_mapping_gives_the_assumed_role_arn() {
        let arn = "arn:aws:sts::111122223333:assumed-role/my-fn-role/my-fn";
        let me = Whoami::compute(arn, &config(), None).unwrap();
        assert!(me.default_mapping);
        assert_eq!(
            me.google_subject,
            format!("principal://{POOL}/subject/{arn}")
        );
        assert_eq!(
            me.google_principal_set.unwrap(),
            format!(
                "principalSet://{POOL}/attribute.aws_role/arn:aws:sts::111122223333:assumed-role/my-fn-role"
            )
        );
        let user = Whoami::compute("arn:aws:iam::1:user/bob", &config(), None).unwrap();
        assert_eq!(user.aws_role.as_deref(), Some("arn:aws:iam::1:user/bob"));
    }

    #[test]
    fn the_seed_articles_mapping_gives_the_role_name() {
        let arn = "arn:aws:sts::111122223333:assumed-role/my-fn-role/my-fn";
        let m = AttributeMapping::role_name();
        let me = Whoami::compute(arn, &config(), Some(&m)).unwrap();
        assert!(!me.default_mapping);
        assert_eq!(me.aws_role.as_deref(), Some("my-fn-role"));
        assert_eq!(
            me.google_principal_set.unwrap(),
            format!("principalSet://{POOL}/attribute.aws_role/my-fn-role")
        );
        assert_eq!(me.attributes["attribute.aws_account"], "111122223333");
    }
}
