//! Settings from the environment. Every error says which variable to fix and how.

use std::time::Duration;

use crossfed_kit::endpoint::{self, STORAGE_GRPC_ENV, STORAGE_HTTP_ENV};
use crossfed_kit::{Env, SettingsError};

use crate::batch::Limits;
use crate::destination::Destination;
use crate::parts::PartSettings;
use crate::reconcile::DeleteMode;
use crate::retry_delay::{self, DEFAULT_DELAYS};

const MIB: usize = 1024 * 1024;
/// Smallest part (Cloud Storage's upload quantum).
const MIN_PART: u64 = 256 * 1024;
/// Cloud Storage and S3 objects are at most 5 TiB.
const MAX_OBJECT: u64 = 5 << 40;
/// No longer read: one-stream copies are one request, never chunked.
const OBSOLETE_UPLOAD_CHUNK: &str = "SYNC_UPLOAD_CHUNK_BYTES";

/// Retries of 5xx / 429 / I/O errors, for both clouds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retries {
    /// `SYNC_RETRY_ATTEMPTS` (default 5, including the first).
    pub attempts: u32,
    /// `SYNC_RETRY_INITIAL_BACKOFF_MS` (default 200).
    pub initial_backoff: Duration,
    /// `SYNC_RETRY_MAX_BACKOFF_MS` (default 5 000).
    pub max_backoff: Duration,
}

impl Default for Retries {
    fn default() -> Self {
        Retries {
            attempts: 5,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
        }
    }
}

/// Everything the function reads from its environment (besides credentials).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// `SYNC_SOURCE_BUCKET` (required): the only bucket whose events are applied.
    pub source_bucket: String,
    /// `SYNC_DESTINATION` (required).
    pub destination: Destination,
    /// `SYNC_DELETE_MODE`: `delete` (default) or `keep`.
    pub delete_mode: DeleteMode,
    pub limits: Limits,
    pub retries: Retries,
    /// `SYNC_RETRY_DELAYS_S` (default `30,120,600`): seconds before a failed SQS message is
    /// tried again, by receive count (the last repeating).
    pub retry_delays: Vec<Duration>,
    /// `SYNC_PART_THRESHOLD_BYTES` (default 1 GiB): larger objects are copied in parts of
    /// `SYNC_PART_BYTES` (default 8 MiB, 256 KiB to 256 MiB), `SYNC_PART_CONCURRENCY`
    /// (default 4, 1 to 16) at a time (see [`crate::parts`]); smaller ones in one stream.
    pub parts: PartSettings,
    /// Settings that are accepted but have no effect, to be logged at the cold start.
    pub warnings: Vec<String>,
    /// `STORAGE_EMULATOR_HOST`: the JSON API endpoint (see [`endpoint::google_override`]).
    pub storage_endpoint: Option<String>,
    /// `STORAGE_EMULATOR_HOST_GRPC`: the gRPC endpoint.
    pub grpc_endpoint: Option<String>,
}

