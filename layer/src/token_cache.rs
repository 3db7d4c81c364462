//! A lazy token cache, apart from the token sources.
//!
//! - No background task: works without a runtime at construction.
//! - Wall-clock expiry, so a thawed Lambda sandbox never uses an expired token.
//! - Refresh ahead of expiry: the first caller inside the window refreshes while the others
//!   keep using the still-valid token; one refresh per window (a source that hands back a
//!   token already inside the window is not asked again and again).
//! - Single-flight: N concurrent callers on a cold cache cause one fetch.
//! - Failures are remembered for a back-off (doubling up to a cap), then retried; callers
//!   that waited on a failed fetch get its error instead of starting another one.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use google_cloud_auth::credentials::EntityTag;

use crate::error::{Error, Result};
use crate::restore::Minted;
use crate::token::Token;

/// Fetches a fresh token. Implemented by the federation flow.
/// Something that stops being valid at a wall-clock time.
pub(crate) trait Expiring {
    fn expires_at(&self) -> SystemTime;
}

impl Expiring for Token {
    fn expires_at(&self) -> SystemTime {
        self.expires_at
    }
}

/// Fetches a fresh item (a Google token, AWS credentials, ...).
pub(crate) trait TokenSource: Send + Sync {
    type Output: Expiring + Send + Sync;
    fn fetch(&self) -> impl Future<Output = Result<Self::Output>> + Send;
}

/// Source of wall-clock time (injectable for tests).
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Current wall-clock time.
    fn now(&self) -> SystemTime;

    /// This process's own running time from a fixed start, frozen with the process and
    /// never stepped (`CLOCK_MONOTONIC`). Tokens minted before the wall clock ran ahead of it
    /// (a restore from a snapshot) are dropped. `None` (the default): no restore detection.
    fn process_time(&self) -> Option<Duration> {
        None
    }
}

/// The system clock.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn process_time(&self) -> Option<Duration> {
        Some(crate::restore::process_time())
    }
}

/// Cache tuning.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct CacheSettings {
    /// Refresh when less than this is left (default 3m45s).
    pub refresh_ahead: Duration,
    /// First back-off after a failed fetch.
    pub error_backoff_min: Duration,
    /// Largest back-off after repeated failures.
    pub error_backoff_max: Duration,
}

impl CacheSettings {
    /// Refresh when less than this is left.
    pub fn with_refresh_ahead(mut self, window: Duration) -> Self {
        self.refresh_ahead = window;
        self
    }

    /// Back-off after failed fetches: first and largest pause.
    pub fn with_error_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.error_backoff_min = min;
        self.error_backoff_max = max;
        self
    }
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            refresh_ahead: Duration::from_secs(225),
            error_backoff_min: Duration::from_secs(1),
            error_backoff_max: Duration::from_secs(60),
        }
    }
}

/// A cached item with the entity tag handed to `google-cloud-auth` callers.
#[derive(Clone, Debug)]
pub(crate) struct Cached<T> {
    pub item: T,
    pub tag: EntityTag,
    pub minted: Minted,
}

#[derive(Debug)]
struct Failure {
    message: String,
    step: crate::error::Step,
    transient: bool,
    retry_at: SystemTime,
    consecutive: u32,
}

#[derive(Debug)]
struct State<T> {
    token: Option<Arc<Cached<T>>>,
    failure: Option<Failure>,
    /// Bumped after every finished fetch, success or failure.
    generation: u64,
    /// No refresh ahead before this (set when a fetch returned a token already inside the
    /// refresh-ahead window).
    ahead_not_before: Option<SystemTime>,
}

pub(crate) struct TokenCache<S: TokenSource> {
    source: S,
    settings: CacheSettings,
    clock: Arc<dyn Clock>,
    state: Mutex<State<S::Output>>,
    refresh: tokio::sync::Mutex<()>,
    /// Test seam: runs (once) between a stale caller's look at the state and its refresh lock.
    #[cfg(test)]
    stale_hook: Mutex<Option<Box<dyn FnMut() + Send>>>,
}

enum Decision<T> {
    Fresh(Arc<Cached<T>>),
    Stale(Arc<Cached<T>>),
    BackedOff(Error),
    Missing,
}

