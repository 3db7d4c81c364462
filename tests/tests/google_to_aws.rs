//! Google Cloud → AWS: Google ID tokens (fake metadata server / fake IAM Credentials,
//! RS256) exchanged by moto's AssumeRoleWithWebIdentity, whose test-only hook verifies the
//! signature and evaluates the role's trust policy; then real S3 calls with the credentials.

use std::time::Duration;

use crossfed::CacheSettings;
use crossfed::aws::{self, IdTokenSource, WebIdentity};
use crossfed_tests::GoogleApi;
use crossfed_tests::scenario::{ConfigShape, Scenario, quick_context};
use crossfed_tests::{FakeMetadata, FakeMetadataConfig, LocalCloud};

async fn sts_client(cloud: &LocalCloud) -> aws_sdk_sts::Client {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(cloud.region.clone()))
        .endpoint_url(&cloud.moto_url)
        .no_credentials()
        .load()
        .await;
    aws_sdk_sts::Client::new(&config)
}

async fn builder(cloud: &LocalCloud, audience: &str, source: IdTokenSource) -> aws::Builder {
    WebIdentity::builder(&cloud.google_role_arn, audience)
        .with_id_token_source(source)
        .with_sts_client(sts_client(cloud).await)
        .with_context(quick_context())
}

fn metadata_source(metadata: &FakeMetadata) -> IdTokenSource {
    IdTokenSource::Metadata {
        host: metadata.host(),
    }
}

async fn s3(cloud: &LocalCloud, provider: WebIdentity) -> aws_sdk_s3::Client {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(cloud.region.clone()))
        .endpoint_url(&cloud.moto_url)
        .credentials_provider(provider)
        .load()
        .await;
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    )
}

#[tokio::test]
async fn metadata_token_assumes_the_role_and_s3_works() {
    let cloud = LocalCloud::load();
    let metadata = FakeMetadata::start(FakeMetadataConfig::default()).await;
    let provider = builder(&cloud, &cloud.google_audience, metadata_source(&metadata))
        .await
        .build()
        .unwrap();
    let creds = provider.credentials().await.unwrap();
    assert!(
        creds.access_key_id().starts_with("ASIA"),
        "temporary credentials"
    );
    assert_eq!(
        metadata.last_audience().as_deref(),
        Some(cloud.google_audience.as_str())
    );

    let s3 = s3(&cloud, provider.clone()).await;
    let key = format!("from-google/{:x}.txt", fastrand::u64(..));
    s3.put_object()
        .bucket(&cloud.google_bucket)
        .key(&key)
        .body(b"hello from Google Cloud".to_vec().into())
        .send()
        .await
        .expect("signed S3 put with the assumed-role credentials");
    let listed = s3
        .list_objects_v2()
        .bucket(&cloud.google_bucket)
        .prefix(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.contents().len(), 1);
    assert_eq!(metadata.calls(), 1, "credentials cached across SDK calls");
}

#[tokio::test]
async fn wrong_audience_is_access_denied_naming_the_trust_policy_keys() {
    let cloud = LocalCloud::load();
    let metadata = FakeMetadata::start(FakeMetadataConfig::default()).await;
    let provider = builder(&cloud, "some-other-audience", metadata_source(&metadata))
        .await
        .build()
        .unwrap();
    let msg = provider.credentials().await.unwrap_err().to_string();
    assert!(msg.contains("AccessDenied"), "{msg}");
    assert!(
        msg.contains("accounts.google.com:oaud = \"some-other-audience\""),
        "{msg}"
    );
    assert!(
        msg.contains(&format!(
            "accounts.google.com:sub = \"{}\"",
            cloud.google_sub
        )),
        "{msg}"
    );
}

#[tokio::test]
async fn service_account_not_in_the_trust_policy_is_denied() {
    let cloud = LocalCloud::load();
    let config = FakeMetadataConfig {
        unique_id: "999999999999999999999".into(),
        ..Default::default()
    };
    let metadata = FakeMetadata::start(config).await;
    let provider = builder(&cloud, &cloud.google_audience, metadata_source(&metadata))
        .await
        .build()
        .unwrap();
    let msg = provider.credentials().await.unwrap_err().to_string();
    assert!(
        msg.contains("AccessDenied") && msg.contains("999999999999999999999"),
        "{msg}"
    );
}

#[tokio::test]
async fn expired_id_token_is_reported() {
    let cloud = LocalCloud::load();
    let metadata = FakeMetadata::start(FakeMetadataConfig::default()).await;
    metadata.set_expired_tokens(true);
    let provider = builder(&cloud, &cloud.google_audience, metadata_source(&metadata))
        .await
        .build()
        .unwrap();
    let msg = provider.credentials().await.unwrap_err().to_string();
    assert!(
        msg.contains("ExpiredTokenException") && msg.contains("clock"),
        "{msg}"
    );
}

