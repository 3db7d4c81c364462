//! `crossfed`: print a Google access token or the federated identity of this AWS workload.

use std::path::PathBuf;
use std::process::ExitCode;

#[allow(dead_code)] // wired into the CLI after the issue-7 regroup
#[path = "crossfed/bootstrap_plan.rs"]
mod bootstrap_plan;

use clap::{Args, Parser, Subcommand};
use crossfed::{ConfigSource, Credentials, GoogleWebIdentity, IdTokenSource};

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
    /// Google Cloud -> AWS: assume an AWS role with a Google ID token.
    #[command(subcommand)]
    Aws(AwsCommand),
}

#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum AwsCommand {
    /// Print `credential_process` JSON for ~/.aws/config.
    CredentialProcess(AssumeArgs),
    /// Print `export AWS_...` lines for shells.
    Env(AssumeArgs),
    /// Print the IAM role trust policy for Google service accounts.
    TrustPolicy {
        /// The audience the workload requests (`accounts.google.com:oaud`).
        #[arg(long)]
        audience: String,
        /// Unique id of an allowed service account (`accounts.google.com:sub`); repeatable.
        #[arg(long = "sub", required = true)]
        subs: Vec<String>,
    },
}

#[derive(Args)]
struct AssumeArgs {
    /// ARN of the AWS role to assume.
    #[arg(long)]
    role_arn: String,
    /// Audience of the Google ID token (the trust policy's `accounts.google.com:oaud`).
    #[arg(long)]
    audience: String,
    /// Get the ID token from IAM Credentials for this service account, authorised by the
    /// federated credentials of `--config-parameter`/`--config-file` (AWS -> Google -> AWS).
    /// Default: the metadata server (`GCE_METADATA_HOST`).
    #[arg(long)]
    service_account: Option<String>,
    /// IAM Credentials base URL.
    #[arg(long, default_value = "https://iamcredentials.googleapis.com")]
    iam_endpoint: url::Url,
    /// Role session name (default: from the token's e-mail or subject).
    #[arg(long)]
    session_name: Option<String>,
    /// Session duration in seconds (900-43200).
    #[arg(long)]
    duration_seconds: Option<u64>,
    /// Region of the STS endpoint (default: AWS_REGION, else us-east-1).
    #[arg(long)]
    region: Option<String>,
    #[command(flatten)]
    config: ConfigArgs,
}

impl AssumeArgs {
    async fn credentials(self) -> crossfed::Result<aws_credential_types::Credentials> {
        let mut builder = GoogleWebIdentity::builder(self.role_arn, self.audience);
        if let Some(sa) = self.service_account {
            let google = self.config.builder().build()?;
            builder = builder.with_id_token_source(IdTokenSource::IamCredentials {
                credentials: google.into(),
                service_account: sa,
                endpoint: self.iam_endpoint,
            });
        }
        if let Some(name) = self.session_name {
            builder = builder.with_session_name(name);
        }
        if let Some(secs) = self.duration_seconds {
            builder = builder.with_duration(std::time::Duration::from_secs(secs));
        }
        if let Some(region) = self.region {
            builder = builder.with_region(region);
        }
        builder.build()?.credentials().await
    }
}

fn rfc3339(t: std::time::SystemTime) -> String {
    time::OffsetDateTime::from(t)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
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
        Command::Aws(AwsCommand::CredentialProcess(args)) => {
            let c = args.credentials().await?;
            let out = serde_json::json!({
                "Version": 1,
                "AccessKeyId": c.access_key_id(),
                "SecretAccessKey": c.secret_access_key(),
                "SessionToken": c.session_token(),
                "Expiration": c.expiry().map(rfc3339),
            });
            println!("{out}");
        }
        Command::Aws(AwsCommand::Env(args)) => {
            let c = args.credentials().await?;
            println!("export AWS_ACCESS_KEY_ID='{}'", c.access_key_id());
            println!("export AWS_SECRET_ACCESS_KEY='{}'", c.secret_access_key());
            if let Some(token) = c.session_token() {
                println!("export AWS_SESSION_TOKEN='{token}'");
            }
            if let Some(expiry) = c.expiry() {
                println!("export AWS_CREDENTIAL_EXPIRATION='{}'", rfc3339(expiry));
            }
        }
        Command::Aws(AwsCommand::TrustPolicy { audience, subs }) => {
            let policy = crossfed::google_trust_policy(&audience, &subs);
            println!(
                "{}",
                serde_json::to_string_pretty(&policy).unwrap_or_default()
            );
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
