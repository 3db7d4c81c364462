//! Batches of S3 notifications through the handler (moto, fake-gcs-server behind the fault
//! proxy, the backed gRPC fake): copies with their attributes, many keys per batch, encoded
//! keys, redelivered and out-of-order events, deletes and keep mode, skips, direct events,
//! the invocation deadline and concurrent invocations.

mod common;

use std::time::{Duration, Instant};

use common::{Harness, crc32c_b64, data, failures, msg, notification, sqs_event};
use crossfed_tests::Fault;
use serde_json::{Value, json};

const MINUTE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn copies_one_object_with_metadata() {
    let h = Harness::start().await;
    let app = h.app(&[]).await;
    let put = h.put("hello.txt", b"hello world".to_vec()).await;
    let event = sqs_event(&[msg("m1", vec![h.created(&put)])]);
    let response = Harness::invoke(&app, event, MINUTE).await.unwrap();
    assert_eq!(response, json!({"batchItemFailures": []}));
    let name = Harness::dest_name("hello.txt");
    let object = h.gcs_object(&name).await.expect("copied");
    assert_eq!(object["size"], "11");
    assert_eq!(object["crc32c"], crc32c_b64(crc32c::crc32c(b"hello world")));
    let metadata = &object["metadata"];
    assert_eq!(
        metadata["x-crossfed-source"],
        format!("s3://{}/hello.txt", h.source_bucket)
    );
    assert_eq!(metadata["x-crossfed-source-etag"], put.etag);
    assert_eq!(metadata["x-crossfed-source-version-id"], Value::Null);
    assert_eq!(
        metadata["x-crossfed-sequencer"],
        Value::Null,
        "event sequencers are not bookkeeping"
    );
    assert_eq!(metadata["origin"], "test", "S3 user metadata carried over");
    assert_eq!(h.gcs_bytes(&name).await, b"hello world");
    // The upload declared checksums and the proxy verified them.
    let upload = h
        .proxy
        .requests()
        .into_iter()
        .find(|r| r.path.contains("/upload/"))
        .unwrap();
    assert_eq!(upload.checksum_ok, Some(true), "{upload:?}");
    assert!(upload.path.contains("ifGenerationMatch=0"), "{upload:?}");
}

#[tokio::test]
async fn syncs_500_small_objects_in_batches_of_10() {
    let h = Harness::start().await;
    let app = h.app(&[]).await;
    let mut puts = Vec::new();
    for chunk in (0..500u64).collect::<Vec<_>>().chunks(25) {
        let batch = chunk.iter().map(|&i| {
            let key = format!("small/{:03}/obj-{i}.bin", i % 7);
            let body = data(i, 100 + (i as usize * 37) % 4000);
            h.put_owned(key, body)
        });
        for put in batch {
            puts.push(put.await);
        }
    }
    let started = Instant::now();
    for (b, batch) in puts.chunks(10).enumerate() {
        let messages: Vec<_> = batch
            .iter()
            .enumerate()
            .map(|(i, p)| msg(&format!("b{b}-m{i}"), vec![h.created(p)]))
            .collect();
        let response = Harness::invoke(&app, sqs_event(&messages), MINUTE)
            .await
            .unwrap();
        assert_eq!(failures(&response), Vec::<String>::new(), "batch {b}");
    }
    eprintln!("500 objects synced in {:?}", started.elapsed());
    let names = h.gcs_names().await;
    assert_eq!(names.len(), 500);
    for (i, put) in puts.iter().enumerate() {
        let name = Harness::dest_name(&put.key);
        let object = h
            .gcs_object(&name)
            .await
            .unwrap_or_else(|| panic!("{name} missing"));
        let expected = data(i as u64, 100 + (i * 37) % 4000);
        assert_eq!(object["size"], expected.len().to_string());
        assert_eq!(
            object["crc32c"],
            crc32c_b64(crc32c::crc32c(&expected)),
            "{name}"
        );
        if i % 50 == 0 {
            assert_eq!(h.gcs_bytes(&name).await, expected, "{name}");
        }
    }
}

