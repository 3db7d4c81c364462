//! A backfill of pre-existing objects run to the end over several invocations, its
//! continuations recorded instead of invoking Lambda (behaviour tests and benchmarks share it).

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use gcs_sync::backfill::{self, Continuation};
use gcs_sync::handler::App;
use serde_json::{Value, json};

use super::{Harness, crc32c_b64, data};

/// Records the continuations: the payloads of the next invocations.
#[derive(Default)]
pub struct Recorder(pub Mutex<Vec<Value>>);

impl Continuation for Recorder {
    fn invoke(&self, payload: Value) -> backfill::InvokeFuture<'_> {
        self.0.lock().unwrap().push(payload);
        Box::pin(async { Ok(()) })
    }
}

/// Runs a backfill of `prefix` to the end, each invocation given `left`; returns the
/// number of invocations and the final state.
pub async fn run_backfill(
    app: &App,
    recorder: &Recorder,
    prefix: &str,
    left: Duration,
) -> (usize, Value) {
    let mut payload = json!({"backfill": {"prefix": prefix}});
    for invocation in 1..=200 {
        let request = gcs_sync::event::backfill_request(&payload)
            .unwrap()
            .unwrap();
        let state = app
            .backfill
            .handle(request, SystemTime::now() + left, "")
            .await
            .unwrap_or_else(|e| panic!("invocation {invocation}: {e}"));
        eprintln!("invocation {invocation}: {state}");
        if state["done"] == true {
            assert_eq!(state["continued"], false);
            assert!(recorder.0.lock().unwrap().is_empty());
            return (invocation, state);
        }
        assert_eq!(state["continued"], true);
        let next = recorder.0.lock().unwrap().pop().expect("continued");
        assert_eq!(next, json!({"backfill": {"run": state["run"]}}));
        payload = next;
    }
    panic!("backfill did not finish");
}

/// Backfills `count` pre-existing objects, then again, each invocation given `left` and
/// starting pages while `start_margin` is left (in-flight copies are aborted at a fifth of
/// it, 200 ms at most); returns the first run's invocations and time, and the second run's
/// time.
pub async fn backfill_objects(
    count: u64,
    page_size: i32,
    left: Duration,
    start_margin: Duration,
) -> (usize, Duration, Duration) {
    let h = Harness::start().await;
    let start_ms = start_margin.as_millis().to_string();
    let abort_ms = (start_margin / 5)
        .min(Duration::from_millis(200))
        .as_millis()
        .to_string();
    let mut app = h
        .app(&[
            ("SYNC_DEADLINE_MARGIN_MS", start_ms.as_str()),
            ("SYNC_ABORT_MARGIN_MS", abort_ms.as_str()),
        ])
        .await;
    let recorder = Arc::new(Recorder::default());
    app.backfill.continuation = Some(recorder.clone());
    app.backfill.page_size = page_size;

    // Pre-existing objects (no events), one already copied, one drifted copy, one extra
    // copy, and an object outside the prefix.
    let mut expected = Vec::new();
    for i in 0..count {
        let key = format!("pre/{:02}/obj-{i:05}.bin", i % 13);
        let body = data(i, 10 + (i as usize * 31) % 2000);
        h.put(&key, body.clone()).await;
        expected.push((key, body));
    }
    expected.sort();
    let (first_key, first_body) = expected[0].clone();
    let stale = h.put(&first_key, b"old content".to_vec()).await;
    let app_events = h.app(&[]).await;
    let event = super::sqs_event(&[("m".into(), super::notification(vec![h.created(&stale)]))]);
    Harness::invoke(&app_events, event, Duration::from_secs(60))
        .await
        .unwrap();
    h.put(&first_key, first_body.clone()).await; // drift: the copy is now stale
    // A copy gcs-sync made of an object since removed from S3.
    let extra = Harness::dest_name("pre/00/zz-extra.bin");
    h.plant(
        &extra,
        &format!("s3://{}/pre/00/zz-extra.bin", h.source_bucket),
        b"extra",
    )
    .await;
    h.put("other/outside.txt", b"not backfilled".to_vec()).await;

    let started = std::time::Instant::now();
    let (invocations, state) = run_backfill(&app, &recorder, "pre/", left).await;
    let first_run = started.elapsed();
    assert!(
        invocations >= 2,
        "several invocations expected, got {invocations}"
    );
    assert_eq!(state["examined"], count);
    // Counts are exact unless a page was cut short with copies in flight (those land
    // uncounted and are in sync on the retry); the bucket contents below are exact.
    let copied = state["copied"].as_u64().unwrap();
    assert!(copied > count / 2 && copied <= count, "{state}");
    assert!(state["deleted"].as_u64().unwrap() <= 1, "{state}");
    assert_eq!(state["failed"], 0);
    // The checkpoint object records the finished run.
    assert_eq!(
        h.checkpoint_field(&state, "done").await.as_deref(),
        Some("true")
    );

    let names: Vec<String> = h
        .gcs_names()
        .await
        .into_iter()
        .filter(|n| !n.contains("/.crossfed/"))
        .collect();
    let want: Vec<String> = expected
        .iter()
        .map(|(k, _)| Harness::dest_name(k))
        .collect();
    assert_eq!(names, want);
    for (i, (key, body)) in expected.iter().enumerate() {
        if i % 97 == 0 {
            let object = h.gcs_object(&Harness::dest_name(key)).await.unwrap();
            assert_eq!(object["crc32c"], crc32c_b64(crc32c::crc32c(body)), "{key}");
        }
    }
    assert_eq!(
        h.gcs_bytes(&Harness::dest_name(&first_key)).await,
        first_body
    );

    // A second backfill finds everything in sync: no uploads besides its checkpoint.
    let seen = h.proxy.requests().len();
    let started = std::time::Instant::now();
    let (_, state) = run_backfill(&app, &recorder, "pre/", Duration::from_secs(120)).await;
    let second_run = started.elapsed();
    assert_eq!(
        (state["copied"].clone(), state["deleted"].clone()),
        (json!(0), json!(0))
    );
    let uploads: Vec<_> = h.proxy.requests()[seen..]
        .iter()
        .filter(|r| r.path.contains("/upload/") && !r.path.contains(".crossfed%2Fbackfill"))
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(uploads, Vec::<String>::new());
    (invocations, first_run, second_run)
}
