//! The local clouds started by `make test` (moto for AWS, a GCS emulator),
//! described by the `KEY=VALUE` env file at `$CROSSFED_LOCALCLOUD_ENV`
//! (default `<workspace>/target/localcloud/env`).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

/// Env var overriding the env file path.
pub const ENV_FILE_VAR: &str = "CROSSFED_LOCALCLOUD_ENV";

/// Static credentials of one assumed role session in moto.
#[derive(Clone, PartialEq, Eq)]
pub struct RoleSession {
    /// `arn:aws:iam::ACCOUNT:role/NAME`.
    pub role_arn: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    /// `arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION`.
    pub assumed_arn: String,
}

impl fmt::Debug for RoleSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RoleSession")
            .field("role_arn", &self.role_arn)
            .field("access_key_id", &self.access_key_id)
            .field("assumed_arn", &self.assumed_arn)
            .finish_non_exhaustive()
    }
}

/// Endpoints and credentials of the local clouds. `Debug` hides secrets.
#[derive(Clone, PartialEq, Eq)]
pub struct LocalCloud {
    /// `LOCALCLOUD_MOTO_URL`, e.g. `http://127.0.0.1:5055`.
    pub moto_url: String,
    pub region: String,
    pub account_id: String,
    pub admin_access_key_id: String,
    pub admin_secret_access_key: String,
    /// `LOCALCLOUD_ROLE_*`: the role the function runs as.
    pub role: RoleSession,
    /// `LOCALCLOUD_OTHER_ROLE_*`: a role that is not bound in Google.
    pub other_role: RoleSession,
    /// `LOCALCLOUD_GCS_HTTP`, if a GCS emulator runs.
    pub gcs_http: Option<String>,
    /// `LOCALCLOUD_GOOGLE_ROLE_ARN`: `arn:aws:iam::ACCOUNT:role/crossfed-from-google`,
    /// assumable with `AssumeRoleWithWebIdentity` and a Google ID token
    /// (see [`crate::google::id_tokens`]) whose `aud` is [`Self::google_audience`] and
    /// whose `sub` is [`Self::google_sub`] (or `222222222222222222222`).
    /// Its policy allows `s3:*`; `MaxSessionDuration` is 43200.
    pub google_role_arn: String,
    /// `LOCALCLOUD_GOOGLE_AUDIENCE`: `crossfed-test-audience` (the trust
    /// policy's `accounts.google.com:oaud`).
    pub google_audience: String,
    /// `LOCALCLOUD_GOOGLE_SUB`: `111111111111111111111`, the default unique
    /// id of the fake service account.
    pub google_sub: String,
    /// `LOCALCLOUD_GOOGLE_BUCKET`: `crossfed-from-google-bucket`, an S3
    /// bucket in moto.
    pub google_bucket: String,
    /// Every variable of the file.
    pub vars: BTreeMap<String, String>,
}

impl fmt::Debug for LocalCloud {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalCloud")
            .field("moto_url", &self.moto_url)
            .field("region", &self.region)
            .field("account_id", &self.account_id)
            .field("role", &self.role)
            .field("other_role", &self.other_role)
            .field("gcs_http", &self.gcs_http)
            .field("google_role_arn", &self.google_role_arn)
            .field("google_audience", &self.google_audience)
            .field("google_sub", &self.google_sub)
            .field("google_bucket", &self.google_bucket)
            .finish_non_exhaustive()
    }
}

impl LocalCloud {
    /// Path of the env file.
    pub fn env_file() -> PathBuf {
        std::env::var_os(ENV_FILE_VAR)
            .map(PathBuf::from)
            .unwrap_or_else(|| crate::workspace::workspace_root().join("target/localcloud/env"))
    }

    /// Loads the env file.
    ///
    /// # Panics
    /// If the file is missing or incomplete, telling how to start the clouds.
    pub fn load() -> Self {
        Self::try_load().unwrap_or_else(|e| panic!("{e}"))
    }

    /// Loads the env file, or explains what is wrong.
    pub fn try_load() -> Result<Self, String> {
        let path = Self::env_file();
        let text = std::fs::read_to_string(&path).map_err(|e| {
            format!(
                "cannot read the local cloud env file {} ({e}); run the tests through `make test`, \
                 which starts the local clouds (or set {ENV_FILE_VAR})",
                path.display()
            )
        })?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses `KEY=VALUE` lines (blank lines and `#` comments ignored,
    /// optional matching quotes around values).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut vars = BTreeMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let line = line.strip_prefix("export ").unwrap_or(line);
            let (key, value) = line
                .split_once('=')
                .ok_or_else(|| format!("line {}: expected KEY=VALUE", n + 1))?;
            let value = value.trim();
            let value = ['"', '\'']
                .iter()
                .find_map(|q| value.strip_prefix(*q).and_then(|v| v.strip_suffix(*q)))
                .unwrap_or(value);
            vars.insert(key.trim().to_string(), value.to_string());
        }
        let get = |key: &str| {
            vars.get(key)
                .filter(|v| !v.is_empty())
                .cloned()
                .ok_or_else(|| {
                    format!(
                        "missing {key}; re-run `make test` to regenerate the local cloud env file"
                    )
                })
        };
        let role = |prefix: &str| -> Result<RoleSession, String> {
            Ok(RoleSession {
                role_arn: get(&format!("{prefix}_ARN"))?,
                access_key_id: get(&format!("{prefix}_ACCESS_KEY_ID"))?,
                secret_access_key: get(&format!("{prefix}_SECRET_ACCESS_KEY"))?,
                session_token: get(&format!("{prefix}_SESSION_TOKEN"))?,
                assumed_arn: get(&format!("{prefix}_ASSUMED_ARN"))?,
            })
        };
        Ok(Self {
            moto_url: get("LOCALCLOUD_MOTO_URL")?
                .trim_end_matches('/')
                .to_string(),
            region: get("LOCALCLOUD_REGION")?,
            account_id: get("LOCALCLOUD_ACCOUNT_ID")?,
            admin_access_key_id: get("LOCALCLOUD_ADMIN_ACCESS_KEY_ID")?,
            admin_secret_access_key: get("LOCALCLOUD_ADMIN_SECRET_ACCESS_KEY")?,
            role: role("LOCALCLOUD_ROLE")?,
            other_role: role("LOCALCLOUD_OTHER_ROLE")?,
            gcs_http: get("LOCALCLOUD_GCS_HTTP").ok(),
            google_role_arn: get("LOCALCLOUD_GOOGLE_ROLE_ARN")?,
            google_audience: get("LOCALCLOUD_GOOGLE_AUDIENCE")?,
            google_sub: get("LOCALCLOUD_GOOGLE_SUB")?,
            google_bucket: get("LOCALCLOUD_GOOGLE_BUCKET")?,
            vars,
        })
    }

