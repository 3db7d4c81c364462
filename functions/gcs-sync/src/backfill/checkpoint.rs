//! A run's state, kept in the destination bucket as an empty object's metadata
//! (`<prefix>.crossfed/backfill/<run>`), written under a generation precondition so that
//! two invocations of one run cannot both go on.

use std::collections::HashMap;

use serde::Serialize;

use crate::backfill::error::BackfillError;
use crate::conditional::Conditional;
use crate::counts::Counts;
use crate::gcs::DestinationBucket;

/// Where checkpoints live, below the destination prefix.
pub const CHECKPOINT_DIR: &str = ".crossfed/backfill/";
/// gcs-sync's own bookkeeping below the destination prefix (checkpoints).
pub use crossfed_kit::sync_areas::CHECKPOINT_AREA;

/// A run's state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Checkpoint {
    pub run: String,
    pub bucket: String,
    pub prefix: String,
    /// Every key up to and including this one is done.
    pub after: Option<String>,
    pub done: bool,
    pub invocations: u64,
    /// Invocations in a row that ended without the position advancing.
    pub stalled: u64,
    /// Source keys covered.
    pub examined: u64,
    #[serde(flatten)]
    pub counts: Counts,
    /// Generation of the checkpoint object (not stored).
    #[serde(skip)]
    generation: i64,
}

impl Checkpoint {
    /// A new run `run` over `prefix` of `bucket`, not yet saved.
    pub fn start(run: String, bucket: &str, prefix: &str) -> Self {
        Checkpoint {
            run,
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
            ..Checkpoint::default()
        }
    }

    fn to_metadata(&self) -> Vec<(String, String)> {
        let c = &self.counts;
        let mut m = vec![
            ("run", self.run.clone()),
            ("bucket", self.bucket.clone()),
            ("prefix", self.prefix.clone()),
            ("done", self.done.to_string()),
            ("invocations", self.invocations.to_string()),
            ("stalled", self.stalled.to_string()),
            ("examined", self.examined.to_string()),
            ("copied", c.copied.to_string()),
            ("bytes", c.bytes.to_string()),
            ("deleted", c.deleted.to_string()),
            ("skipped", c.skipped.to_string()),
            ("foreign", c.foreign.to_string()),
            ("failed", c.failed.to_string()),
        ];
        if let Some(after) = &self.after {
            m.push(("after", after.clone()));
        }
        m.into_iter()
            .map(|(k, v)| (format!("x-crossfed-backfill-{k}"), v))
            .collect()
    }

    fn from_metadata(generation: i64, m: &HashMap<String, String>) -> Option<Self> {
        let get = |k: &str| m.get(&format!("x-crossfed-backfill-{k}")).cloned();
        let num = |k: &str| get(k).and_then(|v| v.parse().ok()).unwrap_or(0);
        Some(Checkpoint {
            run: get("run")?,
            bucket: get("bucket")?,
            prefix: get("prefix").unwrap_or_default(),
            after: get("after"),
            done: get("done").as_deref() == Some("true"),
            invocations: num("invocations"),
            stalled: num("stalled"),
            examined: num("examined"),
            counts: Counts {
                copied: num("copied"),
                bytes: num("bytes"),
                deleted: num("deleted"),
                skipped: num("skipped"),
                foreign: num("foreign"),
                failed: num("failed"),
            },
            generation,
        })
    }

    /// The checkpoint's object name.
    fn name(destination: &DestinationBucket, run: &str) -> String {
        format!(
            "{}{CHECKPOINT_DIR}{run}",
            destination.destination().prefix()
        )
    }

    /// Reads run `run` of a backfill of `source_bucket`.
    pub async fn load(
        destination: &DestinationBucket,
        source_bucket: &str,
        run: &str,
    ) -> Result<Self, BackfillError> {
        Self::find(destination, source_bucket, run)
            .await?
            .ok_or_else(|| {
                BackfillError::Request(format!(
                    "backfill run {run} has no checkpoint ({}): start a new run",
                    Self::name(destination, run)
                ))
            })
    }

    /// Reads run `run` of a backfill of `source_bucket`, if it was started.
    pub async fn find(
        destination: &DestinationBucket,
        source_bucket: &str,
        run: &str,
    ) -> Result<Option<Self>, BackfillError> {
        if !is_run_id(run) {
            return Err(BackfillError::Request(format!(
                "invalid backfill run id {run:?}"
            )));
        }
        let name = Self::name(destination, run);
        let Some((generation, metadata)) = destination.read_checkpoint(&name).await? else {
            return Ok(None);
        };
        let state = Checkpoint::from_metadata(generation, &metadata).ok_or_else(|| {
            BackfillError::Request(format!("{name} is not a backfill checkpoint"))
        })?;
        if state.bucket != source_bucket {
            return Err(BackfillError::Request(format!(
                "backfill run {run} is for bucket {:?}, but this function replicates \
                 {source_bucket:?} (SYNC_SOURCE_BUCKET); start a new run",
                state.bucket,
            )));
        }
        Ok(Some(state))
    }

    /// Writes the state, on condition that nobody else did since it was read or written.
    pub async fn save(&mut self, destination: &DestinationBucket) -> Result<(), BackfillError> {
        let name = Self::name(destination, &self.run);
        match destination
            .write_checkpoint(&name, self.to_metadata(), self.generation)
            .await?
        {
            Conditional::Done(generation) => {
                self.generation = generation;
                Ok(())
            }
            Conditional::LookAgain(_) => Err(BackfillError::Raced(name)),
        }
    }
}

/// Whether `run` can name a run (and its checkpoint object).
fn is_run_id(run: &str) -> bool {
    !run.is_empty() && run.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// The id of a run started by the invocation `request_id` (Lambda's request id, which an
/// asynchronous retry keeps, so that a retried start resumes its run); a fresh
/// time-ordered id when there is none.
pub fn run_id(request_id: &str) -> String {
    if is_run_id(request_id) && request_id.len() <= 64 {
        return request_id.to_string();
    }
    new_run_id()
}

/// A fresh run id: time-ordered hex, unique enough per function.
fn new_run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("{nanos:x}-{:x}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_round_trip() {
        let state = Checkpoint {
            run: "r1".into(),
            bucket: "b".into(),
            prefix: "p/".into(),
            after: Some("p/ü k".into()),
            invocations: 2,
            stalled: 1,
            counts: Counts {
                copied: 7,
                foreign: 2,
                ..Counts::default()
            },
            ..Checkpoint::default()
        };
        let m: HashMap<String, String> = state.to_metadata().into_iter().collect();
        let back = Checkpoint::from_metadata(9, &m).unwrap();
        assert_eq!(back.generation, 9);
        assert_eq!(
            Checkpoint {
                generation: 0,
                ..back
            },
            state
        );
        assert!(Checkpoint::from_metadata(1, &HashMap::new()).is_none());
        assert!(CHECKPOINT_DIR.starts_with(CHECKPOINT_AREA));
    }

    #[test]
    fn run_ids_come_from_the_request_id() {
        let request = "8476a536-e9f4-11e8-9739-2dfe598c3fcd";
        assert_eq!(run_id(request), request);
        for bad in ["", "../x", "a/b", &"x".repeat(65)] {
            let id = run_id(bad);
            assert!(is_run_id(&id) && id != bad, "{bad}: {id}");
        }
    }
}
