//! Helpers shared by the unit tests of the Cloud Storage fakes (the fault proxy and the
//! gRPC fake), which run against the fake-gcs-server of the local clouds.

use std::time::Duration;

use crate::aws::localcloud::LocalCloud;
use crate::google::fake_gcs_server::FakeGcsServer;
use crate::google::static_credentials::StaticBearerCredentials;
use crate::google::token_registry::{TokenIssuer, TokenRegistry};

pub(crate) const SA: &str = "serviceAccount:crossfed@my-project.iam.gserviceaccount.com";

/// fake-gcs-server's URL from the local cloud env file.
pub(crate) fn backend() -> String {
    FakeGcsServer::from_local_cloud(&LocalCloud::load())
        .url()
        .to_string()
}

pub(crate) fn token(tokens: &TokenRegistry, scope: &str) -> String {
    tokens
        .issue(
            TokenIssuer::Test,
            SA,
            vec![],
            vec![scope.into()],
            Duration::from_secs(600),
        )
        .0
}

/// A new, uniquely named bucket in fake-gcs-server.
pub(crate) async fn create_bucket(backend: &str, prefix: &str) -> String {
    FakeGcsServer::new(backend)
        .create_unique_bucket(prefix)
        .await
}

/// Deletes a bucket and its objects (best effort; the server is shared).
pub(crate) async fn delete_bucket(backend: &str, bucket: &str) {
    FakeGcsServer::new(backend).delete_bucket(bucket).await;
}

/// The official `Storage` (HTTP) client at `endpoint`.
pub(crate) async fn storage(endpoint: &str, token: &str) -> google_cloud_storage::client::Storage {
    google_cloud_storage::client::Storage::builder()
        .with_endpoint(endpoint)
        .with_credentials(StaticBearerCredentials::credentials(token))
        .build()
        .await
        .expect("build Storage")
}

/// Reads a whole object with the `Storage` client.
pub(crate) async fn read(
    storage: &google_cloud_storage::client::Storage,
    bucket: &str,
    name: &str,
) -> Result<Vec<u8>, google_cloud_storage::Error> {
    let mut reader = storage
        .read_object(format!("projects/_/buckets/{bucket}"), name)
        .send()
        .await?;
    let mut data = Vec::new();
    while let Some(chunk) = reader.next().await.transpose()? {
        data.extend_from_slice(&chunk);
    }
    Ok(data)
}

/// HTTP status of the object's metadata in fake-gcs-server (200 or 404).
pub(crate) async fn backend_status(backend: &str, bucket: &str, name: &str) -> u16 {
    match FakeGcsServer::new(backend).object(bucket, name).await {
        Ok(Some(_)) => 200,
        Ok(None) => 404,
        Err(e) => e.http_status().unwrap_or_else(|| panic!("{e}")),
    }
}

/// Deterministic pseudo-random data.
pub(crate) fn data(len: usize, seed: u64) -> bytes::Bytes {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut v = vec![0u8; len];
    rng.fill(&mut v);
    bytes::Bytes::from(v)
}
