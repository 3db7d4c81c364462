//! Runs the fake Google STS + IAM Credentials and the fake Cloud Storage gRPC
//! server until killed, printing their URLs as `KEY=VALUE` lines.
//!
//! ```text
//! crossfed-fakes [--google-port N] [--storage-port N] [--aws-sts-url URL]
//!                [--audience AUD] [--service-account EMAIL] [--binding MEMBER]...
//!                [--allowed-aws-role ARN]... [--project-id ID] [--project-number N]
//!                [--bucket NAME]...
//! ```
//! Ports default to 0 (ephemeral). Without `--binding`, every identity of
//! the pool may impersonate the service account.

use std::net::SocketAddr;
use std::process::ExitCode;

use crossfed_tests::{FakeGoogle, FakeGoogleConfig, FakeStorage, FakeStorageConfig, TokenRegistry};

fn main() -> ExitCode {
    match parse(std::env::args().skip(1)) {
        Ok(args) => run(args),
        Err(e) => {
            eprintln!(
                "crossfed-fakes: {e}\nsee the doc comment of tests/src/bin/crossfed-fakes.rs"
            );
            ExitCode::from(2)
        }
    }
}

struct Args {
    google_port: u16,
    storage_port: u16,
    google: FakeGoogleConfig,
    storage: FakeStorageConfig,
}

fn parse(mut argv: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut args = Args {
        google_port: 0,
        storage_port: 0,
        google: FakeGoogleConfig::default(),
        storage: FakeStorageConfig {
            buckets: Vec::new(),
            ..Default::default()
        },
    };
    let mut allowed_roles = Vec::new();
    while let Some(flag) = argv.next() {
        let mut value = || argv.next().ok_or_else(|| format!("{flag} needs a value"));
        let port = |v: String| v.parse::<u16>().map_err(|e| format!("bad port {v:?}: {e}"));
        match flag.as_str() {
            "--google-port" => args.google_port = port(value()?)?,
            "--storage-port" => args.storage_port = port(value()?)?,
            "--aws-sts-url" => args.google.aws_sts_url = value()?,
            "--audience" => args.google.audience = value()?,
            "--service-account" => args.google.service_account_email = value()?,
            "--binding" => args.google.bindings.push(value()?),
            "--allowed-aws-role" => allowed_roles.push(value()?),
            "--project-id" => args.storage.project_id = value()?,
            "--project-number" => args.storage.project_number = value()?,
            "--bucket" => args.storage.buckets.push(value()?),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if args.google.pool_resource().is_none() {
        return Err(format!("malformed --audience {:?}", args.google.audience));
    }
    if args.google.bindings.is_empty() {
        args.google
            .bindings
            .push(args.google.principal_set_for_pool());
    }
    if !allowed_roles.is_empty() {
        args.google.allowed_aws_roles = Some(allowed_roles);
    }
    if args.storage.buckets.is_empty() {
        args.storage.buckets = FakeStorageConfig::default().buckets;
    }
    args.storage.allowed_principals = Some(vec![format!(
        "serviceAccount:{}",
        args.google.service_account_email
    )]);
    Ok(args)
}

fn run(args: Args) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("crossfed-fakes: cannot start a runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let local = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
        let tokens = TokenRegistry::new();
        let google =
            FakeGoogle::start_with(args.google, tokens.clone(), local(args.google_port)).await;
        let storage = FakeStorage::start_on(args.storage, tokens, local(args.storage_port)).await;
        println!("CROSSFED_FAKE_STS_URL={}", google.sts_url());
        println!("CROSSFED_FAKE_IAM_URL={}", google.iam_base_url());
        println!(
            "CROSSFED_FAKE_IMPERSONATION_URL={}",
            google.impersonation_url()
        );
        println!("CROSSFED_FAKE_AUDIENCE={}", google.config().audience);
        println!(
            "CROSSFED_FAKE_SERVICE_ACCOUNT={}",
            google.config().service_account_email
        );
        println!("CROSSFED_FAKE_STORAGE_ENDPOINT={}", storage.endpoint());
        println!("CROSSFED_FAKE_PROJECT={}", storage.config().project_id);
        // The fakes serve on their own threads until the process is killed.
        std::future::pending::<()>().await;
    });
    ExitCode::SUCCESS
}
