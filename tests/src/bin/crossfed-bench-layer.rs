//! `make bench` (layer part): the sample Python function `functions/python-list-buckets` with
//! the `crossfed-extension` layer (release build) next to the same function federating
//! in-process with `google-auth` (`tests/bench/python-list-buckets-in-process`), in one run,
//! cold starts interleaved, under the local Runtime + Extensions API, against moto, the fake
//! Google STS / IAM Credentials and fake-gcs-server behind a token-checking proxy. Both use
//! the same credential configuration, whose AWS verification URL is an https front for moto
//! (google-auth signs only for https URLs; the fake STS replays through the front to moto).
//!
//! Measures per cold start: init and first response, peak RSS (`VmHWM`) of the runtime and of
//! the extension, auth calls (STS + IAM) on the cold and on the warm invocations; and the
//! extension's own init and warm token request latency. Writes `target/bench-layer.md`
//! (`crossfed-bench` puts it into BENCHMARKS.md) and prints it.
//!
//! Variables: `CROSSFED_BENCH_COLD_RUNS` (default 7, at least 5), `CROSSFED_EXTENSION_BIN`
//! (default `target/release/crossfed-extension`), `CROSSFED_BENCH_VERBOSE=1` (children's
//! output on the terminal).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crossfed_tests::scenario::{ConfigShape, Scenario};
use crossfed_tests::{
    FunctionProcess, GcsFaultProxy, GoogleApi, LambdaRuntimeApi, free_addr, median, percentile,
    workspace_root,
};
use serde_json::{Value, json};

type Error = Box<dyn std::error::Error>;

const COLD_RUNS_ENV: &str = "CROSSFED_BENCH_COLD_RUNS";
const EXTENSION_BIN_ENV: &str = "CROSSFED_EXTENSION_BIN";
const VERBOSE_ENV: &str = "CROSSFED_BENCH_VERBOSE";
const DEFAULT_COLD_RUNS: usize = 7;
const WARM_INVOKES: usize = 20;
const TOKEN_REQUESTS: usize = 1000;
/// Fresh Python processes timing `import app` (the function's init code) per variant.
const IMPORT_RUNS: usize = 7;
/// Times the function module's import (client construction) in a fresh interpreter.
const IMPORT_APP: &str =
    "import time\nt = time.perf_counter()\nimport app\nprint((time.perf_counter() - t) * 1e3)";
const BUCKETS: [&str; 2] = ["crossfed-bench-layer-a", "crossfed-bench-layer-b"];
const PROJECT: &str = "my-project";
const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:python-list-buckets";
const TOKEN_PATH: &str = "/computeMetadata/v1/instance/service-accounts/default/token";
/// Budgets: what the layer may add to a cold start and to peak RSS.
const TARGET_COLD_MS: f64 = 15.0;
const TARGET_RSS_MIB: f64 = 15.0;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Variant {
    /// `functions/python-list-buckets` + the crossfed-extension layer.
    Layer,
    /// The same function federating in-process with google-auth.
    InProcess,
}

/// One cold start and its warm invocations.
struct Run {
    /// Spawn → the runtime (and the extension) waiting for the first event: Lambda's init.
    init: Duration,
    /// Spawn → first response (init + first invocation).
    cold: Duration,
    warm: Vec<Duration>,
    cold_auth_calls: usize,
    warm_auth_calls: usize,
    rss_runtime_kib: u64,
    rss_extension_kib: Option<u64>,
    /// Extension spawn → registered with the Extensions API.
    ext_registered: Option<Duration>,
    /// Extension spawn → configuration loaded, polling `event/next`.
    ext_ready: Option<Duration>,
}

struct Bench {
    s: Scenario,
    proxy: GcsFaultProxy,
    extension_bin: PathBuf,
    python: PathBuf,
    config_file: PathBuf,
    verbose: bool,
}

fn auth_calls(s: &Scenario) -> usize {
    s.google.calls(GoogleApi::Sts) + s.google.calls(GoogleApi::GenerateAccessToken)
}

fn output(verbose: bool) -> Stdio {
    if verbose {
        Stdio::inherit()
    } else {
        Stdio::null()
    }
}

