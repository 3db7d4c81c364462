//! Configuration from the environment, parsed strictly once at init. Every problem found is
//! reported together, each saying which variable to fix and how.

use std::fmt;
use std::time::Duration;

use crossfed_kit::endpoint::{self, STORAGE_GRPC_ENV, STORAGE_HTTP_ENV, VERTEX_BASE_URL_ENV};
use crossfed_kit::{Env, EnvReader, SettingsError, bucket_name};

/// Default Gemini model.
pub const DEFAULT_MODEL: &str = "gemini-2.5-flash";
/// Default Vertex AI location.
pub const DEFAULT_LOCATION: &str = "us-central1";
const DEFAULT_TOP_N: usize = 10;
const DEFAULT_DRIFT_SAMPLE: usize = 20;
const DEFAULT_VERTEX_TIMEOUT_SECS: u64 = 30;

/// A bucket and a directory-style prefix (`""` or ending in `/`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub bucket: String,
    pub prefix: String,
}

impl Location {
    fn new(bucket: &str, prefix: &str) -> Self {
        let prefix = prefix.trim_matches('/');
        Location {
            bucket: bucket.to_string(),
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
        }
    }
}

/// Which cloud a [`Location`] lives in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cloud {
    S3,
    Gcs,
}

impl Cloud {
    pub fn scheme(self) -> &'static str {
        match self {
            Cloud::S3 => "s3",
            Cloud::Gcs => "gs",
        }
    }
}

/// A location in a cloud, e.g. `s3://bucket/prefix/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloudLocation {
    pub cloud: Cloud,
    pub location: Location,
}

impl fmt::Display for CloudLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}/{}",
            self.cloud.scheme(),
            self.location.bucket,
            self.location.prefix
        )
    }
}

/// An S3 source kept in sync with a GCS destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncPair {
    pub source: Location,
    pub destination: Location,
}

/// Vertex AI `generateContent` settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VertexSettings {
    /// Without a trailing slash, e.g. `https://us-central1-aiplatform.googleapis.com`.
    pub base_url: String,
    pub project: String,
    pub location: String,
    pub model: String,
    pub timeout: Duration,
}

/// Everything the function needs, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub gcs_buckets: Vec<Location>,
    pub s3_buckets: Vec<Location>,
    pub sync_pairs: Vec<SyncPair>,
    pub outputs: Vec<CloudLocation>,
    pub vertex: VertexSettings,
    /// How many largest objects to list per bucket (`REPORT_TOP_N`).
    pub top_n: usize,
    /// How many keys to list per drift category (`REPORT_DRIFT_SAMPLE`); counts are exact.
    pub drift_sample: usize,
    /// Whether to ask Vertex AI for a summary (`REPORT_SUMMARY=on|off`, default `on`).
    pub summary: bool,
    /// `STORAGE_EMULATOR_HOST` as a URL: the HTTP Storage endpoint (report upload to GCS).
    pub storage_http_endpoint: Option<String>,
    /// `STORAGE_EMULATOR_HOST_GRPC` as a URL: the StorageControl endpoint (listings).
    pub storage_grpc_endpoint: Option<String>,
}

