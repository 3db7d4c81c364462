//! Google's `external_account` credential configuration for AWS, as written by
//! `gcloud iam workload-identity-pools create-cred-config --aws [--enable-imdsv2]`.
//!
//! Validation is strict: every error names the field and says what is expected.

use std::time::Duration;

use serde_json::{Map, Value};
use url::Url;

use crate::endpoint::{EndpointPolicy, GoogleService};
use crate::error::{Error, Result};

const SUBJECT_TOKEN_TYPE: &str = "urn:ietf:params:aws:token-type:aws4_request";
const DEFAULT_UNIVERSE: &str = "googleapis.com";
const TOP_LEVEL_FIELDS: &[&str] = &[
    "type",
    "audience",
    "subject_token_type",
    "token_url",
    "token_info_url",
    "service_account_impersonation_url",
    "service_account_impersonation",
    "credential_source",
    "quota_project_id",
    "universe_domain",
];
const SOURCE_FIELDS: &[&str] = &[
    "environment_id",
    "region_url",
    "url",
    "regional_cred_verification_url",
    "imdsv2_session_token_url",
];

/// The workload identity pool provider named by the `audience`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkloadProvider {
    /// Project number owning the pool.
    pub project_number: String,
    /// Location of the pool (`global`).
    pub location: String,
    /// Pool id.
    pub pool_id: String,
    /// Provider id.
    pub provider_id: String,
}

/// Service-account impersonation settings.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Impersonation {
    /// The `generateAccessToken` URL.
    pub url: Url,
    /// E-mail of the impersonated service account.
    pub service_account: String,
    /// `service_account_impersonation.token_lifetime_seconds`, when set.
    pub lifetime: Option<Duration>,
}

/// Where AWS credentials, the region and the signed request come from.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AwsCredentialSource {
    /// Instance metadata URL of the availability zone (EC2 only).
    pub region_url: Option<Url>,
    /// Instance metadata URL of the role credentials (EC2 only).
    pub url: Option<Url>,
    /// IMDSv2 session token URL (EC2 only).
    pub imdsv2_session_token_url: Option<Url>,
    /// GetCallerIdentity URL template, may contain `{region}`. Only signed, never fetched.
    pub regional_cred_verification_url: String,
}

/// A validated `external_account` configuration for an AWS workload.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExternalAccountConfig {
    /// The full provider resource name, e.g. `//iam.googleapis.com/projects/N/...`.
    pub audience: String,
    /// The provider parsed from `audience`.
    pub provider: WorkloadProvider,
    /// Google STS token endpoint.
    pub token_url: Url,
    /// Impersonation, when configured.
    pub impersonation: Option<Impersonation>,
    /// The AWS credential source.
    pub credential_source: AwsCredentialSource,
    /// Project billed for quota, sent as `x-goog-user-project`.
    pub quota_project_id: Option<String>,
    /// Universe domain, `googleapis.com` by default.
    pub universe_domain: String,
}

fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

struct Fields<'a> {
    path: &'a str,
    map: &'a Map<String, Value>,
}

impl<'a> Fields<'a> {
    fn name(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn reject_unknown(&self, known: &[&str]) -> Result<()> {
        for key in self.map.keys() {
            if !known.contains(&key.as_str()) {
                return Err(Error::invalid(
                    self.name(key),
                    format!("unknown field; expected one of: {}", known.join(", ")),
                ));
            }
        }
        Ok(())
    }

    fn string(&self, key: &str) -> Result<Option<&'a str>> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => {
                Err(Error::invalid(self.name(key), "must not be empty"))
            }
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(other) => Err(Error::invalid(
                self.name(key),
                format!("expected a string, found {}", describe(other)),
            )),
        }
    }

    fn required(&self, key: &str, what: &str) -> Result<&'a str> {
        self.string(key)?
            .ok_or_else(|| Error::invalid(self.name(key), format!("is required: {what}")))
    }

    fn object(&self, key: &'a str) -> Result<Option<Fields<'a>>> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(map)) => Ok(Some(Fields { path: key, map })),
            Some(other) => Err(Error::invalid(
                self.name(key),
                format!("expected an object, found {}", describe(other)),
            )),
        }
    }
}

