//! AWS credentials from a container credentials endpoint
//! (`AWS_CONTAINER_CREDENTIALS_FULL_URI` + `AWS_CONTAINER_AUTHORIZATION_TOKEN[_FILE]`), as
//! Lambda gives them where the environment holds no keys (SnapStart, container-credential
//! flavours). Read through the [`Context`] (its env, clock and HTTP client), cached until five
//! minutes before they expire.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{self, ProvideCredentials, error::CredentialsError};
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::Mutex;

use crate::context::Context;
use crate::error::{Error, Result, Step};
use crate::restore::Minted;
use crate::token_cache::Clock;
use crate::transport::{Transport, read_body, refuse_redirect, send};

/// The endpoint's URL.
pub const FULL_URI_ENV: &str = "AWS_CONTAINER_CREDENTIALS_FULL_URI";
/// The `Authorization` value the endpoint expects.
pub const AUTHORIZATION_TOKEN_ENV: &str = "AWS_CONTAINER_AUTHORIZATION_TOKEN";
/// A file holding that value (read on every fetch: it may rotate); wins over the variable.
pub const AUTHORIZATION_TOKEN_FILE_ENV: &str = "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE";

/// Credentials are fetched again this long before they expire.
const REFRESH_BEFORE: Duration = Duration::from_secs(300);
/// Longest accepted answer.
const MAX_BODY: usize = 64 * 1024;

/// The container credentials provider.
#[derive(Clone, Debug)]
pub(crate) struct ContainerCredentials(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    endpoint: String,
    token_env: Option<String>,
    token_file: Option<String>,
    transport: Transport,
    clock: Arc<dyn Clock>,
    cached: Mutex<Option<(Credentials, Minted)>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Answer {
    access_key_id: String,
    secret_access_key: String,
    token: Option<String>,
    expiration: Option<String>,
}

impl ContainerCredentials {
    /// The provider named by the context's environment, `None` when `FULL_URI` is unset. The
    /// URL must be https, or http to a loopback address or to the ECS/EKS agent addresses.
    pub(crate) fn from_context(ctx: &Context) -> Result<Option<Self>> {
        let Some(endpoint) = ctx.env_var(FULL_URI_ENV).filter(|v| !v.trim().is_empty()) else {
            return Ok(None);
        };
        check_endpoint(&endpoint)?;
        Ok(Some(ContainerCredentials(Arc::new(Inner {
            endpoint,
            token_env: ctx.env_var(AUTHORIZATION_TOKEN_ENV),
            token_file: ctx.env_var(AUTHORIZATION_TOKEN_FILE_ENV),
            transport: ctx.transport()?.with_body_limit(MAX_BODY),
            clock: ctx.clock().clone(),
            cached: Mutex::new(None),
        }))))
    }

    async fn credentials(&self) -> Result<Credentials> {
        let inner = &self.0;
        let mut cached = inner.cached.lock().await;
        let now = inner.clock.now();
        if let Some((c, _)) = cached.as_ref().filter(|(c, minted)| {
            fresh(c, now)
                && !minted.dropped_after_restore(&*inner.clock, "the container credentials")
        }) {
            return Ok(c.clone());
        }
        let fetched = inner.fetch(now).await?;
        *cached = Some((fetched.clone(), Minted::now(&*inner.clock)));
        Ok(fetched)
    }
}

/// Valid for more than [`REFRESH_BEFORE`] at `now` (no expiry: always).
fn fresh(c: &Credentials, now: SystemTime) -> bool {
    c.expiry().is_none_or(|at| {
        at.duration_since(now)
            .is_ok_and(|left| left > REFRESH_BEFORE)
    })
}

fn invalid(message: String) -> Error {
    Error::failed(Step::AwsIdentity, false, message)
}

fn check_endpoint(endpoint: &str) -> Result<()> {
    let url = url::Url::parse(endpoint).map_err(|e| {
        invalid(format!(
            "{FULL_URI_ENV} `{}` is not a URL: {e}",
            endpoint.chars().take(200).collect::<String>()
        ))
    })?;
    let allowed = match (url.scheme(), url.host()) {
        ("https", Some(_)) => true,
        ("http", Some(url::Host::Domain(host))) => host.eq_ignore_ascii_case("localhost"),
        ("http", Some(url::Host::Ipv4(ip))) => {
            ip.is_loopback() || [[169, 254, 170, 2], [169, 254, 170, 23]].contains(&ip.octets())
        }
        ("http", Some(url::Host::Ipv6(ip))) => {
            ip.is_loopback() || IpAddr::V6(ip) == "fd00:ec2::23".parse::<IpAddr>().unwrap()
        }
        _ => false,
    };
    if allowed {
        Ok(())
    } else {
        Err(invalid(format!(
            "{FULL_URI_ENV} `{}` must be https, or http to a loopback address or the ECS/EKS agent (169.254.170.2, 169.254.170.23, fd00:ec2::23)",
            url.as_str().chars().take(200).collect::<String>()
        )))
    }
}

impl Inner {
    fn authorization(&self) -> Result<Option<String>> {
        match &self.token_file {
            Some(path) => std::fs::read_to_string(path)
                .map(|t| Some(t.trim().to_string()))
                .map_err(|e| {
                    Error::failed_with(
                        Step::AwsIdentity,
                        false,
                        format!("cannot read {AUTHORIZATION_TOKEN_FILE_ENV} `{path}`"),
                        e,
                    )
                }),
            None => Ok(self.token_env.clone()),
        }
    }

    async fn fetch(&self, now: SystemTime) -> Result<Credentials> {
        let service = format!("the container credentials endpoint {}", self.endpoint);
        let authorization = self.authorization()?;
        let resp = send(self.transport.retry_policy(), Step::AwsIdentity, || {
            let request = self.transport.client().get(&self.endpoint);
            match &authorization {
                Some(token) => request.header(http::header::AUTHORIZATION, token),
                None => request,
            }
        })
        .await
        .map_err(|e| {
            Error::failed_with(
                Step::AwsIdentity,
                true,
                format!("{service} ({FULL_URI_ENV}) is unreachable"),
                e,
            )
        })?;
        let status = resp.status();
        refuse_redirect(&resp, Step::AwsIdentity, &service)?;
        let body = read_body(resp, MAX_BODY, Step::AwsIdentity, &service).await?;
        if status == http::StatusCode::UNAUTHORIZED || status == http::StatusCode::FORBIDDEN {
            let which = if self.token_file.is_some() {
                AUTHORIZATION_TOKEN_FILE_ENV
            } else {
                AUTHORIZATION_TOKEN_ENV
            };
            return Err(invalid(format!(
                "{service} refused the authorization token (HTTP {}): check {which}",
                status.as_u16()
            )));
        }
        if !status.is_success() {
            return Err(Error::failed(
                Step::AwsIdentity,
                status.is_server_error(),
                format!("{service} answered HTTP {}", status.as_u16()),
            ));
        }
        let answer: Answer = serde_json::from_str(&body).map_err(|e| {
            Error::failed_with(
                Step::AwsIdentity,
                false,
                format!("{service} answered with an unexpected body"),
                e,
            )
        })?;
        let expiry = answer
            .expiration
            .as_deref()
            .map(|text| {
                OffsetDateTime::parse(text, &Rfc3339)
                    .ok()
                    .and_then(|t| {
                        SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(
                            u64::try_from(t.unix_timestamp()).ok()?,
                        ))
                    })
                    .ok_or_else(|| invalid(format!("{service} answered an invalid Expiration")))
            })
            .transpose()?;
        if expiry.is_some_and(|at| at <= now) {
            return Err(invalid(format!("{service} answered expired credentials")));
        }
        Ok(Credentials::new(
            answer.access_key_id,
            answer.secret_access_key,
            answer.token,
            expiry,
            "ContainerCredentials",
        ))
    }
}

