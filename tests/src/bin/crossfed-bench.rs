//! `make bench`: crossfed vs. the official `google-cloud-auth` external-account credentials
//! on the same configuration, against moto and the local Google fakes, side by side in one
//! run. Writes `BENCHMARKS.md`.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crossfed_tests::scenario::{ConfigShape, Scenario};
use crossfed_tests::{GoogleApi, workspace_root};
use google_cloud_auth::credentials::{CacheableResource, Credentials as GoogleCredentials};
use http::Extensions;

/// Everything from this line of BENCHMARKS.md on is kept when the file is rewritten.
const KEEP_MARKER: &str = "<!-- crossfed-bench keeps";

const WARM_CALLS: usize = 100_000;
const COLD_RUNS: usize = 30;
const CONCURRENT: usize = 200;

struct Stats {
    p50: Duration,
    p99: Duration,
    mean: Duration,
}

fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort();
    let total: Duration = samples.iter().sum();
    Stats {
        p50: samples[samples.len() / 2],
        p99: samples[(samples.len() * 99 / 100).min(samples.len() - 1)],
        mean: total / samples.len() as u32,
    }
}

async fn headers(creds: &GoogleCredentials) {
    match creds.headers(Extensions::new()).await.expect("headers") {
        CacheableResource::New { .. } => {}
        CacheableResource::NotModified => unreachable!("no entity tag given"),
    }
}

struct Contender {
    name: &'static str,
    make: Box<dyn Fn() -> GoogleCredentials>,
}

struct Row {
    name: &'static str,
    warm: Stats,
    cold: Stats,
    calls_per_cold: f64,
    concurrent_calls: usize,
}

