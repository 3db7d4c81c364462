//! # crossfed-kit
//!
//! What every crossfed Lambda function shares, so that each function's `main.rs` only wires
//! `run(service_fn(...))`:
//!
//! - [`env`]: an environment reader that collects **every** problem before init fails;
//! - [`endpoint`]: emulator/endpoint overrides (`STORAGE_EMULATOR_HOST`, ...): https, or
//!   plain-http loopback only with `CROSSFED_ALLOW_LOCAL_ENDPOINTS=1`;
//! - [`aws`]: AWS SDK configuration and the S3 client;
//! - [`warm_up`]: a bounded Google token warm-up at init;
//! - [`logging`]: log setup honouring `AWS_LAMBDA_LOG_LEVEL` / `AWS_LAMBDA_LOG_FORMAT`;
//! - [`metrics`]: CloudWatch metrics in Embedded Metric Format;
//! - [`init`]: the cold start: logs, the function's init, and init-error reporting;
//! - [`error_chain`]: errors as text with their whole source chain;
//! - [`bucket_name`], [`etag`]: bucket-name rules and S3 ETag → MD5;
//! - [`copy_marker`]: the metadata gcs-sync writes on each copy (which S3 object it holds).

pub mod aws;
pub mod bucket_name;
pub mod copy_marker;
pub mod endpoint;
pub mod env;
pub mod error_chain;
pub mod etag;
pub mod init;
pub mod logging;
pub mod metrics;
pub mod sync_areas;
pub mod warm_up;

pub use env::{Env, EnvReader, SettingsError};
pub use error_chain::chain;
pub use init::{BoxError, cold_start};
