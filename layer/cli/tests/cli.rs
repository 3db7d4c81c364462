//! The `crossfed` CLI against moto and the Google fakes.

use std::process::Command;

use crossfed_tests::GoogleApi;
use crossfed_tests::scenario::{ConfigShape, Scenario};

fn cli(s: &Scenario, config_file: &std::path::Path, args: &[&str]) -> std::process::Output {
    let role = &s.cloud.role;
    Command::new(env!("CARGO_BIN_EXE_crossfed"))
        .args(args)
        .env_clear()
        .env("AWS_ACCESS_KEY_ID", &role.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &role.secret_access_key)
        .env("AWS_SESSION_TOKEN", &role.session_token)
        .env("AWS_REGION", &s.cloud.region)
        .env("AWS_ENDPOINT_URL", &s.cloud.moto_url)
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .env("GOOGLE_APPLICATION_CREDENTIALS", config_file)
        .env("CROSSFED_ALLOW_LOCAL_ENDPOINTS", "1")
        .output()
        .expect("run crossfed")
}

fn write_config(s: &Scenario) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("crossfed-cli-{:x}.json", fastrand::u64(..)));
    std::fs::write(&path, s.config_json(&ConfigShape::default()).to_string()).unwrap();
    path
}

#[tokio::test]
async fn token_prints_a_working_access_token() {
    let s = Scenario::start().await;
    let file = write_config(&s);
    let out = cli(&s, &file, &["token"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap();
    let info = s
        .google
        .validate_token(token.trim())
        .expect("a token the fake issued");
    assert!(info.principal.starts_with("serviceAccount:"));
}

#[tokio::test]
async fn whoami_prints_the_caller_and_principal_set() {
    let s = Scenario::start().await;
    let file = write_config(&s);
    let out = cli(&s, &file, &["whoami"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(&format!("aws_arn: {}", s.cloud.role.assumed_arn)),
        "{text}"
    );
    let set = s.google.config().principal_set_for_aws_role(
        &crossfed_tests::LocalCloud::aws_role_attribute(&s.cloud.role),
    );
    assert!(
        text.contains(&format!("google_principal_set: {set}")),
        "{text}"
    );
    assert_eq!(
        s.google.calls(GoogleApi::Sts),
        0,
        "whoami needs no Google call"
    );
}

#[tokio::test]
async fn errors_are_reported_without_a_panic() {
    let s = Scenario::start().await;
    let out = cli(
        &s,
        std::path::Path::new("/nonexistent/config.json"),
        &["token"],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/nonexistent/config.json") && !err.contains("panicked"),
        "{err}"
    );
}

fn aws_cli(
    cloud: &crossfed_tests::LocalCloud,
    metadata: &crossfed_tests::FakeMetadata,
    args: &[&str],
) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_crossfed"))
        .args(args)
        .env_clear()
        .env("GCE_METADATA_HOST", metadata.host())
        .env("AWS_ENDPOINT_URL", &cloud.moto_url)
        .env("AWS_REGION", &cloud.region)
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .output()
        .expect("run crossfed")
}

/// `credential_process` output as the AWS CLI/SDKs require it: Version 1, the three keys,
/// an ISO 8601 Expiration; and the credentials work.
#[tokio::test]
async fn aws_credential_process_output_is_usable() {
    let cloud = crossfed_tests::LocalCloud::load();
    let metadata = crossfed_tests::FakeMetadata::start(Default::default()).await;
    let out = aws_cli(
        &cloud,
        &metadata,
        &[
            "aws",
            "credential-process",
            "--role-arn",
            &cloud.google_role_arn,
            "--audience",
            &cloud.google_audience,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    let obj = v.as_object().unwrap();
    let mut keys: Vec<_> = obj.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "AccessKeyId",
            "Expiration",
            "SecretAccessKey",
            "SessionToken",
            "Version"
        ]
    );
    assert_eq!(v["Version"], 1);
    for k in ["AccessKeyId", "SecretAccessKey", "SessionToken"] {
        assert!(v[k].as_str().is_some_and(|s| !s.is_empty()), "{k}");
    }
    let expiration = v["Expiration"].as_str().unwrap();
    let expires =
        time::OffsetDateTime::parse(expiration, &time::format_description::well_known::Rfc3339)
            .unwrap();
    assert!(expires > time::OffsetDateTime::now_utc());

    let creds = aws_credential_types::Credentials::new(
        v["AccessKeyId"].as_str().unwrap(),
        v["SecretAccessKey"].as_str().unwrap(),
        v["SessionToken"].as_str().map(str::to_string),
        None,
        "credential_process",
    );
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(cloud.region.clone()))
        .endpoint_url(&cloud.moto_url)
        .credentials_provider(creds)
        .load()
        .await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    );
    s3.head_bucket()
        .bucket(&cloud.google_bucket)
        .send()
        .await
        .expect("credentials work for S3");
}

#[tokio::test]
async fn aws_env_prints_shell_exports_and_errors_explain_the_trust_policy() {
    let cloud = crossfed_tests::LocalCloud::load();
    let metadata = crossfed_tests::FakeMetadata::start(Default::default()).await;
    let out = aws_cli(
        &cloud,
        &metadata,
        &[
            "aws",
            "env",
            "--role-arn",
            &cloud.google_role_arn,
            "--audience",
            &cloud.google_audience,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for var in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_CREDENTIAL_EXPIRATION",
    ] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!("export {var}='")) && l.ends_with('\'')),
            "{var}: {text}"
        );
    }

    let out = aws_cli(
        &cloud,
        &metadata,
        &[
            "aws",
            "env",
            "--role-arn",
            &cloud.google_role_arn,
            "--audience",
            "wrong",
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("AccessDenied")
            && err.contains("accounts.google.com:oaud")
            && !err.contains("panicked"),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "nothing half-printed on failure");
}

#[test]
fn aws_trust_policy_matches_the_article() {
    let out = Command::new(env!("CARGO_BIN_EXE_crossfed"))
        .args([
            "aws",
            "trust-policy",
            "--audience",
            "my-aud",
            "--sub",
            "111",
            "--sub",
            "222",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let expected = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": "accounts.google.com"},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {
                "accounts.google.com:oaud": "my-aud",
                "accounts.google.com:sub": ["111", "222"]
            }}
        }]
    });
    assert_eq!(v, expected);
    let missing = Command::new(env!("CARGO_BIN_EXE_crossfed"))
        .args(["aws", "trust-policy", "--audience", "a"])
        .output()
        .unwrap();
    assert!(!missing.status.success(), "--sub is required");
}
