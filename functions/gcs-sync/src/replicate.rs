//! Applying one object change: read the copy's state, decide, act under a generation
//! precondition; when another invocation got there first, re-read and decide again.

use crate::event::{ChangeKind, ObjectChange};
use crate::gcs_writer::{Conditional, GcsError, GcsWriter};
use crate::ordering::{self, Decision, SkipReason};
use crate::parts::{self, Copied, PartCopier, PartSettings, PartsError};
use crate::s3_source::{self, Opened, SourceError};

/// Attempts when generation preconditions keep failing (concurrent writers).
const MAX_CONFLICTS: usize = 5;

/// `SYNC_DELETE_MODE`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeleteMode {
    /// Remove the copy when the source is removed.
    #[default]
    Delete,
    /// Keep copies of removed objects.
    Keep,
}

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
    #[error("s3://{bucket}/{key} cannot be copied: {reason}")]
    Name {
        bucket: String,
        key: String,
        reason: String,
    },
    #[error("gs://{bucket}/{name} kept changing under us ({MAX_CONFLICTS} precondition failures)")]
    Contended { bucket: String, name: String },
}

/// S3 -> Cloud Storage replication of single changes.
#[derive(Clone, Debug)]
pub struct Replicator {
    s3: aws_sdk_s3::Client,
    gcs: GcsWriter,
    delete_mode: DeleteMode,
    parts: PartSettings,
}

impl Replicator {
    pub fn new(s3: aws_sdk_s3::Client, gcs: GcsWriter, delete_mode: DeleteMode) -> Self {
        Replicator {
            s3,
            gcs,
            delete_mode,
            parts: PartSettings::default(),
        }
    }

    /// Objects larger than `parts.part_bytes` are copied in parts (see [`crate::parts`]).
    pub fn with_parts(mut self, parts: PartSettings) -> Self {
        self.parts = parts;
        self
    }

    pub fn delete_mode(&self) -> DeleteMode {
        self.delete_mode
    }

    pub fn s3(&self) -> &aws_sdk_s3::Client {
        &self.s3
    }

    pub fn gcs(&self) -> &GcsWriter {
        &self.gcs
    }

    /// Applies `change`. Redelivered and out-of-date events are no-ops.
    pub async fn apply(&self, change: &ObjectChange) -> Result<Outcome, ReplicateError> {
        if change.kind == ChangeKind::Other {
            return Ok(Outcome::Skipped(SkipReason::NotReplicated));
        }
        if matches!(change.kind, ChangeKind::Removed { .. }) && self.delete_mode == DeleteMode::Keep
        {
            return Ok(Outcome::Skipped(SkipReason::DeletesKept));
        }
        let destination = self.gcs.destination();
        let name = destination
            .object_name(&change.key)
            .map_err(|reason| ReplicateError::Name {
                bucket: change.bucket.clone(),
                key: change.key.clone(),
                reason,
            })?;
        for _ in 0..MAX_CONFLICTS {
            let current = self.gcs.current(&name).await?;
            match ordering::decide(change, current.as_ref()) {
                Decision::Skip(reason) => {
                    if reason == SkipReason::AlreadyCurrent {
                        // A copy finished by an invocation cut short before its cleanup.
                        parts::remove_leftovers(&self.gcs, &self.parts, change).await;
                    }
                    return Ok(Outcome::Skipped(reason));
                }
                Decision::Delete { generation } => {
                    if let Conditional::Done(()) = self.gcs.delete(&name, generation).await? {
                        return Ok(Outcome::Deleted { name });
                    }
                }
                Decision::Write {
                    if_generation_match,
                } => {
                    let source = match s3_source::open(&self.s3, change).await? {
                        Opened::Found(source) => *source,
                        Opened::Missing => return Ok(Outcome::Skipped(SkipReason::SourceMissing)),
                        Opened::Changed => return Ok(Outcome::Skipped(SkipReason::SourceChanged)),
                    };
                    let metadata = ordering::copy_metadata(
                        change,
                        source.etag.as_deref(),
                        source.version_id.as_deref(),
                    );
                    let bytes = source.size;
                    let written = if self.parts.applies(bytes) {
                        let copier = PartCopier {
                            s3: &self.s3,
                            gcs: &self.gcs,
                            settings: &self.parts,
                        };
                        match copier
                            .copy(change, &name, source, metadata.clone(), if_generation_match)
                            .await?
                        {
                            Ok(Copied::Done(written)) => *written,
                            Ok(Copied::SourceMissing) => {
                                return Ok(Outcome::Skipped(SkipReason::SourceMissing));
                            }
                            Ok(Copied::SourceChanged) => {
                                return Ok(Outcome::Skipped(SkipReason::SourceChanged));
                            }
                            Err(source) => {
                                self.gcs
                                    .write(&name, *source, metadata, if_generation_match)
                                    .await?
                            }
                        }
                    } else {
                        self.gcs
                            .write(&name, source, metadata, if_generation_match)
                            .await?
                    };
                    if let Conditional::Done(object) = written {
                        return Ok(Outcome::Copied {
                            name,
                            bytes,
                            generation: object.generation,
                        });
                    }
                }
            }
            tracing::info!(object = %name, "precondition failed (concurrent change); deciding again");
        }
        Err(ReplicateError::Contended {
            bucket: destination.bucket().to_string(),
            name,
        })
    }
}
