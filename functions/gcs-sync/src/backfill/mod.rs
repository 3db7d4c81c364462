//! Backfill and repair: `{"backfill": {"prefix": "logs/"}}` lists the S3 source
//! (`SYNC_SOURCE_BUCKET`) and the Cloud Storage destination in key order, page by page, and
//! merge-joins them ([`listing`]): what is missing or has another ETag is looked at, copies
//! without a source are looked at in `delete` mode, in-sync objects cost nothing. Each key
//! looked at goes through [`Replicator::sync_key`], which decides on what S3 serves now,
//! not on the listing: the same rules as events.
//!
//! After each page the position is written to the run's [`checkpoint`]. With less than
//! `SYNC_DEADLINE_MARGIN_MS` left, the invocation stops and the run goes on in the next
//! invocation ([`continuation`]), from the checkpoint.

pub mod checkpoint;
pub mod continuation;
pub mod error;
pub mod listing;

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde_json::{Value, json};
use tokio::time::Instant;

pub use checkpoint::Checkpoint;
pub use continuation::{Continuation, InvokeFuture, LambdaContinuation};
pub use error::BackfillError;

use crate::backfill::listing::Action;
use crate::batch::Limits;
use crate::counts::Counts;
use crate::event::BackfillRequest;
use crate::gcs::DestinationBucket;
use crate::reconcile::DeleteMode;
use crate::replicate::Replicator;
use crate::s3::SourceBucket;

/// Keys per listing page (both clouds), the unit of work between checkpoints.
pub const DEFAULT_PAGE_SIZE: i32 = 1000;
/// Invocations in a row without the position advancing after which a run stops.
pub const MAX_STALLED: u64 = 3;
/// Invocations one run may take.
pub const MAX_INVOCATIONS: u64 = 1000;

/// A backfill's clients and settings.
#[derive(Clone)]
pub struct Backfill {
    replicator: Arc<Replicator>,
    source: SourceBucket,
    destination: DestinationBucket,
    limits: Limits,
    /// Starts the next invocation of a run; `None`: the run stops at its checkpoint.
    pub continuation: Option<Arc<dyn Continuation>>,
    /// Keys per listing page and checkpoint (at most 1000).
    pub page_size: i32,
}

impl Backfill {
    /// Backfills `source` into `destination` through `replicator`, `limits.concurrency` keys
    /// at a time.
    pub fn new(
        replicator: Arc<Replicator>,
        source: SourceBucket,
        destination: DestinationBucket,
        limits: Limits,
        continuation: Option<Arc<dyn Continuation>>,
    ) -> Self {
        Backfill {
            replicator,
            source,
            destination,
            limits,
            continuation,
            page_size: DEFAULT_PAGE_SIZE,
        }
    }

    /// Runs (part of) a backfill until done or `deadline` is near; returns the run's state.
    /// `request_id` (Lambda's) names a new run, so that a retried start resumes it. Refused
    /// with less than twice `SYNC_DEADLINE_MARGIN_MS` left (no page could be done); stops
    /// with an error when the run made no progress in [`MAX_STALLED`] invocations in a row
    /// or took [`MAX_INVOCATIONS`]. An invocation that loses its checkpoint to another one
    /// of the same run (a duplicate delivery) stops cleanly, leaving the run to the other.
    pub async fn handle(
        &self,
        request: BackfillRequest,
        deadline: SystemTime,
        request_id: &str,
    ) -> Result<Value, BackfillError> {
        let left = deadline
            .duration_since(SystemTime::now())
            .unwrap_or_default();
        let margin = self.limits.start_margin;
        if left < margin * 2 {
            return Err(BackfillError::Request(format!(
                "backfill refused: the invocation has {} ms, less than twice \
                 SYNC_DEADLINE_MARGIN_MS ({} ms), so no page could be done; raise the \
                 function's timeout (GcsSyncTimeout) or lower SYNC_DEADLINE_MARGIN_MS",
                left.as_millis(),
                margin.as_millis()
            )));
        }
        let mut state = self.state(&request, request_id).await?;
        if state.done {
            return Ok(summary(&state, false));
        }
        if state.invocations >= MAX_INVOCATIONS {
            return Err(BackfillError::TooLong {
                run: state.run,
                invocations: state.invocations,
            });
        }
        match self.run(&mut state, Instant::now() + left).await {
            Err(BackfillError::Raced(checkpoint)) => {
                tracing::warn!(run = %state.run, checkpoint, "another invocation of the run went on; stopping this one");
                let mut v = summary(&state, false);
                v["raced"] = true.into();
                Ok(v)
            }
            other => other,
        }
    }

