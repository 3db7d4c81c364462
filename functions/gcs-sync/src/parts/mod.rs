//! Large objects in parts, so that a copy continues across invocations: the S3 object is
//! cut into fixed-size ranges ([`layout`]), each uploaded as a temporary object with its
//! CRC32C and MD5 declared, so Cloud Storage rejects a corrupted part ([`upload`]). A
//! redelivered message reads S3 again and keeps the parts already there only when Cloud
//! Storage's MD5 and CRC32C of them equal those of S3's bytes; it uploads the others. The
//! bytes read are compared with S3's full-object checksum when S3 has one; [`compose`] then
//! builds the copy.

pub mod compose;
pub mod layout;
pub mod upload;

use std::time::Instant;

use google_cloud_storage::model::Object;

pub use layout::{Layout, PARTS_DIR, Part};
pub use upload::PartsError;

use crate::conditional::{Changed, Conditional};
use crate::gcs::{self, DestinationBucket};
use crate::parts::upload::{SourceKey, Uploaded};
use crate::reconcile;
use crate::s3::{FullObjectChecksum, SourceBucket, SourceChecksum, SourceVersion};

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
    /// Copies `key`, which S3 serves as `expected` (`size` bytes, `checksum`), into `name`
    /// in parts: reads the whole object once (one ranged `GetObject`, which also brings its
    /// attributes), keeps the parts found holding S3's bytes and uploads the others, checks
    /// the bytes read against S3's full-object checksum if it has one, then composes them
    /// under `if_generation_match` with the object's attributes and metadata
    /// ([`reconcile::copy_metadata`] bookkeeping). `None` if part names would be too long:
    /// copy it in one stream then.
    pub async fn copy(
        &self,
        key: &str,
        name: &str,
        expected: &SourceVersion,
        size: u64,
        checksum: &SourceChecksum,
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
        let found = upload::found(destination, &layout).await?;
        let object = match self.source.open(key, expected, Some((0, size - 1))).await? {
            Conditional::Done(object) => object,
            Conditional::LookAgain(changed) => return Ok(Some(Conditional::LookAgain(changed))),
        };
        if object.size != size {
            return Ok(Some(Conditional::LookAgain(Changed::SourceOverwritten)));
        }
        let full = match checksum {
            SourceChecksum::Full(full) => Some(*full),
            SourceChecksum::NotComparable(why) => {
                tracing::debug!(
                    key,
                    why = why.as_str(),
                    "S3's checksum is not compared with the bytes read (the parts and the \
                     composite are checked by their CRC32C and MD5)"
                );
                None
            }
        };
        let bookkeeping = reconcile::copy_metadata(
            self.source.name(),
            key,
            object.etag.as_deref(),
            object.version_id.as_deref(),
        );
        let target = gcs::copy_object(name, object.attributes, bookkeeping);
        let source = SourceKey {
            bucket: self.source.name(),
            key,
        };
        let uploaded = upload::upload_parts(
            source,
            destination,
            self.settings.concurrency,
            &layout,
            found,
            object.body.into_inner(),
            full.map(|f| f.crc),
        )
        .await?;
        let uploaded = match uploaded {
            Conditional::Done(uploaded) => uploaded,
            Conditional::LookAgain(changed) => return Ok(Some(Conditional::LookAgain(changed))),
        };
        if let Some(expected_full) = full {
            self.agrees_with_s3(key, &expected.etag, expected_full, &uploaded)?;
        }
        let composing = Instant::now();
        let done = compose::compose(
            destination,
            &layout,
            &uploaded.parts,
            target,
            if_generation_match,
        )
        .await?;
        tracing::info!(
            parts = uploaded.parts.len(),
            compose_ms = composing.elapsed().as_millis() as u64,
            "parts composed"
        );
        Ok(Some(done))
    }

    /// The bytes read hash to S3's full-object checksum `s3`; an error (logged) otherwise.
    fn agrees_with_s3(
        &self,
        key: &str,
        etag: &str,
        s3: FullObjectChecksum,
        uploaded: &Uploaded,
    ) -> Result<(), PartsError> {
        let read = uploaded.full.unwrap_or_default();
        if read == s3.value {
            tracing::debug!(
                key,
                crc = s3.crc.name(),
                "the bytes read match S3's checksum"
            );
            return Ok(());
        }
        let error = PartsError::SourceDisagrees {
            object: format!("s3://{}/{key} (ETag {etag})", self.source.name()),
            crc: s3.crc.name(),
            s3: FullObjectChecksum::encoded(s3.crc, s3.value),
            read: FullObjectChecksum::encoded(s3.crc, read),
        };
        tracing::error!(error = %error, "S3's checksum and the bytes read disagree: not composed");
        Err(error)
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
