//! `crossfed`: print a Google access token or the federated identity of this AWS workload.

use std::path::PathBuf;
use std::process::ExitCode;

#[allow(dead_code)] // wired into the CLI after the issue-7 regroup
#[path = "crossfed/bootstrap_plan.rs"]
mod bootstrap_plan;
#[path = "crossfed/doctor.rs"]
mod doctor;

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
    /// Check every step of the federation chain and print the fix for the first broken one.
    Doctor(DoctorArgs),
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

/// Where the credential configuration comes from. The environment variables are read by the
/// library (not by clap), so a flag always wins over them and, with both variables set,
/// `CROSSFED_CONFIG_PARAMETER` wins as everywhere else.
#[derive(Args)]
struct ConfigArgs {
    /// SSM parameter (name or ARN) holding the credential configuration
    /// [default: $CROSSFED_CONFIG_PARAMETER, else $GOOGLE_APPLICATION_CREDENTIALS].
    #[arg(long, conflicts_with = "config_file")]
    config_parameter: Option<String>,
    /// Credential configuration file.
    #[arg(long)]
    config_file: Option<PathBuf>,
}

impl ConfigArgs {
    /// The source and what chose it.
    fn source(&self) -> crossfed::Result<(ConfigSource, String)> {
        match (&self.config_parameter, &self.config_file) {
            (Some(name), _) => Ok((ConfigSource::Ssm(name.clone()), "--config-parameter".into())),
            (None, Some(path)) => Ok((ConfigSource::File(path.clone()), "--config-file".into())),
            (None, None) => {
                let source = ConfigSource::from_env(&crossfed::Env::real())?;
                let origin = match source {
                    ConfigSource::Ssm(_) => crossfed::CONFIG_PARAMETER_ENV,
                    _ => crossfed::CREDENTIALS_FILE_ENV,
                };
                Ok((source, origin.to_string()))
            }
        }
    }

    fn builder(self) -> crossfed::Builder {
        let builder = Credentials::builder();
        match (self.config_parameter, self.config_file) {
            (Some(name), _) => builder.with_config_source(ConfigSource::Ssm(name)),
            (None, Some(path)) => builder.with_config_source(ConfigSource::File(path)),
            (None, None) => builder,
        }
    }
}

#[derive(Args)]
struct DoctorArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// The provider's attribute mapping (`google.subject=…,attribute.aws_role=…` or JSON);
    /// default: Google's default AWS mapping.
    #[arg(long)]
    attribute_mapping: Option<String>,
    /// The provider's attribute condition (CEL).
    #[arg(long)]
    attribute_condition: Option<String>,
    /// Read mapping, condition, state and AWS account from the provider (IAM API), with the
    /// access token in CLOUDSDK_AUTH_ACCESS_TOKEN (`gcloud auth print-access-token`).
    #[arg(long)]
    fetch_provider: bool,
    /// IAM API base URL for --fetch-provider.
    #[arg(long, default_value = "https://iam.googleapis.com")]
    iam_endpoint: String,
    /// Test call: list one object of this bucket (default: list one bucket of --project).
    #[arg(long)]
    test_bucket: Option<String>,
    /// Project whose buckets the test call lists.
    #[arg(long, env = "GOOGLE_CLOUD_PROJECT")]
    project: Option<String>,
    /// Print the report as JSON (for CI).
    #[arg(long)]
    json: bool,
}

async fn run(cli: Cli) -> crossfed::Result<ExitCode> {
    match cli.command {
        Command::Doctor(args) => {
            let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
            let storage_endpoint = env("STORAGE_EMULATOR_HOST")
                .map(|h| {
                    if h.contains("://") {
                        h
                    } else {
                        format!("http://{h}")
                    }
                })
                .unwrap_or_else(|| "https://storage.googleapis.com".into());
            let report = doctor::run(doctor::Options {
                source: args.config.source(),
                attribute_mapping: args.attribute_mapping,
                attribute_condition: args.attribute_condition,
                fetch_provider: args.fetch_provider.then(|| doctor::FetchProvider {
                    iam_endpoint: args.iam_endpoint,
                    access_token: env("CLOUDSDK_AUTH_ACCESS_TOKEN"),
                }),
                test_bucket: args.test_bucket,
                project: args.project,
                storage_endpoint,
                allow_local: env(crossfed::ALLOW_LOCAL_ENV).as_deref() == Some("1"),
            })
            .await;
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                );
            } else {
                print!("{}", doctor::render_text(&report));
            }
            return Ok(if report.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            });
        }
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
    Ok(ExitCode::SUCCESS)
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
