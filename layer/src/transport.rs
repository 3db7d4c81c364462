//! The shared HTTP client and its retry policy: one pooled client (HTTP/2 where offered),
//! connect and total timeouts, jittered exponential back-off on 5xx, 429 and connect errors,
//! and [`Transport::send_json`], the one way a Google JSON API is called (STS, IAM
//! Credentials, and any other Google REST API such as Vertex AI).
//!
//! Redirects are never followed (a 307/308 would re-send a subject token or bearer token to
//! another host) and response bodies are read up to a limit ([`DEFAULT_BODY_LIMIT`]).

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use reqwest::{RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;

use crate::error::{Error, Result, Step};
use crate::google_error;

/// Largest response body read by default (1 MiB): token endpoints, the metadata server and
/// Google error answers are far smaller.
pub const DEFAULT_BODY_LIMIT: usize = 1 << 20;

/// How often and how patiently transient HTTP failures are retried.
#[derive(Clone, Debug)]
#[non_exhaustive]
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

impl RetryPolicy {
    /// Total attempts, including the first (1 = no retry).
    pub fn with_max_attempts(mut self, attempts: usize) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// Back-off bounds: first delay and largest delay (before jitter).
    pub fn with_delays(mut self, min: Duration, max: Duration) -> Self {
        self.min_delay = min;
        self.max_delay = max;
        self
    }
}

/// Connect and total timeouts for Google calls.
#[derive(Clone, Debug)]
#[non_exhaustive]
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

impl Timeouts {
    /// TCP + TLS connect timeout.
    pub fn with_connect(mut self, timeout: Duration) -> Self {
        self.connect = timeout;
        self
    }

    /// Whole-request timeout.
    pub fn with_total(mut self, timeout: Duration) -> Self {
        self.total = timeout;
        self
    }
}

/// A pooled HTTP client with the shared retry policy, for Google JSON APIs.
///
/// Get one from [`crate::Context::transport`] (or [`Transport::new`]). Cheap to clone.
///
/// A client passed in with [`crate::Context::with_http_client`] should not follow redirects
/// either (`reqwest::redirect::Policy::none()`); a redirect it returns is refused.
#[derive(Clone, Debug)]
pub struct Transport {
    client: reqwest::Client,
    retry: RetryPolicy,
    body_limit: usize,
}

impl Transport {
    /// Uses `client` with `retry` and the default body limit.
    pub fn new(client: reqwest::Client, retry: RetryPolicy) -> Self {
        Transport {
            client,
            retry,
            body_limit: DEFAULT_BODY_LIMIT,
        }
    }

    /// Reads at most `bytes` of a response body (default [`DEFAULT_BODY_LIMIT`]); a larger
    /// answer is an error.
    pub fn with_body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// The body limit in bytes.
    pub fn body_limit(&self) -> usize {
        self.body_limit
    }

    /// The HTTP client.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// The retry policy.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// Sends the request `build` makes (once per attempt), retrying 5xx, 429 and connection
    /// failures with the retry policy; maps a Google error answer (OAuth-style or
    /// `google.rpc.Status`) to [`Error::Google`] with a hint; parses a success as JSON `T`.
    /// A redirect or a body over the limit is an error. `service` names the API in errors
    /// ("Google STS", "Vertex AI").
    ///
    /// ```no_run
    /// # async fn f(ctx: crossfed::Context, token: &str) -> crossfed::Result<()> {
    /// #[derive(serde::Deserialize)]
    /// struct Answer { candidates: Vec<serde_json::Value> }
    /// let url = "https://europe-west4-aiplatform.googleapis.com/v1/projects/p/locations/europe-west4/publishers/google/models/gemini-2.5-flash:generateContent";
    /// let body = serde_json::json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]});
    /// let answer: Answer = ctx
    ///     .transport()?
    ///     .send_json(crossfed::Step::GoogleApi, "Vertex AI", |http| {
    ///         http.post(url).bearer_auth(token).json(&body)
    ///     })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn send_json<T: DeserializeOwned>(
        &self,
        step: Step,
        service: &str,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<T> {
        let resp = send(&self.retry, step, || build(&self.client)).await?;
        let status = resp.status();
        refuse_redirect(&resp, step, service)?;
        let body = read_body(resp, self.body_limit, step, service).await?;
        if !status.is_success() {
            return Err(google_error::from_response(step, status.as_u16(), &body));
        }
        serde_json::from_str(&body).map_err(|e| {
            Error::failed_with(
                step,
                false,
                format!("{service} answered with an unexpected body"),
                e,
            )
        })
    }
}

/// A redirect answer is an error: the request (a subject token, a bearer token) must not go
/// to a host the allow-list did not check.
pub(crate) fn refuse_redirect(resp: &Response, step: Step, service: &str) -> Result<()> {
    let status = resp.status();
    if !status.is_redirection() {
        return Ok(());
    }
    let location = resp
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(|l| format!(" to `{}`", l.chars().take(200).collect::<String>()))
        .unwrap_or_default();
    Err(Error::failed(
        step,
        false,
        format!(
            "{service} answered with a redirect (HTTP {}){location}; crossfed does not follow redirects from Google or metadata endpoints: check the endpoint URL",
            status.as_u16()
        ),
    ))
}

fn describe_size(bytes: usize) -> String {
    const MIB: usize = 1 << 20;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// Reads a response body as text, at most `limit` bytes.
pub(crate) async fn read_body(
    mut resp: Response,
    limit: usize,
    step: Step,
    service: &str,
) -> Result<String> {
    let too_large = || {
        Error::failed(
            step,
            false,
            format!(
                "{service} answered with a body larger than {}; refusing to read it",
                describe_size(limit)
            ),
        )
    };
    if resp.content_length().is_some_and(|len| len > limit as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    loop {
        let chunk = resp.chunk().await.map_err(|e| {
            Error::failed_with(
                step,
                true,
                format!("reading the {service} response failed"),
                e,
            )
        })?;
        let Some(chunk) = chunk else { break };
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).map_err(|e| {
        Error::failed_with(
            step,
            false,
            format!("{service} answered with a body that is not UTF-8"),
            e,
        )
    })
}

/// Builds the shared client: no redirects, pooled, with the timeouts. Needs no async runtime.
pub(crate) fn build_client(timeouts: &Timeouts) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
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
                Attempt::Network(e) => format!("network error: {}", crate::error::ErrorChain(e)),
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
