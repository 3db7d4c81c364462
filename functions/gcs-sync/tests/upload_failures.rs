//! Failed uploads through the handler: a 503 is retried and the retry reads S3 again, an
//! object overwritten before the retry is copied anew, a corrupt upload never lands, and
//! permanent failures are reported per message with nothing lost.

mod common;

use std::time::Duration;

use common::{Harness, crc32c_b64, data, failures, msg, sqs_event};
use crossfed_tests::Fault;
use serde_json::json;

const MINUTE: Duration = Duration::from_secs(60);

/// Upload requests of `name` the proxy saw, in order.
fn uploads_of(h: &Harness, name: &str) -> Vec<crossfed_tests::ProxyRequestRecord> {
    let query = format!(
        "name={}",
        form_urlencoded::byte_serialize(name.as_bytes()).collect::<String>()
    );
    h.proxy
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/upload/") && r.path.contains(&query))
        .collect()
}

#[tokio::test]
async fn gcs_503_is_retried_and_a_retried_upload_reads_s3_again() {
    let h = Harness::start().await;
    let app = h.app(&[]).await;
    let small = h.put("small.bin", data(1, 1000)).await;
    let large = h.put("large.bin", data(2, 1 << 20)).await;

    h.grpc.inject_faults([Fault::Status(503)]);
    h.proxy
        .inject_faults([Fault::Status(503), Fault::Status(503)]);
    let r = Harness::invoke(
        &app,
        sqs_event(&[msg("s", vec![h.created(&small)])]),
        MINUTE,
    )
    .await;
    assert_eq!(failures(&r.unwrap()), Vec::<String>::new());
    assert_eq!(
        h.gcs_bytes(&Harness::dest_name("small.bin")).await,
        data(1, 1000)
    );
    assert!(
        h.grpc
            .requests()
            .iter()
            .any(|r| r.fault == Some(Fault::Status(503)))
    );

    // The service takes the whole 1 MiB, then fails: the stream is spent and nothing is
    // buffered, so the retry has to read S3 again.
    h.proxy.inject_faults([Fault::Status(503)]);
    let r = Harness::invoke(
        &app,
        sqs_event(&[msg("l", vec![h.created(&large)])]),
        MINUTE,
    );
    assert_eq!(failures(&r.await.unwrap()), Vec::<String>::new());
    let name = Harness::dest_name("large.bin");
    let expected = data(2, 1 << 20);
    let uploads = uploads_of(&h, &name);
    assert_eq!(uploads.len(), 2, "{uploads:#?}");
    assert_eq!(uploads[0].fault, Some(Fault::Status(503)));
    assert!(
        uploads[0].upload_bytes.unwrap() > expected.len() as u64,
        "the failed request carried the whole object: {:?}",
        uploads[0]
    );
    assert_eq!(uploads[1].upload_bytes, Some(expected.len() as u64));
    assert_eq!(
        uploads[1].checksum_ok,
        Some(true),
        "CRC32C declared and verified"
    );
    assert!(
        uploads
            .iter()
            .all(|u| u.path.contains("uploadType=multipart"))
    );
    let object = h.gcs_object(&name).await.unwrap();
    assert_eq!(object["crc32c"], crc32c_b64(crc32c::crc32c(&expected)));
    assert_eq!(object["metadata"]["x-crossfed-source-etag"], large.etag);
    assert_eq!(h.gcs_bytes(&name).await, expected);
}

/// S3 is overwritten between a failed upload and its retry: reading S3 again (`If-Match`
/// the old ETag) answers 412, so the function decides again and copies the new object
/// instead of failing or finishing the old one.
#[tokio::test]
async fn an_object_overwritten_before_an_upload_retry_is_copied_anew() {
    let h = Harness::start().await;
    // Enough attempts that the overwrite below lands before they run out, however the
    // jittered back-off falls; short back-off to keep the test quick.
    let app = h
        .app(&[
            ("SYNC_RETRY_ATTEMPTS", "20"),
            ("SYNC_RETRY_INITIAL_BACKOFF_MS", "100"),
            ("SYNC_RETRY_MAX_BACKOFF_MS", "300"),
        ])
        .await;
    let key = "moving.bin";
    let old = h.put(key, data(20, 300_000)).await;
    h.proxy
        .inject_faults(std::iter::repeat_n(Fault::Status(503), 12));
    let invocation = Harness::invoke(&app, sqs_event(&[msg("m", vec![h.created(&old)])]), MINUTE);
    tokio::pin!(invocation);
    let name = Harness::dest_name(key);
    let mut new = None;
    let response = loop {
        tokio::select! {
            out = &mut invocation => break out.unwrap(),
            _ = tokio::time::sleep(Duration::from_millis(2)), if new.is_none() => {
                if !uploads_of(&h, &name).is_empty() {
                    new = Some(h.put(key, data(21, 200_000)).await);
                }
            }
        }
    };
    let new = new.expect("an upload attempt failed before the invocation ended");
    assert_eq!(failures(&response), Vec::<String>::new());
    let object = h.gcs_object(&name).await.unwrap();
    assert_eq!(object["metadata"]["x-crossfed-source-etag"], new.etag);
    assert_eq!(h.gcs_bytes(&name).await, data(21, 200_000));
    // No upload of the old bytes got through.
    let uploads = uploads_of(&h, &name);
    let done: Vec<_> = uploads.iter().filter(|u| u.status == 200).collect();
    assert_eq!(done.len(), 1, "{uploads:#?}");
    assert_eq!(done[0].upload_bytes, Some(200_000));
}

