//! A backfill never runs forever: an invocation too short for a page is refused, a run
//! whose position does not advance over three invocations stops with an error, a run stops
//! after the most invocations one may take, a retried start resumes its run instead of
//! forking a second one, and an invocation that loses its checkpoint to a duplicate of
//! itself stops cleanly.

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::backfill::Recorder;
use common::{Harness, data};
use crossfed_tests::Fault;
use gcs_sync::event::backfill_request;
use gcs_sync::handler::App;
use serde_json::{Value, json};

const MINUTE: Duration = Duration::from_secs(60);

/// One backfill invocation of `payload` given `left`, as Lambda's request `request_id`.
async fn invoke(
    app: &App,
    payload: &Value,
    left: Duration,
    request_id: &str,
) -> Result<Value, String> {
    let request = backfill_request(payload).unwrap().unwrap();
    app.backfill
        .handle(request, SystemTime::now() + left, request_id)
        .await
        .map_err(|e| e.to_string())
}

/// Writes the checkpoint of run `run` over `prefix` as earlier invocations would have.
async fn plant_checkpoint(h: &Harness, run: &str, prefix: &str, invocations: u64) {
    let name = format!("{}/.crossfed/backfill/{run}", common::PREFIX);
    let metadata = json!({
        "x-crossfed-backfill-run": run,
        "x-crossfed-backfill-bucket": h.source_bucket,
        "x-crossfed-backfill-prefix": prefix,
        "x-crossfed-backfill-invocations": invocations.to_string(),
    });
    h.gcs
        .upload(
            &h.dest_bucket,
            &json!({"name": name, "metadata": metadata}),
            b"",
        )
        .await
        .expect("checkpoint");
}

#[tokio::test]
async fn an_invocation_too_short_for_a_page_is_refused() {
    let h = Harness::start().await;
    let app = h.app(&[("SYNC_DEADLINE_MARGIN_MS", "1000")]).await;
    let payload = json!({"backfill": {"prefix": ""}});
    let err = invoke(&app, &payload, Duration::from_millis(1500), "")
        .await
        .unwrap_err();
    assert!(
        err.contains("less than twice SYNC_DEADLINE_MARGIN_MS"),
        "{err}"
    );
    assert_eq!(h.gcs_names().await, Vec::<String>::new(), "no run started");
}

#[tokio::test]
async fn a_run_that_makes_no_progress_stops_with_an_error() {
    let h = Harness::start().await;
    let mut app = h
        .app(&[
            ("SYNC_DEADLINE_MARGIN_MS", "1000"),
            ("SYNC_ABORT_MARGIN_MS", "200"),
            ("SYNC_CONCURRENCY", "1"),
        ])
        .await;
    let recorder = Arc::new(Recorder::default());
    app.backfill.continuation = Some(recorder.clone());
    for i in 0..5 {
        h.put(&format!("slow/{i}.bin"), data(i, 100)).await;
    }
    // Every Cloud Storage upload (copies and checkpoints) takes longer than an invocation
    // has: no page is ever finished, the position never advances.
    h.proxy
        .inject_faults(vec![Fault::Delay(Duration::from_secs(3)); 8]);
    let mut payload = json!({"backfill": {"prefix": "slow/"}});
    for invocation in 1..=2 {
        let state = invoke(&app, &payload, Duration::from_millis(2100), "")
            .await
            .unwrap_or_else(|e| panic!("invocation {invocation}: {e}"));
        assert_eq!(
            (&state["continued"], &state["stalled"]),
            (&json!(true), &json!(invocation)),
            "{state}"
        );
        payload = recorder.0.lock().unwrap().pop().expect("continued");
    }
    let err = invoke(&app, &payload, Duration::from_millis(2100), "")
        .await
        .unwrap_err();
    assert!(err.contains("made no progress in 3 invocations"), "{err}");
    assert!(recorder.0.lock().unwrap().is_empty(), "not continued");
}

#[tokio::test]
async fn a_run_stops_after_the_most_invocations_one_may_take() {
    let h = Harness::start().await;
    let app = h.app(&[]).await;
    plant_checkpoint(&h, "long-run", "", 1000).await;
    let err = invoke(&app, &json!({"backfill": {"run": "long-run"}}), MINUTE, "")
        .await
        .unwrap_err();
    assert!(err.contains("stopped after 1000 invocations"), "{err}");
}

#[tokio::test]
async fn a_retried_start_resumes_its_run() {
    let h = Harness::start().await;
    let app = h.app(&[]).await;
    h.put("r/a.txt", b"a".to_vec()).await;
    let request_id = "8476a536-e9f4-11e8-9739-2dfe598c3fcd";
    let payload = json!({"backfill": {"prefix": "r/"}});
    let first = invoke(&app, &payload, MINUTE, request_id).await.unwrap();
    assert_eq!(
        (&first["run"], &first["done"]),
        (&json!(request_id), &json!(true))
    );
    // Lambda retries an asynchronous invocation with the same request id: the same run,
    // not a second one.
    let retried = invoke(&app, &payload, MINUTE, request_id).await.unwrap();
    assert_eq!(
        (&retried["run"], &retried["copied"]),
        (&json!(request_id), &json!(1)),
        "{retried}"
    );
    let checkpoints: Vec<String> = h
        .gcs_names()
        .await
        .into_iter()
        .filter(|n| n.contains("/.crossfed/backfill/"))
        .collect();
    assert_eq!(checkpoints.len(), 1, "{checkpoints:?}");
}

#[tokio::test]
async fn an_invocation_that_loses_its_checkpoint_stops_cleanly() {
    let h = Harness::start().await;
    let app = h.app(&[]).await;
    for i in 0..10 {
        h.put(&format!("d/{i:02}.txt"), data(i, 100)).await;
    }
    plant_checkpoint(&h, "dup-run", "d/", 0).await;
    // Two deliveries of the same continuation at once: one goes on, the other stops.
    let payload = json!({"backfill": {"run": "dup-run"}});
    let (a, b) = tokio::join!(
        invoke(&app, &payload, MINUTE, "a"),
        invoke(&app, &payload, MINUTE, "b")
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let raced = [&a, &b].iter().filter(|s| s["raced"] == true).count();
    assert_eq!(raced, 1, "{a}\n{b}");
    assert!([&a, &b].iter().any(|s| s["done"] == true), "{a}\n{b}");
    for i in 0..10 {
        h.assert_follows_s3(&format!("d/{i:02}.txt")).await;
    }
}
