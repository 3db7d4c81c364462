//! The handler: a plain async fn from the event to the response, testable without Lambda.
//!
//! SQS batches answer with `batchItemFailures` (the function's event source mapping must
//! enable `ReportBatchItemFailures`): failed messages return to the queue and, after
//! `maxReceiveCount`, go to the dead-letter queue; each failed message's retry is delayed by
//! `SYNC_RETRY_DELAYS_S` rather than the queue's visibility timeout. Direct invocations fail
//! as a whole so Lambda's asynchronous retries (and on-failure destination) take over; every
//! change is idempotent, so repeating the successful ones is harmless. `{"backfill": ...}`
//! invocations sync a whole prefix ([`crate::backfill`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_config::retry::RetryConfig;
use aws_lambda_events::event::sqs::SqsBatchResponse;
use crossfed_kit::{BoxError, Env};
use google_cloud_gax::exponential_backoff::ExponentialBackoffBuilder;
use google_cloud_gax::retry_policy::RetryPolicyExt as _;
use google_cloud_storage::client::{Storage, StorageControl};
use google_cloud_storage::retry_policy::RetryableErrors;
use serde_json::Value;
use tokio::time::Instant;

use crate::backfill::{Backfill, Continuation, LambdaContinuation};
use crate::batch::{self, Limits, Work, WorkResult};
use crate::counts::Counts;
use crate::event::{self, Invocation};
use crate::gcs::DestinationBucket;
use crate::replicate::Replicator;
use crate::retry_delay::RetryDelay;
use crate::s3::SourceBucket;
use crate::settings::{Retries, Settings};

/// Time kept back at the end of an invocation for answering the runtime.
const RESPONSE_MARGIN: Duration = Duration::from_millis(100);

/// What every invocation reuses.
pub struct App {
    pub replicator: Arc<Replicator>,
    /// Delays the retry of failed SQS messages (`ChangeMessageVisibility`).
    pub retry_delay: RetryDelay,
    pub limits: Limits,
    /// `{"backfill": ...}` invocations (the same replicator, limits and clients).
    pub backfill: Backfill,
}

/// The AWS side: S3 (the source), SQS (retry delays of failed messages) and Lambda (a
/// backfill's continuation).
pub struct AwsClients {
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
    /// Invokes this function (`AWS_LAMBDA_FUNCTION_NAME`) asynchronously; `None` outside
    /// Lambda (a backfill then stops at its checkpoint and says how to continue).
    pub continuation: Option<LambdaContinuation>,
    /// The custom endpoint (`AWS_ENDPOINT_URL`), if any: queue URLs are built on it.
    pub endpoint: Option<String>,
}

impl AwsClients {
    /// S3, SQS and Lambda clients from the Lambda environment, retrying as `retries` says.
    pub async fn from_env(env: &Env, retries: &Retries) -> Self {
        let sdk = crossfed_kit::aws::sdk_config(Some(retry_config(retries))).await;
        let continuation = env
            .get("AWS_LAMBDA_FUNCTION_NAME")
            .filter(|f| !f.trim().is_empty())
            .map(|function| LambdaContinuation::new(aws_sdk_lambda::Client::new(&sdk), function));
        AwsClients {
            s3: crossfed_kit::aws::s3_client(&sdk, env),
            sqs: aws_sdk_sqs::Client::new(&sdk),
            continuation,
            endpoint: sdk.endpoint_url().map(str::to_string),
        }
    }
}

impl App {
    /// The cold start: reads the settings (`SYNC_*`, `STORAGE_EMULATOR_HOST[_GRPC]`) and the
    /// credential configuration (`CROSSFED_CONFIG_PARAMETER` / `GOOGLE_APPLICATION_CREDENTIALS`),
    /// then builds the S3 and Cloud Storage clients while the token cache warms up.
    pub async fn from_env(env: Env) -> Result<Self, BoxError> {
        let settings = Settings::from_env(&env)?;
        let credentials = crossfed::google::Credentials::from_env()?;
        let app = crossfed_kit::warm_up::alongside(&credentials, async {
            let aws = AwsClients::from_env(&env, &settings.retries).await;
            Self::new(&settings, credentials.clone(), aws).await
        })
        .await?;
        for warning in &settings.warnings {
            tracing::warn!("{warning}");
        }
        tracing::info!(
            source = %settings.source_bucket,
            destination = %settings.destination,
            delete_mode = ?settings.delete_mode,
            "ready"
        );
        Ok(app)
    }

