//! Applying one object change. The event only names the key: the copy is made to follow
//! what S3 serves for that key now. Read the copy's state, ask S3, decide, act under a
//! generation precondition (and `If-Match` on S3); when either side changed in between,
//! look again. Objects larger than `SYNC_PART_THRESHOLD_BYTES` are copied in parts
//! ([`crate::parts`]), under the same rules; smaller ones in one stream.

use crate::event::{ChangeKind, ObjectChange};
use crate::gcs_writer::{Conditional, GcsError, GcsWriter};
use crate::parts::{self, Copied, PartCopier, PartSettings, PartsError};
use crate::reconcile::{self, Decision, DeleteMode, SkipReason};
use crate::s3_error::SourceError;
use crate::s3_source::{self, Opened};
use crate::s3_state::{self, SourceState, SourceVersion};

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
    s3: aws_sdk_s3::Client,
    gcs: GcsWriter,
    source_bucket: String,
    delete_mode: DeleteMode,
    parts: PartSettings,
}

impl Replicator {
    /// Replicates `source_bucket` (`SYNC_SOURCE_BUCKET`) through `s3` into `gcs`.
    pub fn new(
        s3: aws_sdk_s3::Client,
        gcs: GcsWriter,
        source_bucket: String,
        delete_mode: DeleteMode,
    ) -> Self {
        Replicator {
            s3,
            gcs,
            source_bucket,
            delete_mode,
            parts: PartSettings::default(),
        }
    }

    /// Objects larger than `parts.threshold` are copied in parts (see [`crate::parts`]).
    pub fn with_parts(mut self, parts: PartSettings) -> Self {
        self.parts = parts;
        self
    }

    /// `SYNC_SOURCE_BUCKET`: the only bucket replicated.
    pub fn source_bucket(&self) -> &str {
        &self.source_bucket
    }

    /// `SYNC_DELETE_MODE`.
    pub fn delete_mode(&self) -> DeleteMode {
        self.delete_mode
    }

    /// The S3 client (the source).
    pub fn s3(&self) -> &aws_sdk_s3::Client {
        &self.s3
    }

    /// The Cloud Storage side (the destination).
    pub fn gcs(&self) -> &GcsWriter {
        &self.gcs
    }

    /// Applies `change`: events for another bucket fail; any create or remove event makes
    /// the copy of its key follow S3 ([`Replicator::sync_key`]).
    pub async fn apply(&self, change: &ObjectChange) -> Result<Outcome, ReplicateError> {
        if change.kind == ChangeKind::Other {
            return Ok(Outcome::Skipped(SkipReason::NotReplicated));
        }
        if change.bucket != self.source_bucket {
            return Err(ReplicateError::ForeignBucket {
                bucket: change.bucket.clone(),
                expected: self.source_bucket.clone(),
            });
        }
        self.sync_key(&change.key).await
    }

    /// Makes the copy of `key` equal to what S3 serves now: a copy of the current object,
    /// or no copy when S3 confirms there is none (unless `SYNC_DELETE_MODE=keep`).
    pub async fn sync_key(&self, key: &str) -> Result<Outcome, ReplicateError> {
        let bucket = &self.source_bucket;
        let destination = self.gcs.destination();
        let name = destination
            .object_name(key)
            .map_err(|reason| ReplicateError::Name {
                bucket: bucket.clone(),
                key: key.to_string(),
                reason,
            })?;
        for _ in 0..MAX_ROUNDS {
            // The copy first, then S3: an action conditioned on this generation can only
            // succeed if nobody acted on a newer picture of S3 in between.
            let copy = self.gcs.current(&name).await?;
            let source = s3_state::current(&self.s3, bucket, key).await?;
            match reconcile::decide(&source, copy.as_ref(), self.delete_mode) {
                Decision::Skip(reason) => {
                    if let (SkipReason::AlreadyCurrent, SourceState::Present { version, size }) =
                        (reason, &source)
                    {
                        // A copy in parts composed by an invocation cut short before its cleanup.
                        parts::remove_leftovers(&self.gcs, &self.parts, key, version, *size).await;
                    }
                    return Ok(Outcome::Skipped(reason));
                }
                Decision::Delete { generation } => {
                    if let Conditional::Done(()) = self.gcs.delete(&name, generation).await? {
                        return Ok(Outcome::Deleted { name });
                    }
                }
                Decision::Write {
                    source: version,
                    if_generation_match,
                } => {
                    let size = match &source {
                        SourceState::Present { size, .. } => *size,
                        SourceState::Absent => 0,
                    };
                    if let Some((bytes, generation)) = self
                        .write(key, &name, &version, size, if_generation_match)
                        .await?
                    {
                        return Ok(Outcome::Copied {
                            name,
                            bytes,
                            generation,
                        });
                    }
                }
            }
            tracing::info!(object = %name, "S3 or the copy changed meanwhile; looking again");
        }
        Err(ReplicateError::Contended {
            bucket: bucket.clone(),
            key: key.to_string(),
            dest_bucket: destination.bucket().to_string(),
            name,
        })
    }

    /// Copies the object S3 serves as `version` (`size` bytes, from the HEAD) to `name`: in
    /// parts when it is large, else one stream. `None`: S3 or the copy changed meanwhile
    /// (404 / 412 on a `GetObject`, or the generation precondition failed), so the caller
    /// looks again; never a reason to skip.
    async fn write(
        &self,
        key: &str,
        name: &str,
        version: &SourceVersion,
        size: u64,
        if_generation_match: i64,
    ) -> Result<Option<(u64, i64)>, ReplicateError> {
        let bucket = &self.source_bucket;
        if self.parts.applies(size) {
            let copier = PartCopier {
                s3: &self.s3,
                gcs: &self.gcs,
                settings: &self.parts,
            };
            match copier
                .copy(bucket, key, name, version, size, if_generation_match)
                .await?
            {
                Some(Copied::Done(written)) => {
                    return Ok(done_generation(*written).map(|g| (size, g)));
                }
                Some(Copied::SourceMissing | Copied::SourceChanged) => {
                    tracing::info!(object = %name, "S3 object changed while copying its parts");
                    return Ok(None);
                }
                // Cannot be copied in parts: one stream.
                None => {}
            }
        }
        let object = match s3_source::open(&self.s3, bucket, key, version).await? {
            Opened::Found(object) => *object,
            // Deleted or overwritten since the HEAD (404 / 412).
            Opened::Missing | Opened::Changed => return Ok(None),
        };
        let metadata = reconcile::copy_metadata(
            bucket,
            key,
            object.etag.as_deref(),
            object.version_id.as_deref(),
        );
        let bytes = object.size;
        let written = self
            .gcs
            .write(name, object, metadata, if_generation_match)
            .await?;
        Ok(done_generation(written).map(|g| (bytes, g)))
    }
}

fn done_generation(written: Conditional<google_cloud_storage::model::Object>) -> Option<i64> {
    match written {
        Conditional::Done(object) => Some(object.generation),
        Conditional::Conflict => None,
    }
}
