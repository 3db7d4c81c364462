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
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::server::lock;

mod checksums;
mod forward;
mod request;
mod state;
mod transform;

use crate::faults::{Fault, FaultQueue};
use crate::server::{self, BackgroundServer};
use forward::handle;
pub use state::ProxyRequestRecord;
use state::ProxyState;

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
    pub async fn start_checking_tokens(
        backend: &str,
        tokens: crate::google::token_registry::TokenRegistry,
    ) -> Self {
        Self::start_with(backend, Some(tokens)).await
    }

    async fn start_with(
        backend: &str,
        tokens: Option<crate::google::token_registry::TokenRegistry>,
    ) -> Self {
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

#[cfg(test)]
mod tests;
