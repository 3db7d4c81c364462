//! The AWS → Google federation flow against moto (real SigV4 checks) and the strict Google
//! fakes. Run through `make test`, which starts the local clouds.

use std::sync::Arc;
use std::time::Duration;

use crossfed::google::Credentials;
use crossfed::{CacheSettings, Context, Error};
use crossfed_tests::GoogleApi;
use crossfed_tests::scenario::{ConfigShape, Scenario};
use crossfed_tests::{ConnectionCounter, Fault, IAM_SCOPE};
use google_cloud_auth::credentials::{CacheableResource, CredentialsProvider};
use http::Extensions;

/// The error a fresh credentials object reports for its first token.
async fn token_error(builder: crossfed::google::Builder) -> Error {
    let creds = builder.build().expect("valid configuration");
    creds.token().await.expect_err("the exchange must fail")
}

async fn bearer(creds: &Credentials) -> String {
    match creds.headers(Extensions::new()).await.expect("headers") {
        CacheableResource::New { data, .. } => data["authorization"].to_str().unwrap().to_string(),
        CacheableResource::NotModified => panic!("no entity tag was given"),
    }
}

#[tokio::test]
async fn happy_path_with_impersonation() {
    let s = Scenario::start().await;
    let creds = s
        .builder(&s.config_json(&ConfigShape::default()))
        .build()
        .unwrap();
    let auth = bearer(&creds).await;
    let token = auth.strip_prefix("Bearer ").expect("bearer header");
    let info = s
        .google
        .validate_token(token)
        .expect("the fake issued this token");
    assert_eq!(
        info.principal,
        format!("serviceAccount:{}", s.google.config().service_account_email)
    );

    let sts = s.google.last_sts_request().unwrap();
    assert_eq!(sts.field("scope"), Some(IAM_SCOPE));
    assert_eq!(
        sts.field("audience"),
        Some(s.google.config().audience.as_str())
    );
    let metrics = sts.x_goog_api_client.clone().unwrap();
    assert!(
        metrics.contains("google-byoid-sdk source/aws sa-impersonation/true config-lifetime/false"),
        "{metrics}"
    );
    let iam = s
        .google
        .last_iam_request(GoogleApi::GenerateAccessToken)
        .unwrap();
    assert_eq!(
        iam.body.as_ref().unwrap()["scope"],
        serde_json::json!([crossfed::google::CLOUD_PLATFORM_SCOPE])
    );
    assert_eq!(iam.body.as_ref().unwrap()["lifetime"], "3600s");
    assert_eq!(
        (
            s.google.calls(GoogleApi::Sts),
            s.google.calls(GoogleApi::GenerateAccessToken)
        ),
        (1, 1)
    );

    // The token works with the official client library, through crossfed's provider.
    let control = google_cloud_storage::client::StorageControl::builder()
        .with_credentials(creds.clone())
        .with_endpoint(s.storage.endpoint())
        .build()
        .await
        .unwrap();
    let resp = control
        .list_buckets()
        .set_parent("projects/my-project")
        .send()
        .await
        .unwrap();
    let names: Vec<_> = resp.buckets.iter().map(|b| b.bucket_id.clone()).collect();
    assert_eq!(names, ["crossfed-bucket-a", "crossfed-bucket-b"]);
    assert_eq!(
        (
            s.google.calls(GoogleApi::Sts),
            s.google.calls(GoogleApi::GenerateAccessToken)
        ),
        (1, 1),
        "cached token reused"
    );
}

#[tokio::test]
async fn happy_path_without_impersonation() {
    let s = Scenario::start().await;
    let shape = ConfigShape {
        impersonate: false,
        ..Default::default()
    };
    let creds = s.builder(&s.config_json(&shape)).build().unwrap();
    let auth = bearer(&creds).await;
    let info = s
        .google
        .validate_token(auth.strip_prefix("Bearer ").unwrap())
        .unwrap();
    assert!(
        info.principal.contains("assumed-role/crossfed-lambda"),
        "{}",
        info.principal
    );
    let sts = s.google.last_sts_request().unwrap();
    assert_eq!(
        sts.field("scope"),
        Some(crossfed::google::CLOUD_PLATFORM_SCOPE)
    );
    assert!(
        sts.x_goog_api_client
            .clone()
            .unwrap()
            .contains("sa-impersonation/false")
    );
    assert_eq!(
        (
            s.google.calls(GoogleApi::Sts),
            s.google.calls(GoogleApi::GenerateAccessToken)
        ),
        (1, 0)
    );
}

