//! Where the AWS -> Google credential configuration comes from (shared by the subcommands).

use std::path::PathBuf;

use clap::Args;
use crossfed::google::{self, ConfigSource, Credentials};

#[derive(Args)]
pub struct ConfigArgs {
    /// SSM parameter (name or ARN) holding the credential configuration.
    #[arg(long, env = google::CONFIG_PARAMETER_ENV, conflicts_with = "config_file")]
    config_parameter: Option<String>,
    /// Credential configuration file.
    #[arg(long, env = google::CREDENTIALS_FILE_ENV)]
    config_file: Option<PathBuf>,
}

impl ConfigArgs {
    /// A credentials builder for the chosen source (default: the environment).
    pub fn builder(self) -> google::Builder {
        let builder = Credentials::builder();
        match (self.config_parameter, self.config_file) {
            (Some(name), _) => builder.with_config_source(ConfigSource::Ssm(name)),
            (None, Some(path)) => builder.with_config_source(ConfigSource::File(path)),
            (None, None) => builder,
        }
    }
}
