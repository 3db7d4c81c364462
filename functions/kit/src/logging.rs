//! Log setup honouring Lambda's logging controls: `AWS_LAMBDA_LOG_LEVEL` (wins over
//! `RUST_LOG`; default `info`) and `AWS_LAMBDA_LOG_FORMAT` (`JSON`: one flat JSON object per
//! line with `level`, `message` and the event's fields at the top level; else text).
//!
//! The setup itself lives in `crossfed-lambda-log`, shared with the `crossfed-extension`
//! layer; this module applies it to the kit's [`Env`].

use tracing::Subscriber;

pub use crossfed_lambda_log::{FORMAT_ENV, LEVEL_ENV, MakeWriter};

use crate::env::Env;

/// The subscriber for `env`, writing to `writer`.
pub fn subscriber<W>(env: &Env, writer: W) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    crossfed_lambda_log::subscriber(|key| env.get(key), writer)
}

/// Installs the process-wide subscriber (stdout) for `env`; a second call changes nothing.
pub fn init(env: &Env) {
    crossfed_lambda_log::init(|key| env.get(key));
}
