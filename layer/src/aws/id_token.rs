//! Google ID tokens for AWS: from the metadata server of the Google Cloud workload, or from
//! IAM Credentials `generateIdToken` for a service account with any Google credentials
//! (including crossfed's own federated ones, for AWS → Google → AWS chains).

use std::time::{Duration, SystemTime};

use google_cloud_auth::credentials::{CacheableResource, Credentials as GoogleCredentials};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::context::Context;
use crate::error::{Error, Result, Step};
use crate::secret::Secret;
use crate::transport::{Transport, send};

/// The metadata server host, overridable with `GCE_METADATA_HOST` (Google's convention).
pub const METADATA_HOST_ENV: &str = "GCE_METADATA_HOST";
const DEFAULT_METADATA_HOST: &str = "metadata.google.internal";

/// Where Google ID tokens come from.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum IdTokenSource {
    /// The metadata server (Compute Engine, Cloud Run, GKE, Cloud Functions).
    Metadata {
        /// `host[:port]`; default `metadata.google.internal`.
        host: String,
    },
    /// IAM Credentials `generateIdToken` for `service_account`, authorised by `credentials`.
    IamCredentials {
        /// Credentials allowed to act as the service account (`roles/iam.serviceAccountOpenIdTokenCreator`).
        credentials: GoogleCredentials,
        /// E-mail of the service account whose identity AWS will see.
        service_account: String,
        /// Base URL, default `https://iamcredentials.googleapis.com`.
        endpoint: Url,
    },
}

impl IdTokenSource {
    /// The metadata server at `GCE_METADATA_HOST` (read through `ctx`), else
    /// `metadata.google.internal`.
    pub fn metadata_from_env(ctx: &Context) -> Self {
        let host = ctx
            .env_var(METADATA_HOST_ENV)
            .unwrap_or_else(|| DEFAULT_METADATA_HOST.to_string());
        IdTokenSource::Metadata { host }
    }

    /// `generateIdToken` on the public endpoint.
    pub fn iam_credentials(
        credentials: impl Into<GoogleCredentials>,
        service_account: impl Into<String>,
    ) -> Self {
        IdTokenSource::IamCredentials {
            credentials: credentials.into(),
            service_account: service_account.into(),
            endpoint: Url::parse("https://iamcredentials.googleapis.com").expect("static URL"),
        }
    }
}

/// The claims AWS compares with the trust policy.
#[derive(Clone, Debug, Default, Deserialize)]
#[non_exhaustive]
pub struct IdTokenClaims {
    /// `aud`: the requested audience (`accounts.google.com:oaud`).
    #[serde(default)]
    pub aud: String,
    /// `azp`: the service account's unique id (`accounts.google.com:aud`).
    #[serde(default)]
    pub azp: Option<String>,
    /// `sub`: the service account's unique id (`accounts.google.com:sub`).
    #[serde(default)]
    pub sub: String,
    /// `email`, when included.
    #[serde(default)]
    pub email: Option<String>,
    /// Expiry, seconds since the epoch.
    #[serde(default)]
    pub exp: u64,
}

impl IdTokenClaims {
    /// When the token expires.
    pub fn expires_at(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(self.exp)
    }
}

/// A Google ID token and its (unverified) claims: AWS verifies the signature.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct IdToken {
    /// The JWT.
    pub jwt: Secret,
    /// Its claims.
    pub claims: IdTokenClaims,
}

pub(crate) fn decode_claims(jwt: &str) -> Result<IdTokenClaims> {
    use base64::Engine as _;
    let invalid = |why: &str| {
        Error::failed(
            Step::IdToken,
            false,
            format!("the Google ID token is malformed: {why}"),
        )
    };
    let payload = jwt.split('.').nth(1).ok_or_else(|| invalid("not a JWT"))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| invalid("payload is not base64url"))?;
    serde_json::from_slice(&bytes).map_err(|_| invalid("payload is not JSON claims"))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GenerateIdTokenRequest<'a> {
    audience: &'a str,
    include_email: bool,
}