impl Settings {
    /// Reads and checks every variable; all problems are reported together.
    pub fn from_env(env: &Env) -> Result<Self, SettingsError> {
        let mut r = env.reader();
        let source_bucket = r.required_parse(
            "SYNC_SOURCE_BUCKET",
            "set it to the name of the S3 bucket whose notifications this function receives",
            |v| {
                crossfed_kit::bucket_name::s3(v).map(|()| v.to_string()).map_err(|reason| {
                    format!("SYNC_SOURCE_BUCKET={v:?} is invalid: {reason}; set it to the bare bucket name (no s3://)")
                })
            },
        );
        let destination = r.required_parse(
            "SYNC_DESTINATION",
            "set it to gs://BUCKET or gs://BUCKET/PREFIX",
            |v| v.parse::<Destination>().map_err(|e| e.to_string()),
        );
        let delete_mode = match r.optional("SYNC_DELETE_MODE").as_deref() {
            None | Some("delete") => DeleteMode::Delete,
            Some("keep") => DeleteMode::Keep,
            Some(other) => {
                r.problem(format!(
                    "SYNC_DELETE_MODE={other:?} is invalid: use delete (remove copies of removed objects) or keep"
                ));
                DeleteMode::Delete
            }
        };
        let ms = Duration::from_millis;
        let limits = Limits {
            concurrency: r.number("SYNC_CONCURRENCY", 4, 1..=64),
            start_margin: ms(r.number("SYNC_DEADLINE_MARGIN_MS", 10_000, 0..=900_000)),
            abort_margin: ms(r.number("SYNC_ABORT_MARGIN_MS", 2_000, 0..=900_000)),
        };
        r.not_above(
            ("SYNC_ABORT_MARGIN_MS", limits.abort_margin),
            ("SYNC_DEADLINE_MARGIN_MS", limits.start_margin),
        );
        let retries = Retries {
            attempts: r.number("SYNC_RETRY_ATTEMPTS", 5, 1..=20),
            initial_backoff: ms(r.number("SYNC_RETRY_INITIAL_BACKOFF_MS", 200, 1..=60_000)),
            max_backoff: ms(r.number("SYNC_RETRY_MAX_BACKOFF_MS", 5_000, 1..=300_000)),
        };
        r.not_above(
            ("SYNC_RETRY_INITIAL_BACKOFF_MS", retries.initial_backoff),
            ("SYNC_RETRY_MAX_BACKOFF_MS", retries.max_backoff),
        );
        let mut warnings = Vec::new();
        if r.optional(OBSOLETE_UPLOAD_CHUNK).is_some() {
            warnings.push(format!(
                "{OBSOLETE_UPLOAD_CHUNK} is ignored: objects up to SYNC_PART_THRESHOLD_BYTES are \
                 streamed in one request without buffering, larger ones copied in parts of \
                 SYNC_PART_BYTES; remove the variable"
            ));
        }
        let default_parts = PartSettings::default();
        let parts = PartSettings {
            threshold: r.number(
                "SYNC_PART_THRESHOLD_BYTES",
                default_parts.threshold,
                MIN_PART..=MAX_OBJECT,
            ),
            part_bytes: r.number(
                "SYNC_PART_BYTES",
                default_parts.part_bytes,
                MIN_PART..=256 * MIB as u64,
            ),
            concurrency: r.number("SYNC_PART_CONCURRENCY", default_parts.concurrency, 1..=16),
        };
        r.not_above(
            ("SYNC_PART_BYTES", parts.part_bytes),
            ("SYNC_PART_THRESHOLD_BYTES", parts.threshold),
        );
        let retry_delays = r
            .parse("SYNC_RETRY_DELAYS_S", retry_delay::parse_delays)
            .unwrap_or_else(|| DEFAULT_DELAYS.to_vec());
        let storage_endpoint = endpoint::google_override(&mut r, STORAGE_HTTP_ENV);
        let grpc_endpoint = endpoint::google_override(&mut r, STORAGE_GRPC_ENV);
        let required = source_bucket.zip(destination);
        r.finish_some(required.map(|(source_bucket, destination)| Settings {
            source_bucket,
            destination,
            delete_mode,
            limits,
            retries,
            retry_delays,
            parts,
            warnings,
            storage_endpoint,
            grpc_endpoint,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `vars` over a `SYNC_SOURCE_BUCKET=src` default (unless `vars` is empty).
    fn settings(vars: &[(&str, &str)]) -> Result<Settings, String> {
        let defaults: &[(&str, &str)] = if vars.is_empty() {
            &[]
        } else {
            &[("SYNC_SOURCE_BUCKET", "src")]
        };
        let pairs = defaults.iter().chain(vars).copied();
        Settings::from_env(&Env::from_pairs(pairs)).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults() {
        let s = settings(&[
            ("SYNC_SOURCE_BUCKET", "src"),
            ("SYNC_DESTINATION", "gs://bucket/p"),
        ])
        .unwrap();
        assert_eq!(s.source_bucket, "src");
        assert_eq!(s.destination.prefix(), "p/");
        assert_eq!(s.retry_delays, DEFAULT_DELAYS);
        assert_eq!(s.delete_mode, DeleteMode::Delete);
        assert_eq!(s.limits, Limits::default());
        assert_eq!(s.retries, Retries::default());
        assert_eq!(s.parts, PartSettings::default());
        assert_eq!(s.parts.part_bytes, 8 * MIB as u64);
        assert_eq!(s.parts.threshold, 1024 * MIB as u64);
        assert!(s.warnings.is_empty());
        assert_eq!((s.storage_endpoint, s.grpc_endpoint), (None, None));
    }

    #[test]
    fn overrides() {
        let s = settings(&[
            ("SYNC_SOURCE_BUCKET", "my.source-bucket"),
            ("SYNC_DESTINATION", "gs://bucket"),
            ("SYNC_RETRY_DELAYS_S", "5,60"),
            ("SYNC_DELETE_MODE", "keep"),
            ("SYNC_CONCURRENCY", "2"),
            ("SYNC_DEADLINE_MARGIN_MS", "500"),
            ("SYNC_ABORT_MARGIN_MS", "100"),
            ("SYNC_RETRY_ATTEMPTS", "3"),
            ("SYNC_UPLOAD_CHUNK_BYTES", "524288"),
            ("SYNC_PART_THRESHOLD_BYTES", "2097152"),
            ("SYNC_PART_BYTES", "1048576"),
            ("SYNC_PART_CONCURRENCY", "2"),
            ("STORAGE_EMULATOR_HOST", "127.0.0.2:80"),
            ("STORAGE_EMULATOR_HOST_GRPC", "http://127.0.0.1:9"),
            ("CROSSFED_ALLOW_LOCAL_ENDPOINTS", "1"),
        ])
        .unwrap();
        assert_eq!(s.delete_mode, DeleteMode::Keep);
        assert_eq!(
            s.retry_delays,
            [Duration::from_secs(5), Duration::from_secs(60)]
        );
        assert_eq!(s.limits.concurrency, 2);
        assert_eq!(s.limits.start_margin, Duration::from_millis(500));
        assert_eq!(s.retries.attempts, 3);
        assert_eq!(
            s.parts,
            PartSettings {
                threshold: 2 * MIB as u64,
                part_bytes: MIB as u64,
                concurrency: 2
            }
        );
        assert_eq!(s.warnings.len(), 1);
        assert!(s.warnings[0].contains("SYNC_UPLOAD_CHUNK_BYTES is ignored"));
        assert_eq!(s.storage_endpoint.as_deref(), Some("http://127.0.0.2:80"));
        assert_eq!(s.grpc_endpoint.as_deref(), Some("http://127.0.0.1:9"));
    }

    #[test]
    fn errors_say_what_to_fix() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[], "SYNC_SOURCE_BUCKET is not set"),
            (
                &[("SYNC_SOURCE_BUCKET", "s3://src")],
                "SYNC_SOURCE_BUCKET=\"s3://src\" is invalid",
            ),
            (&[("SYNC_SOURCE_BUCKET", "Src")], "SYNC_SOURCE_BUCKET"),
            (
                &[("SYNC_SOURCE_BUCKET", "src")],
                "SYNC_DESTINATION is not set",
            ),
            (
                &[
                    ("SYNC_SOURCE_BUCKET", "src"),
                    ("SYNC_DESTINATION", "gs://bucket"),
                    ("SYNC_RETRY_DELAYS_S", "30,x"),
                ],
                "SYNC_RETRY_DELAYS_S",
            ),
            (&[("SYNC_DESTINATION", "s3://x")], "gs://BUCKET"),
            (
                &[
                    ("SYNC_DESTINATION", "gs://bucket"),
                    ("SYNC_DELETE_MODE", "purge"),
                ],
                "SYNC_DELETE_MODE",
            ),
            (
                &[
                    ("SYNC_DESTINATION", "gs://bucket"),
                    ("SYNC_CONCURRENCY", "0"),
                ],
                "SYNC_CONCURRENCY",
            ),
            (
                &[
                    ("SYNC_DESTINATION", "gs://bucket"),
                    ("SYNC_PART_THRESHOLD_BYTES", "1k"),
                ],
                "SYNC_PART_THRESHOLD_BYTES `1k`",
            ),
            (
                &[
                    ("SYNC_DESTINATION", "gs://bucket"),
                    ("SYNC_PART_THRESHOLD_BYTES", "1048576"),
                    ("SYNC_PART_BYTES", "2097152"),
                ],
                "SYNC_PART_BYTES",
            ),
            (
                &[
                    ("SYNC_DESTINATION", "gs://bucket"),
                    ("SYNC_PART_BYTES", "1024"),
                ],
                "SYNC_PART_BYTES `1024`",
            ),
            (
                &[
                    ("SYNC_DESTINATION", "gs://bucket"),
                    ("SYNC_PART_CONCURRENCY", "0"),
                ],
                "SYNC_PART_CONCURRENCY `0`",
            ),
            (
                &[
                    ("SYNC_DESTINATION", "gs://bucket"),
                    ("SYNC_DEADLINE_MARGIN_MS", "10"),
                    ("SYNC_ABORT_MARGIN_MS", "20"),
                ],
                "SYNC_ABORT_MARGIN_MS",
            ),
        ];
        for (vars, want) in cases {
            let err = settings(vars).unwrap_err();
            assert!(err.contains(want), "{vars:?}: {err}");
        }
    }

    #[test]
    fn every_problem_is_listed_at_once() {
        let err = settings(&[
            ("SYNC_DELETE_MODE", "purge"),
            ("SYNC_CONCURRENCY", "0"),
            ("SYNC_RETRY_ATTEMPTS", "x"),
            ("STORAGE_EMULATOR_HOST", "127.0.0.1:4443"),
        ])
        .unwrap_err();
        for want in [
            "SYNC_DESTINATION is not set",
            "SYNC_DELETE_MODE",
            "SYNC_CONCURRENCY `0`",
            "SYNC_RETRY_ATTEMPTS `x`",
            "STORAGE_EMULATOR_HOST `127.0.0.1:4443`",
        ] {
            assert!(err.contains(want), "{want}: {err}");
        }
    }
}
