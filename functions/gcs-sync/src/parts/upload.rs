//! Uploading the parts of one object: the parts already in Cloud Storage are kept, S3 is
//! read as one ranged stream per run of missing parts, and parts upload concurrently while
//! the next one is read, within `concurrency × part_bytes` of buffers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use bytes::{Bytes, BytesMut};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::conditional::Conditional;
use crate::gcs::{DestinationBucket, GcsError};
use crate::parts::layout::{Layout, Part};
use crate::s3::{SourceBucket, SourceError};

/// Copying parts failed.
#[derive(Debug, thiserror::Error)]
pub enum PartsError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Destination(#[from] GcsError),
    #[error("uploading part {part} of gs://{bucket}/{name}: {detail}")]
    PartMismatch {
        bucket: String,
        name: String,
        part: usize,
        detail: String,
    },
    #[error("a part upload task failed: {0}")]
    Task(String),
}

/// Parts of `layout` already in Cloud Storage with the right size (others are ignored
/// and overwritten).
pub async fn existing(
    destination: &DestinationBucket,
    layout: &Layout,
) -> Result<Vec<Option<Part>>, GcsError> {
    let mut found = vec![None; layout.count()];
    for object in destination.list(layout.dir()).await? {
        let Some(n) = layout.part_number(&object.name) else {
            continue;
        };
        let crc = object.checksums.as_ref().and_then(|c| c.crc32c);
        if let Some(crc32c) = crc
            && object.size as u64 == layout.range(n).1
        {
            found[n] = Some(Part {
                generation: object.generation,
                len: object.size as u64,
                crc32c,
            });
        }
    }
    Ok(found)
}

/// The first run of consecutive missing parts, as `(first, last)`.
pub fn first_run(missing: &[usize]) -> Option<(usize, usize)> {
    let first = *missing.first()?;
    let last = missing
        .iter()
        .zip(first..)
        .take_while(|(m, want)| *m == want)
        .last()
        .map_or(first, |(m, _)| *m);
    Some((first, last))
}

/// Bytes `start..=end` of the parts `first..=last`.
pub fn byte_range(layout: &Layout, (first, last): (usize, usize)) -> (u64, u64) {
    let (start, _) = layout.range(first);
    let (at, len) = layout.range(last);
    (start, at + len - 1)
}

/// The object whose parts are uploaded: `key` in the source bucket, pinned to `etag`.
#[derive(Clone, Copy, Debug)]
pub struct Pinned<'a> {
    pub source: &'a SourceBucket,
    pub key: &'a str,
    pub etag: &'a str,
}

/// Makes sure every part of `layout` is in Cloud Storage; `existing` says which are there.
/// `first`, if given, is an open ranged stream of the first run of missing parts. S3
/// answering 404 or 412 for a range is [`Conditional::LookAgain`].
pub async fn upload_missing(
    object: Pinned<'_>,
    destination: &DestinationBucket,
    concurrency: usize,
    layout: &Layout,
    existing: Vec<Option<Part>>,
    first: Option<ByteStream>,
) -> Result<Conditional<Vec<Part>>, PartsError> {
    let mut parts = existing;
    let missing: Vec<usize> = (0..parts.len()).filter(|n| parts[*n].is_none()).collect();
    tracing::info!(
        parts = parts.len(),
        missing = missing.len(),
        dir = layout.dir(),
        "copying in parts"
    );
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut uploads: JoinSet<Result<(usize, Part), PartsError>> = JoinSet::new();
    // The open stream and the offset it is at.
    let mut stream: Option<(ByteStream, u64)> = first
        .zip(missing.first())
        .map(|(b, n)| (b, layout.range(*n).0));
    let mut carry = Bytes::new();
    let mut timings = Timings::default();
    for (i, &n) in missing.iter().enumerate() {
        let (start, len) = layout.range(n);
        if stream.as_ref().is_none_or(|(_, at)| *at != start) {
            // A run of missing parts ends where the next present part starts.
            let run_end = missing[i..]
                .iter()
                .zip(n..)
                .take_while(|(m, want)| *m == want)
                .last()
                .map_or(start + len, |(m, _)| {
                    let (s, l) = layout.range(*m);
                    s + l
                });
            carry = Bytes::new();
            let opening = Instant::now();
            let opened = object
                .source
                .read_range(object.key, object.etag, start, run_end - 1)
                .await?;
            timings.open += opening.elapsed();
            match opened {
                Conditional::Done(body) => stream = Some((body, start)),
                Conditional::LookAgain(changed) => return Ok(Conditional::LookAgain(changed)),
            }
        }
        let waiting = Instant::now();
        let permit = permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| PartsError::Task(e.to_string()))?;
        timings.upload_wait += waiting.elapsed();
        let Some((body, at)) = stream.as_mut() else {
            return Err(PartsError::Task("no S3 stream open".into()));
        };
        let reading = Instant::now();
        let data = read_exact(body, &mut carry, len).await.map_err(|message| {
            SourceError::new(
                "GetObject",
                object.source.name(),
                object.key,
                format!("bytes {start}-{}: {message}", start + len - 1),
            )
        })?;
        timings.s3_read += reading.elapsed();
        let hashing = Instant::now();
        let crc = crc32c::crc32c(&data);
        timings.crc32c += hashing.elapsed();
        *at += len;
        // Stop early if an upload already failed.
        while let Some(done) = uploads.try_join_next() {
            let (m, part) = joined(done)?;
            parts[m] = Some(part);
        }
        let destination = destination.clone();
        let name = layout.part_name(n);
        uploads.spawn(async move {
            let _permit = permit;
            let object = destination.upload_part(&name, data, crc).await?;
            let part = Part {
                generation: object.generation,
                len: object.size as u64,
                crc32c: object.checksums.and_then(|c| c.crc32c).unwrap_or(!crc),
            };
            if part.len != len || part.crc32c != crc {
                return Err(PartsError::PartMismatch {
                    bucket: destination.destination().bucket().to_string(),
                    name,
                    part: n,
                    detail: format!(
                        "stored {} bytes with CRC32C {:08x}, sent {len} bytes with {crc:08x}",
                        part.len, part.crc32c
                    ),
                });
            }
            Ok((n, part))
        });
    }
    drop(stream);
    let draining = Instant::now();
    while let Some(done) = uploads.join_next().await {
        let (m, part) = joined(done)?;
        parts[m] = Some(part);
    }
    timings.upload_wait += draining.elapsed();
    tracing::info!(
        parts = missing.len(),
        s3_open_ms = timings.open.as_millis() as u64,
        s3_read_ms = timings.s3_read.as_millis() as u64,
        crc32c_ms = timings.crc32c.as_millis() as u64,
        upload_wait_ms = timings.upload_wait.as_millis() as u64,
        "parts uploaded"
    );
    match parts.into_iter().collect::<Option<Vec<Part>>>() {
        Some(all) => Ok(Conditional::Done(all)),
        None => Err(PartsError::Task(
            "a part was neither found nor uploaded".into(),
        )),
    }
}

