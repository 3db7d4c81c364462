use super::*;
use base64::Engine as _;
use base64::prelude::BASE64_STANDARD;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use serde_json::Value;

use super::checksums::{Declared, Hashers};
use super::forward::rewrite_location;
use super::request::{ContentRange, multipart_boundary};
use super::transform::{MultipartTransform, Transform};
use crate::google::storage_test_support::*;
use crate::google::token_registry::TokenRegistry;
use std::time::Duration;

#[test]
fn content_ranges() {
    let r = ContentRange::parse("bytes 0-9/10").unwrap();
    assert!(r.is_final() && r.start() == 0);
    let r = ContentRange::parse("bytes 8-15/*").unwrap();
    assert!(!r.is_final() && r.start() == 8);
    let r = ContentRange::parse("bytes */10").unwrap();
    assert!(r.is_final() && r.first.is_none() && r.start() == 10);
    assert!(ContentRange::parse("bytes 5-1/10").is_none());
    assert!(ContentRange::parse("items 0-1/2").is_none());
}

#[test]
fn locations_and_hashes() {
    assert_eq!(
        rewrite_location(
            "http://127.0.0.2/upload/storage/v1/b/b/o?uploadType=resumable&upload_id=x",
            "http://127.0.0.1:9"
        ),
        "http://127.0.0.1:9/upload/storage/v1/b/b/o?uploadType=resumable&upload_id=x"
    );
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-goog-hash",
        HeaderValue::from_static("crc32c=n03x6A==,md5=XUFAKrxLKna5cZ2REBfFkg=="),
    );
    let declared = Declared::default().with_headers(&headers).unwrap();
    let mut h = Hashers::new();
    h.update(b"hel");
    h.update(b"lo");
    assert_eq!(h.crc32c, crc32c::crc32c(b"hello"));
    assert_eq!(
        declared.md5.map(|m| BASE64_STANDARD.encode(m)).as_deref(),
        Some("XUFAKrxLKna5cZ2REBfFkg==")
    );
    assert!(
        h.verify(&Declared {
            crc32c: None,
            ..declared
        })
        .is_ok()
    );
    let err = h.verify(&declared).unwrap_err();
    assert!(err.starts_with("Provided CRC32C \"n03x6A==\""), "{err}");
    assert_eq!(
        multipart_boundary("multipart/related; boundary=abc").as_deref(),
        Some("abc")
    );
}

/// Multipart transform over arbitrary frame splits.
#[test]
fn multipart_transform_drops_trailer_and_verifies() {
    let body = |crc: u32| {
        format!(
            "--B\r\nContent-Type: application/json\r\n\r\n{{\"name\":\"x\"}}\r\n--B\r\n\
             Content-Type: application/octet-stream\r\n\r\nhello\r\n--B\r\n\
             Content-Type: application/json\r\n\r\n{{\"crc32c\":\"{}\"}}\r\n--B--\r\n",
            BASE64_STANDARD.encode(crc.to_be_bytes())
        )
    };
    for split in [1, 2, 3, 7, 1000] {
        let run = |text: String| {
            let mut t = MultipartTransform::new("B", false, Arc::default());
            let mut out = Vec::new();
            for chunk in text.as_bytes().chunks(split) {
                out.extend_from_slice(&t.push(Bytes::copy_from_slice(chunk))?);
            }
            out.extend_from_slice(&t.finish()?);
            Ok::<_, String>(String::from_utf8(out).unwrap())
        };
        let out = run(body(crc32c::crc32c(b"hello"))).unwrap();
        assert_eq!(
            out,
            "--B\r\nContent-Type: application/json\r\n\r\n{\"name\":\"x\"}\r\n--B\r\n\
             Content-Type: application/octet-stream\r\n\r\nhello\r\n--B--\r\n"
        );
        let err = run(body(1)).unwrap_err();
        assert!(err.contains("doesn't match calculated CRC32C"), "{err}");
    }
}

