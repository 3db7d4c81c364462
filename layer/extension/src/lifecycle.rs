//! Lambda lifecycle events: the sandbox is frozen between invocations, so refreshing
//! happens on INVOKE (while the function runs) and on demand; SHUTDOWN ends the process.
//! On Lambda Managed Instances the sandbox is never frozen and extensions get no INVOKE:
//! [`events`] subscribes to SHUTDOWN only and [`refresh_in_background`] keeps tokens fresh.

use std::time::{Duration, SystemTime};

use lambda_extension::NextEvent;
use tokio::sync::Notify;

use crate::backend::Backend;
use crate::settings::Initialization;

/// Longest time spent refreshing on one INVOKE.
const MAX_REFRESH: Duration = Duration::from_secs(5);

/// How often tokens are checked on Lambda Managed Instances (the refresh-ahead window is
/// minutes long, so a token is renewed well before it expires).
pub const BACKGROUND_REFRESH: Duration = Duration::from_secs(30);

/// The events to register for.
pub fn events(initialization: Initialization) -> &'static [&'static str] {
    match initialization {
        Initialization::ManagedInstances => &["SHUTDOWN"],
        Initialization::OnDemand | Initialization::SnapStart => &["INVOKE", "SHUTDOWN"],
    }
}

/// Renews tokens inside their refresh-ahead window every `every`, forever (spawn it).
pub async fn refresh_in_background<B: Backend>(backend: &B, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        backend.refresh_expiring().await;
    }
}

/// Handles one event from `/extension/event/next`.
pub async fn on_event<B: Backend>(backend: &B, event: NextEvent, shutdown: &Notify) {
    match event {
        NextEvent::Invoke(invoke) => {
            let deadline = SystemTime::UNIX_EPOCH + Duration::from_millis(invoke.deadline_ms);
            let budget = deadline
                .duration_since(SystemTime::now())
                .unwrap_or_default()
                .min(MAX_REFRESH);
            if tokio::time::timeout(budget, backend.refresh_expiring())
                .await
                .is_err()
            {
                tracing::warn!("refreshing tokens did not finish before the invocation's deadline");
            }
        }
        NextEvent::Shutdown(event) => {
            tracing::info!(reason = %event.shutdown_reason, "shutting down");
            shutdown.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{AccessToken, BackendError, Identity};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts refreshes; serves nothing else.
    #[derive(Default)]
    struct Refreshes(AtomicUsize);

    impl Backend for Refreshes {
        async fn access_token(&self, _: &[String]) -> Result<AccessToken, BackendError> {
            Err(BackendError::BadRequest("not in this test".into()))
        }
        async fn id_token(&self, _: &str, _: bool) -> Result<String, BackendError> {
            Err(BackendError::BadRequest("not in this test".into()))
        }
        async fn identity(&self) -> Result<Identity, BackendError> {
            Err(BackendError::BadRequest("not in this test".into()))
        }
        async fn refresh_expiring(&self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn managed_instances_subscribe_to_shutdown_only() {
        assert_eq!(events(Initialization::ManagedInstances), ["SHUTDOWN"]);
        assert_eq!(events(Initialization::OnDemand), ["INVOKE", "SHUTDOWN"]);
        assert_eq!(events(Initialization::SnapStart), ["INVOKE", "SHUTDOWN"]);
    }

    #[tokio::test(start_paused = true)]
    async fn background_refresh_runs_every_interval_not_at_once() {
        let backend = std::sync::Arc::new(Refreshes::default());
        let task = tokio::spawn({
            let backend = backend.clone();
            async move { refresh_in_background(&*backend, BACKGROUND_REFRESH).await }
        });
        tokio::task::yield_now().await;
        assert_eq!(backend.0.load(Ordering::SeqCst), 0, "not at start");
        for n in 1..=3 {
            tokio::time::sleep(BACKGROUND_REFRESH).await;
            tokio::task::yield_now().await;
            assert_eq!(backend.0.load(Ordering::SeqCst), n);
        }
        task.abort();
    }
}
