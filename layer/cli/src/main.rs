//! `crossfed`: print a Google access token, the federated identity of this AWS workload, or
//! AWS credentials for a Google identity.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod commands;

use commands::{Failure, aws, bootstrap, doctor, token, whoami};

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
    Whoami(whoami::Args),
    /// Check every step of the federation chain; print the fix for the first broken one.
    Doctor(doctor::Args),
    /// Print the Google Cloud setup, credential configurations and SSM/SAM commands for
    /// every function of the stack.
    Bootstrap(bootstrap::Args),
    /// Google Cloud -> AWS: assume an AWS role with a Google ID token.
    #[command(subcommand)]
    Aws(aws::AwsCommand),
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let outcome = match Cli::parse().command {
        Command::Token(args) => token::run(args).await,
        Command::Whoami(args) => whoami::run(args).await,
        Command::Doctor(args) => doctor::run(args).await,
        Command::Bootstrap(args) => bootstrap::run(args).await,
        Command::Aws(command) => aws::run(command).await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Error(message)) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
        Err(Failure::Reported) => ExitCode::FAILURE,
    }
}
