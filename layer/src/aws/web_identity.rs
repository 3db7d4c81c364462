//! Google Cloud → AWS: a Google ID token exchanged for AWS credentials with
//! `AssumeRoleWithWebIdentity`, as an `aws-config` credentials provider.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_config::BehaviorVersion;
use aws_credential_types::Credentials as AwsCredentials;
use aws_credential_types::provider::{self, ProvideCredentials, future};
use aws_types::region::Region;
use tokio::sync::OnceCell;
use tracing::Instrument;

use super::id_token::{self, IdToken, IdTokenSource};
use crate::context::Context;
use crate::endpoint::{self, ALLOW_LOCAL_ENV, EndpointPolicy, GoogleService};
use crate::error::{Error, Result, Step};
use crate::token::capped_expiry;
use crate::token_cache::{CacheSettings, Clock, Expiring, TokenCache, TokenSource};
use crate::transport::Transport;

/// Region used for the regional STS endpoint when none is configured.
pub const DEFAULT_STS_REGION: &str = "us-east-1";

/// AWS credentials from a Google identity; implements [`ProvideCredentials`], so any AWS SDK
/// client works unchanged: `aws_config::from_env().credentials_provider(provider)`.
///
/// Credentials are cached, refreshed ahead of expiry and fetched once for concurrent callers.
#[derive(Clone)]
pub struct WebIdentity {
    inner: Arc<TokenCache<WebIdentitySource>>,
}

impl std::fmt::Debug for WebIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.inner.source();
        f.debug_struct("WebIdentity")
            .field("role_arn", &s.role_arn)
            .field("audience", &s.audience)
            .finish_non_exhaustive()
    }
}

/// Builds a [`WebIdentity`].
#[derive(Debug)]
pub struct Builder {
    role_arn: String,
    audience: String,
    source: Option<IdTokenSource>,
    session_name: Option<String>,
    duration: Option<Duration>,
    policy: Option<String>,
    region: Option<String>,
    sts: Option<aws_sdk_sts::Client>,
    cache: CacheSettings,
    ctx: Context,
    allow_local: Option<bool>,
}

impl WebIdentity {
    /// Assume `role_arn` with Google ID tokens for `audience` (the trust policy's
    /// `accounts.google.com:oaud`).
    pub fn builder(role_arn: impl Into<String>, audience: impl Into<String>) -> Builder {
        Builder {
            role_arn: role_arn.into(),
            audience: audience.into(),
            source: None,
            session_name: None,
            duration: None,
            policy: None,
            region: None,
            sts: None,
            cache: CacheSettings::default(),
            ctx: Context::default(),
            allow_local: None,
        }
    }

    /// Current AWS credentials (cached).
    pub async fn credentials(&self) -> Result<AwsCredentials> {
        Ok(self.inner.get().await?.item.0.clone())
    }
}

impl Builder {
    /// Where ID tokens come from (default: the metadata server, `GCE_METADATA_HOST`).
    pub fn with_id_token_source(mut self, source: IdTokenSource) -> Self {
        self.source = Some(source);
        self
    }

    /// Role session name (default: derived from the token's e-mail or `sub`).
    pub fn with_session_name(mut self, name: impl Into<String>) -> Self {
        self.session_name = Some(name.into());
        self
    }

    /// Requested session duration (default: the role's default, 1 hour).
    pub fn with_duration(mut self, duration: Duration) -> Self {
        self.duration = Some(duration);
        self
    }

    /// An inline session policy (JSON) that further restricts the session.
    pub fn with_session_policy(mut self, policy: impl Into<String>) -> Self {
        self.policy = Some(policy.into());
        self
    }

    /// Region of the STS endpoint (default: `AWS_REGION`, else `AWS_DEFAULT_REGION`, else
    /// `us-east-1`).
    pub fn with_region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Uses this STS client (endpoint overrides, tests).
    pub fn with_sts_client(mut self, client: aws_sdk_sts::Client) -> Self {
        self.sts = Some(client);
        self
    }

