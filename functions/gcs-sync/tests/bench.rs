//! gcs-sync's benchmarks and profiling aids (`--ignored`, release build; `make bench` runs
//! the `bench_*`), apart from the behaviour tests: copy time and peak memory of large
//! objects, throughput against the scripts a user would write instead, a large object over
//! redeliveries and a backfill of 1,000 objects. Rows go to `target/bench-gcs-sync.md` for
//! BENCHMARKS.md.

mod common;

use std::time::{Duration, Instant};

use common::backfill::backfill_objects;
use common::large::{How, copy_large_object, run_function_copy, upload, verify_copy};
use common::parts::{check_copy, redeliver_until_copied};
use common::{Harness, Put, data, data_at, failures, notification, sqs_event};
use crossfed_tests::{Fault, median, venv_python, workspace_root};

const MIB: u64 = 1024 * 1024;
/// The large copy: 1 GiB.
const BENCH_SIZE: u64 = 1024 * MIB;

/// `make bench` only (`--ignored`, release build): the 1 GiB copy's time and peak RSS, one
/// stream (the default) and in parts, written to `target/bench-gcs-sync.md` for
/// BENCHMARKS.md. Not a timed test: it asserts correctness and the memory bound only.
#[tokio::test]
#[ignore = "benchmark: run by make bench"]
async fn bench_one_gib_copy() {
    for how in [How::OneStream, How::Parts] {
        let (elapsed, peak) = copy_large_object(BENCH_SIZE, how).await;
        let mib_s = BENCH_SIZE as f64 / (1 << 20) as f64 / elapsed.as_secs_f64();
        let line = format!(
            "| gcs-sync, 1 GiB multipart S3 object -> GCS ({}) | {:.1} s | {mib_s:.0} MiB/s | {} MiB |\n",
            how.label(),
            elapsed.as_secs_f64(),
            peak / 1024
        );
        append_bench(&line);
    }
}

/// Runs `command`, returning its wall time; panics with its output if it fails.
fn timed(mut command: std::process::Command) -> (Duration, String) {
    let started = Instant::now();
    let output = command.output().expect("spawn");
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "{command:?} failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    (elapsed, stdout)
}

/// The copiers compared by [`bench_throughput_against_scripts`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Copier {
    GcsSync,
    Script,
    Rclone,
}

impl Copier {
    const ALL: [Copier; 3] = [Copier::GcsSync, Copier::Script, Copier::Rclone];

