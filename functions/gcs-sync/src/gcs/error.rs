//! Cloud Storage's errors: what failed, and what an error means (not found, precondition
//! failed, the S3 source changed under an upload, a checksum mismatch).

use std::error::Error as _;

use google_cloud_gax::error::rpc::Code;
use google_cloud_storage::error::WriteError;

use crate::s3::BodyError;

/// A Cloud Storage call failed (after the client's retries).
#[derive(Debug, thiserror::Error)]
pub enum GcsError {
    #[error("Cloud Storage {op} gs://{bucket}/{name}: {source}")]
    Call {
        op: &'static str,
        bucket: String,
        name: String,
        source: google_cloud_storage::Error,
    },
    /// Cloud Storage holds other bytes than were sent (an upload or a compose): the object
    /// was removed again, or `cleanup` says what became of it.
    #[error(
        "checksum mismatch uploading gs://{bucket}/{name}: {detail}; the bad copy was {cleanup}"
    )]
    Corrupt {
        bucket: String,
        name: String,
        detail: String,
        cleanup: &'static str,
    },
}

/// The object (or bucket) does not exist.
pub fn is_not_found(e: &google_cloud_storage::Error) -> bool {
    e.http_status_code() == Some(404) || e.status().is_some_and(|s| s.code == Code::NotFound)
}

/// The generation precondition failed.
pub fn is_precondition_failed(e: &google_cloud_storage::Error) -> bool {
    e.http_status_code() == Some(412)
        || e.status()
            .is_some_and(|s| s.code == Code::FailedPrecondition)
}

/// Whether the upload stopped because S3 no longer serves the object being copied (a
/// retried request found it overwritten or deleted).
pub fn source_changed(e: &google_cloud_storage::Error) -> bool {
    let mut source = e.source();
    while let Some(s) = source {
        if matches!(s.downcast_ref::<BodyError>(), Some(BodyError::Changed)) {
            return true;
        }
        source = s.source();
    }
    false
}

/// The mismatch and the generation that landed, if `e` is a checksum mismatch.
pub fn checksum_mismatch(e: &google_cloud_storage::Error) -> Option<(String, i64)> {
    let mut source = e.source();
    while let Some(s) = source {
        if let Some(WriteError::ChecksumMismatch { mismatch, object }) =
            s.downcast_ref::<WriteError>()
        {
            return Some((mismatch.to_string(), object.generation));
        }
        source = s.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upload_stopped_by_a_changed_source_is_a_conflict() {
        let changed = google_cloud_storage::Error::ser(BodyError::Changed);
        assert!(source_changed(&changed));
        let other = google_cloud_storage::Error::ser(BodyError::Reopen("503".into()));
        assert!(!source_changed(&other));
        assert!(!source_changed(&google_cloud_storage::Error::io("reset")));
    }
}
