//! The Cloud Storage side: read the current copy's state (gRPC `GetObject`), stream a new
//! copy in with a generation precondition and end-to-end checksums (one JSON API multipart
//! request, the CRC32C trailing the data), delete a given generation (gRPC `DeleteObject`).

use std::error::Error as _;

use google_cloud_storage::client::{Storage, StorageControl};
use google_cloud_storage::error::WriteError;
use google_cloud_storage::model::Object;

use crate::destination::Destination;
use crate::reconcile::{self, CopyState};
use crate::s3_source::{BodyError, SourceObject};

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
    /// Cloud Storage reported different checksums than the bytes sent; the object was
    /// removed again.
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

/// Result of a conditional write or delete.
#[derive(Debug)]
pub enum Conditional<T> {
    Done(T),
    /// The generation precondition failed (someone else changed the object), or the S3
    /// object changed while being copied: decide again.
    Conflict,
}

/// Both Cloud Storage clients and the destination.
#[derive(Clone, Debug)]
pub struct GcsWriter {
    storage: Storage,
    control: StorageControl,
    destination: Destination,
}

impl GcsWriter {
    pub fn new(storage: Storage, control: StorageControl, destination: Destination) -> Self {
        GcsWriter {
            storage,
            control,
            destination,
        }
    }

    pub fn destination(&self) -> &Destination {
        &self.destination
    }

    /// The JSON API client (uploads).
    pub(crate) fn storage(&self) -> &Storage {
        &self.storage
    }

    /// The gRPC client (metadata, listing, compose, delete).
    pub(crate) fn control(&self) -> &StorageControl {
        &self.control
    }

    pub(crate) fn call_error(
        &self,
        op: &'static str,
        name: &str,
        source: google_cloud_storage::Error,
    ) -> GcsError {
        GcsError::Call {
            op,
            bucket: self.destination.bucket().to_string(),
            name: name.to_string(),
            source,
        }
    }

    /// The current copy, if any.
    pub async fn current(&self, name: &str) -> Result<Option<CopyState>, GcsError> {
        match self
            .control
            .get_object()
            .set_bucket(self.destination.bucket_resource())
            .set_object(name)
            .send()
            .await
        {
            Ok(object) => Ok(Some(CopyState::from_metadata(
                object.generation,
                &object.metadata,
            ))),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(self.call_error("get", name, e)),
        }
    }