impl Settings {
    /// Reads and checks every variable; all problems are reported together.
    pub fn from_env(env: &Env) -> Result<Self, SettingsError> {
        let mut r = env.reader();
        let gcs_buckets = entries(&mut r, "REPORT_GCS_BUCKETS", |i, entry| {
            bucket_entry("REPORT_GCS_BUCKETS", i, entry, Cloud::Gcs)
        });
        let s3_buckets = entries(&mut r, "REPORT_S3_BUCKETS", |i, entry| {
            bucket_entry("REPORT_S3_BUCKETS", i, entry, Cloud::S3)
        });
        let sync_pairs = entries(&mut r, "REPORT_SYNC_PAIRS", sync_pair);
        if gcs_buckets.is_empty() && s3_buckets.is_empty() && sync_pairs.is_empty() {
            r.problem(
                "nothing to report: set at least one of REPORT_GCS_BUCKETS (e.g. `my-gcs-bucket`), \
                 REPORT_S3_BUCKETS (e.g. `my-s3-bucket`) or REPORT_SYNC_PAIRS \
                 (e.g. `s3://src/data=gs://dst/data`)"
                    .to_string(),
            );
        }

        let with_outputs = list(r.optional("REPORT_OUTPUT").as_deref()).count() > 0;
        let outputs = entries(&mut r, "REPORT_OUTPUT", output_entry);
        if !with_outputs {
            r.problem(
                "REPORT_OUTPUT is not set: set it to where reports go, \
                 `s3://bucket/prefix` and/or `gs://bucket/prefix` (comma-separated)",
            );
        }

        let project = r.required(
            "GOOGLE_CLOUD_PROJECT",
            "set it to the Google Cloud project id that runs Vertex AI",
        );
        let location = r
            .optional("VERTEX_LOCATION")
            .unwrap_or_else(|| DEFAULT_LOCATION.to_string());
        if !is_token(&location, |c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
        }) {
            r.problem(format!(
                "VERTEX_LOCATION `{location}` is not a location: use a region such as \
                 `us-central1`, `europe-west4` or `global`"
            ));
        }
        let model = r
            .optional("VERTEX_MODEL")
            .unwrap_or_else(|| DEFAULT_MODEL.to_string());
        if !is_token(&model, |c| c.is_ascii_alphanumeric() || "._-@".contains(c)) {
            r.problem(format!(
                "VERTEX_MODEL `{model}` is not a model id: use a publisher model id such as \
                 `{DEFAULT_MODEL}` (no slashes or colons)"
            ));
        }
        let base_url = match endpoint::google_override(&mut r, VERTEX_BASE_URL_ENV) {
            Some(url) => url,
            None if location == "global" => "https://aiplatform.googleapis.com".to_string(),
            None => format!("https://{location}-aiplatform.googleapis.com"),
        };
        let timeout = r.number("VERTEX_TIMEOUT_SECS", DEFAULT_VERTEX_TIMEOUT_SECS, 1..=600);
        let top_n = r.number("REPORT_TOP_N", DEFAULT_TOP_N, 1..=1000);
        let drift_sample = r.number("REPORT_DRIFT_SAMPLE", DEFAULT_DRIFT_SAMPLE, 0..=10_000);
        let summary = match r.optional("REPORT_SUMMARY").as_deref() {
            None | Some("on") => true,
            Some("off") => false,
            Some(other) => {
                r.problem(format!(
                    "REPORT_SUMMARY `{other}` must be `on` (ask Vertex AI for a summary) or \
                     `off` (send nothing to Vertex AI)"
                ));
                true
            }
        };
        let storage_http_endpoint = endpoint::google_override(&mut r, STORAGE_HTTP_ENV);
        let storage_grpc_endpoint = endpoint::google_override(&mut r, STORAGE_GRPC_ENV);

        r.finish(Settings {
            gcs_buckets,
            s3_buckets,
            sync_pairs,
            outputs,
            vertex: VertexSettings {
                base_url,
                project,
                location,
                model,
                timeout: Duration::from_secs(timeout),
            },
            top_n,
            drift_sample,
            summary,
            storage_http_endpoint,
            storage_grpc_endpoint,
        })
    }
    /// Whether any output goes to GCS (so the HTTP Storage client is needed).
    pub fn writes_to_gcs(&self) -> bool {
        self.outputs.iter().any(|o| o.cloud == Cloud::Gcs)
    }
}

/// The entries of the list in `var`, each parsed by `parse` (problems recorded), duplicates
/// reported.
fn entries<T: PartialEq + fmt::Debug>(
    r: &mut EnvReader<'_>,
    var: &str,
    parse: impl Fn(usize, &str) -> Result<T, String>,
) -> Vec<T> {
    let value = r.optional(var);
    let mut items: Vec<T> = Vec::new();
    for (i, entry) in list(value.as_deref()) {
        if let Some(item) = r.check(parse(i, entry)) {
            if items.contains(&item) {
                r.problem(format!("{var} lists {item:?} twice: remove the duplicate"));
            }
            items.push(item);
        }
    }
    items
}

/// Non-empty comma-separated entries with their 1-based positions.
fn list(value: Option<&str>) -> impl Iterator<Item = (usize, &str)> {
    value
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .enumerate()
        .filter(|(_, e)| !e.is_empty())
        .map(|(i, e)| (i + 1, e))
}

