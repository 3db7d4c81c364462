//! The two calls doctor makes itself (`--fetch-provider`, the test call) under the library's
//! transport rules: only allowed Google endpoints (loopback only with
//! `CROSSFED_ALLOW_LOCAL_ENDPOINTS=1`), no redirects, bounded answers.

use serde_json::Value;

/// Most bytes of an answer doctor reads.
const BODY_LIMIT: usize = 1 << 20;

/// GETs `url` with the bearer `token`: the status and the JSON body (`Null` if not JSON).
/// Errors say what went wrong, never the token.
pub async fn get_json(url: &str, token: &str) -> Result<(u16, Value), String> {
    let client = crossfed::Context::new()
        .http_client()
        .map_err(|e| e.to_string())?;
    let mut resp = client
        .get(url)
        .bearer_auth(token)
        .timeout(std::time::Duration::from_secs(20))
        .send()
        .await
        .map_err(|e| format!("{} not reachable: {e}", host_of(url)))?;
    let status = resp.status();
    if status.is_redirection() {
        return Err(format!(
            "{} answered with a redirect (HTTP {}); doctor does not follow redirects with a token",
            host_of(url),
            status.as_u16()
        ));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > BODY_LIMIT {
            return Err(format!(
                "{} answered with more than {BODY_LIMIT} bytes",
                host_of(url)
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((
        status.as_u16(),
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    ))
}

fn host_of(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| "the endpoint".into())
}
