//! The copy follows what S3 serves now, confirmed with S3; an event only names the key.
//! Each case (versioning, delivery, forged events, a missing bucket, metadata spoofing,
//! retry back-off) ends with the copy byte-equal to S3's current object, or
//! absent when S3 has none. moto (versioned buckets, delete markers, SQS), fake-gcs-server.

mod common;

use std::time::{Duration, Instant};

use common::{Harness, Put, data, failures, msg, notification, sqs_event};
use serde_json::{Value, json};

const MINUTE: Duration = Duration::from_secs(60);

async fn apply(app: &gcs_sync::handler::App, id: &str, record: Value) -> Vec<String> {
    let response = Harness::invoke(app, sqs_event(&[msg(id, vec![record])]), MINUTE)
        .await
        .unwrap();
    failures(&response)
}

const NONE: Vec<String> = Vec::new();

/// Case 1: `DeleteObject` with the version id of the current version. The event's version
/// is the copy's, yet S3 now serves the previous version: the copy becomes that version.
#[tokio::test]
async fn permanent_delete_of_the_current_version_restores_the_previous_one() {
    let h = Harness::start().await;
    h.enable_versioning().await;
    let app = h.app(&[]).await;
    let v1 = h.put("doc.txt", b"version one".to_vec()).await;
    let v2 = h.put("doc.txt", b"version two".to_vec()).await;
    assert_eq!(apply(&app, "c2", h.created(&v2)).await, NONE);
    h.assert_follows_s3("doc.txt").await;

    h.delete_version("doc.txt", v2.version_id.as_deref().unwrap())
        .await;
    assert_eq!(apply(&app, "d2", h.removed(&v2)).await, NONE);
    h.assert_follows_s3("doc.txt").await;
    let name = Harness::dest_name("doc.txt");
    assert_eq!(h.gcs_bytes(&name).await, b"version one");
    assert_eq!(
        h.gcs_metadata(&name, "x-crossfed-source-version-id").await,
        v1.version_id
    );

    // The last version goes too: now S3 has nothing, and neither has the copy.
    h.delete_version("doc.txt", v1.version_id.as_deref().unwrap())
        .await;
    assert_eq!(apply(&app, "d1", h.removed(&v1)).await, NONE);
    assert!(h.gcs_object(&name).await.is_none());
    h.assert_follows_s3("doc.txt").await;
}

/// Case 2: removing the delete marker ("undelete") makes the object current again, and S3
/// sends only an `ObjectRemoved:Delete` for the marker's version.
#[tokio::test]
async fn removing_a_delete_marker_brings_the_copy_back() {
    let h = Harness::start().await;
    h.enable_versioning().await;
    let app = h.app(&[]).await;
    let v1 = h.put("photo.bin", data(1, 5000)).await;
    assert_eq!(apply(&app, "c1", h.created(&v1)).await, NONE);
    let marker = h.delete_marker("photo.bin").await;
    let seq = h.next_sequencer();
    let marked = h.record("ObjectRemoved:DeleteMarkerCreated", &marker, &seq);
    assert_eq!(apply(&app, "m", marked).await, NONE);
    assert!(
        h.gcs_object(&Harness::dest_name("photo.bin"))
            .await
            .is_none()
    );
    h.assert_follows_s3("photo.bin").await;

    h.delete_version("photo.bin", marker.version_id.as_deref().unwrap())
        .await;
    assert_eq!(apply(&app, "undelete", h.removed(&marker)).await, NONE);
    h.assert_follows_s3("photo.bin").await;
    assert_eq!(
        h.gcs_bytes(&Harness::dest_name("photo.bin")).await,
        data(1, 5000)
    );
}

