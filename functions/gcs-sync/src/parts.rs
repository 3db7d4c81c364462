//! Large objects in parts, so that a copy continues across invocations: the S3 object is
//! cut into fixed-size ranges, each uploaded as a temporary object
//! `<prefix>.crossfed-parts/<key>/<etag>/<n>` (CRC32C declared, so Cloud Storage rejects a
//! corrupted part). A redelivered message lists the parts already there and uploads only
//! the missing ones; [`crate::compose`] then builds the copy. S3 is read as one ranged
//! stream per run of missing parts, and parts upload concurrently while the next one is
//! read, within `concurrency × part_bytes` of buffers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use bytes::{Bytes, BytesMut};
use google_cloud_storage::model::Object;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::destination::Destination;
use crate::gcs_writer::{Conditional, GcsError, GcsWriter};
use crate::reconcile;
use crate::s3_error::{GetFailure, SourceError, get_failure};
use crate::s3_source::{self, Opened, SourceObject};
use crate::s3_state::SourceVersion;

const MIB: u64 = 1024 * 1024;
/// Marks temporary objects below the destination prefix.
pub use crossfed_kit::sync_areas::PARTS_DIR;
/// Cloud Storage object names are at most 1024 bytes.
const MAX_NAME: usize = 1024;

/// `SYNC_PART_THRESHOLD_BYTES` / `SYNC_PART_BYTES` / `SYNC_PART_CONCURRENCY`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartSettings {
    /// Objects larger than this are copied in parts (default 1 GiB); smaller ones are
    /// streamed in one request.
    pub threshold: u64,
    /// Size of each part (default 8 MiB).
    pub part_bytes: u64,
    /// Parts read or uploading at once (default 4); memory is about this many parts.
    pub concurrency: usize,
}

impl Default for PartSettings {
    fn default() -> Self {
        PartSettings {
            threshold: 1024 * MIB,
            part_bytes: 8 * MIB,
            concurrency: 4,
        }
    }
}

impl PartSettings {
    /// Whether an object of `size` bytes is copied in parts.
    pub fn applies(&self, size: u64) -> bool {
        size > self.threshold
    }
}

/// Where the parts of one source object (key and ETag) go and which bytes each holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    dir: String,
    size: u64,
    part_bytes: u64,
}

impl Layout {
    /// The layout for `key` with `etag`, or `None` if part names would be too long for
    /// Cloud Storage (such objects are copied in one stream instead).
    pub fn new(
        destination: &Destination,
        key: &str,
        etag: &str,
        size: u64,
        part_bytes: u64,
    ) -> Option<Self> {
        let dir = format!("{}{PARTS_DIR}{key}/{etag}/", destination.prefix());
        // Room for the longest part / intermediate name suffix.
        (dir.len() + 16 <= MAX_NAME && part_bytes > 0).then_some(Layout {
            dir,
            size,
            part_bytes,
        })
    }

    pub fn dir(&self) -> &str {
        &self.dir
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn count(&self) -> usize {
        self.size.div_ceil(self.part_bytes) as usize
    }

    /// `(offset, length)` of part `n`.
    pub fn range(&self, n: usize) -> (u64, u64) {
        let start = n as u64 * self.part_bytes;
        (start, self.part_bytes.min(self.size - start))
    }

    pub fn part_name(&self, n: usize) -> String {
        format!("{}{n:06}", self.dir)
    }

    /// Part number of `name`, if it is one of this layout's parts.
    fn part_number(&self, name: &str) -> Option<usize> {
        let n = name.strip_prefix(&self.dir)?;
        (n.len() == 6 && n.bytes().all(|b| b.is_ascii_digit()))
            .then(|| n.parse().ok())
            .flatten()
            .filter(|n| *n < self.count())
    }
}

/// A part stored in Cloud Storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Part {
    pub generation: i64,
    pub len: u64,
    pub crc32c: u32,
}

/// What the S3 side said while the parts were read.
#[derive(Debug, PartialEq, Eq)]
pub enum PartsOutcome {
    /// Every part is in Cloud Storage.
    Ready(Vec<Part>),
    /// The object was deleted meanwhile (404): look at S3 again.
    SourceMissing,
    /// The object no longer has the ETag being copied (412): look at S3 again.
    SourceChanged,
}

