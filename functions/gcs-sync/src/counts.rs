//! What was done, counted the same way for a batch, a direct invocation and a backfill run:
//! in the response, the log line and the CloudWatch metrics.

use std::time::Duration;

use crossfed_kit::metrics::{Metrics, Unit};
use serde::Serialize;

use crate::reconcile::SkipReason;
use crate::replicate::Outcome;

/// Changes applied, by outcome.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub copied: u64,
    /// Bytes copied.
    pub bytes: u64,
    pub deleted: u64,
    pub skipped: u64,
    /// Objects at a copy's name that gcs-sync did not write as that key's copy: left alone.
    pub foreign: u64,
    pub failed: u64,
}

impl Counts {
    /// Counts one applied change.
    pub fn add(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Copied { bytes, .. } => {
                self.copied += 1;
                self.bytes += bytes;
            }
            Outcome::Deleted { .. } => self.deleted += 1,
            Outcome::Skipped(SkipReason::Foreign) => self.foreign += 1,
            Outcome::Skipped(_) => self.skipped += 1,
        }
    }

    /// Adds `other`'s counts.
    pub fn add_all(&mut self, other: &Counts) {
        self.copied += other.copied;
        self.bytes += other.bytes;
        self.deleted += other.deleted;
        self.skipped += other.skipped;
        self.foreign += other.foreign;
        self.failed += other.failed;
    }

    /// The counts and the replication lag of each copy or removal as CloudWatch metrics
    /// (Embedded Metric Format).
    pub fn metrics(&self, lags: &[Duration]) -> Metrics {
        Metrics::new("gcs-sync")
            .count("ObjectsCopied", self.copied)
            .with("BytesCopied", self.bytes as f64, Unit::Bytes)
            .count("ObjectsDeleted", self.deleted)
            .count("ObjectsSkipped", self.skipped)
            .count("ObjectsForeign", self.foreign)
            .count("ObjectsFailed", self.failed)
            .values(
                "ReplicationLag",
                lags.iter().map(|d| d.as_secs_f64() * 1000.0).collect(),
                Unit::Milliseconds,
            )
    }

    /// Emits the metrics and logs the counts as fields (queryable numbers in JSON logs).
    pub fn log(&self, lags: &[Duration], message: &str) {
        self.metrics(lags).emit();
        tracing::info!(
            copied = self.copied,
            bytes = self.bytes,
            deleted = self.deleted,
            skipped = self.skipped,
            foreign = self.foreign,
            failed = self.failed,
            "{message}"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;

    #[test]
    fn metrics_carry_every_count() {
        let counts = Counts {
            copied: 2,
            bytes: 1024,
            deleted: 1,
            skipped: 3,
            foreign: 5,
            failed: 4,
        };
        let lags = [Duration::from_millis(1500), Duration::from_millis(20)];
        let v = counts.metrics(&lags).to_json(SystemTime::UNIX_EPOCH);
        assert_eq!(v["ReplicationLag"], serde_json::json!([1500.0, 20.0]));
        assert_eq!(v["Function"], "gcs-sync");
        let got: Vec<f64> = [
            "ObjectsCopied",
            "BytesCopied",
            "ObjectsDeleted",
            "ObjectsSkipped",
            "ObjectsForeign",
            "ObjectsFailed",
        ]
        .iter()
        .map(|k| v[*k].as_f64().unwrap())
        .collect();
        assert_eq!(got, [2.0, 1024.0, 1.0, 3.0, 5.0, 4.0]);
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Metrics"][1]["Unit"],
            "Bytes"
        );
    }
}