    /// The run `request` continues, or the one it starts (resumed if it already was).
    async fn state(
        &self,
        request: &BackfillRequest,
        request_id: &str,
    ) -> Result<Checkpoint, BackfillError> {
        let bucket = self.source.name();
        if let Some(run) = &request.run {
            return Checkpoint::load(&self.destination, bucket, run).await;
        }
        if let Some(asked) = request.bucket.as_deref().filter(|b| *b != bucket) {
            return Err(BackfillError::Request(format!(
                "backfill of bucket {asked:?} refused: this function replicates {bucket:?} \
                 (SYNC_SOURCE_BUCKET); leave \"bucket\" out or deploy a function for that bucket"
            )));
        }
        let run = checkpoint::run_id(request_id);
        if let Some(started) = Checkpoint::find(&self.destination, bucket, &run).await? {
            tracing::info!(run, "a retried start: resuming the run");
            return Ok(started);
        }
        let mut state = Checkpoint::start(run, bucket, &request.prefix);
        state.save(&self.destination).await?;
        Ok(state)
    }

    /// Pages until done or `deadline` is near, then the continuation.
    async fn run(&self, state: &mut Checkpoint, deadline: Instant) -> Result<Value, BackfillError> {
        let limits = &self.limits;
        let started_after = state.after.clone();
        let mut this_invocation = Counts::default();
        state.invocations += 1;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left < limits.start_margin {
                break;
            }
            let page =
                listing::page(&self.source, &self.destination, state, self.page_size).await?;
            let abort_at = deadline
                .checked_sub(limits.abort_margin)
                .unwrap_or(deadline);
            let counts = Mutex::new(Counts::default());
            let work = self.run_actions(page.actions, &counts);
            let finished = tokio::time::timeout_at(abort_at, work).await.is_ok();
            // What completed counts even if the page is cut short (it is in sync next time).
            let counts = counts.into_inner().unwrap_or_else(|e| e.into_inner());
            state.counts.add_all(&counts);
            this_invocation.add_all(&counts);
            if !finished {
                tracing::warn!(run = %state.run, "deadline reached within a page; continuing later");
                break;
            }
            state.examined += page.examined;
            state.after = page.through.or(state.after.take());
            state.done = page.last;
            state.stalled = 0;
            state.save(&self.destination).await?;
            tracing::info!(run = %state.run, after = ?state.after, copied = state.counts.copied, deleted = state.counts.deleted, foreign = state.counts.foreign, "backfill page done");
            if state.done {
                break;
            }
        }
        // This invocation's counts as metrics (the run's are in its checkpoint).
        this_invocation.log(&[], "backfill invocation done");
        if state.done {
            tracing::info!(run = %state.run, ?state, "backfill done");
            return Ok(summary(state, false));
        }
        if state.after == started_after {
            state.stalled += 1;
        }
        state.save(&self.destination).await?;
        if state.stalled >= MAX_STALLED {
            return Err(BackfillError::Stalled {
                run: state.run.clone(),
                after: state.after.clone(),
                stalled: state.stalled,
            });
        }
        let continuation = self.continuation.as_ref().ok_or_else(|| {
            BackfillError::Request(format!(
                "backfill run {} needs another invocation but has no continuation outside Lambda (AWS_LAMBDA_FUNCTION_NAME unset); send {{\"backfill\": {{\"run\": \"{}\"}}}}",
                state.run, state.run
            ))
        })?;
        continuation
            .invoke(json!({"backfill": {"run": state.run}}))
            .await
            .map_err(BackfillError::Request)?;
        tracing::info!(run = %state.run, "continued asynchronously");
        Ok(summary(state, true))
    }

    /// Applies a page's actions, `limits.concurrency` at a time, counting into `counts`
    /// as they complete.
    async fn run_actions(&self, actions: Vec<Action>, counts: &Mutex<Counts>) {
        let permits = Arc::new(tokio::sync::Semaphore::new(self.limits.concurrency.max(1)));
        let mut tasks = tokio::task::JoinSet::new();
        for action in actions {
            let key = match action {
                Action::Copy { key } => key,
                // Keep mode keeps copies whatever S3 says: nothing to look at.
                Action::Delete { .. } if self.replicator.delete_mode() == DeleteMode::Keep => {
                    continue;
                }
                Action::Delete { key } => key,
                Action::Foreign { key } => {
                    tracing::info!(key, "not a copy gcs-sync made of this key: left alone");
                    counts.lock().unwrap_or_else(|e| e.into_inner()).foreign += 1;
                    continue;
                }
            };
            let (replicator, permits) = (self.replicator.clone(), permits.clone());
            tasks.spawn(async move {
                let _permit = permits.acquire_owned().await;
                let result = replicator.sync_key(&key).await;
                if let Err(e) = &result {
                    tracing::warn!(key = %key, error = %e, "backfill of a key failed");
                }
                result
            });
        }
        while let Some(joined) = tasks.join_next().await {
            let mut counts = counts.lock().unwrap_or_else(|e| e.into_inner());
            match joined {
                Ok(Ok(outcome)) => counts.add(&outcome),
                Ok(Err(_)) | Err(_) => counts.failed += 1,
            }
        }
    }
}

fn summary(state: &Checkpoint, continued: bool) -> Value {
    let mut v = serde_json::to_value(state).unwrap_or_default();
    v["continued"] = continued.into();
    v
}