    fn label(self) -> &'static str {
        match self {
            Copier::GcsSync => "gcs-sync",
            Copier::Script => {
                "boto3 streaming GET -> google-cloud-storage resumable upload (100 MiB chunks, CRC32C)"
            }
            Copier::Rclone => "rclone copyto (S3 remote -> GCS remote)",
        }
    }

    /// Copies `put` to the destination bucket, checks the copy byte for byte and removes
    /// it; returns the copy's time and, for gcs-sync, the function's peak RSS in KiB.
    async fn copy(self, h: &Harness, put: &Put, crc: u32) -> (Duration, Option<u64>) {
        let role = &h.scenario.cloud.role;
        let key = put.key.as_str();
        let (name, t, rss) = match self {
            Copier::GcsSync => {
                let (t, peak) = run_function_copy(h, put, &[]).await;
                (Harness::dest_name(key), t, Some(peak))
            }
            Copier::Script => {
                let name = "bench/python.bin".to_string();
                let python = std::env::var_os("BENCH_PYTHON")
                    .map(std::path::PathBuf::from)
                    .unwrap_or_else(|| venv_python(".venv-bench", "bench-tools"));
                let script = workspace_root().join("tests/bench/boto3_to_gcs.py");
                let mut command = std::process::Command::new(&python);
                command
                    .arg(script)
                    .args([&h.source_bucket, key, &h.dest_bucket, &name])
                    .env_remove("AWS_CA_BUNDLE")
                    .env_remove("AWS_PROFILE")
                    .env("STORAGE_EMULATOR_HOST", h.proxy.url())
                    .env("AWS_ENDPOINT_URL", &h.scenario.cloud.moto_url)
                    .env("AWS_ACCESS_KEY_ID", &role.access_key_id)
                    .env("AWS_SECRET_ACCESS_KEY", &role.secret_access_key)
                    .env("AWS_SESSION_TOKEN", &role.session_token)
                    .env("AWS_REGION", &h.scenario.cloud.region);
                let (wall, stdout) = timed(command);
                let reported: serde_json::Value =
                    serde_json::from_str(stdout.trim()).expect("script output");
                // The script times its copy itself: interpreter start and imports excluded.
                let t = Duration::from_secs_f64(reported["seconds"].as_f64().unwrap());
                eprintln!("python: {t:?} (process {wall:?})");
                (name, t, None)
            }
            Copier::Rclone => {
                let name = "bench/rclone.bin".to_string();
                let mut command = std::process::Command::new("rclone");
                command
                    .args([
                        "copyto",
                        &format!("src:{}/{key}", h.source_bucket),
                        &format!("dst:{}/{name}", h.dest_bucket),
                    ])
                    .env_remove("AWS_CA_BUNDLE")
                    .env("RCLONE_CONFIG", "/dev/null")
                    .env("RCLONE_CONFIG_SRC_TYPE", "s3")
                    .env("RCLONE_CONFIG_SRC_PROVIDER", "Other")
                    .env("RCLONE_CONFIG_SRC_ENDPOINT", &h.scenario.cloud.moto_url)
                    .env("RCLONE_CONFIG_SRC_ACCESS_KEY_ID", &role.access_key_id)
                    .env(
                        "RCLONE_CONFIG_SRC_SECRET_ACCESS_KEY",
                        &role.secret_access_key,
                    )
                    .env("RCLONE_CONFIG_SRC_SESSION_TOKEN", &role.session_token)
                    .env("RCLONE_CONFIG_SRC_REGION", &h.scenario.cloud.region)
                    .env("RCLONE_CONFIG_DST_TYPE", "google cloud storage")
                    .env("RCLONE_CONFIG_DST_ANONYMOUS", "true")
                    .env("RCLONE_CONFIG_DST_ENDPOINT", h.proxy.url())
                    // The bucket exists; rclone would otherwise try to create it (needs a
                    // project number).
                    .env("RCLONE_CONFIG_DST_NO_CHECK_BUCKET", "true");
                let (t, _) = timed(command);
                eprintln!("rclone: {t:?}");
                (name, t, None)
            }
        };
        verify_copy(h, &name, put.size, crc).await;
        // fake-gcs-server keeps objects in memory: each copy is removed once checked.
        h.gcs_delete(&name).await;
        (t, rss)
    }
}

