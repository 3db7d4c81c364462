//! `gcs-sync`: event-driven replication of S3 objects into Cloud Storage, authenticated to
//! Google with the function's own IAM role through `crossfed` (no Google keys).
//!
//! S3 notifications arrive through SQS (or directly). An event only names a key: the copy
//! of that key is made to follow what S3 serves now, confirmed with S3 — the current
//! object streamed into Cloud Storage with end-to-end checksums, or the copy removed when
//! S3 has no current object. Copies record the source ETag and version, so redelivered,
//! out-of-order and forged events are no-ops; generation preconditions keep concurrent
//! invocations from clobbering each other; failed SQS messages are retried with back-off.

pub mod backfill;
pub mod batch;
pub mod compose;
pub mod config;
pub mod destination;
pub mod event;
pub mod gcs_writer;
pub mod handler;
pub mod ordering;
pub mod parts;
pub mod reconcile;
pub mod replicate;
pub mod retry_delay;
pub mod s3_error;
pub mod s3_source;
pub mod s3_state;
