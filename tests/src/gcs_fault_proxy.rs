//! An HTTP reverse proxy in front of fake-gcs-server (the `Storage` client's
//! JSON API), injecting faults and doing what fake-gcs-server does not:
//!
//! * verifies uploads like Cloud Storage: the CRC32C / MD5 an upload declares
//!   (object resource of a multipart upload or of a resumable session, the
//!   trailing checksums part of a multipart upload, or `x-goog-hash` on the
//!   final chunk) is compared with the bytes received, incrementally, and a
//!   mismatch is answered with HTTP 400 while the upload to fake-gcs-server
//!   is aborted (so no object is created);
//! * drops the trailing checksums part of multipart uploads (fake-gcs-server
//!   would store it as the object's data);
//! * rewrites resumable-session `Location` headers back to the proxy
//!   (fake-gcs-server builds them from `Host`, which the `Storage` client
//!   sends without the port).
//!
//! Bodies stream both ways; nothing is buffered whole except small JSON
//! parts (resumable-session starts, multipart metadata and trailers).

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};

use base64::Engine as _;
use base64::prelude::BASE64_STANDARD;
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use md5::{Digest as _, Md5};
use serde_json::{Value, json};

use crate::fake_google::lock;
use crate::faults::{self, Fault, FaultQueue};
use crate::server::{self, BackgroundServer, Body};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type UpstreamBody = BoxBody<Bytes, BoxError>;

/// Largest JSON part (session start, multipart metadata / trailer) buffered.
const MAX_JSON: usize = 1 << 20;
/// Hop-by-hop headers, never forwarded.
const HOP_BY_HOP: [&str; 8] = [
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

/// Running proxy; dropping it stops it.
pub struct GcsFaultProxy {
    state: Arc<ProxyState>,
    server: BackgroundServer,
}

impl fmt::Debug for GcsFaultProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GcsFaultProxy")
            .field("url", &self.url())
            .field("backend", &self.state.backend_url)
            .finish_non_exhaustive()
    }
}

struct ProxyState {
    /// `http://host:port` of fake-gcs-server.
    backend_url: String,
    /// `host:port`, for connecting and as `Host`.
    backend_authority: String,
    /// `http://127.0.0.1:PORT`.
    public_url: OnceLock<String>,
    faults: FaultQueue,
    calls: AtomicUsize,
    requests: Mutex<Vec<ProxyRequestRecord>>,
    /// Resumable sessions by `upload_id`.
    sessions: Mutex<HashMap<String, Session>>,
    /// When set, every request needs a valid bearer token of this registry
    /// granting a Cloud Storage scope (as Cloud Storage does).
    tokens: Option<crate::TokenRegistry>,
}

/// Checksums an upload declares.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Declared {
    crc32c: Option<u32>,
    md5: Option<[u8; 16]>,
}

impl Declared {
    fn is_empty(&self) -> bool {
        self.crc32c.is_none() && self.md5.is_none()
    }

    /// `crc32c` / `md5Hash` of a JSON object resource (or trailer).
    fn from_json(value: &Value) -> Result<Self, String> {
        let mut declared = Declared::default();
        if let Some(text) = value.get("crc32c").and_then(Value::as_str) {
            declared.crc32c = Some(decode_crc32c(text)?);
        }
        if let Some(text) = value.get("md5Hash").and_then(Value::as_str) {
            declared.md5 = Some(decode_md5(text)?);
        }
        Ok(declared)
    }

    /// Values of `x-goog-hash: crc32c=...,md5=...` override.
    fn with_headers(mut self, headers: &HeaderMap) -> Result<Self, String> {
        for value in headers.get_all("x-goog-hash") {
            let value = value
                .to_str()
                .map_err(|_| "invalid x-goog-hash".to_string())?;
            for item in value.split(',') {
                match item.trim().split_once('=') {
                    Some(("crc32c", v)) => self.crc32c = Some(decode_crc32c(v)?),
                    Some(("md5", v)) => self.md5 = Some(decode_md5(v)?),
                    _ => return Err(format!("invalid x-goog-hash entry {item:?}")),
                }
            }
        }
        Ok(self)
    }
}

fn decode_crc32c(text: &str) -> Result<u32, String> {
    let bytes = BASE64_STANDARD
        .decode(text)
        .map_err(|_| format!("Invalid crc32c {text:?}."))?;
    let bytes: [u8; 4] = bytes
        .try_into()
        .map_err(|_| format!("Invalid crc32c {text:?}."))?;
    Ok(u32::from_be_bytes(bytes))
}