const MIB: usize = 1 << 20;

#[tokio::test]
async fn multipart_uploads_are_verified_and_corruption_rejected() {
    let backend = backend();
    let proxy = GcsFaultProxy::start(&backend).await;
    let bucket = create_bucket(&backend, "proxy-mp").await;
    let tokens = TokenRegistry::new();
    let storage = storage(
        &proxy.url(),
        &token(&tokens, crate::google::scopes::CLOUD_PLATFORM_SCOPE),
    )
    .await;
    let parent = format!("projects/_/buckets/{bucket}");
    let payload = data(300 * 1024, 1);

    // Buffered: checksums in the metadata part.
    let object = storage
        .write_object(&parent, "a.bin", payload.clone())
        .set_metadata([("source", "s3://x/a.bin")])
        .set_if_generation_match(0)
        .send_buffered()
        .await
        .unwrap();
    assert_eq!(object.size, payload.len() as i64);
    assert_eq!(
        object.metadata.get("source").map(String::as_str),
        Some("s3://x/a.bin")
    );
    let upload = proxy.last_request().unwrap();
    assert!(upload.path.contains("uploadType=multipart"), "{upload:?}");
    assert!(upload.path.contains("ifGenerationMatch=0"), "{upload:?}");
    assert_eq!(upload.checksum_ok, Some(true), "{upload:?}");
    assert_eq!(upload.upload_bytes, Some(payload.len() as u64));
    assert_eq!(read(&storage, &bucket, "a.bin").await.unwrap(), payload);

    // "Must not exist" precondition fails on the second write.
    let err = storage
        .write_object(&parent, "a.bin", payload.clone())
        .set_if_generation_match(0)
        .send_buffered()
        .await
        .unwrap_err();
    assert_eq!(err.http_status_code(), Some(412), "{err:?}");

    // Unbuffered: checksums in a trailing part, which fake-gcs-server
    // would store as the data.
    storage
        .write_object(&parent, "b.bin", payload.clone())
        .send_unbuffered()
        .await
        .unwrap();
    assert_eq!(proxy.last_request().unwrap().checksum_ok, Some(true));
    assert_eq!(read(&storage, &bucket, "b.bin").await.unwrap(), payload);

    // A byte flipped in flight: rejected like Cloud Storage, nothing stored.
    proxy.inject_faults([Fault::CorruptUpload]);
    let err = storage
        .write_object(&parent, "c.bin", payload.clone())
        .send_buffered()
        .await
        .unwrap_err();
    assert_eq!(err.http_status_code(), Some(400), "{err:?}");
    assert!(
        format!("{err:?}").contains("doesn't match calculated CRC32C"),
        "{err:?}"
    );
    let rejected = proxy.last_request().unwrap();
    assert!(
        rejected.corrupted && rejected.answered_by_proxy,
        "{rejected:?}"
    );
    assert_eq!(rejected.status, 400);
    assert_eq!(proxy.rejected_uploads(), 1);
    assert_eq!(backend_status(&backend, &bucket, "c.bin").await, 404);
    assert_eq!(proxy.pending_faults(), 0);
    delete_bucket(&backend, &bucket).await;
}

