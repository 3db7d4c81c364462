//! What S3 serves now for a key (`HeadObject` on the current object): the copy follows
//! this, never an event's word. A key counts as absent only when S3 says so (404
//! `NoSuchKey`, or a delete marker as the current version); a missing bucket is an error.

use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::types::ChecksumMode;

use crate::conditional::Conditional;
use crate::s3::checksum::{SourceChecksum, reported_checksums};
use crate::s3::error::{SourceError, is_delete_marker, status};
use crate::s3::get::get_object;

/// Identifies the content S3 serves for a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceVersion {
    /// Without quotes.
    pub etag: String,
    /// `None` in unversioned buckets (S3's `null` version).
    pub version_id: Option<String>,
}

impl SourceVersion {
    /// From S3's `ETag` and `x-amz-version-id` headers (`null` means unversioned).
    pub fn from_headers(etag: &str, version_id: Option<&str>) -> Self {
        SourceVersion {
            etag: etag.trim_matches('"').to_string(),
            version_id: version_id
                .filter(|v| !v.is_empty() && *v != "null")
                .map(str::to_string),
        }
    }
}

/// The key's current state in S3.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceState {
    /// An object is served, `size` bytes long, with S3's checksum of it.
    Present {
        version: SourceVersion,
        size: u64,
        checksum: SourceChecksum,
    },
    /// No current object: 404 `NoSuchKey`, or the current version is a delete marker.
    Absent,
}

/// Asks S3 what it serves for `bucket`/`key` now.
pub async fn current(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> Result<SourceState, SourceError> {
    let fail = |message: String| SourceError::new("HeadObject", bucket, key, message);
    let head = client
        .head_object()
        .bucket(bucket)
        .key(key)
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await;
    match head {
        Ok(head) => {
            let etag = head
                .e_tag()
                .filter(|e| !e.is_empty())
                .ok_or_else(|| fail("response without ETag".into()))?;
            let size = head
                .content_length()
                .and_then(|n| u64::try_from(n).ok())
                .ok_or_else(|| fail("response without Content-Length".into()))?;
            let checksum = SourceChecksum::from_reported(reported_checksums!(head, etag));
            Ok(SourceState::Present {
                version: SourceVersion::from_headers(etag, head.version_id()),
                size,
                checksum,
            })
        }
        Err(e) if status(&e) == Some(404) && is_delete_marker(&e) => Ok(SourceState::Absent),
        // A HEAD error has no body, hence no code: `NoSuchKey` and `NoSuchBucket` look
        // alike. A GET tells them apart.
        Err(e) if status(&e) == Some(404) => classify_not_found(client, bucket, key).await,
        Err(e) => Err(fail(DisplayErrorContext(&e).to_string())),
    }
}

/// After a 404 on HEAD: `Absent` only on `NoSuchKey` (or a delete marker); the object may
/// also have appeared in between.
async fn classify_not_found(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> Result<SourceState, SourceError> {
    let fail = |message: String| SourceError::new("GetObject", bucket, key, message);
    match get_object(client, bucket, key, None, None).await? {
        Conditional::Done(object) => {
            // Created since the HEAD; the body is not needed (dropping it ends the request).
            let etag = object
                .e_tag()
                .filter(|e| !e.is_empty())
                .ok_or_else(|| fail("response without ETag".into()))?;
            let checksum = SourceChecksum::from_reported(reported_checksums!(object, etag));
            Ok(SourceState::Present {
                version: SourceVersion::from_headers(etag, object.version_id()),
                size: object
                    .content_length()
                    .and_then(|n| u64::try_from(n).ok())
                    .unwrap_or_default(),
                checksum,
            })
        }
        // `NoSuchKey` (a delete marker, a deleted key); `NoSuchBucket` is an error.
        Conditional::LookAgain(_) => Ok(SourceState::Absent),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_from_headers() {
        assert_eq!(
            SourceVersion::from_headers("\"abc\"", Some("null")),
            SourceVersion {
                etag: "abc".into(),
                version_id: None
            }
        );
        assert_eq!(
            SourceVersion::from_headers("abc-2", Some("3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY")),
            SourceVersion {
                etag: "abc-2".into(),
                version_id: Some("3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY".into())
            }
        );
        assert_eq!(SourceVersion::from_headers("e", None).version_id, None);
    }
}
