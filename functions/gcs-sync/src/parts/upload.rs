//! Putting the parts of one object in Cloud Storage. S3 is read once, as one ranged stream,
//! part after part, and each part's MD5 and CRC32C are computed from S3's bytes. Nothing
//! stored in the destination bucket is trusted (anyone who can write there could have put
//! it, with any metadata): a part already there is kept only if Cloud Storage's own MD5 and
//! CRC32C of that generation equal those of S3's bytes; any other part is uploaded (again)
//! with both declared, on condition of the generation found, so that a writer racing us is
//! noticed. Parts hash and upload concurrently while the next one is read, within
//! `concurrency × part_bytes` of buffers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use bytes::{Bytes, BytesMut};
use google_cloud_storage::model::Object;
use md5::{Digest as _, Md5};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use crate::conditional::Conditional;
use crate::gcs::{DestinationBucket, GcsError};
use crate::parts::layout::{Layout, Part};
use crate::s3::{Crc, SourceError};

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
    #[error(
        "{object}: S3 reports {crc} {s3} for the whole object, but the bytes read from it have \
         {read}: S3 and the bytes read disagree; nothing was composed, the parts are kept for \
         the next try"
    )]
    SourceDisagrees {
        /// `s3://bucket/key (ETag …)`.
        object: String,
        crc: &'static str,
        s3: String,
        read: String,
    },
    #[error("a part upload task failed: {0}")]
    Task(String),
}

/// An object found at a part's name: what Cloud Storage computed of that generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Found {
    pub generation: i64,
    pub size: u64,
    /// Absent for composite objects.
    pub md5: Option<[u8; 16]>,
    pub crc32c: Option<u32>,
}

impl Found {
    /// Cloud Storage's view of `object`.
    pub fn of(object: &Object) -> Self {
        let checksums = object.checksums.as_ref();
        Found {
            generation: object.generation,
            size: u64::try_from(object.size).unwrap_or_default(),
            md5: checksums.and_then(|c| <[u8; 16]>::try_from(c.md5_hash.as_ref()).ok()),
            crc32c: checksums.and_then(|c| c.crc32c),
        }
    }

    /// Whether it holds the `len` bytes hashing to `digest`: its size, MD5 and CRC32C (all
    /// three computed by Cloud Storage) equal theirs. Why not, otherwise.
    pub fn holds(&self, len: u64, digest: &PartDigest) -> Result<(), String> {
        let md5 = |m: Option<[u8; 16]>| m.map_or_else(|| "none".to_string(), |m| hex(&m));
        let crc = |c: Option<u32>| c.map_or_else(|| "none".to_string(), |c| format!("{c:08x}"));
        if self.size == len && self.md5 == Some(digest.md5) && self.crc32c == Some(digest.crc32c) {
            return Ok(());
        }
        Err(format!(
            "Cloud Storage has {} bytes, MD5 {}, CRC32C {}; S3's bytes: {len}, MD5 {}, CRC32C {:08x}",
            self.size,
            md5(self.md5),
            crc(self.crc32c),
            hex(&digest.md5),
            digest.crc32c
        ))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Objects at the part names of `layout`, whatever they hold.
pub async fn found(
    destination: &DestinationBucket,
    layout: &Layout,
) -> Result<Vec<Option<Found>>, GcsError> {
    let mut found = vec![None; layout.count()];
    for object in destination.list(layout.dir()).await? {
        if let Some(n) = layout.part_number(&object.name) {
            found[n] = Some(Found::of(&object));
        }
    }
    Ok(found)
}

/// What the bytes of one part hash to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartDigest {
    pub crc32c: u32,
    pub md5: [u8; 16],
    /// The CRC S3 keeps of the whole object, when it is compared.
    pub full: Option<u64>,
}

impl PartDigest {
    /// Hashes `data`, and computes `full` if given.
    pub fn of(data: &[u8], full: Option<Crc>) -> Self {
        PartDigest {
            crc32c: crc32c::crc32c(data),
            md5: Md5::digest(data).into(),
            full: full.map(|crc| crc.of(data)),
        }
    }
}

/// The object whose parts are copied: `key` in the source bucket, for error messages.
#[derive(Clone, Copy, Debug)]
pub struct SourceKey<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
}

/// Every part of an object in Cloud Storage, holding S3's bytes.
#[derive(Clone, Debug)]
pub struct Uploaded {
    /// In order.
    pub parts: Vec<Part>,
    /// The CRC of S3's full-object checksum over the bytes read, when it was asked for.
    pub full: Option<u64>,
    /// Parts found holding S3's bytes: kept.
    pub reused: usize,
    /// Parts found holding anything else (or without an MD5): uploaded again.
    pub replaced: usize,
    /// Parts not found: uploaded.
    pub uploaded: usize,
}

