//! Why a backfill invocation failed.

use crate::gcs::GcsError;
use crate::s3::SourceError;

/// Backfill failed (the checkpoint keeps the position; invoke again to retry).
#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    #[error("{0}")]
    Request(String),
    #[error(transparent)]
    List(#[from] SourceError),
    #[error(transparent)]
    Destination(#[from] GcsError),
    #[error("checkpoint {0} was changed by another invocation of the run; stopping this one")]
    Raced(String),
    #[error(
        "backfill run {run} made no progress in {stalled} invocations in a row (still after \
         {after:?}): a page cannot be finished within one invocation (an object too large to \
         copy within the function's timeout, or GcsSyncTimeout too short); raise the timeout \
         or backfill a narrower prefix, then send {{\"backfill\": {{\"run\": \"{run}\"}}}}"
    )]
    Stalled {
        run: String,
        after: Option<String>,
        stalled: u64,
    },
    #[error(
        "backfill run {run} stopped after {invocations} invocations, the most one run may \
         take; backfill narrower prefixes as separate runs"
    )]
    TooLong { run: String, invocations: u64 },
}
