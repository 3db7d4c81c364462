//! Large objects copied in parts: a copy cut short by the invocation deadline continues on
//! redelivery from the parts already in Cloud Storage (none uploaded twice), the parts
//! are composed (in a tree above 32) under the generation precondition, the result's
//! CRC32C is checked and the temporary parts removed.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::parts::{check_copy, part_names, redeliver_until_copied};
use common::{Harness, PREFIX, crc32c_b64, data, failures, notification, sqs_event};
use crossfed_tests::Fault;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

/// Fast variant (`make test`): 13 parts of 1 MiB, two at a time, each upload slowed to
/// 700 ms, 2 s per invocation: at least 3 redeliveries.
#[tokio::test]
async fn large_object_continues_across_redeliveries() {
    let h = Harness::start().await;
    let app = h
        .app(&[
            ("SYNC_PART_THRESHOLD_BYTES", &MIB.to_string()),
            ("SYNC_PART_BYTES", &MIB.to_string()),
            ("SYNC_PART_CONCURRENCY", "2"),
            ("SYNC_DEADLINE_MARGIN_MS", "500"),
            ("SYNC_ABORT_MARGIN_MS", "100"),
        ])
        .await;
    let body = data(77, (12 * MIB + 5) as usize);
    let put = h.put("big/object.bin", body.clone()).await;
    h.proxy
        .inject_faults(vec![Fault::Delay(Duration::from_millis(700)); 40]);
    let invocations = redeliver_until_copied(&h, &app, &put, Duration::from_millis(2000), 40).await;
    assert!(invocations >= 4, "only {invocations} invocations");
    check_copy(&h, &put, &body).await;
    let composes = h.composes().len();
    assert_eq!(composes, 1, "13 parts compose in one call");
    // Below the copy's parts directory: a leftover part (as an invocation cut short after
    // composing leaves it) and an object the part layout never produces.
    let dir = format!(
        "{PREFIX}/.crossfed-parts/big/object.bin/{}/",
        put.etag.trim_matches('"')
    );
    for name in [format!("{dir}000003"), format!("{dir}notes.txt")] {
        h.gcs
            .upload(&h.dest_bucket, &serde_json::json!({ "name": name }), b"x")
            .await
            .unwrap();
    }
    // A redelivery after success uploads nothing and removes only the layout's own names.
    let event = sqs_event(&[("again".into(), notification(vec![h.created(&put)]))]);
    let uploads = h.proxy.requests().len();
    Harness::invoke(&app, event, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(
        h.proxy.requests()[uploads..]
            .iter()
            .all(|r| !r.path.contains("/upload/"))
    );
    let left: Vec<String> = part_names(&h).await.into_iter().collect();
    assert_eq!(left, vec![format!("{dir}notes.txt")], "not ours: kept");
}

/// S3 overwrites the object while its parts are being copied: the ranged `GetObject`
/// (`If-Match` the old ETag) answers 412, and the function looks again and copies the new
/// object (it never skips the message). Part 0 of the old object is already there, so the
/// copy has to open a ranged read after listing the parts; the listing is slowed so that the
/// overwrite lands between the first `GetObject` and that ranged one.
#[tokio::test]
async fn an_object_overwritten_during_its_copy_in_parts_is_copied_anew() {
    let h = Harness::start().await;
    let app = h
        .app(&[
            ("SYNC_PART_THRESHOLD_BYTES", &(256 * KIB).to_string()),
            ("SYNC_PART_BYTES", &(256 * KIB).to_string()),
        ])
        .await;
    let key = "changing/object.bin";
    let old_body = data(80, (4 * 256 * KIB + 10) as usize);
    let old = h.put(key, old_body.clone()).await;
    let part0 = format!(
        "{}/.crossfed-parts/{key}/{}/000000",
        Harness::dest_name("").trim_end_matches('/'),
        old.etag
    );
    let url = format!(
        "{}/upload/storage/v1/b/{}/o?uploadType=media&name={}",
        h.backend,
        h.dest_bucket,
        part0.replace('/', "%2F")
    );
    let status = reqwest::Client::new()
        .post(url)
        .body(old_body[..(256 * KIB) as usize].to_vec())
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success(), "{status}");
    assert_eq!(part_names(&h).await, BTreeSet::from([part0.clone()]));

    // gRPC: the copy's state (as is), then the parts listing (slowed).
    h.grpc.inject_faults([
        Fault::Delay(Duration::ZERO),
        Fault::Delay(Duration::from_millis(2500)),
    ]);
    let new_body = data(81, (4 * 256 * KIB + 10) as usize);
    let overwrite = async {
        tokio::time::sleep(Duration::from_millis(800)).await;
        h.put(key, new_body.clone()).await
    };
    let event = sqs_event(&[("m".into(), notification(vec![h.created(&old)]))]);
    let (response, new) = tokio::join!(
        Harness::invoke(&app, event, Duration::from_secs(120)),
        overwrite
    );
    let response = response.unwrap();
    assert!(failures(&response).is_empty(), "{response}");
    // Two rounds: the parts of the old object listed (then 412), those of the new one
    // listed and composed.
    let rpcs: Vec<_> = h.grpc.requests().into_iter().map(|r| r.path).collect();
    let count = |suffix: &str| rpcs.iter().filter(|p| p.ends_with(suffix)).count();
    assert_eq!(
        (count("/ListObjects"), count("/ComposeObject")),
        (2, 1),
        "{rpcs:?}"
    );
    assert_ne!(old.etag, new.etag);
    let name = Harness::dest_name(key);
    let object = h.gcs_object(&name).await.expect("copied, not skipped");
    assert_eq!(object["metadata"]["x-crossfed-source-etag"], new.etag);
    assert_eq!(object["crc32c"], crc32c_b64(crc32c::crc32c(&new_body)));
    assert_eq!(h.gcs_bytes(&name).await, new_body);
    h.assert_follows_s3(key).await;
    // Only the old object's parts are left (for the lifecycle rule): the new copy's are removed.
    let left = part_names(&h).await;
    assert!(
        left.iter().all(|n| n.contains(&format!("/{}/", old.etag))),
        "{left:?}"
    );
}

/// More than 32 parts: composed in a tree (32 + 9 -> 2 intermediates -> the copy).
#[tokio::test]
async fn composes_more_than_32_parts_in_a_tree() {
    let h = Harness::start().await;
    let app = h
        .app(&[
            ("SYNC_PART_THRESHOLD_BYTES", &(256 * KIB).to_string()),
            ("SYNC_PART_BYTES", &(256 * KIB).to_string()),
        ])
        .await;
    let body = data(78, (40 * 256 * KIB + 100) as usize);
    let put = h.put("tree/object.bin", body.clone()).await;
    let invocations = redeliver_until_copied(&h, &app, &put, Duration::from_secs(120), 1).await;
    assert_eq!(invocations, 1);
    check_copy(&h, &put, &body).await;
    let composes = h.composes();
    assert_eq!(composes.len(), 3, "{composes:?}");
    // The two intermediates are composed at once (either may come first), then the copy.
    let mut intermediates: Vec<usize> = composes[..2].iter().map(|c| c.sources.len()).collect();
    intermediates.sort();
    assert_eq!(intermediates, [9, 32]);
    assert_eq!(composes[2].sources.len(), 2);
    assert_eq!(composes[2].if_generation_match, Some(0));
}