fn parse_audience(audience: &str, universe_domain: &str) -> Result<WorkloadProvider> {
    let expected = format!(
        "expected //iam.{universe_domain}/projects/<project-number>/locations/global/workloadIdentityPools/<pool>/providers/<provider>"
    );
    let bad = |why: &str| Error::invalid("audience", format!("`{audience}` {why}; {expected}"));
    let rest = audience
        .strip_prefix(&format!("//iam.{universe_domain}/"))
        .ok_or_else(|| bad("is not a workload identity pool provider"))?;
    if rest.contains("/workforcePools/") {
        return Err(bad(
            "names a workforce pool, which AWS workloads cannot use",
        ));
    }
    let parts: Vec<&str> = rest.split('/').collect();
    if let ["projects", _, "locations", _, "workloadIdentityPools", pool] = parts.as_slice() {
        return Err(bad(&format!(
            "names a workload identity pool, not a provider: append /providers/<PROVIDER> (the AWS provider of pool `{pool}`)"
        )));
    }
    match parts.as_slice() {
        [
            "projects",
            project,
            "locations",
            location,
            "workloadIdentityPools",
            pool,
            "providers",
            provider,
        ] if [project, location, pool, provider]
            .iter()
            .all(|p| !p.is_empty()) =>
        {
            if !project.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad(
                    "uses a project id where the project number is required",
                ));
            }
            Ok(WorkloadProvider {
                project_number: project.to_string(),
                location: location.to_string(),
                pool_id: pool.to_string(),
                provider_id: provider.to_string(),
            })
        }
        _ => Err(bad("is malformed")),
    }
}

fn parse_impersonation_url(raw: &str, policy: &EndpointPolicy) -> Result<(Url, String)> {
    const FIELD: &str = "service_account_impersonation_url";
    let url = policy.check_google(FIELD, raw, GoogleService::IamCredentials)?;
    let email = url
        .path()
        .strip_prefix("/v1/projects/-/serviceAccounts/")
        .and_then(|rest| rest.strip_suffix(":generateAccessToken"))
        .map(|e| percent_encoding::percent_decode_str(e).decode_utf8_lossy().into_owned())
        .filter(|e| e.contains('@') && !e.contains('/'))
        .ok_or_else(|| {
            Error::invalid(
                FIELD,
                format!(
                    "`{raw}` must look like https://iamcredentials.{}/v1/projects/-/serviceAccounts/<email>:generateAccessToken",
                    policy.universe_domain
                ),
            )
        })?;
    Ok((url, email))
}

fn parse_lifetime(fields: &Fields<'_>) -> Result<Option<Duration>> {
    let field = fields.name("token_lifetime_seconds");
    fields.reject_unknown(&["token_lifetime_seconds"])?;
    match fields.map.get("token_lifetime_seconds") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(secs @ 600..=43200) => Ok(Some(Duration::from_secs(secs))),
            _ => Err(Error::invalid(
                field,
                format!("{n} is out of range: expected whole seconds from 600 to 43200"),
            )),
        },
        Some(other) => Err(Error::invalid(
            field,
            format!("expected a number of seconds, found {}", describe(other)),
        )),
    }
}

fn parse_source(source: &Fields<'_>, policy: &EndpointPolicy) -> Result<AwsCredentialSource> {
    for other in ["file", "executable", "format", "headers", "certificate"] {
        if source.map.contains_key(other) {
            return Err(Error::invalid(
                source.name(other),
                "this is not an AWS credential source; crossfed supports configurations made with `create-cred-config --aws`",
            ));
        }
    }
    source.reject_unknown(SOURCE_FIELDS)?;
    let env_id = source.required("environment_id", "`aws1` for AWS")?;
    if !env_id.starts_with("aws") {
        return Err(Error::invalid(
            source.name("environment_id"),
            format!("`{env_id}` is not an AWS environment: expected `aws1`"),
        ));
    }
    if env_id != "aws1" {
        return Err(Error::invalid(
            source.name("environment_id"),
            format!("AWS version `{env_id}` is not supported: expected `aws1`"),
        ));
    }
    let imds = |key: &str| -> Result<Option<Url>> {
        source
            .string(key)?
            .map(|raw| policy.check_imds(&source.name(key), raw))
            .transpose()
    };
    let verification = source.required(
        "regional_cred_verification_url",
        "https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15",
    )?;
    policy.check_aws_verification(&source.name("regional_cred_verification_url"), verification)?;
    Ok(AwsCredentialSource {
        region_url: imds("region_url")?,
        url: imds("url")?,
        imdsv2_session_token_url: imds("imdsv2_session_token_url")?,
        regional_cred_verification_url: verification.to_string(),
    })
}

