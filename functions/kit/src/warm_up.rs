//! A bounded Google token warm-up at init, so the first invocation makes no auth call.

use std::future::Future;
use std::time::Duration;

use crate::error_chain::chain;

/// How long init waits for the first token: well inside Lambda's 10 s init phase, so a slow
/// or unreachable Google never turns into an init timeout.
pub const TIMEOUT: Duration = Duration::from_secs(4);

/// Fetches a token (the configuration fetch, STS exchange and impersonation) within `limit`.
/// A failure is logged, not returned: the first invocation retries and reports it.
pub async fn warm_up(credentials: &crossfed::google::Credentials, limit: Duration) -> bool {
    match tokio::time::timeout(limit, credentials.token()).await {
        Ok(Ok(_)) => true,
        Ok(Err(e)) => {
            tracing::warn!(
                error = %chain(&e),
                "could not obtain a Google token at start-up; will retry per invocation"
            );
            false
        }
        Err(_) => {
            tracing::warn!(
                timeout_ms = limit.as_millis() as u64,
                "no Google token within the start-up limit; will retry per invocation"
            );
            false
        }
    }
}

/// Runs `work` (client and channel construction) concurrently with the warm-up
/// ([`TIMEOUT`]), returning `work`'s output once both are done.
pub async fn alongside<T>(
    credentials: &crossfed::google::Credentials,
    work: impl Future<Output = T>,
) -> T {
    let (_, out) = tokio::join!(warm_up(credentials, TIMEOUT), work);
    out
}
