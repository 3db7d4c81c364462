//! # crossfed
//!
//! Keyless authentication between AWS and Google Cloud, both ways, with no long-lived keys.
//!
//! - [`google`] — **AWS → Google** (Workload Identity Federation): the AWS identity (in
//!   Lambda: the execution role) signs a `GetCallerIdentity` request, Google STS exchanges
//!   it for a federated token, and IAM Credentials turns that into a short-lived
//!   service-account access token. [`google::Credentials`] caches it and plugs into the
//!   official `google-cloud-*` clients.
//! - [`aws`] — **Google → AWS**: a Google ID token exchanged with
//!   `AssumeRoleWithWebIdentity`; [`aws::WebIdentity`] is an `aws-config` credentials
//!   provider.
//!
//! Shared pieces live at the root: [`Context`] (the one injection point for environment,
//! clock, timeouts, retry policy and HTTP client), [`Error`]/[`Step`], [`Secret`], [`Token`],
//! the settings, and [`transport::Transport`] for calling other Google JSON APIs with the
//! same retries and error mapping.
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! let creds = crossfed::google::Credentials::from_env()?; // CROSSFED_CONFIG_PARAMETER or GOOGLE_APPLICATION_CREDENTIALS
//! let control = google_cloud_storage::client::StorageControl::builder()
//!     .with_credentials(creds)
//!     .build()
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! ## Why not google-cloud-auth's own AWS source?
//!
//! `google-cloud-auth` reads the same gcloud credential configuration, but its AWS
//! external-account source is built for EC2, not for Lambda:
//!
//! | | google-cloud-auth AWS source | crossfed |
//! |---|---|---|
//! | AWS credentials | IMDSv2 session `PUT` before the environment credentials | Lambda fast path: environment only, never IMDS (Lambda has none); elsewhere `aws-config`'s default chain |
//! | Token lifetime | fixed 1 h | `service_account_impersonation.token_lifetime_seconds` honoured |
//! | Configuration | a file | SSM Parameter Store (cached, last good value kept), file or inline |
//! | Google → AWS | — | [`aws::WebIdentity`] |
//! | Errors | generic | the failing [`Step`], Google's code, a hint what to fix, transient or not |

mod context;
mod endpoint;
mod error;
mod google_error;
mod restore;
mod secret;
mod token;
mod token_cache;

pub mod aws;
pub mod google;
pub mod transport;

/// Entry points for `cargo fuzz` (built only with `--cfg fuzzing`, which cargo-fuzz sets):
/// the parsers of untrusted answers that are otherwise private.
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing {
    /// Parses a Google STS answer body into a token at a fixed time; must never panic.
    pub fn sts_answer(body: &str) {
        let now = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        if let Ok(parsed) = serde_json::from_str(body)
            && let Ok(token) = crate::google::sts_token_from(parsed, now)
        {
            assert!(token.expires_at > now);
            assert!(token.expires_at <= now + crate::token::MAX_LIFETIME);
        }
    }

    /// Maps a Google error answer to an error; must never panic.
    pub fn google_error(status: u16, body: &str) {
        let e = crate::google_error::from_response(crate::Step::Sts, status, body);
        let _ = e.to_string();
    }
}

pub use context::Context;
pub use endpoint::{ALLOW_LOCAL_ENV, ALLOWED_UNIVERSES_ENV, check_google_api};
pub use error::{Error, ErrorChain, Result, Step};
pub use secret::Secret;
pub use token::Token;
pub use token_cache::{CacheSettings, Clock, SystemClock};
pub use transport::{RetryPolicy, Timeouts};