#[tokio::test]
async fn configured_lifetime_is_honoured() {
    let s = Scenario::start_with(|c| c.max_lifetime_secs = 43200).await;
    let shape = ConfigShape {
        lifetime_secs: Some(7200),
        ..Default::default()
    };
    let creds = s.builder(&s.config_json(&shape)).build().unwrap();
    let token = creds.token().await.unwrap();
    let left = token
        .expires_at
        .duration_since(std::time::SystemTime::now())
        .unwrap();
    assert!(
        left > Duration::from_secs(7100) && left <= Duration::from_secs(7200),
        "{left:?}"
    );
    assert_eq!(
        s.google
            .last_iam_request(GoogleApi::GenerateAccessToken)
            .unwrap()
            .body
            .unwrap()["lifetime"],
        "7200s"
    );
    let metrics = s.google.last_sts_request().unwrap();
    assert!(
        metrics
            .x_goog_api_client
            .clone()
            .unwrap()
            .contains("config-lifetime/true")
    );
}

#[tokio::test]
async fn lifetime_above_the_service_limit_is_reported() {
    let s = Scenario::start().await; // fake IAM allows at most 3600 s
    let shape = ConfigShape {
        lifetime_secs: Some(7200),
        ..Default::default()
    };
    let err = token_error(s.builder(&s.config_json(&shape))).await;
    let msg = err.to_string();
    assert!(
        msg.contains("INVALID_ARGUMENT") && msg.contains("HTTP 400"),
        "{msg}"
    );
}

/// Inside Lambda, a config naming the instance metadata service must not make crossfed
/// (or aws-config) touch it.
#[tokio::test]
async fn lambda_never_touches_imds() {
    let s = Scenario::start().await;
    let imds = ConnectionCounter::start().await;
    let shape = ConfigShape {
        imds_base: Some(imds.url()),
        ..Default::default()
    };
    let env: Vec<(String, String)> = s.lambda_env();
    let creds = Credentials::builder()
        .with_config_json(s.config_json(&shape).to_string())
        .with_context(Context::new().with_env_vars(env))
        .build()
        .unwrap();
    creds
        .token()
        .await
        .expect("token from the Lambda environment");
    assert_eq!(imds.connections(), 0);

    // Lambda without credentials in the environment: a clear error, still no IMDS.
    let env = Context::new().with_env_vars([
        ("AWS_LAMBDA_FUNCTION_NAME", "f"),
        ("AWS_REGION", "us-east-1"),
        ("CROSSFED_ALLOW_LOCAL_ENDPOINTS", "1"),
    ]);
    let creds = Credentials::builder()
        .with_config_json(s.config_json(&shape).to_string())
        .with_context(env)
        .build()
        .unwrap();
    let err = tokio::time::timeout(Duration::from_secs(5), creds.token())
        .await
        .expect("fails fast")
        .unwrap_err();
    assert!(err.to_string().contains("AWS_ACCESS_KEY_ID"), "{err}");
    assert_eq!(imds.connections(), 0);
    assert_eq!(s.google.calls(GoogleApi::Sts), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_cold_callers_share_one_exchange() {
    let s = Scenario::start().await;
    s.google
        .inject_faults(GoogleApi::Sts, [Fault::Delay(Duration::from_millis(200))]);
    let creds = s
        .builder(&s.config_json(&ConfigShape::default()))
        .build()
        .unwrap();
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let c = creds.clone();
            tokio::spawn(async move { bearer(&c).await })
        })
        .collect();
    let mut seen = std::collections::HashSet::new();
    for t in tasks {
        seen.insert(t.await.unwrap());
    }
    assert_eq!(seen.len(), 1, "all callers got the same token");
    assert_eq!(
        (
            s.google.calls(GoogleApi::Sts),
            s.google.calls(GoogleApi::GenerateAccessToken)
        ),
        (1, 1)
    );
}

