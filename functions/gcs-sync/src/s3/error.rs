//! S3's errors: what failed, and which 404 or 412 an answer is. A key counts as absent only
//! when S3 says so (404 `NoSuchKey`, or a delete marker); a missing bucket is an error.

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::get_object::GetObjectError;

use crate::conditional::Changed;

/// S3 failed (after the client's retries), or answered something unusable.
#[derive(Debug, thiserror::Error)]
#[error("S3 {op} s3://{bucket}/{key}: {message}")]
pub struct SourceError {
    op: &'static str,
    bucket: String,
    key: String,
    message: String,
}

impl SourceError {
    /// `op` failed on `bucket`/`key` because of `message`.
    pub fn new(op: &'static str, bucket: &str, key: &str, message: String) -> Self {
        SourceError {
            op,
            bucket: bucket.to_string(),
            key: key.to_string(),
            message,
        }
    }
}

/// Which 404 an S3 error is.
pub enum NotFound {
    /// `NoSuchKey` (or `NoSuchVersion`), or a delete marker: the key has no current object.
    Key,
    /// `NoSuchBucket`.
    Bucket,
}

/// Classifies a 404 by its code. A 404 with another code (or none) is not classified:
/// nothing is deleted on an answer S3 did not clearly give.
pub fn not_found_kind<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> Option<NotFound> {
    match e.code() {
        Some("NoSuchBucket") => Some(NotFound::Bucket),
        Some("NoSuchKey" | "NoSuchVersion") => Some(NotFound::Key),
        _ if status(e) == Some(404) && is_delete_marker(e) => Some(NotFound::Key),
        _ => None,
    }
}

/// A failed `GetObject` of `bucket`/`key`: what changed since the object was looked at
/// (deleted: 404 `NoSuchKey` or a delete marker; overwritten: 412 on `If-Match`), or the
/// error (`NoSuchBucket`, 403, 5xx after retries, ...).
pub fn get_failure(
    e: &SdkError<GetObjectError, HttpResponse>,
    bucket: &str,
    key: &str,
) -> Result<Changed, SourceError> {
    match (not_found_kind(e), status(e), e.code()) {
        (Some(NotFound::Key), ..) => Ok(Changed::SourceDeleted),
        (Some(NotFound::Bucket), ..) => Err(no_such_bucket(bucket, key)),
        (None, Some(412), _) | (None, _, Some("PreconditionFailed")) => {
            Ok(Changed::SourceOverwritten)
        }
        _ => Err(SourceError::new(
            "GetObject",
            bucket,
            key,
            DisplayErrorContext(e).to_string(),
        )),
    }
}

/// The error for a source bucket that does not exist: the message must not succeed.
pub fn no_such_bucket(bucket: &str, key: &str) -> SourceError {
    SourceError::new(
        "GetObject",
        bucket,
        key,
        "the bucket does not exist (NoSuchBucket): check SYNC_SOURCE_BUCKET and the bucket's \
         notification configuration"
            .into(),
    )
}

/// The HTTP status of a failed call, if S3 answered.
pub fn status<E>(e: &SdkError<E, HttpResponse>) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

/// Whether S3's answer says the current version is a delete marker.
pub fn is_delete_marker<E>(e: &SdkError<E, HttpResponse>) -> bool {
    e.raw_response()
        .and_then(|r| r.headers().get("x-amz-delete-marker"))
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}
