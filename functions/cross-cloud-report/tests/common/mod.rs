//! A known inventory in the local clouds — S3 buckets in moto, GCS buckets in fake-gcs-server
//! (listed through the backed gRPC fake) — plus the fake Vertex AI, and the function's
//! configuration pointing at all of them.

#![allow(dead_code)]

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::StorageClass;
use cross_cloud_report::handler::App;
use cross_cloud_report::settings::Settings;
use crossfed_tests::scenario::{BackedStorage, ConfigShape, Scenario};
use crossfed_tests::{FakeGcsServer, FakeStorage, FakeVertex, FakeVertexConfig};
use serde_json::json;

pub const SUMMARY: &str = "- Everything listed; one sync pair drifts.";

/// One test's clouds, with buckets named `ccr-{id}-*`.
pub struct Harness {
    pub scenario: Scenario,
    pub storage: FakeStorage,
    pub vertex: FakeVertex,
    /// fake-gcs-server's JSON API.
    pub gcs: FakeGcsServer,
    pub id: String,
}

impl Harness {
    /// S3 (moto):
    /// - `ccr-{id}-s3`: `big.bin` 5000 B STANDARD_IA, `logs/b.log` 2000 B, `logs/a.log` 100 B,
    ///   `img/c.png` 50 B.
    /// - `ccr-{id}-src`: under `data/`: `a.txt` "alpha", `b.txt` "bravo-1", `c.txt` "charlie",
    ///   `d.txt` "delta", `sub/e.txt` "echo"; outside it `other/x` (ignored).
    /// - `ccr-{id}-out`: empty, for reports.
    ///
    /// GCS (fake-gcs-server):
    /// - `ccr-{id}-gcs`: `a` 10 B STANDARD, `dir/b` 3000 B NEARLINE, `dir/c` 500 B STANDARD.
    /// - `ccr-{id}-dst`: under `mirror/`: `a.txt` "alpha" (same), `b.txt` "bravo-2" (same
    ///   size, other MD5), `c.txt` "charlie!!" (other size), `sub/e.txt` "echo" (same),
    ///   `z-extra.txt` "zulu" (extra); outside it `other/q` (ignored).
    /// - `ccr-{id}-gout`: empty, for reports.
    pub async fn start() -> Self {
        let scenario = Scenario::start().await;
        let BackedStorage { gcs, grpc: storage } = scenario.backed_storage().await;
        let vertex = FakeVertex::start(
            FakeVertexConfig {
                reply: Some(SUMMARY.into()),
                ..FakeVertexConfig::default()
            },
            scenario.google.tokens(),
        )
        .await;
        let f = Harness {
            scenario,
            storage,
            vertex,
            gcs,
            id: format!("{:08x}", fastrand::u32(..)),
        };
        f.populate().await;
        f
    }

    pub fn bucket(&self, name: &str) -> String {
        format!("ccr-{}-{name}", self.id)
    }

    async fn populate(&self) {
        let s3 = self.scenario.admin_s3().await;
        for name in ["s3", "src", "out"] {
            s3.create_bucket()
                .bucket(self.bucket(name))
                .send()
                .await
                .expect("create S3 bucket");
        }
        let inventory = self.bucket("s3");
        for (key, size, class) in [
            ("big.bin", 5000, StorageClass::StandardIa),
            ("logs/b.log", 2000, StorageClass::Standard),
            ("logs/a.log", 100, StorageClass::Standard),
            ("img/c.png", 50, StorageClass::Standard),
        ] {
            s3.put_object()
                .bucket(&inventory)
                .key(key)
                .storage_class(class)
                .body(ByteStream::from(vec![b'x'; size]))
                .send()
                .await
                .expect("put S3 object");
        }
        let src = self.bucket("src");
        for (key, body) in [
            ("data/a.txt", "alpha"),
            ("data/b.txt", "bravo-1"),
            ("data/c.txt", "charlie"),
            ("data/d.txt", "delta"),
            ("data/sub/e.txt", "echo"),
            ("other/x", "outside the pair's prefix"),
        ] {
            s3.put_object()
                .bucket(&src)
                .key(key)
                .body(ByteStream::from(body.as_bytes().to_vec()))
                .send()
                .await
                .expect("put S3 object");
        }

        for name in ["gcs", "dst", "gout"] {
            self.gcs
                .create_bucket(&self.bucket(name))
                .await
                .expect("create GCS bucket");
        }
        let gcs = self.bucket("gcs");
        for (key, size, class) in [
            ("a", 10, "STANDARD"),
            ("dir/b", 3000, "NEARLINE"),
            ("dir/c", 500, "STANDARD"),
        ] {
            self.upload_gcs(&gcs, key, &vec![b'y'; size], class).await;
        }
        let dst = self.bucket("dst");
        for (key, body) in [
            ("mirror/a.txt", "alpha"),
            ("mirror/b.txt", "bravo-2"),
            ("mirror/c.txt", "charlie!!"),
            ("mirror/sub/e.txt", "echo"),
            ("mirror/z-extra.txt", "zulu"),
            ("other/q", "outside"),
        ] {
            self.upload_gcs(&dst, key, body.as_bytes(), "STANDARD")
                .await;
        }
    }

