//! Streaming rewrites of upload bodies that verify the declared checksums.

use crate::server::lock;
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming};
use serde_json::Value;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::checksums::{Declared, Hashers};
use super::state::{BoxError, MAX_JSON, SharedOutcome, UpstreamBody};

/// A streaming rewrite of request body bytes.
pub(super) trait Transform: Send + Sync + Unpin + 'static {
    /// Bytes to forward for `data`.
    fn push(&mut self, data: Bytes) -> Result<Bytes, String>;
    /// Bytes to forward at the end, or the rejection.
    fn finish(&mut self) -> Result<Bytes, String>;
    fn outcome(&self) -> &SharedOutcome;

    fn body(self, inner: Incoming) -> UpstreamBody
    where
        Self: Sized,
    {
        Transformed {
            inner,
            transform: self,
            done: false,
        }
        .boxed()
    }
}

pub(super) struct Transformed<T> {
    pub(super) inner: Incoming,
    pub(super) transform: T,
    pub(super) done: bool,
}

#[derive(Debug)]
pub(super) struct Rejected(String);

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "upload rejected by GcsFaultProxy: {}", self.0)
    }
}

impl std::error::Error for Rejected {}

impl<T: Transform> hyper::body::Body for Transformed<T> {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            let frame = match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e.into()))),
                Poll::Ready(Some(Ok(frame))) => frame,
                Poll::Ready(None) => {
                    this.done = true;
                    return match this.transform.finish() {
                        Ok(bytes) if bytes.is_empty() => Poll::Ready(None),
                        Ok(bytes) => Poll::Ready(Some(Ok(Frame::data(bytes)))),
                        Err(message) => {
                            lock(this.transform.outcome()).rejection = Some(message.clone());
                            Poll::Ready(Some(Err(Box::new(Rejected(message)))))
                        }
                    };
                }
            };
            let data = match frame.into_data() {
                Ok(data) => data,
                // Trailers: not used by uploads.
                Err(_) => continue,
            };
            match this.transform.push(data) {
                Ok(bytes) if bytes.is_empty() => continue,
                Ok(bytes) => return Poll::Ready(Some(Ok(Frame::data(bytes)))),
                Err(message) => {
                    this.done = true;
                    lock(this.transform.outcome()).rejection = Some(message.clone());
                    return Poll::Ready(Some(Err(Box::new(Rejected(message)))));
                }
            }
        }
    }
}

/// Flips the first byte of `data` (returns it unchanged when empty).
pub(super) fn flip_first(data: Bytes) -> Bytes {
    if data.is_empty() {
        return data;
    }
    let mut copy = BytesMut::from(&data[..]);
    copy[0] ^= 0x5a;
    copy.freeze()
}

/// Raw object data (a resumable chunk or a media upload). When it completes
/// the object and declares checksums, the last byte is withheld until the
/// data is verified.
pub(super) struct ChunkTransform {
    pub(super) hashers: Option<Hashers>,
    /// `Some` if this request completes the object.
    pub(super) declared: Option<Declared>,
    pub(super) corrupt: bool,
    pub(super) held: Option<u8>,
    pub(super) outcome: SharedOutcome,
}

impl ChunkTransform {
    pub(super) fn new(
        hashers: Option<Hashers>,
        declared: Option<Declared>,
        corrupt: bool,
        outcome: SharedOutcome,
    ) -> Self {
        Self {
            hashers,
            declared,
            corrupt,
            held: None,
            outcome,
        }
    }

    pub(super) fn verifying(&self) -> bool {
        self.hashers.is_some() && self.declared.is_some_and(|d| !d.is_empty())
    }
}

impl Transform for ChunkTransform {
    fn push(&mut self, data: Bytes) -> Result<Bytes, String> {
        let data = if self.corrupt && !data.is_empty() {
            self.corrupt = false;
            lock(&self.outcome).corrupted = true;
            flip_first(data)
        } else {
            data
        };
        lock(&self.outcome).bytes += data.len() as u64;
        if let Some(h) = &mut self.hashers {
            h.update(&data);
        }
        if !self.verifying() || data.is_empty() {
            return Ok(data);
        }
        let mut out = BytesMut::with_capacity(data.len());
        out.extend(self.held.take());
        out.extend_from_slice(&data[..data.len() - 1]);
        self.held = Some(data[data.len() - 1]);
        Ok(out.freeze())
    }

    fn finish(&mut self) -> Result<Bytes, String> {
        let mut outcome = lock(&self.outcome);
        outcome.hashers = self.hashers.clone();
        if self.verifying()
            && let (Some(hashers), Some(declared)) = (&self.hashers, &self.declared)
        {
            let verified = hashers.verify(declared);
            outcome.checksum_ok = Some(verified.is_ok());
            verified?;
        }
        Ok(self
            .held
            .take()
            .map(|b| Bytes::from(vec![b]))
            .unwrap_or_default())
    }