    /// Streams `source` into `name` if the object's generation is still `if_generation_match`
    /// (0: it must not exist), in one request whatever the size: the bytes flow from S3
    /// to Cloud Storage without being buffered. The client computes CRC32C while streaming
    /// and sends it after the data (a trailing part of the multipart upload), so Cloud
    /// Storage rejects corrupted data; a known MD5 (the S3 ETag) is sent up front. A retried
    /// request reads S3 again (same ETag); if S3 changed meanwhile the answer is
    /// [`Conditional::Conflict`], so the caller decides again.
    pub async fn write(
        &self,
        name: &str,
        source: SourceObject,
        metadata: Vec<(&'static str, String)>,
        if_generation_match: i64,
    ) -> Result<Conditional<Object>, GcsError> {
        let expected_size = source.size;
        let stats = source.body.stats();
        // Above the size: never a resumable upload (chunks would be buffered in memory).
        let single_shot = usize::try_from(expected_size.saturating_add(1)).unwrap_or(usize::MAX);
        let SourceObject {
            body,
            md5,
            content_type,
            content_encoding,
            content_language,
            content_disposition,
            cache_control,
            user_metadata,
            ..
        } = source;
        // Source keys that look like the bookkeeping never reach the copy.
        let all = reconcile::merged_metadata(user_metadata, metadata);
        let mut request = self
            .storage
            .write_object(self.destination.bucket_resource(), name, body)
            .with_resumable_upload_threshold(single_shot)
            .set_if_generation_match(if_generation_match)
            .set_metadata(all);
        if let Some(v) = content_type {
            request = request.set_content_type(v);
        }
        if let Some(v) = content_encoding {
            request = request.set_content_encoding(v);
        }
        if let Some(v) = content_language {
            request = request.set_content_language(v);
        }
        if let Some(v) = content_disposition {
            request = request.set_content_disposition(v);
        }
        if let Some(v) = cache_control {
            request = request.set_cache_control(v);
        }
        if let Some(md5) = md5 {
            request = request.with_known_md5_hash(md5);
        }
        let sent = request.send_unbuffered().await;
        if stats.reopened() > 0 {
            tracing::info!(
                object = name,
                reopened = stats.reopened(),
                "upload retried: S3 was read again"
            );
        }
        match sent {
            Ok(object) => match verify(&object, expected_size, stats.complete()) {
                Ok(()) => Ok(Conditional::Done(object)),
                Err(detail) => Err(self.remove_corrupt(name, detail, object.generation).await),
            },
            Err(e) if is_precondition_failed(&e) || source_changed(&e) => Ok(Conditional::Conflict),
            Err(e) => match checksum_mismatch(&e) {
                Some((detail, landed)) => Err(self.remove_corrupt(name, detail, landed).await),
                None => Err(self.call_error("upload", name, e)),
            },
        }
    }

    /// The service accepted data whose checksums differ from what we sent: delete exactly
    /// that generation so no corrupt copy stays.
    async fn remove_corrupt(&self, name: &str, detail: String, generation: i64) -> GcsError {
        let cleanup = match self.delete(name, generation).await {
            Ok(_) => "deleted",
            Err(e) => {
                tracing::error!(object = name, generation, error = %e, "could not delete a corrupt copy");
                "NOT deleted"
            }
        };
        GcsError::Corrupt {
            bucket: self.destination.bucket().to_string(),
            name: name.to_string(),
            detail,
            cleanup,
        }
    }

    /// Deletes `generation` of `name`. Already gone counts as done.
    pub async fn delete(&self, name: &str, generation: i64) -> Result<Conditional<()>, GcsError> {
        match self
            .control
            .delete_object()
            .set_bucket(self.destination.bucket_resource())
            .set_object(name)
            .set_if_generation_match(generation)
            .send()
            .await
        {
            Ok(()) => Ok(Conditional::Done(())),
            Err(e) if is_not_found(&e) => Ok(Conditional::Done(())),
            Err(e) if is_precondition_failed(&e) => Ok(Conditional::Conflict),
            Err(e) => Err(self.call_error("delete", name, e)),
        }
    }
}

/// The finished object must hold every byte read from S3, with the same CRC32C: guards
/// against an upload finalized early (the client library trusts the service's word on
/// what it persisted).
fn verify(object: &Object, expected_size: u64, streamed: Option<(u64, u32)>) -> Result<(), String> {
    let Some((bytes, crc32c)) = streamed else {
        return Err(format!(
            "upload finished after {} of {expected_size} bytes were read from S3",
            object.size
        ));
    };
    if bytes != expected_size || object.size != expected_size as i64 {
        return Err(format!(
            "object has {} bytes, S3 had {expected_size}, {bytes} were streamed",
            object.size
        ));
    }
    match object.checksums.as_ref().and_then(|c| c.crc32c) {
        Some(stored) if stored != crc32c => Err(format!(
            "stored CRC32C {stored:08x} differs from the streamed {crc32c:08x}"
        )),
        _ => Ok(()),
    }
}

fn is_not_found(e: &google_cloud_storage::Error) -> bool {
    e.http_status_code() == Some(404)
        || e.status()
            .is_some_and(|s| s.code == google_cloud_gax::error::rpc::Code::NotFound)
}

pub(crate) fn is_precondition_failed(e: &google_cloud_storage::Error) -> bool {
    e.http_status_code() == Some(412)
        || e.status()
            .is_some_and(|s| s.code == google_cloud_gax::error::rpc::Code::FailedPrecondition)
}

/// Whether the upload stopped because S3 no longer serves the object being copied (a
/// retried request found it overwritten or deleted).
fn source_changed(e: &google_cloud_storage::Error) -> bool {
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
fn checksum_mismatch(e: &google_cloud_storage::Error) -> Option<(String, i64)> {
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
    use google_cloud_storage::model::ObjectChecksums;

    #[test]
    fn finished_objects_are_checked_against_the_stream() {
        let object = Object::new()
            .set_size(5)
            .set_checksums(ObjectChecksums::new().set_crc32c(crc32c::crc32c(b"hello")));
        let crc = crc32c::crc32c(b"hello");
        assert_eq!(verify(&object, 5, Some((5, crc))), Ok(()));
        assert!(
            verify(&object, 5, None)
                .unwrap_err()
                .contains("finished after")
        );
        assert!(verify(&object, 6, Some((6, crc))).is_err());
        assert!(
            verify(&object, 5, Some((5, crc ^ 1)))
                .unwrap_err()
                .contains("CRC32C")
        );
        let truncated = Object::new().set_size(3);
        assert!(verify(&truncated, 5, Some((5, crc))).is_err());
    }

    #[test]
    fn an_upload_stopped_by_a_changed_source_is_a_conflict() {
        let changed = google_cloud_storage::Error::ser(BodyError::Changed);
        assert!(source_changed(&changed));
        let other = google_cloud_storage::Error::ser(BodyError::Reopen("503".into()));
        assert!(!source_changed(&other));
        assert!(!source_changed(&google_cloud_storage::Error::io("reset")));
    }
}