#[tokio::test]
async fn url_encoded_and_unicode_keys() {
    let h = Harness::start().await;
    let app = h.app(&[]).await;
    let keys = [
        "dir with spaces/file name.txt",
        "plus+sign/a+b.txt",
        "ünïcødé/日本語 ファイル.txt",
        "emoji/😀 smile.bin",
        "percent/100%25 literal%20.txt",
        "symbols/!'()*&$@=;:,?.txt",
    ];
    let mut messages = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let put = h.put(key, format!("content of {key}").into_bytes()).await;
        let record = h.created(&put);
        assert_ne!(record["s3"]["object"]["key"].as_str().unwrap(), *key);
        messages.push(msg(&format!("m{i}"), vec![record]));
    }
    let response = Harness::invoke(&app, sqs_event(&messages), MINUTE)
        .await
        .unwrap();
    assert_eq!(failures(&response), Vec::<String>::new());
    let mut expected: Vec<String> = keys.iter().map(|k| Harness::dest_name(k)).collect();
    expected.sort();
    assert_eq!(h.gcs_names().await, expected);
    for key in keys {
        let name = Harness::dest_name(key);
        assert_eq!(
            h.gcs_bytes(&name).await,
            format!("content of {key}").into_bytes()
        );
        assert_eq!(
            h.gcs_metadata(&name, "x-crossfed-source").await.unwrap(),
            format!("s3://{}/{key}", h.source_bucket)
        );
    }
}

#[tokio::test]
async fn redelivery_and_out_of_order_events() {
    let h = Harness::start().await;
    let app = h.app(&[]).await;
    let name = Harness::dest_name("doc.txt");

    let v1 = h.put("doc.txt", b"version 1".to_vec()).await;
    let create_v1 = h.created(&v1);
    let v2 = h.put("doc.txt", b"version two".to_vec()).await;
    let create_v2 = h.created(&v2);

    // The newer event arrives first.
    let r = Harness::invoke(
        &app,
        sqs_event(&[msg("a", vec![create_v2.clone()])]),
        MINUTE,
    )
    .await;
    assert_eq!(failures(&r.unwrap()), Vec::<String>::new());
    let generation = h.gcs_object(&name).await.unwrap()["generation"].clone();
    assert_eq!(h.gcs_bytes(&name).await, b"version two");

    // The older event and a redelivery of the newer one: no-ops (no upload at all).
    let uploads_before = h.proxy.calls();
    let event = sqs_event(&[
        msg("b", vec![create_v1.clone()]),
        msg("c", vec![create_v2.clone()]),
    ]);
    let r = Harness::invoke(&app, event, MINUTE).await.unwrap();
    assert_eq!(failures(&r), Vec::<String>::new());
    assert_eq!(h.proxy.calls(), uploads_before, "nothing uploaded");
    assert_eq!(h.gcs_object(&name).await.unwrap()["generation"], generation);
    assert_eq!(h.gcs_bytes(&name).await, b"version two");

    // A delete older than the copy is ignored.
    let stale_delete = h.record(
        "ObjectRemoved:Delete",
        &v1,
        create_v1["s3"]["object"]["sequencer"].as_str().unwrap(),
    );
    let r = Harness::invoke(&app, sqs_event(&[msg("d", vec![stale_delete])]), MINUTE).await;
    assert_eq!(failures(&r.unwrap()), Vec::<String>::new());
    assert!(h.gcs_object(&name).await.is_some(), "stale delete ignored");

    // Same batch, out of order: v4 then v3 (different keys interleaved). Per key, the
    // batch applies them one after another; S3 serves v4, so whichever runs first copies
    // v4 and the other finds the copy current.
    let v3 = h.put("doc.txt", b"v3".to_vec()).await;
    let create_v3 = h.created(&v3);
    let v4 = h.put("doc.txt", b"v4!".to_vec()).await;
    let create_v4 = h.created(&v4);
    let other = h.put("other.txt", b"other".to_vec()).await;
    let event = sqs_event(&[
        msg("e", vec![create_v4.clone()]),
        msg("f", vec![h.created(&other)]),
        msg("g", vec![create_v3]),
    ]);
    let r = Harness::invoke(&app, event, MINUTE).await.unwrap();
    assert_eq!(failures(&r), Vec::<String>::new());
    assert_eq!(h.gcs_bytes(&name).await, b"v4!");
    assert_eq!(
        h.gcs_metadata(&name, "x-crossfed-source-etag")
            .await
            .unwrap(),
        v4.etag
    );

    // Delete in S3 and notify; then the old create is redelivered: the source is gone, so
    // nothing comes back.
    h.delete_source("doc.txt").await;
    let delete = h.removed(&v4);
    let r = Harness::invoke(&app, sqs_event(&[msg("h", vec![delete.clone()])]), MINUTE).await;
    assert_eq!(failures(&r.unwrap()), Vec::<String>::new());
    assert!(h.gcs_object(&name).await.is_none(), "deleted");
    let event = sqs_event(&[msg("i", vec![create_v4]), msg("j", vec![delete])]);
    let r = Harness::invoke(&app, event, MINUTE).await.unwrap();
    assert_eq!(failures(&r), Vec::<String>::new());
    assert!(h.gcs_object(&name).await.is_none(), "still deleted");
}

