//! The S3 side: `GetObject` of exactly the object S3 was found to serve (`If-Match`),
//! exposed as a Cloud Storage `StreamingSource` that never holds more than one network chunk
//! and that the upload can rewind (a retried request re-reads S3 from the offset it needs).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumMode, ServerSideEncryption};
use bytes::Bytes;
use google_cloud_storage::streaming_source::{Seek, SizeHint, StreamingSource};

use crate::s3_error::{GetFailure, SourceError, get_failure, no_such_bucket};
use crate::s3_state::SourceVersion;

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

/// Result of opening the object S3 was found to serve.
pub enum Opened {
    Found(Box<SourceObject>),
    /// Deleted since it was looked at (404 `NoSuchKey`, or a delete marker).
    Missing,
    /// Overwritten since it was looked at (its ETag no longer matches: 412).
    Changed,
}

/// Opens the current object of `bucket`/`key` on condition that it still is `expected`
/// (`If-Match` its ETag): the bytes streamed are the ones decided on, and the version and
/// ETag recorded are the ones S3 returned with them. Checksums S3 stored with the object
/// are validated by the SDK while streaming.
pub async fn open(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    expected: &SourceVersion,
) -> Result<Opened, SourceError> {
    open_with(client, bucket, key, expected, None).await
}

/// Like [`open`], for bytes `start..=end` only (copies in parts): the attributes are the
/// object's, `size` the whole object's (from `Content-Range`), the body just the range.
pub async fn open_range(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    expected: &SourceVersion,
    start: u64,
    end: u64,
) -> Result<Opened, SourceError> {
    open_with(client, bucket, key, expected, Some((start, end))).await
}

async fn open_with(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    expected: &SourceVersion,
    range: Option<(u64, u64)>,
) -> Result<Opened, SourceError> {
    let mut request = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .if_match(format!("\"{}\"", expected.etag));
    request = match range {
        // S3 returns no whole-object checksum with a range.
        Some((start, end)) => request.range(format!("bytes={start}-{end}")),
        None => request.checksum_mode(ChecksumMode::Enabled),
    };
    let fail = |message: String| SourceError::new("GetObject", bucket, key, message);
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) => {
            return match get_failure(&e) {
                GetFailure::Missing => Ok(Opened::Missing),
                GetFailure::NoSuchBucket => Err(no_such_bucket(bucket, key)),
                GetFailure::Changed => Ok(Opened::Changed),
                GetFailure::Other => Err(fail(DisplayErrorContext(&e).to_string())),
            };
        }
    };
    let length = response
        .content_length()
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| fail("response without Content-Length".into()))?;
    let size = match range {
        None => length,
        Some((start, end)) => {
            let total = response
                .content_range()
                .and_then(|r| r.rsplit_once('/'))
                .and_then(|(_, total)| total.parse::<u64>().ok());
            match total {
                Some(total) if length == end - start + 1 => total,
                _ => {
                    return Err(fail(format!(
                        "asked for bytes {start}-{end}, S3 answered {length} bytes, Content-Range {:?}",
                        response.content_range()
                    )));
                }
            }
        }
    };
    let etag = response.e_tag().map(|e| e.trim_matches('"').to_string());
    let kms = matches!(
        response.server_side_encryption(),
        Some(ServerSideEncryption::AwsKms | ServerSideEncryption::AwsKmsDsse)
    );
    let md5 = etag
        .as_deref()
        .filter(|_| !kms && response.sse_customer_algorithm().is_none())
        .and_then(crossfed_kit::etag::md5);
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
        body: match range {
            None => BodySource::new(response.body, length).reopening(Reopen {
                client: client.clone(),
                bucket: bucket.to_string(),
                key: key.to_string(),
                etag: expected.etag.clone(),
            }),
            Some(_) => BodySource::new(response.body, length),
        },
    })))
}

/// How to read the object again from an offset: `GetObject` with `Range` and `If-Match`
/// the same ETag, so a rewound stream can only continue with the same bytes.
#[derive(Clone, Debug)]
pub struct Reopen {
    client: aws_sdk_s3::Client,
    bucket: String,
    key: String,
    etag: String,
}

impl Reopen {
    /// Bytes `offset..size` of the object.
    async fn from(&self, offset: u64, size: u64) -> Result<ByteStream, BodyError> {
        if offset == size {
            return Ok(ByteStream::from_static(b""));
        }
        let response = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&self.key)
            .if_match(format!("\"{}\"", self.etag))
            .range(format!("bytes={offset}-{}", size - 1))
            .send()
            .await;
        match response {
            Ok(r) if r.content_length() == i64::try_from(size - offset).ok() => Ok(r.body),
            Ok(r) => Err(BodyError::Reopen(format!(
                "asked for bytes {offset}-{}, S3 answered {:?} bytes",
                size - 1,
                r.content_length()
            ))),
            Err(e) => match get_failure(&e) {
                GetFailure::Missing | GetFailure::Changed => Err(BodyError::Changed),
                GetFailure::NoSuchBucket | GetFailure::Other => {
                    Err(BodyError::Reopen(DisplayErrorContext(&e).to_string()))
                }
            },
        }
    }
}

