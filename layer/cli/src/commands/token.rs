//! `crossfed token`: print a Google access token.

use super::Outcome;
use super::config::ConfigArgs;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: ConfigArgs,
    /// OAuth scope of the token (repeatable).
    #[arg(long = "scope", default_value = crossfed::google::CLOUD_PLATFORM_SCOPE)]
    scopes: Vec<String>,
}

/// Prints the token.
pub async fn run(args: Args) -> Outcome {
    let creds = args.config.builder().with_scopes(args.scopes).build()?;
    let token = creds.token().await?;
    println!("{}", token.value.expose());
    Ok(())
}
