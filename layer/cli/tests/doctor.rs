//! `crossfed doctor` against moto and the strict Google fakes: the all-green path and each
//! failure, with the fix it prints (and, for the binding, proof that the fix works).

use std::path::{Path, PathBuf};
use std::process::Command;

use crossfed_tests::scenario::{ConfigShape, Scenario};
use crossfed_tests::{AwsRoleMapping, FakeGoogleConfig, GoogleApi, LocalCloud, SubjectMapping};
use serde_json::Value;

struct Run {
    code: i32,
    json: Value,
}

fn doctor(s: &Scenario, aws_creds: bool, config: &[(&str, &str)], args: &[&str]) -> Run {
    let role = &s.cloud.role;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_crossfed"));
    cmd.arg("doctor")
        .arg("--json")
        .args(args)
        .env_clear()
        .env("AWS_REGION", &s.cloud.region)
        .env("AWS_ENDPOINT_URL", &s.cloud.moto_url)
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("CROSSFED_ALLOW_LOCAL_ENDPOINTS", "1");
    if aws_creds {
        cmd.env("AWS_ACCESS_KEY_ID", &role.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &role.secret_access_key)
            .env("AWS_SESSION_TOKEN", &role.session_token);
    }
    for (k, v) in config {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run crossfed doctor");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "doctor --json is not JSON ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    Run {
        code: out.status.code().unwrap_or(-1),
        json,
    }
}

fn write_config(config: &Value) -> PathBuf {
    let path = std::env::temp_dir().join(format!("crossfed-doctor-{:x}.json", fastrand::u64(..)));
    std::fs::write(&path, config.to_string()).unwrap();
    path
}

fn file_env(path: &Path) -> Vec<(&'static str, String)> {
    vec![(
        "GOOGLE_APPLICATION_CREDENTIALS",
        path.to_string_lossy().into_owned(),
    )]
}

/// `(step, status)` pairs in order.
fn statuses(run: &Run) -> Vec<(String, String)> {
    run.json["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| {
            (
                s["step"].as_str().unwrap().to_string(),
                s["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn step<'a>(run: &'a Run, name: &str) -> &'a Value {
    run.json["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == name)
        .unwrap_or_else(|| panic!("no step {name}: {}", run.json))
}

/// The first failing step; everything before passed, everything after was skipped.
fn assert_fails_at(run: &Run, failing: &str) -> String {
    assert_eq!(run.code, 1, "{}", run.json);
    assert_eq!(run.json["ok"], false);
    let order = [
        "config",
        "aws",
        "attributes",
        "sts",
        "impersonation",
        "test_call",
    ];
    let pos = order.iter().position(|s| *s == failing).unwrap();
    let got = statuses(run);
    for (i, (name, status)) in got.iter().enumerate() {
        assert_eq!(name, order[i]);
        let want = match i.cmp(&pos) {
            std::cmp::Ordering::Less => "pass",
            std::cmp::Ordering::Equal => "fail",
            std::cmp::Ordering::Greater => "skip",
        };
        assert_eq!(status, want, "{name} in {}", run.json);
    }
    step(run, failing)["fix"]
        .as_str()
        .expect("a failed step has a fix")
        .to_string()
}

fn env_refs<'a>(v: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    v.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

async fn gcs_bucket(cloud: &LocalCloud) -> (String, String) {
    let base = cloud
        .gcs_http
        .clone()
        .expect("make test starts fake-gcs-server (LOCALCLOUD_GCS_HTTP)");
    let bucket = format!("doctor-{:x}", fastrand::u32(..));
    let resp = reqwest::Client::new()
        .post(format!("{base}/storage/v1/b?project=test"))
        .json(&serde_json::json!({ "name": bucket }))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{:?}", resp.text().await);
    (base, bucket)
}

#[tokio::test]
async fn all_green_with_the_providers_condition_and_a_test_call() {
    let s = Scenario::start_with(|c| {
        c.allowed_aws_roles = Some(vec![LocalCloud::aws_role_attribute(
            &LocalCloud::load().role,
        )]);
    })
    .await;
    let file = write_config(&s.config_json(&ConfigShape::default()));
    let (gcs, bucket) = gcs_bucket(&s.cloud).await;
    let condition = format!(
        "attribute.aws_role in ['{}']",
        LocalCloud::aws_role_attribute(&s.cloud.role)
    );
    let mut env = file_env(&file);
    env.push(("STORAGE_EMULATOR_HOST", gcs));
    let run = doctor(
        &s,
        true,
        &env_refs(&env),
        &[
            "--attribute-condition",
            &condition,
            "--test-bucket",
            &bucket,
        ],
    );
    assert_eq!(run.code, 0, "{}", run.json);
    assert_eq!(run.json["ok"], true);
    assert!(
        statuses(&run).iter().all(|(_, st)| st == "pass"),
        "{}",
        run.json
    );
    let attrs = step(&run, "attributes")["details"].to_string();
    let set = s
        .google
        .config()
        .principal_set_for_aws_role(&LocalCloud::aws_role_attribute(&s.cloud.role));
    assert!(attrs.contains(&set), "{attrs}");
    assert!(attrs.contains("Google's default AWS mapping"), "{attrs}");
    assert_eq!(
        (
            s.google.calls(GoogleApi::Sts),
            s.google.calls(GoogleApi::GenerateAccessToken)
        ),
        (1, 1)
    );

    // The human output marks every step.
    let out = Command::new(env!("CARGO_BIN_EXE_crossfed"))
        .args(["doctor", "--attribute-condition", &condition])
        .env_clear()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("AWS_ACCESS_KEY_ID", &s.cloud.role.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &s.cloud.role.secret_access_key)
        .env("AWS_SESSION_TOKEN", &s.cloud.role.session_token)
        .env("AWS_REGION", &s.cloud.region)
        .env("AWS_ENDPOINT_URL", &s.cloud.moto_url)
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .env("CROSSFED_ALLOW_LOCAL_ENDPOINTS", "1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert_eq!(text.matches('✓').count(), 5, "{text}");
    assert!(text.contains("- test call: no test call"), "{text}");
}

#[tokio::test]
async fn audience_naming_the_pool_is_caught_at_the_config() {
    let s = Scenario::start().await;
    let mut config = s.config_json(&ConfigShape::default());
    config["audience"] = s.google.config().pool_audience().unwrap().into();
    let file = write_config(&config);
    let run = doctor(&s, true, &env_refs(&file_env(&file)), &[]);
    let fix = assert_fails_at(&run, "config");
    assert!(
        fix.contains("names the pool, not the provider") && fix.contains("/providers/"),
        "{fix}"
    );
    assert_eq!(s.google.calls(GoogleApi::Sts), 0);
}

#[tokio::test]
async fn condition_rejection_locally_and_at_sts() {
    let s = Scenario::start_with(|c| {
        c.allowed_aws_roles = Some(vec!["arn:aws:sts::123456789012:assumed-role/other".into()]);
    })
    .await;
    let file = write_config(&s.config_json(&ConfigShape::default()));
    let env = file_env(&file);
    let role_attr = LocalCloud::aws_role_attribute(&s.cloud.role);

    // Given the provider's condition, doctor finds it without calling Google.
    let run = doctor(
        &s,
        true,
        &env_refs(&env),
        &[
            "--attribute-condition",
            "attribute.aws_role in ['arn:aws:sts::123456789012:assumed-role/other']",
        ],
    );
    let fix = assert_fails_at(&run, "attributes");
    assert!(
        fix.contains(&format!("'{role_attr}'")) && fix.contains("update-aws"),
        "{fix}"
    );
    assert_eq!(s.google.calls(GoogleApi::Sts), 0);

    // Without it, the fake STS rejects for real and doctor names the cause.
    let run = doctor(&s, true, &env_refs(&env), &[]);
    let fix = assert_fails_at(&run, "sts");
    let summary = step(&run, "sts")["summary"].as_str().unwrap();
    assert!(
        summary.contains("attribute condition") && summary.contains("unauthorized_client"),
        "{summary}"
    );
    assert!(fix.contains(&role_attr), "{fix}");
    assert_eq!(s.google.calls(GoogleApi::Sts), 1);
}

#[tokio::test]
async fn unbound_service_account_prints_the_binding_that_fixes_it() {
    for mapping in [AwsRoleMapping::AssumedRoleArn, AwsRoleMapping::RoleName] {
        let edit = move |c: &mut FakeGoogleConfig| {
            c.bindings.clear();
            c.aws_role_mapping = mapping;
        };
        let s = Scenario::start_with(edit).await;
        let file = write_config(&s.config_json(&ConfigShape::default()));
        let env = file_env(&file);
        let args: &[&str] = match mapping {
            AwsRoleMapping::RoleName => &[
                "--attribute-mapping",
                "google.subject=assertion.arn,attribute.aws_role=assertion.arn.extract('assumed-role/{role}/')",
            ],
            _ => &[],
        };
        let run = doctor(&s, true, &env_refs(&env), args);
        let fix = assert_fails_at(&run, "impersonation");
        let sa = &s.google.config().service_account_email;
        assert!(
            fix.starts_with(&format!(
                "gcloud iam service-accounts add-iam-policy-binding {sa} "
            )) && fix.contains("--role=roles/iam.workloadIdentityUser"),
            "{fix}"
        );
        let member = fix.split("--member=").nth(1).unwrap().to_string();

        // Applying exactly that binding makes the chain pass.
        let fixed = Scenario::start_with(move |c| {
            edit(c);
            c.bindings = vec![member.clone()];
        })
        .await;
        let file = write_config(&fixed.config_json(&ConfigShape::default()));
        let run = doctor(&fixed, true, &env_refs(&file_env(&file)), args);
        assert_eq!(run.code, 0, "{mapping:?}: {}", run.json);
    }
}

#[tokio::test]
async fn ssm_parameter_missing_or_denied() {
    let s = Scenario::start().await;
    let run = doctor(
        &s,
        true,
        &[],
        &["--config-parameter", "/crossfed/doctor-missing"],
    );
    let fix = assert_fails_at(&run, "config");
    assert!(
        fix.contains("aws ssm put-parameter --name=/crossfed/doctor-missing"),
        "{fix}"
    );

    let outside = format!("/outside/doctor-{:x}", fastrand::u32(..));
    s.write_parameter(
        &outside,
        &s.config_json(&ConfigShape::default()).to_string(),
        false,
    )
    .await;
    let run = doctor(&s, true, &[], &["--config-parameter", &outside]);
    let fix = assert_fails_at(&run, "config");
    assert!(
        fix.contains(&format!("ssm:GetParameter on {outside}")),
        "{fix}"
    );

    // From the environment, the summary says where the name came from.
    let inside = s
        .put_parameter(&s.config_json(&ConfigShape::default()).to_string(), true)
        .await;
    let run = doctor(&s, true, &[("CROSSFED_CONFIG_PARAMETER", &inside)], &[]);
    assert_eq!(run.code, 0, "{}", run.json);
    let summary = step(&run, "config")["summary"].as_str().unwrap();
    assert!(
        summary.contains(&format!(
            "SSM parameter {inside} (from CROSSFED_CONFIG_PARAMETER)"
        )),
        "{summary}"
    );
}

#[tokio::test]
async fn no_aws_credentials() {
    let s = Scenario::start().await;
    let file = write_config(&s.config_json(&ConfigShape::default()));
    let run = doctor(&s, false, &env_refs(&file_env(&file)), &[]);
    let fix = assert_fails_at(&run, "aws");
    assert!(fix.contains("AWS credentials"), "{fix}");
    assert_eq!(s.google.calls(GoogleApi::Sts), 0);
}

#[tokio::test]
async fn stale_clock() {
    let s = Scenario::start_with(|c| c.clock_offset = std::time::Duration::from_secs(3600)).await;
    let file = write_config(&s.config_json(&ConfigShape::default()));
    let run = doctor(&s, true, &env_refs(&file_env(&file)), &[]);
    let fix = assert_fails_at(&run, "sts");
    assert!(fix.contains("clock"), "{fix}");
    assert!(
        step(&run, "sts")["summary"]
            .as_str()
            .unwrap()
            .contains("clock")
    );
}

#[tokio::test]
async fn no_configuration_at_all() {
    let s = Scenario::start().await;
    let run = doctor(&s, true, &[], &[]);
    let fix = assert_fails_at(&run, "config");
    assert!(
        fix.contains("--config-parameter") && fix.contains("CROSSFED_CONFIG_PARAMETER"),
        "{fix}"
    );
}

/// `--fetch-provider` reads mapping, condition and account from the provider resource (the
/// fake IAM API) and checks them locally, before any STS call.
#[tokio::test]
async fn fetch_provider_checks_condition_and_account_locally() {
    let own_role = LocalCloud::aws_role_attribute(&LocalCloud::load().role);
    for (account, allowed, expect) in [
        ("123456789012", own_role.as_str(), "pass"),
        (
            "123456789012",
            "arn:aws:sts::123456789012:assumed-role/other",
            "condition",
        ),
        ("999999999999", "", "account"),
    ] {
        let s = Scenario::start_with(|c| {
            c.provider_reader_token = Some("ya29.reader".into());
            c.aws_account_id = account.into();
            if !allowed.is_empty() {
                c.allowed_aws_roles = Some(vec![allowed.into()]);
            }
        })
        .await;
        let file = write_config(&s.config_json(&ConfigShape::default()));
        let mut env = file_env(&file);
        env.push(("CLOUDSDK_AUTH_ACCESS_TOKEN", "ya29.reader".into()));
        let iam = s.google.iam_base_url();
        let run = doctor(
            &s,
            true,
            &env_refs(&env),
            &["--fetch-provider", "--iam-endpoint", &iam],
        );
        if expect == "pass" {
            assert_eq!(run.code, 0, "{}", run.json);
            let attrs = step(&run, "attributes");
            assert!(
                attrs["summary"]
                    .as_str()
                    .unwrap()
                    .contains("admits this caller"),
                "{attrs}"
            );
            assert!(
                attrs["details"]
                    .to_string()
                    .contains("mapping from the provider"),
                "{attrs}"
            );
            continue;
        }
        let fix = assert_fails_at(&run, "attributes");
        let summary = step(&run, "attributes")["summary"].as_str().unwrap();
        match expect {
            "condition" => assert!(
                summary.contains("rejects this caller") && fix.contains("update-aws"),
                "{summary} {fix}"
            ),
            _ => assert!(
                summary.contains("admits AWS account 999999999999"),
                "{summary}"
            ),
        }
        assert_eq!(s.google.calls(GoogleApi::Sts), 0);

        // Without a reader token the fake IAM API refuses, and doctor says what is needed.
        env.pop();
        env.push(("CLOUDSDK_AUTH_ACCESS_TOKEN", "ya29.someone-else".into()));
        let run = doctor(
            &s,
            true,
            &env_refs(&env),
            &["--fetch-provider", "--iam-endpoint", &iam],
        );
        let fix = assert_fails_at(&run, "attributes");
        assert!(
            fix.contains("iam.workloadIdentityPoolProviders.get"),
            "{fix}"
        );
    }
}

/// Credentials of a session of a role whose name and session name are as long as AWS allows
/// (CloudFormation names Lambda roles and functions up to 64 characters, and Lambda's session
/// name is the function name): the whole session ARN is 168 bytes.
async fn long_session(cloud: &LocalCloud) -> (String, Vec<(&'static str, String)>) {
    let config = cloud.admin_sdk_config().await;
    let role = format!(
        "team-data-platform-crossfed-p-CrossCloudReportFunctionRole-{:05}",
        fastrand::u32(..100_000)
    );
    let out = aws_sdk_sts::Client::new(&config)
        .assume_role()
        .role_arn(format!("arn:aws:iam::{}:role/{role}", cloud.account_id))
        .role_session_name("team-data-platform-crossfed-pr-CrossCloudReportFunction-A1B2C3D4")
        .send()
        .await
        .expect("assume a long-named role in moto");
    let c = out.credentials().unwrap();
    let arn = out.assumed_role_user().unwrap().arn().to_string();
    let env = vec![
        ("AWS_ACCESS_KEY_ID", c.access_key_id().to_string()),
        ("AWS_SECRET_ACCESS_KEY", c.secret_access_key().to_string()),
        ("AWS_SESSION_TOKEN", c.session_token().to_string()),
    ];
    (arn, env)
}

#[tokio::test]
async fn a_subject_over_127_bytes_is_found_locally_and_at_sts_with_the_shorter_mapping() {
    let s = Scenario::start().await;
    let (arn, mut env) = long_session(&s.cloud).await;
    assert!(arn.len() > 127, "{arn}");
    let file = write_config(&s.config_json(&ConfigShape::default()));
    env.extend(file_env(&file));

    // Google's default mapping (google.subject=assertion.arn): doctor finds it locally.
    let run = doctor(&s, false, &env_refs(&env), &[]);
    let fix = assert_fails_at(&run, "attributes");
    let summary = step(&run, "attributes")["summary"].as_str().unwrap();
    assert!(summary.contains("127"), "{summary}");
    assert!(
        fix.contains("127 bytes")
            && fix.contains("update-aws")
            && fix.contains(
                "--attribute-mapping=google.subject=assertion.arn.contains('assumed-role')"
            ),
        "{fix}"
    );
    assert_eq!(s.google.calls(GoogleApi::Sts), 0);

    // Told a mapping that fits, doctor passes the step; the fake STS, whose provider still
    // maps the whole ARN, refuses as Google does, and doctor names the same fix.
    let short = fix
        .split("\"--attribute-mapping=")
        .nth(1)
        .and_then(|m| m.split('"').next())
        .unwrap()
        .to_string();
    let run = doctor(&s, false, &env_refs(&env), &["--attribute-mapping", &short]);
    let fix = assert_fails_at(&run, "sts");
    let summary = step(&run, "sts")["summary"].as_str().unwrap();
    assert!(summary.contains("exceeds the 127 bytes limit"), "{summary}");
    assert!(fix.contains(&short), "{fix}");

    // With that mapping on the provider, the exchange succeeds.
    let role_arn = arn.rsplit_once('/').unwrap().0.to_string();
    let fixed = Scenario::start_with(move |c| {
        c.subject_mapping = SubjectMapping::AssumedRoleArn;
        c.bindings = vec![c.principal_set_for_aws_role(&role_arn)];
    })
    .await;
    let file = write_config(&fixed.config_json(&ConfigShape::default()));
    env.truncate(3);
    env.extend(file_env(&file));
    let run = doctor(
        &fixed,
        false,
        &env_refs(&env),
        &["--attribute-mapping", &short],
    );
    assert_eq!(run.code, 0, "{}", run.json);
}

/// A loopback HTTP server that answers one request with `response`.
fn one_answer(response: Vec<u8>) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(&response);
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn tokens_go_only_to_allowed_endpoints_without_redirects_or_unbounded_reads() {
    // The operator's token (--fetch-provider) goes to Google's IAM API only.
    let s = Scenario::start_with(|c| c.provider_reader_token = Some("ya29.reader".into())).await;
    let file = write_config(&s.config_json(&ConfigShape::default()));
    let mut env = file_env(&file);
    env.push(("CLOUDSDK_AUTH_ACCESS_TOKEN", "ya29.reader".into()));
    for endpoint in [
        "https://iam.googleapis.com.evil.example",
        "http://iam.googleapis.com",
        "http://10.255.255.1:9",
    ] {
        let run = doctor(
            &s,
            true,
            &env_refs(&env),
            &["--fetch-provider", "--iam-endpoint", endpoint],
        );
        let fix = assert_fails_at(&run, "attributes");
        let summary = step(&run, "attributes")["summary"].as_str().unwrap();
        assert!(
            summary.contains("not an allowed Google endpoint"),
            "{summary}"
        );
        assert!(
            fix.contains("--iam-endpoint https://iam.googleapis.com"),
            "{fix}"
        );
    }

    // The service account's token (the test call) likewise: not to any STORAGE_EMULATOR_HOST,
    // not along a redirect, and the answer is read up to a limit.
    let s = Scenario::start_with(|c| {
        c.allowed_aws_roles = Some(vec![LocalCloud::aws_role_attribute(
            &LocalCloud::load().role,
        )]);
    })
    .await;
    let file = write_config(&s.config_json(&ConfigShape::default()));
    let redirect = one_answer(
        b"HTTP/1.1 302 Found\r\nLocation: http://10.255.255.1/steal\r\nContent-Length: 0\r\n\r\n"
            .to_vec(),
    );
    let mut big =
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 3145728\r\n\r\n"
            .to_vec();
    big.extend(std::iter::repeat_n(b' ', 3 << 20));
    let big = one_answer(big);
    for (host, expected) in [
        ("10.255.255.1:9", "not an allowed Google endpoint"),
        (
            "https://storage.googleapis.com.evil.example",
            "not an allowed Google endpoint",
        ),
        (redirect.as_str(), "redirect"),
        (big.as_str(), "more than"),
    ] {
        let mut env = file_env(&file);
        env.push(("STORAGE_EMULATOR_HOST", host.to_string()));
        let run = doctor(&s, true, &env_refs(&env), &["--test-bucket", "some-bucket"]);
        assert_fails_at(&run, "test_call");
        let summary = step(&run, "test_call")["summary"].as_str().unwrap();
        assert!(summary.contains(expected), "{host}: {summary}");
    }
}