async fn measure(s: &Scenario, c: &Contender) -> Row {
    // Cold: a new credentials object per run, one headers() call.
    let before = s.google.calls(GoogleApi::Sts) + s.google.calls(GoogleApi::GenerateAccessToken);
    let mut cold = Vec::with_capacity(COLD_RUNS);
    for _ in 0..COLD_RUNS {
        let creds = (c.make)();
        let started = Instant::now();
        headers(&creds).await;
        cold.push(started.elapsed());
    }
    let calls_per_cold = (s.google.calls(GoogleApi::Sts)
        + s.google.calls(GoogleApi::GenerateAccessToken)
        - before) as f64
        / COLD_RUNS as f64;

    // Warm: the same object, token cached.
    let creds = (c.make)();
    headers(&creds).await;
    let mut warm = Vec::with_capacity(WARM_CALLS);
    for _ in 0..WARM_CALLS {
        let started = Instant::now();
        headers(&creds).await;
        warm.push(started.elapsed());
    }

    // Concurrency: CONCURRENT callers on a cold object.
    let before = s.google.calls(GoogleApi::Sts);
    let creds = (c.make)();
    let tasks: Vec<_> = (0..CONCURRENT)
        .map(|_| {
            let c = creds.clone();
            tokio::spawn(async move { headers(&c).await })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    Row {
        name: c.name,
        warm: stats(warm),
        cold: stats(cold),
        calls_per_cold,
        concurrent_calls: s.google.calls(GoogleApi::Sts) - before,
    }
}

fn us(d: Duration) -> String {
    format!("{:.2} µs", d.as_secs_f64() * 1e6)
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cloud = crossfed_tests::LocalCloud::load();
    // The official library reads AWS credentials and region from these variables only.
    // SAFETY: set before any other thread exists.
    unsafe {
        std::env::set_var("AWS_ACCESS_KEY_ID", &cloud.role.access_key_id);
        std::env::set_var("AWS_SECRET_ACCESS_KEY", &cloud.role.secret_access_key);
        std::env::set_var("AWS_SESSION_TOKEN", &cloud.role.session_token);
        std::env::set_var("AWS_REGION", &cloud.region);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run())
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let s = std::sync::Arc::new(Scenario::start().await);
    let config = s.config_json(&ConfigShape::default());
    let contenders = [
        Contender {
            name: "crossfed",
            make: Box::new({
                let config = config.clone();
                let s = s.clone();
                move || {
                    GoogleCredentials::from(
                        s.builder(&config).build().expect("crossfed credentials"),
                    )
                }
            }),
        },
        Contender {
            name: "google-cloud-auth 1.19 (external_account)",
            make: Box::new({
                let config = config.clone();
                move || {
                    google_cloud_auth::credentials::external_account::Builder::new(config.clone())
                        .build()
                        .expect("official credentials")
                }
            }),
        },
    ];
    let mut rows = Vec::new();
    for c in &contenders {
        eprintln!("measuring {} ...", c.name);
        rows.push(measure(&s, c).await);
    }

    let mut md = String::new();
    writeln!(md, "# Benchmarks\n")?;
    writeln!(
        md,
        "`make bench` (release build) on this project's machine: {} cores, `{}`.",
        std::thread::available_parallelism()?,
        std::env::consts::ARCH
    )?;
    writeln!(
        md,
        "Both libraries use the same `external_account` configuration (with service-account impersonation) against moto (real SigV4 verification of the replayed subject token) and the local Google STS / IAM Credentials fakes, in one process, one after the other.\n"
    )?;
    writeln!(
        md,
        "| library | warm `headers()` p50 | warm p99 | warm mean | cold exchange p50 | cold p99 | Google calls per cold fetch | STS calls for {CONCURRENT} concurrent cold callers |"
    )?;
    writeln!(md, "|---|---|---|---|---|---|---|---|")?;
    for r in &rows {
        writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {:.1} | {} |",
            r.name,
            us(r.warm.p50),
            us(r.warm.p99),
            us(r.warm.mean),
            ms(r.cold.p50),
            ms(r.cold.p99),
            r.calls_per_cold,
            r.concurrent_calls
        )?;
    }
    writeln!(
        md,
        "\nWarm: {WARM_CALLS} sequential calls on one credentials object with a cached token. Cold: {COLD_RUNS} fresh objects, first `headers()` each (subject token signing, STS exchange with the fake replaying to moto, impersonation). Loopback only; absolute cold figures are dominated by moto's signature check."
    )?;
    writeln!(
        md,
        "\nCaveats: the cold timer starts after the credentials object is built, so crossfed's eager work in `build()` (config validation, HTTP client) is outside it, while whatever the official library does lazily on first use is inside it. The official library's AWS source also PUTs to `imdsv2_session_token_url` whenever the config names it (that hangs in Lambda), so the shared configuration here names no metadata URLs."
    )?;
    let sync = workspace_root().join("target/bench-gcs-sync.md");
    if let Ok(row) = std::fs::read_to_string(sync) {
        writeln!(md, "\n## S3 -> GCS replication\n")?;
        writeln!(
            md,
            "`cargo test --release -p gcs-sync --test large_object --test redelivery --test backfill -- --ignored bench_` (run by `make bench` first): the real `gcs-sync` binary under a local Runtime API copies multipart objects from moto to fake-gcs-server through the checksum-verifying proxy, all on this machine's loopback; in the same run, on the same object and endpoints, a boto3 + google-cloud-storage script (`tests/bench/boto3_to_gcs.py`, pinned in `tests/bench/requirements.txt`: streaming GET, resumable upload in 100 MiB chunks with CRC32C) and `rclone copyto` (Debian package; S3 remote on moto, GCS remote with `endpoint` + `anonymous` + `no_check_bucket`) do the same copy: one untimed warm-up copy (the first large upload into a fresh fake-gcs-server is about twice as slow as the next ones), then `BENCH_ROUNDS` (default 3) rounds, each started by another copier; median and range per copier. gcs-sync is timed from the invocation, after its init. Every copy is verified byte for byte. Peak RSS is the function process's `VmHWM`. Moto, the proxy and fake-gcs-server share the same 2 cores with the copier, so times say more about the emulators than about S3 or Cloud Storage.\n"
        )?;
        writeln!(md, "| what | time | throughput | peak RSS |")?;
        writeln!(md, "|---|---|---|---|")?;
        write!(md, "{row}")?;
    }
    let layer = workspace_root().join("target/bench-layer.md");
    if let Ok(section) = std::fs::read_to_string(layer) {
        writeln!(
            md,
            "\n## Lambda layer (crossfed-extension) vs. in-process google-auth, Python\n"
        )?;
        write!(md, "{section}")?;
    }
    // Hand-measured sections (after the marker) survive a re-run.
    let path = workspace_root().join("BENCHMARKS.md");
    if let Ok(old) = std::fs::read_to_string(&path)
        && let Some(at) = old.find(KEEP_MARKER)
    {
        write!(md, "\n{}", &old[at..])?;
    }
    std::fs::write(path, &md)?;
    print!("{md}");
    Ok(())
}
