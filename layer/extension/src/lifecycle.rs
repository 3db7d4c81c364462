//! Lambda lifecycle events: the sandbox is frozen between invocations, so refreshing
//! happens on INVOKE (while the function runs) and on demand; SHUTDOWN ends the process.

use std::time::{Duration, SystemTime};

use lambda_extension::NextEvent;
use tokio::sync::Notify;

use crate::backend::Backend;

/// Longest time spent refreshing on one INVOKE.
const MAX_REFRESH: Duration = Duration::from_secs(5);

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
