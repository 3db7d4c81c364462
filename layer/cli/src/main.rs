//! `crossfed`: print a Google access token, the federated identity of this AWS workload, or
//! AWS credentials for a Google identity.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod commands;

use commands::{aws, config, token, whoami};

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

// Parsed once per process: the size difference between variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Print a Google access token (like `gcloud auth print-access-token`).
    Token(token::Args),
    /// Print the AWS caller ARN and the Google principals it maps to.
    Whoami {
        #[command(flatten)]
        config: config::ConfigArgs,
    },
    /// Google Cloud -> AWS: assume an AWS role with a Google ID token.
    #[command(subcommand)]
    Aws(aws::AwsCommand),
}

async fn run(cli: Cli) -> crossfed::Result<()> {
    match cli.command {
        Command::Token(args) => token::run(args).await,
        Command::Whoami { config } => whoami::run(config).await,
        Command::Aws(command) => aws::run(command).await,
    }
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
            eprintln!("error: {}", crossfed::ErrorChain(&e));
            ExitCode::FAILURE
        }
    }
}
