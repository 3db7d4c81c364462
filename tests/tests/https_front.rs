//! The https front for moto's STS (`HttpsFront`, used where a client accepts only https AWS
//! URLs, like google-auth): its certificate is trusted only through its test CA, it forwards
//! to moto with the Host header intact (moto's SigV4 check passes for the signed host), and
//! the fake STS still rejects a tampered signature replayed through it. Run through
//! `make test`, which starts the local clouds.

use std::path::PathBuf;
use std::process::Stdio;

use crossfed_tests::scenario::{ConfigShape, Scenario};
use crossfed_tests::{
    ACCESS_TOKEN_TYPE, AWS4_REQUEST_TOKEN_TYPE, CLOUD_PLATFORM_SCOPE, GoogleApi, HttpsFront,
    TOKEN_EXCHANGE_GRANT, TokenIssuer, venv_python,
};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

fn front(s: &Scenario) -> &HttpsFront {
    s.aws_sts_front
        .as_ref()
        .expect("scenario with an https front")
}

fn python() -> PathBuf {
    venv_python(".venv-ext", "ext-clients")
}

#[tokio::test]
async fn the_front_is_trusted_only_through_its_ca_and_reaches_moto() {
    let s = Scenario::start_with_https_aws_sts().await;
    let front = front(&s);
    let url = s.get_caller_identity_url();
    assert!(url.starts_with(&format!("{}/", front.url())), "{url}");

    // The system roots alone do not accept the front's certificate.
    let untrusting = reqwest::Client::builder()
        .no_proxy()
        .resolve(front.host(), front.addr())
        .build()
        .unwrap();
    let err = untrusting.post(&url).send().await.unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    // The front counts the failed handshake once it has seen the client give up.
    for _ in 0..200 {
        if front.handshake_failures() > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!((front.handshake_failures(), front.connections()), (1, 0));

    // With its CA (and nothing else), the request reaches moto: an unsigned
    // GetCallerIdentity gets moto's own refusal.
    let ca = reqwest::Certificate::from_pem(front.ca_pem().as_bytes()).unwrap();
    let trusting = reqwest::Client::builder()
        .no_proxy()
        .resolve(front.host(), front.addr())
        .tls_certs_only([ca])
        .build()
        .unwrap();
    let response = trusting.post(&url).send().await.unwrap();
    assert_eq!(response.status(), 403);
    let body = response.text().await.unwrap();
    assert!(body.contains("MissingAuthenticationToken"), "{body}");
    assert_eq!(front.connections(), 1);
}

#[tokio::test]
async fn crossfed_federates_through_the_front() {
    let s = Scenario::start_with_https_aws_sts().await;
    let creds = s
        .builder(&s.config_json(&ConfigShape::default()))
        .build()
        .unwrap();
    let token = creds.token().await.expect("federated through the front");
    let info = s.google.validate_token(token.value.expose()).unwrap();
    assert_eq!(info.issuer, TokenIssuer::Iam);
    let sts = s.google.last_sts_request().unwrap();
    assert_eq!(
        sts.subject_token_url.as_deref(),
        Some(s.get_caller_identity_url().as_str())
    );
    assert_eq!(
        sts.aws_arn.as_deref(),
        Some(s.cloud.role.assumed_arn.as_str())
    );
    assert_eq!(
        front(&s).connections(),
        1,
        "the replay went through the front"
    );
}

/// google-auth (unmodified) signs GetCallerIdentity for the https front and federates.
/// Prints `{"subject_token", "access_token"}`.
const GOOGLE_AUTH: &str = r#"
import json, sys
import google.auth.transport.requests
from google.auth import aws
info = json.load(sys.stdin)
creds = aws.Credentials.from_info(info, scopes=["https://www.googleapis.com/auth/cloud-platform"])
request = google.auth.transport.requests.Request()
subject = creds.retrieve_subject_token(request)
creds.refresh(request)
print(json.dumps({"subject_token": subject, "access_token": creds.token}))
"#;

async fn google_auth(s: &Scenario, config: &Value) -> Value {
    let role = &s.cloud.role;
    let mut child = tokio::process::Command::new(python())
        .args(["-c", GOOGLE_AUTH])
        .env_clear()
        .env("AWS_ACCESS_KEY_ID", &role.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &role.secret_access_key)
        .env("AWS_SESSION_TOKEN", &role.session_token)
        .env("AWS_REGION", &s.cloud.region)
        .env("NO_PROXY", "*")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(config.to_string().as_bytes())
        .await
        .unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    assert!(
        out.status.success(),
        "google-auth failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `POST /v1/token` with `subject_token`; returns (status, body).
async fn exchange(s: &Scenario, subject_token: &str) -> (u16, Value) {
    let response = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(s.google.sts_url())
        .form(&[
            ("grant_type", TOKEN_EXCHANGE_GRANT),
            ("audience", s.google.config().audience.as_str()),
            ("scope", CLOUD_PLATFORM_SCOPE),
            ("requested_token_type", ACCESS_TOKEN_TYPE),
            ("subject_token_type", AWS4_REQUEST_TOKEN_TYPE),
            ("subject_token", subject_token),
        ])
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// The subject token with the last hex digit of its SigV4 signature changed.
fn tamper(subject_token: &str) -> String {
    let json = percent_encoding::percent_decode_str(subject_token)
        .decode_utf8()
        .unwrap();
    let mut request: Value = serde_json::from_str(&json).unwrap();
    let headers = request["headers"].as_array_mut().unwrap();
    let authorization = headers
        .iter_mut()
        .find(|h| {
            h["key"]
                .as_str()
                .unwrap()
                .eq_ignore_ascii_case("authorization")
        })
        .expect("an Authorization header");
    let mut value = authorization["value"].as_str().unwrap().to_string();
    assert!(value.contains("Signature="), "{value}");
    let last = value.pop().unwrap();
    value.push(if last == '0' { '1' } else { '0' });
    authorization["value"] = json!(value);
    form_urlencoded::byte_serialize(request.to_string().as_bytes()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn google_auth_federates_through_the_front_and_a_tampered_signature_is_rejected() {
    let s = Scenario::start_with_https_aws_sts().await;
    let front = front(&s);
    let out = google_auth(&s, &s.config_json(&ConfigShape::default())).await;

    // google-auth's own refresh: STS (replayed through the front to moto) + impersonation.
    let access_token = out["access_token"].as_str().unwrap();
    let info = s.google.validate_token(access_token).unwrap();
    assert_eq!(
        info.principal,
        format!("serviceAccount:{}", s.google.config().service_account_email)
    );
    assert_eq!(s.google.calls(GoogleApi::Sts), 1);
    let sts = s.google.last_sts_request().unwrap();
    assert_eq!(
        sts.aws_arn.as_deref(),
        Some(s.cloud.role.assumed_arn.as_str())
    );
    assert_eq!(front.connections(), 1);

    // The same signed request, replayed as google-auth made it, passes moto's SigV4 check
    // through the front; google-auth signs `host` without the port (and the service `sts`
    // from its first label), which moto sees unchanged.
    let subject = out["subject_token"].as_str().unwrap();
    let decoded =
        crossfed_tests::google::aws_subject_token::AwsSubjectToken::decode(subject).unwrap();
    assert_eq!(decoded.header("host"), Some(front.host()));
    assert!(
        decoded
            .header("authorization")
            .is_some_and(|a| a.contains("/sts/aws4_request")),
        "SigV4 scope of service sts expected; headers {:?}",
        decoded.header_names()
    );
    let (status, body) = exchange(&s, subject).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(front.connections(), 2);

    // One hex digit of the signature changed: moto refuses it, so the fake STS does.
    let (status, body) = exchange(&s, &tamper(subject)).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant", "{body}");
    let description = body["error_description"].as_str().unwrap();
    assert!(
        description.starts_with("The AWS request signature is invalid: ")
            && description.to_lowercase().contains("signature"),
        "{description}"
    );
    assert_eq!(front.connections(), 3, "moto judged it, through the front");
    let sts = s.google.last_sts_request().unwrap();
    assert_eq!((sts.status, sts.aws_arn), (400, None));
}
