//! Applying one object change. The event only names the key: the copy is made to follow
//! what S3 serves for that key now. Read the copy's state, ask S3, decide, act under a
//! generation precondition (and `If-Match` on S3); when either side changed in between,
//! look again. Objects larger than `SYNC_PART_THRESHOLD_BYTES` are copied in parts
//! ([`crate::parts`]), under the same rules; smaller ones in one stream.

use crate::conditional::Conditional;
use crate::event::{ChangeKind, ObjectChange};
use crate::gcs::{DestinationBucket, GcsError};
use crate::parts::{self, PartCopier, PartSettings, PartsError};
use crate::reconcile::{self, Decision, DeleteMode, SkipReason};
use crate::s3::{SourceBucket, SourceChecksum, SourceError, SourceState, SourceVersion};

/// Rounds of looking again when S3 or the copy keep changing under us.
const MAX_ROUNDS: usize = 5;

/// What a change did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Copied {
        name: String,
        bytes: u64,
        generation: i64,
    },
    Deleted {
        name: String,
    },
    Skipped(SkipReason),
}

/// Why a change could not be applied (the message goes back to the queue).
#[derive(Debug, thiserror::Error)]
pub enum ReplicateError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Destination(#[from] GcsError),
    #[error(transparent)]
    Parts(#[from] PartsError),
    #[error(
        "the event is for bucket {bucket:?}, but this function replicates {expected:?} \
         (SYNC_SOURCE_BUCKET): not applied; the message is misrouted or forged"
    )]
    ForeignBucket { bucket: String, expected: String },
    #[error("s3://{bucket}/{key} cannot be copied: {reason}")]
    Name {
        bucket: String,
        key: String,
        reason: String,
    },
    #[error(
        "s3://{bucket}/{key} or its copy gs://{dest_bucket}/{name} kept changing \
         ({MAX_ROUNDS} rounds); will retry"
    )]
    Contended {
        bucket: String,
        key: String,
        dest_bucket: String,
        name: String,
    },
}

/// S3 -> Cloud Storage replication of single keys.
#[derive(Clone, Debug)]
pub struct Replicator {
    source: SourceBucket,
    destination: DestinationBucket,
    delete_mode: DeleteMode,
    parts: PartSettings,
}

impl Replicator {
    /// Replicates `source` (`SYNC_SOURCE_BUCKET`) into `destination`.
    pub fn new(
        source: SourceBucket,
        destination: DestinationBucket,
        delete_mode: DeleteMode,
    ) -> Self {
        Replicator {
            source,
            destination,
            delete_mode,
            parts: PartSettings::default(),
        }
    }

    /// Objects larger than `parts.threshold` are copied in parts (see [`crate::parts`]).
    pub fn with_parts(mut self, parts: PartSettings) -> Self {
        self.parts = parts;
        self
    }

    /// `SYNC_DELETE_MODE`.
    pub fn delete_mode(&self) -> DeleteMode {
        self.delete_mode
    }

    /// Applies `change`: events for another bucket fail; any create or remove event makes
    /// the copy of its key follow S3 ([`Replicator::sync_key`]).
    pub async fn apply(&self, change: &ObjectChange) -> Result<Outcome, ReplicateError> {
        if change.kind == ChangeKind::Other {
            return Ok(Outcome::Skipped(SkipReason::NotReplicated));
        }
        if change.bucket != self.source.name() {
            return Err(ReplicateError::ForeignBucket {
                bucket: change.bucket.clone(),
                expected: self.source.name().to_string(),
            });
        }
        self.sync_key(&change.key).await
    }