/// Case 3: forged or foreign events. Another bucket fails with a clear error; a delete
/// for an object S3 still serves deletes nothing; a huge sequencer holds nothing back.
#[tokio::test]
async fn forged_events_leave_the_copy_equal_to_s3() {
    let h = Harness::start().await;
    h.enable_versioning().await;
    let app = h.app(&[]).await;
    let a1 = h.put("a.txt", b"first".to_vec()).await;
    assert_eq!(apply(&app, "c1", h.created(&a1)).await, NONE);
    let name = Harness::dest_name("a.txt");
    let generation = h.gcs_object(&name).await.unwrap()["generation"].clone();

    // Another bucket: the message fails (and goes to the DLQ eventually), naming the fix.
    let mut foreign = h.removed(&a1);
    foreign["s3"]["bucket"]["name"] = json!("someone-elses-bucket");
    foreign["s3"]["bucket"]["arn"] = json!("arn:aws:s3:::someone-elses-bucket");
    let event = sqs_event(&[
        msg("foreign", vec![foreign]),
        msg("ok", vec![h.created(&a1)]),
    ]);
    let r = Harness::invoke(&app, event, MINUTE).await.unwrap();
    assert_eq!(failures(&r), vec!["foreign"]);

    // Deletes of an object S3 serves (plain, delete marker, with and without versions).
    let seq = h.next_sequencer();
    let forged_marker = h.record("ObjectRemoved:DeleteMarkerCreated", &a1, &seq);
    let unversioned = Put {
        version_id: None,
        ..a1.clone()
    };
    for (id, record) in [
        ("del", h.removed(&a1)),
        ("marker", forged_marker),
        ("del-nov", h.removed(&unversioned)),
        ("lifecycle", {
            let seq = h.next_sequencer();
            h.record("LifecycleExpiration:Delete", &a1, &seq)
        }),
    ] {
        assert_eq!(apply(&app, id, record).await, NONE, "{id}");
        h.assert_follows_s3("a.txt").await;
    }
    assert_eq!(
        h.gcs_object(&name).await.unwrap()["generation"],
        generation,
        "the copy was never touched"
    );

    // A maximal sequencer, then a real newer write with an ordinary sequencer.
    let huge = h.record("ObjectCreated:Put", &a1, &"F".repeat(40));
    assert_eq!(apply(&app, "huge", huge).await, NONE);
    let a2 = h.put("a.txt", b"second".to_vec()).await;
    assert_eq!(apply(&app, "c2", h.created(&a2)).await, NONE);
    assert_eq!(h.gcs_bytes(&name).await, b"second");
    h.assert_follows_s3("a.txt").await;
    // And a forged huge-sequencer delete after that: S3 still serves a2.
    let huge_delete = h.record("ObjectRemoved:Delete", &a2, &"F".repeat(40));
    assert_eq!(apply(&app, "huge-del", huge_delete).await, NONE);
    h.assert_follows_s3("a.txt").await;
    let a3 = h.put("a.txt", b"third".to_vec()).await;
    assert_eq!(apply(&app, "c3", h.created(&a3)).await, NONE);
    assert_eq!(h.gcs_bytes(&name).await, b"third");
}

/// Case 4: the event's ETag is no longer current (S3 would answer 412). On an unversioned
/// bucket S3 may coalesce quick writes so that only the older event survives: the copy
/// still ends at the current object.
#[tokio::test]
async fn an_outdated_event_copies_the_current_object() {
    for versioned in [false, true] {
        let h = Harness::start().await;
        if versioned {
            h.enable_versioning().await;
        }
        let app = h.app(&[]).await;
        let v1 = h.put("k.bin", data(10, 3000)).await;
        let _v2 = h.put("k.bin", data(11, 4000)).await;
        // Only the older event arrives.
        assert_eq!(apply(&app, "c1", h.created(&v1)).await, NONE, "{versioned}");
        assert_eq!(
            h.gcs_bytes(&Harness::dest_name("k.bin")).await,
            data(11, 4000),
            "versioned: {versioned}"
        );
        h.assert_follows_s3("k.bin").await;
        // A copy that is already current is not uploaded again.
        let uploads = h.proxy.calls();
        assert_eq!(apply(&app, "c1-again", h.created(&v1)).await, NONE);
        assert_eq!(h.proxy.calls(), uploads, "versioned: {versioned}");
    }
}

/// Case 5: a missing or misnamed source bucket (404 `NoSuchBucket`) is a failure, not a
/// "missing object": nothing is skipped as done, nothing deleted.
#[tokio::test]
async fn missing_source_bucket_is_a_batch_item_failure() {
    let h = Harness::start().await;
    let app = h.app(&[]).await;
    let put = h.put("kept.txt", b"kept".to_vec()).await;
    assert_eq!(apply(&app, "c", h.created(&put)).await, NONE);

    let missing = format!("{}-gone", h.source_bucket);
    let wrong = h.app(&[("SYNC_SOURCE_BUCKET", missing.as_str())]).await;
    let mut removed = h.removed(&put);
    removed["s3"]["bucket"]["name"] = json!(missing);
    let mut created = h.created(&put);
    created["s3"]["bucket"]["name"] = json!(missing);
    let event = sqs_event(&[
        msg("removed", vec![removed.clone()]),
        msg("created", vec![created]),
    ]);
    let r = Harness::invoke(&wrong, event, MINUTE).await.unwrap();
    assert_eq!(failures(&r), vec!["created", "removed"]);
    assert_eq!(
        h.gcs_bytes(&Harness::dest_name("kept.txt")).await,
        b"kept",
        "nothing deleted"
    );
    // A direct invocation fails as a whole, saying what to check.
    let err = Harness::invoke(&wrong, notification(vec![removed]), MINUTE)
        .await
        .unwrap_err();
    assert!(
        err.contains("NoSuchBucket") && err.contains("SYNC_SOURCE_BUCKET"),
        "{err}"
    );
    h.assert_follows_s3("kept.txt").await;
}

