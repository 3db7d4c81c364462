//! Shared harness for the gcs-sync integration tests: moto (source bucket, role
//! credentials), fake-gcs-server behind `GcsFaultProxy` (uploads) and the backed gRPC fake
//! (`StorageControl`), events shaped like real S3 notifications.

#![allow(dead_code)]

pub mod backfill;
mod data;
mod events;
pub mod large;
pub mod parts;

use std::time::{Duration, SystemTime};

use aws_sdk_s3::primitives::ByteStream;
use crossfed_kit::Env;
use crossfed_tests::scenario::{BackedStorage, ConfigShape, Scenario};
use crossfed_tests::{FakeGcsServer, FakeStorage, GcsFaultProxy};
use gcs_sync::handler::{App, AwsClients};
use gcs_sync::settings::Settings;
use serde_json::{Value, json};

// Each test binary uses some of these.
#[allow(unused_imports)]
pub use data::{crc32c_b64, data, data_at};
#[allow(unused_imports)]
pub use events::{failures, msg, notification, s3_encode_key, sqs_event};

pub const PREFIX: &str = "mirror";

/// One test's clouds: a fresh S3 bucket and a fresh Cloud Storage bucket.
pub struct Harness {
    pub scenario: Scenario,
    /// gRPC fake backed by fake-gcs-server (`StorageControl`).
    pub grpc: FakeStorage,
    /// Fault proxy in front of fake-gcs-server (`Storage`).
    pub proxy: GcsFaultProxy,
    pub s3: aws_sdk_s3::Client,
    pub backend: String,
    pub source_bucket: String,
    pub dest_bucket: String,
    /// fake-gcs-server's JSON API, to inspect the destination bucket.
    pub gcs: FakeGcsServer,
    sequence: std::sync::atomic::AtomicU64,
}

/// What S3 answered to a put.
#[derive(Clone, Debug)]
pub struct Put {
    pub key: String,
    pub etag: String,
    pub version_id: Option<String>,
    pub size: u64,
}

impl Harness {
    /// The `ComposeObject` calls the gRPC fake received, in order.
    pub fn composes(&self) -> Vec<crossfed_tests::StorageRequestRecord> {
        self.grpc
            .requests()
            .into_iter()
            .filter(|r| r.path == "/google.storage.v2.Storage/ComposeObject")
            .collect()
    }

    pub async fn start() -> Self {
        let scenario = Scenario::start().await;
        let BackedStorage { gcs, grpc } = scenario.backed_storage().await;
        let backend = gcs.url().to_string();
        let proxy = GcsFaultProxy::start(&backend).await;
        let suffix = format!("{:012x}", fastrand::u64(..) >> 16);
        let source_bucket = format!("gcs-sync-src-{suffix}");
        let dest_bucket = format!("gcs-sync-dst-{suffix}");
        let s3 = scenario.admin_s3().await;
        s3.create_bucket()
            .bucket(&source_bucket)
            .send()
            .await
            .expect("create source bucket in moto");
        gcs.create_bucket(&dest_bucket)
            .await
            .expect("create destination bucket");
        Harness {
            scenario,
            grpc,
            proxy,
            s3,
            backend,
            source_bucket,
            dest_bucket,
            gcs,
            sequence: std::sync::atomic::AtomicU64::new(1),
        }
    }