    /// Makes the copy of `key` equal to what S3 serves now: a copy of the current object,
    /// or no copy when S3 confirms there is none (unless `SYNC_DELETE_MODE=keep`). An object
    /// at the copy's name that gcs-sync did not write as this key's copy is left alone
    /// ([`SkipReason::Foreign`]).
    pub async fn sync_key(&self, key: &str) -> Result<Outcome, ReplicateError> {
        let bucket = self.source.name();
        let destination = self.destination.destination();
        let name = destination
            .object_name(key)
            .map_err(|reason| ReplicateError::Name {
                bucket: bucket.to_string(),
                key: key.to_string(),
                reason,
            })?;
        let marker = reconcile::source_marker(bucket, key);
        for _ in 0..MAX_ROUNDS {
            // The copy first, then S3: an action conditioned on this generation can only
            // succeed if nobody acted on a newer picture of S3 in between.
            let copy = self.destination.current(&name).await?;
            let source = self.source.current(key).await?;
            let decision = reconcile::decide(&source, copy.as_ref(), self.delete_mode, &marker);
            let changed = match decision {
                Decision::Skip(SkipReason::Foreign) => {
                    tracing::warn!(
                        object = %name,
                        source = copy.and_then(|c| c.source).as_deref().unwrap_or(""),
                        "not a copy gcs-sync made of this key: left alone"
                    );
                    return Ok(Outcome::Skipped(SkipReason::Foreign));
                }
                Decision::Skip(reason) => {
                    if let (
                        SkipReason::AlreadyCurrent,
                        SourceState::Present { version, size, .. },
                    ) = (reason, &source)
                    {
                        // A copy in parts composed by an invocation cut short before its cleanup.
                        parts::remove_leftovers(
                            &self.destination,
                            &self.parts,
                            key,
                            version,
                            *size,
                        )
                        .await;
                    }
                    return Ok(Outcome::Skipped(reason));
                }
                Decision::Delete { generation } => {
                    match self.destination.delete(&name, generation).await? {
                        Conditional::Done(()) => return Ok(Outcome::Deleted { name }),
                        Conditional::LookAgain(changed) => changed,
                    }
                }
                Decision::Write {
                    source: version,
                    if_generation_match,
                } => {
                    let (size, checksum) = match &source {
                        SourceState::Present { size, checksum, .. } => (*size, checksum.clone()),
                        SourceState::Absent => (0, SourceChecksum::NotComparable(String::new())),
                    };
                    match self
                        .write(key, &name, &version, size, &checksum, if_generation_match)
                        .await?
                    {
                        Conditional::Done((bytes, generation)) => {
                            return Ok(Outcome::Copied {
                                name,
                                bytes,
                                generation,
                            });
                        }
                        Conditional::LookAgain(changed) => changed,
                    }
                }
            };
            tracing::info!(object = %name, ?changed, "S3 or the copy changed meanwhile; looking again");
        }
        Err(ReplicateError::Contended {
            bucket: bucket.to_string(),
            key: key.to_string(),
            dest_bucket: destination.bucket().to_string(),
            name,
        })
    }

    /// Copies the object S3 serves as `version` (`size` bytes and `checksum`, from the HEAD)
    /// to `name`: in parts when it is large, else one stream (whose whole-object `GetObject`
    /// the SDK checks against S3's checksum); the bytes copied and the copy's generation.
    async fn write(
        &self,
        key: &str,
        name: &str,
        version: &SourceVersion,
        size: u64,
        checksum: &SourceChecksum,
        if_generation_match: i64,
    ) -> Result<Conditional<(u64, i64)>, ReplicateError> {
        if self.parts.applies(size) {
            let copier = PartCopier {
                source: &self.source,
                destination: &self.destination,
                settings: &self.parts,
            };
            // `None`: part names would be too long; copied in one stream.
            if let Some(copied) = copier
                .copy(key, name, version, size, checksum, if_generation_match)
                .await?
            {
                return Ok(copied.map(|object| (size, object.generation)));
            }
        }
        let object = match self.source.open(key, version, None).await? {
            Conditional::Done(object) => object,
            Conditional::LookAgain(changed) => return Ok(Conditional::LookAgain(changed)),
        };
        let bookkeeping = reconcile::copy_metadata(
            self.source.name(),
            key,
            object.etag.as_deref(),
            object.version_id.as_deref(),
        );
        let bytes = object.size;
        let written = self
            .destination
            .write(name, object, bookkeeping, if_generation_match)
            .await?;
        Ok(written.map(|object| (bytes, object.generation)))
    }
}