#[tokio::test]
async fn refreshes_ahead_of_expiry_reusing_the_federated_token() {
    let s = Scenario::start().await;
    let shape = ConfigShape {
        lifetime_secs: Some(600),
        ..Default::default()
    };
    let settings = CacheSettings::default().with_refresh_ahead(Duration::from_secs(598));
    let creds = s
        .builder(&s.config_json(&shape))
        .with_cache_settings(settings)
        .build()
        .unwrap();
    let first = creds.token().await.unwrap();
    assert_eq!(
        creds.token().await.unwrap().value,
        first.value,
        "fresh token is cached"
    );
    tokio::time::sleep(Duration::from_millis(2100)).await; // now inside the refresh window
    let second = creds.token().await.unwrap();
    assert_ne!(second.value, first.value, "refreshed ahead of expiry");
    assert!(second.expires_at > first.expires_at);
    assert_eq!(s.google.calls(GoogleApi::GenerateAccessToken), 2);
    assert_eq!(
        s.google.calls(GoogleApi::Sts),
        1,
        "the still-valid federated token is reused"
    );
}

#[tokio::test]
async fn sts_unavailable_twice_then_ok() {
    let s = Scenario::start().await;
    s.google
        .inject_faults(GoogleApi::Sts, [Fault::Status(503), Fault::Status(503)]);
    s.google
        .inject_faults(GoogleApi::GenerateAccessToken, [Fault::Status(429)]);
    let creds = s
        .builder(&s.config_json(&ConfigShape::default()))
        .build()
        .unwrap();
    creds.token().await.expect("retried");
    assert_eq!(
        (
            s.google.calls(GoogleApi::Sts),
            s.google.calls(GoogleApi::GenerateAccessToken)
        ),
        (3, 2)
    );
}

#[tokio::test]
async fn permanent_error_is_clear_and_retried_after_backoff() {
    let s = Scenario::start().await;
    s.google.inject_faults(
        GoogleApi::Sts,
        [Fault::GoogleError {
            status: 400,
            error: "invalid_grant".into(),
            description: "The audience in ID Token [x] does not match the expected audience."
                .into(),
        }],
    );
    let defaults = CacheSettings::default();
    let settings = defaults
        .clone()
        .with_error_backoff(Duration::from_millis(300), defaults.error_backoff_max);
    let creds = s
        .builder(&s.config_json(&ConfigShape::default()))
        .with_cache_settings(settings)
        .build()
        .unwrap();
    let err = creds.token().await.unwrap_err();
    assert!(matches!(err, Error::Google { status: 400, .. }), "{err:?}");
    assert!(!err.is_transient());
    let msg = err.to_string();
    assert!(
        msg.contains("invalid_grant") && msg.contains("does not match") && msg.contains("Hint:"),
        "{msg}"
    );
    // Within the back-off: the same error, no new exchange.
    let again = creds.token().await.unwrap_err().to_string();
    assert!(
        again.contains("invalid_grant") && again.contains("next attempt in"),
        "{again}"
    );
    assert_eq!(s.google.calls(GoogleApi::Sts), 1, "no retry storm");
    tokio::time::sleep(Duration::from_millis(350)).await;
    creds.token().await.expect("recovers after the back-off");
    assert_eq!(s.google.calls(GoogleApi::Sts), 2);
}

#[tokio::test]
async fn wrong_audience_is_rejected_with_a_hint() {
    let s = Scenario::start().await;
    let mut config = s.config_json(&ConfigShape::default());
    config["audience"] = serde_json::json!(
        "//iam.googleapis.com/projects/123456/locations/global/workloadIdentityPools/my-pool/providers/other"
    );
    let err = token_error(s.builder(&config)).await;
    let msg = err.to_string();
    assert!(matches!(err, Error::Google { .. }), "{msg}");
    assert!(msg.contains("audience"), "{msg}");
}

