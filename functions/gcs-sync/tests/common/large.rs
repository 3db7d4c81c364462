//! One large multipart S3 object copied through the real binary under a local Runtime
//! API, its memory measured and the copy verified byte for byte (behaviour tests and
//! benchmarks share it).

use std::path::Path;
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};
use crossfed_tests::{FunctionProcess, LambdaRuntimeApi};

use super::{Harness, Put, crc32c_b64, data_at, failures, notification, sqs_event};

pub const PART: u64 = 16 * 1024 * 1024;
pub const SEED: u64 = 0x5eed;
/// Peak resident set size allowed for the function process.
pub const MAX_RSS_KIB: u64 = 128 * 1024;

/// How the function is set up to copy the object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum How {
    /// The defaults: one multipart upload request, streamed from S3.
    OneStream,
    /// `SYNC_PART_THRESHOLD_BYTES=8 MiB`: parts of 8 MiB, composed.
    Parts,
}

impl How {
    pub fn env(self) -> &'static [(&'static str, &'static str)] {
        match self {
            How::OneStream => &[],
            How::Parts => &[("SYNC_PART_THRESHOLD_BYTES", "8388608")],
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            How::OneStream => "one request streamed from S3, CRC32C verified",
            How::Parts => "parts of 8 MiB, CRC32C verified, composed",
        }
    }
}

/// Uploads the deterministic stream in parts; returns the put and its CRC32C.
pub async fn upload(h: &Harness, key: &str, size: u64) -> (Put, u32) {
    upload_with_checksum(h, key, size, None).await
}

/// [`upload`], each part with a `checksum` (S3 then keeps a COMPOSITE checksum of the
/// object, except CRC64NVME).
pub async fn upload_with_checksum(
    h: &Harness,
    key: &str,
    size: u64,
    checksum: Option<ChecksumAlgorithm>,
) -> (Put, u32) {
    let created =
        h.s3.create_multipart_upload()
            .bucket(&h.source_bucket)
            .key(key)
            .content_type("application/octet-stream")
            .set_checksum_algorithm(checksum.clone())
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
                .set_checksum_algorithm(checksum.clone())
                .body(ByteStream::from(chunk))
                .send()
                .await
                .unwrap();
        parts.push(
            CompletedPart::builder()
                .part_number(number)
                .e_tag(part.e_tag().unwrap())
                .set_checksum_crc32(part.checksum_crc32().map(str::to_string))
                .set_checksum_crc32_c(part.checksum_crc32_c().map(str::to_string))
                .set_checksum_crc64_nvme(part.checksum_crc64_nvme().map(str::to_string))
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
pub fn child_pid(binary: &Path) -> Option<u32> {
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
pub fn function_binary() -> std::path::PathBuf {
    let path = std::env::var_os("GCS_SYNC_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_gcs-sync").into());
    path.canonicalize()
        .unwrap_or_else(|e| panic!("GCS_SYNC_BIN {}: {e}", path.display()))
}

/// Runs the real binary under a local Runtime API on the created event for `put`;
/// returns the replication time and the function's peak RSS in KiB.
pub async fn run_function_copy(
    h: &Harness,
    put: &Put,
    extra_env: &[(&str, &str)],
) -> (Duration, u64) {
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
pub async fn verify_copy(h: &Harness, name: &str, size: u64, crc: u32) {
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
pub async fn copy_large_object(size: u64, how: How) -> (Duration, u64) {
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