/// S3 keys under the destination's reserved areas (`.crossfed-parts/`: temporary parts of
/// copies in progress; `.crossfed/`: backfill checkpoints) are refused with an error: a copy
/// there could be taken for a part of another object or overwrite a checkpoint, and a
/// removal must not delete one. The objects already there stay untouched.
#[tokio::test]
async fn keys_in_reserved_areas_fail_and_touch_nothing() {
    let h = Harness::start().await;
    let app = h.app(&[]).await;
    let part_key = ".crossfed-parts/big.bin/0123456789abcdef-2/000000";
    let checkpoint_key = ".crossfed/backfill/run-1";
    let mut generations = Vec::new();
    for key in [part_key, checkpoint_key] {
        let object = h
            .gcs
            .upload(
                &h.dest_bucket,
                &json!({ "name": Harness::dest_name(key) }),
                b"bookkeeping",
            )
            .await
            .unwrap();
        generations.push(object["generation"].clone());
    }
    let part = h.put(part_key, data(1, 100)).await;
    let checkpoint = h.put(checkpoint_key, data(2, 100)).await;
    let names = [part_key, checkpoint_key].map(Harness::dest_name);
    let untouched = async |h: &Harness| {
        for (name, generation) in names.iter().zip(&generations) {
            assert_eq!(h.gcs_bytes(name).await, b"bookkeeping", "{name}");
            let object = h.gcs_object(name).await.unwrap();
            assert_eq!(&object["generation"], generation, "{name}");
        }
    };
    let event = sqs_event(&[
        msg("part", vec![h.created(&part)]),
        msg("checkpoint", vec![h.created(&checkpoint)]),
    ]);
    let r = Harness::invoke(&app, event, MINUTE).await.unwrap();
    assert_eq!(failures(&r), vec!["checkpoint", "part"]);
    untouched(&h).await;

    // Removed in S3: the removal events must not delete gcs-sync's objects either.
    h.delete_source(part_key).await;
    h.delete_source(checkpoint_key).await;
    let event = sqs_event(&[
        msg("part", vec![h.removed(&part)]),
        msg("checkpoint", vec![h.removed(&checkpoint)]),
    ]);
    let r = Harness::invoke(&app, event, MINUTE).await.unwrap();
    assert_eq!(failures(&r), vec!["checkpoint", "part"]);
    untouched(&h).await;
    // The error says why and what to do.
    let err = Harness::invoke(&app, notification(vec![h.removed(&part)]), MINUTE)
        .await
        .unwrap_err();
    assert!(
        err.contains(".crossfed-parts/") && err.contains("rename the S3 object"),
        "{err}"
    );
    untouched(&h).await;
}

/// Case 6: S3 user metadata named like the bookkeeping never reaches the copy.
#[tokio::test]
async fn reserved_metadata_from_s3_is_dropped() {
    let h = Harness::start().await;
    let app = h.app(&[]).await;
    let out =
        h.s3.put_object()
            .bucket(&h.source_bucket)
            .key("spoof.txt")
            .metadata("x-crossfed-source-etag", "0123456789abcdef0123456789abcdef")
            .metadata("x-crossfed-source-version-id", "forged")
            .metadata("X-Crossfed-Sequencer", "FFFFFFFFFFFFFFFFFF")
            .metadata("x-crossfed-anything", "x")
            .metadata("origin", "test")
            .body(b"spoof".to_vec().into())
            .send()
            .await
            .unwrap();
    let put = Put {
        key: "spoof.txt".into(),
        etag: out.e_tag().unwrap().trim_matches('"').to_string(),
        version_id: None,
        size: 5,
    };
    assert_eq!(apply(&app, "c", h.created(&put)).await, NONE);
    let object = h
        .gcs_object(&Harness::dest_name("spoof.txt"))
        .await
        .unwrap();
    let metadata = object["metadata"].as_object().unwrap();
    let mut keys: Vec<&str> = metadata.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["origin", "x-crossfed-source", "x-crossfed-source-etag"],
        "{metadata:?}"
    );
    assert_eq!(metadata["x-crossfed-source-etag"], put.etag.as_str());
    h.assert_follows_s3("spoof.txt").await;
}