    /// Cache tuning.
    pub fn with_cache_settings(mut self, settings: CacheSettings) -> Self {
        self.cache = settings;
        self
    }

    /// Environment, clock, timeouts, retry policy and HTTP client (default:
    /// [`Context::default`]). Give both directions' builders the same context to share one HTTP
    /// client pool.
    pub fn with_context(mut self, ctx: Context) -> Self {
        self.ctx = ctx;
        self
    }

    /// Allows a plain-http loopback IAM Credentials endpoint (default:
    /// `CROSSFED_ALLOW_LOCAL_ENDPOINTS=1`).
    pub fn with_allow_local_endpoints(mut self, allow: bool) -> Self {
        self.allow_local = Some(allow);
        self
    }

    /// Validates the settings and returns the provider. Needs no runtime.
    pub fn build(self) -> Result<WebIdentity> {
        let arn_ok = self.role_arn.starts_with("arn:")
            && self.role_arn.split(':').nth(2) == Some("iam")
            && self.role_arn.contains(":role/");
        if !arn_ok {
            return Err(Error::invalid(
                "role_arn",
                format!(
                    "`{}` is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)",
                    self.role_arn
                ),
            ));
        }
        if self.audience.trim().is_empty() {
            return Err(Error::invalid(
                "audience",
                "is required: the value of accounts.google.com:oaud in the role's trust policy",
            ));
        }
        if let Some(name) = &self.session_name {
            check_session_name(name)?;
        }
        if let Some(d) = self.duration
            && !(900..=43200).contains(&d.as_secs())
        {
            return Err(Error::invalid(
                "duration",
                "must be from 900 to 43200 seconds",
            ));
        }
        if let Some(IdTokenSource::IamCredentials {
            endpoint,
            service_account,
            ..
        }) = &self.source
        {
            id_token::check_service_account(service_account)?;
            let policy = EndpointPolicy {
                universe_domain: "googleapis.com".into(),
                allow_local: self
                    .allow_local
                    .unwrap_or_else(|| self.ctx.env_var(ALLOW_LOCAL_ENV).is_some_and(|v| v == "1")),
            };
            policy.check_google("endpoint", endpoint.as_str(), GoogleService::IamCredentials)?;
        }
        let region = self
            .region
            .or_else(|| self.ctx.env_var("AWS_REGION"))
            .or_else(|| self.ctx.env_var("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| DEFAULT_STS_REGION.to_string());
        endpoint::check_region("region", &region)?;
        let source = WebIdentitySource {
            role_arn: self.role_arn,
            audience: self.audience,
            id_tokens: self
                .source
                .unwrap_or_else(|| IdTokenSource::metadata_from_env(&self.ctx)),
            session_name: self.session_name,
            duration: self.duration,
            policy: self.policy,
            region: Region::new(region),
            sts: OnceCell::new_with(self.sts),
            transport: self.ctx.transport()?,
            clock: self.ctx.clock().clone(),
        };
        Ok(WebIdentity {
            inner: Arc::new(TokenCache::new(
                source,
                self.cache,
                self.ctx.clock().clone(),
            )),
        })
    }
}

/// AWS limits: 2-64 characters of `[\w+=,.@-]`.
fn check_session_name(name: &str) -> Result<()> {
    let ok = (2..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "session_name",
            format!("`{name}` must be 2 to 64 characters of letters, digits and _+=,.@-"),
        ))
    }
}

/// A session name from the token: the e-mail, else `google-<sub>`, within AWS limits.
fn default_session_name(claims: &id_token::IdTokenClaims) -> String {
    let base = claims
        .email
        .clone()
        .filter(|e| !e.is_empty())
        .unwrap_or_else(|| format!("google-{}", claims.sub));
    let mut name: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_+=,.@-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    if name.len() < 2 {
        name = "crossfed-session".to_string();
    }
    name
}