fn decode_md5(text: &str) -> Result<[u8; 16], String> {
    let bytes = BASE64_STANDARD
        .decode(text)
        .map_err(|_| format!("Invalid md5Hash {text:?}."))?;
    bytes
        .try_into()
        .map_err(|_| format!("Invalid md5Hash {text:?}."))
}

/// Running CRC32C and MD5 of object data.
#[derive(Clone)]
struct Hashers {
    crc32c: u32,
    md5: Md5,
    len: u64,
}

impl Hashers {
    fn new() -> Self {
        Self {
            crc32c: 0,
            md5: Md5::new(),
            len: 0,
        }
    }

    fn update(&mut self, data: &[u8]) {
        self.crc32c = crc32c::crc32c_append(self.crc32c, data);
        self.md5.update(data);
        self.len += data.len() as u64;
    }

    /// Cloud Storage's 400 message if a declared checksum does not match.
    fn verify(&self, declared: &Declared) -> Result<(), String> {
        if let Some(crc) = declared.crc32c
            && crc != self.crc32c
        {
            return Err(format!(
                "Provided CRC32C \"{}\" doesn't match calculated CRC32C \"{}\".",
                BASE64_STANDARD.encode(crc.to_be_bytes()),
                BASE64_STANDARD.encode(self.crc32c.to_be_bytes())
            ));
        }
        if let Some(md5) = declared.md5 {
            let computed = self.md5.clone().finalize();
            if md5[..] != computed[..] {
                return Err(format!(
                    "Provided MD5 hash \"{}\" doesn't match calculated MD5 hash \"{}\".",
                    BASE64_STANDARD.encode(md5),
                    BASE64_STANDARD.encode(&computed[..])
                ));
            }
        }
        Ok(())
    }
}

/// A resumable upload session.
struct Session {
    declared: Declared,
    /// Hash state at each offset fake-gcs-server acknowledged.
    checkpoints: HashMap<u64, Hashers>,
}

/// Shared between a request's body transform and its handler.
#[derive(Default)]
struct UploadOutcome {
    bytes: u64,
    corrupted: bool,
    checksum_ok: Option<bool>,
    /// Cloud Storage's error message when the upload is rejected.
    rejection: Option<String>,
    /// Hash state after the body (resumable chunks).
    hashers: Option<Hashers>,
}

type SharedOutcome = Arc<Mutex<UploadOutcome>>;

impl GcsFaultProxy {
    /// Starts on an ephemeral port of 127.0.0.1 in front of `backend`
    /// (fake-gcs-server's base URL, e.g. `http://127.0.0.2:80`).
    ///
    /// # Panics
    /// If `backend` is not an `http://host[:port]` URL.
    pub async fn start(backend: &str) -> Self {
        Self::start_with(backend, None).await
    }

    /// Like [`GcsFaultProxy::start`], answering 401 to requests without a
    /// valid, unexpired bearer token minted by `tokens` with a
    /// `devstorage.*` or `cloud-platform` scope (fake-gcs-server checks none).
    pub async fn start_checking_tokens(backend: &str, tokens: crate::TokenRegistry) -> Self {
        Self::start_with(backend, Some(tokens)).await
    }

    async fn start_with(backend: &str, tokens: Option<crate::TokenRegistry>) -> Self {
        let url = url::Url::parse(backend)
            .unwrap_or_else(|e| panic!("GcsFaultProxy: bad backend URL {backend:?}: {e}"));
        assert_eq!(url.scheme(), "http", "GcsFaultProxy: backend must be http");
        let host = url.host_str().expect("backend host");
        let port = url.port_or_known_default().expect("backend port");
        let state = Arc::new(ProxyState {
            backend_url: backend.trim_end_matches('/').to_string(),
            backend_authority: format!("{host}:{port}"),
            public_url: OnceLock::new(),
            faults: FaultQueue::default(),
            calls: AtomicUsize::new(0),
            requests: Mutex::new(Vec::new()),
            sessions: Mutex::new(HashMap::new()),
            tokens,
        });
        let handler_state = state.clone();
        let addr: SocketAddr = ([127, 0, 0, 1], 0).into();
        let server = BackgroundServer::spawn("gcs-fault-proxy", addr, move |listener| {
            server::serve_http(listener, move |req| {
                Box::pin(handle(handler_state.clone(), req))
            })
        })
        .unwrap_or_else(|e| panic!("GcsFaultProxy: cannot listen on {addr}: {e}"));
        let _ = state.public_url.set(format!("http://{}", server.addr()));
        Self { state, server }
    }

