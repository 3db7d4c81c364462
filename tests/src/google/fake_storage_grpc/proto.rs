//! Hand-written subset of `google.storage.v2` (field numbers as in
//! `google/storage/v2/storage.proto`).

use std::collections::HashMap;

#[derive(Clone, PartialEq, prost::Message)]
pub struct ListBucketsRequest {
    #[prost(string, tag = "1")]
    pub parent: String,
    #[prost(int32, tag = "2")]
    pub page_size: i32,
    #[prost(string, tag = "3")]
    pub page_token: String,
    #[prost(string, tag = "4")]
    pub prefix: String,
    #[prost(message, optional, tag = "5")]
    pub read_mask: Option<FieldMask>,
    #[prost(bool, tag = "9")]
    pub return_partial_success: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ListBucketsResponse {
    #[prost(message, repeated, tag = "1")]
    pub buckets: Vec<Bucket>,
    #[prost(string, tag = "2")]
    pub next_page_token: String,
    #[prost(string, repeated, tag = "3")]
    pub unreachable: Vec<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Bucket {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub bucket_id: String,
    #[prost(string, tag = "3")]
    pub project: String,
    #[prost(int64, tag = "4")]
    pub metageneration: i64,
    #[prost(string, tag = "5")]
    pub location: String,
    #[prost(string, tag = "6")]
    pub location_type: String,
    #[prost(string, tag = "7")]
    pub storage_class: String,
    #[prost(string, tag = "29")]
    pub etag: String,
}

/// `google.protobuf.FieldMask`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct FieldMask {
    #[prost(string, repeated, tag = "1")]
    pub paths: Vec<String>,
}

/// `google.protobuf.Timestamp`.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct Timestamp {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// `google.protobuf.Empty`.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct Empty {}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ListObjectsRequest {
    /// `projects/_/buckets/{bucket}`.
    #[prost(string, tag = "1")]
    pub parent: String,
    #[prost(int32, tag = "2")]
    pub page_size: i32,
    #[prost(string, tag = "3")]
    pub page_token: String,
    #[prost(string, tag = "4")]
    pub delimiter: String,
    #[prost(bool, tag = "5")]
    pub include_trailing_delimiter: bool,
    #[prost(string, tag = "6")]
    pub prefix: String,
    #[prost(bool, tag = "7")]
    pub versions: bool,
    #[prost(message, optional, tag = "8")]
    pub read_mask: Option<FieldMask>,
    #[prost(string, tag = "10")]
    pub lexicographic_start: String,
    #[prost(string, tag = "11")]
    pub lexicographic_end: String,
    #[prost(bool, tag = "12")]
    pub soft_deleted: bool,
    #[prost(bool, tag = "13")]
    pub include_folders_as_prefixes: bool,
    #[prost(string, tag = "14")]
    pub match_glob: String,
    #[prost(string, tag = "15")]
    pub filter: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ListObjectsResponse {
    #[prost(message, repeated, tag = "1")]
    pub objects: Vec<Object>,
    #[prost(string, repeated, tag = "2")]
    pub prefixes: Vec<String>,
    #[prost(string, tag = "3")]
    pub next_page_token: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct GetObjectRequest {
    #[prost(string, tag = "1")]
    pub bucket: String,
    #[prost(string, tag = "2")]
    pub object: String,
    #[prost(int64, tag = "3")]
    pub generation: i64,
    #[prost(int64, optional, tag = "4")]
    pub if_generation_match: Option<i64>,
    #[prost(int64, optional, tag = "5")]
    pub if_generation_not_match: Option<i64>,
    #[prost(int64, optional, tag = "6")]
    pub if_metageneration_match: Option<i64>,
    #[prost(int64, optional, tag = "7")]
    pub if_metageneration_not_match: Option<i64>,
    #[prost(message, optional, tag = "10")]
    pub read_mask: Option<FieldMask>,
    #[prost(bool, optional, tag = "11")]
    pub soft_deleted: Option<bool>,
    #[prost(string, tag = "12")]
    pub restore_token: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct DeleteObjectRequest {
    #[prost(string, tag = "1")]
    pub bucket: String,
    #[prost(string, tag = "2")]
    pub object: String,
    #[prost(int64, tag = "4")]
    pub generation: i64,
    #[prost(int64, optional, tag = "5")]
    pub if_generation_match: Option<i64>,
    #[prost(int64, optional, tag = "6")]
    pub if_generation_not_match: Option<i64>,
    #[prost(int64, optional, tag = "7")]
    pub if_metageneration_match: Option<i64>,
    #[prost(int64, optional, tag = "8")]
    pub if_metageneration_not_match: Option<i64>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Object {
    #[prost(string, tag = "1")]
    pub name: String,
    /// `projects/_/buckets/{bucket}`.
    #[prost(string, tag = "2")]
    pub bucket: String,
    #[prost(string, tag = "27")]
    pub etag: String,
    #[prost(int64, tag = "3")]
    pub generation: i64,
    #[prost(int64, tag = "4")]
    pub metageneration: i64,
    #[prost(string, tag = "5")]
    pub storage_class: String,
    #[prost(int64, tag = "6")]
    pub size: i64,
    #[prost(string, tag = "7")]
    pub content_encoding: String,
    #[prost(string, tag = "8")]
    pub content_disposition: String,
    #[prost(string, tag = "9")]
    pub cache_control: String,
    #[prost(string, tag = "11")]
    pub content_language: String,
    #[prost(string, tag = "13")]
    pub content_type: String,
    #[prost(message, optional, tag = "14")]
    pub create_time: Option<Timestamp>,
    #[prost(int32, tag = "15")]
    pub component_count: i32,
    #[prost(message, optional, tag = "16")]
    pub checksums: Option<ObjectChecksums>,
    #[prost(message, optional, tag = "17")]
    pub update_time: Option<Timestamp>,
    #[prost(map = "string, string", tag = "22")]
    pub metadata: HashMap<String, String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ComposeObjectRequest {
    #[prost(message, optional, tag = "1")]
    pub destination: Option<Object>,
    #[prost(message, repeated, tag = "2")]
    pub source_objects: Vec<ComposeSource>,
    #[prost(string, tag = "9")]
    pub destination_predefined_acl: String,
    #[prost(int64, optional, tag = "4")]
    pub if_generation_match: Option<i64>,
    #[prost(int64, optional, tag = "5")]
    pub if_metageneration_match: Option<i64>,
    #[prost(string, tag = "6")]
    pub kms_key: String,
    /// `CommonObjectRequestParams` (customer-supplied keys): not supported.
    #[prost(bytes = "vec", optional, tag = "7")]
    pub common_object_request_params: Option<Vec<u8>>,
    #[prost(message, optional, tag = "10")]
    pub object_checksums: Option<ObjectChecksums>,
    #[prost(bool, optional, tag = "11")]
    pub delete_source_objects: Option<bool>,
}

/// `ComposeObjectRequest.SourceObject`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ComposeSource {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(int64, tag = "2")]
    pub generation: i64,
    #[prost(message, optional, tag = "3")]
    pub object_preconditions: Option<ComposeSourcePreconditions>,
}

/// `ComposeObjectRequest.SourceObject.ObjectPreconditions`.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct ComposeSourcePreconditions {
    #[prost(int64, optional, tag = "1")]
    pub if_generation_match: Option<i64>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ObjectChecksums {
    #[prost(fixed32, optional, tag = "1")]
    pub crc32c: Option<u32>,
    #[prost(bytes = "vec", tag = "2")]
    pub md5_hash: Vec<u8>,
}
