//! Who the AWS caller is, and which Google principals Workload Identity Federation maps it to.

use super::config::WorkloadProvider;
use super::credentials::Credentials;
use crate::error::{Error, Result, Step};

/// The caller as AWS and Google see it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Whoami {
    /// AWS caller ARN, e.g. `arn:aws:sts::123456789012:assumed-role/ROLE/SESSION`.
    pub aws_arn: String,
    /// The `attribute.aws_role` value of Google's default AWS attribute mapping.
    pub aws_role: String,
    /// `principal://.../subject/<arn>` (`google.subject = assertion.arn`).
    pub google_subject: String,
    /// `principalSet://.../attribute.aws_role/<role>`, the usual IAM binding target.
    pub google_principal_set: String,
    /// The impersonated service account, if any.
    pub service_account: Option<String>,
}

/// `attribute.aws_role` as Google's default mapping computes it: the assumed-role ARN
/// without the session name, else the ARN itself.
fn aws_role_attribute(arn: &str) -> String {
    match arn.split_once(":assumed-role/") {
        Some((account_arn, rest)) => {
            let role = rest.split('/').next().unwrap_or(rest);
            format!("{account_arn}:assumed-role/{role}")
        }
        None => arn.to_string(),
    }
}

fn pool_path(p: &WorkloadProvider, universe_domain: &str) -> String {
    format!(
        "iam.{universe_domain}/projects/{}/locations/{}/workloadIdentityPools/{}",
        p.project_number, p.location, p.pool_id
    )
}

/// The Google principals for an AWS caller ARN under a provider.
fn principals(arn: &str, provider: &WorkloadProvider, universe_domain: &str) -> (String, String) {
    let pool = pool_path(provider, universe_domain);
    (
        format!("principal://{pool}/subject/{arn}"),
        format!(
            "principalSet://{pool}/attribute.aws_role/{}",
            aws_role_attribute(arn)
        ),
    )
}

impl Credentials {
    /// Asks AWS STS who the caller is and derives the Google principals.
    pub async fn whoami(&self) -> Result<Whoami> {
        let config = self.config().await?;
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
        let aws_arn = out
            .arn()
            .ok_or_else(|| {
                Error::failed(
                    Step::AwsIdentity,
                    false,
                    "GetCallerIdentity returned no ARN",
                )
            })?
            .to_string();
        let (google_subject, google_principal_set) =
            principals(&aws_arn, &config.provider, &config.universe_domain);
        Ok(Whoami {
            aws_role: aws_role_attribute(&aws_arn),
            aws_arn,
            google_subject,
            google_principal_set,
            service_account: config
                .impersonation
                .as_ref()
                .map(|i| i.service_account.clone()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_like_google_default_attribute_mapping() {
        let provider = WorkloadProvider {
            project_number: "123".into(),
            location: "global".into(),
            pool_id: "pool".into(),
            provider_id: "aws".into(),
        };
        let arn = "arn:aws:sts::111122223333:assumed-role/my-fn-role/my-fn";
        assert_eq!(
            aws_role_attribute(arn),
            "arn:aws:sts::111122223333:assumed-role/my-fn-role"
        );
        let (subject, set) = principals(arn, &provider, "googleapis.com");
        assert_eq!(
            subject,
            format!(
                "principal://iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/pool/subject/{arn}"
            )
        );
        assert_eq!(
            set,
            "principalSet://iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/pool/attribute.aws_role/arn:aws:sts::111122223333:assumed-role/my-fn-role"
        );
        assert_eq!(
            aws_role_attribute("arn:aws:iam::1:user/bob"),
            "arn:aws:iam::1:user/bob"
        );
    }
}
