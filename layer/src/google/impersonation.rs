//! Service-account impersonation: IAM Credentials `generateAccessToken`.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use url::Url;

use crate::error::{Error, Result, Step};
use crate::secret::Secret;
use crate::token::{Token, capped_expiry};
use crate::transport::Transport;

/// Default lifetime of impersonated tokens.
pub(crate) const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);

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
    transport: &Transport,
    url: &Url,
    federated: &Secret,
    scopes: &[String],
    lifetime: Duration,
    now: SystemTime,
) -> Result<Token> {
    let body = Request {
        scope: scopes,
        lifetime: format!("{}s", lifetime.as_secs()),
    };
    let parsed: Response = transport
        .send_json(Step::Impersonation, "IAM Credentials", |http| {
            http.post(url.clone())
                .bearer_auth(federated.expose())
                .json(&body)
        })
        .await?;
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
    // RFC 3339 stops at year 9999, which SystemTime holds; cap it like any lifetime.
    let expires_at = SystemTime::UNIX_EPOCH
        .checked_add(Duration::from_secs(
            u64::try_from(expires_at.unix_timestamp()).unwrap_or(0),
        ))
        .unwrap_or(SystemTime::UNIX_EPOCH);
    if expires_at <= now {
        // Google's clock and ours disagree (or the sandbox clock jumped): use it once, the
        // cache asks again on the next call.
        tracing::warn!(
            expire_time = %parsed.expire_time,
            "IAM Credentials returned a token that is already expired by this machine's clock: check the clock (NTP)"
        );
    }
    Ok(Token {
        value: Secret::new(parsed.access_token),
        expires_at: capped_expiry(now, expires_at),
    })
}
