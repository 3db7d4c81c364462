//! One large object (300 MiB, multipart in S3) through the real binary, in one streamed
//! request (the default below `SYNC_PART_THRESHOLD_BYTES`) and in parts: never held in
//! memory (peak RSS of the function process checked), verified byte for byte.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use common::{Harness, Put, crc32c_b64, data_at, failures, notification, sqs_event};
use crossfed_tests::{FunctionProcess, LambdaRuntimeApi};

const SIZE: u64 = 300 * 1024 * 1024;
/// `make bench`: the 1 GiB copy.
const BENCH_SIZE: u64 = 1024 * 1024 * 1024;
const PART: u64 = 16 * 1024 * 1024;
const SEED: u64 = 0x5eed;
/// Peak resident set size allowed for the function process.
const MAX_RSS_KIB: u64 = 128 * 1024;

/// How the function is set up to copy the object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum How {
    /// The defaults: one multipart upload request, streamed from S3.
    OneStream,
    /// `SYNC_PART_THRESHOLD_BYTES=8 MiB`: parts of 8 MiB, composed.
    Parts,
}

impl How {
    fn env(self) -> &'static [(&'static str, &'static str)] {
        match self {
            How::OneStream => &[],
            How::Parts => &[("SYNC_PART_THRESHOLD_BYTES", "8388608")],
        }
    }

    fn label(self) -> &'static str {
        match self {
            How::OneStream => "one request streamed from S3, CRC32C verified",
            How::Parts => "parts of 8 MiB, CRC32C verified, composed",
        }
    }
}

/// Uploads the deterministic stream in parts; returns the put and its CRC32C.
async fn upload(h: &Harness, key: &str, size: u64) -> (Put, u32) {
    let created =
        h.s3.create_multipart_upload()
            .bucket(&h.source_bucket)
            .key(key)
            .content_type("application/octet-stream")
            .send()
            .await
            .unwrap();
    let upload_id = created.upload_id().unwrap();
    let mut crc = 0u32;
    let mut parts = Vec::new();
    let mut offset = 0;
    while offset < size {
        let len = PART.min(size - offset) as usize;
        let chunk = data_at(SEED, offset, len);
        crc = crc32c::crc32c_append(crc, &chunk);
        let number = (offset / PART + 1) as i32;
        let part =
            h.s3.upload_part()
                .bucket(&h.source_bucket)
                .key(key)
                .upload_id(upload_id)
                .part_number(number)
                .body(ByteStream::from(chunk))
                .send()
                .await
                .unwrap();
        parts.push(
            CompletedPart::builder()
                .part_number(number)
                .e_tag(part.e_tag().unwrap())
                .build(),
        );
        offset += len as u64;
    }
    let done =
        h.s3.complete_multipart_upload()
            .bucket(&h.source_bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .unwrap();
    let put = Put {
        key: key.to_string(),
        etag: done.e_tag().unwrap().trim_matches('"').to_string(),
        version_id: None,
        size,
    };
    (put, crc)
}

/// Pid of our child process running `binary`.
fn child_pid(binary: &Path) -> Option<u32> {
    let me = std::process::id();
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let ppid: u32 = stat
                .rsplit(')')
                .next()?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
            (ppid == me && exe == binary).then_some(pid)
        })
}

/// The function binary: `GCS_SYNC_BIN` (e.g. the packaged release `bootstrap`, so that the
/// harness may be a debug build), else the one cargo built with this test.
fn function_binary() -> std::path::PathBuf {
    let path = std::env::var_os("GCS_SYNC_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_gcs-sync").into());
    path.canonicalize()
        .unwrap_or_else(|e| panic!("GCS_SYNC_BIN {}: {e}", path.display()))
}

