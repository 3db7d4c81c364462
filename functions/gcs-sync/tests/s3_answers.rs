//! What the function's S3 side answers, against moto: what S3 serves for a key (present,
//! absent after a delete marker or a delete, an error for a missing bucket), and opening an
//! object that was overwritten or deleted since it was looked at.

mod common;

use common::Harness;
use gcs_sync::conditional::{Changed, Conditional};
use gcs_sync::s3::{
    Crc, FullObjectChecksum, SourceBucket, SourceChecksum, SourceState, SourceVersion,
};

/// What the function asks S3, against moto: a delete marker and a deleted key are absent,
/// a missing bucket is an error, and a GET of an object overwritten or deleted since the
/// HEAD is an answer to look again (the 412 / 404 that make the replicator decide anew).
#[tokio::test]
async fn s3_answers_are_classified() {
    let h = Harness::start().await;
    h.enable_versioning().await;
    let s3 = SourceBucket::new(h.scenario.role_s3().await, h.source_bucket.clone());
    let v1 = h.put("k", b"one".to_vec()).await;
    let state = s3.current("k").await.unwrap();
    let v1_version = SourceVersion {
        etag: v1.etag.clone(),
        version_id: v1.version_id.clone(),
    };
    assert_eq!(
        state,
        SourceState::Present {
            version: v1_version.clone(),
            size: 3,
            // The SDK's default for PutObject: a CRC32 of the whole object.
            checksum: SourceChecksum::Full(FullObjectChecksum {
                crc: Crc::Crc32,
                value: Crc::Crc32.of(b"one")
            })
        }
    );
    let v2 = h.put("k", b"two!".to_vec()).await;
    assert!(matches!(
        s3.open("k", &v1_version, None).await.unwrap(),
        Conditional::LookAgain(Changed::SourceOverwritten)
    ));
    let v2_version = SourceVersion {
        etag: v2.etag.clone(),
        version_id: v2.version_id.clone(),
    };
    let Conditional::Done(object) = s3.open("k", &v2_version, None).await.unwrap() else {
        panic!("v2 not found")
    };
    assert_eq!(object.version_id, v2.version_id);
    h.delete_marker("k").await;
    assert_eq!(s3.current("k").await.unwrap(), SourceState::Absent);
    assert!(matches!(
        s3.open("k", &v2_version, None).await.unwrap(),
        Conditional::LookAgain(Changed::SourceDeleted)
    ));
    assert_eq!(s3.current("never").await.unwrap(), SourceState::Absent);
    let missing = SourceBucket::new(
        h.scenario.role_s3().await,
        format!("{}-gone", h.source_bucket),
    );
    let err = missing.current("k").await.unwrap_err();
    assert!(err.to_string().contains("NoSuchBucket"), "{err}");
    let err = missing.open("k", &v2_version, None).await.err().unwrap();
    assert!(err.to_string().contains("NoSuchBucket"), "{err}");
}
