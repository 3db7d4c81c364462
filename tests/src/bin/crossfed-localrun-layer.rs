//! `make run` (layer part): the sample Python function `functions/python-list-buckets`, run by
//! `awslambdaric` with the `crossfed-extension` layer beside it under a local Lambda Runtime +
//! Extensions API, against moto, the fake Google STS / IAM and fake-gcs-server (behind a
//! token-checking proxy). Prints the buckets it lists.
//!
//! The extension binary is `FUNCTIONS_BIN_DIR/crossfed-extension` when `FUNCTIONS_BIN_DIR` is
//! set (as for `crossfed-localrun`; `make smoke-arm64` points it at qemu wrappers of the
//! packaged arm64 binaries), else the workspace's `target/debug/crossfed-extension`.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crossfed_tests::scenario::Scenario;
use crossfed_tests::{
    FakeGcsServer, FunctionProcess, GcsFaultProxy, GoogleApi, JsonApiError, LambdaRuntimeApi,
};
use serde_json::json;

type Error = Box<dyn std::error::Error>;

/// The checkout whose venv, sample function and binaries to use: `CROSSFED_WORKSPACE` (set
/// by `make run`, so binaries built in one checkout run in another), else the one this binary
/// was built from.
fn workspace() -> PathBuf {
    std::env::var_os("CROSSFED_WORKSPACE")
        .map(PathBuf::from)
        .unwrap_or_else(crossfed_tests::workspace_root)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let s = Scenario::start().await;
    let gcs = FakeGcsServer::new(
        s.cloud
            .gcs_http
            .as_deref()
            .ok_or("LOCALCLOUD_GCS_HTTP missing: run `make run`")?,
    );
    for bucket in ["crossfed-layer-demo-a", "crossfed-layer-demo-b"] {
        // Already there from an earlier run is fine; unreachable is not.
        if let Err(JsonApiError::Io(e)) = gcs.create_bucket(bucket).await {
            return Err(e.into());
        }
    }
    let proxy = GcsFaultProxy::start_checking_tokens(gcs.url(), s.google.tokens()).await;
    let api = LambdaRuntimeApi::start_with_arn(
        "arn:aws:lambda:us-east-1:123456789012:function:python-list-buckets",
    )
    .await;
    // The layer's default is 127.0.0.1:8173; a free port keeps parallel runs apart.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .to_string();
    let addr = addr.as_str();
    let env = s
        .function_env(
            &api,
            "python-list-buckets",
            &[
                ("CROSSFED_METADATA_ADDR", addr),
                ("GCE_METADATA_HOST", addr),
                ("GCE_METADATA_IP", addr),
            ],
        )
        .await;
    let extension_bin = std::env::var_os("FUNCTIONS_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/debug"))
        .join("crossfed-extension");
    let started = Instant::now();
    let _extension = FunctionProcess::spawn(&extension_bin, &env, true)
        .map_err(|e| format!("cannot start {}: {e}", extension_bin.display()))?;
    if !api.wait_for_extensions(1, Duration::from_secs(10)).await {
        return Err("the extension did not register".into());
    }
    let function_dir = workspace().join("functions/python-list-buckets");
    let python = workspace().join(".venv-ext/bin/python");
    let mut runtime = Command::new(&python)
        .args(["-m", "awslambdaric", "app.handler"])
        .current_dir(&function_dir)
        .env_clear()
        .envs(
            env.iter()
                .filter(|(k, _)| !k.starts_with("CROSSFED_"))
                .map(|(k, v)| (k, v)),
        )
        .env("CROSSFED_SAMPLE_STORAGE_ENDPOINT", proxy.url())
        .env("LAMBDA_TASK_ROOT", &function_dir)
        .env("_HANDLER", "app.handler")
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| {
            format!(
                "cannot start {} (run `make ext-clients`): {e}",
                python.display()
            )
        })?;
    let result = api.invoke(json!({})).await;
    let cold = started.elapsed();
    let warm_started = Instant::now();
    let again = api.invoke(json!({})).await;
    let warm = warm_started.elapsed();
    let _ = runtime.kill();
    let _ = runtime.wait();
    let result = result.map_err(|e| format!("python-list-buckets: {e}"))?;
    again.map_err(|e| format!("python-list-buckets (warm): {e}"))?;
    println!(
        "\n== python-list-buckets with the crossfed layer (cold {} ms, warm {} ms)\n{}",
        cold.as_millis(),
        warm.as_millis(),
        serde_json::to_string_pretty(&result)?
    );
    println!(
        "auth calls: STS {}, IAM generateAccessToken {}; GCS requests {} (all with the extension's token)",
        s.google.calls(GoogleApi::Sts),
        s.google.calls(GoogleApi::GenerateAccessToken),
        proxy.calls()
    );
    Ok(())
}
