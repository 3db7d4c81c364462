//! `list-buckets`: lists the buckets of `GOOGLE_CLOUD_PROJECT` using the function's own IAM
//! role, federated into Google Cloud by `crossfed`. No Google keys anywhere.
//!
//! The flow: [`settings`] are read once, [`handler::App`] holds the client built at the cold
//! start, [`handler::handle`] lists every page for each invocation.

pub mod handler;
pub mod settings;
