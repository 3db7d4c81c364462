//! What a copy carries over from its source besides the bytes, in neither cloud's terms:
//! read once from S3's answer ([`crate::s3`]), written once onto the copy ([`crate::gcs`]).

use std::collections::HashMap;

/// The HTTP attributes and user metadata of an object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attributes {
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub content_language: Option<String>,
    pub content_disposition: Option<String>,
    pub cache_control: Option<String>,
    /// User metadata (S3's `x-amz-meta-*`).
    pub metadata: HashMap<String, String>,
}
