//! Where the credential configuration comes from: SSM Parameter Store (name or ARN, String
//! or SecureString), a file, or inline JSON. SSM values are cached with a TTL and the last
//! good value is served when SSM fails or holds an invalid update. The TTL runs on the
//! injected wall clock, like the token cache, so "picked up within 5 minutes" also holds for
//! a Lambda sandbox that was frozen in between (the monotonic clock stops while frozen).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{Mutex, OnceCell};
use tracing::Instrument;

use super::aws_identity::AwsIdentityResolver;
use super::config::{ExternalAccountConfig, ParseOptions};
use crate::context::Context;
use crate::error::{Error, Result, Step};
use crate::token_cache::Clock;

/// Env var naming the SSM parameter that holds the configuration.
pub const CONFIG_PARAMETER_ENV: &str = "CROSSFED_CONFIG_PARAMETER";
/// The ADC convention: path of a credential configuration file.
pub const CREDENTIALS_FILE_ENV: &str = "GOOGLE_APPLICATION_CREDENTIALS";
/// Default time an SSM value is reused before it is fetched again.
pub const DEFAULT_SSM_TTL: Duration = Duration::from_secs(300);

/// A source of the `external_account` configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigSource {
    /// An SSM parameter name (`/crossfed/config`) or ARN.
    Ssm(String),
    /// A JSON file.
    File(PathBuf),
    /// The JSON itself.
    Inline(String),
}

impl ConfigSource {
    /// `CROSSFED_CONFIG_PARAMETER` (SSM), else `GOOGLE_APPLICATION_CREDENTIALS` (file), as
    /// `ctx` sees the environment.
    pub fn from_env(ctx: &Context) -> Result<Self> {
        let get = |k: &str| ctx.env_var(k);
        if let Some(name) = get(CONFIG_PARAMETER_ENV) {
            return Ok(ConfigSource::Ssm(name));
        }
        if let Some(path) = get(CREDENTIALS_FILE_ENV) {
            return Ok(ConfigSource::File(PathBuf::from(path)));
        }
        Err(Error::NotConfigured(format!(
            "set {CONFIG_PARAMETER_ENV} to the SSM parameter holding the configuration written by `gcloud iam workload-identity-pools create-cred-config --aws`, or {CREDENTIALS_FILE_ENV} to its file"
        )))
    }

    fn check(&self) -> Result<()> {
        if let ConfigSource::Ssm(name) = self {
            let valid =
                name.starts_with("arn:") && name.contains(":ssm:") && name.contains(":parameter/")
                    || !name.starts_with("arn:")
                        && name.len() <= 2048
                        && name
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"/_.-".contains(&b));
            if !valid {
                return Err(Error::invalid(
                    CONFIG_PARAMETER_ENV,
                    format!(
                        "`{name}` is not an SSM parameter name (e.g. /crossfed/google-config) or ARN (arn:aws:ssm:REGION:ACCOUNT:parameter/NAME)"
                    ),
                ));
            }
        }
        Ok(())
    }
}

struct CachedValue {
    fresh_until: SystemTime,
    raw: String,
    config: Arc<ExternalAccountConfig>,
}

/// Loads, validates and caches the configuration.
pub(crate) struct ConfigLoader {
    source: ConfigSource,
    options: ParseOptions,
    ttl: Duration,
    clock: Arc<dyn Clock>,
    ssm: OnceCell<aws_sdk_ssm::Client>,
    cached: Mutex<Option<CachedValue>>,
}

impl ConfigLoader {
    pub fn new(
        source: ConfigSource,
        options: ParseOptions,
        ttl: Duration,
        ssm: Option<aws_sdk_ssm::Client>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        source.check()?;
        let loader = ConfigLoader {
            source,
            options,
            ttl,
            clock,
            ssm: OnceCell::new_with(ssm),
            cached: Mutex::new(None),
        };
        // Local sources are read and validated now, so mistakes show at start-up.
        let eager = match &loader.source {
            ConfigSource::Inline(json) => Some(json.clone()),
            ConfigSource::File(path) => Some(read_file(path)?),
            ConfigSource::Ssm(_) => None,
        };
        if let Some(raw) = eager {
            let config = Arc::new(ExternalAccountConfig::from_json_with(
                &raw,
                &loader.options,
            )?);
            *loader.cached.try_lock().expect("new loader is unshared") = Some(CachedValue {
                fresh_until: SystemTime::UNIX_EPOCH,
                raw,
                config,
            });
        }
        Ok(loader)
    }

    pub fn source(&self) -> &ConfigSource {
        &self.source
    }

    /// The current configuration.
    pub async fn load(&self, aws: &AwsIdentityResolver) -> Result<Arc<ExternalAccountConfig>> {
        let ConfigSource::Ssm(name) = &self.source else {
            let cached = self.cached.lock().await;
            return Ok(cached
                .as_ref()
                .expect("local config loaded at construction")
                .config
                .clone());
        };
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref()
            && self.clock.now() < c.fresh_until
        {
            return Ok(c.config.clone());
        }
        let fetched = self
            .fetch_ssm(name, aws)
            .instrument(tracing::info_span!("crossfed.config", parameter = %name))
            .await
            .and_then(|raw| {
                if let Some(c) = cached.as_ref().filter(|c| c.raw == raw) {
                    return Ok((raw, c.config.clone()));
                }
                let config = ExternalAccountConfig::from_json_with(&raw, &self.options)
                    .map_err(|e| annotate(e, name))?;
                Ok((raw, Arc::new(config)))
            });
        match (fetched, cached.as_mut()) {
            (Ok((raw, config)), _) => {
                *cached = Some(CachedValue {
                    fresh_until: after(self.clock.now(), self.ttl),
                    raw,
                    config: config.clone(),
                });
                Ok(config)
            }
            (Err(e), Some(last_good)) => {
                tracing::warn!(error = %crate::error::ErrorChain(&e), parameter = %name, "serving the last good credential configuration");
                // Try again after a short pause rather than on every call.
                last_good.fresh_until =
                    after(self.clock.now(), self.ttl.min(Duration::from_secs(30)));
                Ok(last_good.config.clone())
            }
            (Err(e), None) => Err(e),
        }
    }