/// `make bench`: one multipart object (`BENCH_THROUGHPUT_MIB`, default 256 MiB) copied from
/// moto to fake-gcs-server (through the same checksum-verifying proxy) by gcs-sync, by a
/// boto3 + google-cloud-storage script and by `rclone copyto`, in the same run. One
/// untimed copy warms the emulators (the first large upload into a fresh fake-gcs-server
/// is much slower than the next ones, which would penalise whoever goes first); then
/// `BENCH_ROUNDS` (default 3) rounds, each starting with another copier. Reports the
/// median and the range per copier.
#[tokio::test]
#[ignore = "benchmark: run by make bench"]
async fn bench_throughput_against_scripts() {
    let env_number = |key: &str, default: u64| {
        std::env::var(key)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let mib = env_number("BENCH_THROUGHPUT_MIB", 256);
    let rounds = env_number("BENCH_ROUNDS", 3).max(1) as usize;
    let size = mib << 20;
    let h = Harness::start().await;
    let key = format!("bench/{mib}MiB.bin");
    let (put, crc) = upload(&h, &key, size).await;

    Copier::Script.copy(&h, &put, crc).await;
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); Copier::ALL.len()];
    let mut peak_rss = 0;
    for round in 0..rounds {
        for i in 0..Copier::ALL.len() {
            let which = (round + i) % Copier::ALL.len();
            let (t, rss) = Copier::ALL[which].copy(&h, &put, crc).await;
            times[which].push(t);
            peak_rss = peak_rss.max(rss.unwrap_or(0));
        }
    }
    h.delete_source(&key).await;

    let mut rows = String::new();
    for (copier, mut t) in Copier::ALL.into_iter().zip(times) {
        t.sort();
        let mid = median(t.clone());
        let rss = match copier {
            Copier::GcsSync => format!("{} MiB", peak_rss / 1024),
            _ => String::new(),
        };
        rows += &format!(
            "| {}, {mib} MiB, median of {rounds} ({:.1}-{:.1} s) | {:.1} s | {:.0} MiB/s | {rss} |\n",
            copier.label(),
            t[0].as_secs_f64(),
            t[t.len() - 1].as_secs_f64(),
            mid.as_secs_f64(),
            mib as f64 / mid.as_secs_f64()
        );
    }
    eprint!("{rows}");
    append_bench(&rows);
}

/// Repeats one buffer `count` times (upload source without generation cost).
struct Repeat {
    chunk: bytes::Bytes,
    left: usize,
}

impl google_cloud_storage::streaming_source::StreamingSource for Repeat {
    type Error = std::io::Error;
    async fn next(&mut self) -> Option<Result<bytes::Bytes, Self::Error>> {
        (self.left > 0).then(|| {
            self.left -= 1;
            Ok(self.chunk.clone())
        })
    }
    async fn size_hint(
        &self,
    ) -> Result<google_cloud_storage::streaming_source::SizeHint, Self::Error> {
        Ok(
            google_cloud_storage::streaming_source::SizeHint::with_exact(
                (self.chunk.len() * self.left) as u64,
            ),
        )
    }
}

/// Profiling aid (`--ignored`, release): where a copy's time goes, piece by piece.
#[tokio::test]
#[ignore = "profiling aid"]
async fn profile_copy_pieces() {
    let size: u64 = std::env::var("PROFILE_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
        << 20;
    let h = Harness::start().await;
    let key = "profile/object.bin";
    let (put, _) = upload(&h, key, size).await;
    let s3 = h.scenario.role_s3().await;
    for mode in [false, true] {
        let started = Instant::now();
        let mut req = s3.get_object().bucket(&h.source_bucket).key(key);
        if mode {
            req = req.checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled);
        }
        let mut body = req.send().await.unwrap().body;
        let (mut n, mut frames) = (0u64, 0u64);
        while let Some(b) = body.next().await {
            n += b.unwrap().len() as u64;
            frames += 1;
        }
        assert_eq!(n, size);
        eprintln!(
            "S3 GET drain (checksum_mode={mode}): {:?}, {frames} frames",
            started.elapsed()
        );
    }
    let chunk = bytes::Bytes::from(data_at(1, 0, 1 << 20));
    // One request (threshold above the size), direct and through the proxy, then a
    // resumable upload in 64 MiB chunks (8 MiB chunks take minutes: fake-gcs-server hashes
    // the whole object again on every chunk) through the proxy only (fake-gcs-server's
    // session URLs lack the port, which the proxy rewrites).
    let one_request = size as usize + 1;
    for (label, endpoint, buffer) in [
        ("direct", h.backend.clone(), one_request),
        ("proxy", h.proxy.url(), one_request),
        ("proxy", h.proxy.url(), 64 << 20),
    ] {
        let storage = google_cloud_storage::client::Storage::builder()
            .with_endpoint(&endpoint)
            .with_credentials(crossfed_tests::StaticBearerCredentials::credentials("t"))
            .with_resumable_upload_threshold(buffer)
            .with_resumable_upload_buffer_size(buffer)
            .build()
            .await
            .unwrap();
        let started = Instant::now();
        storage
            .write_object(
                format!("projects/_/buckets/{}", h.dest_bucket),
                format!("profile-{label}-{buffer}"),
                Repeat {
                    chunk: chunk.clone(),
                    left: (size >> 20) as usize,
                },
            )
            .send_buffered()
            .await
            .unwrap();
        eprintln!(
            "GCS upload from memory ({label}, buffer {} MiB): {:?}",
            buffer >> 20,
            started.elapsed()
        );
    }
    for how in [How::OneStream, How::Parts] {
        let app = h.app(how.env()).await;
        h.gcs_delete(&Harness::dest_name(key)).await;
        let event = sqs_event(&[("m".into(), notification(vec![h.created(&put)]))]);
        let started = Instant::now();
        let response = Harness::invoke(&app, event, Duration::from_secs(900))
            .await
            .unwrap();
        assert_eq!(failures(&response), Vec::<String>::new());
        eprintln!("gcs-sync copy ({}): {:?}", how.label(), started.elapsed());
    }
}

