//! What `doctor` is told: where the configuration comes from and what to check.

use crossfed::Error;
use crossfed::google::ConfigSource;

/// Everything `doctor` is told.
pub struct Options {
    /// The configuration source and what selected it (`--config-parameter`, an env var).
    pub source: Result<(ConfigSource, String), Error>,
    pub attribute_mapping: Option<String>,
    pub attribute_condition: Option<String>,
    /// Read mapping and condition from the provider (IAM API) with this access token.
    pub fetch_provider: Option<FetchProvider>,
    pub test_bucket: Option<String>,
    pub project: Option<String>,
    /// `https://storage.googleapis.com` or `STORAGE_EMULATOR_HOST`.
    pub storage_endpoint: String,
    pub allow_local: bool,
}

/// How to read the provider resource.
pub struct FetchProvider {
    pub iam_endpoint: String,
    pub access_token: Option<String>,
    /// A loopback `iam_endpoint` is allowed (`CROSSFED_ALLOW_LOCAL_ENDPOINTS=1`).
    pub allow_local: bool,
}
