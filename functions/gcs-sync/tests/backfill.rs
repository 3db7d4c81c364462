//! Backfill and repair: objects that existed before notifications (and drifted copies)
//! are synced by `{"backfill": {...}}` over several invocations that checkpoint in the
//! destination bucket and continue in the next invocation; a second backfill then uploads
//! nothing.

mod common;

use std::time::{Duration, SystemTime};

use common::Harness;
use common::backfill::backfill_objects;
use serde_json::json;

/// Fast variant (`make test`): 120 objects, pages of 25, invocations of 650 ms that start
/// pages while 300 ms is left: a 350 ms window, about a third of the objects at the pace
/// seen here (10 ms an object), so one invocation could do them all only on a machine more
/// than three times faster. (A 1.1 s window once fitted all 120.)
#[tokio::test]
async fn backfills_pre_existing_objects_over_several_invocations() {
    backfill_objects(
        120,
        25,
        Duration::from_millis(650),
        Duration::from_millis(300),
    )
    .await;
}

#[tokio::test]
async fn bad_requests_say_what_to_send() {
    let err = gcs_sync::event::backfill_request(&json!({"backfill": {"prefix": 3}}))
        .unwrap()
        .unwrap_err();
    assert!(err.contains("\"prefix\""), "{err}");
    let h = Harness::start().await;
    let app = h.app(&[]).await;
    let request =
        gcs_sync::event::backfill_request(&json!({"backfill": {"bucket": "another-bucket"}}))
            .unwrap()
            .unwrap();
    let err = app
        .backfill
        .handle(request, SystemTime::now() + Duration::from_secs(60), "")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("SYNC_SOURCE_BUCKET"), "{err}");
    let request = gcs_sync::event::backfill_request(&json!({"backfill": {"run": "../x"}}))
        .unwrap()
        .unwrap();
    let err = app
        .backfill
        .handle(request, SystemTime::now() + Duration::from_secs(60), "")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("invalid backfill run id"), "{err}");
}
