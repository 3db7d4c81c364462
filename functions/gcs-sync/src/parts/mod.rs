//! Large objects in parts, so that a copy continues across invocations: the S3 object is
//! cut into fixed-size ranges ([`layout`]), each uploaded as a temporary object with its
//! CRC32C declared, so Cloud Storage rejects a corrupted part ([`upload`]). A redelivered
//! message lists the parts already there and uploads only the missing ones; [`compose`]
//! then builds the copy.

pub mod compose;
pub mod layout;
pub mod upload;

use std::time::Instant;

use google_cloud_storage::model::Object;

pub use layout::{Layout, PARTS_DIR, Part};
pub use upload::PartsError;

use crate::conditional::{Changed, Conditional};
use crate::gcs::{self, DestinationBucket};
use crate::parts::upload::Pinned;
use crate::reconcile;
use crate::s3::{SourceBucket, SourceVersion};

const MIB: u64 = 1024 * 1024;

/// `SYNC_PART_THRESHOLD_BYTES` / `SYNC_PART_BYTES` / `SYNC_PART_CONCURRENCY`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartSettings {
    /// Objects larger than this are copied in parts (default 1 GiB); smaller ones are
    /// streamed in one request.
    pub threshold: u64,
    /// Size of each part (default 8 MiB).
    pub part_bytes: u64,
    /// Parts read or uploading at once (default 4); memory is about this many parts.
    pub concurrency: usize,
}

impl Default for PartSettings {
    fn default() -> Self {
        PartSettings {
            threshold: 1024 * MIB,
            part_bytes: 8 * MIB,
            concurrency: 4,
        }
    }
}

impl PartSettings {
    /// Whether an object of `size` bytes is copied in parts.
    pub fn applies(&self, size: u64) -> bool {
        size > self.threshold
    }
}

/// The clients and settings a copy in parts needs.
#[derive(Clone, Copy, Debug)]
pub struct PartCopier<'a> {
    pub source: &'a SourceBucket,
    pub destination: &'a DestinationBucket,
    pub settings: &'a PartSettings,
}

impl PartCopier<'_> {
    /// Copies `key`, which S3 serves as `expected` (`size` bytes), into `name` in parts:
    /// uploads the parts still missing, then composes them under `if_generation_match`
    /// with the object's attributes and metadata (read with the first ranged `GetObject`;
    /// [`reconcile::copy_metadata`] bookkeeping). `None` if part names would be too long:
    /// copy it in one stream then.
    pub async fn copy(
        &self,
        key: &str,
        name: &str,
        expected: &SourceVersion,
        size: u64,
        if_generation_match: i64,
    ) -> Result<Option<Conditional<Object>>, PartsError> {
        let destination = self.destination;
        let Some(layout) = Layout::new(
            destination.destination(),
            key,
            &expected.etag,
            size,
            self.settings.part_bytes,
        ) else {
            return Ok(None);
        };
        let existing = upload::existing(destination, &layout).await?;
        let missing: Vec<usize> = (0..existing.len())
            .filter(|n| existing[*n].is_none())
            .collect();
        // The read of the first missing parts also brings the object's attributes; with
        // every part present, one byte does.
        let range =
            upload::first_run(&missing).map_or((0, 0), |run| upload::byte_range(&layout, run));
        let object = match self.source.open(key, expected, Some(range)).await? {
            Conditional::Done(object) => object,
            Conditional::LookAgain(changed) => return Ok(Some(Conditional::LookAgain(changed))),
        };
        if object.size != size {
            return Ok(Some(Conditional::LookAgain(Changed::SourceOverwritten)));
        }
        let bookkeeping = reconcile::copy_metadata(
            self.source.name(),
            key,
            object.etag.as_deref(),
            object.version_id.as_deref(),
        );
        let target = gcs::copy_object(name, object.attributes, bookkeeping);
        let first = (!missing.is_empty()).then(|| object.body.into_inner());
        let pinned = Pinned {
            source: self.source,
            key,
            etag: &expected.etag,
        };
        let uploaded = upload::upload_missing(
            pinned,
            destination,
            self.settings.concurrency,
            &layout,
            existing,
            first,
        )
        .await?;
        let parts = match uploaded {
            Conditional::Done(parts) => parts,
            Conditional::LookAgain(changed) => return Ok(Some(Conditional::LookAgain(changed))),
        };
        let composing = Instant::now();
        let done =
            compose::compose(destination, &layout, &parts, target, if_generation_match).await?;
        tracing::info!(
            parts = parts.len(),
            compose_ms = composing.elapsed().as_millis() as u64,
            "parts composed"
        );
        Ok(Some(done))
    }
}

/// Removes temporary parts of `key`'s current object (`version`, `size` bytes, as S3
/// serves it) left behind by an invocation that composed the copy but was cut short before
/// removing them.
pub async fn remove_leftovers(
    destination: &DestinationBucket,
    settings: &PartSettings,
    key: &str,
    version: &SourceVersion,
    size: u64,
) {
    if !settings.applies(size) {
        return;
    }
    let Some(layout) = Layout::new(
        destination.destination(),
        key,
        &version.etag,
        size,
        settings.part_bytes,
    ) else {
        return;
    };
    match destination.list(layout.dir()).await {
        Ok(objects) if !objects.is_empty() => {
            // Only names the layout produces: anything else there is not ours to delete.
            let leftovers = objects
                .into_iter()
                .filter(|o| layout.produces(&o.name))
                .map(|o| (o.name, o.generation))
                .collect();
            compose::remove_temporary(destination, leftovers).await;
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(dir = layout.dir(), error = %e, "could not list leftover parts"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applies_above_the_threshold() {
        let s = PartSettings::default();
        assert!(s.applies(1024 * MIB + 1) && !s.applies(1024 * MIB) && !s.applies(9 * MIB));
        let low = PartSettings {
            threshold: 8 * MIB,
            ..s
        };
        assert!(low.applies(8 * MIB + 1) && !low.applies(8 * MIB));
    }
}
