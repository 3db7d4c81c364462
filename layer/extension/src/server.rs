//! The loopback HTTP/1.1 server: every request passes the [`guard`](crate::guard), is
//! answered by [`metadata`](crate::metadata) and carries `Metadata-Flavor: Google`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::backend::Backend;
use crate::guard;
use crate::metadata::{self, Answer};

/// Largest request head (request line + headers) read.
const MAX_HEAD: usize = 16 * 1024;

/// Binds the listener (before registering with Lambda, so the function's init finds it).
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    if !addr.ip().is_loopback() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!("{addr} is not a loopback address"),
        ));
    }
    TcpListener::bind(addr).await
}

/// Serves until the task is dropped.
pub async fn serve<B: Backend>(listener: TcpListener, backend: Arc<B>) {
    let hosts = match listener.local_addr() {
        Ok(addr) => Arc::new(guard::Hosts::of(addr)),
        Err(e) => {
            tracing::error!(error = %e, "the metadata server's listener has no address");
            return;
        }
    };
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        if !peer.ip().is_loopback() {
            tracing::warn!(peer = %peer.ip(), "refused a connection from outside loopback");
            continue;
        }
        let _ = stream.set_nodelay(true);
        let backend = backend.clone();
        let hosts = hosts.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let backend = backend.clone();
                let hosts = hosts.clone();
                async move { Ok::<_, Infallible>(handle(&*backend, &hosts, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .max_buf_size(MAX_HEAD)
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle<B: Backend>(
    backend: &B,
    hosts: &guard::Hosts,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    let query = req.uri().query();
    let answer = match guard::check(req.method(), path, query, req.headers(), hosts) {
        Err(refusal) => {
            tracing::warn!(
                status = refusal.status.as_u16(),
                reason = refusal.message,
                "refused a metadata request"
            );
            Answer::error(refusal.status, refusal.message)
        }
        Ok(()) => {
            let answer = metadata::answer(backend, path, query).await;
            // Paths only: query strings may carry audiences, never worth logging.
            if answer.status.is_success() {
                tracing::debug!(path, status = answer.status.as_u16(), "metadata request");
            } else {
                tracing::info!(path = %path.chars().take(200).collect::<String>(), status = answer.status.as_u16(), "metadata request not served");
            }
            answer
        }
    };
    let mut response = Response::new(Full::new(Bytes::from(answer.body)));
    *response.status_mut() = answer.status;
    let headers = response.headers_mut();
    headers.insert("metadata-flavor", HeaderValue::from_static("Google"));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(answer.content_type),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::SERVER,
        HeaderValue::from_static("crossfed-extension"),
    );
    response
}