/// Makes sure every part of `layout` is in Cloud Storage and holds S3's bytes: `body` is the
/// open ranged stream of the whole object, `found` what is at the parts' names. `full`: the
/// CRC to compute over the whole object too. A part written by someone else while this one
/// was uploaded is [`Conditional::LookAgain`].
pub async fn upload_parts(
    object: SourceKey<'_>,
    destination: &DestinationBucket,
    concurrency: usize,
    layout: &Layout,
    found: Vec<Option<Found>>,
    mut body: ByteStream,
    full: Option<Crc>,
) -> Result<Conditional<Uploaded>, PartsError> {
    tracing::info!(
        parts = layout.count(),
        found = found.iter().flatten().count(),
        dir = layout.dir(),
        "copying in parts"
    );
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks: JoinSet<Result<Conditional<Settled>, PartsError>> = JoinSet::new();
    let mut settled: Vec<Option<Settled>> = vec![None; layout.count()];
    let mut carry = Bytes::new();
    let mut timings = Timings::default();
    for (n, found) in found.into_iter().enumerate() {
        let (start, len) = layout.range(n);
        let waiting = Instant::now();
        let permit = permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| PartsError::Task(e.to_string()))?;
        timings.upload_wait += waiting.elapsed();
        let reading = Instant::now();
        let data = read_exact(&mut body, &mut carry, len)
            .await
            .map_err(|message| {
                SourceError::new(
                    "GetObject",
                    object.bucket,
                    object.key,
                    format!("bytes {start}-{}: {message}", start + len - 1),
                )
            })?;
        timings.s3_read += reading.elapsed();
        // Stop early if a part already failed or changed.
        while let Some(done) = tasks.try_join_next() {
            match joined(done)? {
                Conditional::Done(part) => settled[part.n] = Some(part),
                Conditional::LookAgain(changed) => return Ok(Conditional::LookAgain(changed)),
            }
        }
        let one = OnePart {
            destination: destination.clone(),
            name: layout.part_name(n),
            n,
            len,
            found,
            full,
        };
        tasks.spawn(one.settle(data, permit));
    }
    drop(body);
    let draining = Instant::now();
    while let Some(done) = tasks.join_next().await {
        match joined(done)? {
            Conditional::Done(part) => settled[part.n] = Some(part),
            Conditional::LookAgain(changed) => return Ok(Conditional::LookAgain(changed)),
        }
    }
    timings.upload_wait += draining.elapsed();
    let Some(settled) = settled.into_iter().collect::<Option<Vec<Settled>>>() else {
        return Err(PartsError::Task(
            "a part was neither kept nor uploaded".into(),
        ));
    };
    let count = |how: How| settled.iter().filter(|s| s.how == how).count();
    let uploaded = Uploaded {
        full: full.map(|crc| combined(crc, &settled)),
        reused: count(How::Reused),
        replaced: count(How::Replaced),
        uploaded: count(How::Uploaded),
        parts: settled.iter().map(|s| s.part).collect(),
    };
    let hashing: Duration = settled.iter().map(|s| s.hashing).sum();
    tracing::info!(
        parts = uploaded.parts.len(),
        reused = uploaded.reused,
        uploaded = uploaded.uploaded,
        replaced = uploaded.replaced,
        s3_read_ms = timings.s3_read.as_millis() as u64,
        hash_ms = hashing.as_millis() as u64,
        upload_wait_ms = timings.upload_wait.as_millis() as u64,
        "parts uploaded"
    );
    if uploaded.replaced > 0 {
        tracing::warn!(
            replaced = uploaded.replaced,
            dir = layout.dir(),
            "parts found in Cloud Storage did not hold S3's bytes: uploaded again"
        );
    }
    Ok(Conditional::Done(uploaded))
}

/// `crc` over the whole object, from the parts' (in order).
fn combined(crc: Crc, parts: &[Settled]) -> u64 {
    parts
        .iter()
        .filter_map(|s| s.digest.full.map(|value| (value, s.part.len)))
        .reduce(|(a, _), (b, len)| (crc.combine(a, b, len), len))
        .map_or_else(|| crc.of(b""), |(value, _)| value)
}

/// What became of a part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum How {
    /// Found holding S3's bytes: kept.
    Reused,
    /// Found holding other bytes, or not known to hold S3's: uploaded again.
    Replaced,
    /// Not found: uploaded.
    Uploaded,
}

/// A part in Cloud Storage holding S3's bytes.
#[derive(Clone, Copy, Debug)]
struct Settled {
    n: usize,
    part: Part,
    digest: PartDigest,
    how: How,
    hashing: Duration,
}

/// One part to settle: part `n` (`len` bytes) at `name`, and what was found there.
struct OnePart {
    destination: DestinationBucket,
    name: String,
    n: usize,
    len: u64,
    found: Option<Found>,
    full: Option<Crc>,
}

