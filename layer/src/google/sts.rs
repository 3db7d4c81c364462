//! Google STS token exchange (RFC 8693) of the AWS subject token for a federated token.

use std::time::{Duration, SystemTime};

use serde::Deserialize;
use url::Url;

use crate::error::{Result, Step};
use crate::secret::Secret;
use crate::token::Token;
use crate::transport::Transport;

const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const REQUESTED_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
const SUBJECT_TOKEN_TYPE: &str = "urn:ietf:params:aws:token-type:aws4_request";

/// One token-exchange request.
pub(crate) struct Exchange<'a> {
    pub token_url: &'a Url,
    pub audience: &'a str,
    pub scope: &'a str,
    pub subject_token: &'a Secret,
    pub impersonating: bool,
    pub config_lifetime: bool,
}

#[derive(Deserialize)]
struct Response {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// The `x-goog-api-client` metrics header Google's libraries send for AWS sources.
pub(crate) fn metrics_header(impersonating: bool, config_lifetime: bool) -> String {
    format!(
        "gl-rust/{} crossfed/{} google-byoid-sdk source/aws sa-impersonation/{impersonating} config-lifetime/{config_lifetime}",
        env!("CARGO_PKG_RUST_VERSION"),
        env!("CARGO_PKG_VERSION"),
    )
}

/// Exchanges the subject token at Google STS.
pub(crate) async fn exchange(
    transport: &Transport,
    req: Exchange<'_>,
    now: impl Fn() -> SystemTime,
) -> Result<Token> {
    let form = [
        ("grant_type", GRANT_TYPE),
        ("audience", req.audience),
        ("scope", req.scope),
        ("requested_token_type", REQUESTED_TOKEN_TYPE),
        ("subject_token_type", SUBJECT_TOKEN_TYPE),
        ("subject_token", req.subject_token.expose()),
    ];
    let metrics = metrics_header(req.impersonating, req.config_lifetime);
    let parsed: Response = transport
        .send_json(Step::Sts, "Google STS", |http| {
            http.post(req.token_url.clone())
                .header("x-goog-api-client", &metrics)
                .form(&form)
        })
        .await?;
    let expires_in = Duration::from_secs(parsed.expires_in.unwrap_or(3600));
    Ok(Token {
        value: Secret::new(parsed.access_token),
        expires_at: now() + expires_in,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Like Google's libraries: `gl-rust/<compiler version> auth/<library version> ...`.
    #[test]
    fn metrics_header_names_the_compiler_and_the_auth_library() {
        let out = std::process::Command::new("rustc")
            .arg("--version")
            .output()
            .expect("rustc on PATH");
        let version = String::from_utf8(out.stdout).unwrap();
        let version = version.split_whitespace().nth(1).unwrap().to_string();
        let header = metrics_header(true, false);
        assert!(
            header.starts_with(&format!("gl-rust/{version} auth/{} ", env!("CARGO_PKG_VERSION"))),
            "{header}"
        );
        assert!(
            header.ends_with("google-byoid-sdk source/aws sa-impersonation/true config-lifetime/false"),
            "{header}"
        );
    }
}