    /// `http://127.0.0.1:PORT`, for `Storage::builder().with_endpoint(..)`.
    pub fn url(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    /// The fake-gcs-server base URL behind the proxy.
    pub fn backend(&self) -> &str {
        &self.state.backend_url
    }

    /// Requests received (including faulted and rejected ones).
    pub fn calls(&self) -> usize {
        self.state.calls.load(Ordering::SeqCst)
    }

    /// Every request so far, oldest first (recorded when answered).
    pub fn requests(&self) -> Vec<ProxyRequestRecord> {
        lock(&self.state.requests).clone()
    }

    pub fn last_request(&self) -> Option<ProxyRequestRecord> {
        lock(&self.state.requests).last().cloned()
    }

    /// Uploads rejected for a checksum mismatch so far.
    pub fn rejected_uploads(&self) -> usize {
        lock(&self.state.requests)
            .iter()
            .filter(|r| r.checksum_ok == Some(false))
            .count()
    }

    /// Queues faults for the next requests: `Status` / `GoogleError` are
    /// answered by the proxy in the JSON API error format, `Delay` delays
    /// the request, and `CorruptUpload` waits (not consuming later faults'
    /// turns) for the next request carrying object data and flips one of
    /// its bytes.
    pub fn inject_faults(&self, faults: impl IntoIterator<Item = Fault>) {
        self.state.faults.push(faults);
    }

    /// Faults not consumed yet.
    pub fn pending_faults(&self) -> usize {
        self.state.faults.pending()
    }
}

/// How a request uploads data.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    /// `POST /upload/...?uploadType=resumable`: starts a session.
    ResumableStart,
    /// `PUT` to a session with data (or finalizing `bytes */N`).
    ResumableChunk {
        upload_id: String,
        range: ContentRange,
    },
    /// `POST /upload/...?uploadType=multipart`.
    Multipart {
        boundary: String,
    },
    /// `POST /upload/...?uploadType=media`.
    Media,
    Other,
}

impl Kind {
    fn carries_data(&self) -> bool {
        match self {
            Kind::ResumableChunk { range, .. } => range.first.is_some(),
            Kind::Multipart { .. } | Kind::Media => true,
            Kind::ResumableStart | Kind::Other => false,
        }
    }
}

/// `Content-Range: bytes A-B/T` (`*` for unknown parts).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ContentRange {
    /// `(A, B)`, or `None` for `bytes */T`.
    first: Option<(u64, u64)>,
    total: Option<u64>,
}

impl ContentRange {
    fn parse(value: &str) -> Option<Self> {
        let rest = value.trim().strip_prefix("bytes ")?;
        let (range, total) = rest.split_once('/')?;
        let total = match total {
            "*" => None,
            t => Some(t.parse().ok()?),
        };
        let first = match range {
            "*" => None,
            r => {
                let (a, b) = r.split_once('-')?;
                let (a, b): (u64, u64) = (a.parse().ok()?, b.parse().ok()?);
                (a <= b).then_some((a, b))?;
                Some((a, b))
            }
        };
        Some(Self { first, total })
    }

    fn start(&self) -> u64 {
        self.first.map_or(self.total.unwrap_or(0), |(a, _)| a)
    }

    /// Whether this request completes the object.
    fn is_final(&self) -> bool {
        match (self.first, self.total) {
            (Some((_, b)), Some(t)) => b + 1 == t,
            (None, Some(_)) => true,
            _ => false,
        }
    }
}

fn query_param(query: &str, key: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

fn classify(req: &Request<Incoming>) -> Kind {
    let path = req.uri().path();
    let query = req.uri().query().unwrap_or_default();
    if !path.starts_with("/upload/") {
        return Kind::Other;
    }
    let upload_type = query_param(query, "uploadType");
    let upload_id = query_param(query, "upload_id");
    match (req.method(), upload_id) {
        // Chunks of a resumable session: `PUT` (Google's Rust, Python, Node clients) or
        // `POST` to the session URL (Go's google-api-go-client, hence rclone).
        (&Method::PUT | &Method::POST, Some(upload_id)) => {
            let range =
                server::header_str(req.headers(), "content-range").and_then(ContentRange::parse);
            match range {
                // `bytes */*`: a status query.
                Some(range) if range.first.is_some() || range.total.is_some() => {
                    Kind::ResumableChunk { upload_id, range }
                }
                _ => Kind::Other,
            }
        }
        (&Method::POST, None) => match upload_type.as_deref() {
            Some("resumable") => Kind::ResumableStart,
            Some("multipart") => server::header_str(req.headers(), "content-type")
                .and_then(multipart_boundary)
                .map_or(Kind::Other, |boundary| Kind::Multipart { boundary }),
            Some("media") => Kind::Media,
            _ => Kind::Other,
        },
        _ => Kind::Other,
    }
}

fn multipart_boundary(content_type: &str) -> Option<String> {
    let mut parts = content_type.split(';');
    if !parts
        .next()?
        .trim()
        .eq_ignore_ascii_case("multipart/related")
    {
        return None;
    }
    parts.find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.eq_ignore_ascii_case("boundary")
            .then(|| v.trim_matches('"').to_string())
    })
}

