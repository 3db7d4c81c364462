//! A TCP listener that only counts connections (and closes them), to prove
//! that nothing talked to an endpoint such as IMDS.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::server::BackgroundServer;

/// Counts TCP connections to `127.0.0.1:PORT`; dropping it stops listening.
#[derive(Debug)]
pub struct ConnectionCounter {
    connections: Arc<AtomicUsize>,
    server: BackgroundServer,
}

impl ConnectionCounter {
    /// # Panics
    /// If no port can be bound.
    pub async fn start() -> Self {
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        let server = BackgroundServer::spawn(
            "connection-counter",
            ([127, 0, 0, 1], 0).into(),
            move |listener| async move {
                loop {
                    if let Ok((stream, _)) = listener.accept().await {
                        counter.fetch_add(1, Ordering::SeqCst);
                        drop(stream);
                    }
                }
            },
        )
        .expect("ConnectionCounter: bind 127.0.0.1:0");
        Self {
            connections,
            server,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_connections() {
        let counter = ConnectionCounter::start().await;
        assert_eq!(counter.connections(), 0);
        for _ in 0..2 {
            let _ = tokio::net::TcpStream::connect(counter.addr())
                .await
                .unwrap();
        }
        // Accepts happen on the counter's own thread.
        for _ in 0..100 {
            if counter.connections() == 2 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(counter.connections(), 2);
        assert!(counter.url().starts_with("http://127.0.0.1:"));
    }
}
