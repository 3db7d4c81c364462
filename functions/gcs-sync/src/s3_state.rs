//! What S3 serves now for a key (`HeadObject` on the current object): the copy follows
//! this, never an event's word. A key counts as absent only when S3 says so (404
//! `NoSuchKey`, or a delete marker as the current version); a missing bucket is an error.

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::s3_source::SourceError;

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
    /// An object is served, `size` bytes long.
    Present { version: SourceVersion, size: u64 },
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
    match client.head_object().bucket(bucket).key(key).send().await {
        Ok(head) => {
            let etag = head
                .e_tag()
                .filter(|e| !e.is_empty())
                .ok_or_else(|| fail("response without ETag".into()))?;
            let size = head
                .content_length()
                .and_then(|n| u64::try_from(n).ok())
                .ok_or_else(|| fail("response without Content-Length".into()))?;
            Ok(SourceState::Present {
                version: SourceVersion::from_headers(etag, head.version_id()),
                size,
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
    match client.get_object().bucket(bucket).key(key).send().await {
        Ok(object) => {
            // Created since the HEAD; the body is not needed (dropping it ends the request).
            let etag = object
                .e_tag()
                .filter(|e| !e.is_empty())
                .ok_or_else(|| fail("response without ETag".into()))?;
            Ok(SourceState::Present {
                version: SourceVersion::from_headers(etag, object.version_id()),
                size: object
                    .content_length()
                    .and_then(|n| u64::try_from(n).ok())
                    .unwrap_or_default(),
            })
        }
        Err(e) => match not_found_kind(&e) {
            Some(NotFound::Key) => Ok(SourceState::Absent),
            Some(NotFound::Bucket) => Err(no_such_bucket(bucket, key)),
            None => Err(fail(DisplayErrorContext(&e).to_string())),
        },
    }
}

/// Which 404 an S3 error is.
pub(crate) enum NotFound {
    /// `NoSuchKey` (or `NoSuchVersion`), or a delete marker: the key has no current object.
    Key,
    /// `NoSuchBucket`.
    Bucket,
}

/// Classifies a 404 by its code. A 404 with another code (or none) is not classified:
/// nothing is deleted on an answer S3 did not clearly give.
pub(crate) fn not_found_kind<E: ProvideErrorMetadata>(
    e: &SdkError<E, HttpResponse>,
) -> Option<NotFound> {
    let raw_404 = e.raw_response().is_some_and(|r| r.status().as_u16() == 404);
    match e.code() {
        Some("NoSuchBucket") => Some(NotFound::Bucket),
        Some("NoSuchKey" | "NoSuchVersion") => Some(NotFound::Key),
        _ if raw_404 && is_delete_marker(e) => Some(NotFound::Key),
        _ => None,
    }
}

/// Why a `GetObject` of the object S3 was found to serve (`If-Match` its ETag) failed.
pub(crate) enum GetFailure {
    /// Deleted since it was looked at (404 `NoSuchKey`, or a delete marker).
    Missing,
    /// `NoSuchBucket`: an error, never a skip.
    NoSuchBucket,
    /// Overwritten since it was looked at (412).
    Changed,
    /// Anything else (403, 5xx after retries, ...).
    Other,
}

/// Classifies a failed conditional `GetObject`.
pub(crate) fn get_failure<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> GetFailure {
    let status = e.raw_response().map(|r| r.status().as_u16());
    match (not_found_kind(e), status, e.code()) {
        (Some(NotFound::Key), ..) => GetFailure::Missing,
        (Some(NotFound::Bucket), ..) => GetFailure::NoSuchBucket,
        (None, Some(412), _) | (None, _, Some("PreconditionFailed")) => GetFailure::Changed,
        _ => GetFailure::Other,
    }
}

/// The error for a source bucket that does not exist: the message must not succeed.
pub(crate) fn no_such_bucket(bucket: &str, key: &str) -> SourceError {
    SourceError::new(
        "GetObject",
        bucket,
        key,
        "the bucket does not exist (NoSuchBucket): check SYNC_SOURCE_BUCKET and the bucket's \
         notification configuration"
            .into(),
    )
}

fn status<E>(e: &SdkError<E, HttpResponse>) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

fn is_delete_marker<E>(e: &SdkError<E, HttpResponse>) -> bool {
    e.raw_response()
        .and_then(|r| r.headers().get("x-amz-delete-marker"))
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
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