/// The JSON API error format.
fn json_error(status: u16, reason: &str, message: &str) -> Response<Body> {
    let body = json!({
        "error": {
            "code": status,
            "message": message,
            "errors": [{ "message": message, "domain": "global", "reason": reason }],
        }
    });
    server::json_response(
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &body,
    )
}

fn fault_reason(status: u16) -> &'static str {
    match status {
        400 => "invalid",
        401 => "required",
        403 => "forbidden",
        404 => "notFound",
        409 => "conflict",
        412 => "conditionNotMet",
        429 => "rateLimitExceeded",
        503 => "backendError",
        _ => "backendError",
    }
}

async fn handle(state: Arc<ProxyState>, req: Request<Incoming>) -> Response<Body> {
    state.calls.fetch_add(1, Ordering::SeqCst);
    let kind = classify(&req);
    let mut record = ProxyRequestRecord {
        method: req.method().to_string(),
        path: req
            .uri()
            .path_and_query()
            .map_or_else(|| req.uri().path().to_string(), |p| p.to_string()),
        ..Default::default()
    };
    if let Some(tokens) = &state.tokens {
        let authorization = server::header_str(req.headers(), "authorization");
        record.bearer = authorization
            .and_then(|v| v.split_once(' '))
            .map(|(_, t)| t.trim().to_string());
        let storage_scope = |info: &crate::TokenInfo| {
            info.has_scope("https://www.googleapis.com/auth/devstorage.read_only")
                || info
                    .scopes
                    .iter()
                    .any(|s| s.starts_with("https://www.googleapis.com/auth/devstorage."))
        };
        match tokens.validate_bearer(authorization) {
            Some(info) if storage_scope(&info) => {}
            valid => {
                record.answered_by_proxy = true;
                let response = if valid.is_none() {
                    json_error(
                        401,
                        "required",
                        "Anonymous caller does not have storage.objects.get access, or the credentials are invalid or expired.",
                    )
                } else {
                    json_error(
                        403,
                        "insufficientPermissions",
                        "Insufficient Permission: the token has no Cloud Storage scope.",
                    )
                };
                record.status = response.status().as_u16();
                lock(&state.requests).push(record);
                return response;
            }
        }
    }
    let carries_data = kind.carries_data();
    let fault = state
        .faults
        .next_if(|f| carries_data || *f != Fault::CorruptUpload);
    record.fault.clone_from(&fault);
    let mut corrupt = false;
    let response = match fault {
        Some(Fault::Status(status)) => {
            record.answered_by_proxy = true;
            if carries_data {
                // The data arrived, then the service failed: the client cannot resume
                // from its buffer and has to produce the bytes again.
                record.upload_bytes = Some(drain(req.into_body()).await);
            }
            json_error(
                status,
                fault_reason(status),
                &format!(
                    "Injected fault: HTTP {status} ({}).",
                    faults::status_name(status)
                ),
            )
        }
        Some(Fault::GoogleError {
            status,
            error,
            description,
        }) => {
            record.answered_by_proxy = true;
            json_error(status, &error, &description)
        }
        Some(Fault::Delay(delay)) => {
            tokio::time::sleep(delay).await;
            forward(&state, req, kind, false, &mut record).await
        }
        Some(Fault::CorruptUpload) => {
            corrupt = true;
            forward(&state, req, kind, true, &mut record).await
        }
        None => forward(&state, req, kind, false, &mut record).await,
    };
    record.corrupted = record.corrupted || (corrupt && record.upload_bytes.unwrap_or(0) > 0);
    record.status = response.status().as_u16();
    lock(&state.requests).push(record);
    response
}

