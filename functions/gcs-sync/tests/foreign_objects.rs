//! Objects under the destination prefix that gcs-sync did not write as a key's copy (no
//! source marker, or one naming another bucket or key: a report, another stack's mirror,
//! anything a user put there) are foreign: an event never deletes or overwrites them, a
//! backfill counts them and never deletes them. Copies gcs-sync made still follow S3.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::backfill::{Recorder, run_backfill};
use common::{Harness, Put, notification};
use serde_json::json;

const MINUTE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn events_never_delete_or_overwrite_foreign_objects() {
    let h = Harness::start().await;
    let app = h.app(&[]).await;
    // A report written into the sync prefix (no marker); S3 has no such key.
    let report = Harness::dest_name("reports/report.md");
    h.plant(&report, "", b"report").await;
    // Another stack's mirror of the same key from another bucket.
    let mirrored = Harness::dest_name("shared.txt");
    h.plant(&mirrored, "s3://another-bucket/shared.txt", b"theirs")
        .await;
    let shared = h.put("shared.txt", b"ours".to_vec()).await;
    // A forged removal naming the report's key, and the creation of the shared key.
    let forged = Put {
        key: "reports/report.md".into(),
        etag: String::new(),
        version_id: None,
        size: 0,
    };
    let event = notification(vec![h.removed(&forged), h.created(&shared)]);
    let r = Harness::invoke(&app, event, MINUTE).await.unwrap();
    assert_eq!(r["foreign"], 2, "{r}");
    assert_eq!((&r["deleted"], &r["copied"]), (&json!(0), &json!(0)), "{r}");
    assert_eq!(h.gcs_bytes(&report).await, b"report");
    assert_eq!(h.gcs_bytes(&mirrored).await, b"theirs");
    // A copy gcs-sync made is still deleted once its object is gone.
    let own = h.put("own.txt", b"own".to_vec()).await;
    let r = Harness::invoke(&app, notification(vec![h.created(&own)]), MINUTE)
        .await
        .unwrap();
    assert_eq!(r["copied"], 1, "{r}");
    h.delete_source("own.txt").await;
    let r = Harness::invoke(&app, notification(vec![h.removed(&own)]), MINUTE)
        .await
        .unwrap();
    assert_eq!(r["deleted"], 1, "{r}");
    assert!(h.gcs_object(&Harness::dest_name("own.txt")).await.is_none());
}

#[tokio::test]
async fn a_backfill_counts_foreign_objects_and_never_deletes_them() {
    let h = Harness::start().await;
    let mut app = h.app(&[]).await;
    let recorder = Arc::new(Recorder::default());
    app.backfill.continuation = Some(recorder.clone());
    h.put("b/kept.txt", b"kept".to_vec()).await;
    // A copy gcs-sync made of an object since removed from S3: deleted.
    let gone = Harness::dest_name("b/gone.txt");
    let marker = format!("s3://{}/b/gone.txt", h.source_bucket);
    h.plant(&gone, &marker, b"gone").await;
    // Foreign: no marker (no S3 counterpart), and another bucket's copy at a key S3 has.
    let report = Harness::dest_name("b/report.md");
    h.plant(&report, "", b"report").await;
    let theirs = Harness::dest_name("b/kept.txt");
    h.plant(&theirs, "s3://another-bucket/b/kept.txt", b"theirs")
        .await;
    let (_, state) = run_backfill(&app, &recorder, "b/", MINUTE).await;
    assert_eq!(
        (&state["foreign"], &state["deleted"], &state["copied"]),
        (&json!(2), &json!(1), &json!(0)),
        "{state}"
    );
    assert!(h.gcs_object(&gone).await.is_none());
    assert_eq!(h.gcs_bytes(&report).await, b"report");
    assert_eq!(h.gcs_bytes(&theirs).await, b"theirs");
    assert_eq!(
        h.checkpoint_field(&state, "foreign").await.as_deref(),
        Some("2")
    );
}