/// `make bench` (`--ignored`, release): a 256 MiB object in 8 MiB parts, each invocation
/// cut short after 4 s. Uploads are slowed to 1.5 s and run 4 at a time, so at most two
/// waves (8 parts) finish per invocation, whatever the machine's speed: at least 4
/// invocations (3 redeliveries). Reports the invocations needed.
#[tokio::test]
#[ignore = "benchmark: run by make bench"]
async fn bench_large_object_over_redeliveries() {
    let h = Harness::start().await;
    let app = h
        .app(&[
            ("SYNC_PART_THRESHOLD_BYTES", &(8 * MIB).to_string()),
            ("SYNC_PART_BYTES", &(8 * MIB).to_string()),
            ("SYNC_DEADLINE_MARGIN_MS", "1000"),
            ("SYNC_ABORT_MARGIN_MS", "200"),
        ])
        .await;
    let size = 256 * MIB;
    let body = data(79, size as usize);
    let put = h.put("big/256MiB.bin", body.clone()).await;
    // More delays than parts: uploads cut short by the deadline use some up too.
    h.proxy
        .inject_faults(vec![Fault::Delay(Duration::from_millis(1500)); 96]);
    let invocations = redeliver_until_copied(&h, &app, &put, Duration::from_secs(4), 200).await;
    assert!(invocations >= 4, "only {invocations} invocations");
    check_copy(&h, &put, &body).await;
    let line = format!(
        "| gcs-sync, 256 MiB object, each invocation cut at 4 s (uploads slowed to 1.5 s) | {invocations} invocations ({} redeliveries), no part uploaded twice | | |\n",
        invocations - 1
    );
    append_bench(&line);
}

/// `make bench`: 1,000 objects, pages of 100, about 3 s per invocation.
#[tokio::test]
#[ignore = "benchmark: run by make bench"]
async fn bench_backfill_1000_objects() {
    let (invocations, first, second) =
        backfill_objects(1000, 100, Duration::from_secs(3), Duration::from_secs(1)).await;
    append_bench(&format!(
        "| gcs-sync backfill, 1,000 pre-existing objects (pages of 100, invocations cut at 3 s, checkpointed) | {:.1} s over {invocations} invocations | | |\n\
         | second backfill of the same 1,000 objects: 0 uploads | {:.1} s | | |\n",
        first.as_secs_f64(),
        second.as_secs_f64()
    ));
}

/// Appends a row to `target/bench-gcs-sync.md` (for BENCHMARKS.md).
fn append_bench(line: &str) {
    use std::io::Write as _;
    let out = workspace_root().join("target/bench-gcs-sync.md");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(out)
        .expect("bench output");
    file.write_all(line.as_bytes()).expect("bench output");
}
