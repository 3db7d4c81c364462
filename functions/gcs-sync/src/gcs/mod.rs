//! The Cloud Storage side: the destination bucket and every Cloud Storage call of the
//! function — read a copy's state, stream a copy in (one JSON API request, CRC32C trailing
//! the data), upload and compose parts, list, delete a given generation, read and write
//! backfill checkpoints. Writes and deletes are conditioned on a generation; what was
//! stored is checked ([`checks`]); errors and their meaning: [`error`].

pub mod checks;
pub mod error;

use std::collections::HashMap;

use bytes::Bytes;
use google_cloud_storage::client::{Storage, StorageControl};
use google_cloud_storage::model::Object;
use google_cloud_storage::model::compose_object_request::SourceObject as ComposeSource;

pub use error::GcsError;

use crate::attributes::Attributes;
use crate::conditional::{Changed, Conditional};
use crate::destination::Destination;
use crate::gcs::error::{checksum_mismatch, is_not_found, is_precondition_failed, source_changed};
use crate::reconcile::{self, CopyState};
use crate::s3::SourceObject;

/// The destination bucket (`SYNC_DESTINATION`) and the two Cloud Storage clients: the JSON
/// API (uploads) and gRPC (metadata, listing, compose, delete).
#[derive(Clone, Debug)]
pub struct DestinationBucket {
    storage: Storage,
    control: StorageControl,
    destination: Destination,
}

impl DestinationBucket {
    pub fn new(storage: Storage, control: StorageControl, destination: Destination) -> Self {
        DestinationBucket {
            storage,
            control,
            destination,
        }
    }

    pub fn destination(&self) -> &Destination {
        &self.destination
    }

    /// The error of `op` on `name`.
    pub fn call_error(
        &self,
        op: &'static str,
        name: &str,
        source: google_cloud_storage::Error,
    ) -> GcsError {
        GcsError::Call {
            op,
            bucket: self.destination.bucket().to_string(),
            name: name.to_string(),
            source,
        }
    }

    /// `name` holds other bytes than were sent: `detail` says how, `cleanup` what became
    /// of the object.
    pub fn corrupt(&self, name: &str, detail: String, cleanup: &'static str) -> GcsError {
        GcsError::Corrupt {
            bucket: self.destination.bucket().to_string(),
            name: name.to_string(),
            detail,
            cleanup,
        }
    }

    /// The current copy, if any.
    pub async fn current(&self, name: &str) -> Result<Option<CopyState>, GcsError> {
        match self.get(name).await {
            Ok(object) => Ok(Some(CopyState::from_metadata(
                object.generation,
                &object.metadata,
            ))),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(self.call_error("get", name, e)),
        }
    }

    async fn get(&self, name: &str) -> Result<Object, google_cloud_storage::Error> {
        self.control
            .get_object()
            .set_bucket(self.destination.bucket_resource())
            .set_object(name)
            .send()
            .await
    }

