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

/// `--config-parameter`/`--config-file` win over both environment variables, never conflict
/// with them, and without a flag the library's precedence holds (CROSSFED_CONFIG_PARAMETER
/// first). Every combination of flags and variables.
#[test]
fn config_flags_win_over_env_vars_in_every_combination() {
    let cloud = crossfed_tests::LocalCloud::load();
    const FLAG_PARAM: &str = "/crossfed/cli-flag-param-missing";
    const FLAG_FILE: &str = "/nonexistent/cli-flag-file.json";
    const ENV_PARAM: &str = "/crossfed/cli-env-param-missing";
    const ENV_FILE: &str = "/nonexistent/cli-env-file.json";
    for flag_param in [false, true] {
        for flag_file in [false, true] {
            for env_param in [false, true] {
                for env_file in [false, true] {
                    let mut cmd = Command::new(env!("CARGO_BIN_EXE_crossfed"));
                    cmd.arg("token")
                        .env_clear()
                        .env("AWS_ACCESS_KEY_ID", &cloud.role.access_key_id)
                        .env("AWS_SECRET_ACCESS_KEY", &cloud.role.secret_access_key)
                        .env("AWS_SESSION_TOKEN", &cloud.role.session_token)
                        .env("AWS_REGION", &cloud.region)
                        .env("AWS_ENDPOINT_URL", &cloud.moto_url)
                        .env("AWS_CONFIG_FILE", "/nonexistent")
                        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent");
                    if flag_param {
                        cmd.args(["--config-parameter", FLAG_PARAM]);
                    }
                    if flag_file {
                        cmd.args(["--config-file", FLAG_FILE]);
                    }
                    if env_param {
                        cmd.env("CROSSFED_CONFIG_PARAMETER", ENV_PARAM);
                    }
                    if env_file {
                        cmd.env("GOOGLE_APPLICATION_CREDENTIALS", ENV_FILE);
                    }
                    let out = cmd.output().unwrap();
                    let err = String::from_utf8_lossy(&out.stderr);
                    let case = format!(
                        "flags(param={flag_param}, file={flag_file}) env(param={env_param}, file={env_file}): {err}"
                    );
                    if flag_param && flag_file {
                        assert_eq!(out.status.code(), Some(2), "usage error: {case}");
                        assert!(err.contains("cannot be used with"), "{case}");
                        continue;
                    }
                    assert_eq!(out.status.code(), Some(1), "{case}");
                    let used = if flag_param {
                        FLAG_PARAM
                    } else if flag_file {
                        FLAG_FILE
                    } else if env_param {
                        ENV_PARAM
                    } else if env_file {
                        ENV_FILE
                    } else {
                        "no Google credential configuration"
                    };
                    assert!(err.contains(used), "expected {used}: {case}");
                    for other in [FLAG_PARAM, FLAG_FILE, ENV_PARAM, ENV_FILE] {
                        assert!(other == used || !err.contains(other), "{case}");
                    }
                }
            }
        }
    }
}

/// With the seed article's mapping (role name only), whoami prints the principal set that
/// the fake Google (mapping the same way) accepts; without a mapping it says it assumed
/// Google's default.
#[tokio::test]
async fn whoami_follows_the_given_attribute_mapping() {
    let s = Scenario::start_with(|c| {
        c.aws_role_mapping = crossfed_tests::AwsRoleMapping::RoleName;
        let role = crossfed_tests::AwsRoleMapping::RoleName
            .aws_role(&crossfed_tests::LocalCloud::load().role.assumed_arn)
            .unwrap();
        c.bindings = vec![c.principal_set_for_aws_role(&role)];
    })
    .await;
    let file = write_config(&s);
    let out = cli(
        &s,
        &file,
        &[
            "whoami",
            "--attribute-mapping",
            "google.subject=assertion.arn,attribute.aws_account=assertion.account,attribute.aws_role=assertion.arn.extract('assumed-role/{role}/')",
        ],
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{text}");
    let role_name = crossfed_tests::AwsRoleMapping::RoleName
        .aws_role(&s.cloud.role.assumed_arn)
        .unwrap();
    assert!(!role_name.contains(':'), "{role_name}");
    let set = s.google.config().principal_set_for_aws_role(&role_name);
    assert!(
        text.contains(&format!("google_principal_set: {set}")),
        "{text}"
    );
    assert!(text.contains("mapping: --attribute-mapping"), "{text}");
    assert!(
        text.contains(&format!("attribute.aws_account: {}", s.cloud.account_id)),
        "{text}"
    );

    // The fake binds exactly that set: the token flow works.
    assert!(cli(&s, &file, &["token"]).status.success());

    let out = cli(&s, &file, &["whoami"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("mapping: Google's default AWS mapping"),
        "{text}"
    );
    assert!(
        !text.contains(&format!("google_principal_set: {set}")),
        "{text}"
    );

    let out = cli(
        &s,
        &file,
        &["whoami", "--attribute-mapping", "attribute.x=assertion.arn"],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("google.subject"));
}