    fn outcome(&self) -> &SharedOutcome {
        &self.outcome
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    /// Up to the end of the metadata part.
    Metadata,
    /// The media part's headers.
    MediaHeaders,
    /// The media part's data.
    Media,
    /// Everything after the media part (held back).
    Tail,
}

/// `multipart/related` upload: metadata part, media part, optional trailing
/// checksums part (dropped). The closing delimiter after the media is
/// withheld until the data is verified.
pub(super) struct MultipartTransform {
    /// `\r\n--boundary`.
    pub(super) delimiter: Vec<u8>,
    pub(super) phase: Phase,
    pub(super) buf: BytesMut,
    pub(super) declared: Declared,
    pub(super) hashers: Hashers,
    pub(super) corrupt: bool,
    pub(super) outcome: SharedOutcome,
}

pub(super) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The JSON after the headers of a part (`\r\nheaders\r\n\r\njson`).
pub(super) fn part_json(part: &[u8]) -> Result<Value, String> {
    let start = find(part, b"\r\n\r\n").ok_or("multipart part without headers")? + 4;
    serde_json::from_slice(&part[start..])
        .map_err(|e| format!("Invalid JSON payload received in multipart upload. {e}"))
}

impl MultipartTransform {
    pub(super) fn new(boundary: &str, corrupt: bool, outcome: SharedOutcome) -> Self {
        Self {
            delimiter: format!("\r\n--{boundary}").into_bytes(),
            phase: Phase::Metadata,
            buf: BytesMut::new(),
            declared: Declared::default(),
            hashers: Hashers::new(),
            corrupt,
            outcome,
        }
    }

    pub(super) fn media(&mut self, data: Bytes) -> Bytes {
        let data = if self.corrupt && !data.is_empty() {
            self.corrupt = false;
            lock(&self.outcome).corrupted = true;
            flip_first(data)
        } else {
            data
        };
        lock(&self.outcome).bytes += data.len() as u64;
        self.hashers.update(&data);
        data
    }
}

impl Transform for MultipartTransform {
    fn push(&mut self, data: Bytes) -> Result<Bytes, String> {
        self.buf.extend_from_slice(&data);
        let mut out = BytesMut::new();
        loop {
            match self.phase {
                Phase::Metadata => {
                    // `--boundary\r\nheaders\r\n\r\njson` then `\r\n--boundary`.
                    let Some(end) = find(&self.buf, &self.delimiter) else {
                        if self.buf.len() > MAX_JSON {
                            return Err("multipart metadata part too large".into());
                        }
                        break;
                    };
                    let first_line = find(&self.buf, b"\r\n").unwrap_or(0);
                    let metadata = part_json(&self.buf[first_line..end])?;
                    self.declared = Declared::from_json(&metadata)?;
                    let take = end + self.delimiter.len();
                    out.extend_from_slice(&self.buf.split_to(take));
                    self.phase = Phase::MediaHeaders;
                }
                Phase::MediaHeaders => {
                    let Some(end) = find(&self.buf, b"\r\n\r\n") else {
                        if self.buf.len() > MAX_JSON {
                            return Err("multipart media headers too large".into());
                        }
                        break;
                    };
                    out.extend_from_slice(&self.buf.split_to(end + 4));
                    self.phase = Phase::Media;
                }
                Phase::Media => {
                    if let Some(end) = find(&self.buf, &self.delimiter) {
                        let data = self.buf.split_to(end).freeze();
                        out.extend_from_slice(&self.media(data));
                        self.phase = Phase::Tail;
                        continue;
                    }
                    // Keep what may be the start of the delimiter.
                    let keep = self.buf.len().min(self.delimiter.len() - 1);
                    let data = self.buf.split_to(self.buf.len() - keep).freeze();
                    out.extend_from_slice(&self.media(data));
                    break;
                }
                Phase::Tail => {
                    if self.buf.len() > MAX_JSON {
                        return Err("multipart trailing part too large".into());
                    }
                    break;
                }
            }
        }
        Ok(out.freeze())
    }

    fn finish(&mut self) -> Result<Bytes, String> {
        if self.phase != Phase::Tail {
            return Err("truncated multipart upload".into());
        }
        // `\r\n--boundary` then `--` (close) or a trailing checksums part.
        let tail = self.buf.split().freeze();
        let after = &tail[self.delimiter.len()..];
        if !after.starts_with(b"--") {
            let end = find(after, &self.delimiter).ok_or("unterminated multipart trailer")?;
            let trailer = part_json(&after[..end])?;
            let trailing = Declared::from_json(&trailer)?;
            self.declared.crc32c = trailing.crc32c.or(self.declared.crc32c);
            self.declared.md5 = trailing.md5.or(self.declared.md5);
        }
        let mut outcome = lock(&self.outcome);
        if !self.declared.is_empty() {
            let verified = self.hashers.verify(&self.declared);
            outcome.checksum_ok = Some(verified.is_ok());
            verified?;
        }
        let mut close = self.delimiter.clone();
        close.extend_from_slice(b"--\r\n");
        Ok(Bytes::from(close))
    }

    fn outcome(&self) -> &SharedOutcome {
        &self.outcome
    }
}