fn is_token(s: &str, ok: impl Fn(char) -> bool) -> bool {
    !s.is_empty() && s.chars().all(ok)
}

/// `name`, `name/prefix` or `scheme://name[/prefix]` of the expected cloud.
fn bucket_entry(var: &str, i: usize, entry: &str, cloud: Cloud) -> Result<Location, String> {
    let expected = format!(
        "{var} entry {i} (`{entry}`): expected a bucket name or {}://bucket[/prefix]",
        cloud.scheme()
    );
    let rest = match entry.split_once("://") {
        Some((scheme, rest)) if scheme == cloud.scheme() => rest,
        Some(_) => return Err(expected),
        None => entry,
    };
    location(rest, cloud).map_err(|e| format!("{expected}; {e}"))
}

/// `bucket[/prefix]` after the scheme.
fn location(rest: &str, cloud: Cloud) -> Result<Location, String> {
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    check_bucket(bucket, cloud)?;
    if prefix.trim_matches('/').contains("//") {
        return Err(format!("the prefix `{prefix}` has an empty path segment"));
    }
    Ok(Location::new(bucket, prefix))
}

fn check_bucket(bucket: &str, cloud: Cloud) -> Result<(), String> {
    let (checked, name) = match cloud {
        Cloud::S3 => (bucket_name::s3(bucket), "S3"),
        Cloud::Gcs => (bucket_name::gcs(bucket), "GCS"),
    };
    checked.map_err(|reason| format!("`{bucket}` is not a valid {name} bucket name: {reason}"))
}

/// `s3://src[/prefix]=gs://dst[/prefix]`.
fn sync_pair(i: usize, entry: &str) -> Result<SyncPair, String> {
    let context = || format!("REPORT_SYNC_PAIRS entry {i} (`{entry}`)");
    let (source, destination) = entry.split_once('=').ok_or_else(|| {
        format!(
            "{}: expected `s3://source-bucket[/prefix]=gs://destination-bucket[/prefix]`",
            context()
        )
    })?;
    let side = |value: &str, cloud: Cloud, role: &str| -> Result<Location, String> {
        let value = value.trim();
        let rest = value
            .strip_prefix(cloud.scheme())
            .and_then(|r| r.strip_prefix("://"))
            .ok_or_else(|| {
                format!(
                    "{}: the {role} `{value}` must start with {}://",
                    context(),
                    cloud.scheme()
                )
            })?;
        location(rest, cloud).map_err(|e| format!("{}: {e}", context()))
    };
    Ok(SyncPair {
        source: side(source, Cloud::S3, "source")?,
        destination: side(destination, Cloud::Gcs, "destination")?,
    })
}

