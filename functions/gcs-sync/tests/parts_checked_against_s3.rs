//! A copy in parts trusts nothing stored in the destination bucket: a part found there is
//! reused only when Cloud Storage's MD5 and CRC32C of it equal those of S3's bytes, read
//! again in this invocation (a part planted with the right size and CRC32C but other bytes
//! is uploaded again; a leftover of an interrupted run is reused), and the bytes read are
//! compared with S3's full-object checksum before anything is composed.

mod common;

use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ChecksumAlgorithm;
use common::parts::{check_copy, part_names, same_crc32c_other_bytes};
use common::{Harness, PREFIX, Put, data, failures, large, notification, sqs_event};
use crossfed_tests::Fault;
use gcs_sync::s3::{Crc, FullObjectChecksum};

const KIB: u64 = 1024;
const PART: u64 = 256 * KIB;

/// Parts of 256 KiB above 256 KiB.
const IN_PARTS: [(&str, &str); 2] = [
    ("SYNC_PART_THRESHOLD_BYTES", "262144"),
    ("SYNC_PART_BYTES", "262144"),
];

/// Where part `n` of `put` goes.
fn part_name(put: &Put, n: usize) -> String {
    format!(
        "{PREFIX}/.crossfed-parts/{}/{}/{n:06}",
        put.key,
        put.etag.trim_matches('"')
    )
}

/// The parts uploaded (successfully, through the proxy) since request `seen`, by number.
fn parts_uploaded_since(h: &Harness, seen: usize) -> Vec<usize> {
    let mut numbers: Vec<usize> = h.proxy.requests()[seen..]
        .iter()
        .filter(|r| r.status == 200 && r.path.contains(".crossfed-parts"))
        .filter_map(|r| {
            let name = r.path.split("name=").nth(1)?;
            let number = name.split('&').next()?.rsplit("%2F").next()?;
            number.parse().ok()
        })
        .collect();
    numbers.sort();
    numbers
}

async fn invoke_once(h: &Harness, app: &gcs_sync::handler::App, put: &Put) -> serde_json::Value {
    let event = sqs_event(&[("m".into(), notification(vec![h.created(put)]))]);
    Harness::invoke(app, event, Duration::from_secs(120))
        .await
        .unwrap()
}

/// A writer of the destination bucket plants part 1 with the right size and S3's CRC32C
/// but other bytes (CRC32C is forgeable); part 2 holds S3's bytes. Part 1 is uploaded again
/// under the planted generation, part 2 is kept, and the copy holds S3's bytes. (Before:
/// any part of the right size was reused on its CRC32C, and the copy carried the forged
/// bytes with S3's ETag.)
#[tokio::test]
async fn a_planted_part_with_s3s_crc32c_but_other_bytes_is_not_reused() {
    let h = Harness::start().await;
    let app = h.app(&IN_PARTS).await;
    let body = data(90, (4 * PART + 10) as usize);
    let put = h.put("planted/object.bin", body.clone()).await;
    let genuine = |n: u64| body[(n * PART) as usize..((n + 1) * PART) as usize].to_vec();
    let forged = same_crc32c_other_bytes(&genuine(1), (PART / 2) as usize);
    h.plant(&part_name(&put, 1), "", &forged).await;
    h.plant(&part_name(&put, 2), "", &genuine(2)).await;
    let planted = h.gcs_object(&part_name(&put, 1)).await.unwrap();
    assert_eq!(
        (planted["size"].as_str(), planted["crc32c"].as_str()),
        (
            Some(PART.to_string().as_str()),
            Some(common::crc32c_b64(crc32c::crc32c(&genuine(1))).as_str())
        ),
        "the planted part has S3's size and CRC32C"
    );

    let seen = h.proxy.requests().len();
    let response = invoke_once(&h, &app, &put).await;
    assert!(failures(&response).is_empty(), "{response}");
    check_copy(&h, &put, &body).await;
    assert_eq!(
        parts_uploaded_since(&h, seen),
        [0, 1, 3, 4],
        "the forged part 1 uploaded again, the genuine part 2 kept"
    );
    assert_eq!(h.composes().len(), 1);
}

/// A run interrupted after uploading every part (its compose fails) leaves S3's bytes in
/// Cloud Storage: the next run reads S3 again, finds every part holding them and uploads
/// none.
#[tokio::test]
async fn the_parts_of_an_interrupted_run_are_reused() {
    let h = Harness::start().await;
    let app = h.app(&IN_PARTS).await;
    let body = data(91, (4 * PART + 10) as usize);
    let put = h.put("interrupted/object.bin", body.clone()).await;
    // gRPC: the copy's state, the parts' listing, then the compose is refused.
    h.grpc.inject_faults([
        Fault::Delay(Duration::ZERO),
        Fault::Delay(Duration::ZERO),
        Fault::Status(403),
    ]);
    let seen = h.proxy.requests().len();
    let response = invoke_once(&h, &app, &put).await;
    assert_eq!(failures(&response).len(), 1, "{response}");
    assert_eq!(parts_uploaded_since(&h, seen), [0, 1, 2, 3, 4]);
    assert_eq!(part_names(&h).await.len(), 5);

    let seen = h.proxy.requests().len();
    let response = invoke_once(&h, &app, &put).await;
    assert!(failures(&response).is_empty(), "{response}");
    assert_eq!(
        parts_uploaded_since(&h, seen),
        Vec::<usize>::new(),
        "all reused"
    );
    check_copy(&h, &put, &body).await;
}