async fn forward(
    state: &ProxyState,
    req: Request<Incoming>,
    kind: Kind,
    corrupt: bool,
    record: &mut ProxyRequestRecord,
) -> Response<Body> {
    let (parts, incoming) = req.into_parts();
    let outcome: SharedOutcome = Arc::default();
    let mut headers = parts.headers.clone();
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    let mut session_declared = None;
    let body: UpstreamBody = match &kind {
        Kind::ResumableStart => {
            let bytes = match collect_limited(incoming, MAX_JSON).await {
                Ok(bytes) => bytes,
                Err(e) => {
                    record.answered_by_proxy = true;
                    return json_error(400, "invalid", &e);
                }
            };
            let declared = if bytes.is_empty() {
                Ok(Declared::default())
            } else {
                serde_json::from_slice::<Value>(&bytes)
                    .map_err(|e| format!("Invalid JSON payload received. {e}"))
                    .and_then(|v| Declared::from_json(&v))
            };
            match declared {
                Ok(declared) => session_declared = Some(declared),
                Err(e) => {
                    record.answered_by_proxy = true;
                    return json_error(400, "invalid", &e);
                }
            }
            full(bytes)
        }
        Kind::ResumableChunk { upload_id, range } => {
            let (base, declared) = {
                let sessions = lock(&state.sessions);
                match sessions.get(upload_id) {
                    Some(s) => (s.checkpoints.get(&range.start()).cloned(), s.declared),
                    None => (None, Declared::default()),
                }
            };
            let declared = match declared.with_headers(&parts.headers) {
                Ok(d) => d,
                Err(e) => {
                    record.answered_by_proxy = true;
                    return json_error(400, "invalid", &e);
                }
            };
            let declared = range.is_final().then_some(declared);
            if range.first.is_none() {
                // `bytes */N`: finalize with the data already sent.
                if let (Some(declared), Some(hashers)) = (&declared, &base)
                    && let Err(message) = hashers.verify(declared)
                {
                    record.answered_by_proxy = true;
                    record.checksum_ok = Some(false);
                    return json_error(400, "invalid", &message);
                }
                incoming.map_err(Into::into).boxed()
            } else {
                ChunkTransform::new(base, declared, corrupt, outcome.clone()).body(incoming)
            }
        }
        Kind::Media => {
            let declared = match Declared::default().with_headers(&parts.headers) {
                Ok(d) => d,
                Err(e) => {
                    record.answered_by_proxy = true;
                    return json_error(400, "invalid", &e);
                }
            };
            ChunkTransform::new(
                Some(Hashers::new()),
                Some(declared),
                corrupt,
                outcome.clone(),
            )
            .body(incoming)
        }
        Kind::Multipart { boundary } => {
            // The trailing checksums part is dropped: the length changes.
            headers.remove(header::CONTENT_LENGTH);
            MultipartTransform::new(boundary, corrupt, outcome.clone()).body(incoming)
        }
        Kind::Other => incoming.map_err(Into::into).boxed(),
    };
    headers.insert(
        header::HOST,
        HeaderValue::from_str(&state.backend_authority).expect("valid authority"),
    );
    let mut upstream = Request::new(body);
    *upstream.method_mut() = parts.method.clone();
    *upstream.uri_mut() = parts.uri.path_and_query().map_or_else(
        || "/".parse().expect("uri"),
        |p| p.as_str().parse().expect("uri"),
    );
    *upstream.headers_mut() = headers;

    let result = send(&state.backend_authority, upstream).await;
    let outcome = std::mem::take(&mut *lock(&outcome));
    if kind.carries_data() {
        record.upload_bytes = Some(outcome.bytes);
        record.corrupted = outcome.corrupted;
        record.checksum_ok = outcome.checksum_ok;
    }
    if let Some(message) = outcome.rejection {
        record.answered_by_proxy = true;
        return json_error(400, "invalid", &message);
    }
    let response = match result {
        Ok(response) => response,
        Err(e) => {
            record.answered_by_proxy = true;
            return json_error(
                502,
                "backendError",
                &format!("GcsFaultProxy: fake-gcs-server request failed: {e}"),
            );
        }
    };
    let (mut parts, body) = response.into_parts();
    for name in HOP_BY_HOP {
        parts.headers.remove(name);
    }
    if let Some(location) = parts.headers.get(header::LOCATION).cloned()
        && let Ok(location) = location.to_str()
    {
        let public = state.public_url.get().map_or("", String::as_str);
        if let Ok(value) = HeaderValue::from_str(&rewrite_location(location, public)) {
            parts.headers.insert(header::LOCATION, value);
        }
        if parts.status.is_success()
            && let Some(declared) = session_declared
            && let Some(upload_id) = location
                .split_once('?')
                .and_then(|(_, q)| query_param(q, "upload_id"))
        {
            lock(&state.sessions).insert(
                upload_id,
                Session {
                    declared,
                    checkpoints: HashMap::from([(0, Hashers::new())]),
                },
            );
        }
    }
    if let Kind::ResumableChunk { upload_id, range } = &kind {
        let mut sessions = lock(&state.sessions);
        if parts.status == StatusCode::PERMANENT_REDIRECT {
            // `Range: bytes=0-N`: N + 1 bytes persisted.
            let persisted = server::header_str(&parts.headers, "range")
                .and_then(|r| r.strip_prefix("bytes=0-"))
                .and_then(|n| n.parse::<u64>().ok())
                .map(|n| n + 1);
            if let (Some(persisted), Some(hashers), Some(session)) =
                (persisted, outcome.hashers, sessions.get_mut(upload_id))
                && hashers.len == persisted
            {
                session.checkpoints.insert(persisted, hashers);
            }
        } else if parts.status.is_success() && range.is_final() {
            sessions.remove(upload_id);
        }
    }
    Response::from_parts(parts, Body::new(body))
}

