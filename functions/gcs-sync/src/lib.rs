//! `gcs-sync`: event-driven replication of S3 objects into Cloud Storage, authenticated to
//! Google with the function's own IAM role through `crossfed` (no Google keys).
//!
//! An event only names a key: the copy of that key is made to follow what S3 serves now,
//! confirmed with S3. Copies record the source ETag and version, so redelivered,
//! out-of-order and forged events are no-ops; every action is conditional on what was
//! decided on, so concurrent invocations never clobber each other.
//!
//! Flow of [`handler::handle`]: [`event`] says what invoked the function → [`batch`] runs
//! the changes, one key's in [`ordering`] order, within the deadline → [`replicate`] reads
//! the copy ([`gcs`]) and S3 ([`s3`]), [`reconcile`] decides, and the copy is streamed in,
//! copied in [`parts`] or deleted, on a [`conditional`] answer → failed SQS messages come
//! back after a [`retry_delay`]; [`counts`] go to the log and the metrics. A backfill lists
//! both sides and sends every differing key through the same [`replicate`] ([`backfill`]).

pub mod attributes;
pub mod backfill;
pub mod batch;
pub mod conditional;
pub mod counts;
pub mod destination;
pub mod event;
pub mod gcs;
pub mod handler;
pub mod ordering;
pub mod parts;
pub mod reconcile;
pub mod replicate;
pub mod retry_delay;
pub mod s3;
pub mod settings;
