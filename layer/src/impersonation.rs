//! Service-account impersonation: IAM Credentials `generateAccessToken`.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use url::Url;

use crate::error::{Error, Result, Step};
use crate::google_error;
use crate::secret::Secret;
use crate::token::Token;
use crate::transport::{self, RetryPolicy};

/// Default lifetime of impersonated tokens.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);

#[derive(Serialize)]
struct Request<'a> {
    scope: &'a [String],
    lifetime: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Response {
    access_token: String,
    expire_time: String,
}

/// Calls `generateAccessToken` with the federated token.
pub(crate) async fn generate_access_token(
    client: &reqwest::Client,
    retry: &RetryPolicy,
    url: &Url,
    federated: &Secret,
    scopes: &[String],
    lifetime: Duration,
) -> Result<Token> {
    let body = Request {
        scope: scopes,
        lifetime: format!("{}s", lifetime.as_secs()),
    };
    let resp = transport::send(retry, Step::Impersonation, || {
        client
            .post(url.clone())
            .bearer_auth(federated.expose())
            .json(&body)
    })
    .await?;
    let status = resp.status();
    let text = resp.text().await.map_err(|e| {
        Error::failed_with(
            Step::Impersonation,
            true,
            "reading the IAM response failed",
            e,
        )
    })?;
    if !status.is_success() {
        return Err(google_error::from_response(
            Step::Impersonation,
            status.as_u16(),
            &text,
        ));
    }
    let parsed: Response = serde_json::from_str(&text).map_err(|e| {
        Error::failed_with(
            Step::Impersonation,
            false,
            "IAM Credentials answered with an unexpected body",
            e,
        )
    })?;
    let expires_at = OffsetDateTime::parse(&parsed.expire_time, &Rfc3339).map_err(|e| {
        Error::failed_with(
            Step::Impersonation,
            false,
            format!(
                "IAM Credentials returned an invalid expireTime `{}`",
                parsed.expire_time
            ),
            e,
        )
    })?;
    Ok(Token {
        value: Secret::new(parsed.access_token),
        expires_at: SystemTime::from(expires_at),
    })
}