fn check_buckets(variant: Variant, response: &Value) -> Result<(), Error> {
    let buckets: Vec<&str> = response["buckets"]
        .as_array()
        .map(|b| b.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    // Other runs may have created buckets too; ours must be listed.
    if !BUCKETS.iter().all(|b| buckets.contains(b)) {
        return Err(format!("{variant:?}: unexpected response {response}").into());
    }
    Ok(())
}

/// Polls (1 ms) until the runtime, and with the layer the extension, wait for their first
/// event; returns (init, extension ready).
async fn watch_init(
    api: &LambdaRuntimeApi,
    started: Instant,
    with_extension: bool,
) -> (Option<Duration>, Option<Duration>) {
    let (mut runtime, mut extension) = (None, None);
    let until = started + Duration::from_secs(60);
    while Instant::now() < until {
        if extension.is_none() && with_extension && api.extension_polls() > 0 {
            extension = Some(started.elapsed());
        }
        if runtime.is_none() && api.next_calls() > 0 {
            runtime = Some(started.elapsed());
        }
        if runtime.is_some() && (extension.is_some() || !with_extension) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let init = match (runtime, extension) {
        (Some(r), Some(e)) => Some(r.max(e)),
        (r, _) => r,
    };
    (init, extension)
}

impl Bench {
    fn runtime_command(&self, variant: Variant, env: &[(String, String)]) -> Command {
        self.python_command(variant, env, &["-m", "awslambdaric", "app.handler"])
    }

    fn python_command(&self, variant: Variant, env: &[(String, String)], args: &[&str]) -> Command {
        let dir = match variant {
            Variant::Layer => workspace_root().join("functions/python-list-buckets"),
            Variant::InProcess => {
                workspace_root().join("tests/bench/python-list-buckets-in-process")
            }
        };
        let mut cmd = Command::new(&self.python);
        cmd.args(args)
            .current_dir(&dir)
            .env_clear()
            .envs(
                env.iter()
                    .filter(|(k, _)| !k.starts_with("CROSSFED_"))
                    .map(|(k, v)| (k, v)),
            )
            .env("CROSSFED_SAMPLE_STORAGE_ENDPOINT", self.proxy.url())
            .env("LAMBDA_TASK_ROOT", &dir)
            .env("_HANDLER", "app.handler")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .stdin(Stdio::null())
            .stdout(output(self.verbose))
            .stderr(output(self.verbose));
        if variant == Variant::InProcess {
            cmd.env("CROSSFED_BENCH_CREDENTIAL_CONFIG", &self.config_file)
                .env("GOOGLE_CLOUD_PROJECT", PROJECT);
        }
        cmd
    }

    /// One cold start of `variant`, its warm invocations, and (with the layer, when
    /// `tokens` is given) the warm token latency measured against the running extension.
    /// With `extras` and the layer (one round), also the warm token latency and the Python
    /// `import app` time of both variants, while the extension still runs.
    async fn run(&self, variant: Variant, extras: Option<&mut Extras>) -> Result<Run, Error> {
        let api = LambdaRuntimeApi::start_with_arn(FUNCTION_ARN).await;
        let addr = free_addr().to_string();
        let extra: Vec<(&str, &str)> = match variant {
            Variant::Layer => vec![
                ("CROSSFED_METADATA_ADDR", addr.as_str()),
                ("GCE_METADATA_HOST", addr.as_str()),
                ("GCE_METADATA_IP", addr.as_str()),
            ],
            Variant::InProcess => Vec::new(),
        };
        let env = self
            .s
            .function_env(&api, "python-list-buckets", &extra)
            .await;
        let auth_before = auth_calls(&self.s);

        let started = Instant::now();
        let mut ext_registered = None;
        let extension = match variant {
            Variant::Layer => {
                let mut ext = FunctionProcess::spawn(&self.extension_bin, &env, self.verbose)
                    .map_err(|e| format!("cannot start {}: {e}", self.extension_bin.display()))?;
                // Lambda starts the runtime once every extension has registered.
                while api.extensions().is_empty() {
                    if ext.exited() || started.elapsed() > Duration::from_secs(30) {
                        return Err("the extension did not register".into());
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                ext_registered = Some(started.elapsed());
                Some(ext)
            }
            Variant::InProcess => None,
        };
        let runtime =
            FunctionProcess::spawn_command(self.runtime_command(variant, &env)).map_err(|e| {
                format!(
                    "cannot start {} (run `make ext-clients`): {e}",
                    self.python.display()
                )
            })?;
        let (first, (init, ext_ready)) = tokio::join!(
            api.invoke(json!({})),
            watch_init(&api, started, variant == Variant::Layer)
        );
        let cold = started.elapsed();
        let first = first.map_err(|e| format!("{variant:?}: cold invocation: {e}"))?;
        check_buckets(variant, &first)?;
        let init = init.ok_or(format!("{variant:?}: init not observed"))?;
        let cold_auth_calls = auth_calls(&self.s) - auth_before;

        let auth_before = auth_calls(&self.s);
        let mut warm = Vec::with_capacity(WARM_INVOKES);
        for _ in 0..WARM_INVOKES {
            let t = Instant::now();
            let response = api
                .invoke(json!({}))
                .await
                .map_err(|e| format!("{variant:?}: warm invocation: {e}"))?;
            warm.push(t.elapsed());
            check_buckets(variant, &response)?;
        }
        let warm_auth_calls = auth_calls(&self.s) - auth_before;

        if let Some(extras) = extras
            && variant == Variant::Layer
        {
            extras.tokens.measure(&addr).await?;
            // Alternating, so that both see the same machine load.
            let in_process_env: Vec<(String, String)> = env
                .iter()
                .filter(|(k, _)| !k.starts_with("GCE_METADATA_"))
                .cloned()
                .collect();
            for _ in 0..IMPORT_RUNS {
                extras
                    .import_layer
                    .push(self.import_app(Variant::Layer, &env)?);
                extras
                    .import_in_process
                    .push(self.import_app(Variant::InProcess, &in_process_env)?);
            }
        }
        let rss_runtime_kib = runtime.peak_rss_kib().ok_or("runtime VmHWM")?;
        let rss_extension_kib = match &extension {
            Some(ext) => Some(ext.peak_rss_kib().ok_or("extension VmHWM")?),
            None => None,
        };
        Ok(Run {
            init,
            cold,
            warm,
            cold_auth_calls,
            warm_auth_calls,
            rss_runtime_kib,
            rss_extension_kib,
            ext_registered,
            ext_ready,
        })
    }
}

impl Bench {
    /// `import app` in a fresh interpreter with the function's environment: the function's
    /// own init (imports, client construction; with the layer, google.auth.default()
    /// detecting the metadata server and asking it for the project).
    fn import_app(&self, variant: Variant, env: &[(String, String)]) -> Result<Duration, Error> {
        let out = self
            .python_command(variant, env, &["-c", IMPORT_APP])
            .stdout(Stdio::piped())
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let ms: f64 = text
            .trim()
            .parse()
            .map_err(|_| format!("{variant:?}: import app: {} {text:?}", out.status))?;
        Ok(Duration::from_secs_f64(ms / 1e3))
    }
}

/// What one round measures besides cold starts.
#[derive(Default)]
struct Extras {
    tokens: TokenLatency,
    import_layer: Vec<Duration>,
    import_in_process: Vec<Duration>,
}

/// Warm `token` requests straight to the extension's metadata server.
#[derive(Default)]
struct TokenLatency {
    keep_alive: Vec<Duration>,
    new_connection: Vec<Duration>,
}

impl TokenLatency {
    async fn measure(&mut self, addr: &str) -> Result<(), Error> {
        let url = format!("http://{addr}{TOKEN_PATH}");
        let pooled = reqwest::Client::builder().no_proxy().build()?;
        let fresh = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(0)
            .build()?;
        for (client, samples) in [
            (&pooled, &mut self.keep_alive),
            (&fresh, &mut self.new_connection),
        ] {
            token(client, &url).await?; // connection / first-use warm-up
            for _ in 0..TOKEN_REQUESTS {
                let t = Instant::now();
                token(client, &url).await?;
                samples.push(t.elapsed());
            }
        }
        Ok(())
    }
}

async fn token(client: &reqwest::Client, url: &str) -> Result<(), Error> {
    let response = client
        .get(url)
        .header("Metadata-Flavor", "Google")
        .send()
        .await?;
    let status = response.status();
    let body: Value = response.json().await?;
    if !status.is_success() || body["access_token"].as_str().is_none() {
        return Err(format!("token request: {status} {body}").into());
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

struct Summary {
    cold: Duration,
    cold_min: Duration,
    cold_max: Duration,
    init: Duration,
    warm: Duration,
    rss_runtime_kib: u64,
    rss_extension_kib: Option<u64>,
    rss_total_kib: u64,
    cold_auth_calls: usize,
    warm_auth_calls: usize,
}

fn summarize(runs: &[Run]) -> Summary {
    let cold: Vec<Duration> = runs.iter().map(|r| r.cold).collect();
    let ext: Vec<u64> = runs.iter().filter_map(|r| r.rss_extension_kib).collect();
    Summary {
        cold: median(cold.clone()),
        cold_min: cold.iter().copied().min().unwrap_or_default(),
        cold_max: cold.iter().copied().max().unwrap_or_default(),
        init: median(runs.iter().map(|r| r.init).collect()),
        warm: median(runs.iter().flat_map(|r| r.warm.iter().copied()).collect()),
        rss_runtime_kib: median(runs.iter().map(|r| r.rss_runtime_kib).collect()),
        rss_extension_kib: (!ext.is_empty()).then(|| median(ext)),
        rss_total_kib: median(
            runs.iter()
                .map(|r| r.rss_runtime_kib + r.rss_extension_kib.unwrap_or(0))
                .collect(),
        ),
        cold_auth_calls: runs.iter().map(|r| r.cold_auth_calls).max().unwrap_or(0),
        warm_auth_calls: runs.iter().map(|r| r.warm_auth_calls).sum(),
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let cold_runs = match std::env::var(COLD_RUNS_ENV) {
        Ok(v) => v
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| *n >= 5)
            .ok_or(format!(
                "{COLD_RUNS_ENV}={v:?}: expected a number, at least 5"
            ))?,
        Err(_) => DEFAULT_COLD_RUNS,
    };
    let extension_bin = std::env::var_os(EXTENSION_BIN_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/release/crossfed-extension"));
    if !extension_bin.exists() {
        return Err(format!(
            "{} missing: run `cargo build --release -p crossfed-extension` (or set {EXTENSION_BIN_ENV})",
            extension_bin.display()
        )
        .into());
    }
    let python = workspace_root().join(".venv-ext/bin/python");
    if !python.exists() {
        return Err(format!("{} missing: run `make ext-clients`", python.display()).into());
    }

    let s = Scenario::start_with_https_aws_sts().await;
    let gcs = s
        .cloud
        .gcs_http
        .clone()
        .ok_or("LOCALCLOUD_GCS_HTTP missing: run under `make bench`")?;
    let http = reqwest::Client::builder().no_proxy().build()?;
    for bucket in BUCKETS {
        http.post(format!("{gcs}/storage/v1/b?project={PROJECT}"))
            .json(&json!({ "name": bucket }))
            .send()
            .await?;
    }
    let proxy = GcsFaultProxy::start_checking_tokens(&gcs, s.google.tokens()).await;
    let dir = workspace_root().join("target/bench-layer");
    std::fs::create_dir_all(&dir)?;
    let config_file = dir.join("credential-config.json");
    std::fs::write(
        &config_file,
        s.config_json(&ConfigShape::default()).to_string(),
    )?;
    let bench = Bench {
        s,
        proxy,
        extension_bin,
        python,
        config_file,
        verbose: std::env::var(VERBOSE_ENV).is_ok_and(|v| v == "1"),
    };

    let load_before = loadavg();
    // One unmeasured round first (page cache, Python byte code of site-packages), then
    // `cold_runs` rounds, alternating which variant goes first.
    let (mut layer, mut in_process) = (Vec::new(), Vec::new());
    let mut extras = Extras::default();
    let mut baseline_error: Option<String> = None;
    for round in 0..=cold_runs {
        let order = if round % 2 == 0 {
            [Variant::Layer, Variant::InProcess]
        } else {
            [Variant::InProcess, Variant::Layer]
        };
        for variant in order {
            if variant == Variant::InProcess && baseline_error.is_some() {
                continue;
            }
            let run = match bench
                .run(variant, (round == cold_runs).then_some(&mut extras))
                .await
            {
                Ok(run) => run,
                // The baseline's failure is reported in the table; the layer's is fatal.
                Err(e) if variant == Variant::InProcess => {
                    eprintln!("round {round} {variant:?}: {e}");
                    baseline_error = Some(e.to_string());
                    continue;
                }
                Err(e) => return Err(e),
            };
            eprintln!(
                "round {round} {variant:?}: cold {:.1} ms, init {:.1} ms, RSS {:.1} + {:.1} MiB",
                ms(run.cold),
                ms(run.init),
                mib(run.rss_runtime_kib),
                mib(run.rss_extension_kib.unwrap_or(0))
            );
            if round > 0 {
                match variant {
                    Variant::Layer => layer.push(run),
                    Variant::InProcess => in_process.push(run),
                }
            }
        }
    }
    let load_after = loadavg();
    let md = report(
        &layer,
        &in_process,
        &extras,
        baseline_error.as_deref(),
        cold_runs,
        &bench.extension_bin,
        (&load_before, &load_after),
    )?;
    std::fs::write(workspace_root().join("target/bench-layer.md"), &md)?;
    print!("{md}");
    Ok(())
}

fn report(
    layer: &[Run],
    in_process: &[Run],
    extras: &Extras,
    baseline_error: Option<&str>,
    cold_runs: usize,
    extension_bin: &Path,
    load: (&str, &str),
) -> Result<String, Error> {
    let l = summarize(layer);
    let p = (!in_process.is_empty()).then(|| summarize(in_process));
    let mut md = String::new();
    writeln!(
        md,
        "`cargo run -p crossfed-tests --bin crossfed-bench-layer` (run by `make bench`): `functions/python-list-buckets` (Python 3, `awslambdaric`, google-cloud-storage) with the `crossfed-extension` layer (`{}`, {:.1} MiB) next to the same function federating in-process with `google-auth` (`google.auth.aws.Credentials.from_info`, the seed's way, credentials and client built at init: `tests/bench/python-list-buckets-in-process`), under the local Runtime + Extensions API, against moto (its STS behind a local https front, so that google-auth signs for it), the STS / IAM Credentials fakes and fake-gcs-server behind a token-checking proxy. {cold_runs} cold starts each, interleaved (one unmeasured round first), {WARM_INVOKES} warm invocations after each. Harness: {} build. Load average (1/5/15 min) before: {}, after: {} on {} cores.\n",
        extension_bin
            .strip_prefix(workspace_root())
            .unwrap_or(extension_bin)
            .display(),
        std::fs::metadata(extension_bin).map_or(0.0, |m| m.len() as f64 / 1048576.0),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        load.0,
        load.1,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    )?;
    writeln!(
        md,
        "| python-list-buckets | cold start p50 (min–max) | init p50 | warm invoke p50 | peak RSS p50: runtime + extension | auth calls, cold | auth calls, {} warm invocations |",
        WARM_INVOKES * cold_runs
    )?;
    writeln!(md, "|---|---|---|---|---|---|---|")?;
    for (name, s) in [
        ("with the crossfed layer", Some(&l)),
        ("in-process google-auth", p.as_ref()),
    ] {
        let Some(s) = s else {
            writeln!(
                md,
                "| {name} | failed: {} | | | | | |",
                baseline_error.unwrap_or("no run").replace('|', "/")
            )?;
            continue;
        };
        writeln!(
            md,
            "| {name} | {:.1} ms ({:.1}–{:.1}) | {:.1} ms | {:.2} ms | {:.1} MiB = {:.1} + {:.1} | {} | {} |",
            ms(s.cold),
            ms(s.cold_min),
            ms(s.cold_max),
            ms(s.init),
            ms(s.warm),
            mib(s.rss_total_kib),
            mib(s.rss_runtime_kib),
            mib(s.rss_extension_kib.unwrap_or(0)),
            s.cold_auth_calls,
            s.warm_auth_calls,
        )?;
    }
    let verdict = |met: bool| if met { "met" } else { "**not met**" };
    match &p {
        Some(p) => {
            let cold_added = ms(l.cold) - ms(p.cold);
            let rss_added = mib(l.rss_total_kib) - mib(p.rss_total_kib);
            write!(
                md,
                "\nLayer minus in-process: cold start {cold_added:+.1} ms (target ≤ {TARGET_COLD_MS} ms: {}), peak RSS {rss_added:+.1} MiB (target ≤ {TARGET_RSS_MIB} MiB: {});",
                verdict(cold_added <= TARGET_COLD_MS),
                verdict(rss_added <= TARGET_RSS_MIB),
            )?;
        }
        None => write!(
            md,
            "\nLayer minus in-process: **not measured** (the baseline did not run), so the cold-start and RSS targets (≤ {TARGET_COLD_MS} ms, ≤ {TARGET_RSS_MIB} MiB added) are not evaluated;"
        )?,
    }
    writeln!(
        md,
        " auth calls on warm invocations with the layer: {} (target 0: {}).",
        l.warm_auth_calls,
        verdict(l.warm_auth_calls == 0),
    )?;
    let first_invoke = |runs: &[Run]| median(runs.iter().map(|r| r.cold - r.init).collect());
    let registered: Vec<Duration> = layer.iter().filter_map(|r| r.ext_registered).collect();
    if p.is_some() && !registered.is_empty() {
        writeln!(
            md,
            "\nWhere the cold-start difference comes from (p50s): the runtime starts once the extension has registered ({:.1} ms after spawn); init (runtime waiting for the first event) {:.1} ms with the layer vs {:.1} ms in-process; first invocation (cold start − init) {:.1} ms vs {:.1} ms.",
            ms(median(registered)),
            ms(l.init),
            p.as_ref().map_or(0.0, |p| ms(p.init)),
            ms(first_invoke(layer)),
            ms(first_invoke(in_process)),
        )?;
    }
    if !extras.import_layer.is_empty() && !extras.import_in_process.is_empty() {
        let (il, ip) = (
            median(extras.import_layer.clone()),
            median(extras.import_in_process.clone()),
        );
        writeln!(
            md,
            "Python `import app` (the function's init code; {IMPORT_RUNS} fresh interpreters each, alternating, after the last round with the extension running): {:.1} ms with the layer (`storage.Client()`: google.auth.default() detects the metadata server and asks it for the project) vs {:.1} ms in-process (`aws.Credentials.from_info` + `storage.Client(credentials=..., project=...)`, no request): {:+.1} ms.",
            ms(il),
            ms(ip),
            ms(il) - ms(ip),
        )?;
    }
    writeln!(
        md,
        "\nCold start: spawn (extension first, runtime once it has registered, as Lambda does) to the first response; init: spawn until the runtime and the extension both wait for the first event. Auth calls: Google STS + IAM `generateAccessToken` requests seen by the fakes (at most per cold start). Peak RSS: `VmHWM` of each process after the warm invocations. The in-process baseline reads its credential configuration from a bundled file; the extension fetches it from SSM (one more round trip, included).\n"
    )?;
    let registered: Vec<Duration> = layer.iter().filter_map(|r| r.ext_registered).collect();
    let ready: Vec<Duration> = layer.iter().filter_map(|r| r.ext_ready).collect();
    writeln!(
        md,
        "| crossfed-extension | p50 | min | max |\n|---|---|---|---|"
    )?;
    for (name, v) in [
        ("spawn → registered (Extensions API)", registered),
        (
            "spawn → ready (configuration from SSM, polling events)",
            ready,
        ),
    ] {
        if v.is_empty() {
            continue;
        }
        writeln!(
            md,
            "| {name} | {:.1} ms | {:.1} ms | {:.1} ms |",
            ms(median(v.clone())),
            ms(*v.iter().min().unwrap_or(&Duration::ZERO)),
            ms(*v.iter().max().unwrap_or(&Duration::ZERO)),
        )?;
    }
    writeln!(
        md,
        "\n| warm metadata `token` request ({TOKEN_REQUESTS} sequential) | p50 | p99 |\n|---|---|---|"
    )?;
    for (name, v) in [
        ("keep-alive connection", &extras.tokens.keep_alive),
        ("new connection each", &extras.tokens.new_connection),
    ] {
        if v.is_empty() {
            continue;
        }
        writeln!(
            md,
            "| {name} | {:.3} ms | {:.3} ms |",
            ms(percentile(v.clone(), 50)),
            ms(percentile(v.clone(), 99))
        )?;
    }
    Ok(md)
}
