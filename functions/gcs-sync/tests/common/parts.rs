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
    // Not assert_eq: the bytes would fill the screen.
    assert!(
        h.gcs_bytes(&name).await == body,
        "content: the copy's bytes are not S3's"
    );
    assert_eq!(part_names(h).await, BTreeSet::new(), "temporary parts left");
}

/// Other bytes with the same length and CRC32C as `bytes` (CRC32C is no defence against a
/// writer who wants a given checksum): the first byte changed, then the 4 bytes at `fix`
/// chosen to bring the CRC32C back. A CRC is affine in the message bits, so each flipped
/// bit changes it by a fixed value and 32 consecutive bits reach every value: solved over
/// GF(2).
pub fn same_crc32c_other_bytes(bytes: &[u8], fix: usize) -> Vec<u8> {
    assert!(fix > 0 && fix + 4 <= bytes.len());
    let target = crc32c::crc32c(bytes);
    let mut forged = bytes.to_vec();
    forged[0] ^= 0xff;
    let base = crc32c::crc32c(&forged);
    let flip = |data: &mut [u8], bit: usize| data[fix + bit / 8] ^= 1 << (bit % 8);
    // basis[b]: a combination (its effect, its bits) whose highest effect bit is b.
    let mut basis: [Option<(u32, u32)>; 32] = [None; 32];
    for bit in 0..32 {
        let mut flipped = forged.clone();
        flip(&mut flipped, bit);
        let (mut effect, mut bits) = (crc32c::crc32c(&flipped) ^ base, 1u32 << bit);
        while effect != 0 {
            let top = 31 - effect.leading_zeros() as usize;
            match basis[top] {
                Some((e, b)) => (effect, bits) = (effect ^ e, bits ^ b),
                None => {
                    basis[top] = Some((effect, bits));
                    break;
                }
            }
        }
    }
    let (mut want, mut bits) = (base ^ target, 0u32);
    while want != 0 {
        let top = 31 - want.leading_zeros() as usize;
        let (e, b) = basis[top].expect("32 consecutive bits reach every CRC32C");
        (want, bits) = (want ^ e, bits ^ b);
    }
    for bit in (0..32).filter(|bit| bits >> bit & 1 == 1) {
        flip(&mut forged, bit);
    }
    assert_eq!(crc32c::crc32c(&forged), target);
    assert_ne!(forged, bytes);
    forged
}
