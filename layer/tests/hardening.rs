//! Federation hardening: the allow-list cannot be talked around, expiry math
//! cannot panic, refresh ahead really refreshes ahead, inputs that shape URLs are checked,
//! response bodies are bounded. Uses only loopback servers started here; no local clouds.

mod support;

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use crossfed::Error;
use crossfed::aws::{IdTokenClaims, IdTokenSource, WebIdentity};
use crossfed::google::ExternalAccountConfig;
use google_cloud_auth::credentials::{CacheableResource, CredentialsProvider, EntityTag};
use serde_json::json;
use support::{ManualClock, Response, Server, builder, config, sts_handler, sts_token};

const ROLE: &str = "arn:aws:iam::123456789012:role/from-google";

fn field_of(err: &Error) -> Option<&str> {
    match err {
        Error::InvalidConfig { field, .. } => Some(field),
        _ => None,
    }
}

/// A configuration that names another universe, with matching hosts.
fn foreign_universe_config() -> serde_json::Value {
    let mut c = config("https://sts.attacker.example/v1/token");
    c["universe_domain"] = json!("attacker.example");
    c["audience"] = json!(
        "//iam.attacker.example/projects/1/locations/global/workloadIdentityPools/p/providers/aws"
    );
    c
}

// ---- 1. the configuration cannot widen the allow-list --------------------------------

#[tokio::test]
async fn config_cannot_choose_its_own_universe() {
    let c = foreign_universe_config();
    let err = ExternalAccountConfig::from_json(&c.to_string(), false)
        .expect_err("a foreign universe must not be accepted from the config itself");
    assert_eq!(field_of(&err), Some("universe_domain"), "{err}");
    assert!(
        err.to_string().contains("CROSSFED_ALLOWED_UNIVERSES"),
        "{err}"
    );
    // Refused at build time, before any connection could be attempted.
    let err = builder(&c).build().expect_err("refused at build");
    assert_eq!(field_of(&err), Some("universe_domain"), "{err}");
}

// ---- 2. redirects are not followed ---------------------------------------------------

#[tokio::test]
async fn token_exchange_does_not_follow_redirects() {
    let elsewhere = Server::start(|_| sts_token(1, 3600)).await;
    for status in [301, 302, 307, 308] {
        let target = elsewhere.url("/v1/token");
        let sts = Server::start(move |_| Response::redirect(status, &target)).await;
        let creds = builder(&config(&sts.url("/v1/token"))).build().unwrap();
        let err = creds.token().await.expect_err("a redirect is an error");
        assert!(err.to_string().contains("redirect"), "{status}: {err}");
        assert!(sts.connections() >= 1);
    }
    assert_eq!(
        elsewhere.connections(),
        0,
        "the subject token must never be re-sent to the redirect target"
    );
}

#[tokio::test]
async fn metadata_identity_does_not_follow_redirects() {
    let elsewhere = Server::start(|_| Response::text(200, jwt(4_000_000_000))).await;
    let target = elsewhere.url("/computeMetadata/v1/instance/service-accounts/default/identity");
    let metadata = Server::start(move |_| Response::redirect(302, &target)).await;
    let ctx = crossfed::Context::new().with_env_vars([("GCE_METADATA_HOST", metadata.host())]);
    let provider = WebIdentity::builder(ROLE, "aud")
        .with_context(
            ctx.clone()
                .with_retry_policy(crossfed::RetryPolicy::default().with_max_attempts(1)),
        )
        .with_id_token_source(IdTokenSource::metadata_from_env(&ctx))
        .build()
        .unwrap();
    let err = provider.credentials().await.expect_err("redirect refused");
    assert!(err.to_string().contains("redirect"), "{err}");
    assert_eq!(elsewhere.connections(), 0);
}

// ---- 3. Private Service Connect and mTLS endpoints -----------------------------------

