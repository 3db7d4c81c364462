//! `crossfed bootstrap` reading a stack's role outputs from CloudFormation (moto).

use std::process::Command;

use crossfed_tests::LocalCloud;
use serde_json::Value;

const TEMPLATE: &str = r#"{
  "Resources": {"Marker": {"Type": "AWS::SQS::Queue"}},
  "Outputs": {
    "ListBucketsRoleArn": {"Value": "arn:aws:iam::123456789012:role/crossfed-ListBucketsFunctionRole-A1"},
    "GcsSyncRoleArn": {"Value": "arn:aws:iam::123456789012:role/crossfed-GcsSyncFunctionRole-B2"},
    "GcsSyncRoleAttribute": {"Value": "arn:aws:sts::123456789012:assumed-role/crossfed-GcsSyncFunctionRole-B2"},
    "CrossCloudReportRoleAttribute": {"Value": "arn:aws:sts::123456789012:assumed-role/crossfed-CrossCloudReportFunctionRole-C3"},
    "SyncQueueUrl": {"Value": "https://sqs.example/queue"}
  }
}"#;

fn bootstrap(cloud: &LocalCloud, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_crossfed"))
        .arg("bootstrap")
        .args(args)
        .env_clear()
        .env("AWS_ACCESS_KEY_ID", &cloud.admin_access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &cloud.admin_secret_access_key)
        .env("AWS_REGION", &cloud.region)
        .env("AWS_ENDPOINT_URL", &cloud.moto_url)
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .output()
        .expect("run crossfed bootstrap")
}

#[tokio::test]
async fn reads_the_stacks_role_outputs() {
    let cloud = LocalCloud::load();
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .credentials_provider(aws_credential_types::Credentials::new(
            &cloud.admin_access_key_id,
            &cloud.admin_secret_access_key,
            None,
            None,
            "admin",
        ))
        .region(aws_config::Region::new(cloud.region.clone()))
        .endpoint_url(&cloud.moto_url)
        .load()
        .await;
    let stack = format!("crossfed-bootstrap-{:x}", fastrand::u32(..));
    aws_sdk_cloudformation::Client::new(&config)
        .create_stack()
        .stack_name(&stack)
        // Compact: moto's SigV4 check and the SDK disagree on encoded spaces in form bodies.
        .template_body(serde_json::from_str::<Value>(TEMPLATE).unwrap().to_string())
        .send()
        .await
        .expect("create the stack in moto");

    let common = [
        "--project-id",
        "my-project",
        "--project-number",
        "123456789012",
        "--sync-destination",
        "gs://dst-bucket/prefix",
        "--report-gcs-bucket",
        "dst-bucket",
        "--format",
        "json",
    ];
    let mut args = vec!["--stack", stack.as_str()];
    args.extend(common);
    let out = bootstrap(&cloud, &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let functions: Vec<(&str, &str)> = plan["functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["function"].as_str().unwrap(),
                f["aws_role_attribute"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        functions,
        [
            (
                "cross-cloud-report",
                "arn:aws:sts::123456789012:assumed-role/crossfed-CrossCloudReportFunctionRole-C3"
            ),
            (
                "gcs-sync",
                "arn:aws:sts::123456789012:assumed-role/crossfed-GcsSyncFunctionRole-B2"
            ),
            (
                "list-buckets",
                "arn:aws:sts::123456789012:assumed-role/crossfed-ListBucketsFunctionRole-A1"
            ),
        ]
    );
    assert_eq!(
        plan["provider"]["attribute_condition"],
        "attribute.aws_role in ['arn:aws:sts::123456789012:assumed-role/crossfed-CrossCloudReportFunctionRole-C3', 'arn:aws:sts::123456789012:assumed-role/crossfed-GcsSyncFunctionRole-B2', 'arn:aws:sts::123456789012:assumed-role/crossfed-ListBucketsFunctionRole-A1']"
    );
    assert_eq!(plan["stack"], stack.as_str());

    // Shell output of the same plan, run twice: identical.
    let mut shell = vec!["--stack", stack.as_str(), "--mapping", "role-name"];
    shell.extend(&common[..common.len() - 2]);
    let a = bootstrap(&cloud, &shell);
    let b = bootstrap(&cloud, &shell);
    assert!(a.status.success());
    assert_eq!(a.stdout, b.stdout);
    let text = String::from_utf8(a.stdout).unwrap();
    assert!(text.contains("attribute.aws_role in ['crossfed-CrossCloudReportFunctionRole-C3', 'crossfed-GcsSyncFunctionRole-B2', 'crossfed-ListBucketsFunctionRole-A1']"), "{text}");

    // A missing stack says so.
    let mut missing = vec!["--stack", "no-such-stack"];
    missing.extend(common);
    let out = bootstrap(&cloud, &missing);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no-such-stack") && !err.contains("panicked"),
        "{err}"
    );
}