    /// Streams `source` into `name` if the object's generation is still `if_generation_match`
    /// (0: it must not exist), in one request whatever the size: the bytes flow from S3
    /// to Cloud Storage without being buffered. The client computes CRC32C while streaming
    /// and sends it after the data (a trailing part of the multipart upload), so Cloud
    /// Storage rejects corrupted data; a known MD5 (the S3 ETag) is sent up front. A retried
    /// request reads S3 again (same ETag); if S3 changed meanwhile, or the generation did,
    /// the answer is [`Conditional::LookAgain`]. `bookkeeping`: [`reconcile::copy_metadata`].
    pub async fn write(
        &self,
        name: &str,
        source: SourceObject,
        bookkeeping: Vec<(&'static str, String)>,
        if_generation_match: i64,
    ) -> Result<Conditional<Object>, GcsError> {
        let expected_size = source.size;
        let stats = source.body.stats();
        // Above the size: never a resumable upload (chunks would be buffered in memory).
        let single_shot = usize::try_from(expected_size.saturating_add(1)).unwrap_or(usize::MAX);
        let Attributes {
            content_type,
            content_encoding,
            content_language,
            content_disposition,
            cache_control,
            metadata,
        } = source.attributes;
        let mut request = self
            .storage
            .write_object(self.destination.bucket_resource(), name, source.body)
            .with_resumable_upload_threshold(single_shot)
            .set_if_generation_match(if_generation_match)
            .set_metadata(reconcile::merged_metadata(metadata, bookkeeping));
        if let Some(v) = content_type {
            request = request.set_content_type(v);
        }
        if let Some(v) = content_encoding {
            request = request.set_content_encoding(v);
        }
        if let Some(v) = content_language {
            request = request.set_content_language(v);
        }
        if let Some(v) = content_disposition {
            request = request.set_content_disposition(v);
        }
        if let Some(v) = cache_control {
            request = request.set_cache_control(v);
        }
        if let Some(md5) = source.md5 {
            request = request.with_known_md5_hash(md5);
        }
        let sent = request.send_unbuffered().await;
        if stats.reopened() > 0 {
            tracing::info!(
                object = name,
                reopened = stats.reopened(),
                "upload retried: S3 was read again"
            );
        }
        match sent {
            Ok(object) => match checks::verify_upload(&object, expected_size, stats.complete()) {
                Ok(()) => Ok(Conditional::Done(object)),
                Err(detail) => Err(self.remove_corrupt(name, detail, object.generation).await),
            },
            Err(e) if is_precondition_failed(&e) => Ok(Conditional::LookAgain(Changed::Copy)),
            Err(e) if source_changed(&e) => Ok(Conditional::LookAgain(Changed::SourceOverwritten)),
            Err(e) => match checksum_mismatch(&e) {
                Some((detail, landed)) => Err(self.remove_corrupt(name, detail, landed).await),
                None => Err(self.call_error("upload", name, e)),
            },
        }
    }

    /// Cloud Storage holds other bytes than were sent at `generation` of `name`: deletes
    /// exactly that generation so no corrupt copy stays.
    pub async fn remove_corrupt(&self, name: &str, detail: String, generation: i64) -> GcsError {
        let cleanup = match self.delete(name, generation).await {
            Ok(_) => "deleted",
            Err(e) => {
                tracing::error!(object = name, generation, error = %e, "could not delete a corrupt copy");
                "NOT deleted"
            }
        };
        self.corrupt(name, detail, cleanup)
    }

    /// Deletes `generation` of `name`. Already gone counts as done.
    pub async fn delete(&self, name: &str, generation: i64) -> Result<Conditional<()>, GcsError> {
        match self
            .control
            .delete_object()
            .set_bucket(self.destination.bucket_resource())
            .set_object(name)
            .set_if_generation_match(generation)
            .send()
            .await
        {
            Ok(()) => Ok(Conditional::Done(())),
            Err(e) if is_not_found(&e) => Ok(Conditional::Done(())),
            Err(e) if is_precondition_failed(&e) => Ok(Conditional::LookAgain(Changed::Copy)),
            Err(e) => Err(self.call_error("delete", name, e)),
        }
    }

    /// Every object whose name starts with `prefix`, in name order.
    pub async fn list(&self, prefix: &str) -> Result<Vec<Object>, GcsError> {
        let mut objects = Vec::new();
        let mut token = String::new();
        loop {
            let page = self
                .control
                .list_objects()
                .set_parent(self.destination.bucket_resource())
                .set_prefix(prefix)
                .set_page_token(token)
                .send()
                .await
                .map_err(|e| self.call_error("list", prefix, e))?;
            objects.extend(page.objects);
            if page.next_page_token.is_empty() {
                return Ok(objects);
            }
            token = page.next_page_token;
        }
    }

    /// Up to `page_size` objects under `prefix` from `start` on (inclusive), in name
    /// order, and whether more follow.
    pub async fn list_page(
        &self,
        prefix: &str,
        start: Option<String>,
        page_size: i32,
    ) -> Result<(Vec<Object>, bool), GcsError> {
        let mut listing = self
            .control
            .list_objects()
            .set_parent(self.destination.bucket_resource())
            .set_prefix(prefix)
            .set_page_size(page_size);
        if let Some(start) = start {
            listing = listing.set_lexicographic_start(start);
        }
        let page = listing
            .send()
            .await
            .map_err(|e| self.call_error("list", prefix, e))?;
        Ok((page.objects, !page.next_page_token.is_empty()))
    }

    /// Uploads one part in a single request with its CRC32C and MD5 declared (Cloud Storage
    /// rejects the upload if the bytes differ), if the part's generation is still
    /// `if_generation_match` (0: it must not exist): a part written by someone else
    /// meanwhile is [`Conditional::LookAgain`].
    pub async fn upload_part(
        &self,
        name: &str,
        data: Bytes,
        crc32c: u32,
        md5: [u8; 16],
        if_generation_match: i64,
    ) -> Result<Conditional<Object>, GcsError> {
        let len = data.len();
        let sent = self
            .storage
            .write_object(self.destination.bucket_resource(), name, data)
            .with_known_crc32c(crc32c)
            .with_known_md5_hash(md5)
            .with_resumable_upload_threshold(len + 1)
            .set_if_generation_match(if_generation_match)
            .set_content_type("application/octet-stream")
            .send_buffered()
            .await;
        match sent {
            Ok(object) => Ok(Conditional::Done(object)),
            Err(e) if is_precondition_failed(&e) => Ok(Conditional::LookAgain(Changed::Copy)),
            Err(e) => Err(self.call_error("upload part", name, e)),
        }
    }

    /// Composes `sources` (`(name, generation)`, in order, at most 32) into `target`, if
    /// given on condition that its generation is still `if_generation_match`.
    pub async fn compose(
        &self,
        sources: &[(String, i64)],
        target: Object,
        if_generation_match: Option<i64>,
    ) -> Result<Conditional<Object>, GcsError> {
        let name = target.name.clone();
        let mut request = self
            .control
            .compose_object()
            .set_source_objects(sources.iter().map(|(name, generation)| {
                ComposeSource::new()
                    .set_name(name)
                    .set_generation(*generation)
            }))
            .set_destination(target.set_bucket(self.destination.bucket_resource()));
        if let Some(g) = if_generation_match {
            request = request.set_if_generation_match(g);
        }
        match request.send().await {
            Ok(object) => Ok(Conditional::Done(object)),
            Err(e) if is_precondition_failed(&e) => Ok(Conditional::LookAgain(Changed::Copy)),
            Err(e) => Err(self.call_error("compose", &name, e)),
        }
    }

    /// The generation and metadata of the checkpoint `name`, if it exists.
    pub async fn read_checkpoint(
        &self,
        name: &str,
    ) -> Result<Option<(i64, HashMap<String, String>)>, GcsError> {
        match self.get(name).await {
            Ok(object) => Ok(Some((object.generation, object.metadata))),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(self.call_error("get checkpoint", name, e)),
        }
    }

    /// Writes the checkpoint `name` (an empty object holding `metadata`) if its generation
    /// is still `if_generation_match` (0: must not exist); its new generation.
    pub async fn write_checkpoint(
        &self,
        name: &str,
        metadata: Vec<(String, String)>,
        if_generation_match: i64,
    ) -> Result<Conditional<i64>, GcsError> {
        let result = self
            .storage
            .write_object(self.destination.bucket_resource(), name, "")
            .set_if_generation_match(if_generation_match)
            .set_content_type("application/x-empty")
            .set_metadata(metadata)
            .send_buffered()
            .await;
        match result {
            Ok(object) => Ok(Conditional::Done(object.generation)),
            Err(e) if is_precondition_failed(&e) => Ok(Conditional::LookAgain(Changed::Copy)),
            Err(e) => Err(self.call_error("write checkpoint", name, e)),
        }
    }
}

/// The copy `name` as composed from parts: the source's [`Attributes`] (user metadata
/// merged with `bookkeeping`, as [`DestinationBucket::write`] does).
pub fn copy_object(
    name: &str,
    attributes: Attributes,
    bookkeeping: Vec<(&'static str, String)>,
) -> Object {
    let text = |v: Option<String>| v.unwrap_or_default();
    Object::new()
        .set_name(name)
        .set_content_type(text(attributes.content_type))
        .set_content_encoding(text(attributes.content_encoding))
        .set_content_language(text(attributes.content_language))
        .set_content_disposition(text(attributes.content_disposition))
        .set_cache_control(text(attributes.cache_control))
        .set_metadata(reconcile::merged_metadata(attributes.metadata, bookkeeping))
}
