//! The S3 side: `GetObject` of exactly the object an event describes, exposed as a
//! Cloud Storage `StreamingSource` that never holds more than one network chunk.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumMode, ServerSideEncryption};
use bytes::Bytes;
use google_cloud_storage::streaming_source::{SizeHint, StreamingSource};

use crate::event::ObjectChange;

/// An open source object.
pub struct SourceObject {
    pub body: BodySource,
    pub size: u64,
    /// Without quotes.
    pub etag: Option<String>,
    pub version_id: Option<String>,
    /// The content's MD5, when the ETag is one (single-part upload, no KMS / SSE-C).
    pub md5: Option<[u8; 16]>,
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub content_language: Option<String>,
    pub content_disposition: Option<String>,
    pub cache_control: Option<String>,
    /// `x-amz-meta-*`.
    pub user_metadata: HashMap<String, String>,
}

/// Result of opening the object an event describes.
pub enum Opened {
    Found(Box<SourceObject>),
    /// Deleted since the event (404 `NoSuchKey`, or a delete marker).
    Missing,
    /// Overwritten since the event (the event's ETag no longer matches: 412).
    Changed,
}

/// S3 failed after the client's retries.
#[derive(Debug, thiserror::Error)]
#[error("S3 GetObject s3://{bucket}/{key}: {message}")]
pub struct SourceError {
    bucket: String,
    key: String,
    message: String,
}

/// Opens the object of `change`: the current object, on condition that it still has the
/// event's ETag. Deliberately not the event's version (in versioned buckets): if the
/// object has since been deleted or overwritten, a later event describes that, and
/// copying the old version now could resurrect a deleted object. Checksums S3 stored with
/// the object are validated by the SDK while streaming.
pub async fn open(
    client: &aws_sdk_s3::Client,
    change: &ObjectChange,
) -> Result<Opened, SourceError> {
    let mut request = client
        .get_object()
        .bucket(&change.bucket)
        .key(&change.key)
        .checksum_mode(ChecksumMode::Enabled);
    if let Some(etag) = &change.etag {
        request = request.if_match(format!("\"{etag}\""));
    }
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) => {
            let status = e.raw_response().map(|r| r.status().as_u16());
            return match (status, e.code()) {
                (_, Some("NoSuchKey" | "NoSuchVersion")) | (Some(404), _) => Ok(Opened::Missing),
                (_, Some("PreconditionFailed")) | (Some(412), _) => Ok(Opened::Changed),
                _ => Err(SourceError {
                    bucket: change.bucket.clone(),
                    key: change.key.clone(),
                    message: DisplayErrorContext(&e).to_string(),
                }),
            };
        }
    };
    let size = response
        .content_length()
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| SourceError {
            bucket: change.bucket.clone(),
            key: change.key.clone(),
            message: "response without Content-Length".into(),
        })?;
    let etag = response.e_tag().map(|e| e.trim_matches('"').to_string());
    let kms = matches!(
        response.server_side_encryption(),
        Some(ServerSideEncryption::AwsKms | ServerSideEncryption::AwsKmsDsse)
    );
    let md5 = etag
        .as_deref()
        .filter(|_| !kms && response.sse_customer_algorithm().is_none())
        .and_then(md5_from_etag);
    let text = |s: Option<&str>| s.filter(|s| !s.is_empty()).map(str::to_string);
    Ok(Opened::Found(Box::new(SourceObject {
        size,
        version_id: text(response.version_id()).filter(|v| v != "null"),
        md5,
        content_type: text(response.content_type()),
        content_encoding: text(response.content_encoding()),
        content_language: text(response.content_language()),
        content_disposition: text(response.content_disposition()),
        cache_control: text(response.cache_control()),
        user_metadata: response.metadata().cloned().unwrap_or_default(),
        etag,
        body: BodySource::new(response.body, size),
    })))
}

