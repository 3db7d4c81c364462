//! `crossfed aws ...`: Google Cloud -> AWS (credential_process, env, trust-policy).

use clap::{Args, Subcommand};
use crossfed::aws::{IdTokenSource, WebIdentity};

use super::Outcome;
use super::config::ConfigArgs;

#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
pub enum AwsCommand {
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
pub struct AssumeArgs {
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
        let mut builder = WebIdentity::builder(self.role_arn, self.audience);
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

/// Runs one `aws` subcommand.
pub async fn run(command: AwsCommand) -> Outcome {
    match command {
        AwsCommand::CredentialProcess(args) => {
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
        AwsCommand::Env(args) => {
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
        AwsCommand::TrustPolicy { audience, subs } => {
            let policy = crossfed::aws::google_trust_policy(&audience, &subs);
            println!(
                "{}",
                serde_json::to_string_pretty(&policy).unwrap_or_default()
            );
        }
    }
    Ok(())
}