#[tokio::test]
async fn unbound_role_gets_permission_denied_with_a_hint() {
    let s = Scenario::start().await;
    let config = s.config_json(&ConfigShape::default());
    let err = token_error(s.builder_as(&s.cloud.other_role, &config)).await;
    let msg = err.to_string();
    assert!(
        msg.contains("PERMISSION_DENIED") && msg.contains("workloadIdentityUser"),
        "{msg}"
    );
    assert_eq!(
        s.google.calls(GoogleApi::Sts),
        1,
        "STS accepted the other role; IAM refused it"
    );
}

#[tokio::test]
async fn attribute_condition_rejection_is_explained() {
    let s = Scenario::start_with(|c| {
        c.allowed_aws_roles = Some(vec!["arn:aws:sts::123456789012:assumed-role/nobody".into()])
    })
    .await;
    let err = token_error(s.builder(&s.config_json(&ConfigShape::default()))).await;
    let msg = err.to_string();
    assert!(
        msg.contains("unauthorized_client") && msg.contains("attribute condition"),
        "{msg}"
    );
}

#[derive(Debug)]
struct SkewedClock(Duration);
impl crossfed::Clock for SkewedClock {
    fn now(&self) -> std::time::SystemTime {
        std::time::SystemTime::now() - self.0
    }
}

#[tokio::test]
async fn stale_signature_date_is_rejected() {
    let s = Scenario::start().await;
    let creds = s
        .builder(&s.config_json(&ConfigShape::default()))
        .with_context(
            crossfed_tests::scenario::quick_context()
                .with_clock(Arc::new(SkewedClock(Duration::from_secs(20 * 60)))),
        )
        .build()
        .unwrap();
    let msg = creds.token().await.unwrap_err().to_string();
    assert!(
        msg.contains("invalid_grant") && msg.contains("clock"),
        "{msg}"
    );
}

#[tokio::test]
async fn invalid_aws_credentials_fail_the_replayed_signature() {
    let s = Scenario::start().await;
    let mut bad = s.cloud.role.clone();
    bad.secret_access_key = "not-the-secret".into();
    let err = token_error(s.builder_as(&bad, &s.config_json(&ConfigShape::default()))).await;
    let msg = err.to_string();
    assert!(
        msg.contains("invalid_grant") && msg.to_lowercase().contains("signature"),
        "{msg}"
    );
}

