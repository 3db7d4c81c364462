//! # crossfed-extension
//!
//! An external AWS Lambda extension that serves the Google Compute Engine metadata-server API
//! on loopback, backed by crossfed's federated credentials (AWS role → Google STS → service
//! account). Google's own client libraries in any runtime (Python, Node.js, Go, Java, .NET,
//! Rust) find it through `GCE_METADATA_HOST` / `GCE_METADATA_IP` and need no code change.
//!
//! Flow of `main`: [`settings`] → bind the [`server`] listener → register with the Lambda
//! Extensions API → load the configuration ([`federated`]) or report an init error → serve
//! [`metadata`] answers behind the [`guard`] while [`lifecycle`] handles INVOKE / SHUTDOWN.

pub mod backend;
pub mod federated;
pub mod guard;
pub mod lifecycle;
pub mod metadata;
pub mod server;
pub mod settings;
