//! Errors that say what failed, why, what to fix, and whether a retry can help.

use std::fmt;

/// The step of the federation flow an error comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Step {
    /// Loading or validating the credential configuration.
    Config,
    /// Finding the AWS credentials and region.
    AwsIdentity,
    /// Signing the GetCallerIdentity subject token.
    SubjectToken,
    /// The Google STS token exchange.
    Sts,
    /// Service-account impersonation (IAM Credentials `generateAccessToken`).
    Impersonation,
    /// Obtaining a Google ID token (metadata server or `generateIdToken`).
    IdToken,
    /// AWS STS `AssumeRoleWithWebIdentity`.
    AssumeRole,
    /// Another Google API called through [`crate::transport::Transport`] (e.g. Vertex AI).
    GoogleApi,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Config => "loading the credential configuration",
            Step::AwsIdentity => "finding AWS credentials",
            Step::SubjectToken => "signing the AWS subject token",
            Step::Sts => "the Google STS token exchange",
            Step::Impersonation => "service account impersonation",
            Step::IdToken => "obtaining a Google ID token",
            Step::AssumeRole => "AWS AssumeRoleWithWebIdentity",
            Step::GoogleApi => "the Google API call",
        })
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong while turning AWS credentials into a Google access token.
///
/// Like `aws-config`, errors separate "not configured" from "invalid configuration" from
/// "the provider failed"; like `google-cloud-auth`, each says whether it is transient.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No credential configuration source was given or found in the environment.
    #[error("no Google credential configuration: {0}")]
    NotConfigured(String),

    /// The credential configuration is present but wrong; `field` names the offending key.
    #[error("invalid credential configuration: `{field}`: {message}")]
    InvalidConfig {
        /// JSON path of the field, e.g. `credential_source.environment_id`.
        field: String,
        /// What is wrong and what is expected.
        message: String,
    },

    /// A step failed for a reason other than a Google error response.
    #[error("{step} failed: {message}")]
    ProviderFailed {
        /// Which step failed.
        step: Step,
        /// What happened and, where known, what to do.
        message: String,
        /// Whether retrying later may succeed.
        transient: bool,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },

    /// Google STS or IAM Credentials answered with an error.
    #[error("{step} was rejected by Google (HTTP {status}, {code}): {description}{}", hint_suffix(.hint))]
    Google {
        /// Which step was rejected.
        step: Step,
        /// HTTP status code.
        status: u16,
        /// Google's error code (`invalid_grant`, `PERMISSION_DENIED`, ...).
        code: String,
        /// Google's own description.
        description: String,
        /// What to check, when the error is a known misconfiguration.
        hint: Option<String>,
    },
}

fn hint_suffix(hint: &Option<String>) -> String {
    hint.as_ref()
        .map(|h| format!(". Hint: {h}"))
        .unwrap_or_default()
}

impl Error {
    /// Whether retrying the same operation later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::NotConfigured(_) | Error::InvalidConfig { .. } => false,
            Error::ProviderFailed { transient, .. } => *transient,
            Error::Google { status, .. } => *status == 429 || *status >= 500,
        }
    }

    /// The step this error comes from.
    pub fn step(&self) -> Step {
        match self {
            Error::NotConfigured(_) | Error::InvalidConfig { .. } => Step::Config,
            Error::ProviderFailed { step, .. } | Error::Google { step, .. } => *step,
        }
    }

    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidConfig {
            field: field.into(),
            message: message.into(),
        }
    }

    pub(crate) fn failed(step: Step, transient: bool, message: impl Into<String>) -> Self {
        Error::ProviderFailed {
            step,
            message: message.into(),
            transient,
            source: None,
        }
    }

    pub(crate) fn failed_with(
        step: Step,
        transient: bool,
        message: impl Into<String>,
        source: impl Into<BoxError>,
    ) -> Self {
        Error::ProviderFailed {
            step,
            message: message.into(),
            transient,
            source: Some(source.into()),
        }
    }
}

impl From<Error> for google_cloud_auth::errors::CredentialsError {
    fn from(e: Error) -> Self {
        let transient = e.is_transient();
        google_cloud_auth::errors::CredentialsError::new(transient, e.to_string(), e)
    }
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Displays an error and its whole `source` chain: `outer: cause: root cause`.
///
/// Use it wherever an error becomes text (logs, CLI output), so the cause is never lost:
/// `tracing::warn!(error = %ErrorChain(&e), "...")`.
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut shown = self.0.to_string();
        let mut source = self.0.source();
        while let Some(s) = source {
            let text = s.to_string();
            // Some errors repeat their source's text in their own; print each cause once.
            if !shown.contains(&text) {
                write!(f, ": {text}")?;
                shown = text;
            }
            source = s.source();
        }
        Ok(())
    }
}

impl fmt::Debug for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