impl ExternalAccountConfig {
    /// Parses and validates a configuration. `allow_local` permits plain-http loopback
    /// endpoints (set from `CROSSFED_ALLOW_LOCAL_ENDPOINTS=1`).
    pub fn from_json(json: &str, allow_local: bool) -> Result<Self> {
        let value: Value = serde_json::from_str(json).map_err(|e| {
            Error::invalid(
                "(document)",
                format!("not valid JSON ({e}); expected the file written by `gcloud iam workload-identity-pools create-cred-config --aws`"),
            )
        })?;
        let Value::Object(map) = &value else {
            return Err(Error::invalid(
                "(document)",
                format!("expected a JSON object, found {}", describe(&value)),
            ));
        };
        let top = Fields { path: "", map };
        match top.string("type")? {
            Some("external_account") => {}
            Some(other) => {
                return Err(Error::invalid(
                    "type",
                    format!(
                        "`{other}` is not supported: expected `external_account` (a Workload Identity Federation configuration)"
                    ),
                ));
            }
            None => return Err(Error::invalid("type", "is required: `external_account`")),
        }
        top.reject_unknown(TOP_LEVEL_FIELDS)?;

        let universe_domain = top.string("universe_domain")?.unwrap_or(DEFAULT_UNIVERSE);
        if !universe_domain
            .split('.')
            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        {
            return Err(Error::invalid(
                "universe_domain",
                format!("`{universe_domain}` is not a domain name"),
            ));
        }
        let policy = EndpointPolicy {
            universe_domain: universe_domain.to_string(),
            allow_local,
        };

        let audience = top.required(
            "audience",
            "the workload identity pool provider, //iam.googleapis.com/projects/<number>/locations/global/workloadIdentityPools/<pool>/providers/<provider>",
        )?;
        let provider = parse_audience(audience, universe_domain)?;

        match top.required("subject_token_type", SUBJECT_TOKEN_TYPE)? {
            SUBJECT_TOKEN_TYPE => {}
            other => {
                return Err(Error::invalid(
                    "subject_token_type",
                    format!(
                        "`{other}` is not the AWS subject token type: expected `{SUBJECT_TOKEN_TYPE}`"
                    ),
                ));
            }
        }

        let default_token_url = format!("https://sts.{universe_domain}/v1/token");
        let token_url = top.string("token_url")?.unwrap_or(&default_token_url);
        let token_url = policy.check_google("token_url", token_url, GoogleService::Sts)?;

        let lifetime = top
            .object("service_account_impersonation")?
            .map(|f| parse_lifetime(&f))
            .transpose()?
            .flatten();
        let impersonation = match top.string("service_account_impersonation_url")? {
            Some(raw) => {
                let (url, service_account) = parse_impersonation_url(raw, &policy)?;
                Some(Impersonation {
                    url,
                    service_account,
                    lifetime,
                })
            }
            None if lifetime.is_some() => {
                return Err(Error::invalid(
                    "service_account_impersonation.token_lifetime_seconds",
                    "is set but `service_account_impersonation_url` is not: the lifetime applies only to impersonated tokens",
                ));
            }
            None => None,
        };

        let source = top.object("credential_source")?.ok_or_else(|| {
            Error::invalid(
                "credential_source",
                "is required: an object with environment_id `aws1` and regional_cred_verification_url",
            )
        })?;
        let credential_source = parse_source(&source, &policy)?;

        Ok(ExternalAccountConfig {
            audience: audience.to_string(),
            provider,
            token_url,
            impersonation,
            credential_source,
            quota_project_id: top.string("quota_project_id")?.map(str::to_string),
            universe_domain: universe_domain.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn gcloud_config() -> Value {
        json!({
            "universe_domain": "googleapis.com",
            "type": "external_account",
            "audience": "//iam.googleapis.com/projects/123456/locations/global/workloadIdentityPools/my-pool/providers/my-aws",
            "subject_token_type": "urn:ietf:params:aws:token-type:aws4_request",
            "token_url": "https://sts.googleapis.com/v1/token",
            "credential_source": {
                "environment_id": "aws1",
                "region_url": "http://169.254.169.254/latest/meta-data/placement/availability-zone",
                "url": "http://169.254.169.254/latest/meta-data/iam/security-credentials",
                "regional_cred_verification_url": "https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15",
                "imdsv2_session_token_url": "http://169.254.169.254/latest/api/token"
            },
            "service_account_impersonation_url": "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/reader@proj.iam.gserviceaccount.com:generateAccessToken",
            "service_account_impersonation": {"token_lifetime_seconds": 1800}
        })
    }

    #[test]
    fn parses_gcloud_output() {
        let c = ExternalAccountConfig::from_json(&gcloud_config().to_string(), false).unwrap();
        assert_eq!(c.provider.project_number, "123456");
        assert_eq!(c.provider.pool_id, "my-pool");
        assert_eq!(c.provider.provider_id, "my-aws");
        let imp = c.impersonation.unwrap();
        assert_eq!(imp.service_account, "reader@proj.iam.gserviceaccount.com");
        assert_eq!(imp.lifetime, Some(Duration::from_secs(1800)));
        assert_eq!(c.token_url.as_str(), "https://sts.googleapis.com/v1/token");
        assert!(c.credential_source.imdsv2_session_token_url.is_some());
    }

    #[test]
    fn defaults_without_optional_fields() {
        let mut v = gcloud_config();
        let o = v.as_object_mut().unwrap();
        for k in [
            "token_url",
            "universe_domain",
            "service_account_impersonation_url",
            "service_account_impersonation",
        ] {
            o.remove(k);
        }
        let c = ExternalAccountConfig::from_json(&v.to_string(), false).unwrap();
        assert_eq!(c.token_url.as_str(), "https://sts.googleapis.com/v1/token");
        assert_eq!(c.universe_domain, "googleapis.com");
        assert!(c.impersonation.is_none());
    }

    /// Each malformed configuration yields an error that names the field.
    #[test]
    fn malformed_configs_name_the_field() {
        type Edit = fn(&mut Value);
        let cases: Vec<(&str, Edit)> = vec![
            ("type", |v| v["type"] = json!("service_account")),
            ("type", |v| {
                v.as_object_mut().unwrap().remove("type");
            }),
            ("type", |v| v["type"] = json!(7)),
            ("audience", |v| {
                v.as_object_mut().unwrap().remove("audience");
            }),
            ("audience", |v| v["audience"] = json!("")),
            ("audience", |v| {
                v["audience"] = json!(
                    "//iam.googleapis.com/projects/my-proj/locations/global/workloadIdentityPools/p/providers/x"
                )
            }),
            ("audience", |v| {
                v["audience"] =
                    json!("//iam.googleapis.com/locations/global/workforcePools/p/providers/x")
            }),
            ("audience", |v| v["audience"] = json!("https://example.com")),
            ("subject_token_type", |v| {
                v["subject_token_type"] = json!("urn:ietf:params:oauth:token-type:jwt")
            }),
            ("token_url", |v| {
                v["token_url"] = json!("https://evil.example.com/v1/token")
            }),
            ("token_url", |v| {
                v["token_url"] = json!("http://sts.googleapis.com/v1/token")
            }),
            ("token_url", |v| v["token_url"] = json!("not a url")),
            ("service_account_impersonation_url", |v| {
                v["service_account_impersonation_url"] =
                    json!("https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/x")
            }),
            ("service_account_impersonation_url", |v| {
                v["service_account_impersonation_url"] =
                    json!("https://evil.com/v1/projects/-/serviceAccounts/a@b:generateAccessToken")
            }),
            (
                "service_account_impersonation.token_lifetime_seconds",
                |v| v["service_account_impersonation"]["token_lifetime_seconds"] = json!(50000),
            ),
            (
                "service_account_impersonation.token_lifetime_seconds",
                |v| v["service_account_impersonation"]["token_lifetime_seconds"] = json!("3600"),
            ),
            (
                "service_account_impersonation.token_lifetime_seconds",
                |v| v["service_account_impersonation"]["token_lifetime_seconds"] = json!(-1),
            ),
            (
                "service_account_impersonation.token_lifetime_seconds",
                |v| {
                    v.as_object_mut()
                        .unwrap()
                        .remove("service_account_impersonation_url");
                },
            ),
            ("service_account_impersonation.lifetime", |v| {
                v["service_account_impersonation"]["lifetime"] = json!(1)
            }),
            ("credential_source", |v| {
                v.as_object_mut().unwrap().remove("credential_source");
            }),
            ("credential_source", |v| {
                v["credential_source"] = json!("aws1")
            }),
            ("credential_source.environment_id", |v| {
                v["credential_source"]["environment_id"] = json!("aws2")
            }),
            ("credential_source.environment_id", |v| {
                v["credential_source"]["environment_id"] = json!("azure1")
            }),
            ("credential_source.environment_id", |v| {
                v["credential_source"]
                    .as_object_mut()
                    .unwrap()
                    .remove("environment_id");
            }),
            ("credential_source.file", |v| {
                v["credential_source"]["file"] = json!("/var/run/token")
            }),
            ("credential_source.regional_cred_verification_url", |v| {
                v["credential_source"]
                    .as_object_mut()
                    .unwrap()
                    .remove("regional_cred_verification_url");
            }),
            ("credential_source.regional_cred_verification_url", |v| {
                v["credential_source"]["regional_cred_verification_url"] =
                    json!("https://evil.example.com/?Action=GetCallerIdentity")
            }),
            ("credential_source.url", |v| {
                v["credential_source"]["url"] = json!("http://evil.example.com/creds")
            }),
            ("credential_source.imdsv2_session_token_url", |v| {
                v["credential_source"]["imdsv2_session_token_url"] = json!(true)
            }),
            ("credential_source.regoin_url", |v| {
                v["credential_source"]["regoin_url"] = json!("http://169.254.169.254/")
            }),
            ("quota_project_id", |v| v["quota_project_id"] = json!(["a"])),
            ("universe_domain", |v| {
                v["universe_domain"] = json!("bad domain")
            }),
            ("client_secret", |v| v["client_secret"] = json!("x")),
        ];
        assert!(cases.len() >= 20);
        for (field, edit) in cases {
            let mut v = gcloud_config();
            edit(&mut v);
            let err = ExternalAccountConfig::from_json(&v.to_string(), false)
                .expect_err(&format!("{field} edit should fail"));
            match &err {
                Error::InvalidConfig { field: f, message } => {
                    assert_eq!(f, field, "{err}");
                    assert!(message.len() > 10, "{err}");
                }
                other => panic!("expected InvalidConfig for {field}, got {other:?}"),
            }
        }
    }

    #[test]
    fn non_json_and_non_object() {
        for bad in [
            "",
            "{",
            "[]",
            "null",
            "\"x\"",
            "{\"type\":\"external_account\"}",
        ] {
            let err = ExternalAccountConfig::from_json(bad, false).unwrap_err();
            assert!(matches!(err, Error::InvalidConfig { .. }), "{bad}: {err}");
        }
    }

    #[test]
    fn loopback_endpoints_need_opt_in() {
        let mut v = gcloud_config();
        v["token_url"] = json!("http://127.0.0.1:9/v1/token");
        let err = ExternalAccountConfig::from_json(&v.to_string(), false).unwrap_err();
        assert!(
            err.to_string().contains("CROSSFED_ALLOW_LOCAL_ENDPOINTS=1"),
            "{err}"
        );
        assert!(ExternalAccountConfig::from_json(&v.to_string(), true).is_ok());
    }
}
