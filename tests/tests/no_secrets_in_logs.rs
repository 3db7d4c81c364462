//! With every crate logging at TRACE, no secret reaches the logs or `Debug` output.

use std::io::Write;
use std::sync::{Arc, Mutex};

use crossfed_tests::Fault;
use crossfed_tests::GoogleApi;
use crossfed_tests::scenario::{ConfigShape, Scenario};
use google_cloud_auth::credentials::CredentialsProvider;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn trace_logs_contain_no_secret() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let s = Scenario::start().await;
    s.google.inject_faults(GoogleApi::Sts, [Fault::Status(503)]);
    let creds = s
        .builder(&s.config_json(&ConfigShape::default()))
        .build()
        .unwrap();
    let token = creds.token().await.unwrap();
    let headers = creds.headers(http::Extensions::new()).await.unwrap();
    // An error path too: a rejected exchange logs and formats its error.
    let other = s
        .builder_as(&s.cloud.other_role, &s.config_json(&ConfigShape::default()))
        .build()
        .unwrap();
    let err = other.token().await.unwrap_err();

    // The reverse direction: a Google ID token for AWS credentials.
    let metadata = crossfed_tests::FakeMetadata::start(Default::default()).await;
    let sts = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(s.cloud.region.clone()))
        .endpoint_url(&s.cloud.moto_url)
        .no_credentials()
        .load()
        .await;
    let web_identity = |audience: &str| {
        crossfed::aws::WebIdentity::builder(&s.cloud.google_role_arn, audience)
            .with_id_token_source(crossfed::aws::IdTokenSource::Metadata {
                host: metadata.host(),
            })
            .with_sts_client(aws_sdk_sts::Client::new(&sts))
            .build()
            .unwrap()
    };
    let provider = web_identity(&s.cloud.google_audience);
    let aws = provider.credentials().await.unwrap();
    let denied = web_identity("wrong-audience")
        .credentials()
        .await
        .unwrap_err();

    let mut text = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    text.push_str(&format!(
        "{creds:?}\n{token:?}\n{headers:?}\n{err}\n{err:?}\n"
    ));
    text.push_str(&format!("{provider:?}\n{aws:?}\n{denied}\n{denied:?}\n"));
    assert!(
        text.contains("crossfed.assume_role"),
        "reverse-direction spans were captured"
    );
    assert!(text.contains("crossfed.sts"), "spans were captured: {text}");
    assert!(text.contains("obtained a Google access token"));
    let role = &s.cloud.role;
    for (what, secret) in [
        ("access token", token.value.expose()),
        ("secret key", role.secret_access_key.as_str()),
        ("session token", role.session_token.as_str()),
        (
            "other secret key",
            s.cloud.other_role.secret_access_key.as_str(),
        ),
        (
            "other session token",
            s.cloud.other_role.session_token.as_str(),
        ),
        ("any fake token", "ya29.fake-"),
        ("a SigV4 signature", "Signature="),
        ("assumed-role secret key", aws.secret_access_key()),
        ("assumed-role session token", aws.session_token().unwrap()),
        ("a Google ID token (JWT)", "eyJ"),
    ] {
        assert!(!text.contains(secret), "{what} leaked into the logs");
    }
}