/// Case 7: a failed message comes back after the back-off delay for its receive count
/// (here 2 s, then 4 s), not after the queue's visibility timeout (300 s). Real messages
/// through moto's SQS, with real receipt handles.
#[tokio::test]
async fn failed_messages_come_back_after_the_backoff() {
    let h = Harness::start().await;
    let app = h.app(&[("SYNC_RETRY_DELAYS_S", "2,4")]).await;
    let sqs = h.admin_sqs().await;
    let queue = sqs
        .create_queue()
        .queue_name(format!("gcs-sync-{}", &h.source_bucket[13..]))
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
            "300",
        )
        .send()
        .await
        .unwrap();
    let url = queue.queue_url().unwrap().to_string();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    // One message that fails (foreign bucket) and one that succeeds.
    let ok = h.put("ok.txt", b"ok".to_vec()).await;
    let mut foreign = h.created(&ok);
    foreign["s3"]["bucket"]["name"] = json!("not-the-source");
    for body in [
        notification(vec![foreign]),
        notification(vec![h.created(&ok)]),
    ] {
        sqs.send_message()
            .queue_url(&url)
            .message_body(body.to_string())
            .send()
            .await
            .unwrap();
    }
    let receive = |wait: i32| {
        let (sqs, url) = (sqs.clone(), url.clone());
        async move {
            sqs.receive_message()
                .queue_url(&url)
                .max_number_of_messages(10)
                .wait_time_seconds(wait)
                .message_system_attribute_names(
                    aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount,
                )
                .send()
                .await
                .unwrap()
                .messages
                .unwrap_or_default()
        }
    };
    let lambda_event = |messages: &[aws_sdk_sqs::types::Message]| {
        let records: Vec<Value> = messages
            .iter()
            .map(|m| {
                let count = m
                    .attributes()
                    .and_then(|a| {
                        a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount)
                    })
                    .cloned()
                    .unwrap_or_default();
                json!({
                    "messageId": m.message_id().unwrap(),
                    "receiptHandle": m.receipt_handle().unwrap(),
                    "body": m.body().unwrap(),
                    "attributes": {"ApproximateReceiveCount": count},
                    "messageAttributes": {},
                    "md5OfBody": m.md5_of_body().unwrap(),
                    "eventSource": "aws:sqs",
                    "eventSourceARN": arn,
                    "awsRegion": "us-east-1"
                })
            })
            .collect();
        json!({ "Records": records })
    };

    let mut first = receive(1).await;
    if first.len() < 2 {
        first.extend(receive(1).await);
    }
    assert_eq!(first.len(), 2, "{first:?}");
    let failing = first
        .iter()
        .find(|m| m.body().unwrap().contains("not-the-source"))
        .unwrap()
        .message_id()
        .unwrap()
        .to_string();
    // Round 1: both messages (receive count 1, delay 2 s); round 2: the failed one as it
    // came back (receive count 2, delay 4 s).
    let mut batch = first;
    for (round, delay) in [(1u32, 2u64), (2, 4)] {
        let response = Harness::invoke(&app, lambda_event(&batch), MINUTE)
            .await
            .unwrap();
        let returned = Instant::now();
        assert_eq!(failures(&response), vec![failing.clone()], "round {round}");
        assert_eq!(
            receive(0).await.len(),
            0,
            "round {round}: nothing visible right after the invocation"
        );
        // Back after the delay (plus slack), long before the 300 s visibility timeout.
        let mut back = Vec::new();
        while back.is_empty() && returned.elapsed() < Duration::from_secs(delay + 8) {
            back = receive(1).await;
        }
        let after = returned.elapsed();
        assert_eq!(back.len(), 1, "round {round}: not back after {after:?}");
        assert_eq!(back[0].message_id(), Some(failing.as_str()));
        assert!(
            after >= Duration::from_millis(delay * 1000 - 500),
            "round {round}: back after {after:?}, before the {delay} s delay"
        );
        let count = back[0].attributes().unwrap()
            [&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount]
            .clone();
        assert_eq!(count, (round + 1).to_string());
        batch = back;
    }
    h.assert_follows_s3("ok.txt").await;
}