/// Runs the real binary under a local Runtime API on the created event for `put`;
/// returns the replication time and the function's peak RSS in KiB.
async fn run_function_copy(h: &Harness, put: &Put, extra_env: &[(&str, &str)]) -> (Duration, u64) {
    let binary = function_binary();
    let runtime =
        LambdaRuntimeApi::start_with_arn("arn:aws:lambda:us-east-1:123456789012:function:gcs-sync")
            .await;
    // `SYNC_*` settings in the bench's environment (e.g. SYNC_PART_CONCURRENCY) are passed on.
    let from_bench: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.starts_with("SYNC_"))
        .collect();
    let mut extra: Vec<(&str, &str)> = extra_env.to_vec();
    extra.extend(from_bench.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let env = h.env(&extra);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let env = h.scenario.function_env(&runtime, "gcs-sync", &env).await;
    // GCS_SYNC_BENCH_LOGS=1: the function's logs (per-run timings of the parts) on stderr.
    let logs = std::env::var_os("GCS_SYNC_BENCH_LOGS").is_some();
    let _function = FunctionProcess::spawn(&binary, &env, logs).unwrap();

    let mut record = h.created(put);
    record["eventName"] = "ObjectCreated:CompleteMultipartUpload".into();
    let event = sqs_event(&[("big".into(), notification(vec![record]))]);
    // The copy is timed, not the cold start (measured by the cold-start bench): the
    // function has finished its init when it asks for the first event.
    let ready = Instant::now();
    while runtime.next_calls() == 0 {
        assert!(ready.elapsed() < Duration::from_secs(30), "function init");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let started = Instant::now();
    let response = runtime
        .invoke_with_timeout(event, Duration::from_secs(900))
        .await
        .expect("invocation");
    let elapsed = started.elapsed();
    eprintln!("replicated in {elapsed:?}");
    assert_eq!(failures(&response), Vec::<String>::new());
    let pid = child_pid(&binary).expect("function process");
    let peak = crossfed_tests::peak_rss_kib(pid).expect("VmHWM");
    eprintln!("function peak RSS: {} MiB", peak / 1024);
    assert!(peak < MAX_RSS_KIB, "peak RSS {peak} KiB");
    (elapsed, peak)
}

/// Streams `name` from the destination and compares it with the deterministic stream.
async fn verify_copy(h: &Harness, name: &str, size: u64, crc: u32) {
    let object = h.gcs_object(name).await.expect("copied");
    assert_eq!(object["size"], size.to_string(), "{name}");
    assert_eq!(object["crc32c"], crc32c_b64(crc), "{name}");
    let mut download = h.gcs_download(name).await;
    let mut offset = 0u64;
    let mut streamed_crc = 0u32;
    while let Some(chunk) = download.chunk().await.unwrap() {
        assert_eq!(
            &chunk[..],
            &data_at(SEED, offset, chunk.len())[..],
            "difference within {} bytes after offset {offset}",
            chunk.len()
        );
        streamed_crc = crc32c::crc32c_append(streamed_crc, &chunk);
        offset += chunk.len() as u64;
    }
    assert_eq!((offset, streamed_crc), (size, crc));
}

/// Copies a `size`-byte multipart object through the real binary as `how` says and
/// verifies it byte for byte; returns the replication time and the function's peak RSS in
/// KiB.
async fn copy_large_object(size: u64, how: How) -> (Duration, u64) {
    let h = Harness::start().await;
    let key = format!("large/{}MiB.bin", size >> 20);
    let key = key.as_str();
    let started = Instant::now();
    let (put, crc) = upload(&h, key, size).await;
    assert!(
        put.etag.ends_with(&format!("-{}", size.div_ceil(PART))),
        "multipart ETag: {}",
        put.etag
    );
    eprintln!("uploaded to S3 in {:?}", started.elapsed());
    let (elapsed, peak) = run_function_copy(&h, &put, how.env()).await;
    let name = Harness::dest_name(key);
    assert_eq!(
        h.gcs_metadata(&name, "x-crossfed-source-etag")
            .await
            .as_deref(),
        Some(put.etag.as_str())
    );
    // Every upload declared its CRC32C, verified by the proxy.
    let uploads: Vec<_> = h
        .proxy
        .requests()
        .into_iter()
        .filter(|r| r.upload_bytes.is_some())
        .collect();
    assert!(
        uploads.iter().all(|r| r.checksum_ok == Some(true)),
        "{uploads:#?}"
    );
    let composes = h.composes().len();
    match how {
        How::OneStream => {
            assert_eq!(uploads.len(), 1, "one request: {uploads:#?}");
            assert_eq!(uploads[0].upload_bytes, Some(size));
            assert!(uploads[0].path.contains("uploadType=multipart"));
            assert_eq!(composes, 0);
        }
        How::Parts => {
            assert_eq!(uploads.len() as u64, size.div_ceil(8 << 20), "one per part");
            assert!(composes > 0);
        }
    }
    verify_copy(&h, &name, size, crc).await;
    h.gcs_delete(&name).await;
    h.delete_source(key).await;
    (elapsed, peak)
}

#[tokio::test]
async fn streams_a_300_mib_object_in_one_request_with_bounded_memory() {
    copy_large_object(SIZE, How::OneStream).await;
}

#[tokio::test]
async fn copies_a_300_mib_object_in_parts_with_bounded_memory() {
    copy_large_object(SIZE, How::Parts).await;
}

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
        common::append_bench(&line);
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
                let python = std::env::var("BENCH_PYTHON").unwrap_or_else(|_| {
                    concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv-bench/bin/python").to_string()
                });
                let script = concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/../../tests/bench/boto3_to_gcs.py"
                );
                let mut command = std::process::Command::new(&python);
                command
                    .args([script, &h.source_bucket, key, &h.dest_bucket, &name])
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
        let median = t[t.len() / 2];
        let rss = match copier {
            Copier::GcsSync => format!("{} MiB", peak_rss / 1024),
            _ => String::new(),
        };
        rows += &format!(
            "| {}, {mib} MiB, median of {rounds} ({:.1}-{:.1} s) | {:.1} s | {:.0} MiB/s | {rss} |\n",
            copier.label(),
            t[0].as_secs_f64(),
            t[t.len() - 1].as_secs_f64(),
            median.as_secs_f64(),
            mib as f64 / median.as_secs_f64()
        );
    }
    eprint!("{rows}");
    common::append_bench(&rows);
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
