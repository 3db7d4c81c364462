//! What the proxy keeps: the record of each request, the state shared by its handlers
//! (backend, faults, resumable sessions), and what an upload's body transform reports.

use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;

use super::checksums::{Declared, Hashers};
use crate::faults::{Fault, FaultQueue};

pub(super) type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub(super) type UpstreamBody = BoxBody<Bytes, BoxError>;

/// Largest JSON part (session start, multipart metadata / trailer) buffered.
pub(super) const MAX_JSON: usize = 1 << 20;
/// Hop-by-hop headers, never forwarded.
pub(super) const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "host",
];

/// What the proxy saw in one request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProxyRequestRecord {
    pub method: String,
    /// Path and query, e.g. `/upload/storage/v1/b/B/o?uploadType=multipart&name=x`.
    pub path: String,
    /// Status returned to the client.
    pub status: u16,
    pub fault: Option<Fault>,
    /// Whether the proxy answered itself (fault or checksum rejection).
    pub answered_by_proxy: bool,
    /// Object data bytes carried by an upload request (for one failed by an injected
    /// [`Fault::Status`]: every body byte, read before failing).
    pub upload_bytes: Option<u64>,
    /// Whether a byte of this upload was flipped ([`Fault::CorruptUpload`]).
    pub corrupted: bool,
    /// The bearer token the request carried, when the proxy checks tokens
    /// ([`GcsFaultProxy::start_checking_tokens`]).
    pub bearer: Option<String>,
    /// Upload checksum verification: `Some(true)` declared checksums matched,
    /// `Some(false)` mismatch (rejected with 400), `None` nothing to verify
    /// (not final, nothing declared, or a resumed chunk without history).
    pub checksum_ok: Option<bool>,
}

pub(super) struct ProxyState {
    /// `http://host:port` of fake-gcs-server.
    pub(super) backend_url: String,
    /// `host:port`, for connecting and as `Host`.
    pub(super) backend_authority: String,
    /// `http://127.0.0.1:PORT`.
    pub(super) public_url: OnceLock<String>,
    pub(super) faults: FaultQueue,
    pub(super) calls: AtomicUsize,
    pub(super) requests: Mutex<Vec<ProxyRequestRecord>>,
    /// Resumable sessions by `upload_id`.
    pub(super) sessions: Mutex<HashMap<String, Session>>,
    /// When set, every request needs a valid bearer token of this registry
    /// granting a Cloud Storage scope (as Cloud Storage does).
    pub(super) tokens: Option<crate::google::token_registry::TokenRegistry>,
}

/// A resumable upload session.
pub(super) struct Session {
    pub(super) declared: Declared,
    /// Hash state at each offset fake-gcs-server acknowledged.
    pub(super) checkpoints: HashMap<u64, Hashers>,
}

/// Shared between a request's body transform and its handler.
#[derive(Default)]
pub(super) struct UploadOutcome {
    pub(super) bytes: u64,
    pub(super) corrupted: bool,
    pub(super) checksum_ok: Option<bool>,
    /// Cloud Storage's error message when the upload is rejected.
    pub(super) rejection: Option<String>,
    /// Hash state after the body (resumable chunks).
    pub(super) hashers: Option<Hashers>,
}

pub(super) type SharedOutcome = Arc<Mutex<UploadOutcome>>;