#[tokio::test]
async fn loopback_endpoints_need_the_opt_in() {
    let s = Scenario::start().await;
    let err = s
        .builder(&s.config_json(&ConfigShape::default()))
        .with_allow_local_endpoints(false)
        .build()
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidConfig { field, .. } if field == "token_url"),
        "{err}"
    );
    assert!(err.to_string().contains("CROSSFED_ALLOW_LOCAL_ENDPOINTS=1"));
    assert_eq!(s.google.calls(GoogleApi::Sts), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scope_sets_and_id_tokens_share_one_federated_token() {
    let s = Scenario::start().await;
    let creds = s
        .builder(&s.config_json(&ConfigShape::default()))
        .build()
        .unwrap();
    let storage = creds
        .with_scopes(["https://www.googleapis.com/auth/devstorage.read_only"])
        .unwrap();
    assert!(creds.with_scopes(Vec::<String>::new()).is_err());
    // Cold and concurrent: two scope sets and two audiences, one STS exchange.
    let (a, b, id1, id2) = tokio::join!(
        creds.token(),
        storage.token(),
        creds.id_token("aud-1", true),
        storage.id_token("aud-2", false),
    );
    let (a, b, id1, id2) = (a.unwrap(), b.unwrap(), id1.unwrap(), id2.unwrap());
    assert_eq!(s.google.calls(GoogleApi::Sts), 1);
    assert_eq!(
        (
            s.google.calls(GoogleApi::GenerateAccessToken),
            s.google.calls(GoogleApi::GenerateIdToken)
        ),
        (2, 2)
    );
    let scopes = |t: &crossfed::Token| s.google.validate_token(t.value.expose()).unwrap().scopes;
    assert_eq!(scopes(&a), [crossfed_tests::CLOUD_PLATFORM_SCOPE]);
    assert_eq!(
        scopes(&b),
        ["https://www.googleapis.com/auth/devstorage.read_only"]
    );
    let c1 = crossfed_tests::google::id_tokens::verify(id1.jwt.expose()).unwrap();
    let c2 = crossfed_tests::google::id_tokens::verify(id2.jwt.expose()).unwrap();
    assert_eq!((c1.aud.as_str(), c1.email.is_some()), ("aud-1", true));
    assert_eq!((c2.aud.as_str(), c2.email.is_some()), ("aud-2", false));
    // Cached per audience (whichever credentials ask).
    let again = storage.id_token("aud-1", true).await.unwrap();
    assert_eq!(again.jwt.expose(), id1.jwt.expose());
    assert_eq!(s.google.calls(GoogleApi::GenerateIdToken), 2);
}

#[tokio::test]
async fn prefetch_exchanges_only_the_federated_token() {
    let s = Scenario::start().await;
    let calls = || {
        (
            s.google.calls(GoogleApi::Sts),
            s.google.calls(GoogleApi::GenerateAccessToken),
        )
    };
    let creds = s
        .builder(&s.config_json(&ConfigShape::default()))
        .build()
        .unwrap();
    creds.prefetch().await.unwrap();
    assert_eq!(calls(), (1, 0), "no access token minted ahead");
    creds.prefetch().await.unwrap();
    assert_eq!(calls(), (1, 0), "the federated token is reused");
    // Each scope set then costs one IAM call and no STS exchange.
    let storage = creds
        .with_scopes(["https://www.googleapis.com/auth/devstorage.read_only"])
        .unwrap();
    let token = storage.token().await.unwrap();
    assert_eq!(calls(), (1, 1));
    let info = s.google.validate_token(token.value.expose()).unwrap();
    assert_eq!(
        info.scopes,
        ["https://www.googleapis.com/auth/devstorage.read_only"]
    );
    creds.id_token("aud-1", false).await.unwrap();
    assert_eq!(s.google.calls(GoogleApi::Sts), 1);

    // Without impersonation the federated token is the access token: prefetch fetches it.
    let s = Scenario::start().await;
    let shape = ConfigShape {
        impersonate: false,
        ..Default::default()
    };
    let creds = s.builder(&s.config_json(&shape)).build().unwrap();
    creds.prefetch().await.unwrap();
    creds.token().await.unwrap();
    assert_eq!(
        (
            s.google.calls(GoogleApi::Sts),
            s.google.calls(GoogleApi::GenerateAccessToken)
        ),
        (1, 0)
    );
}

#[tokio::test]
async fn id_tokens_need_impersonation() {
    let s = Scenario::start().await;
    let creds = s
        .builder(&s.config_json(&ConfigShape {
            impersonate: false,
            ..ConfigShape::default()
        }))
        .build()
        .unwrap();
    let err = creds.id_token("aud", true).await.unwrap_err().to_string();
    assert!(err.contains("--service-account"), "{err}");
    assert_eq!(s.google.calls(GoogleApi::Sts), 0);
}

/// A credentials builder as a Lambda function without keys in its environment sees it
/// (SnapStart, container-credential flavours): the role's session comes from the container
/// credentials endpoint, with `token` as its authorization token.
fn container_builder(
    s: &Scenario,
    endpoint: &crossfed_tests::FakeContainerCredentials,
    token: &str,
) -> crossfed::google::Builder {
    container_builder_with(
        s,
        endpoint,
        token,
        crossfed_tests::scenario::quick_context(),
    )
}

/// [`container_builder`] on `ctx` (its clock, timeouts and retries).
fn container_builder_with(
    s: &Scenario,
    endpoint: &crossfed_tests::FakeContainerCredentials,
    token: &str,
    ctx: Context,
) -> crossfed::google::Builder {
    let ctx = ctx.with_env_vars([
        ("AWS_LAMBDA_FUNCTION_NAME", "crossfed-test"),
        ("AWS_REGION", s.cloud.region.as_str()),
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", &endpoint.full_uri()),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN", token),
    ]);
    Credentials::builder()
        .with_config_json(s.config_json(&ConfigShape::default()).to_string())
        .with_allow_local_endpoints(true)
        .with_context(ctx)
}

