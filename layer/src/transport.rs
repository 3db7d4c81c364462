//! The shared HTTP client and its retry policy: one pooled client (HTTP/2 where offered),
//! connect and total timeouts, jittered exponential back-off on 5xx, 429 and connect errors.

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use reqwest::{RequestBuilder, Response, StatusCode};

use crate::error::{Error, Result, Step};

/// How often and how patiently transient HTTP failures are retried.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Total attempts, including the first.
    pub max_attempts: usize,
    /// First back-off delay (before jitter).
    pub min_delay: Duration,
    /// Largest back-off delay.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            min_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
        }
    }
}

/// Connect and total timeouts for Google calls.
#[derive(Clone, Debug)]
pub struct Timeouts {
    /// TCP + TLS connect timeout.
    pub connect: Duration,
    /// Whole-request timeout.
    pub total: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(5),
            total: Duration::from_secs(30),
        }
    }
}

/// Builds the shared client. Needs no async runtime.
pub(crate) fn build_client(timeouts: &Timeouts) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(timeouts.connect)
        .timeout(timeouts.total)
        .pool_idle_timeout(Duration::from_secs(90))
        .user_agent(concat!("crossfed/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::failed_with(Step::Config, false, "cannot build the HTTP client", e))
}

enum Attempt {
    Status(Response),
    Network(reqwest::Error),
}

fn retryable_status(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// Sends a request built by `build`, retrying transient failures. A response with a
/// retryable status is returned once the attempts are used up, so the caller can report
/// Google's own error.
pub(crate) async fn send(
    policy: &RetryPolicy,
    step: Step,
    build: impl Fn() -> RequestBuilder,
) -> Result<Response> {
    let backoff = ExponentialBuilder::default()
        .with_min_delay(policy.min_delay)
        .with_max_delay(policy.max_delay)
        .with_max_times(policy.max_attempts.saturating_sub(1))
        .with_jitter();
    let attempt = || async {
        match build().send().await {
            Ok(resp) if retryable_status(resp.status()) => Err(Attempt::Status(resp)),
            Ok(resp) => Ok(resp),
            Err(e) => Err(Attempt::Network(e)),
        }
    };
    let result = attempt
        .retry(backoff)
        .sleep(tokio::time::sleep)
        .when(|a| match a {
            Attempt::Status(_) => true,
            Attempt::Network(e) => e.is_connect() || e.is_timeout() || e.is_request(),
        })
        .notify(|a, delay| {
            let why = match a {
                Attempt::Status(r) => format!("HTTP {}", r.status().as_u16()),
                Attempt::Network(e) => format!("network error: {e}"),
            };
            tracing::warn!(%step, %why, retry_in_ms = delay.as_millis() as u64, "retrying");
        })
        .await;
    match result {
        Ok(resp) | Err(Attempt::Status(resp)) => Ok(resp),
        Err(Attempt::Network(e)) => {
            let transient = e.is_connect() || e.is_timeout() || e.is_request();
            let what = if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "could not connect"
            } else {
                "request failed"
            };
            let url = e
                .url()
                .map(|u| format!(" to {}", u.origin().ascii_serialization()));
            Err(Error::failed_with(
                step,
                transient,
                format!(
                    "{what}{} after {} attempts",
                    url.unwrap_or_default(),
                    policy.max_attempts
                ),
                e,
            ))
        }
    }
}