    /// `SYNC_*` for the local clouds, quick retries, plus `extra` (wins).
    pub fn env(&self, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let destination = format!("gs://{}/{PREFIX}", self.dest_bucket);
        let mut env: Vec<(String, String)> = [
            ("SYNC_SOURCE_BUCKET", self.source_bucket.as_str()),
            ("SYNC_DESTINATION", destination.as_str()),
            ("STORAGE_EMULATOR_HOST", self.proxy.url().as_str()),
            ("STORAGE_EMULATOR_HOST_GRPC", self.grpc.endpoint().as_str()),
            ("SYNC_RETRY_ATTEMPTS", "4"),
            ("SYNC_RETRY_INITIAL_BACKOFF_MS", "10"),
            ("SYNC_RETRY_MAX_BACKOFF_MS", "50"),
            ("SYNC_DEADLINE_MARGIN_MS", "1000"),
            ("SYNC_ABORT_MARGIN_MS", "200"),
            ("CROSSFED_ALLOW_LOCAL_ENDPOINTS", "1"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in extra {
            env.retain(|(key, _)| key != k);
            env.push((k.to_string(), v.to_string()));
        }
        env
    }

    pub fn settings(&self, extra: &[(&str, &str)]) -> Settings {
        Settings::from_env(&Env::from_pairs(self.env(extra))).expect("settings")
    }

    /// The function's clients in-process, as the `crossfed-lambda` role.
    pub async fn app(&self, extra: &[(&str, &str)]) -> App {
        let config = self.scenario.config_json(&ConfigShape::default());
        let credentials = self.scenario.builder(&config).build().expect("credentials");
        let aws = AwsClients {
            s3: self.scenario.role_s3().await,
            sqs: self.role_sqs().await,
            continuation: None,
            endpoint: Some(self.scenario.cloud.moto_url.clone()),
        };
        App::new(&self.settings(extra), credentials, aws)
            .await
            .expect("app")
    }

    /// An SQS client acting as the `crossfed-lambda` role.
    pub async fn role_sqs(&self) -> aws_sdk_sqs::Client {
        let creds = Scenario::session_credentials(&self.scenario.cloud.role);
        self.sqs_client(creds).await
    }

    /// An SQS client acting as the local admin user (queues, messages).
    pub async fn admin_sqs(&self) -> aws_sdk_sqs::Client {
        let cloud = &self.scenario.cloud;
        let creds = aws_credential_types::Credentials::new(
            &cloud.admin_access_key_id,
            &cloud.admin_secret_access_key,
            None,
            None,
            "localcloud-admin",
        );
        self.sqs_client(creds).await
    }

    async fn sqs_client(&self, creds: aws_credential_types::Credentials) -> aws_sdk_sqs::Client {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .credentials_provider(creds)
            .region(aws_config::Region::new(self.scenario.cloud.region.clone()))
            .endpoint_url(&self.scenario.cloud.moto_url)
            .load()
            .await;
        aws_sdk_sqs::Client::new(&config)
    }

    /// Runs the handler with `left` until the deadline.
    pub async fn invoke(app: &App, event: Value, left: Duration) -> Result<Value, String> {
        gcs_sync::handler::handle(app, event, SystemTime::now() + left, String::new())
            .await
            .map_err(|e| e.to_string())
    }

    pub async fn put(&self, key: &str, data: Vec<u8>) -> Put {
        let size = data.len() as u64;
        let out = self
            .s3
            .put_object()
            .bucket(&self.source_bucket)
            .key(key)
            .content_type("application/x-test")
            .metadata("origin", "test")
            .body(ByteStream::from(data))
            .send()
            .await
            .expect("put object");
        Put {
            key: key.to_string(),
            etag: out.e_tag().unwrap().trim_matches('"').to_string(),
            version_id: out.version_id().map(str::to_string),
            size,
        }
    }

    /// [`Harness::put`] taking ownership (for concurrent puts).
    pub async fn put_owned(&self, key: String, data: Vec<u8>) -> Put {
        self.put(&key, data).await
    }

    pub async fn delete_source(&self, key: &str) {
        self.s3
            .delete_object()
            .bucket(&self.source_bucket)
            .key(key)
            .send()
            .await
            .expect("delete object");
    }

    /// Turns versioning on for the source bucket.
    pub async fn enable_versioning(&self) {
        self.s3
            .put_bucket_versioning()
            .bucket(&self.source_bucket)
            .versioning_configuration(
                aws_sdk_s3::types::VersioningConfiguration::builder()
                    .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .expect("enable versioning");
    }

    /// A delete without version id: in a versioned bucket, the delete marker's version.
    pub async fn delete_marker(&self, key: &str) -> Put {
        let out = self
            .s3
            .delete_object()
            .bucket(&self.source_bucket)
            .key(key)
            .send()
            .await
            .expect("delete object");
        assert_eq!(out.delete_marker(), Some(true), "not a versioned bucket");
        Put {
            key: key.to_string(),
            etag: String::new(),
            version_id: Some(out.version_id().expect("marker version").to_string()),
            size: 0,
        }
    }

    /// Permanently deletes one version (an object version or a delete marker).
    pub async fn delete_version(&self, key: &str, version_id: &str) {
        self.s3
            .delete_object()
            .bucket(&self.source_bucket)
            .key(key)
            .version_id(version_id)
            .send()
            .await
            .expect("delete version");
    }

    /// What S3 serves for `key` now: its bytes and version id, or `None`.
    pub async fn s3_current(&self, key: &str) -> Option<(Vec<u8>, Option<String>)> {
        match self
            .s3
            .get_object()
            .bucket(&self.source_bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => {
                let version = out.version_id().map(str::to_string);
                let bytes = out.body.collect().await.unwrap().into_bytes().to_vec();
                Some((bytes, version))
            }
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => None,
            Err(e) => panic!("GET {key}: {e:?}"),
        }
    }

    /// The copy of `key` is byte-equal to what S3 serves and records its version, or both
    /// are absent.
    pub async fn assert_follows_s3(&self, key: &str) {
        let name = Self::dest_name(key);
        match (self.s3_current(key).await, self.gcs_object(&name).await) {
            (None, None) => {}
            (Some((bytes, version)), Some(object)) => {
                assert_eq!(self.gcs_bytes(&name).await, bytes, "{key}: bytes differ");
                let recorded = object["metadata"]["x-crossfed-source-version-id"].as_str();
                let version = version.filter(|v| v != "null");
                assert_eq!(recorded, version.as_deref(), "{key}: version differs");
            }
            (s3, gcs) => panic!(
                "{key}: S3 has {}, the copy {}",
                if s3.is_some() { "an object" } else { "none" },
                if gcs.is_some() { "exists" } else { "is absent" }
            ),
        }
    }

    /// The next sequencer (increasing, S3-like 18 hex digits).
    pub fn next_sequencer(&self) -> String {
        let n = self
            .sequence
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        format!("00{:016X}", 0x6554_0000_0000_0000u64 + n)
    }

    /// An S3 notification record as S3 sends it (key URL-encoded).
    pub fn record(&self, event_name: &str, put: &Put, sequencer: &str) -> Value {
        let mut object = json!({
            "key": s3_encode_key(&put.key),
            "sequencer": sequencer,
        });
        if event_name.starts_with("ObjectCreated") {
            object["size"] = json!(put.size);
            object["eTag"] = json!(put.etag);
        }
        if let Some(v) = &put.version_id {
            object["versionId"] = json!(v);
        }
        json!({
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": "us-east-1",
            "eventTime": "2024-05-01T12:00:00.000Z",
            "eventName": event_name,
            "userIdentity": {"principalId": "AWS:AROAEXAMPLE:admin"},
            "requestParameters": {"sourceIPAddress": "127.0.0.1"},
            "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810", "x-amz-id-2": "FMyUVURIY8"},
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "gcs-sync",
                "bucket": {
                    "name": self.source_bucket,
                    "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                    "arn": format!("arn:aws:s3:::{}", self.source_bucket)
                },
                "object": object
            }
        })
    }

    pub fn created(&self, put: &Put) -> Value {
        let seq = self.next_sequencer();
        self.record("ObjectCreated:Put", put, &seq)
    }

    pub fn removed(&self, put: &Put) -> Value {
        let seq = self.next_sequencer();
        self.record("ObjectRemoved:Delete", put, &seq)
    }

    /// Where `key` lands.
    pub fn dest_name(key: &str) -> String {
        format!("{PREFIX}/{key}")
    }

    /// The destination object's JSON resource, if it exists.
    pub async fn gcs_object(&self, name: &str) -> Option<Value> {
        self.gcs
            .object(&self.dest_bucket, name)
            .await
            .unwrap_or_else(|e| panic!("GET {name}: {e}"))
    }

    /// The destination object's custom metadata value.
    pub async fn gcs_metadata(&self, name: &str, key: &str) -> Option<String> {
        self.gcs_object(name).await?["metadata"][key]
            .as_str()
            .map(str::to_string)
    }

    /// Field `field` (`done`, `foreign`, ...) of the checkpoint of the backfill whose
    /// state is `state`.
    pub async fn checkpoint_field(&self, state: &Value, field: &str) -> Option<String> {
        let run = state["run"].as_str().expect("a backfill state");
        let name = format!("{PREFIX}/.crossfed/backfill/{run}");
        self.gcs_metadata(&name, &format!("x-crossfed-backfill-{field}"))
            .await
    }

    /// The destination object's bytes.
    pub async fn gcs_bytes(&self, name: &str) -> Vec<u8> {
        self.gcs_download(name)
            .await
            .bytes()
            .await
            .unwrap()
            .to_vec()
    }

    /// The response carrying the destination object's bytes.
    pub async fn gcs_download(&self, name: &str) -> reqwest::Response {
        self.gcs
            .download(&self.dest_bucket, name)
            .await
            .unwrap_or_else(|e| panic!("download {name}: {e}"))
    }

    /// Names in the destination bucket, sorted.
    pub async fn gcs_names(&self) -> Vec<String> {
        self.gcs
            .object_names(&self.dest_bucket)
            .await
            .expect("list the destination bucket")
    }

    /// Writes `data` at `name` in the destination as another writer would, with `source`
    /// as its source marker (`x-crossfed-source`; none if empty).
    pub async fn plant(&self, name: &str, source: &str, data: &[u8]) {
        let metadata = match source {
            "" => json!({}),
            s => json!({ "x-crossfed-source": s }),
        };
        self.gcs
            .upload(
                &self.dest_bucket,
                &json!({"name": name, "metadata": metadata}),
                data,
            )
            .await
            .unwrap_or_else(|e| panic!("upload {name}: {e}"));
    }

    /// Deletes a destination object, if it exists.
    pub async fn gcs_delete(&self, name: &str) {
        let _ = self.gcs.delete_object(&self.dest_bucket, name).await;
    }
}
