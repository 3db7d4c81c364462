//! Cold-start wiring: settings, credentials and the three clients, built once per sandbox.

use std::sync::Arc;

use aws_config::retry::RetryConfig;
use google_cloud_gax::exponential_backoff::ExponentialBackoffBuilder;
use google_cloud_gax::retry_policy::RetryPolicyExt as _;
use google_cloud_storage::client::{Storage, StorageControl};
use google_cloud_storage::retry_policy::RetryableErrors;
use lambda_runtime::Error;

use crate::backfill::{Backfill, LambdaContinuation};
use crate::config::{Limits, Retries, Settings};
use crate::gcs_writer::GcsWriter;
use crate::replicate::Replicator;

/// What every invocation reuses.
pub struct App {
    pub replicator: Arc<Replicator>,
    pub limits: Limits,
    /// `{"backfill": ...}` invocations.
    pub backfill: Backfill,
}

impl App {
    /// Reads the settings (`SYNC_*`, `STORAGE_EMULATOR_HOST[_GRPC]`), the credential
    /// configuration (`CROSSFED_CONFIG_PARAMETER` / `GOOGLE_APPLICATION_CREDENTIALS`) and the
    /// AWS environment, builds the clients and warms the token cache.
    pub async fn from_env() -> Result<Self, Error> {
        let settings = Settings::from_env()?;
        let credentials = crossfed::Credentials::from_env()?;
        let s3 = s3_client(&settings.retries).await;
        let mut app = Self::new(&settings, credentials.clone(), s3).await?;
        app.backfill.source_bucket = std::env::var("SYNC_SOURCE_BUCKET")
            .ok()
            .filter(|b| !b.trim().is_empty());
        if let Ok(function) = std::env::var("AWS_LAMBDA_FUNCTION_NAME") {
            let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
                .load()
                .await;
            let lambda = aws_sdk_lambda::Client::new(&config);
            app.backfill.continuation = Some(Arc::new(LambdaContinuation::new(lambda, function)));
        }
        if let Err(e) = credentials.token().await {
            tracing::warn!(error = %e, "could not obtain a Google token at start-up; will retry per invocation");
        }
        tracing::info!(destination = %settings.destination, delete_mode = ?settings.delete_mode, "ready");
        Ok(app)
    }

    /// Builds the Cloud Storage clients for `settings` around an S3 client.
    pub async fn new(
        settings: &Settings,
        credentials: crossfed::Credentials,
        s3: aws_sdk_s3::Client,
    ) -> Result<Self, Error> {
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
            .with_backoff_policy(backoff()?)
            .with_resumable_upload_threshold(settings.upload_chunk)
            .with_resumable_upload_buffer_size(settings.upload_chunk);
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
        let gcs = GcsWriter::new(
            storage.build().await?,
            control.build().await?,
            settings.destination.clone(),
        );
        Ok(App {
            replicator: Arc::new(
                Replicator::new(s3, gcs, settings.delete_mode).with_parts(settings.parts),
            ),
            limits: settings.limits.clone(),
            backfill: Backfill {
                source_bucket: None,
                continuation: None,
                page_size: crate::backfill::DEFAULT_PAGE_SIZE,
            },
        })
    }
}

/// S3 client from the Lambda environment (region, role credentials, `AWS_ENDPOINT_URL`),
/// retrying like the Cloud Storage clients. A custom endpoint implies path-style addressing.
pub async fn s3_client(retries: &Retries) -> aws_sdk_s3::Client {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(retries.attempts)
                .with_initial_backoff(retries.initial_backoff)
                .with_max_backoff(retries.max_backoff),
        )
        .load()
        .await;
    let custom_endpoint = config.endpoint_url().is_some();
    let s3 = aws_sdk_s3::config::Builder::from(&config)
        .force_path_style(custom_endpoint)
        .build();
    aws_sdk_s3::Client::from_conf(s3)
}
