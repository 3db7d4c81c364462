//! The S3 side: the source bucket (`SYNC_SOURCE_BUCKET`) and every S3 call of the function —
//! what S3 serves now for a key, with its checksum ([`state`], [`checksum`]), the one
//! conditional ranged `GetObject` ([`get`]) behind the object opened for a copy, whole or
//! in parts ([`object`], [`body`]), and the listing a backfill walks. Errors and their
//! 404/412 meaning: [`error`].

pub mod body;
pub mod checksum;
pub mod error;
pub mod get;
pub mod object;
pub mod state;

use aws_sdk_s3::error::DisplayErrorContext;

pub use body::{BodyError, BodySource, StreamStats};
pub use checksum::{Crc, FullObjectChecksum, SourceChecksum};
pub use error::SourceError;
pub use object::SourceObject;
pub use state::{SourceState, SourceVersion};

use crate::conditional::Conditional;

/// The source bucket and the S3 client that reads it.
#[derive(Clone, Debug)]
pub struct SourceBucket {
    client: aws_sdk_s3::Client,
    name: String,
}

/// One object of a listing page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    pub key: String,
    /// Without quotes.
    pub etag: String,
}

/// One page of [`SourceBucket::list`].
#[derive(Clone, Debug, Default)]
pub struct ListPage {
    /// In key order.
    pub objects: Vec<Listed>,
    /// More keys follow.
    pub truncated: bool,
}

impl SourceBucket {
    /// The bucket `name` read through `client`.
    pub fn new(client: aws_sdk_s3::Client, name: String) -> Self {
        SourceBucket { client, name }
    }

    /// The bucket's name (`SYNC_SOURCE_BUCKET`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What S3 serves for `key` now (see [`state`]).
    pub async fn current(&self, key: &str) -> Result<SourceState, SourceError> {
        state::current(&self.client, &self.name, key).await
    }

    /// Opens the object S3 serves as `expected`, whole or bytes `start..=end` of `range`
    /// (see [`object::open`]).
    pub async fn open(
        &self,
        key: &str,
        expected: &SourceVersion,
        range: Option<(u64, u64)>,
    ) -> Result<Conditional<SourceObject>, SourceError> {
        object::open(&self.client, &self.name, key, expected, range).await
    }

    /// Up to `max_keys` keys under `prefix` after `after`, in key order (`ListObjectsV2`).
    pub async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        max_keys: i32,
    ) -> Result<ListPage, SourceError> {
        let mut request = self
            .client
            .list_objects_v2()
            .bucket(&self.name)
            .prefix(prefix)
            .max_keys(max_keys);
        if let Some(after) = after {
            request = request.start_after(after);
        }
        let listed = request.send().await.map_err(|e| {
            SourceError::new(
                "ListObjectsV2",
                &self.name,
                prefix,
                DisplayErrorContext(&e).to_string(),
            )
        })?;
        let objects = listed
            .contents()
            .iter()
            .filter_map(|object| {
                Some(Listed {
                    key: object.key()?.to_string(),
                    etag: object
                        .e_tag()
                        .unwrap_or_default()
                        .trim_matches('"')
                        .to_string(),
                })
            })
            .collect();
        Ok(ListPage {
            objects,
            truncated: listed.is_truncated() == Some(true),
        })
    }
}