#[tokio::test]
async fn resumable_uploads_through_the_proxy() {
    let backend = backend();
    let proxy = GcsFaultProxy::start(&backend).await;
    let bucket = create_bucket(&backend, "proxy-ru").await;
    let tokens = TokenRegistry::new();
    let storage = storage(
        &proxy.url(),
        &token(&tokens, crate::google::scopes::CLOUD_PLATFORM_SCOPE),
    )
    .await;
    let parent = format!("projects/_/buckets/{bucket}");
    let payload = data(20 * MIB + 12345, 2);

    // Buffered: 8 MiB chunks, `x-goog-hash` on the last one.
    let object = storage
        .write_object(&parent, "big.bin", payload.clone())
        .send_buffered()
        .await
        .unwrap();
    assert_eq!(object.size, payload.len() as i64);
    let requests = proxy.requests();
    let puts: Vec<_> = requests.iter().filter(|r| r.method == "PUT").collect();
    assert!(puts.len() >= 3, "{requests:?}");
    assert!(
        puts.iter().all(|r| r.path.starts_with("/upload/")),
        "{puts:?}"
    );
    assert_eq!(puts.last().unwrap().checksum_ok, Some(true), "{puts:?}");
    assert_eq!(read(&storage, &bucket, "big.bin").await.unwrap(), payload);

    // Corrupt first chunk: the final chunk is rejected, nothing stored.
    proxy.inject_faults([Fault::CorruptUpload]);
    let err = storage
        .write_object(&parent, "corrupt.bin", payload.clone())
        .send_buffered()
        .await
        .unwrap_err();
    assert_eq!(err.http_status_code(), Some(400), "{err:?}");
    assert_eq!(backend_status(&backend, &bucket, "corrupt.bin").await, 404);
    assert_eq!(proxy.rejected_uploads(), 1);

    // Unbuffered with precomputed CRC32C in the session's object resource.
    proxy.inject_faults([Fault::CorruptUpload]);
    let err = storage
        .write_object(&parent, "corrupt2.bin", payload.clone())
        .send_unbuffered()
        .await
        .unwrap_err();
    assert_eq!(err.http_status_code(), Some(400), "{err:?}");
    assert_eq!(backend_status(&backend, &bucket, "corrupt2.bin").await, 404);
    assert_eq!(proxy.rejected_uploads(), 2);
    storage
        .write_object(&parent, "ok2.bin", payload.clone())
        .send_unbuffered()
        .await
        .unwrap();
    assert_eq!(proxy.last_request().unwrap().checksum_ok, Some(true));
    assert_eq!(
        read(&storage, &bucket, "ok2.bin").await.unwrap().len(),
        payload.len()
    );
    delete_bucket(&backend, &bucket).await;
}

#[tokio::test]
async fn injected_statuses_and_delays() {
    let backend = backend();
    let proxy = GcsFaultProxy::start(&backend).await;
    let bucket = create_bucket(&backend, "proxy-ft").await;

    proxy.inject_faults([Fault::CorruptUpload, Fault::Status(503)]);
    let http = reqwest::Client::new();
    // Not an upload: CorruptUpload stays queued, 503 is not consumed.
    let r = http
        .get(format!("{}/storage/v1/b/{bucket}/o", proxy.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(proxy.pending_faults(), 2);
    // Drain CorruptUpload with a media upload, then get the 503.
    let r = http
        .post(format!(
            "{}/upload/storage/v1/b/{bucket}/o?uploadType=media&name=m",
            proxy.url()
        ))
        .body("abc")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(proxy.last_request().unwrap().corrupted);
    let r = http
        .get(format!("{}/storage/v1/b/{bucket}/o", proxy.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], 503);
    assert_eq!(body["error"]["errors"][0]["reason"], "backendError");

    // The client retries an idempotent upload after a 503.
    let tokens = TokenRegistry::new();
    let storage = storage(
        &proxy.url(),
        &token(&tokens, crate::google::scopes::CLOUD_PLATFORM_SCOPE),
    )
    .await;
    proxy.inject_faults([Fault::Status(503), Fault::Delay(Duration::from_millis(100))]);
    let before = proxy.calls();
    storage
        .write_object(format!("projects/_/buckets/{bucket}"), "r.txt", "retried")
        .set_if_generation_match(0)
        .send_buffered()
        .await
        .unwrap();
    assert_eq!(proxy.calls() - before, 2, "{:?}", proxy.requests());
    assert!(
        proxy
            .last_request()
            .unwrap()
            .path
            .contains("ifGenerationMatch=0")
    );
    assert_eq!(read(&storage, &bucket, "r.txt").await.unwrap(), b"retried");
    delete_bucket(&backend, &bucket).await;
}
