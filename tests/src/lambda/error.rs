//! How an invocation under the local Runtime API can fail.

use std::fmt;
use std::time::Duration;

/// Why an invocation did not return a response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LambdaError {
    /// The function reported an error (`/invocation/{id}/error`).
    Function {
        error_type: String,
        error_message: String,
    },
    /// The runtime failed to initialize (`/init/error`).
    Init {
        error_type: String,
        error_message: String,
    },
    /// No response within the timeout.
    Timeout(Duration),
    /// The response body was not JSON.
    InvalidResponse(String),
    /// The Runtime API was shut down.
    Stopped,
}

impl fmt::Display for LambdaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Function {
                error_type,
                error_message,
            } => {
                write!(f, "function error {error_type}: {error_message}")
            }
            Self::Init {
                error_type,
                error_message,
            } => write!(f, "init error {error_type}: {error_message}"),
            Self::Timeout(t) => write!(f, "no response within {t:?}"),
            Self::InvalidResponse(e) => write!(f, "invalid response: {e}"),
            Self::Stopped => f.write_str("the runtime API stopped"),
        }
    }
}

impl std::error::Error for LambdaError {}
