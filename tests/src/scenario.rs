//! One federation scenario wired end to end: moto (AWS, from `make test`), the fake Google
//! STS + IAM Credentials, and the fake Cloud Storage gRPC server, plus the credential
//! configuration that points crossfed at them.

use std::time::Duration;

use aws_credential_types::Credentials as AwsCredentials;
use serde_json::{Value, json};

use crate::aws::https_front::HttpsFront;
use crate::aws::localcloud::{LocalCloud, RoleSession};
use crate::google::fake_gcs_server::FakeGcsServer;
use crate::google::fake_google::FakeGoogle;
use crate::google::fake_google_config::FakeGoogleConfig;
use crate::google::fake_storage_grpc::{FakeStorage, FakeStorageConfig};

/// Running fakes for one test.
pub struct Scenario {
    /// The local AWS (moto) and its role sessions.
    pub cloud: LocalCloud,
    /// Fake STS + IAM Credentials.
    pub google: FakeGoogle,
    /// Fake Cloud Storage control plane (gRPC), accepting tokens issued by `google`.
    pub storage: FakeStorage,
    /// The https front moto's STS is reached through, if the scenario has one
    /// ([`Scenario::start_with_https_aws_sts`]).
    pub aws_sts_front: Option<HttpsFront>,
}

/// Cloud Storage as a function under test reaches it: fake-gcs-server for the data path
/// (JSON API) and the gRPC fake backed by it for the control calls, accepting the tokens
/// the scenario's fake Google issues.
pub struct BackedStorage {
    /// fake-gcs-server (`STORAGE_EMULATOR_HOST`), also to inspect buckets directly.
    pub gcs: FakeGcsServer,
    /// The gRPC fake (`STORAGE_EMULATOR_HOST_GRPC`).
    pub grpc: FakeStorage,
}

/// How the credential configuration is shaped.
#[derive(Clone, Debug)]
pub struct ConfigShape {
    /// Impersonate the fake service account.
    pub impersonate: bool,
    /// `service_account_impersonation.token_lifetime_seconds`.
    pub lifetime_secs: Option<u64>,
    /// `credential_source` metadata URLs (e.g. a connection counter) for IMDS checks.
    pub imds_base: Option<String>,
}

impl Default for ConfigShape {
    fn default() -> Self {
        ConfigShape {
            impersonate: true,
            lifetime_secs: None,
            imds_base: None,
        }
    }
}

impl Scenario {
    /// Starts the fakes with the `crossfed-lambda` role bound to the service account.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Like [`Scenario::start`], after `edit` adjusts the fake Google configuration.
    pub async fn start_with(edit: impl FnOnce(&mut FakeGoogleConfig)) -> Self {
        Self::start_inner(LocalCloud::load(), None, edit).await
    }

    /// Like [`Scenario::start`], with moto's STS behind an [`HttpsFront`]: the credential
    /// configuration names
    /// `https://sts.REGION.amazonaws.com:FRONT/?Action=GetCallerIdentity&Version=2011-06-15`
    /// (google-auth signs only for https URLs, and takes the SigV4 service from the host's
    /// first label), and the fake STS replays subject tokens through the front: that name
    /// pinned to the front's loopback address, its test CA trusted. Nothing else connects to
    /// the URL.
    ///
    /// # Panics
    /// If the front cannot start.
    pub async fn start_with_https_aws_sts() -> Self {
        let cloud = LocalCloud::load();
        let host = format!("sts.{}.amazonaws.com", cloud.region);
        let front = HttpsFront::start(&cloud.moto_url, &host)
            .unwrap_or_else(|e| panic!("cannot start the https front for moto: {e}"));
        Self::start_inner(cloud, Some(front), |_| {}).await
    }

