//! The HTTP data path of the official `Storage` client with crossfed credentials, against
//! fake-gcs-server (`STORAGE_EMULATOR_HOST`-style endpoint from `make test`).

use crossfed_tests::FakeGcsServer;
use crossfed_tests::GoogleApi;
use crossfed_tests::scenario::{ConfigShape, Scenario};
use google_cloud_storage::client::Storage;

#[tokio::test]
async fn writes_and_reads_an_object_with_federated_credentials() {
    let s = Scenario::start().await;
    let gcs = FakeGcsServer::from_local_cloud(&s.cloud);
    let endpoint = gcs.url();
    let bucket = gcs.create_unique_bucket("crossfed-data").await;

    let creds = s
        .builder(&s.config_json(&ConfigShape::default()))
        .build()
        .unwrap();
    let storage = Storage::builder()
        .with_endpoint(endpoint)
        .with_credentials(creds)
        .build()
        .await
        .unwrap();
    let payload = "héllo from AWS via Workload Identity Federation\n".repeat(1000);
    let object = storage
        .write_object(
            format!("projects/_/buckets/{bucket}"),
            "dir/greeting.txt",
            payload.clone(),
        )
        .send_buffered()
        .await
        .unwrap();
    assert_eq!(object.size, payload.len() as i64);

    let mut reader = storage
        .read_object(format!("projects/_/buckets/{bucket}"), "dir/greeting.txt")
        .send()
        .await
        .unwrap();
    let mut read = Vec::new();
    while let Some(chunk) = reader.next().await.transpose().unwrap() {
        read.extend_from_slice(&chunk);
    }
    assert_eq!(read, payload.as_bytes());
    assert_eq!(
        (
            s.google.calls(GoogleApi::Sts),
            s.google.calls(GoogleApi::GenerateAccessToken)
        ),
        (1, 1),
        "one exchange for both calls"
    );
}
