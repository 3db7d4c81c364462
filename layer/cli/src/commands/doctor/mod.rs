//! `crossfed doctor`: runs the federation chain step by step and prints each step ✓/✗ with
//! the exact fix: configuration → AWS caller → attributes Google computes (the provider's
//! mapping and condition evaluated locally) → STS exchange → impersonation → a test call.

mod fixes;
mod http;
mod options;
mod provider;
mod report;
mod steps;
mod test_call;

pub use options::{FetchProvider, Options};
use report::{Check, Report, STEPS, Status, render_text};

use super::config::ConfigArgs;
use super::{Failure, Outcome};

#[derive(clap::Args)]
pub struct Args {
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

/// Runs `crossfed doctor` and prints the report; exit code 0 only when no step failed.
pub async fn run(args: Args) -> Outcome {
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
    let report = diagnose(Options {
        source: args.config.source(),
        attribute_mapping: args.attribute_mapping,
        attribute_condition: args.attribute_condition,
        fetch_provider: args.fetch_provider.then(|| FetchProvider {
            iam_endpoint: args.iam_endpoint,
            access_token: env("CLOUDSDK_AUTH_ACCESS_TOKEN"),
            allow_local: env(crossfed::ALLOW_LOCAL_ENV).as_deref() == Some("1"),
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
        print!("{}", render_text(&report));
    }
    if report.ok {
        Ok(())
    } else {
        Err(Failure::Reported)
    }
}

/// Runs every step; a failed step skips the ones that depend on it.
pub async fn diagnose(opts: Options) -> Report {
    let mut steps = Vec::new();
    chain(&opts, &mut steps).await;
    for step in STEPS {
        if !steps.iter().any(|c: &Check| c.step == step) {
            steps.push(Check::skip(step, "not run: an earlier step failed"));
        }
    }
    Report {
        ok: !steps.iter().any(|c| c.status == Status::Fail),
        steps,
    }
}

/// The chain, one step after the other, until one fails.
async fn chain(opts: &Options, steps: &mut Vec<Check>) -> Option<()> {
    let loaded = steps::record(steps, steps::configuration(opts).await)?;
    let caller = steps::record(steps, steps::aws_caller(&loaded).await)?;
    let attributes = steps::record(steps, steps::attributes(opts, &loaded, &caller).await)?;
    let exchange = loaded.creds.token().await;
    steps::record(steps, steps::sts(&exchange, &loaded, &attributes))?;
    let token = steps::record(steps, steps::impersonation(exchange, &loaded, &attributes))?;
    let sa = loaded.service_account.as_deref();
    let universe = &loaded.config.universe_domain;
    steps.push(test_call::test_call(opts, token.value.expose(), sa, universe).await);
    Some(())
}