    async fn start_inner(
        cloud: LocalCloud,
        front: Option<HttpsFront>,
        edit: impl FnOnce(&mut FakeGoogleConfig),
    ) -> Self {
        let mut config = FakeGoogleConfig {
            aws_sts_url: front
                .as_ref()
                .map_or_else(|| cloud.moto_url.clone(), HttpsFront::url),
            aws_sts_ca_pem: front.as_ref().map(|f| f.ca_pem().to_string()),
            aws_sts_resolve: front.as_ref().map(HttpsFront::addr),
            ..FakeGoogleConfig::default()
        };
        config.bindings =
            vec![config.principal_set_for_aws_role(&LocalCloud::aws_role_attribute(&cloud.role))];
        edit(&mut config);
        let google = FakeGoogle::start(config).await;
        let storage = FakeStorage::start(FakeStorageConfig::default(), google.tokens()).await;
        Scenario {
            cloud,
            google,
            storage,
            aws_sts_front: front,
        }
    }

    /// Starts a [`BackedStorage`] on the local clouds' fake-gcs-server.
    ///
    /// # Panics
    /// If the local clouds have no fake-gcs-server (`LOCALCLOUD_GCS_HTTP`).
    pub async fn backed_storage(&self) -> BackedStorage {
        let gcs = FakeGcsServer::from_local_cloud(&self.cloud);
        let grpc = FakeStorage::start_backed(
            FakeStorageConfig::default(),
            self.google.tokens(),
            gcs.url(),
        )
        .await;
        BackedStorage { gcs, grpc }
    }

    /// The AWS STS GetCallerIdentity URL the credential configuration names: moto's, or
    /// its https front's.
    pub fn get_caller_identity_url(&self) -> String {
        match &self.aws_sts_front {
            Some(front) => format!(
                "{}/?Action=GetCallerIdentity&Version=2011-06-15",
                front.url()
            ),
            None => self.cloud.get_caller_identity_url(),
        }
    }

    /// The `external_account` JSON `gcloud ... create-cred-config --aws` would write,
    /// pointing at the fakes and moto.
    pub fn config_json(&self, shape: &ConfigShape) -> Value {
        let mut source = json!({
            "environment_id": "aws1",
            "regional_cred_verification_url": self.get_caller_identity_url(),
        });
        if let Some(base) = &shape.imds_base {
            source["region_url"] = json!(format!(
                "{base}/latest/meta-data/placement/availability-zone"
            ));
            source["url"] = json!(format!("{base}/latest/meta-data/iam/security-credentials"));
            source["imdsv2_session_token_url"] = json!(format!("{base}/latest/api/token"));
        }
        let mut config = json!({
            "universe_domain": "googleapis.com",
            "type": "external_account",
            "audience": self.google.config().audience,
            "subject_token_type": "urn:ietf:params:aws:token-type:aws4_request",
            "token_url": self.google.sts_url(),
            "credential_source": source,
        });
        if shape.impersonate {
            config["service_account_impersonation_url"] = json!(self.google.impersonation_url());
            if let Some(secs) = shape.lifetime_secs {
                config["service_account_impersonation"] = json!({ "token_lifetime_seconds": secs });
            }
        }
        config
    }

    /// Temporary (ASIA) credentials of a role session, as Lambda has them.
    pub fn session_credentials(session: &RoleSession) -> AwsCredentials {
        AwsCredentials::new(
            &session.access_key_id,
            &session.secret_access_key,
            Some(session.session_token.clone()),
            None,
            "localcloud",
        )
    }

    /// A builder for the given config, as the `crossfed-lambda` role, loopback allowed,
    /// with quick retries.
    pub fn builder(&self, config: &Value) -> crossfed::google::Builder {
        self.builder_as(&self.cloud.role, config)
    }

    /// Like [`Scenario::builder`] for another role session.
    pub fn builder_as(&self, session: &RoleSession, config: &Value) -> crossfed::google::Builder {
        crossfed::google::Credentials::builder()
            .with_config_json(config.to_string())
            .with_aws_identity(
                Self::session_credentials(session),
                self.cloud.region.clone(),
            )
            .with_allow_local_endpoints(true)
            .with_context(quick_context())
    }

