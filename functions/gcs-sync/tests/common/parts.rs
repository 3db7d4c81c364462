//! Copies in parts over several invocations: redelivering a message until the copy is
//! done, and what a finished copy in parts looks like.

use std::collections::BTreeSet;
use std::time::Duration;

use super::{Harness, Put, crc32c_b64, failures, notification, sqs_event};

/// Names of temporary parts in the destination bucket.
pub async fn part_names(h: &Harness) -> BTreeSet<String> {
    h.gcs_names()
        .await
        .into_iter()
        .filter(|n| n.contains("/.crossfed-parts/"))
        .collect()
}

/// Redelivers the message for `put` until it succeeds, each invocation given `left`;
/// returns the number of invocations. Checks that no invocation uploads a part that was
/// already there when it started.
pub async fn redeliver_until_copied(
    h: &Harness,
    app: &gcs_sync::handler::App,
    put: &Put,
    left: Duration,
    max_invocations: usize,
) -> usize {
    let record = h.created(put);
    for invocation in 1..=max_invocations {
        let present = part_names(h).await;
        let seen = h.proxy.requests().len();
        let event = sqs_event(&[("big".into(), notification(vec![record.clone()]))]);
        let response = Harness::invoke(app, event, left).await.unwrap();
        let uploaded: Vec<String> = h.proxy.requests()[seen..]
            .iter()
            .filter(|r| r.status == 200 && r.path.contains(".crossfed-parts"))
            .map(|r| r.path.clone())
            .collect();
        for name in &present {
            let encoded = name.replace('/', "%2F");
            assert!(
                !uploaded.iter().any(|p| p.contains(&encoded)),
                "invocation {invocation} uploaded {name} again"
            );
        }
        eprintln!(
            "invocation {invocation}: {} parts present before, {} uploaded, response {response}",
            present.len(),
            uploaded.len()
        );
        if failures(&response).is_empty() {
            return invocation;
        }
    }
    panic!("not copied within {max_invocations} invocations");
}

/// The copy of `put` holds `body` with the source's attributes, and no part is left.
pub async fn check_copy(h: &Harness, put: &Put, body: &[u8]) {
    let name = Harness::dest_name(&put.key);
    let object = h.gcs_object(&name).await.expect("copied");
    assert_eq!(object["size"], body.len().to_string());
    assert_eq!(object["crc32c"], crc32c_b64(crc32c::crc32c(body)));
    assert_eq!(object["contentType"], "application/x-test");
    assert_eq!(object["metadata"]["x-crossfed-source-etag"], put.etag);
    assert_eq!(object["metadata"]["origin"], "test");
    assert_eq!(h.gcs_bytes(&name).await, body, "content");
    assert_eq!(part_names(h).await, BTreeSet::new(), "temporary parts left");
}