#[tokio::test]
async fn deletes_and_keep_mode() {
    let h = Harness::start().await;
    let app = h.app(&[]).await;
    let keep = h.app(&[("SYNC_DELETE_MODE", "keep")]).await;
    let a = h.put("a.txt", b"a".to_vec()).await;
    let b = h.put("b.txt", b"b".to_vec()).await;
    let event = sqs_event(&[msg("1", vec![h.created(&a)]), msg("2", vec![h.created(&b)])]);
    assert_eq!(
        failures(&Harness::invoke(&app, event, MINUTE).await.unwrap()),
        Vec::<String>::new()
    );
    h.delete_source("a.txt").await;
    h.delete_source("b.txt").await;

    let r = Harness::invoke(&keep, sqs_event(&[msg("3", vec![h.removed(&a)])]), MINUTE).await;
    assert_eq!(failures(&r.unwrap()), Vec::<String>::new());
    assert!(
        h.gcs_object(&Harness::dest_name("a.txt")).await.is_some(),
        "kept"
    );

    let r = Harness::invoke(
        &app,
        sqs_event(&[msg("4", vec![h.removed(&a), h.removed(&b)])]),
        MINUTE,
    )
    .await;
    assert_eq!(failures(&r.unwrap()), Vec::<String>::new());
    assert_eq!(h.gcs_names().await, Vec::<String>::new());
    let deletes: Vec<_> = h
        .grpc
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/DeleteObject"))
        .collect();
    assert_eq!(deletes.len(), 2, "{deletes:?}");
    assert!(
        deletes.iter().all(|d| d.if_generation_match.is_some()),
        "{deletes:?}"
    );

    // Deleting what is not there is fine (redelivery).
    let r = Harness::invoke(&app, sqs_event(&[msg("5", vec![h.removed(&a)])]), MINUTE).await;
    assert_eq!(failures(&r.unwrap()), Vec::<String>::new());
}

#[tokio::test]
async fn missing_source_test_events_and_unknown_events_are_skipped() {
    let h = Harness::start().await;
    let app = h.app(&[]).await;
    let gone = h.put("gone.txt", b"x".to_vec()).await;
    h.delete_source("gone.txt").await;
    let never = common::Put {
        key: "never-existed.txt".into(),
        etag: "0123456789abcdef0123456789abcdef".into(),
        version_id: None,
        size: 3,
    };
    let test_event = json!({
        "Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2024-05-01T12:00:00.000Z",
        "Bucket": h.source_bucket, "RequestId": "5582815E1AEA5ADF", "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE"
    });
    let restore = h.record("ObjectRestore:Completed", &never, "01");
    let event = sqs_event(&[
        msg("gone", vec![h.created(&gone)]),
        msg("never", vec![h.created(&never)]),
        ("test".into(), test_event.clone()),
        msg("restore", vec![restore]),
    ]);
    let r = Harness::invoke(&app, event, MINUTE).await.unwrap();
    assert_eq!(failures(&r), Vec::<String>::new());
    assert_eq!(h.gcs_names().await, Vec::<String>::new());
    // A test event invoking the function directly.
    let r = Harness::invoke(&app, test_event, MINUTE).await.unwrap();
    assert_eq!(r["failed"], 0);
    assert_eq!(h.proxy.calls(), 0, "no upload attempted");
}

#[tokio::test]
async fn direct_s3_events() {
    let h = Harness::start().await;
    let app = h.app(&[]).await;
    let a = h.put("direct/a.txt", b"direct".to_vec()).await;
    let r = Harness::invoke(&app, notification(vec![h.created(&a)]), MINUTE)
        .await
        .unwrap();
    assert_eq!(
        (r["copied"].as_u64(), r["bytes"].as_u64()),
        (Some(1), Some(6))
    );
    assert_eq!(
        h.gcs_bytes(&Harness::dest_name("direct/a.txt")).await,
        b"direct"
    );
    // A failure fails the invocation (Lambda retries asynchronous invocations).
    let b = h.put("direct/b.txt", b"b".to_vec()).await;
    h.proxy.inject_faults([Fault::Status(400)]);
    let err = Harness::invoke(&app, notification(vec![h.created(&b)]), MINUTE)
        .await
        .unwrap_err();
    assert!(err.contains("1 of 1 changes failed"), "{err}");
    assert!(
        Harness::invoke(&app, json!({"hello": "world"}), MINUTE)
            .await
            .unwrap_err()
            .contains("unsupported event")
    );
}

