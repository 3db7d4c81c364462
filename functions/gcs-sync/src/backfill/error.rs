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
}
