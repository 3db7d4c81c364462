//! Settings from the environment. Every error says which variable to fix and how.

use std::time::Duration;

use crate::destination::Destination;
use crate::parts::PartSettings;
use crate::replicate::DeleteMode;

const MIB: usize = 1024 * 1024;
/// Resumable upload chunks are multiples of 256 KiB.
const UPLOAD_QUANTUM: usize = 256 * 1024;

/// Concurrency and the invocation deadline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// `SYNC_CONCURRENCY` (default 4): messages (of different keys) in flight.
    pub concurrency: usize,
    /// `SYNC_DEADLINE_MARGIN_MS` (default 10 000): no message starts with less time left.
    pub start_margin: Duration,
    /// `SYNC_ABORT_MARGIN_MS` (default 2 000): work still running this close to the deadline
    /// is abandoned (an unfinished upload never becomes an object) and reported as failed.
    pub abort_margin: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            concurrency: 4,
            start_margin: Duration::from_secs(10),
            abort_margin: Duration::from_secs(2),
        }
    }
}

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
    /// `SYNC_DESTINATION` (required).
    pub destination: Destination,
    /// `SYNC_DELETE_MODE`: `delete` (default) or `keep`.
    pub delete_mode: DeleteMode,
    pub limits: Limits,
    pub retries: Retries,
    /// `SYNC_UPLOAD_CHUNK_BYTES` (default 8 MiB, a multiple of 256 KiB): objects this large
    /// or larger use resumable uploads in chunks of this size; smaller ones one request.
    /// Memory per upload in flight is about this much.
    pub upload_chunk: usize,
    /// `SYNC_PART_BYTES`, `SYNC_PART_CONCURRENCY`: copies of large objects in parts.
    pub parts: PartSettings,
    /// `STORAGE_EMULATOR_HOST`: the JSON API endpoint (`host:port` or URL).
    pub storage_endpoint: Option<String>,
    /// `STORAGE_EMULATOR_HOST_GRPC`: the gRPC endpoint (`host:port` or URL).
    pub grpc_endpoint: Option<String>,
}

impl Settings {
    pub fn from_env() -> Result<Self, String> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let get = |k: &str| {
            get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let destination = get("SYNC_DESTINATION")
            .ok_or("SYNC_DESTINATION is not set: set it to gs://BUCKET or gs://BUCKET/PREFIX")?
            .parse::<Destination>()
            .map_err(|e| e.to_string())?;
        let delete_mode = match get("SYNC_DELETE_MODE").as_deref() {
            None | Some("delete") => DeleteMode::Delete,
            Some("keep") => DeleteMode::Keep,
            Some(other) => {
                return Err(format!(
                    "SYNC_DELETE_MODE={other:?} is invalid: use delete (remove copies of removed objects) or keep"
                ));
            }
        };
        let number = |key: &str, default: u64, min: u64, max: u64| -> Result<u64, String> {
            let Some(raw) = get(key) else {
                return Ok(default);
            };
            raw.parse::<u64>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(|| {
                    format!("{key}={raw:?} is invalid: use a whole number from {min} to {max}")
                })
        };
        let ms = Duration::from_millis;
        let limits = Limits {
            concurrency: number("SYNC_CONCURRENCY", 4, 1, 64)? as usize,
            start_margin: ms(number("SYNC_DEADLINE_MARGIN_MS", 10_000, 0, 900_000)?),
            abort_margin: ms(number("SYNC_ABORT_MARGIN_MS", 2_000, 0, 900_000)?),
        };
        if limits.abort_margin > limits.start_margin {
            return Err("SYNC_ABORT_MARGIN_MS must not exceed SYNC_DEADLINE_MARGIN_MS".into());
        }
        let retries = Retries {
            attempts: number("SYNC_RETRY_ATTEMPTS", 5, 1, 20)? as u32,
            initial_backoff: ms(number("SYNC_RETRY_INITIAL_BACKOFF_MS", 200, 1, 60_000)?),
            max_backoff: ms(number("SYNC_RETRY_MAX_BACKOFF_MS", 5_000, 1, 300_000)?),
        };
        if retries.initial_backoff > retries.max_backoff {
            return Err(
                "SYNC_RETRY_INITIAL_BACKOFF_MS must not exceed SYNC_RETRY_MAX_BACKOFF_MS".into(),
            );
        }
        let upload_chunk = number(
            "SYNC_UPLOAD_CHUNK_BYTES",
            8 * MIB as u64,
            UPLOAD_QUANTUM as u64,
            256 * MIB as u64,
        )? as usize;
        if !upload_chunk.is_multiple_of(UPLOAD_QUANTUM) {
            return Err(format!(
                "SYNC_UPLOAD_CHUNK_BYTES={upload_chunk} is invalid: use a multiple of {UPLOAD_QUANTUM} (256 KiB)"
            ));
        }
        let parts = PartSettings::from_lookup(get)?;
        Ok(Settings {
            destination,
            delete_mode,
            limits,
            retries,
            upload_chunk,
            parts,
            storage_endpoint: get("STORAGE_EMULATOR_HOST").map(with_scheme),
            grpc_endpoint: get("STORAGE_EMULATOR_HOST_GRPC").map(with_scheme),
        })
    }
}

/// `host:port` -> `http://host:port`; URLs unchanged.
fn with_scheme(value: String) -> String {
    if value.contains("://") {
        value
    } else {
        format!("http://{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults() {
        let s = settings(&[("SYNC_DESTINATION", "gs://bucket/p")]).unwrap();
        assert_eq!(s.destination.prefix(), "p/");
        assert_eq!(s.delete_mode, DeleteMode::Delete);
        assert_eq!(s.limits, Limits::default());
        assert_eq!(s.retries, Retries::default());
        assert_eq!(s.upload_chunk, 8 * MIB);
        assert_eq!((s.storage_endpoint, s.grpc_endpoint), (None, None));
    }

    #[test]
    fn overrides() {
        let s = settings(&[
            ("SYNC_DESTINATION", "gs://bucket"),
            ("SYNC_DELETE_MODE", "keep"),
            ("SYNC_CONCURRENCY", "2"),
            ("SYNC_DEADLINE_MARGIN_MS", "500"),
            ("SYNC_ABORT_MARGIN_MS", "100"),
            ("SYNC_RETRY_ATTEMPTS", "3"),
            ("SYNC_UPLOAD_CHUNK_BYTES", "524288"),
            ("STORAGE_EMULATOR_HOST", "127.0.0.2:80"),
            ("STORAGE_EMULATOR_HOST_GRPC", "http://127.0.0.1:9"),
        ])
        .unwrap();
        assert_eq!(s.delete_mode, DeleteMode::Keep);
        assert_eq!(s.limits.concurrency, 2);
        assert_eq!(s.limits.start_margin, Duration::from_millis(500));
        assert_eq!(s.retries.attempts, 3);
        assert_eq!(s.upload_chunk, 512 * 1024);
        assert_eq!(s.storage_endpoint.as_deref(), Some("http://127.0.0.2:80"));
        assert_eq!(s.grpc_endpoint.as_deref(), Some("http://127.0.0.1:9"));
    }

    #[test]
    fn errors_say_what_to_fix() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[], "SYNC_DESTINATION is not set"),
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
                    ("SYNC_UPLOAD_CHUNK_BYTES", "300000"),
                ],
                "256 KiB",
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
}
