//! Where the AWS -> Google credential configuration comes from (shared by the subcommands).

use std::path::PathBuf;

use clap::Args;
use crossfed::google::{self, ConfigSource, Credentials};

/// The environment variables are read by the library, not by clap: a flag always wins over
/// them (clap would treat an env value as a given flag and report a conflict), and with both
/// variables set `CROSSFED_CONFIG_PARAMETER` wins, as everywhere else.
#[derive(Args)]
pub struct ConfigArgs {
    /// SSM parameter (name or ARN) holding the credential configuration
    /// [default: $CROSSFED_CONFIG_PARAMETER, else the file $GOOGLE_APPLICATION_CREDENTIALS].
    #[arg(long, conflicts_with = "config_file")]
    config_parameter: Option<String>,
    /// Credential configuration file.
    #[arg(long)]
    config_file: Option<PathBuf>,
}

impl ConfigArgs {
    /// The source and what chose it (a flag or an environment variable).
    pub fn source(&self) -> crossfed::Result<(ConfigSource, String)> {
        match (&self.config_parameter, &self.config_file) {
            (Some(name), _) => Ok((ConfigSource::Ssm(name.clone()), "--config-parameter".into())),
            (None, Some(path)) => Ok((ConfigSource::File(path.clone()), "--config-file".into())),
            (None, None) => {
                let source = ConfigSource::from_env(&crossfed::Context::new())?;
                let origin = match source {
                    ConfigSource::Ssm(_) => google::CONFIG_PARAMETER_ENV,
                    _ => google::CREDENTIALS_FILE_ENV,
                };
                Ok((source, origin.to_string()))
            }
        }
    }

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
