//! The `ReplicationLag` metric: measured from S3's event time to the applied copy or
//! removal, through the real batch runner against the local clouds; skips carry none.

mod common;

use std::time::{Duration, SystemTime};

use common::Harness;
use gcs_sync::batch::{self, Applied, Work};
use gcs_sync::event::parse_body;
use gcs_sync::handler::App;
use gcs_sync::replicate::Outcome;
use serde_json::json;
use tokio::time::Instant;

/// One work unit from the harness's S3 record, with its `eventTime` set `ago` in the past.
fn work(id: &str, mut record: serde_json::Value, ago: Duration) -> Work {
    let at: time::OffsetDateTime = (SystemTime::now() - ago).into();
    record["eventTime"] = json!(
        at.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    );
    let changes = parse_body(&json!({"Records": [record]}).to_string()).expect("record");
    Work {
        id: id.into(),
        changes,
    }
}

/// Runs one work unit through the batch runner; its applied change.
async fn apply(app: &App, work: Work) -> Applied {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut results = batch::run(&app.replicator, &app.limits, vec![work], deadline).await;
    let (id, result) = results.remove(0);
    let mut applied = result.unwrap_or_else(|e| panic!("{id}: {e}"));
    assert_eq!(applied.len(), 1, "{id}");
    applied.remove(0)
}

#[tokio::test]
async fn lag_runs_from_the_event_time_to_the_applied_change() {
    let h = Harness::start().await;
    let app = h.app(&[]).await;
    let put = h.put("lag/a.txt", b"alpha".to_vec()).await;
    let ago = Duration::from_secs(90);

    let started = SystemTime::now();
    let applied = apply(&app, work("copy", h.created(&put), ago)).await;
    let took = started.elapsed().unwrap();
    assert!(matches!(applied.outcome, Outcome::Copied { .. }));
    let lag = applied.lag.expect("a copy has a lag");
    assert!(
        lag >= ago && lag <= ago + took + Duration::from_secs(2),
        "lag {lag:?}, event {ago:?} ago, batch took {took:?}"
    );

    // The same event again: the copy already records S3's current version, a skip, no lag.
    let applied = apply(&app, work("again", h.created(&put), ago)).await;
    assert!(matches!(applied.outcome, Outcome::Skipped(_)));
    assert_eq!(applied.lag, None);

    // A removal confirmed with S3 has a lag too.
    h.delete_source("lag/a.txt").await;
    let applied = apply(
        &app,
        work("remove", h.removed(&put), Duration::from_secs(5)),
    )
    .await;
    assert!(matches!(applied.outcome, Outcome::Deleted { .. }));
    assert!(applied.lag.expect("a removal has a lag") >= Duration::from_secs(5));
}
