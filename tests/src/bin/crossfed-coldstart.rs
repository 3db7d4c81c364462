//! Cold starts of packaged function binaries (`make package` artifacts) under a local Lambda
//! Runtime API, against the local clouds (run by `make coldstart`).
//!
//! ```text
//! crossfed-coldstart [--runs N] NAME=PATH/TO/bootstrap...
//! ```
//! `NAME` is `list-buckets`, `gcs-sync` or `cross-cloud-report`. Each run starts a fresh
//! process (a new execution environment) and measures *init* (spawn until the runtime's
//! first `GET /invocation/next`, what Lambda reports as Init Duration) and the *first
//! invocation* (with the function's sample event; it includes the first SSM read, Google STS
//! exchange and impersonation). Prints a Markdown table of the medians over `N` runs
//! (default 5).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crossfed_tests::lambda::sample_events;
use crossfed_tests::scenario::Scenario;
use crossfed_tests::{
    FakeVertex, FakeVertexConfig, FunctionProcess, GcsFaultProxy, LambdaRuntimeApi, median,
};
use serde_json::{Value, json};

type Error = Box<dyn std::error::Error>;

const INIT_LIMIT: Duration = Duration::from_secs(20);

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// One cold start: spawn, wait for the first `next` poll, invoke once.
async fn cold_start(
    s: &Scenario,
    name: &str,
    binary: &Path,
    env: &[(&str, &str)],
    event: &Value,
) -> Result<(Duration, Duration), Error> {
    let runtime = LambdaRuntimeApi::start_with_arn(&format!(
        "arn:aws:lambda:us-east-1:123456789012:function:{name}"
    ))
    .await;
    let env = s.function_env(&runtime, name, env).await;
    let started = Instant::now();
    let mut process = FunctionProcess::spawn(binary, &env, false)
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    while runtime.next_calls() == 0 {
        if let Some(e) = runtime.init_error() {
            return Err(format!("{name}: init failed: {e:?}").into());
        }
        if process.exited() || started.elapsed() > INIT_LIMIT {
            return Err(
                format!("{name}: no runtime poll within {INIT_LIMIT:?} (exited or hung)").into(),
            );
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let init = started.elapsed();
    let invoked = Instant::now();
    let out = runtime
        .invoke(event.clone())
        .await
        .map_err(|e| format!("{name}: first invocation failed: {e:?}"))?;
    let first = invoked.elapsed();
    if out
        .get("batchItemFailures")
        .is_some_and(|f| f != &json!([]))
    {
        return Err(format!("{name}: batch item failures: {out}").into());
    }
    Ok((init, first))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut runs = 5usize;
    let mut functions = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--runs" {
            runs = args
                .next()
                .and_then(|v| v.parse().ok())
                .filter(|&n| n > 0)
                .ok_or("--runs needs a positive number")?;
        } else if let Some((name, path)) = arg.split_once('=') {
            functions.push((name.to_string(), PathBuf::from(path)));
        } else {
            return Err(format!("unexpected argument {arg:?}: use [--runs N] NAME=PATH...").into());
        }
    }
    if functions.is_empty() {
        return Err("usage: crossfed-coldstart [--runs N] NAME=PATH/TO/bootstrap...".into());
    }

    let s = Scenario::start().await;
    let gcs_http = s
        .cloud
        .gcs_http
        .clone()
        .ok_or("LOCALCLOUD_GCS_HTTP missing: start the local clouds (make coldstart)")?;
    let storage = s.backed_storage().await.grpc;
    let proxy = GcsFaultProxy::start(&gcs_http).await;
    let vertex = FakeVertex::start(FakeVertexConfig::default(), s.google.tokens()).await;
    let (grpc, http, vertex_url) = (storage.endpoint(), proxy.url(), vertex.url());

    // A source object for gcs-sync (the sample event's bucket and key) and a destination.
    let run = format!("{:06x}", fastrand::u32(..0xffffff));
    let dest = format!("crossfed-coldstart-dst-{run}");
    let reports = format!("crossfed-coldstart-reports-{run}");
    let source = "crossfed-source";
    let s3 = s.admin_s3().await;
    let _ = s3.create_bucket().bucket(source).send().await;
    s3.create_bucket().bucket(&reports).send().await?;
    s3.put_object()
        .bucket(source)
        .key("reports/2026/hello world été.txt")
        .body(vec![b'x'; 1024].into())
        .send()
        .await?;
    reqwest::Client::new()
        .post(format!("{gcs_http}/storage/v1/b?project=my-project"))
        .json(&json!({ "name": dest }))
        .send()
        .await?
        .error_for_status()?;
    let destination = format!("gs://{dest}/mirror");
    let pairs = format!("s3://{source}=gs://{dest}/mirror");
    let output = format!("s3://{reports}/reports");

    println!(
        "| function | binary | init (median) | first invocation (median) | cold total (median) | runs |"
    );
    println!("|---|---|---|---|---|---|");
    for (name, binary) in &functions {
        let mut env = vec![
            ("GOOGLE_CLOUD_PROJECT", "my-project"),
            ("STORAGE_EMULATOR_HOST", http.as_str()),
            ("STORAGE_EMULATOR_HOST_GRPC", grpc.as_str()),
        ];
        let event = match name.as_str() {
            "list-buckets" => sample_events::event("list-buckets.json"),
            "gcs-sync" => {
                env.push(("SYNC_DESTINATION", &destination));
                env.push(("SYNC_SOURCE_BUCKET", source));
                // The direct S3 event of the sample, without its made-up ETag and version
                // (so it names the object put above).
                let mut e = sample_events::event("gcs-sync-s3-put.json");
                let object = &mut e["Records"][0]["s3"]["object"];
                object["eTag"] = Value::Null;
                object["versionId"] = Value::Null;
                e
            }
            "cross-cloud-report" => {
                env.extend([
                    ("REPORT_GCS_BUCKETS", dest.as_str()),
                    ("REPORT_S3_BUCKETS", source),
                    ("REPORT_SYNC_PAIRS", pairs.as_str()),
                    ("REPORT_OUTPUT", output.as_str()),
                    ("GOOGLE_VERTEX_BASE_URL", vertex_url.as_str()),
                ]);
                sample_events::event("cross-cloud-report-schedule.json")
            }
            other => return Err(format!("unknown function {other:?}").into()),
        };
        let (mut inits, mut firsts, mut totals) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..runs {
            let (init, first) = cold_start(&s, name, binary, &env, &event).await?;
            inits.push(init);
            firsts.push(first);
            totals.push(init + first);
        }
        let size = std::fs::metadata(binary).map(|m| m.len()).unwrap_or(0);
        println!(
            "| {name} | {:.2} MiB | {} | {} | {} | {runs} |",
            size as f64 / 1048576.0,
            ms(median(inits)),
            ms(median(firsts)),
            ms(median(totals)),
        );
    }
    Ok(())
}