    /// Builds the Cloud Storage clients for `settings` around the AWS clients.
    pub async fn new(
        settings: &Settings,
        credentials: crossfed::google::Credentials,
        aws: AwsClients,
    ) -> Result<Self, BoxError> {
        let retries = &settings.retries;
        let retry = || RetryableErrors.with_attempt_limit(retries.attempts);
        let backoff = || {
            ExponentialBackoffBuilder::new()
                .with_initial_delay(retries.initial_backoff)
                .with_maximum_delay(retries.max_backoff)
                .build()
        };
        let mut storage = Storage::builder()
            .with_credentials(credentials.clone())
            .with_retry_policy(retry())
            .with_backoff_policy(backoff()?);
        if let Some(endpoint) = &settings.storage_endpoint {
            storage = storage.with_endpoint(endpoint);
        }
        let mut control = StorageControl::builder()
            .with_credentials(credentials)
            .with_retry_policy(retry())
            .with_backoff_policy(backoff()?);
        if let Some(endpoint) = &settings.grpc_endpoint {
            control = control.with_endpoint(endpoint);
        }
        let (storage, control) = tokio::join!(storage.build(), control.build());
        let destination = DestinationBucket::new(storage?, control?, settings.destination.clone());
        let source = SourceBucket::new(aws.s3, settings.source_bucket.clone());
        let replicator = Arc::new(
            Replicator::new(source.clone(), destination.clone(), settings.delete_mode)
                .with_parts(settings.parts),
        );
        let continuation = aws
            .continuation
            .map(|c| Arc::new(c) as Arc<dyn Continuation>);
        Ok(App {
            backfill: Backfill::new(
                replicator.clone(),
                source,
                destination,
                settings.limits.clone(),
                continuation,
            ),
            replicator,
            retry_delay: RetryDelay::new(aws.sqs, aws.endpoint, settings.retry_delays.clone()),
            limits: settings.limits.clone(),
        })
    }
}

/// The S3 client retries like the Cloud Storage clients.
fn retry_config(retries: &Retries) -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(retries.attempts)
        .with_initial_backoff(retries.initial_backoff)
        .with_max_backoff(retries.max_backoff)
}

/// Counts the results of a batch; the replication lag of each copy or removal goes to
/// `lags`.
fn count(counts: &mut Counts, lags: &mut Vec<Duration>, result: &WorkResult) {
    match result {
        Err(_) => counts.failed += 1,
        Ok(applied) => {
            for a in applied {
                lags.extend(a.lag);
                counts.add(&a.outcome);
            }
        }
    }
}

/// Handles one invocation, `request_id` (Lambda's), that must finish by `deadline`.
pub async fn handle(
    app: &App,
    payload: Value,
    deadline: SystemTime,
    request_id: String,
) -> Result<Value, BoxError> {
    let (replicator, limits) = (&app.replicator, &app.limits);
    let deadline_at = deadline;
    let left = deadline
        .duration_since(SystemTime::now())
        .unwrap_or_default();
    let deadline = Instant::now() + left;
    match event::parse(payload)? {
        // Boxed: the listing and checkpoint calls make a deep future.
        Invocation::Backfill(request) => {
            Ok(Box::pin(app.backfill.handle(request, deadline_at, &request_id)).await?)
        }
        Invocation::Ignored(reason) => {
            tracing::info!(reason, "nothing to replicate");
            Ok(serde_json::to_value(Counts::default())?)
        }
        Invocation::Sqs(messages) => {
            let mut response = SqsBatchResponse::default();
            let (mut counts, mut lags) = (Counts::default(), Vec::new());
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
                        counts.failed += 1;
                        failed.push(message.message_id.clone());
                        response.add_failure(message.message_id);
                    }
                }
            }
            for (id, result) in batch::run(replicator, limits, work, deadline).await {
                count(&mut counts, &mut lags, &result);
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
                if tokio::time::timeout_at(until, app.retry_delay.apply(delayed))
                    .await
                    .is_err()
                {
                    tracing::warn!(count, "no time left to delay the failed messages' retries");
                }
            }
            counts.log(&lags, "batch done");
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
            let (mut counts, mut lags) = (Counts::default(), Vec::new());
            let mut first_error = None;
            for (_, result) in &results {
                count(&mut counts, &mut lags, result);
                if let Err(e) = result {
                    first_error.get_or_insert_with(|| e.clone());
                }
            }
            counts.log(&lags, "event done");
            match first_error {
                Some(e) => Err(format!(
                    "{} of {} changes failed; first: {e}",
                    counts.failed,
                    results.len()
                )
                .into()),
                None => Ok(serde_json::to_value(counts)?),
            }
        }
    }
}