/// A single-part upload's ETag is the hex MD5 of the content.
pub fn md5_from_etag(etag: &str) -> Option<[u8; 16]> {
    if etag.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(etag.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// The object's bytes as they arrive, checked against the announced length so that a
/// truncated read ends the upload with an error instead of finalizing it. Counts and
/// CRC32Cs what it hands out, for checking the finished object.
pub struct BodySource {
    body: ByteStream,
    expected: u64,
    seen: u64,
    crc32c: u32,
    stats: Arc<StreamStats>,
}

/// What a [`BodySource`] has produced so far (shared, readable after the upload).
#[derive(Debug, Default)]
pub struct StreamStats {
    expected: u64,
    bytes: AtomicU64,
    crc32c: AtomicU32,
}

impl StreamStats {
    /// `(bytes, crc32c)` if the whole object was read (the announced length; more is an
    /// error of the stream), `None` otherwise.
    pub fn complete(&self) -> Option<(u64, u32)> {
        (self.bytes.load(Ordering::SeqCst) == self.expected).then(|| {
            (
                self.bytes.load(Ordering::SeqCst),
                self.crc32c.load(Ordering::SeqCst),
            )
        })
    }
}

/// The S3 body could not be read completely.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("reading the S3 object failed: {0}")]
    Read(#[from] aws_sdk_s3::primitives::ByteStreamError),
    #[error("the S3 object had {seen} bytes, {expected} were announced")]
    Length { expected: u64, seen: u64 },
}

impl BodySource {
    pub fn new(body: ByteStream, expected: u64) -> Self {
        BodySource {
            body,
            expected,
            seen: 0,
            crc32c: 0,
            stats: Arc::new(StreamStats {
                expected,
                ..StreamStats::default()
            }),
        }
    }

    /// The unread S3 body (for copies in parts, which count and check per part).
    pub fn into_inner(self) -> ByteStream {
        self.body
    }

    /// A handle on the counters, valid after the source is consumed.
    pub fn stats(&self) -> Arc<StreamStats> {
        self.stats.clone()
    }
}

impl StreamingSource for BodySource {
    type Error = BodyError;

    async fn next(&mut self) -> Option<Result<Bytes, BodyError>> {
        match self.body.next().await {
            Some(Ok(chunk)) => {
                self.seen += chunk.len() as u64;
                if self.seen > self.expected {
                    return Some(Err(BodyError::Length {
                        expected: self.expected,
                        seen: self.seen,
                    }));
                }
                self.crc32c = crc32c::crc32c_append(self.crc32c, &chunk);
                self.stats.bytes.store(self.seen, Ordering::SeqCst);
                self.stats.crc32c.store(self.crc32c, Ordering::SeqCst);
                Some(Ok(chunk))
            }
            Some(Err(e)) => Some(Err(e.into())),
            None if self.seen != self.expected => Some(Err(BodyError::Length {
                expected: self.expected,
                seen: self.seen,
            })),
            None => None,
        }
    }

    async fn size_hint(&self) -> Result<SizeHint, BodyError> {
        Ok(SizeHint::with_exact(self.expected))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_only_from_plain_etags() {
        assert_eq!(
            md5_from_etag("5d41402abc4b2a76b9719d911017c592"),
            Some([
                0x5d, 0x41, 0x40, 0x2a, 0xbc, 0x4b, 0x2a, 0x76, 0xb9, 0x71, 0x9d, 0x91, 0x10, 0x17,
                0xc5, 0x92
            ])
        );
        assert_eq!(md5_from_etag("5d41402abc4b2a76b9719d911017c592-3"), None);
        assert_eq!(md5_from_etag("zz41402abc4b2a76b9719d911017c592"), None);
        assert_eq!(md5_from_etag(""), None);
    }

    async fn drain(mut s: BodySource) -> Result<Vec<u8>, BodyError> {
        let mut out = Vec::new();
        while let Some(chunk) = s.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn length_is_checked() {
        let ok = BodySource::new(ByteStream::from_static(b"hello"), 5);
        let stats = ok.stats();
        assert_eq!(ok.size_hint().await.unwrap().exact(), Some(5));
        assert_eq!(stats.complete(), None);
        assert_eq!(drain(ok).await.unwrap(), b"hello");
        assert_eq!(stats.complete(), Some((5, crc32c::crc32c(b"hello"))));
        let short = BodySource::new(ByteStream::from_static(b"hell"), 5);
        let stats = short.stats();
        assert_eq!(stats.complete(), None);
        assert!(matches!(
            drain(short).await,
            Err(BodyError::Length {
                expected: 5,
                seen: 4
            })
        ));
        let long = BodySource::new(ByteStream::from_static(b"hello!"), 5);
        assert!(drain(long).await.is_err());
    }
}
