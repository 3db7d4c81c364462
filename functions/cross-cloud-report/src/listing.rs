//! A listed object, cloud-neutral, and the streaming listing both clouds implement.
//!
//! Listings yield one object at a time (the clients page underneath), so aggregate stats and
//! the drift merge-join never hold a whole inventory in memory.

use std::future::Future;

/// Boxed error, as Lambda reports it.
pub use crossfed_kit::BoxError;

/// One object, with its key relative to the listed prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedObject {
    pub key: String,
    pub size: u64,
    pub storage_class: String,
    /// The content MD5, when the cloud reports one (GCS: `md5Hash`; S3: an ETag of 32 hex
    /// digits, which is the MD5 unless the object is SSE-KMS or SSE-C encrypted: a listing
    /// cannot tell, so an S3 "MD5" that differs proves nothing).
    pub md5: Option<[u8; 16]>,
    /// The S3 ETag of the content (quotes removed): S3's own, or on a Cloud Storage object
    /// the one in gcs-sync's copy marker (`x-crossfed-source-etag`).
    pub etag: Option<String>,
}

/// Objects in lexicographic (byte) order of key, one at a time.
pub trait Listing: Send {
    fn next(&mut self) -> impl Future<Output = Result<Option<ListedObject>, BoxError>> + Send;
}

/// `key` with `prefix` removed (listings only return keys under their prefix).
pub fn relative(key: String, prefix: &str) -> String {
    match key.strip_prefix(prefix) {
        Some(rest) => rest.to_string(),
        None => key,
    }
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An in-memory listing, for tests.
#[cfg(test)]
pub struct VecListing(pub std::collections::VecDeque<Result<ListedObject, String>>);

#[cfg(test)]
impl VecListing {
    pub fn new(objects: Vec<ListedObject>) -> Self {
        VecListing(objects.into_iter().map(Ok).collect())
    }
}

#[cfg(test)]
impl Listing for VecListing {
    async fn next(&mut self) -> Result<Option<ListedObject>, BoxError> {
        match self.0.pop_front() {
            Some(Ok(o)) => Ok(Some(o)),
            Some(Err(e)) => Err(e.into()),
            None => Ok(None),
        }
    }
}

/// A test object.
#[cfg(test)]
pub fn obj(key: &str, size: u64) -> ListedObject {
    ListedObject {
        key: key.to_string(),
        size,
        storage_class: "STANDARD".to_string(),
        md5: None,
        etag: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_hex_round_trip() {
        let h = "d41d8cd98f00b204e9800998ecf8427e";
        assert_eq!(hex(&crossfed_kit::etag::md5_hex(h).unwrap()), h);
        assert_eq!(
            crossfed_kit::etag::md5_hex("d41d8cd98f00b204e9800998ecf8427e-2"),
            None
        );
        assert_eq!(
            crossfed_kit::etag::md5_hex("zz1d8cd98f00b204e9800998ecf8427e"),
            None
        );
        assert_eq!(relative("a/b/c".into(), "a/"), "b/c");
        assert_eq!(relative("x".into(), ""), "x");
    }
}
