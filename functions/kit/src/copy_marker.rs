//! The marker gcs-sync writes on every copy, as Cloud Storage custom metadata: which S3
//! object the copy holds. The report compares copies by it; gcs-sync decides by it what is
//! its own.

/// Prefix of every key of the marker (refused as user metadata).
pub const RESERVED_PREFIX: &str = "x-crossfed-";
/// `s3://<bucket>/<key>` of the source object.
pub const SOURCE: &str = "x-crossfed-source";
/// The source object's S3 ETag (gcs-sync writes it without quotes; compare through
/// [`normalized_etag`]).
pub const SOURCE_ETAG: &str = "x-crossfed-source-etag";
/// The source object's version id, on versioned buckets.
pub const SOURCE_VERSION: &str = "x-crossfed-source-version-id";

/// An S3 ETag without its quotes and surrounding space, to compare two ETags.
pub fn normalized_etag(etag: &str) -> &str {
    etag.trim().trim_matches('"')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_compare_without_quotes() {
        assert_eq!(normalized_etag("\"abc-2\""), "abc-2");
        assert_eq!(normalized_etag(" abc "), "abc");
        assert!(SOURCE_ETAG.starts_with(RESERVED_PREFIX));
    }
}