#[tokio::test]
async fn corrupt_upload_fails_without_landing_and_redelivery_succeeds() {
    let h = Harness::start().await;
    let app = h.app(&[("SYNC_CONCURRENCY", "1")]).await;
    let small = h.put("small.bin", data(3, 5000)).await;
    let large = h.put("large.bin", data(4, 700_000)).await;
    let ok = h.put("ok.bin", data(5, 10)).await;
    for put in [&small, &large] {
        h.proxy.inject_faults([Fault::CorruptUpload]);
        // One corrupt message and one good one in the same batch: only the corrupt one fails.
        let event = sqs_event(&[
            msg("bad", vec![h.created(put)]),
            msg("good", vec![h.created(&ok)]),
        ]);
        let r = Harness::invoke(&app, event, MINUTE).await.unwrap();
        assert_eq!(failures(&r), vec!["bad".to_string()], "{}", put.key);
        assert!(
            h.gcs_object(&Harness::dest_name(&put.key)).await.is_none(),
            "{} landed",
            put.key
        );
        // Redelivered, it goes through.
        let r = Harness::invoke(&app, sqs_event(&[msg("bad", vec![h.created(put)])]), MINUTE).await;
        assert_eq!(failures(&r.unwrap()), Vec::<String>::new());
        let expected = if put.key == "small.bin" {
            data(3, 5000)
        } else {
            data(4, 700_000)
        };
        assert_eq!(h.gcs_bytes(&Harness::dest_name(&put.key)).await, expected);
    }
    assert_eq!(h.proxy.rejected_uploads(), 2);
}

#[tokio::test]
async fn permanent_failures_are_batch_item_failures_and_nothing_is_lost() {
    let h = Harness::start().await;
    let app = h.app(&[("SYNC_CONCURRENCY", "1")]).await;
    let a = h.put("a.bin", data(6, 100)).await;
    let b = h.put("b.bin", data(7, 100)).await;
    let long_key = "k".repeat(1020);
    let c = h.put(&long_key, data(8, 10)).await;
    // Every attempt of the first upload fails (403 is not retried; 503s exhaust retries).
    h.proxy.inject_faults([Fault::Status(403)]);
    let event = sqs_event(&[
        msg("a", vec![h.created(&a)]),
        msg("b", vec![h.created(&b)]),
        msg("c", vec![h.created(&c)]),
        ("garbage".into(), json!("not an S3 event")),
    ]);
    let r = Harness::invoke(&app, event.clone(), MINUTE).await.unwrap();
    assert_eq!(failures(&r), vec!["a", "c", "garbage"]);
    assert!(h.gcs_object(&Harness::dest_name("a.bin")).await.is_none());
    assert!(h.gcs_object(&Harness::dest_name("b.bin")).await.is_some());

    h.proxy
        .inject_faults(std::iter::repeat_n(Fault::Status(503), 4));
    let r = Harness::invoke(&app, sqs_event(&[msg("a", vec![h.created(&a)])]), MINUTE).await;
    assert_eq!(failures(&r.unwrap()), vec!["a"], "retries exhausted");

    // The failed message comes back (SQS redelivery): nothing was lost.
    let r = Harness::invoke(&app, sqs_event(&[msg("a", vec![h.created(&a)])]), MINUTE).await;
    assert_eq!(failures(&r.unwrap()), Vec::<String>::new());
    assert_eq!(
        h.gcs_bytes(&Harness::dest_name("a.bin")).await,
        data(6, 100)
    );
}