    /// Lambda-like environment variables for the `crossfed-lambda` role.
    pub fn lambda_env(&self) -> Vec<(String, String)> {
        let role = &self.cloud.role;
        [
            ("AWS_LAMBDA_FUNCTION_NAME", "crossfed-test"),
            ("AWS_ACCESS_KEY_ID", role.access_key_id.as_str()),
            ("AWS_SECRET_ACCESS_KEY", role.secret_access_key.as_str()),
            ("AWS_SESSION_TOKEN", role.session_token.as_str()),
            ("AWS_REGION", self.cloud.region.as_str()),
            ("AWS_ENDPOINT_URL", self.cloud.moto_url.as_str()),
            ("CROSSFED_ALLOW_LOCAL_ENDPOINTS", "1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// An SSM client acting as the local admin user (to create parameters).
    pub async fn admin_ssm(&self) -> aws_sdk_ssm::Client {
        let creds = AwsCredentials::new(
            &self.cloud.admin_access_key_id,
            &self.cloud.admin_secret_access_key,
            None,
            None,
            "localcloud-admin",
        );
        self.ssm_client(creds).await
    }

    /// An S3 client acting as the local admin user (to create buckets and objects).
    pub async fn admin_s3(&self) -> aws_sdk_s3::Client {
        let creds = AwsCredentials::new(
            &self.cloud.admin_access_key_id,
            &self.cloud.admin_secret_access_key,
            None,
            None,
            "localcloud-admin",
        );
        self.s3_client(creds).await
    }

    /// An S3 client acting as the `crossfed-lambda` role.
    pub async fn role_s3(&self) -> aws_sdk_s3::Client {
        self.s3_client(Self::session_credentials(&self.cloud.role))
            .await
    }

    async fn s3_client(&self, creds: AwsCredentials) -> aws_sdk_s3::Client {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .credentials_provider(creds)
            .region(aws_config::Region::new(self.cloud.region.clone()))
            .endpoint_url(&self.cloud.moto_url)
            .load()
            .await;
        let s3 = aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(s3)
    }

    /// An SSM client acting as the `crossfed-lambda` role.
    pub async fn role_ssm(&self) -> aws_sdk_ssm::Client {
        self.ssm_client(Self::session_credentials(&self.cloud.role))
            .await
    }

    async fn ssm_client(&self, creds: AwsCredentials) -> aws_sdk_ssm::Client {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .credentials_provider(creds)
            .region(aws_config::Region::new(self.cloud.region.clone()))
            .endpoint_url(&self.cloud.moto_url)
            .load()
            .await;
        aws_sdk_ssm::Client::new(&config)
    }

    /// Stores `value` in a new SSM parameter under `/crossfed/` and returns its name.
    pub async fn put_parameter(&self, value: &str, secure: bool) -> String {
        let name = format!("/crossfed/test-{:016x}", fastrand::u64(..));
        self.write_parameter(&name, value, secure).await;
        name
    }

    /// Creates or overwrites the SSM parameter `name`, as the admin user.
    pub async fn write_parameter(&self, name: &str, value: &str, secure: bool) {
        let kind = if secure {
            aws_sdk_ssm::types::ParameterType::SecureString
        } else {
            aws_sdk_ssm::types::ParameterType::String
        };
        self.admin_ssm()
            .await
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(kind)
            .overwrite(true)
            .send()
            .await
            .expect("put SSM parameter as admin");
    }
}

/// A context with [`quick_retries`] (otherwise the process environment and system clock).
pub fn quick_context() -> crossfed::Context {
    crossfed::Context::new().with_retry_policy(quick_retries())
}

/// Retries fast enough for tests.
pub fn quick_retries() -> crossfed::RetryPolicy {
    crossfed::RetryPolicy::default()
        .with_max_attempts(4)
        .with_delays(Duration::from_millis(10), Duration::from_millis(50))
}