#[tokio::test]
async fn lambda_without_keys_uses_the_container_credentials_endpoint() {
    let s = Scenario::start().await;
    let endpoint = crossfed_tests::FakeContainerCredentials::start(
        &s.cloud.role,
        "secret-token",
        Duration::from_secs(3600),
    );
    let creds = container_builder(&s, &endpoint, "secret-token")
        .build()
        .unwrap();
    let token = creds
        .token()
        .await
        .expect("token through container credentials");
    assert!(s.google.validate_token(token.value.expose()).is_some());
    assert_eq!(endpoint.served(), 1);
    assert_eq!(
        s.google.last_sts_request().unwrap().aws_arn.as_deref(),
        Some(s.cloud.role.assumed_arn.as_str()),
        "the subject token was signed with the endpoint's role session (replayed to moto)"
    );

    let err = container_builder(&s, &endpoint, "wrong-token")
        .build()
        .unwrap()
        .token()
        .await
        .expect_err("a wrong authorization token fails");
    let text = crossfed::ErrorChain(&err).to_string();
    assert!(
        text.contains(&endpoint.full_uri())
            && text.contains("refused the authorization token")
            && text.contains("AWS_CONTAINER_AUTHORIZATION_TOKEN"),
        "{text}"
    );
    assert!(
        !text.contains("wrong-token"),
        "the token is never echoed: {text}"
    );
    assert_eq!(endpoint.refused(), 1, "a 401 is not retried");
}

/// A wall clock the test moves ahead of the process's own time, as a sandbox restored from a
/// SnapStart snapshot sees it.
#[derive(Debug)]
struct RestoreClock {
    start: std::time::Instant,
    wall_lead_s: std::sync::atomic::AtomicU64,
}

impl crossfed::Clock for RestoreClock {
    fn now(&self) -> std::time::SystemTime {
        std::time::SystemTime::now()
            + Duration::from_secs(self.wall_lead_s.load(std::sync::atomic::Ordering::SeqCst))
    }
    fn process_time(&self) -> Option<Duration> {
        Some(self.start.elapsed())
    }
}

/// SnapStart: after a restore, the role session from the container credentials endpoint,
/// the federated token and the access token minted before the snapshot are all fetched
/// again, though none has expired.
#[tokio::test]
async fn after_a_restore_nothing_minted_before_the_snapshot_is_reused() {
    let s = Scenario::start().await;
    let endpoint = crossfed_tests::FakeContainerCredentials::start(
        &s.cloud.role,
        "secret-token",
        Duration::from_secs(3600),
    );
    let clock = Arc::new(RestoreClock {
        start: std::time::Instant::now(),
        wall_lead_s: 0.into(),
    });
    let ctx = crossfed_tests::scenario::quick_context().with_clock(clock.clone());
    let creds = container_builder_with(&s, &endpoint, "secret-token", ctx)
        .build()
        .unwrap();
    let calls = || {
        (
            endpoint.served(),
            s.google.calls(GoogleApi::Sts),
            s.google.calls(GoogleApi::GenerateAccessToken),
        )
    };
    let before = creds.token().await.unwrap();
    assert_eq!(
        creds.token().await.unwrap().value.expose(),
        before.value.expose()
    );
    assert_eq!(calls(), (1, 1, 1));

    clock
        .wall_lead_s
        .store(600, std::sync::atomic::Ordering::SeqCst);
    let after = creds.token().await.unwrap();
    assert_ne!(after.value.expose(), before.value.expose());
    assert!(s.google.validate_token(after.value.expose()).is_some());
    assert_eq!(calls(), (2, 2, 2), "credentials, STS and IAM again");
}