/// Where the time of one run of parts went: opening ranged `GetObject`s, reading S3,
/// CRC32C, waiting for an upload slot (uploads slower than the read) and for the last
/// uploads. Logged with the run, for profiling.
#[derive(Debug, Default)]
struct Timings {
    open: Duration,
    s3_read: Duration,
    crc32c: Duration,
    upload_wait: Duration,
}

/// Reads exactly `len` bytes (keeping any excess in `carry`).
async fn read_exact(body: &mut ByteStream, carry: &mut Bytes, len: u64) -> Result<Bytes, String> {
    let len = len as usize;
    let mut buffer = BytesMut::with_capacity(len);
    let take = |chunk: &mut Bytes, buffer: &mut BytesMut| {
        let n = chunk.len().min(len - buffer.len());
        buffer.extend_from_slice(&chunk.split_to(n));
    };
    take(carry, &mut buffer);
    while buffer.len() < len {
        match body.next().await {
            Some(Ok(mut chunk)) => {
                take(&mut chunk, &mut buffer);
                *carry = chunk;
            }
            Some(Err(e)) => return Err(format!("reading failed: {e}")),
            None => {
                return Err(format!(
                    "the stream ended after {} of {len} bytes",
                    buffer.len()
                ));
            }
        }
    }
    Ok(buffer.freeze())
}

fn joined(
    done: Result<Result<(usize, Part), PartsError>, tokio::task::JoinError>,
) -> Result<(usize, Part), PartsError> {
    done.map_err(|e| PartsError::Task(e.to_string()))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::destination::Destination;

    const MIB: u64 = 1024 * 1024;

    #[test]
    fn first_run_of_missing_parts() {
        assert_eq!(first_run(&[]), None);
        assert_eq!(first_run(&[3, 4, 5, 7]), Some((3, 5)));
        assert_eq!(first_run(&[2]), Some((2, 2)));
        let d: Destination = "gs://bucket/mirror".parse().unwrap();
        let l = Layout::new(&d, "dir/a b.bin", "abc-3", 10 * MIB + 5, 4 * MIB).unwrap();
        assert_eq!(byte_range(&l, (1, 2)), (4 * MIB, 10 * MIB + 4));
        assert_eq!(byte_range(&l, (0, 0)), (0, 4 * MIB - 1));
    }

    #[tokio::test]
    async fn read_exact_splits_frames() {
        let mut body = ByteStream::from_static(b"hello world");
        let mut carry = Bytes::new();
        let a = read_exact(&mut body, &mut carry, 4).await.unwrap();
        assert_eq!(&a[..], b"hell");
        let b = read_exact(&mut body, &mut carry, 7).await.unwrap();
        assert_eq!(&b[..], b"o world");
        assert!(read_exact(&mut body, &mut carry, 1).await.is_err());
    }
}