/// Copying parts failed.
#[derive(Debug, thiserror::Error)]
pub enum PartsError {
    #[error("S3 GetObject s3://{bucket}/{key} bytes {start}-{end}: {message}")]
    Source {
        bucket: String,
        key: String,
        start: u64,
        end: u64,
        message: String,
    },
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
    #[error(transparent)]
    Open(#[from] SourceError),
}

/// The S3 object whose bytes are copied: `etag` pins the content (`If-Match`).
#[derive(Clone, Debug)]
pub struct SourceRef {
    pub bucket: String,
    pub key: String,
    pub etag: String,
}

impl GcsWriter {
    /// Every object whose name starts with `prefix`, in name order.
    pub async fn list(&self, prefix: &str) -> Result<Vec<Object>, GcsError> {
        let mut objects = Vec::new();
        let mut token = String::new();
        loop {
            let page = self
                .control()
                .list_objects()
                .set_parent(self.destination().bucket_resource())
                .set_prefix(prefix)
                .set_page_token(token)
                .send()
                .await
                .map_err(|e| self.call_error("list", prefix, e))?;
            objects.extend(page.objects);
            if page.next_page_token.is_empty() {
                return Ok(objects);
            }
            token = page.next_page_token;
        }
    }

    /// Uploads one part in a single request with its CRC32C declared (Cloud Storage
    /// rejects the upload if the bytes differ), overwriting any earlier attempt.
    async fn write_part(&self, name: &str, data: Bytes, crc32c: u32) -> Result<Part, GcsError> {
        let len = data.len();
        let object = self
            .storage()
            .write_object(self.destination().bucket_resource(), name, data)
            .with_known_crc32c(crc32c)
            .with_resumable_upload_threshold(len + 1)
            .set_content_type("application/octet-stream")
            .send_buffered()
            .await
            .map_err(|e| self.call_error("upload part", name, e))?;
        Ok(Part {
            generation: object.generation,
            len: object.size as u64,
            crc32c: object.checksums.and_then(|c| c.crc32c).unwrap_or(!crc32c),
        })
    }
}

/// Parts of `layout` already in Cloud Storage with the right size (others are ignored
/// and overwritten).
pub async fn existing(gcs: &GcsWriter, layout: &Layout) -> Result<Vec<Option<Part>>, GcsError> {
    let mut found = vec![None; layout.count()];
    for object in gcs.list(layout.dir()).await? {
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
fn first_run(missing: &[usize]) -> Option<(usize, usize)> {
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
fn byte_range(layout: &Layout, (first, last): (usize, usize)) -> (u64, u64) {
    let (start, _) = layout.range(first);
    let (at, len) = layout.range(last);
    (start, at + len - 1)
}

/// Makes sure every part of `layout` is in Cloud Storage; `existing` says which are there.
/// `first`, if given, is an open ranged stream of the first run of missing parts.
pub async fn upload_missing(
    s3: &aws_sdk_s3::Client,
    gcs: &GcsWriter,
    settings: &PartSettings,
    source: &SourceRef,
    layout: &Layout,
    existing: Vec<Option<Part>>,
    first: Option<ByteStream>,
) -> Result<PartsOutcome, PartsError> {
    let mut parts = existing;
    let missing: Vec<usize> = (0..parts.len()).filter(|n| parts[*n].is_none()).collect();
    tracing::info!(
        parts = parts.len(),
        missing = missing.len(),
        dir = layout.dir(),
        "copying in parts"
    );
    let permits = Arc::new(Semaphore::new(settings.concurrency.max(1)));
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
            let opened = open_range(s3, source, start, run_end - 1).await?;
            timings.open += opening.elapsed();
            match opened {
                Ranged::Open(body) => stream = Some((body, start)),
                Ranged::Missing => return Ok(PartsOutcome::SourceMissing),
                Ranged::Changed => return Ok(PartsOutcome::SourceChanged),
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
        let data =
            read_exact(body, &mut carry, len)
                .await
                .map_err(|message| PartsError::Source {
                    bucket: source.bucket.clone(),
                    key: source.key.clone(),
                    start,
                    end: start + len - 1,
                    message,
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
        let gcs = gcs.clone();
        let name = layout.part_name(n);
        uploads.spawn(async move {
            let _permit = permit;
            let part = gcs.write_part(&name, data, crc).await?;
            if part.len != len || part.crc32c != crc {
                return Err(PartsError::PartMismatch {
                    bucket: gcs.destination().bucket().to_string(),
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
        Some(all) => Ok(PartsOutcome::Ready(all)),
        None => Err(PartsError::Task(
            "a part was neither found nor uploaded".into(),
        )),
    }
}

/// What a copy in parts did.
#[derive(Debug)]
pub enum Copied {
    /// Composed (or the destination's generation had changed: `Conditional::Conflict`).
    Done(Box<Conditional<Object>>),
    /// S3 answered 404 for a range: the object was deleted meanwhile. Not a reason to
    /// skip: the caller looks at S3 again.
    SourceMissing,
    /// S3 answered 412 for a range: the object was overwritten meanwhile. The caller looks
    /// at S3 again.
    SourceChanged,
}

/// The clients and settings a copy in parts needs.
#[derive(Clone, Copy, Debug)]
pub struct PartCopier<'a> {
    pub s3: &'a aws_sdk_s3::Client,
    pub gcs: &'a GcsWriter,
    pub settings: &'a PartSettings,
}

impl PartCopier<'_> {
    /// Copies the object `bucket`/`key` that S3 serves as `expected` (`size` bytes) into
    /// `name` in parts: uploads the parts still missing, then composes them under
    /// `if_generation_match` with the object's attributes and metadata (read with the first
    /// ranged `GetObject`; [`reconcile::copy_metadata`] bookkeeping). `None` if part names
    /// would be too long: copy it in one stream then.
    pub async fn copy(
        &self,
        bucket: &str,
        key: &str,
        name: &str,
        expected: &SourceVersion,
        size: u64,
        if_generation_match: i64,
    ) -> Result<Option<Copied>, PartsError> {
        let part_bytes = self.settings.part_bytes;
        let Some(layout) = Layout::new(
            self.gcs.destination(),
            key,
            &expected.etag,
            size,
            part_bytes,
        ) else {
            return Ok(None);
        };
        let reference = SourceRef {
            bucket: bucket.to_string(),
            key: key.to_string(),
            etag: expected.etag.clone(),
        };
        let existing = existing(self.gcs, &layout).await?;
        let missing: Vec<usize> = (0..existing.len())
            .filter(|n| existing[*n].is_none())
            .collect();
        // The read of the first missing parts also brings the object's attributes; with
        // every part present, one byte does.
        let (start, end) = first_run(&missing).map_or((0, 0), |run| byte_range(&layout, run));
        let object = match s3_source::open_range(self.s3, bucket, key, expected, start, end).await?
        {
            Opened::Found(object) => *object,
            Opened::Missing => return Ok(Some(Copied::SourceMissing)),
            Opened::Changed => return Ok(Some(Copied::SourceChanged)),
        };
        if object.size != size {
            return Ok(Some(Copied::SourceChanged));
        }
        let metadata = reconcile::copy_metadata(
            bucket,
            key,
            object.etag.as_deref(),
            object.version_id.as_deref(),
        );
        let (body, destination) = destination_object(object, name, metadata);
        let first = (!missing.is_empty()).then_some(body);
        let outcome = upload_missing(
            self.s3,
            self.gcs,
            self.settings,
            &reference,
            &layout,
            existing,
            first,
        )
        .await?;
        let parts = match outcome {
            PartsOutcome::Ready(parts) => parts,
            PartsOutcome::SourceMissing => return Ok(Some(Copied::SourceMissing)),
            PartsOutcome::SourceChanged => return Ok(Some(Copied::SourceChanged)),
        };
        let composing = Instant::now();
        let done = self
            .gcs
            .compose_parts(&layout, &parts, destination, if_generation_match)
            .await?;
        tracing::info!(
            parts = parts.len(),
            compose_ms = composing.elapsed().as_millis() as u64,
            "parts composed"
        );
        Ok(Some(Copied::Done(Box::new(done))))
    }
}

/// Removes temporary parts of `key`'s current object (`version`, `size` bytes, as S3
/// serves it) left behind by an invocation that composed the copy but was cut short before
/// removing them.
pub async fn remove_leftovers(
    gcs: &GcsWriter,
    settings: &PartSettings,
    key: &str,
    version: &SourceVersion,
    size: u64,
) {
    if !settings.applies(size) {
        return;
    }
    let Some(layout) = Layout::new(
        gcs.destination(),
        key,
        &version.etag,
        size,
        settings.part_bytes,
    ) else {
        return;
    };
    match gcs.list(layout.dir()).await {
        Ok(objects) if !objects.is_empty() => {
            let leftovers = objects
                .into_iter()
                .map(|o| (o.name, o.generation))
                .collect();
            gcs.remove_temporary(leftovers).await;
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(dir = layout.dir(), error = %e, "could not list leftover parts"),
    }
}

/// The copy's attributes and metadata (as the one-stream upload sets them: the one merge,
/// [`reconcile::merged_metadata`]), and the body.
fn destination_object(
    source: SourceObject,
    name: &str,
    metadata: Vec<(&'static str, String)>,
) -> (ByteStream, Object) {
    let SourceObject {
        body,
        content_type,
        content_encoding,
        content_language,
        content_disposition,
        cache_control,
        user_metadata,
        ..
    } = source;
    let all = reconcile::merged_metadata(user_metadata, metadata);
    let text = |v: Option<String>| v.unwrap_or_default();
    let object = Object::new()
        .set_name(name)
        .set_content_type(text(content_type))
        .set_content_encoding(text(content_encoding))
        .set_content_language(text(content_language))
        .set_content_disposition(text(content_disposition))
        .set_cache_control(text(cache_control))
        .set_metadata(all);
    (body.into_inner(), object)
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

enum Ranged {
    Open(ByteStream),
    Missing,
    Changed,
}

/// `GetObject` of bytes `start..=end`, on condition that the object still has the ETag.
async fn open_range(
    s3: &aws_sdk_s3::Client,
    source: &SourceRef,
    start: u64,
    end: u64,
) -> Result<Ranged, PartsError> {
    let result = s3
        .get_object()
        .bucket(&source.bucket)
        .key(&source.key)
        .if_match(format!("\"{}\"", source.etag))
        .range(format!("bytes={start}-{end}"))
        .send()
        .await;
    match result {
        Ok(response) => {
            let announced = response.content_length().unwrap_or(-1);
            if announced != (end - start + 1) as i64 {
                return Err(PartsError::Source {
                    bucket: source.bucket.clone(),
                    key: source.key.clone(),
                    start,
                    end,
                    message: format!("S3 announced {announced} bytes"),
                });
            }
            Ok(Ranged::Open(response.body))
        }
        Err(e) => {
            let error = |message: String| PartsError::Source {
                bucket: source.bucket.clone(),
                key: source.key.clone(),
                start,
                end,
                message,
            };
            match get_failure(&e) {
                GetFailure::Missing => Ok(Ranged::Missing),
                GetFailure::NoSuchBucket => Err(error(
                    "the bucket does not exist (NoSuchBucket): check SYNC_SOURCE_BUCKET".into(),
                )),
                GetFailure::Changed => Ok(Ranged::Changed),
                GetFailure::Other => Err(error(DisplayErrorContext(&e).to_string())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(size: u64, part: u64) -> Layout {
        let d: Destination = "gs://bucket/mirror".parse().unwrap();
        Layout::new(&d, "dir/a b.bin", "abc-3", size, part).unwrap()
    }

    #[test]
    fn ranges_cover_the_object() {
        let l = layout(10 * MIB + 5, 4 * MIB);
        assert_eq!(l.count(), 3);
        assert_eq!(l.range(0), (0, 4 * MIB));
        assert_eq!(l.range(2), (8 * MIB, 2 * MIB + 5));
        assert_eq!(
            l.part_name(2),
            "mirror/.crossfed-parts/dir/a b.bin/abc-3/000002"
        );
        assert_eq!(l.part_number(&l.part_name(2)), Some(2));
        assert_eq!(l.part_number(&l.part_name(3)), None);
        assert_eq!(
            l.part_number("mirror/.crossfed-parts/dir/a b.bin/abc-3/c1-000000"),
            None
        );
        assert_eq!(layout(8 * MIB, 4 * MIB).count(), 2);
    }

    #[test]
    fn long_keys_have_no_layout() {
        let d: Destination = "gs://bucket/p".parse().unwrap();
        assert!(Layout::new(&d, &"k".repeat(990), "e", 1, 1).is_none());
        assert!(Layout::new(&d, &"k".repeat(900), "e", 1, 1).is_some());
    }

    #[test]
    fn applies_above_the_threshold() {
        let s = PartSettings::default();
        assert!(s.applies(1024 * MIB + 1) && !s.applies(1024 * MIB) && !s.applies(9 * MIB));
        let low = PartSettings {
            threshold: 8 * MIB,
            ..s
        };
        assert!(low.applies(8 * MIB + 1) && !low.applies(8 * MIB));
    }

    #[test]
    fn first_run_of_missing_parts() {
        assert_eq!(first_run(&[]), None);
        assert_eq!(first_run(&[3, 4, 5, 7]), Some((3, 5)));
        assert_eq!(first_run(&[2]), Some((2, 2)));
        let l = layout(10 * MIB + 5, 4 * MIB);
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