#[test]
fn private_service_connect_and_mtls_endpoints_are_allowed() {
    let sa = "reader@proj.iam.gserviceaccount.com";
    for (sts, iam) in [
        (
            "https://sts-myendpoint.p.googleapis.com/v1/token",
            "https://iamcredentials-myendpoint.p.googleapis.com",
        ),
        (
            "https://sts.mtls.googleapis.com/v1/token",
            "https://iamcredentials.mtls.googleapis.com",
        ),
    ] {
        let mut c = config(sts);
        c["service_account_impersonation_url"] = json!(format!(
            "{iam}/v1/projects/-/serviceAccounts/{sa}:generateAccessToken"
        ));
        let parsed = ExternalAccountConfig::from_json(&c.to_string(), false)
            .unwrap_or_else(|e| panic!("{sts}: {e}"));
        assert_eq!(parsed.token_url.as_str(), sts);
    }
    for bad in [
        "https://sts-.p.googleapis.com/v1/token",
        "https://sts-a.b.p.googleapis.com/v1/token",
        "https://sts-a.p.googleapis.com.evil.com/v1/token",
        "https://iamcredentials-a.p.googleapis.com/v1/token",
        "https://sts.mtls.evil.com/v1/token",
    ] {
        let err = ExternalAccountConfig::from_json(&config(bad).to_string(), false).expect_err(bad);
        assert_eq!(field_of(&err), Some("token_url"), "{bad}: {err}");
    }
}

// ---- 5. refresh ahead without impersonation -----------------------------------------

#[tokio::test]
async fn refresh_ahead_without_impersonation_gets_a_new_token_once() {
    let sts = Server::start(sts_handler(|n| sts_token(n, 3600))).await;
    let clock = ManualClock::new();
    let ctx = support::test_context().with_clock(clock.clone());
    let creds = support::builder_with(&config(&sts.url("/v1/token")), ctx)
        .build()
        .unwrap();
    let first = creds.token().await.unwrap();
    assert_eq!(first.value.expose(), "fed-1");
    // Inside the default 225 s refresh-ahead window, with more than 60 s left.
    clock.advance(Duration::from_secs(3600 - 200));
    let tag = match creds.headers(http::Extensions::new()).await.unwrap() {
        CacheableResource::New { entity_tag, .. } => entity_tag,
        CacheableResource::NotModified => unreachable!("no tag was given"),
    };
    let second = creds.token().await.unwrap();
    assert_eq!(
        second.value.expose(),
        "fed-2",
        "refresh ahead must really exchange again"
    );
    assert!(
        second.expires_at.duration_since(clock_now(&clock)).unwrap() > Duration::from_secs(225)
    );
    // Once: more calls in the same window neither exchange nor change the entity tag.
    for _ in 0..5 {
        assert_eq!(creds.token().await.unwrap().value.expose(), "fed-2");
        let mut ext = http::Extensions::new();
        ext.insert::<EntityTag>(tag.clone());
        assert!(matches!(
            creds.headers(ext).await.unwrap(),
            CacheableResource::NotModified
        ));
    }
    assert_eq!(sts.requests().len(), 2);
}

fn clock_now(clock: &std::sync::Arc<ManualClock>) -> SystemTime {
    crossfed::Clock::now(&**clock)
}

// ---- 6. expiry arithmetic ------------------------------------------------------------