    /// Uploads through the JSON API (to set the storage class).
    async fn upload_gcs(&self, bucket: &str, key: &str, data: &[u8], class: &str) {
        self.gcs
            .upload(bucket, &json!({ "name": key, "storageClass": class }), data)
            .await
            .unwrap_or_else(|e| panic!("upload {key}: {e}"));
    }

    /// Reads a GCS object through the JSON API.
    pub async fn read_gcs(&self, bucket: &str, key: &str) -> Option<String> {
        let data = self.gcs.read(bucket, key).await.ok()??;
        String::from_utf8(data.to_vec()).ok()
    }

    /// Reads an S3 object as the admin user.
    pub async fn read_s3(&self, bucket: &str, key: &str) -> String {
        let out = self
            .scenario
            .admin_s3()
            .await
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("get s3://{bucket}/{key}: {e:?}"));
        let bytes = out.body.collect().await.unwrap().into_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    /// Keys under `prefix` in an S3 bucket.
    pub async fn s3_keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let out = self
            .scenario
            .admin_s3()
            .await
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .send()
            .await
            .unwrap();
        out.contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_string))
            .collect()
    }

    /// The function's variables (without credentials), plus `extra` (wins).
    pub fn env(&self, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut env = self.defaults();
        for (k, v) in extra {
            env.retain(|(key, _)| key != k);
            env.push((k.to_string(), v.to_string()));
        }
        env
    }

    fn defaults(&self) -> Vec<(String, String)> {
        [
            (
                "REPORT_GCS_BUCKETS",
                format!("{},gs://{}/dir", self.bucket("gcs"), self.bucket("gcs")),
            ),
            ("REPORT_S3_BUCKETS", self.bucket("s3")),
            (
                "REPORT_SYNC_PAIRS",
                format!(
                    "s3://{}/data=gs://{}/mirror",
                    self.bucket("src"),
                    self.bucket("dst")
                ),
            ),
            (
                "REPORT_OUTPUT",
                format!(
                    "s3://{}/reports,gs://{}/reports/daily",
                    self.bucket("out"),
                    self.bucket("gout")
                ),
            ),
            ("REPORT_TOP_N", "2".to_string()),
            ("GOOGLE_CLOUD_PROJECT", "my-project".to_string()),
            ("VERTEX_TIMEOUT_SECS", "5".to_string()),
            ("GOOGLE_VERTEX_BASE_URL", self.vertex.url()),
            ("STORAGE_EMULATOR_HOST", self.gcs.url().to_string()),
            ("STORAGE_EMULATOR_HOST_GRPC", self.storage.endpoint()),
            ("CROSSFED_ALLOW_LOCAL_ENDPOINTS", "1".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// The function's clients in-process, as the `crossfed-lambda` role, with
    /// [`Harness::env`]`(extra)`.
    pub async fn app(&self, extra: &[(&str, &str)]) -> App {
        let settings = Settings::from_env(&crossfed_kit::Env::from_pairs(self.env(extra)))
            .expect("valid settings");
        let credentials = self
            .scenario
            .builder(&self.scenario.config_json(&ConfigShape::default()))
            .build()
            .expect("crossfed credentials");
        let mut app = App::new(settings, credentials, self.scenario.role_s3().await)
            .await
            .expect("clients");
        app.vertex = app
            .vertex
            .clone()
            .with_retry_delay(std::time::Duration::from_millis(10));
        app
    }
}
