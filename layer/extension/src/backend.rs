//! What the metadata server needs from the credentials behind it.

use std::future::Future;
use std::time::SystemTime;

/// An access token handed to a client.
#[derive(Clone)]
pub struct AccessToken {
    /// The bearer token (never logged).
    pub value: String,
    /// Wall-clock expiry.
    pub expires_at: SystemTime,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("value", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Who the credentials act as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// E-mail of the impersonated service account; `None` without impersonation.
    pub service_account: Option<String>,
    /// Project id: `GOOGLE_CLOUD_PROJECT`, else the service account's project.
    pub project_id: Option<String>,
    /// Universe domain of the configuration (`googleapis.com`).
    pub universe_domain: String,
}

/// Why a credential request could not be answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackendError {
    /// The request cannot be served with this configuration (answered with a 4xx).
    Unavailable(String),
    /// The request itself is invalid (400).
    BadRequest(String),
    /// Getting the credential failed; `transient` failures may succeed when retried.
    Failed {
        /// What went wrong and what to fix (never a secret).
        message: String,
        /// Whether retrying may help.
        transient: bool,
    },
}

impl std::fmt::Display for BackendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackendError::Unavailable(m) | BackendError::BadRequest(m) => f.write_str(m),
            BackendError::Failed { message, .. } => f.write_str(message),
        }
    }
}

/// The credentials the metadata server serves. Implementations cache and refresh.
pub trait Backend: Send + Sync + 'static {
    /// A valid access token for `scopes` (sorted, deduplicated, not empty).
    fn access_token(
        &self,
        scopes: &[String],
    ) -> impl Future<Output = Result<AccessToken, BackendError>> + Send;

    /// A Google ID token (JWT) for `audience`, with the `email` claim when `include_email`.
    fn id_token(
        &self,
        audience: &str,
        include_email: bool,
    ) -> impl Future<Output = Result<String, BackendError>> + Send;

    /// The identity behind the tokens.
    fn identity(&self) -> impl Future<Output = Result<Identity, BackendError>> + Send;

    /// Refreshes cached tokens that are close to expiry (called on each INVOKE, since the
    /// frozen sandbox runs nothing in the background).
    fn refresh_expiring(&self) -> impl Future<Output = ()> + Send;
}
