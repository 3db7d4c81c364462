//! [`Context`]: the one injection point for what the credential providers take from their
//! surroundings — environment lookup, wall clock, timeouts, retry policy and the HTTP
//! client — like `aws-config`'s `ProviderConfig`. Hand the same context to
//! [`crate::google::Builder`] and [`crate::aws::Builder`].

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, OnceLock};

use crate::error::Result;
use crate::token_cache::{Clock, SystemClock};
use crate::transport::{self, RetryPolicy, Timeouts, Transport};

type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Environment, clock, timeouts, retry policy and HTTP client of the providers.
///
/// Cheap to clone; clones share one pooled HTTP client. The default reads the process
/// environment and the system clock.
#[derive(Clone)]
pub struct Context {
    env: EnvLookup,
    clock: Arc<dyn Clock>,
    timeouts: Timeouts,
    retry: RetryPolicy,
    http: Arc<OnceLock<reqwest::Client>>,
}

impl Default for Context {
    fn default() -> Self {
        Context {
            env: Arc::new(|key| std::env::var(key).ok()),
            clock: Arc::new(SystemClock),
            timeouts: Timeouts::default(),
            retry: RetryPolicy::default(),
            http: Arc::new(OnceLock::new()),
        }
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("clock", &self.clock)
            .field("timeouts", &self.timeouts)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl Context {
    /// The process environment, the system clock and default timeouts and retries.
    pub fn new() -> Self {
        Context::default()
    }

    /// Reads environment variables through `lookup` instead of the process environment.
    pub fn with_env_lookup(
        mut self,
        lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.env = Arc::new(lookup);
        self
    }

    /// Sees exactly these environment variables and none of the process's (tests).
    pub fn with_env_vars<I, K, V>(self, vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let vars: HashMap<String, String> = vars
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        self.with_env_lookup(move |key| vars.get(key).cloned())
    }

    /// The wall clock used for token expiry and request signing (tests).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Connect and total timeouts of the HTTP client.
    pub fn with_timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self.http = Arc::new(OnceLock::new());
        self
    }

    /// Retry policy for Google calls.
    pub fn with_retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Uses this HTTP client (its own timeouts apply) instead of building one.
    pub fn with_http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Arc::new(OnceLock::from(client));
        self
    }

    /// The value of an environment variable; `None` when unset or blank.
    pub fn env_var(&self, key: &str) -> Option<String> {
        (self.env)(key).filter(|v| !v.trim().is_empty())
    }

    /// The wall clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The retry policy.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// The timeouts.
    pub fn timeouts(&self) -> &Timeouts {
        &self.timeouts
    }

    /// The shared HTTP client, built on first use. Needs no async runtime.
    pub fn http_client(&self) -> Result<reqwest::Client> {
        if let Some(client) = self.http.get() {
            return Ok(client.clone());
        }
        let built = transport::build_client(&self.timeouts)?;
        Ok(self.http.get_or_init(|| built).clone())
    }

    /// The HTTP client and retry policy as a [`Transport`] for Google JSON calls.
    pub fn transport(&self) -> Result<Transport> {
        Ok(Transport::new(self.http_client()?, self.retry.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_vars_replace_the_process_environment() {
        let ctx = Context::new().with_env_vars([("A", "1"), ("BLANK", " ")]);
        assert_eq!(ctx.env_var("A").as_deref(), Some("1"));
        assert_eq!(ctx.env_var("BLANK"), None);
        assert_eq!(ctx.env_var("PATH"), None);
    }

    #[test]
    fn clones_share_one_http_client() {
        let ctx = Context::new();
        let copy = ctx.clone();
        ctx.http_client().unwrap();
        assert!(copy.http.get().is_some());
        let retimed = copy.with_timeouts(Timeouts::default());
        assert!(retimed.http.get().is_none());
    }
}
