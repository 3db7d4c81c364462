//! `make run`: the list-buckets Lambda on local emulated AWS (moto) and Google Cloud (the
//! strict fakes), through a local Lambda Runtime API. Prints what happened.

use std::path::PathBuf;
use std::time::Instant;

use crossfed_tests::scenario::Scenario;
use crossfed_tests::{FunctionProcess, LambdaRuntimeApi};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let binary = std::env::var_os("LIST_BUCKETS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/debug/list-buckets")
        });
    let s = Scenario::start().await;
    println!("AWS (moto):           {}", s.cloud.moto_url);
    println!("Lambda role session:  {}", s.cloud.role.assumed_arn);
    println!("Google STS (fake):    {}", s.google.sts_url());
    println!(
        "Service account:      {}",
        s.google.config().service_account_email
    );
    println!("GCS gRPC (fake):      {}", s.storage.endpoint());

    let runtime = LambdaRuntimeApi::start().await;
    let env = s.list_buckets_env(&runtime).await;
    let parameter = env
        .iter()
        .find(|(k, _)| k == "CROSSFED_CONFIG_PARAMETER")
        .map(|(_, v)| v.clone());
    println!("Config (SSM):         {}", parameter.unwrap_or_default());
    let _function = FunctionProcess::spawn(&binary, &env, true).map_err(|e| {
        format!(
            "cannot start {}: {e} (build it with `cargo build -p list-buckets`)",
            binary.display()
        )
    })?;

    for label in ["cold", "warm"] {
        let started = Instant::now();
        let response = runtime
            .invoke(serde_json::json!({}))
            .await
            .map_err(|e| format!("{e:?}"))?;
        println!(
            "\nlist-buckets ({label}, {} ms): {response}",
            started.elapsed().as_millis()
        );
        let body: serde_json::Value =
            serde_json::from_str(response["body"].as_str().unwrap_or("{}"))?;
        for bucket in body["buckets"].as_array().into_iter().flatten() {
            println!("  gs://{}", bucket.as_str().unwrap_or_default());
        }
    }
    println!(
        "\nGoogle calls: {} STS exchange(s), {} impersonation(s) for 2 invocations",
        s.google.sts_calls(),
        s.google.iam_calls()
    );
    Ok(())
}