#[tokio::test]
async fn deadline_near_nothing_starts_and_slow_work_is_abandoned() {
    let h = Harness::start().await;
    let app = h
        .app(&[
            ("SYNC_DEADLINE_MARGIN_MS", "1500"),
            ("SYNC_ABORT_MARGIN_MS", "500"),
        ])
        .await;
    let a = h.put("a.txt", b"a".to_vec()).await;
    let b = h.put("b.txt", b"b".to_vec()).await;
    let event = sqs_event(&[msg("a", vec![h.created(&a)]), msg("b", vec![h.created(&b)])]);

    // Less time left than the start margin: every message goes back to the queue.
    let r = Harness::invoke(&app, event.clone(), Duration::from_millis(1000))
        .await
        .unwrap();
    assert_eq!(failures(&r), vec!["a", "b"]);
    assert_eq!(h.grpc.calls() + h.proxy.calls(), 0, "nothing started");

    // Enough time to start, but the upload hangs: abandoned before the deadline.
    h.proxy.inject_faults([
        Fault::Delay(Duration::from_secs(30)),
        Fault::Delay(Duration::from_secs(30)),
    ]);
    let started = Instant::now();
    let r = Harness::invoke(&app, event, Duration::from_millis(3000))
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(failures(&r), vec!["a", "b"]);
    assert!(
        took < Duration::from_millis(2900),
        "returned after {took:?}"
    );
    assert!(
        took >= Duration::from_millis(2300),
        "returned after {took:?}"
    );
    assert_eq!(h.gcs_names().await, Vec::<String>::new());
}

#[tokio::test]
async fn concurrent_invocations_never_let_an_older_version_win() {
    let h = Harness::start().await;
    h.enable_versioning().await;
    let (a, b, c) = (h.app(&[]).await, h.app(&[]).await, h.app(&[]).await);
    let (mut older, mut newer) = (Vec::new(), Vec::new());
    for i in 0..20 {
        let key = format!("race/{i}.txt");
        let v1 = h.put(&key, format!("old {i}").into_bytes()).await;
        let v2 = h.put(&key, format!("new {i}").into_bytes()).await;
        assert!(v1.version_id.is_some() && v1.version_id != v2.version_id);
        older.push(msg(&format!("old-{i}"), vec![h.created(&v1)]));
        newer.push(msg(&format!("new-{i}"), vec![h.created(&v2)]));
    }
    // Three invocations at once: the older events, and the newer ones twice (a duplicate
    // delivery racing the original). Generation preconditions make the racers re-decide.
    let (ra, rb, rc) = tokio::join!(
        Harness::invoke(&a, sqs_event(&older), MINUTE),
        Harness::invoke(&b, sqs_event(&newer), MINUTE),
        Harness::invoke(&c, sqs_event(&newer), MINUTE)
    );
    for r in [ra, rb, rc] {
        assert_eq!(failures(&r.unwrap()), Vec::<String>::new());
    }
    for (i, (_, body)) in newer.iter().enumerate() {
        let name = Harness::dest_name(&format!("race/{i}.txt"));
        assert_eq!(h.gcs_bytes(&name).await, format!("new {i}").into_bytes());
        assert_eq!(
            h.gcs_metadata(&name, "x-crossfed-source-etag")
                .await
                .unwrap(),
            body["Records"][0]["s3"]["object"]["eTag"].as_str().unwrap()
        );
    }
    // A versioned object deleted (delete marker) after the copy: its create event,
    // redelivered after the delete was applied, does not bring the copy back.
    h.delete_source("race/0.txt").await;
    let marker = common::Put {
        key: "race/0.txt".into(),
        etag: String::new(),
        version_id: Some("marker".into()),
        size: 0,
    };
    let seq = h.next_sequencer();
    let deleted = h.record("ObjectRemoved:DeleteMarkerCreated", &marker, &seq);
    let r = Harness::invoke(&a, sqs_event(&[msg("del", vec![deleted])]), MINUTE).await;
    assert_eq!(failures(&r.unwrap()), Vec::<String>::new());
    assert!(
        h.gcs_object(&Harness::dest_name("race/0.txt"))
            .await
            .is_none()
    );
    let r = Harness::invoke(&a, sqs_event(&newer[..1]), MINUTE).await;
    assert_eq!(failures(&r.unwrap()), Vec::<String>::new());
    assert!(
        h.gcs_object(&Harness::dest_name("race/0.txt"))
            .await
            .is_none(),
        "not resurrected"
    );
    let conflicts = h
        .proxy
        .requests()
        .iter()
        .filter(|r| r.status == 412)
        .count();
    eprintln!("generation precondition conflicts: {conflicts}");
    assert!(conflicts > 0, "the racing duplicates should have collided");
}
