//! The function's one `GetObject`: on condition that the object still has the ETag decided
//! on (`If-Match`), of the whole object (checksums S3 stored are then validated by the SDK
//! while streaming) or of a byte range (whose length is checked).

use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::types::ChecksumMode;

use crate::conditional::Conditional;
use crate::s3::error::{SourceError, get_failure};

/// `GetObject` of `bucket`/`key`: `if_match` an ETag (without quotes), bytes `start..=end`
/// of `range`. Deleted or overwritten meanwhile is [`Conditional::LookAgain`].
pub async fn get_object(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    if_match: Option<&str>,
    range: Option<(u64, u64)>,
) -> Result<Conditional<GetObjectOutput>, SourceError> {
    let mut request = client.get_object().bucket(bucket).key(key);
    if let Some(etag) = if_match {
        request = request.if_match(format!("\"{etag}\""));
    }
    request = match range {
        // S3 returns no whole-object checksum with a range.
        Some((start, end)) => request.range(format!("bytes={start}-{end}")),
        None => request.checksum_mode(ChecksumMode::Enabled),
    };
    let response = match request.send().await {
        Ok(response) => response,
        Err(e) => return get_failure(&e, bucket, key).map(Conditional::LookAgain),
    };
    if let Some((start, end)) = range
        && response.content_length() != i64::try_from(end - start + 1).ok()
    {
        return Err(SourceError::new(
            "GetObject",
            bucket,
            key,
            format!(
                "asked for bytes {start}-{end}, S3 answered {:?} bytes, Content-Range {:?}",
                response.content_length(),
                response.content_range()
            ),
        ));
    }
    Ok(Conditional::Done(response))
}
