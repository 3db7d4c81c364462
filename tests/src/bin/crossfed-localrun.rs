//! `make run`: the three Lambda functions on local emulated AWS (moto) and Google Cloud
//! (fake-gcs-server behind a checksum-verifying proxy, and the strict fakes), each through a
//! local Lambda Runtime API, as Lambda would run them. Prints what happened.
//!
//! `crossfed-localrun --serve ENV_FILE` (`make watch`): sets up the same fakes and buckets,
//! writes the functions' environment to `ENV_FILE` (`KEY=VALUE` lines, for
//! `cargo lambda watch --env-file`) and keeps the fakes running until killed.

use std::path::PathBuf;
use std::time::Instant;

use crossfed_tests::GoogleApi;
use crossfed_tests::scenario::{BackedStorage, Scenario};
use crossfed_tests::{
    FakeVertex, FakeVertexConfig, FunctionProcess, GcsFaultProxy, LambdaRuntimeApi,
};
use serde_json::{Value, json};

type Error = Box<dyn std::error::Error>;

fn binary(name: &str) -> PathBuf {
    let dir = std::env::var_os("FUNCTIONS_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crossfed_tests::workspace_root().join("target/debug"));
    dir.join(name)
}

/// Fields drop in order: the process is killed before its Runtime API goes away (otherwise
/// the function sees its `next` poll cut and prints an error on the way out).
struct Function {
    _process: FunctionProcess,
    runtime: LambdaRuntimeApi,
}

impl Function {
    async fn start(s: &Scenario, name: &str, extra: &[(&str, &str)]) -> Result<Self, Error> {
        let runtime = LambdaRuntimeApi::start_with_arn(&format!(
            "arn:aws:lambda:us-east-1:123456789012:function:{name}"
        ))
        .await;
        let env = s.function_env(&runtime, name, extra).await;
        let path = binary(name);
        let process = FunctionProcess::spawn(&path, &env, true).map_err(|e| {
            format!(
                "cannot start {}: {e} (run `make run`, which builds it)",
                path.display()
            )
        })?;
        Ok(Function {
            runtime,
            _process: process,
        })
    }

    async fn invoke(&self, label: &str, event: Value) -> Result<Value, Error> {
        let started = Instant::now();
        let out = self
            .runtime
            .invoke(event)
            .await
            .map_err(|e| format!("{label}: {e:?}"))?;
        println!(
            "\n== {label} ({} ms)\n{}",
            started.elapsed().as_millis(),
            serde_json::to_string_pretty(&out)?
        );
        Ok(out)
    }
}

fn sqs_of_s3(records: Vec<Value>) -> Value {
    let messages: Vec<Value> = records
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            json!({
                "messageId": format!("localrun-{i}"),
                "receiptHandle": "localrun",
                "body": json!({ "Records": [r] }).to_string(),
                "attributes": { "ApproximateReceiveCount": "1" },
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:crossfed-sync",
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    json!({ "Records": messages })
}

fn s3_record(
    event: &str,
    bucket: &str,
    key: &str,
    size: i64,
    etag: &str,
    sequencer: &str,
) -> Value {
    // S3 URL-encodes keys in notifications, with `+` for space.
    let encoded: String = url::form_urlencoded::byte_serialize(key.as_bytes()).collect();
    json!({
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        // Now, as S3 stamps it: gcs-sync's ReplicationLag metric starts here.
        "eventTime": crossfed_tests::time_format::format_rfc3339(std::time::SystemTime::now()), "eventName": event,
        "userIdentity": { "principalId": "AWS:AROAEXAMPLE:localrun" },
        "requestParameters": { "sourceIPAddress": "127.0.0.1" },
        "responseElements": { "x-amz-request-id": "LOCALRUN", "x-amz-id-2": "LOCALRUN" },
        "s3": { "s3SchemaVersion": "1.0", "configurationId": "crossfed-sync",
                "bucket": { "name": bucket, "ownerIdentity": { "principalId": "LOCALRUN" }, "arn": format!("arn:aws:s3:::{bucket}") },
                "object": { "key": encoded, "size": size, "eTag": etag, "sequencer": sequencer } }
    })
}

/// `KEY='VALUE'` lines for `cargo lambda watch --env-file`: the Lambda-like environment of
/// [`Scenario::function_env`] without the `AWS_LAMBDA_*` variables cargo lambda sets itself.
/// Quoted, because cargo lambda's parser rejects an unquoted `=` inside a value (session
/// tokens, `REPORT_SYNC_PAIRS`).
async fn write_env_file(s: &Scenario, path: &str, extra: &[(&str, &str)]) -> Result<(), Error> {
    let runtime = LambdaRuntimeApi::start().await;
    let env = s.function_env(&runtime, "crossfed", extra).await;
    let mut text = String::new();
    for (k, v) in env.iter().filter(|(k, _)| !k.starts_with("AWS_LAMBDA_")) {
        if v.contains(['\'', '\n', '\r']) {
            return Err(format!("{k}: a quote or line break cannot go into an env file").into());
        }
        text.push_str(&format!("{k}='{v}'\n"));
    }
    let tmp = format!("{path}.tmp");
    std::fs::write(&tmp, text).map_err(|e| format!("{tmp}: {e}"))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{path}: {e}"))?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let serve = match std::env::args().skip(1).collect::<Vec<_>>().as_slice() {
        [] => None,
        [flag, path] if flag == "--serve" => Some(path.clone()),
        _ => return Err("usage: crossfed-localrun [--serve ENV_FILE]".into()),
    };
    let s = Scenario::start().await;
    let gcs_http = s
        .cloud
        .gcs_http
        .clone()
        .ok_or("LOCALCLOUD_GCS_HTTP missing: run `make run`")?;
    let BackedStorage { gcs, grpc: storage } = s.backed_storage().await;
    let proxy = GcsFaultProxy::start(&gcs_http).await;
    let vertex = FakeVertex::start(FakeVertexConfig::default(), s.google.tokens()).await;
    let grpc = storage.endpoint();
    let http = proxy.url();
    println!("AWS (moto):              {}", s.cloud.moto_url);
    println!("Lambda role session:     {}", s.cloud.role.assumed_arn);
    println!("Google STS / IAM (fake): {}", s.google.sts_url());
    println!("GCS HTTP (fake-gcs-server via checksum proxy): {http}");
    println!("GCS gRPC (fake):         {grpc}");
    println!("Vertex AI (fake):        {}", vertex.url());

    // Local data: a source S3 bucket with a few objects, a destination GCS bucket.
    let run = format!("{:06x}", fastrand::u32(..0xffffff));
    let source = format!("crossfed-localrun-src-{run}");
    let reports = format!("crossfed-localrun-reports-{run}");
    let dest = format!("crossfed-localrun-dst-{run}");
    let s3 = s.admin_s3().await;
    for b in [&source, &reports] {
        s3.create_bucket().bucket(b).send().await?;
    }
    gcs.create_bucket(&dest).await?;
    let objects = [
        (
            "docs/readme.txt",
            "crossfed: keyless AWS <-> Google Cloud\n".repeat(10),
        ),
        ("docs/hello world été.txt", "bonjour\n".repeat(100)),
        (
            "data/numbers.csv",
            (0..2000).map(|i| format!("{i},{}\n", i * i)).collect(),
        ),
    ];
    let mut records = Vec::new();
    for (i, (key, body)) in objects.iter().enumerate() {
        let put = s3
            .put_object()
            .bucket(&source)
            .key(*key)
            .body(body.clone().into_bytes().into())
            .send()
            .await?;
        let etag = put
            .e_tag()
            .unwrap_or_default()
            .trim_matches('"')
            .to_string();
        records.push(s3_record(
            "ObjectCreated:Put",
            &source,
            key,
            body.len() as i64,
            &etag,
            &format!("0062F7A4E8C5D1B2{i:02X}"),
        ));
    }
    println!("\nS3 source s3://{source}: {} objects", objects.len());

    let common = [
        ("GOOGLE_CLOUD_PROJECT", "my-project"),
        ("STORAGE_EMULATOR_HOST", http.as_str()),
        ("STORAGE_EMULATOR_HOST_GRPC", grpc.as_str()),
    ];

    if let Some(path) = serve {
        let destination = format!("gs://{dest}/mirror");
        let pairs = format!("s3://{source}=gs://{dest}/mirror");
        let output = format!("s3://{reports}/reports");
        let vertex_url = vertex.url();
        let mut env = common.to_vec();
        env.extend([
            ("SYNC_DESTINATION", destination.as_str()),
            ("REPORT_GCS_BUCKETS", dest.as_str()),
            ("REPORT_S3_BUCKETS", source.as_str()),
            ("REPORT_SYNC_PAIRS", pairs.as_str()),
            ("REPORT_OUTPUT", output.as_str()),
            ("GOOGLE_VERTEX_BASE_URL", vertex_url.as_str()),
        ]);
        write_env_file(&s, &path, &env).await?;
        println!("\nFunction environment for `cargo lambda watch --env-file`: {path}");
        println!("Serving the fakes until stopped (Ctrl-C).");
        std::future::pending::<()>().await;
    }

    let list = Function::start(&s, "list-buckets", &common).await?;
    list.invoke("list-buckets", json!({})).await?;

    let destination = format!("gs://{dest}/mirror");
    let mut sync_env = common.to_vec();
    sync_env.push(("SYNC_SOURCE_BUCKET", &source));
    sync_env.push(("SYNC_DESTINATION", &destination));
    let sync = Function::start(&s, "gcs-sync", &sync_env).await?;
    sync.invoke(
        "gcs-sync: SQS batch of S3 ObjectCreated events",
        sqs_of_s3(records.clone()),
    )
    .await?;
    sync.invoke(
        "gcs-sync: the same batch redelivered (no-op)",
        sqs_of_s3(records),
    )
    .await?;
    println!("\nObjects in {destination}:");
    for o in gcs.objects(&dest).await? {
        println!(
            "  gs://{dest}/{}  {} bytes  crc32c={}  md5={}",
            o["name"].as_str().unwrap_or_default(),
            o["size"].as_str().unwrap_or_default(),
            o["crc32c"].as_str().unwrap_or_default(),
            o["md5Hash"].as_str().unwrap_or_default()
        );
    }

    let pairs = format!("s3://{source}=gs://{dest}/mirror");
    let output = format!("s3://{reports}/reports");
    let vertex_url = vertex.url();
    let mut report_env = common.to_vec();
    report_env.extend([
        ("REPORT_GCS_BUCKETS", dest.as_str()),
        ("REPORT_S3_BUCKETS", source.as_str()),
        ("REPORT_SYNC_PAIRS", pairs.as_str()),
        ("REPORT_OUTPUT", output.as_str()),
        ("GOOGLE_VERTEX_BASE_URL", vertex_url.as_str()),
    ]);
    let report = Function::start(&s, "cross-cloud-report", &report_env).await?;
    let out = report.invoke("cross-cloud-report (scheduled)", json!({"detail-type": "Scheduled Event", "source": "aws.scheduler", "time": "2026-11-28T06:00:00Z", "detail": {}})).await?;
    if let Some(path) = out["outputs"].as_array().and_then(|o| {
        o.iter()
            .filter_map(Value::as_str)
            .find(|p| p.ends_with(".md"))
    }) {
        let key = path.trim_start_matches(&format!("s3://{reports}/"));
        let md = s3
            .get_object()
            .bucket(&reports)
            .key(key)
            .send()
            .await?
            .body
            .collect()
            .await?
            .into_bytes();
        println!("\n== {path}\n{}", String::from_utf8_lossy(&md));
    }
    println!(
        "Google calls over the whole run: {} STS exchange(s), {} impersonation(s), {} Vertex call(s)",
        s.google.calls(GoogleApi::Sts),
        s.google.calls(GoogleApi::GenerateAccessToken),
        vertex.calls()
    );
    Ok(())
}
