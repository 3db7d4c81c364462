//! Settings from the environment, every problem reported together.

use crossfed_kit::endpoint::{self, STORAGE_GRPC_ENV};
use crossfed_kit::{Env, SettingsError};

/// What `list-buckets` reads (besides the credential configuration).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// `GOOGLE_CLOUD_PROJECT`: whose buckets to list.
    pub project: String,
    /// `STORAGE_EMULATOR_HOST_GRPC` as a URL (see [`endpoint::google_override`]).
    pub grpc_endpoint: Option<String>,
}

impl Settings {
    /// Reads and checks the variables.
    pub fn from_env(env: &Env) -> Result<Self, SettingsError> {
        let mut r = env.reader();
        let project = r.required(
            "GOOGLE_CLOUD_PROJECT",
            "set it to the Google Cloud project id whose buckets to list",
        );
        let grpc_endpoint = endpoint::google_override(&mut r, STORAGE_GRPC_ENV);
        r.finish(Settings {
            project,
            grpc_endpoint,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_project_and_endpoint() {
        let env = Env::from_pairs([
            ("GOOGLE_CLOUD_PROJECT", "my-proj"),
            (STORAGE_GRPC_ENV, "127.0.0.1:9000"),
            (endpoint::ALLOW_LOCAL_ENV, "1"),
        ]);
        let c = Settings::from_env(&env).unwrap();
        assert_eq!(c.project, "my-proj");
        assert_eq!(c.grpc_endpoint.as_deref(), Some("http://127.0.0.1:9000"));
    }

    #[test]
    fn every_problem_is_listed() {
        let env = Env::from_pairs([(STORAGE_GRPC_ENV, "10.1.2.3:9000")]);
        let e = Settings::from_env(&env).unwrap_err().to_string();
        assert!(e.contains("GOOGLE_CLOUD_PROJECT is not set"), "{e}");
        assert!(
            e.contains("STORAGE_EMULATOR_HOST_GRPC `10.1.2.3:9000`"),
            "{e}"
        );
    }
}