impl<S: TokenSource> TokenCache<S> {
    pub fn new(source: S, settings: CacheSettings, clock: Arc<dyn Clock>) -> Self {
        TokenCache {
            source,
            settings,
            clock,
            state: Mutex::new(State {
                token: None,
                failure: None,
                generation: 0,
                ahead_not_before: None,
            }),
            refresh: tokio::sync::Mutex::new(()),
            #[cfg(test)]
            stale_hook: Mutex::new(None),
        }
    }

    pub fn source(&self) -> &S {
        &self.source
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State<S::Output>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn decide(&self, state: &State<S::Output>) -> Decision<S::Output> {
        let now = self.clock.now();
        if let Some(cached) = &state.token {
            let left = cached
                .item
                .expires_at()
                .duration_since(now)
                .unwrap_or_default();
            if left > self.settings.refresh_ahead {
                return Decision::Fresh(cached.clone());
            }
            if !left.is_zero() {
                return Decision::Stale(cached.clone());
            }
        }
        if let Some(f) = &state.failure
            && now < f.retry_at
        {
            let wait = f.retry_at.duration_since(now).unwrap_or_default();
            return Decision::BackedOff(Error::failed(
                f.step,
                f.transient,
                format!(
                    "{} (failed {} time(s) in a row; next attempt in {:.1}s)",
                    f.message,
                    f.consecutive,
                    wait.as_secs_f64()
                ),
            ));
        }
        Decision::Missing
    }

    /// Returns a valid token, fetching one if needed.
    pub async fn get(&self) -> Result<Arc<Cached<S::Output>>> {
        let (decision, generation, backed_off) = {
            let mut state = self.state();
            let restored = state.token.as_ref().is_some_and(|cached| {
                cached
                    .minted
                    .dropped_after_restore(&*self.clock, "a cached token")
            });
            if restored {
                state.token = None;
                state.failure = None;
                state.ahead_not_before = None;
            }
            let now = self.clock.now();
            let backed_off = state.failure.as_ref().is_some_and(|f| now < f.retry_at)
                || state.ahead_not_before.is_some_and(|t| now < t);
            (self.decide(&state), state.generation, backed_off)
        };
        match decision {
            Decision::Fresh(c) => return Ok(c),
            Decision::BackedOff(e) => return Err(e),
            Decision::Stale(c) => {
                // Refresh ahead only if nobody else is (and not while backing off after a
                // failure); the others keep using the still-valid token.
                #[cfg(test)]
                {
                    let hook = self.stale_hook.lock().unwrap().take();
                    if let Some(mut hook) = hook {
                        hook();
                    }
                }
                let guard = if backed_off {
                    None
                } else {
                    self.refresh.try_lock().ok()
                };
                let Some(_guard) = guard else {
                    return Ok(c);
                };
                // Another caller may have refreshed between our look and the lock.
                if self.state().generation != generation {
                    return Ok(self.state().token.clone().unwrap_or(c));
                }
                return match self.fetch_and_store().await {
                    Ok(fresh) => Ok(fresh),
                    Err(e) => {
                        tracing::warn!(error = %crate::error::ErrorChain(&e), "refresh ahead of expiry failed; using the current token until it expires");
                        Ok(c)
                    }
                };
            }
            Decision::Missing => {}
        }
        let _guard = self.refresh.lock().await;
        let decision = {
            let state = self.state();
            (state.generation != generation).then(|| self.decide(&state))
        };
        // Someone fetched while we waited: use their outcome.
        match decision {
            Some(Decision::Fresh(c) | Decision::Stale(c)) => Ok(c),
            Some(Decision::BackedOff(e)) => Err(e),
            Some(Decision::Missing) | None => self.fetch_and_store().await,
        }
    }

    async fn fetch_and_store(&self) -> Result<Arc<Cached<S::Output>>> {
        let result = self.source.fetch().await;
        let now = self.clock.now();
        let mut state = self.state();
        state.generation += 1;
        match result {
            Ok(item) => {
                let left = item.expires_at().duration_since(now).unwrap_or_default();
                state.ahead_not_before = None;
                if left <= self.settings.refresh_ahead {
                    // Already inside the window: refreshing again at once would only fetch
                    // the same kind of token. Try again when half of what is left has passed.
                    tracing::warn!(
                        expires_in_s = left.as_secs(),
                        refresh_ahead_s = self.settings.refresh_ahead.as_secs(),
                        "the new token is already inside the refresh-ahead window; lower the refresh-ahead setting or raise the token lifetime"
                    );
                    state.ahead_not_before = now.checked_add(left / 2);
                }
                let cached = Arc::new(Cached {
                    item,
                    tag: EntityTag::new(),
                    minted: Minted::now(&*self.clock),
                });
                state.token = Some(cached.clone());
                state.failure = None;
                Ok(cached)
            }
            Err(e) => {
                let consecutive = state.failure.as_ref().map_or(1, |f| f.consecutive + 1);
                let backoff = self
                    .settings
                    .error_backoff_min
                    .saturating_mul(1 << (consecutive - 1).min(16))
                    .min(self.settings.error_backoff_max);
                state.failure = Some(Failure {
                    message: e.to_string(),
                    step: e.step(),
                    transient: e.is_transient(),
                    retry_at: now.checked_add(backoff).unwrap_or(now),
                    consecutive,
                });
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Step;
    use crate::secret::Secret;
    use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

    /// Wall clock and process time in milliseconds: [`ManualClock::advance`] moves both (a
    /// frozen sandbox thawed), [`ManualClock::restore`] only the wall clock.
    #[derive(Debug)]
    struct ManualClock(AtomicU64, AtomicU64);
    impl ManualClock {
        fn advance(&self, d: Duration) {
            self.0.fetch_add(d.as_millis() as u64, Ordering::SeqCst);
            self.1.fetch_add(d.as_millis() as u64, Ordering::SeqCst);
        }
        fn restore(&self, after: Duration) {
            self.0.fetch_add(after.as_millis() as u64, Ordering::SeqCst);
        }
    }
    impl Clock for ManualClock {
        fn now(&self) -> SystemTime {
            SystemTime::UNIX_EPOCH + Duration::from_millis(self.0.load(Ordering::SeqCst))
        }
        fn process_time(&self) -> Option<Duration> {
            Some(Duration::from_millis(self.1.load(Ordering::SeqCst)))
        }
    }

    struct Source {
        clock: Arc<ManualClock>,
        calls: AtomicU32,
        fail: std::sync::atomic::AtomicBool,
        lifetime: Duration,
    }
    impl TokenSource for Arc<Source> {
        type Output = Token;
        async fn fetch(&self) -> Result<Token> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::task::yield_now().await;
            if self.fail.load(Ordering::SeqCst) {
                return Err(Error::failed(Step::Sts, false, "invalid_grant"));
            }
            let token = Token {
                value: Secret::new(format!("t{n}")),
                expires_at: self.clock.now() + self.lifetime,
            };
            Ok(token)
        }
    }

    fn setup(fail: bool) -> (Arc<ManualClock>, Arc<Source>, Arc<TokenCache<Arc<Source>>>) {
        let clock = Arc::new(ManualClock(AtomicU64::new(1_000_000), AtomicU64::new(0)));
        let source = Arc::new(Source {
            clock: clock.clone(),
            calls: AtomicU32::new(0),
            fail: std::sync::atomic::AtomicBool::new(fail),
            lifetime: Duration::from_secs(3600),
        });
        let cache = Arc::new(TokenCache::new(
            source.clone(),
            CacheSettings::default(),
            clock.clone(),
        ));
        (clock, source, cache)
    }

    #[tokio::test]
    async fn caches_and_refreshes_ahead_and_after_expiry() {
        let (clock, source, cache) = setup(false);
        assert_eq!(cache.get().await.unwrap().item.value.expose(), "t1");
        assert_eq!(cache.get().await.unwrap().item.value.expose(), "t1");
        assert_eq!(source.calls.load(Ordering::SeqCst), 1);
        clock.advance(Duration::from_secs(3600 - 200)); // inside the refresh-ahead window
        assert_eq!(cache.get().await.unwrap().item.value.expose(), "t2");
        clock.advance(Duration::from_secs(3601)); // t2 expired (frozen sandbox thawed)
        assert_eq!(cache.get().await.unwrap().item.value.expose(), "t3");
        assert_eq!(source.calls.load(Ordering::SeqCst), 3);
    }

    /// SnapStart: a token minted before the snapshot is not served after a restore, even
    /// with most of its lifetime left; a freeze of the same length keeps it.
    #[tokio::test]
    async fn tokens_minted_before_a_snapshot_are_dropped_after_a_restore() {
        let (clock, source, cache) = setup(false);
        assert_eq!(cache.get().await.unwrap().item.value.expose(), "t1");
        clock.advance(Duration::from_secs(600));
        assert_eq!(cache.get().await.unwrap().item.value.expose(), "t1");
        clock.restore(Duration::from_secs(600));
        assert_eq!(cache.get().await.unwrap().item.value.expose(), "t2");
        assert_eq!(cache.get().await.unwrap().item.value.expose(), "t2");
        assert_eq!(source.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn single_flight_on_cold_cache() {
        let (_clock, source, cache) = setup(false);
        let tasks: Vec<_> = (0..200)
            .map(|_| {
                let c = cache.clone();
                tokio::spawn(
                    async move { c.get().await.map(|t| t.item.value.expose().to_string()) },
                )
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap(), "t1");
        }
        assert_eq!(source.calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn failures_back_off_then_retry() {
        let (clock, source, cache) = setup(true);
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let c = cache.clone();
                tokio::spawn(async move { c.get().await.map(|_| ()) })
            })
            .collect();
        for t in tasks {
            assert!(
                t.await
                    .unwrap()
                    .unwrap_err()
                    .to_string()
                    .contains("invalid_grant")
            );
        }
        assert_eq!(
            source.calls.load(Ordering::SeqCst),
            1,
            "waiters share the failure"
        );
        let err = cache.get().await.unwrap_err().to_string();
        assert!(err.contains("next attempt in"), "{err}");
        assert_eq!(source.calls.load(Ordering::SeqCst), 1);
        clock.advance(Duration::from_secs(2));
        source.fail.store(false, Ordering::SeqCst);
        assert!(cache.get().await.is_ok());
        assert_eq!(source.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn token_shorter_than_the_window_is_not_refetched_on_every_call() {
        let clock = Arc::new(ManualClock(AtomicU64::new(1_000_000), AtomicU64::new(0)));
        let source = Arc::new(Source {
            clock: clock.clone(),
            calls: AtomicU32::new(0),
            fail: std::sync::atomic::AtomicBool::new(false),
            lifetime: Duration::from_secs(200), // shorter than the 225 s window
        });
        let cache = TokenCache::new(source.clone(), CacheSettings::default(), clock.clone());
        for _ in 0..10 {
            cache.get().await.unwrap();
        }
        assert_eq!(source.calls.load(Ordering::SeqCst), 1);
        clock.advance(Duration::from_secs(101)); // half of what was left has passed
        assert_eq!(cache.get().await.unwrap().item.value.expose(), "t2");
        assert_eq!(source.calls.load(Ordering::SeqCst), 2);
    }

    /// A caller that saw the stale token while another refreshed must
    /// not start a second refresh right after the first one finished.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn stale_token_is_refreshed_once() {
        let (clock, source, cache) = setup(false);
        cache.get().await.unwrap();
        clock.advance(Duration::from_secs(3600 - 200)); // stale
        // The first stale caller pauses between its look at the state and the refresh lock
        // until a second caller has refreshed.
        let (entered_tx, entered_rx) = tokio::sync::oneshot::channel::<()>();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let mut hook_state = Some((entered_tx, go_rx));
        *cache.stale_hook.lock().unwrap() = Some(Box::new(move || {
            if let Some((entered, go)) = hook_state.take() {
                entered.send(()).unwrap();
                go.recv().unwrap();
            }
        }));
        let slow = tokio::spawn({
            let c = cache.clone();
            async move { c.get().await.map(|t| t.item.value.expose().to_string()) }
        });
        entered_rx.await.unwrap();
        assert_eq!(cache.get().await.unwrap().item.value.expose(), "t2");
        go_tx.send(()).unwrap();
        assert_eq!(slow.await.unwrap().unwrap(), "t2");
        assert_eq!(
            source.calls.load(Ordering::SeqCst),
            2,
            "one initial fetch and one refresh"
        );
    }

    #[tokio::test]
    async fn failed_refresh_ahead_keeps_valid_token() {
        let (clock, source, cache) = setup(false);
        cache.get().await.unwrap();
        source.fail.store(true, Ordering::SeqCst);
        clock.advance(Duration::from_secs(3600 - 100));
        assert_eq!(cache.get().await.unwrap().item.value.expose(), "t1");
        clock.advance(Duration::from_secs(101));
        assert!(cache.get().await.is_err());
    }
}
