//! One module per subcommand; each `run` returns an [`Outcome`], which `main` turns into the
//! exit code.

pub mod aws;
pub mod bootstrap;
pub mod config;
pub mod doctor;
pub mod token;
pub mod whoami;

/// Why a command failed.
#[derive(Debug)]
pub enum Failure {
    /// An error to print on stderr as `error: …` (what to fix).
    Error(String),
    /// The command has already printed why (doctor's report).
    Reported,
}

/// How a command ended: `Ok` is exit code 0, any [`Failure`] exit code 1.
pub type Outcome = Result<(), Failure>;

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Failure::Error(message)
    }
}

impl From<crossfed::Error> for Failure {
    fn from(e: crossfed::Error) -> Self {
        Failure::Error(crossfed::ErrorChain(&e).to_string())
    }
}
