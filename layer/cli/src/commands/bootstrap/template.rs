//! What bootstrap knows of `template.yaml`: its functions that federate to Google Cloud, the
//! parameter each reads its credential configuration from, and the parameters a redeploy
//! sets. The CLI tests check this against the template itself.

/// The template's shared configuration parameter (every function falls back to it).
pub const SHARED_PARAMETER: &str = "GoogleCredentialConfigParameterName";

/// Function → the template parameter of its own configuration; `None`: the function reads
/// the shared parameter only.
const FUNCTIONS: &[(&str, Option<&str>)] = &[
    ("list-buckets", Some("ListBucketsConfigParameterName")),
    ("gcs-sync", Some("GcsSyncConfigParameterName")),
    (
        "cross-cloud-report",
        Some("CrossCloudReportConfigParameterName"),
    ),
    ("python-list-buckets", None),
];

/// Where a function reads its credential configuration from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigParameter {
    /// Its own parameter, set by this template parameter (empty: the shared one).
    Own(&'static str),
    /// Only the shared parameter.
    SharedOnly,
    /// Not a function of the template: whatever its deployment sets.
    NotInTemplate,
}

/// The parameter `function` reads.
pub fn config_parameter(function: &str) -> ConfigParameter {
    match FUNCTIONS.iter().find(|(f, _)| *f == function) {
        Some((_, Some(parameter))) => ConfigParameter::Own(parameter),
        Some((_, None)) => ConfigParameter::SharedOnly,
        None => ConfigParameter::NotInTemplate,
    }
}
