//! `crossfed`: print a Google access token or the federated identity of this AWS workload.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use crossfed::{ConfigSource, Credentials};

#[derive(Parser)]
#[command(
    name = "crossfed",
    version,
    about = "Keyless AWS -> Google Cloud authentication (Workload Identity Federation)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print a Google access token (like `gcloud auth print-access-token`).
    Token {
        #[command(flatten)]
        config: ConfigArgs,
        /// OAuth scope of the token (repeatable).
        #[arg(long = "scope", default_value = crossfed::CLOUD_PLATFORM_SCOPE)]
        scopes: Vec<String>,
    },
    /// Print the AWS caller ARN and the Google principals it maps to.
    Whoami {
        #[command(flatten)]
        config: ConfigArgs,
    },
}

#[derive(Args)]
struct ConfigArgs {
    /// SSM parameter (name or ARN) holding the credential configuration.
    #[arg(long, env = crossfed::CONFIG_PARAMETER_ENV, conflicts_with = "config_file")]
    config_parameter: Option<String>,
    /// Credential configuration file.
    #[arg(long, env = crossfed::CREDENTIALS_FILE_ENV)]
    config_file: Option<PathBuf>,
}

impl ConfigArgs {
    fn builder(self) -> crossfed::Builder {
        let builder = Credentials::builder();
        match (self.config_parameter, self.config_file) {
            (Some(name), _) => builder.with_config_source(ConfigSource::Ssm(name)),
            (None, Some(path)) => builder.with_config_source(ConfigSource::File(path)),
            (None, None) => builder,
        }
    }
}

async fn run(cli: Cli) -> crossfed::Result<()> {
    match cli.command {
        Command::Token { config, scopes } => {
            let creds = config.builder().with_scopes(scopes).build()?;
            let token = creds.token().await?;
            println!("{}", token.value.expose());
        }
        Command::Whoami { config } => {
            let me = config.builder().build()?.whoami().await?;
            println!("aws_arn: {}", me.aws_arn);
            println!("aws_role: {}", me.aws_role);
            println!("google_subject: {}", me.google_subject);
            println!("google_principal_set: {}", me.google_principal_set);
            if let Some(sa) = me.service_account {
                println!("service_account: {sa}");
            }
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
