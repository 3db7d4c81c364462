//! Opening exactly the object S3 was found to serve: its bytes as a rewindable stream, its
//! version and ETag as S3 returned them with those bytes, and its [`Attributes`].

use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::types::ServerSideEncryption;

use crate::attributes::Attributes;
use crate::conditional::Conditional;
use crate::s3::body::{BodySource, Reopen};
use crate::s3::error::SourceError;
use crate::s3::get::get_object;
use crate::s3::state::SourceVersion;

/// An open source object.
pub struct SourceObject {
    pub body: BodySource,
    /// The whole object's size (also when only a range is read).
    pub size: u64,
    /// Without quotes.
    pub etag: Option<String>,
    pub version_id: Option<String>,
    /// The content's MD5, when the ETag is one (single-part upload, no KMS / SSE-C).
    pub md5: Option<[u8; 16]>,
    pub attributes: Attributes,
}

/// Opens `bucket`/`key` on condition that it still is `expected` (`If-Match` its ETag): the
/// whole object (a body the upload can rewind), or bytes `start..=end` of `range` (copies in
/// parts: the attributes and `size` are the whole object's, the body just the range).
pub async fn open(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    expected: &SourceVersion,
    range: Option<(u64, u64)>,
) -> Result<Conditional<SourceObject>, SourceError> {
    let response = match get_object(client, bucket, key, Some(&expected.etag), range).await? {
        Conditional::Done(response) => response,
        Conditional::LookAgain(changed) => return Ok(Conditional::LookAgain(changed)),
    };
    let fail = |message: String| SourceError::new("GetObject", bucket, key, message);
    let length = response
        .content_length()
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| fail("response without Content-Length".into()))?;
    let size = match range {
        None => length,
        Some(_) => response
            .content_range()
            .and_then(|r| r.rsplit_once('/'))
            .and_then(|(_, total)| total.parse::<u64>().ok())
            .ok_or_else(|| {
                fail(format!(
                    "Content-Range {:?} names no object size",
                    response.content_range()
                ))
            })?,
    };
    let etag = response.e_tag().map(|e| e.trim_matches('"').to_string());
    let kms = matches!(
        response.server_side_encryption(),
        Some(ServerSideEncryption::AwsKms | ServerSideEncryption::AwsKmsDsse)
    );
    let md5 = etag
        .as_deref()
        .filter(|_| !kms && response.sse_customer_algorithm().is_none())
        .and_then(crossfed_kit::etag::md5);
    let version_id = text(response.version_id()).filter(|v| v != "null");
    let attributes = attributes(&response);
    let body = BodySource::new(response.body, length);
    Ok(Conditional::Done(SourceObject {
        size,
        etag,
        version_id,
        md5,
        attributes,
        body: match range {
            None => body.reopening(Reopen {
                client: client.clone(),
                bucket: bucket.to_string(),
                key: key.to_string(),
                etag: expected.etag.clone(),
            }),
            Some(_) => body,
        },
    }))
}

/// S3's attributes of the object, the one mapping of them.
fn attributes(response: &GetObjectOutput) -> Attributes {
    Attributes {
        content_type: text(response.content_type()),
        content_encoding: text(response.content_encoding()),
        content_language: text(response.content_language()),
        content_disposition: text(response.content_disposition()),
        cache_control: text(response.cache_control()),
        metadata: response.metadata().cloned().unwrap_or_default(),
    }
}

fn text(s: Option<&str>) -> Option<String> {
    s.filter(|s| !s.is_empty()).map(str::to_string)
}