    async fn fetch_ssm(&self, name: &str, aws: &AwsIdentityResolver) -> Result<String> {
        let started = Instant::now();
        let client = self
            .ssm
            .get_or_try_init(|| async {
                let identity = aws.get().await?;
                Ok::<_, Error>(aws_sdk_ssm::Client::new(&identity.sdk_config().await))
            })
            .await?;
        let out = client
            .get_parameter()
            .name(name)
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| ssm_error(name, e))?;
        let value = out.parameter().and_then(|p| p.value()).ok_or_else(|| {
            Error::failed(
                Step::Config,
                false,
                format!("SSM parameter `{name}` has no value"),
            )
        })?;
        tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "fetched configuration from SSM"
        );
        Ok(value.to_string())
    }
}

/// `now + ttl`, saturating far in the future instead of overflowing.
fn after(now: SystemTime, ttl: Duration) -> SystemTime {
    now.checked_add(ttl)
        .unwrap_or(now + Duration::from_secs(100 * 365 * 24 * 3600))
}

fn annotate(e: Error, name: &str) -> Error {
    match e {
        Error::InvalidConfig { field, message } => Error::InvalidConfig {
            field,
            message: format!("{message} (in SSM parameter `{name}`)"),
        },
        other => other,
    }
}

fn read_file(path: &PathBuf) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| {
        Error::failed_with(
            Step::Config,
            false,
            format!(
                "cannot read the credential configuration file `{}` ({CREDENTIALS_FILE_ENV})",
                path.display()
            ),
            e,
        )
    })
}

fn ssm_error(
    name: &str,
    e: aws_sdk_ssm::error::SdkError<aws_sdk_ssm::operation::get_parameter::GetParameterError>,
) -> Error {
    use aws_sdk_ssm::error::{ProvideErrorMetadata, SdkError};
    let (transient, detail) = match &e {
        SdkError::ServiceError(se) => {
            let code = se.err().code().unwrap_or("unknown");
            let msg = se.err().message().unwrap_or_default();
            let hint = match code {
                "ParameterNotFound" => " — check the name and the region (AWS_REGION)",
                "AccessDeniedException" => {
                    " — the role needs ssm:GetParameter on this parameter (and kms:Decrypt for a SecureString)"
                }
                _ => "",
            };
            let transient = matches!(code, "ThrottlingException" | "InternalServerError");
            (transient, format!("{code}: {msg}{hint}"))
        }
        // A body the SDK cannot parse (a proxy, or moto's XML auth errors): keep the status.
        SdkError::ResponseError(r) => {
            let status = r.raw().status().as_u16();
            let hint = if status == 403 {
                " (access denied) — the role needs ssm:GetParameter on this parameter"
            } else {
                ""
            };
            (
                status >= 500 || status == 429,
                format!("HTTP {status}{hint}"),
            )
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => {
            (true, "SSM could not be reached".to_string())
        }
        other => (true, other.to_string()),
    };
    Error::failed_with(
        Step::Config,
        transient,
        format!("reading SSM parameter `{name}` failed: {detail}"),
        e,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_env_prefers_ssm_then_file() {
        let env = Context::new().with_env_vars([
            (CONFIG_PARAMETER_ENV, "/a"),
            (CREDENTIALS_FILE_ENV, "/f.json"),
        ]);
        assert_eq!(
            ConfigSource::from_env(&env).unwrap(),
            ConfigSource::Ssm("/a".into())
        );
        let env = Context::new().with_env_vars([(CREDENTIALS_FILE_ENV, "/f.json")]);
        assert_eq!(
            ConfigSource::from_env(&env).unwrap(),
            ConfigSource::File("/f.json".into())
        );
        let err = ConfigSource::from_env(&Context::new().with_env_vars::<_, String, String>([]))
            .unwrap_err();
        assert!(matches!(err, Error::NotConfigured(_)), "{err}");
        assert!(err.to_string().contains(CONFIG_PARAMETER_ENV));
    }

    fn loader(source: ConfigSource) -> Result<ConfigLoader> {
        let clock = Arc::new(crate::token_cache::SystemClock);
        ConfigLoader::new(
            source,
            ParseOptions::default(),
            DEFAULT_SSM_TTL,
            None,
            clock,
        )
    }

    #[test]
    fn rejects_bad_parameter_names_and_missing_files() {
        let bad = ConfigSource::Ssm("has spaces".into());
        assert!(loader(bad).is_err());
        let missing = ConfigSource::File("/nonexistent/crossfed.json".into());
        let err = loader(missing).err().unwrap();
        assert!(
            err.to_string().contains("/nonexistent/crossfed.json"),
            "{err}"
        );
        let arn =
            ConfigSource::Ssm("arn:aws:ssm:us-east-1:123456789012:parameter/crossfed/c".into());
        assert!(loader(arn).is_ok());
    }
}