impl ProvideCredentials for ContainerCredentials {
    fn provide_credentials<'a>(&'a self) -> provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        provider::future::ProvideCredentials::new(async move {
            self.credentials().await.map_err(|e| {
                CredentialsError::provider_error(crate::error::ErrorChain(&e).to_string())
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_https_or_local_agents_only() {
        for ok in [
            "https://creds.example/v1",
            "http://127.0.0.1:9001/2021-04-23/credentials",
            "http://localhost:9001/x",
            "http://[::1]:9001/x",
            "http://169.254.170.2/v2/credentials/id",
            "http://169.254.170.23/v1/credentials",
            "http://[fd00:ec2::23]/v1/credentials",
        ] {
            assert!(check_endpoint(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://evil.example/creds",
            "http://10.0.0.1/creds",
            "http://169.254.169.254/latest",
            "ftp://127.0.0.1/x",
            "not a url",
        ] {
            let e = check_endpoint(bad).unwrap_err().to_string();
            assert!(e.contains(FULL_URI_ENV), "{bad}: {e}");
        }
    }

    #[test]
    fn refreshed_five_minutes_before_expiry() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let at =
            |secs| Credentials::new("a", "b", None, Some(now + Duration::from_secs(secs)), "t");
        assert!(fresh(&at(301), now));
        assert!(!fresh(&at(300), now));
        assert!(!fresh(&at(0), now));
        assert!(fresh(&Credentials::new("a", "b", None, None, "t"), now));
    }
}
