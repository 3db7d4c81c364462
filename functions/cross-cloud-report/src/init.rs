//! Cold-start wiring: configuration, credentials and clients, built once per sandbox.

use google_cloud_auth::credentials::AccessTokenCredentials;
use google_cloud_storage::client::{Storage, StorageControl};

use crate::config::Config;
use crate::handler::App;
use crate::listing::BoxError;
use crate::vertex::VertexClient;

/// Reads the configuration (strictly: a bad value fails init with what to fix), the
/// crossfed credentials (`CROSSFED_CONFIG_PARAMETER` / `GOOGLE_APPLICATION_CREDENTIALS`) and
/// the AWS SDK configuration (`AWS_ENDPOINT_URL*` honoured), builds the clients and warms
/// the token cache.
pub async fn from_env() -> Result<App, BoxError> {
    let config = Config::from_env()?;
    let credentials = crossfed::google::Credentials::from_env()?;
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let custom_endpoint = ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"]
        .iter()
        .any(|k| std::env::var(k).is_ok_and(|v| !v.trim().is_empty()));
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            // Emulators (and most S3-compatible endpoints) want path-style addressing.
            .force_path_style(custom_endpoint)
            .build(),
    );
    let app = build(config, credentials.clone(), s3).await?;
    if let Err(e) = credentials.token().await {
        tracing::warn!(error = %e, "could not obtain a Google token at start-up; will retry per invocation");
    }
    Ok(app)
}

/// The clients for `config`, with Google `credentials` and an S3 client.
pub async fn build(
    config: Config,
    credentials: crossfed::google::Credentials,
    s3: aws_sdk_s3::Client,
) -> Result<App, BoxError> {
    let mut control = StorageControl::builder().with_credentials(credentials.clone());
    if let Some(endpoint) = &config.storage_grpc_endpoint {
        control = control.with_endpoint(endpoint);
    }
    let control = control.build().await?;
    let storage = if config.writes_to_gcs() {
        let mut storage = Storage::builder().with_credentials(credentials.clone());
        if let Some(endpoint) = &config.storage_http_endpoint {
            storage = storage.with_endpoint(endpoint);
        }
        Some(storage.build().await?)
    } else {
        None
    };
    let vertex = VertexClient::new(&config.vertex, AccessTokenCredentials::from(credentials))?;
    Ok(App {
        config,
        control,
        storage,
        s3,
        vertex,
    })
}