#[tokio::test]
async fn sts_answer_without_expires_in_is_rejected() {
    let sts = Server::start(sts_handler(|_| {
        Response::json(200, r#"{"access_token":"fed","token_type":"Bearer"}"#)
    }))
    .await;
    let err = builder(&config(&sts.url("/v1/token")))
        .build()
        .unwrap()
        .token()
        .await
        .expect_err("expires_in is required");
    assert!(err.to_string().contains("expires_in"), "{err}");
    let zero = Server::start(sts_handler(|n| sts_token(n, 0))).await;
    let err = builder(&config(&zero.url("/v1/token")))
        .build()
        .unwrap()
        .token()
        .await
        .expect_err("expires_in 0 is rejected");
    assert!(err.to_string().contains("expires_in"), "{err}");
}

#[tokio::test]
async fn huge_expires_in_is_capped_not_a_panic() {
    let sts = Server::start(sts_handler(|n| sts_token(n, u64::MAX))).await;
    let token = builder(&config(&sts.url("/v1/token")))
        .build()
        .unwrap()
        .token()
        .await
        .expect("a huge lifetime is capped");
    let left = token.expires_at.duration_since(SystemTime::now()).unwrap();
    assert!(left <= Duration::from_secs(12 * 3600), "{left:?}");
}

#[test]
fn id_token_expiry_cannot_overflow() {
    let mut claims = IdTokenClaims::default();
    claims.exp = u64::MAX;
    let at = claims.expires_at();
    assert!(at > SystemTime::now());
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

/// An (unsigned) Google ID token with this `exp`.
fn jwt(exp: u64) -> String {
    format!(
        "{}.{}.c2ln",
        b64(r#"{"alg":"RS256","typ":"JWT"}"#),
        b64(&format!(
            r#"{{"aud":"aud","azp":"1","sub":"1","email":"sa@p.iam.gserviceaccount.com","iss":"https://accounts.google.com","exp":{exp}}}"#
        ))
    )
}

fn metadata_handler(token: String) -> impl Fn(&support::Request) -> Response + Send + Sync {
    move |req| {
        if req.header("metadata-flavor") != Some("Google")
            || !req
                .path
                .starts_with("/computeMetadata/v1/instance/service-accounts/default/identity?")
            || !req.path.contains("audience=aud")
        {
            return Response::text(400, "bad request");
        }
        Response::text(200, token.clone())
    }
}

fn aws_sts_handler(
    expiration: &'static str,
) -> impl Fn(&support::Request) -> Response + Send + Sync {
    move |req| {
        let form = req.form();
        let get = |k: &str| {
            form.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        if get("Action") != Some("AssumeRoleWithWebIdentity")
            || get("RoleArn") != Some(ROLE)
            || get("WebIdentityToken").is_none_or(|t| t.split('.').count() != 3)
        {
            return Response::text(
                400,
                "<ErrorResponse><Error><Code>InvalidParameterValue</Code></Error></ErrorResponse>",
            );
        }
        let body = format!(
            r#"<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleWithWebIdentityResult><SubjectFromWebIdentityToken>1</SubjectFromWebIdentityToken><Audience>aud</Audience><AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/from-google/s</Arn><AssumedRoleId>AROAEXAMPLE:s</AssumedRoleId></AssumedRoleUser><Credentials><SessionToken>session</SessionToken><SecretAccessKey>secret</SecretAccessKey><Expiration>{expiration}</Expiration><AccessKeyId>ASIAFROMGOOGLE</AccessKeyId></Credentials><Provider>accounts.google.com</Provider></AssumeRoleWithWebIdentityResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></AssumeRoleWithWebIdentityResponse>"#
        );
        Response {
            status: 200,
            headers: vec![("content-type".into(), "text/xml".into())],
            body: body.into_bytes(),
            delay: None,
        }
    }
}

async fn aws_sts_client(url: &str) -> aws_sdk_sts::Client {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(url)
        .no_credentials()
        .load()
        .await;
    aws_sdk_sts::Client::new(&config)
}

#[tokio::test]
async fn far_future_aws_expiration_and_id_token_exp_are_capped() {
    let metadata = Server::start(metadata_handler(jwt(u64::MAX))).await;
    let aws = Server::start(aws_sts_handler("9999-12-31T23:59:59Z")).await;
    let ctx = crossfed::Context::new().with_env_vars([("GCE_METADATA_HOST", metadata.host())]);
    let provider = WebIdentity::builder(ROLE, "aud")
        .with_context(ctx.clone())
        .with_id_token_source(IdTokenSource::metadata_from_env(&ctx))
        .with_sts_client(aws_sts_client(&aws.url("/")).await)
        .build()
        .unwrap();
    let creds = provider.credentials().await.expect("credentials");
    assert_eq!(creds.access_key_id(), "ASIAFROMGOOGLE");
    let left = creds
        .expiry()
        .unwrap()
        .duration_since(SystemTime::now())
        .unwrap();
    assert!(
        left <= Duration::from_secs(12 * 3600),
        "an AWS expiration far in the future is capped: {left:?}"
    );
}

// ---- 7. inputs that shape URLs -------------------------------------------------------

#[tokio::test]
async fn region_cannot_move_the_signed_host() {
    let sts = Server::start(sts_handler(|n| sts_token(n, 3600))).await;
    for region in ["x.evil.com#", "us-east-1/..", "US-EAST-1", "", "a b"] {
        let built = crossfed::google::Credentials::builder()
            .with_context(crossfed::Context::new().with_env_vars::<_, String, String>([]))
            .with_config_json(config(&sts.url("/v1/token")).to_string())
            .with_aws_identity(support::aws_credentials(), region)
            .with_allow_local_endpoints(true)
            .build();
        // Refused at build time (preferred) or at the first token, never sent.
        let err = match built {
            Err(e) => e,
            Ok(creds) => creds.token().await.expect_err(region),
        };
        assert!(err.to_string().contains("region"), "{region}: {err}");
    }
    assert_eq!(sts.connections(), 0, "refused before anything is sent");
}

#[tokio::test]
async fn service_account_cannot_escape_the_generate_id_token_path() {
    let google = builder(&config("https://sts.googleapis.com/v1/token"))
        .build()
        .unwrap();
    for bad in [
        "a@b.iam.gserviceaccount.com/../../x",
        "a@b.iam.gserviceaccount.com:generateAccessToken?x=",
        "a@b.iam.gserviceaccount.com#",
        "../a",
        "",
    ] {
        let source = IdTokenSource::iam_credentials(
            google_cloud_auth::credentials::Credentials::from(google.clone()),
            bad,
        );
        let err = WebIdentity::builder(ROLE, "aud")
            .with_id_token_source(source)
            .build()
            .expect_err(bad);
        assert_eq!(field_of(&err), Some("service_account"), "{bad}: {err}");
    }
    for ok in ["a@b.iam.gserviceaccount.com", "123456789012345678901"] {
        let source = IdTokenSource::iam_credentials(
            google_cloud_auth::credentials::Credentials::from(google.clone()),
            ok,
        );
        WebIdentity::builder(ROLE, "aud")
            .with_id_token_source(source)
            .build()
            .unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
}

// ---- 8. forward compatibility --------------------------------------------------------

#[test]
fn unknown_fields_are_accepted_but_bad_values_are_not() {
    let mut c = config("https://sts.googleapis.com/v1/token");
    c["a_field_gcloud_adds_later"] = json!({"x": 1});
    c["credential_source"]["another_new_field"] = json!("x");
    ExternalAccountConfig::from_json(&c.to_string(), false)
        .expect("unknown fields are accepted with a warning");
    let mut bad = c.clone();
    bad["type"] = json!("external_account_authorized_user");
    assert_eq!(
        field_of(&ExternalAccountConfig::from_json(&bad.to_string(), false).unwrap_err()),
        Some("type")
    );
    let mut bad = c.clone();
    bad["credential_source"]["environment_id"] = json!("aws2");
    assert_eq!(
        field_of(&ExternalAccountConfig::from_json(&bad.to_string(), false).unwrap_err()),
        Some("credential_source.environment_id")
    );
    let mut bad = c;
    bad["credential_source"]["executable"] = json!({"command": "/bin/sh"});
    assert_eq!(
        field_of(&ExternalAccountConfig::from_json(&bad.to_string(), false).unwrap_err()),
        Some("credential_source.executable")
    );
}

// ---- 10. bounded reads ---------------------------------------------------------------

#[tokio::test]
async fn oversized_token_answers_are_refused() {
    let padding = " ".repeat(2 << 20);
    let sts = Server::start(sts_handler(move |n| {
        Response::json(
            200,
            format!(r#"{{"access_token":"fed-{n}","expires_in":3600{padding}}}"#),
        )
    }))
    .await;
    let err = builder(&config(&sts.url("/v1/token")))
        .build()
        .unwrap()
        .token()
        .await
        .expect_err("a 2 MiB token answer is refused");
    assert!(err.to_string().contains("MiB"), "{err}");
}

#[tokio::test]
async fn oversized_metadata_answers_are_refused() {
    let huge = format!("{}{}", jwt(4_000_000_000), "A".repeat(2 << 20));
    let metadata = Server::start(metadata_handler(huge)).await;
    let ctx = crossfed::Context::new().with_env_vars([("GCE_METADATA_HOST", metadata.host())]);
    let provider = WebIdentity::builder(ROLE, "aud")
        .with_context(ctx.clone())
        .with_id_token_source(IdTokenSource::metadata_from_env(&ctx))
        .with_sts_client(aws_sts_client("http://127.0.0.1:9").await)
        .build()
        .unwrap();
    let err = provider.credentials().await.expect_err("refused");
    assert!(err.to_string().contains("MiB"), "{err}");
}
