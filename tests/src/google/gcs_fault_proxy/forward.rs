//! Handling one request: faults, then forwarding to fake-gcs-server.

use crate::server::lock;
use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::checksums::{Declared, Hashers};
use super::request::{Kind, classify, query_param};
use super::state::{
    BoxError, HOP_BY_HOP, MAX_JSON, ProxyRequestRecord, ProxyState, Session, SharedOutcome,
    UpstreamBody,
};
use super::transform::{ChunkTransform, MultipartTransform, Transform};
use crate::faults::{self, Fault};
use crate::server::{self, Body};

/// The JSON API error format.
pub(super) fn json_error(status: u16, reason: &str, message: &str) -> Response<Body> {
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

pub(super) fn fault_reason(status: u16) -> &'static str {
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

pub(super) async fn handle(state: Arc<ProxyState>, req: Request<Incoming>) -> Response<Body> {
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
        let storage_scope = |info: &crate::google::token_registry::TokenInfo| {
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

pub(super) async fn forward(
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
pub(super) fn rewrite_location(location: &str, public: &str) -> String {
    let Some((_, rest)) = location.split_once("://") else {
        return location.to_string();
    };
    let path = rest.find('/').map_or("/", |i| &rest[i..]);
    format!("{public}{path}")
}

pub(super) fn full(bytes: Bytes) -> UpstreamBody {
    Full::new(bytes).map_err(|never| match never {}).boxed()
}

/// Reads and discards a request body; the number of bytes read.
pub(super) async fn drain(mut body: Incoming) -> u64 {
    let mut n = 0;
    while let Some(Ok(frame)) = body.frame().await {
        n += frame.data_ref().map_or(0, |d| d.len() as u64);
    }
    n
}

pub(super) async fn collect_limited(body: Incoming, limit: usize) -> Result<Bytes, String> {
    http_body_util::Limited::new(body, limit)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| format!("cannot read request body: {e}"))
}

/// One HTTP/1.1 request on a new connection to the backend.
pub(super) async fn send(
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