impl OnePart {
    /// Hashes S3's bytes of the part; keeps the part found if it holds them, else uploads
    /// them on condition of the generation found (none: 0). Holds `_permit` (its buffer)
    /// until done.
    async fn settle(
        self,
        data: Bytes,
        _permit: OwnedSemaphorePermit,
    ) -> Result<Conditional<Settled>, PartsError> {
        let hashing = Instant::now();
        let full = self.full;
        let (data, digest) = tokio::task::spawn_blocking(move || {
            let digest = PartDigest::of(&data, full);
            (data, digest)
        })
        .await
        .map_err(|e| PartsError::Task(e.to_string()))?;
        let settled = |generation, how| Settled {
            n: self.n,
            part: Part {
                generation,
                len: self.len,
                crc32c: digest.crc32c,
            },
            digest,
            how,
            hashing: hashing.elapsed(),
        };
        let how = match &self.found {
            None => How::Uploaded,
            Some(found) => match found.holds(self.len, &digest) {
                Ok(()) => return Ok(Conditional::Done(settled(found.generation, How::Reused))),
                Err(why) => {
                    tracing::warn!(
                        part = %self.name,
                        generation = found.generation,
                        why,
                        "a part found in Cloud Storage does not hold S3's bytes: not reused, \
                         uploaded again"
                    );
                    How::Replaced
                }
            },
        };
        let if_generation_match = self.found.map_or(0, |f| f.generation);
        let object = match self
            .destination
            .upload_part(
                &self.name,
                data,
                digest.crc32c,
                digest.md5,
                if_generation_match,
            )
            .await?
        {
            Conditional::Done(object) => object,
            Conditional::LookAgain(changed) => {
                tracing::warn!(
                    part = %self.name,
                    if_generation_match,
                    "the part was written by someone else meanwhile: looking again"
                );
                return Ok(Conditional::LookAgain(changed));
            }
        };
        if let Err(detail) = Found::of(&object).holds(self.len, &digest) {
            return Err(PartsError::PartMismatch {
                bucket: self.destination.destination().bucket().to_string(),
                name: self.name,
                part: self.n,
                detail: format!("after the upload: {detail}"),
            });
        }
        Ok(Conditional::Done(settled(object.generation, how)))
    }
}

/// Where the time of the read went: reading S3 and waiting for a buffer (uploads slower
/// than the read) and for the last uploads. Logged with the copy, for profiling.
#[derive(Debug, Default)]
struct Timings {
    s3_read: Duration,
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

fn joined<T>(done: Result<Result<T, PartsError>, tokio::task::JoinError>) -> Result<T, PartsError> {
    done.map_err(|e| PartsError::Task(e.to_string()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(data: &[u8]) -> PartDigest {
        PartDigest::of(data, None)
    }

    fn stored(data: &[u8]) -> Found {
        let d = digest(data);
        Found {
            generation: 7,
            size: data.len() as u64,
            md5: Some(d.md5),
            crc32c: Some(d.crc32c),
        }
    }

    #[test]
    fn a_part_is_kept_only_with_s3s_size_md5_and_crc32c() {
        let s3 = b"hello world";
        assert_eq!(stored(s3).holds(11, &digest(s3)), Ok(()));
        // Another content: MD5 and CRC32C differ.
        assert!(stored(b"hello there").holds(11, &digest(s3)).is_err());
        // Same CRC32C, other bytes (a forged part): the MD5 tells.
        let forged = Found {
            md5: Some(digest(b"hello there").md5),
            ..stored(s3)
        };
        let why = forged.holds(11, &digest(s3)).unwrap_err();
        assert!(why.contains("MD5"), "{why}");
        // No MD5 (a composite object): not known to hold S3's bytes.
        let composite = Found {
            md5: None,
            ..stored(s3)
        };
        assert!(
            composite
                .holds(11, &digest(s3))
                .unwrap_err()
                .contains("MD5 none")
        );
        let no_crc = Found {
            crc32c: None,
            ..stored(s3)
        };
        assert!(no_crc.holds(11, &digest(s3)).is_err());
        assert!(stored(s3).holds(12, &digest(s3)).is_err());
    }

    #[test]
    fn the_full_object_crc_combines_the_parts() {
        let whole = b"hello world, in three parts";
        let settled: Vec<Settled> = [&whole[..6], &whole[6..20], &whole[20..]]
            .iter()
            .enumerate()
            .map(|(n, p)| Settled {
                n,
                part: Part {
                    generation: 1,
                    len: p.len() as u64,
                    crc32c: crc32c::crc32c(p),
                },
                digest: PartDigest::of(p, Some(Crc::Crc64Nvme)),
                how: How::Uploaded,
                hashing: Duration::ZERO,
            })
            .collect();
        assert_eq!(combined(Crc::Crc64Nvme, &settled), Crc::Crc64Nvme.of(whole));
        assert_eq!(
            combined(Crc::Crc64Nvme, &settled[..1]),
            Crc::Crc64Nvme.of(&whole[..6])
        );
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
