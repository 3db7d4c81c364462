//! The `crossfed` CLI against moto and the Google fakes.

use std::process::Command;

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
    assert_eq!(s.google.sts_calls(), 0, "whoami needs no Google call");
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