/// `key` put with S3's full-object checksum `crc`: computed by the SDK, or `value` (which
/// moto stores unchecked, standing for an S3 whose checksum and bytes disagree).
async fn put_with_checksum(
    h: &Harness,
    key: &str,
    body: &[u8],
    crc: Crc,
    value: Option<String>,
) -> Put {
    let mut request =
        h.s3.put_object()
            .bucket(&h.source_bucket)
            .key(key)
            .content_type("application/x-test")
            .metadata("origin", "test")
            .body(ByteStream::from(body.to_vec()));
    request = match (crc, value) {
        (Crc::Crc32, None) => request.checksum_algorithm(ChecksumAlgorithm::Crc32),
        (Crc::Crc32c, None) => request.checksum_algorithm(ChecksumAlgorithm::Crc32C),
        (Crc::Crc64Nvme, None) => request.checksum_algorithm(ChecksumAlgorithm::Crc64Nvme),
        (Crc::Crc32, Some(v)) => request
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .checksum_crc32(v),
        (Crc::Crc32c, Some(v)) => request
            .checksum_algorithm(ChecksumAlgorithm::Crc32C)
            .checksum_crc32_c(v),
        (Crc::Crc64Nvme, Some(v)) => request
            .checksum_algorithm(ChecksumAlgorithm::Crc64Nvme)
            .checksum_crc64_nvme(v),
    };
    let out = request.send().await.expect("put object");
    Put {
        key: key.to_string(),
        etag: out.e_tag().unwrap().trim_matches('"').to_string(),
        version_id: out.version_id().map(str::to_string),
        size: body.len() as u64,
    }
}

/// S3's full-object checksum (CRC32, CRC32C, CRC64NVME) is compared with the bytes read:
/// when they agree the copy is made; when they disagree nothing is composed, the parts are
/// kept for the next try and the error says that S3 and the bytes read disagree.
#[tokio::test]
async fn s3s_full_object_checksum_is_compared_before_composing() {
    let h = Harness::start().await;
    let app = h.app(&IN_PARTS).await;
    let crcs = [Crc::Crc32, Crc::Crc32c, Crc::Crc64Nvme];
    let body = |i: usize| data(92 + i as u64, (3 * PART + 7) as usize);
    for (i, crc) in crcs.into_iter().enumerate() {
        let body = body(i);
        let key = format!("agrees/{}.bin", crc.name());
        let put = put_with_checksum(&h, &key, &body, crc, None).await;
        let response = invoke_once(&h, &app, &put).await;
        assert!(failures(&response).is_empty(), "{}: {response}", crc.name());
        check_copy(&h, &put, &body).await;
    }
    for (i, crc) in crcs.into_iter().enumerate() {
        let body = body(i);
        let composes = h.composes().len();
        let key = format!("disagrees/{}.bin", crc.name());
        let other = crc.of(&data(99, body.len()));
        let wrong = FullObjectChecksum::encoded(crc, other);
        let put = put_with_checksum(&h, &key, &body, crc, Some(wrong.clone())).await;
        let error = app
            .replicator
            .sync_key(&key)
            .await
            .expect_err("S3's checksum and the bytes disagree")
            .to_string();
        assert!(
            error.contains("S3 and the bytes read disagree")
                && error.contains(crc.name())
                && error.contains(&wrong)
                && error.contains(&FullObjectChecksum::encoded(crc, crc.of(&body))),
            "{error}"
        );
        assert_eq!(h.composes().len(), composes, "nothing composed");
        assert!(h.gcs_object(&Harness::dest_name(&key)).await.is_none());
        let kept = part_names(&h).await;
        assert_eq!(
            kept.iter().filter(|n| n.contains(&put.etag)).count(),
            4,
            "the parts are kept for the next try: {kept:?}"
        );
    }
}

/// A multipart object whose checksum is COMPOSITE (a checksum of its upload's part
/// checksums, other boundaries than the copy's parts) is copied: that checksum is not
/// compared, the parts and the composite are checked by their own.
#[tokio::test]
async fn a_composite_s3_checksum_is_not_compared() {
    let h = Harness::start().await;
    let app = h
        .app(&[
            ("SYNC_PART_THRESHOLD_BYTES", "4194304"),
            ("SYNC_PART_BYTES", "4194304"),
        ])
        .await;
    let size = large::PART + 100;
    let (put, crc) = large::upload_with_checksum(
        &h,
        "composite/object.bin",
        size,
        Some(ChecksumAlgorithm::Crc32C),
    )
    .await;
    let response = invoke_once(&h, &app, &put).await;
    assert!(failures(&response).is_empty(), "{response}");
    large::verify_copy(&h, &Harness::dest_name(&put.key), size, crc).await;
    assert!(part_names(&h).await.is_empty());
}