struct WebIdentitySource {
    role_arn: String,
    audience: String,
    id_tokens: IdTokenSource,
    session_name: Option<String>,
    duration: Option<Duration>,
    policy: Option<String>,
    region: Region,
    sts: OnceCell<aws_sdk_sts::Client>,
    transport: Transport,
    clock: Arc<dyn Clock>,
}

struct AwsSession(AwsCredentials);

impl Expiring for AwsSession {
    fn expires_at(&self) -> SystemTime {
        self.0.expiry().unwrap_or(SystemTime::UNIX_EPOCH)
    }
}

fn trust_policy_hint(token: &IdToken) -> String {
    let c = &token.claims;
    format!(
        "the role's trust policy must allow sts:AssumeRoleWithWebIdentity for Principal.Federated \"accounts.google.com\" with StringEquals on accounts.google.com:oaud = \"{}\" (token aud), accounts.google.com:aud = \"{}\" (token azp) and accounts.google.com:sub = \"{}\" (token sub); `crossfed aws trust-policy --audience {} --sub {}` prints one",
        c.aud,
        c.azp.as_deref().unwrap_or(&c.aud),
        c.sub,
        c.aud,
        c.sub
    )
}

fn assume_error(
    role_arn: &str,
    token: &IdToken,
    e: aws_sdk_sts::error::SdkError<
        aws_sdk_sts::operation::assume_role_with_web_identity::AssumeRoleWithWebIdentityError,
    >,
) -> Error {
    use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
    match &e {
        SdkError::ServiceError(se) => {
            let code = se.err().code().unwrap_or("Unknown").to_string();
            let msg = se.err().message().unwrap_or_default().to_string();
            let (hint, transient) = match code.as_str() {
                "AccessDenied" => (trust_policy_hint(token), false),
                "InvalidIdentityToken" => (
                    format!(
                        "AWS did not accept the token as a Google ID token (issuer accounts.google.com, audience \"{}\"); {}",
                        token.claims.aud,
                        trust_policy_hint(token)
                    ),
                    false,
                ),
                "ExpiredTokenException" => (
                    "the Google ID token expired before AWS saw it: check this machine's clock (NTP)".to_string(),
                    false,
                ),
                "IDPCommunicationError" | "Throttling" | "ServiceUnavailable" | "InternalFailure" => {
                    ("AWS STS had a temporary problem; retry later".to_string(), true)
                }
                _ => (String::new(), false),
            };
            let hint = if hint.is_empty() {
                String::new()
            } else {
                format!(". Hint: {hint}")
            };
            Error::failed_with(
                Step::AssumeRole,
                transient,
                format!("assuming {role_arn} was refused ({code}): {msg}{hint}"),
                e,
            )
        }
        _ => Error::failed_with(
            Step::AssumeRole,
            true,
            format!("AWS STS could not be reached to assume {role_arn}"),
            e,
        ),
    }
}

impl WebIdentitySource {
    async fn sts(&self) -> &aws_sdk_sts::Client {
        self.sts
            .get_or_init(|| async {
                let config = aws_config::defaults(BehaviorVersion::latest())
                    .region(self.region.clone())
                    .no_credentials()
                    .load()
                    .await;
                aws_sdk_sts::Client::new(&config)
            })
            .await
    }
}

impl TokenSource for WebIdentitySource {
    type Output = AwsSession;

