//! `gcs-sync`: event-driven replication of S3 objects into Cloud Storage, authenticated to
//! Google with the function's own IAM role through `crossfed` (no Google keys).
//!
//! S3 notifications arrive through SQS (or directly); each `ObjectCreated:*` streams the
//! object from S3 into Cloud Storage with end-to-end checksums, each `ObjectRemoved:*`
//! deletes the copy. Copies record the source ETag and the event sequencer so that
//! redelivered and out-of-order events are no-ops, and generation preconditions keep
//! concurrent invocations from clobbering each other.

pub mod backfill;
pub mod batch;
pub mod compose;
pub mod config;
pub mod destination;
pub mod event;
pub mod gcs_writer;
pub mod handler;
pub mod init;
pub mod ordering;
pub mod parts;
pub mod replicate;
pub mod s3_source;