/// Points an absolute URL of the backend at the proxy.
fn rewrite_location(location: &str, public: &str) -> String {
    let Some((_, rest)) = location.split_once("://") else {
        return location.to_string();
    };
    let path = rest.find('/').map_or("/", |i| &rest[i..]);
    format!("{public}{path}")
}

fn full(bytes: Bytes) -> UpstreamBody {
    Full::new(bytes).map_err(|never| match never {}).boxed()
}

/// Reads and discards a request body; the number of bytes read.
async fn drain(mut body: Incoming) -> u64 {
    let mut n = 0;
    while let Some(Ok(frame)) = body.frame().await {
        n += frame.data_ref().map_or(0, |d| d.len() as u64);
    }
    n
}

async fn collect_limited(body: Incoming, limit: usize) -> Result<Bytes, String> {
    http_body_util::Limited::new(body, limit)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| format!("cannot read request body: {e}"))
}

/// One HTTP/1.1 request on a new connection to the backend.
async fn send(
    authority: &str,
    request: Request<UpstreamBody>,
) -> Result<Response<Incoming>, BoxError> {
    let stream = tokio::net::TcpStream::connect(authority).await?;
    let _ = stream.set_nodelay(true);
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender.send_request(request).await?)
}

/// A streaming rewrite of request body bytes.
trait Transform: Send + Sync + Unpin + 'static {
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

struct Transformed<T> {
    inner: Incoming,
    transform: T,
    done: bool,
}

#[derive(Debug)]
struct Rejected(String);

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
fn flip_first(data: Bytes) -> Bytes {
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
struct ChunkTransform {
    hashers: Option<Hashers>,
    /// `Some` if this request completes the object.
    declared: Option<Declared>,
    corrupt: bool,
    held: Option<u8>,
    outcome: SharedOutcome,
}

impl ChunkTransform {
    fn new(
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

    fn verifying(&self) -> bool {
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
enum Phase {
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
struct MultipartTransform {
    /// `\r\n--boundary`.
    delimiter: Vec<u8>,
    phase: Phase,
    buf: BytesMut,
    declared: Declared,
    hashers: Hashers,
    corrupt: bool,
    outcome: SharedOutcome,
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The JSON after the headers of a part (`\r\nheaders\r\n\r\njson`).
fn part_json(part: &[u8]) -> Result<Value, String> {
    let start = find(part, b"\r\n\r\n").ok_or("multipart part without headers")? + 4;
    serde_json::from_slice(&part[start..])
        .map_err(|e| format!("Invalid JSON payload received in multipart upload. {e}"))
}

impl MultipartTransform {
    fn new(boundary: &str, corrupt: bool, outcome: SharedOutcome) -> Self {
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

    fn media(&mut self, data: Bytes) -> Bytes {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TokenRegistry;
    use crate::storage_test_support::*;
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
        let storage = storage(&proxy.url(), &token(&tokens, crate::CLOUD_PLATFORM_SCOPE)).await;
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
        let storage = storage(&proxy.url(), &token(&tokens, crate::CLOUD_PLATFORM_SCOPE)).await;
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
        let storage = storage(&proxy.url(), &token(&tokens, crate::CLOUD_PLATFORM_SCOPE)).await;
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
}