#[tokio::test]
async fn metadata_unreachable_is_a_clear_error() {
    let cloud = LocalCloud::load();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = closed.local_addr().unwrap().to_string();
    drop(closed);
    let provider = builder(
        &cloud,
        &cloud.google_audience,
        IdTokenSource::Metadata { host: host.clone() },
    )
    .await
    .build()
    .unwrap();
    let err = provider.credentials().await.unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(&host) && msg.contains("GCE_METADATA_HOST"),
        "{msg}"
    );
    assert!(err.is_transient());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_callers_share_one_assume_role() {
    let cloud = LocalCloud::load();
    let metadata = FakeMetadata::start(FakeMetadataConfig::default()).await;
    metadata.inject_faults([crossfed_tests::Fault::Delay(Duration::from_millis(150))]);
    let provider = builder(&cloud, &cloud.google_audience, metadata_source(&metadata))
        .await
        .build()
        .unwrap();
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let p = provider.clone();
            tokio::spawn(
                async move { p.credentials().await.map(|c| c.access_key_id().to_string()) },
            )
        })
        .collect();
    let mut keys = std::collections::HashSet::new();
    for t in tasks {
        keys.insert(t.await.unwrap().unwrap());
    }
    assert_eq!(keys.len(), 1);
    assert_eq!(
        metadata.calls(),
        1,
        "one ID token, one AssumeRoleWithWebIdentity"
    );
}

#[tokio::test]
async fn refreshes_ahead_of_expiry() {
    let cloud = LocalCloud::load();
    let metadata = FakeMetadata::start(FakeMetadataConfig::default()).await;
    let settings = CacheSettings::default().with_refresh_ahead(Duration::from_secs(899));
    let provider = builder(&cloud, &cloud.google_audience, metadata_source(&metadata))
        .await
        .with_duration(Duration::from_secs(900))
        .with_cache_settings(settings)
        .build()
        .unwrap();
    let first = provider.credentials().await.unwrap();
    let left = first
        .expiry()
        .unwrap()
        .duration_since(std::time::SystemTime::now())
        .unwrap();
    assert!(
        left <= Duration::from_secs(900) && left > Duration::from_secs(880),
        "{left:?}"
    );
    assert_eq!(
        provider.credentials().await.unwrap().access_key_id(),
        first.access_key_id()
    );
    tokio::time::sleep(Duration::from_millis(1100)).await; // inside the refresh window now
    let second = provider.credentials().await.unwrap();
    assert_ne!(second.access_key_id(), first.access_key_id());
    assert_eq!(metadata.calls(), 2);
}

/// A provider whose ID tokens come from the fake IAM `generateIdToken`, authorised by
/// crossfed's federated (not impersonated) credentials of the `crossfed-lambda` role.
async fn chained_provider(s: &Scenario) -> WebIdentity {
    let shape = ConfigShape {
        impersonate: false,
        ..Default::default()
    };
    let google = s.builder(&s.config_json(&shape)).build().unwrap();
    let source = IdTokenSource::IamCredentials {
        credentials: google.into(),
        service_account: s.google.config().service_account_email.clone(),
        endpoint: s.google.iam_base_url().parse().unwrap(),
    };
    builder(&s.cloud, &s.cloud.google_audience, source)
        .await
        .with_allow_local_endpoints(true)
        .build()
        .unwrap()
}

/// AWS → Google → AWS: crossfed's federated Google credentials (the principal set bound on
/// the service account) call generateIdToken for it; its ID token assumes the role trusted
/// for Google.
#[tokio::test]
async fn chain_from_aws_through_google_back_to_aws() {
    let s = Scenario::start().await;
    let provider = chained_provider(&s).await;
    let creds = provider.credentials().await.unwrap();
    assert!(creds.access_key_id().starts_with("ASIA"));
    assert_eq!(
        (
            s.google.calls(GoogleApi::Sts),
            s.google.calls(GoogleApi::GenerateAccessToken),
            s.google.calls(GoogleApi::GenerateIdToken)
        ),
        (1, 0, 1)
    );
    let s3 = s3(&s.cloud, provider).await;
    s3.head_bucket()
        .bucket(&s.cloud.google_bucket)
        .send()
        .await
        .expect("S3 as the Google-trusted role");
}

#[tokio::test]
async fn unbound_principal_cannot_mint_id_tokens() {
    let s = Scenario::start_with(|c| c.bindings.clear()).await;
    let provider = chained_provider(&s).await;
    let msg = provider.credentials().await.unwrap_err().to_string();
    assert!(
        msg.contains("PERMISSION_DENIED") && msg.contains("serviceAccountOpenIdTokenCreator"),
        "{msg}"
    );
}

#[tokio::test]
async fn loopback_iam_endpoint_needs_the_opt_in() {
    let cloud = LocalCloud::load();
    let source = IdTokenSource::IamCredentials {
        credentials: crossfed_tests::StaticBearerCredentials::credentials("ya29.unused"),
        service_account: "sa@p.iam.gserviceaccount.com".into(),
        endpoint: "http://127.0.0.1:9".parse().unwrap(),
    };
    let err = builder(&cloud, "aud", source)
        .await
        .with_allow_local_endpoints(false)
        .build()
        .unwrap_err();
    assert!(
        err.to_string().contains("CROSSFED_ALLOW_LOCAL_ENDPOINTS=1"),
        "{err}"
    );
}

#[tokio::test]
async fn session_name_and_policy_are_passed_to_aws() {
    let cloud = LocalCloud::load();
    let metadata = FakeMetadata::start(FakeMetadataConfig::default()).await;
    let provider = builder(&cloud, &cloud.google_audience, metadata_source(&metadata))
        .await
        .with_session_policy("this is not JSON")
        .build()
        .unwrap();
    let msg = provider.credentials().await.unwrap_err().to_string();
    assert!(msg.contains("MalformedPolicyDocument"), "{msg}");

    let bad_name = builder(&cloud, &cloud.google_audience, metadata_source(&metadata))
        .await
        .with_session_name("no spaces allowed")
        .build()
        .unwrap_err();
    assert!(
        matches!(bad_name, crossfed::Error::InvalidConfig { ref field, .. } if field == "session_name")
    );
}
