//! The S3 body as a Cloud Storage `StreamingSource`: never more than one network chunk
//! held, the announced length checked, every byte counted and CRC32C'd once, and a rewind
//! (a retried upload) served by reading S3 again from the offset it needs, same ETag.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use google_cloud_storage::streaming_source::{Seek, SizeHint, StreamingSource};

use crate::conditional::Conditional;
use crate::s3::get::get_object;

/// How to read the object again from an offset: the ranged [`get_object`] on condition of
/// the same ETag, so a rewound stream can only continue with the same bytes.
#[derive(Clone, Debug)]
pub struct Reopen {
    pub client: aws_sdk_s3::Client,
    pub bucket: String,
    pub key: String,
    pub etag: String,
}

impl Reopen {
    /// Bytes `offset..size` of the object.
    async fn from(&self, offset: u64, size: u64) -> Result<ByteStream, BodyError> {
        if offset == size {
            return Ok(ByteStream::from_static(b""));
        }
        let range = Some((offset, size - 1));
        match get_object(
            &self.client,
            &self.bucket,
            &self.key,
            Some(&self.etag),
            range,
        )
        .await
        {
            Ok(Conditional::Done(response)) => Ok(response.body),
            Ok(Conditional::LookAgain(_)) => Err(BodyError::Changed),
            Err(e) => Err(BodyError::Reopen(e.to_string())),
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
