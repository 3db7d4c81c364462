//! Google STS token exchange (RFC 8693) of the AWS subject token for a federated token.

use std::time::{Duration, SystemTime};

use serde::Deserialize;
use url::Url;

use crate::error::{Error, Result, Step};
use crate::secret::Secret;
use crate::token::{MAX_LIFETIME, Token, expiry_after};
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
pub(crate) struct Response {
    access_token: String,
    #[serde(default)]
    expires_in: Option<serde_json::Number>,
}

/// The `x-goog-api-client` metrics header Google's libraries send for AWS sources:
/// the compiler that built crossfed and the auth library's version.
pub(crate) fn metrics_header(impersonating: bool, config_lifetime: bool) -> String {
    format!(
        "gl-rust/{} auth/{} google-byoid-sdk source/aws sa-impersonation/{impersonating} config-lifetime/{config_lifetime}",
        env!("CROSSFED_RUSTC_VERSION"),
        env!("CARGO_PKG_VERSION"),
    )
}

/// The token of an STS answer: `expires_in` is required and positive (as Google's Python
/// and Go libraries require), and capped at 12 hours.
pub(crate) fn token_from(parsed: Response, now: SystemTime) -> Result<Token> {
    let invalid =
        |why: String| Error::failed(Step::Sts, false, format!("Google STS answered {why}"));
    let Some(expires_in) = parsed.expires_in else {
        return Err(invalid(
            "without `expires_in`; a token of unknown lifetime is not used".into(),
        ));
    };
    let secs = match (expires_in.as_u64(), expires_in.as_f64()) {
        (Some(secs), _) if secs > 0 => secs,
        // Whole seconds of a fractional or out-of-range number, within the cap.
        (None, Some(f)) if f >= 1.0 => f.min(MAX_LIFETIME.as_secs_f64()) as u64,
        _ => {
            return Err(invalid(format!(
                "with `expires_in` {expires_in}; expected a positive number of seconds"
            )));
        }
    };
    if parsed.access_token.is_empty() {
        return Err(invalid("with an empty `access_token`".into()));
    }
    Ok(Token {
        value: Secret::new(parsed.access_token),
        expires_at: expiry_after(now, Duration::from_secs(secs)),
    })
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
    token_from(parsed, now())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(json: &str) -> Response {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn expires_in_is_required_positive_and_capped() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let ok = token_from(answer(r#"{"access_token":"a","expires_in":3599}"#), now).unwrap();
        assert_eq!(ok.expires_at, now + Duration::from_secs(3599));
        for bad in [
            r#"{"access_token":"a"}"#,
            r#"{"access_token":"a","expires_in":0}"#,
            r#"{"access_token":"a","expires_in":-5}"#,
            r#"{"access_token":"","expires_in":60}"#,
        ] {
            assert!(token_from(answer(bad), now).is_err(), "{bad}");
        }
        for huge in [
            r#"{"access_token":"a","expires_in":18446744073709551615}"#,
            r#"{"access_token":"a","expires_in":1e300}"#,
        ] {
            let t = token_from(answer(huge), now).unwrap();
            assert_eq!(t.expires_at, now + MAX_LIFETIME, "{huge}");
        }
    }

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
            header.starts_with(&format!(
                "gl-rust/{version} auth/{} ",
                env!("CARGO_PKG_VERSION")
            )),
            "{header}"
        );
        assert!(
            header.ends_with(
                "google-byoid-sdk source/aws sa-impersonation/true config-lifetime/false"
            ),
            "{header}"
        );
    }
}
