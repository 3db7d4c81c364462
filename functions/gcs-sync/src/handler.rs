//! The handler: a plain async fn from the event to the response, testable without Lambda.
//!
//! SQS batches answer with `batchItemFailures` (the function's event source mapping must
//! enable `ReportBatchItemFailures`): failed messages return to the queue and, after
//! `maxReceiveCount`, go to the dead-letter queue; each failed message's retry is delayed by
//! `SYNC_RETRY_DELAYS_S` rather than the queue's visibility timeout. Direct invocations fail
//! as a whole so Lambda's asynchronous retries (and on-failure destination) take over; every
//! change is idempotent, so repeating the successful ones is harmless.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_lambda_events::event::sqs::SqsBatchResponse;
use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;

use crate::batch::{self, Work, WorkResult};
use crate::config::Limits;
use crate::event::{self, Invocation};
use crate::replicate::{Outcome, Replicator};
use crate::retry_delay::RetryDelay;

/// Time kept back at the end of an invocation for answering the runtime.
const RESPONSE_MARGIN: Duration = Duration::from_millis(100);

/// Counts for a direct invocation's response (and the batch log line).
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct Summary {
    pub copied: usize,
    pub bytes: u64,
    pub deleted: usize,
    pub skipped: usize,
    pub failed: usize,
}

impl Summary {
    fn add(&mut self, result: &WorkResult) {
        match result {
            Err(_) => self.failed += 1,
            Ok(outcomes) => {
                for o in outcomes {
                    match o {
                        Outcome::Copied { bytes, .. } => {
                            self.copied += 1;
                            self.bytes += bytes;
                        }
                        Outcome::Deleted { .. } => self.deleted += 1,
                        Outcome::Skipped(_) => self.skipped += 1,
                    }
                }
            }
        }
    }
}

/// Handles one invocation that must finish by `deadline`.
pub async fn handle(
    replicator: &Arc<Replicator>,
    retry_delay: &RetryDelay,
    limits: &Limits,
    payload: Value,
    deadline: SystemTime,
) -> Result<Value, lambda_runtime::Error> {
    let left = deadline
        .duration_since(SystemTime::now())
        .unwrap_or_default();
    let deadline = Instant::now() + left;
    match event::parse(payload)? {
        Invocation::Ignored(reason) => {
            tracing::info!(reason, "nothing to replicate");
            Ok(serde_json::to_value(Summary::default())?)
        }
        Invocation::Sqs(messages) => {
            let mut response = SqsBatchResponse::default();
            let mut summary = Summary::default();
            let mut work = Vec::new();
            let mut receipts = HashMap::new();
            let mut failed = Vec::new();
            for message in messages {
                if let Some(receipt) = message.receipt {
                    receipts.insert(message.message_id.clone(), receipt);
                }
                match message.changes {
                    Ok(changes) => work.push(Work {
                        id: message.message_id,
                        changes,
                    }),
                    Err(reason) => {
                        if message.message_id.is_empty() {
                            return Err(format!(
                                "an SQS message without messageId is unreadable: {reason}"
                            )
                            .into());
                        }
                        tracing::warn!(id = %message.message_id, reason, "unreadable message; it will go to the DLQ");
                        summary.failed += 1;
                        failed.push(message.message_id.clone());
                        response.add_failure(message.message_id);
                    }
                }
            }
            for (id, result) in batch::run(replicator, limits, work, deadline).await {
                summary.add(&result);
                if result.is_err() {
                    if id.is_empty() {
                        return Err(
                            "a failed SQS message has no messageId; failing the whole batch".into(),
                        );
                    }
                    failed.push(id.clone());
                    response.add_failure(id);
                }
            }
            let delayed = failed
                .iter()
                .filter_map(|id| Some((id.clone(), receipts.remove(id)?)))
                .collect::<Vec<_>>();
            if !delayed.is_empty() {
                let until = deadline.checked_sub(RESPONSE_MARGIN).unwrap_or(deadline);
                let count = delayed.len();
                if tokio::time::timeout_at(until, retry_delay.apply(delayed))
                    .await
                    .is_err()
                {
                    tracing::warn!(count, "no time left to delay the failed messages' retries");
                }
            }
            tracing::info!(?summary, "batch done");
            Ok(serde_json::to_value(response)?)
        }
        Invocation::Direct(changes) => {
            let work = changes
                .into_iter()
                .enumerate()
                .map(|(i, change)| Work {
                    id: i.to_string(),
                    changes: vec![change],
                })
                .collect();
            let results = batch::run(replicator, limits, work, deadline).await;
            let mut summary = Summary::default();
            let mut first_error = None;
            for (_, result) in &results {
                summary.add(result);
                if let Err(e) = result {
                    first_error.get_or_insert_with(|| e.clone());
                }
            }
            tracing::info!(?summary, "event done");
            match first_error {
                Some(e) => Err(format!(
                    "{} of {} changes failed; first: {e}",
                    summary.failed,
                    results.len()
                )
                .into()),
                None => Ok(serde_json::to_value(summary)?),
            }
        }
    }
}