    async fn fetch(&self) -> Result<AwsSession> {
        let token = id_token::fetch(&self.id_tokens, &self.transport, &self.audience)
            .instrument(tracing::info_span!("crossfed.id_token"))
            .await?;
        let session_name = self
            .session_name
            .clone()
            .unwrap_or_else(|| default_session_name(&token.claims));
        let out = self
            .sts()
            .await
            .assume_role_with_web_identity()
            .role_arn(&self.role_arn)
            .role_session_name(&session_name)
            .web_identity_token(token.jwt.expose())
            .set_duration_seconds(self.duration.map(|d| d.as_secs() as i32))
            .set_policy(self.policy.clone())
            .send()
            .instrument(tracing::info_span!("crossfed.assume_role", role_arn = %self.role_arn))
            .await
            .map_err(|e| assume_error(&self.role_arn, &token, e))?;
        let c = out.credentials().ok_or_else(|| {
            Error::failed(
                Step::AssumeRole,
                false,
                "AssumeRoleWithWebIdentity returned no credentials",
            )
        })?;
        let expiry = SystemTime::try_from(*c.expiration()).map_err(|e| {
            Error::failed_with(
                Step::AssumeRole,
                false,
                "AWS returned an invalid expiration",
                e,
            )
        })?;
        // A far-future expiration (a misbehaving endpoint) is capped like any lifetime.
        let expiry = capped_expiry(self.clock.now(), expiry);
        tracing::info!(role_arn = %self.role_arn, session_name, "assumed the AWS role");
        Ok(AwsSession(AwsCredentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_string()),
            Some(expiry),
            "GoogleWebIdentity",
        )))
    }
}

impl ProvideCredentials for WebIdentity {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            self.credentials().await.map_err(|e| match e {
                Error::InvalidConfig { .. } | Error::NotConfigured(_) => {
                    provider::error::CredentialsError::invalid_configuration(e)
                }
                other => provider::error::CredentialsError::provider_error(other),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::id_token::IdTokenClaims;
    use super::*;

    #[test]
    fn session_names_fit_aws_limits() {
        let c = IdTokenClaims {
            email: Some("reader@proj.iam.gserviceaccount.com".into()),
            sub: "1".into(),
            ..Default::default()
        };
        assert_eq!(
            default_session_name(&c),
            "reader@proj.iam.gserviceaccount.com"
        );
        let c = IdTokenClaims {
            sub: "111111111111111111111".into(),
            ..Default::default()
        };
        assert_eq!(default_session_name(&c), "google-111111111111111111111");
        let c = IdTokenClaims {
            email: Some(format!("{}@x y", "a".repeat(80))),
            ..Default::default()
        };
        let name = default_session_name(&c);
        assert_eq!(name.len(), 64);
        assert!(check_session_name(&name).is_ok());
        assert!(check_session_name("a").is_err());
        assert!(check_session_name("has space").is_err());
    }

    #[test]
    fn region_falls_back_to_aws_default_region() {
        let ctx = Context::new().with_env_vars([("AWS_DEFAULT_REGION", "eu-west-3")]);
        let p = WebIdentity::builder("arn:aws:iam::123456789012:role/r", "aud")
            .with_context(ctx)
            .build()
            .unwrap();
        assert_eq!(p.inner.source().region.as_ref(), "eu-west-3");
        let ctx = Context::new().with_env_vars([
            ("AWS_DEFAULT_REGION", "eu-west-3"),
            ("AWS_REGION", "ap-south-1"),
        ]);
        let p = WebIdentity::builder("arn:aws:iam::123456789012:role/r", "aud")
            .with_context(ctx)
            .build()
            .unwrap();
        assert_eq!(p.inner.source().region.as_ref(), "ap-south-1");
    }

    #[test]
    fn builder_validates() {
        let ok = WebIdentity::builder("arn:aws:iam::123456789012:role/r", "aud").build();
        assert!(ok.is_ok());
        for (arn, aud) in [
            ("r", "aud"),
            ("arn:aws:s3:::b", "aud"),
            ("arn:aws:iam::1:role/r", " "),
        ] {
            assert!(WebIdentity::builder(arn, aud).build().is_err(), "{arn}");
        }
        let long = WebIdentity::builder("arn:aws:iam::1:role/r", "a")
            .with_duration(Duration::from_secs(60))
            .build();
        assert!(long.is_err());
    }
}