/// The object's bytes as they arrive, checked against the announced length so that a
/// truncated read ends the upload with an error instead of finalizing it. Counts and
/// CRC32Cs every byte once (a rewound stream is not counted twice), for checking the
/// finished object.
pub struct BodySource {
    body: ByteStream,
    expected: u64,
    /// Offset of the next byte `body` yields.
    position: u64,
    /// Bytes `0..checked` are in `crc32c`.
    checked: u64,
    crc32c: u32,
    stats: Arc<StreamStats>,
    reopen: Option<Reopen>,
}

/// What a [`BodySource`] has produced so far (shared, readable after the upload).
#[derive(Debug, Default)]
pub struct StreamStats {
    expected: u64,
    bytes: AtomicU64,
    crc32c: AtomicU32,
    reopened: AtomicU32,
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

    /// How many times the upload rewound the stream and S3 was read again.
    pub fn reopened(&self) -> u32 {
        self.reopened.load(Ordering::SeqCst)
    }
}

/// The S3 body could not be read completely.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("reading the S3 object failed: {0}")]
    Read(#[from] aws_sdk_s3::primitives::ByteStreamError),
    #[error("the S3 object had {seen} bytes, {expected} were announced")]
    Length { expected: u64, seen: u64 },
    /// Reading again for a retried upload: the object was overwritten or deleted since
    /// (412 / 404), so the copy must be decided again.
    #[error("the S3 object changed while it was being copied")]
    Changed,
    #[error("reading the S3 object again for a retried upload failed: {0}")]
    Reopen(String),
    #[error("cannot rewind the S3 stream to byte {offset} (read so far: {read})")]
    Rewind { offset: u64, read: u64 },
}

impl BodySource {
    pub fn new(body: ByteStream, expected: u64) -> Self {
        BodySource {
            body,
            expected,
            position: 0,
            checked: 0,
            crc32c: 0,
            stats: Arc::new(StreamStats {
                expected,
                ..StreamStats::default()
            }),
            reopen: None,
        }
    }

    /// Lets the upload rewind the stream by reading S3 again ([`Seek`]).
    pub fn reopening(mut self, reopen: Reopen) -> Self {
        self.reopen = Some(reopen);
        self
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
                let start = self.position;
                let end = start + chunk.len() as u64;
                if end > self.expected {
                    return Some(Err(BodyError::Length {
                        expected: self.expected,
                        seen: end,
                    }));
                }
                if end > self.checked {
                    // `start <= checked`: a rewind never skips bytes (see `seek`).
                    let new = &chunk[(self.checked - start) as usize..];
                    self.crc32c = crc32c::crc32c_append(self.crc32c, new);
                    self.checked = end;
                    self.stats.crc32c.store(self.crc32c, Ordering::SeqCst);
                    self.stats.bytes.store(end, Ordering::SeqCst);
                }
                self.position = end;
                Some(Ok(chunk))
            }
            Some(Err(e)) => Some(Err(e.into())),
            None if self.position != self.expected => Some(Err(BodyError::Length {
                expected: self.expected,
                seen: self.position,
            })),
            None => None,
        }
    }

    async fn size_hint(&self) -> Result<SizeHint, BodyError> {
        Ok(SizeHint::with_exact(self.expected))
    }
}

impl Seek for BodySource {
    type Error = BodyError;

    /// Continues from `offset`: nothing to do at the current position (the first attempt);
    /// otherwise S3 is read again from there, on condition of the same ETag.
    async fn seek(&mut self, offset: u64) -> Result<(), BodyError> {
        if offset == self.position {
            return Ok(());
        }
        let rewind = BodyError::Rewind {
            offset,
            read: self.checked,
        };
        let Some(reopen) = self.reopen.as_ref().filter(|_| offset <= self.checked) else {
            return Err(rewind);
        };
        self.body = reopen.from(offset, self.expected).await?;
        self.position = offset;
        self.stats.reopened.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[tokio::test]
    async fn rewinding_needs_a_way_to_read_s3_again() {
        let mut s = BodySource::new(ByteStream::from_static(b"hello"), 5);
        // The first attempt starts where the stream is: nothing to do.
        s.seek(0).await.unwrap();
        assert_eq!(s.next().await.unwrap().unwrap(), "hello");
        s.seek(5).await.unwrap();
        // Ranged reads (parts) cannot be rewound.
        assert!(matches!(
            s.seek(0).await,
            Err(BodyError::Rewind { offset: 0, read: 5 })
        ));
        assert_eq!(s.stats().reopened(), 0);
        assert_eq!(s.stats().complete(), Some((5, crc32c::crc32c(b"hello"))));
    }
}