    /// `{moto_url}/?Action=GetCallerIdentity&Version=2011-06-15`, the
    /// regional credential verification URL for the moto endpoint.
    pub fn get_caller_identity_url(&self) -> String {
        format!(
            "{}/?Action=GetCallerIdentity&Version=2011-06-15",
            self.moto_url
        )
    }

    /// An SDK configuration acting as the local admin user, against moto (any client:
    /// CloudFormation stacks, STS sessions of any role name).
    pub async fn admin_sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .credentials_provider(aws_credential_types::Credentials::new(
                &self.admin_access_key_id,
                &self.admin_secret_access_key,
                None,
                None,
                "localcloud-admin",
            ))
            .region(aws_config::Region::new(self.region.clone()))
            .endpoint_url(&self.moto_url)
            .load()
            .await
    }

    /// `arn:aws:sts::ACCOUNT:assumed-role/NAME` of a session: the
    /// `attribute.aws_role` Google maps it to.
    pub fn aws_role_attribute(session: &RoleSession) -> String {
        crate::google::aws_subject_token::aws_role_attribute(&session.assumed_arn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
# generated
LOCALCLOUD_MOTO_URL=http://127.0.0.1:5055/
LOCALCLOUD_REGION=us-east-1
LOCALCLOUD_ACCOUNT_ID=123456789012
LOCALCLOUD_ADMIN_ACCESS_KEY_ID=AKIAADMIN
LOCALCLOUD_ADMIN_SECRET_ACCESS_KEY="admin-secret"
LOCALCLOUD_ROLE_ARN=arn:aws:iam::123456789012:role/crossfed-lambda
LOCALCLOUD_ROLE_ACCESS_KEY_ID=ASIAROLE
LOCALCLOUD_ROLE_SECRET_ACCESS_KEY=role-secret
LOCALCLOUD_ROLE_SESSION_TOKEN=FQoG+abc/def==
LOCALCLOUD_ROLE_ASSUMED_ARN=arn:aws:sts::123456789012:assumed-role/crossfed-lambda/s1
LOCALCLOUD_OTHER_ROLE_ARN=arn:aws:iam::123456789012:role/other
LOCALCLOUD_OTHER_ROLE_ACCESS_KEY_ID=ASIAOTHER
LOCALCLOUD_OTHER_ROLE_SECRET_ACCESS_KEY=other-secret
LOCALCLOUD_OTHER_ROLE_SESSION_TOKEN=tok
LOCALCLOUD_OTHER_ROLE_ASSUMED_ARN=arn:aws:sts::123456789012:assumed-role/other/s2
LOCALCLOUD_GOOGLE_ROLE_ARN=arn:aws:iam::123456789012:role/crossfed-from-google
LOCALCLOUD_GOOGLE_AUDIENCE=crossfed-test-audience
LOCALCLOUD_GOOGLE_SUB=111111111111111111111
LOCALCLOUD_GOOGLE_BUCKET=crossfed-from-google-bucket
"#;

    #[test]
    fn parses_env_file() {
        let c = LocalCloud::parse(SAMPLE).unwrap();
        assert_eq!(c.moto_url, "http://127.0.0.1:5055");
        assert_eq!(c.admin_secret_access_key, "admin-secret");
        assert_eq!(c.role.session_token, "FQoG+abc/def==");
        assert_eq!(c.gcs_http, None);
        assert_eq!(
            c.google_role_arn,
            "arn:aws:iam::123456789012:role/crossfed-from-google"
        );
        assert_eq!(
            (c.google_audience.as_str(), c.google_sub.as_str()),
            (
                "crossfed-test-audience",
                crate::google::fake_google_config::DEFAULT_SERVICE_ACCOUNT_UNIQUE_ID
            )
        );
        assert_eq!(c.google_bucket, "crossfed-from-google-bucket");
        assert_eq!(
            LocalCloud::aws_role_attribute(&c.role),
            "arn:aws:sts::123456789012:assumed-role/crossfed-lambda"
        );
        assert_eq!(
            c.get_caller_identity_url(),
            "http://127.0.0.1:5055/?Action=GetCallerIdentity&Version=2011-06-15"
        );
        let debug = format!("{c:?}");
        assert!(
            !debug.contains("secret") && !debug.contains("FQoG"),
            "{debug}"
        );
    }

    #[test]
    fn missing_key_is_explained() {
        let err = LocalCloud::parse("LOCALCLOUD_REGION=x").unwrap_err();
        assert!(
            err.contains("LOCALCLOUD_MOTO_URL") && err.contains("make test"),
            "{err}"
        );
    }
}