fn output_entry(i: usize, entry: &str) -> Result<CloudLocation, String> {
    let context = || format!("REPORT_OUTPUT entry {i} (`{entry}`)");
    let (cloud, rest) = match entry.split_once("://") {
        Some(("s3", rest)) => (Cloud::S3, rest),
        Some(("gs", rest)) => (Cloud::Gcs, rest),
        _ => {
            return Err(format!(
                "{}: expected `s3://bucket[/prefix]` or `gs://bucket[/prefix]`",
                context()
            ));
        }
    };
    let location = location(rest, cloud).map_err(|e| format!("{}: {e}", context()))?;
    Ok(CloudLocation { cloud, location })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(vars: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        Settings::from_env(&Env::from_pairs(vars.iter().copied()))
    }

    const MINIMAL: &[(&str, &str)] = &[
        ("REPORT_GCS_BUCKETS", "gcs-a"),
        ("REPORT_OUTPUT", "s3://reports/daily"),
        ("GOOGLE_CLOUD_PROJECT", "my-project"),
        ("CROSSFED_ALLOW_LOCAL_ENDPOINTS", "1"),
    ];

    fn with(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        let mut v: Vec<_> = MINIMAL
            .iter()
            .filter(|(k, _)| !extra.iter().any(|(e, _)| e == k))
            .copied()
            .collect();
        v.extend_from_slice(extra);
        v
    }

    fn errors(vars: &[(&str, &str)]) -> String {
        parse(vars).unwrap_err().to_string()
    }

    #[test]
    fn minimal_config_has_defaults() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.gcs_buckets, vec![Location::new("gcs-a", "")]);
        assert!(c.s3_buckets.is_empty() && c.sync_pairs.is_empty());
        assert_eq!(
            c.outputs,
            vec![CloudLocation {
                cloud: Cloud::S3,
                location: Location::new("reports", "daily")
            }]
        );
        assert_eq!(c.outputs[0].to_string(), "s3://reports/daily/");
        assert_eq!(c.vertex.model, DEFAULT_MODEL);
        assert_eq!(c.vertex.location, "us-central1");
        assert_eq!(
            c.vertex.base_url,
            "https://us-central1-aiplatform.googleapis.com"
        );
        assert_eq!(c.vertex.timeout, Duration::from_secs(30));
        assert_eq!((c.top_n, c.drift_sample), (10, 20));
        assert!(c.summary);
        assert_eq!(c.storage_grpc_endpoint, None);
        assert!(!c.writes_to_gcs());
    }

    #[test]
    fn full_config() {
        let c = parse(&with(&[
            ("REPORT_GCS_BUCKETS", " gcs-a , gs://gcs-b/logs/2026/ ,"),
            ("REPORT_S3_BUCKETS", "s3-a,s3://s3-b/x"),
            (
                "REPORT_SYNC_PAIRS",
                "s3://src=gs://dst/mirror, s3://src/data/=gs://dst2",
            ),
            ("REPORT_OUTPUT", "s3://reports,gs://reports-gcs/r"),
            ("VERTEX_LOCATION", "global"),
            ("VERTEX_MODEL", "gemini-2.5-pro"),
            ("REPORT_TOP_N", "3"),
            ("REPORT_DRIFT_SAMPLE", "0"),
            ("STORAGE_EMULATOR_HOST", "127.0.0.2:80"),
            ("STORAGE_EMULATOR_HOST_GRPC", "http://127.0.0.1:9000/"),
        ]))
        .unwrap();
        assert_eq!(
            c.gcs_buckets,
            vec![
                Location::new("gcs-a", ""),
                Location::new("gcs-b", "logs/2026")
            ]
        );
        assert_eq!(c.gcs_buckets[1].prefix, "logs/2026/");
        assert_eq!(c.s3_buckets[1], Location::new("s3-b", "x"));
        assert_eq!(
            c.sync_pairs,
            vec![
                SyncPair {
                    source: Location::new("src", ""),
                    destination: Location::new("dst", "mirror/"),
                },
                SyncPair {
                    source: Location::new("src", "data"),
                    destination: Location::new("dst2", ""),
                },
            ]
        );
        assert_eq!(c.outputs[0].location.prefix, "");
        assert_eq!(c.outputs[1].cloud, Cloud::Gcs);
        assert!(c.writes_to_gcs());
        assert_eq!(c.vertex.base_url, "https://aiplatform.googleapis.com");
        assert_eq!((c.top_n, c.drift_sample), (3, 0));
        assert_eq!(
            c.storage_http_endpoint.as_deref(),
            Some("http://127.0.0.2:80")
        );
        assert_eq!(
            c.storage_grpc_endpoint.as_deref(),
            Some("http://127.0.0.1:9000")
        );
    }

    #[test]
    fn summary_switch() {
        assert!(!parse(&with(&[("REPORT_SUMMARY", "off")])).unwrap().summary);
        assert!(parse(&with(&[("REPORT_SUMMARY", "on")])).unwrap().summary);
        let e = errors(&with(&[("REPORT_SUMMARY", "no")]));
        assert!(e.contains("REPORT_SUMMARY `no` must be `on`"), "{e}");
    }

    #[test]
    fn base_url_override() {
        let c = parse(&with(&[(
            "GOOGLE_VERTEX_BASE_URL",
            "http://127.0.0.1:1234/",
        )]))
        .unwrap();
        assert_eq!(c.vertex.base_url, "http://127.0.0.1:1234");
        let e = errors(&with(&[("GOOGLE_VERTEX_BASE_URL", "ftp://x")]));
        assert!(
            e.contains("GOOGLE_VERTEX_BASE_URL `ftp://x` is not an http(s) URL"),
            "{e}"
        );
    }

    #[test]
    fn missing_required_variables_are_all_reported() {
        let e = errors(&[]);
        assert!(e.contains("nothing to report"), "{e}");
        assert!(e.contains("REPORT_OUTPUT is not set"), "{e}");
        assert!(e.contains("GOOGLE_CLOUD_PROJECT is not set"), "{e}");
        // whitespace-only counts as unset
        let e = errors(&with(&[("GOOGLE_CLOUD_PROJECT", "  ")]));
        assert!(e.contains("GOOGLE_CLOUD_PROJECT is not set"), "{e}");
    }

    #[test]
    fn bad_bucket_entries_say_what_to_fix() {
        let e = errors(&with(&[(
            "REPORT_GCS_BUCKETS",
            "ok-bucket,s3://wrong,Bad_Name",
        )]));
        assert!(
            e.contains("REPORT_GCS_BUCKETS entry 2 (`s3://wrong`): expected a bucket name or gs://bucket[/prefix]"),
            "{e}"
        );
        assert!(
            e.contains("`Bad_Name` is not a valid GCS bucket name"),
            "{e}"
        );
        let e = errors(&with(&[("REPORT_S3_BUCKETS", "ab,under_score")]));
        assert!(e.contains("`ab` is not a valid S3 bucket name"), "{e}");
        assert!(
            e.contains("`under_score` is not a valid S3 bucket name"),
            "{e}"
        );
        let e = errors(&with(&[("REPORT_S3_BUCKETS", "s3://ok-b/a//b")]));
        assert!(e.contains("empty path segment"), "{e}");
        let e = errors(&with(&[("REPORT_GCS_BUCKETS", "dup-b,gs://dup-b/")]));
        assert!(
            e.contains("REPORT_GCS_BUCKETS lists") && e.contains("twice"),
            "{e}"
        );
    }

    #[test]
    fn bad_sync_pairs() {
        let e = errors(&with(&[("REPORT_SYNC_PAIRS", "s3://a-b")]));
        assert!(
            e.contains("REPORT_SYNC_PAIRS entry 1 (`s3://a-b`): expected `s3://source-bucket[/prefix]=gs://destination-bucket[/prefix]`"),
            "{e}"
        );
        let e = errors(&with(&[("REPORT_SYNC_PAIRS", "gs://a-b=s3://c-d")]));
        assert!(
            e.contains("the source `gs://a-b` must start with s3://"),
            "{e}"
        );
        let e = errors(&with(&[("REPORT_SYNC_PAIRS", "s3://a-b=gs://C")]));
        assert!(e.contains("`C` is not a valid GCS bucket name"), "{e}");
    }

    #[test]
    fn bad_outputs_and_numbers() {
        let e = errors(&with(&[("REPORT_OUTPUT", "reports/daily")]));
        assert!(
            e.contains("REPORT_OUTPUT entry 1 (`reports/daily`): expected `s3://bucket[/prefix]` or `gs://bucket[/prefix]`"),
            "{e}"
        );
        let e = errors(&with(&[("REPORT_OUTPUT", ",")]));
        assert!(e.contains("REPORT_OUTPUT is not set"), "{e}");
        let e = errors(&with(&[
            ("REPORT_TOP_N", "0"),
            ("VERTEX_TIMEOUT_SECS", "soon"),
            ("VERTEX_LOCATION", "US Central"),
            ("VERTEX_MODEL", "publishers/google/models/x"),
            ("STORAGE_EMULATOR_HOST_GRPC", "a b"),
        ]));
        assert!(
            e.contains("REPORT_TOP_N `0` must be a whole number from 1 to 1000"),
            "{e}"
        );
        assert!(e.contains("VERTEX_TIMEOUT_SECS `soon`"), "{e}");
        assert!(
            e.contains("VERTEX_LOCATION `US Central` is not a location"),
            "{e}"
        );
        assert!(
            e.contains("VERTEX_MODEL `publishers/google/models/x`"),
            "{e}"
        );
        assert!(e.contains("STORAGE_EMULATOR_HOST_GRPC `a b`"), "{e}");
    }
}