#[derive(Deserialize)]
struct GenerateIdTokenResponse {
    token: String,
}

/// Fetches an ID token for `audience`.
pub(crate) async fn fetch(
    source: &IdTokenSource,
    transport: &Transport,
    audience: &str,
) -> Result<IdToken> {
    let jwt = match source {
        IdTokenSource::Metadata { host } => {
            let url = format!(
                "http://{host}/computeMetadata/v1/instance/service-accounts/default/identity"
            );
            let query = [
                ("audience", audience),
                ("format", "full"),
                ("include_email", "true"),
            ];
            let resp = send(transport.retry_policy(), Step::IdToken, || {
                transport
                    .client()
                    .get(&url).query(&query).header("Metadata-Flavor", "Google")
            })
            .await
            .map_err(|e| match e {
                Error::ProviderFailed { source, .. } => Error::ProviderFailed {
                    step: Step::IdToken,
                    message: format!(
                        "the Google metadata server at {host} is unreachable: run on Google Cloud (Compute Engine, Cloud Run, GKE), set {METADATA_HOST_ENV}, or use a service account with IAM Credentials instead"
                    ),
                    transient: true,
                    source,
                },
                other => other,
            })?;
            let status = resp.status();
            let body = resp.text().await.map_err(|e| {
                Error::failed_with(
                    Step::IdToken,
                    true,
                    "reading the metadata server response failed",
                    e,
                )
            })?;
            if !status.is_success() {
                let snippet: String = body.chars().take(200).collect();
                return Err(Error::failed(
                    Step::IdToken,
                    status.is_server_error(),
                    format!(
                        "the metadata server refused the identity request (HTTP {status}): {snippet}"
                    ),
                ));
            }
            body.trim().to_string()
        }
        IdTokenSource::IamCredentials {
            credentials,
            service_account,
            endpoint,
        } => {
            let headers = match credentials.headers(http::Extensions::new()).await {
                Ok(CacheableResource::New { data, .. }) => data,
                Ok(CacheableResource::NotModified) => {
                    return Err(Error::failed(
                        Step::IdToken,
                        false,
                        "credentials returned no headers",
                    ));
                }
                Err(e) => {
                    return Err(Error::failed_with(
                        Step::IdToken,
                        e.is_transient(),
                        "the Google credentials for generateIdToken failed",
                        e,
                    ));
                }
            };
            let url = endpoint
                .join(&format!(
                    "v1/projects/-/serviceAccounts/{service_account}:generateIdToken"
                ))
                .map_err(|e| {
                    Error::invalid(
                        "service_account",
                        format!("cannot form the generateIdToken URL: {e}"),
                    )
                })?;
            let body = GenerateIdTokenRequest {
                audience,
                include_email: true,
            };
            let parsed: GenerateIdTokenResponse = transport
                .send_json(Step::IdToken, "IAM Credentials", |http| {
                    http.post(url.clone()).headers(headers.clone()).json(&body)
                })
                .await?;
            parsed.token
        }
    };
    let claims = decode_claims(&jwt)?;
    Ok(IdToken {
        jwt: Secret::new(jwt),
        claims,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    #[test]
    fn decodes_claims_without_verifying() {
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let jwt = format!(
            "{}.{}.sig",
            b64(r#"{"alg":"RS256"}"#),
            b64(
                r#"{"aud":"a","azp":"1","sub":"1","email":"sa@p.iam.gserviceaccount.com","exp":2000000000}"#
            )
        );
        let c = decode_claims(&jwt).unwrap();
        assert_eq!((c.aud.as_str(), c.sub.as_str()), ("a", "1"));
        assert_eq!(c.email.as_deref(), Some("sa@p.iam.gserviceaccount.com"));
        for bad in ["", "abc", "a.!!!.c", &format!("a.{}.c", b64("[1]"))] {
            assert!(decode_claims(bad).is_err(), "{bad}");
        }
    }
}
