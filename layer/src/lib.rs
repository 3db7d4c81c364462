//! # crossfed
//!
//! Keyless authentication from AWS to Google Cloud by Workload Identity Federation.
//!
//! The AWS identity (in Lambda: the execution role) signs a `GetCallerIdentity` request,
//! Google STS exchanges it for a federated token, and IAM Credentials turns that into a
//! short-lived service-account access token. [`Credentials`] caches the result and plugs
//! into the official `google-cloud-*` clients as their credentials:
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! let creds = crossfed::Credentials::from_env()?; // CROSSFED_CONFIG_PARAMETER or GOOGLE_APPLICATION_CREDENTIALS
//! let control = google_cloud_storage::client::StorageControl::builder()
//!     .with_credentials(creds)
//!     .build()
//!     .await?;
//! # Ok(()) }
//! ```

// Temporary wiring until the issue-7 regroup provides `crate::google` (issue 9).
#[path = "google/attribute_mapping.rs"]
pub mod attribute_mapping;
mod aws_identity;
#[path = "google/cel.rs"]
mod cel;
mod config;
mod config_source;
mod credentials;
mod endpoint;
mod error;
mod google_error;
mod id_token;
mod impersonation;
pub mod lambda;
mod secret;
mod sts;
mod subject_token;
mod token;
mod token_cache;
mod transport;
mod trust_policy;
mod web_identity;
mod whoami;

pub use aws_identity::AwsIdentity;
pub use config::{AwsCredentialSource, ExternalAccountConfig, Impersonation, WorkloadProvider};
pub use config_source::{
    CONFIG_PARAMETER_ENV, CREDENTIALS_FILE_ENV, ConfigSource, DEFAULT_SSM_TTL,
};
pub use credentials::{Builder, CLOUD_PLATFORM_SCOPE, Credentials};
pub use endpoint::ALLOW_LOCAL_ENV;
pub use error::{Error, Result, Step};
pub use id_token::{IdToken, IdTokenClaims, IdTokenSource, METADATA_HOST_ENV};
pub use secret::Secret;
pub use token::Token;
pub use token_cache::{CacheSettings, Clock, SystemClock};
pub use transport::{RetryPolicy, Timeouts};
pub use trust_policy::google_trust_policy;
pub use web_identity::{
    DEFAULT_STS_REGION, GoogleWebIdentity, WebIdentityBuilder, default_session_name,
};
pub use whoami::{Whoami, aws_role_attribute, principals};

/// Re-exported so callers can inject an environment (`Env::from_slice`) in tests.
pub use aws_types::os_shim_internal::Env;
