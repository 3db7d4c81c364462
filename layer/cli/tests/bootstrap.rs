//! `crossfed bootstrap` against stacks deployed from `template.yaml` itself: the outputs,
//! function names and environments come from the offline SAM transform
//! (`deploy/check_template.py --stack`, physical names as CloudFormation makes them), the
//! outputs are served by moto's CloudFormation `DescribeStacks`, and the plan is checked
//! against the template: parameters, configuration parameters, roles, subjects, condition.

use std::collections::BTreeMap;
use std::process::Command;

use crossfed::google::attribute_mapping::MAX_SUBJECT_BYTES;
use crossfed::google::{AttributeCondition, AttributeMapping, AwsAssertion};
use crossfed_tests::{LocalCloud, venv_python, workspace_root};
use serde_json::{Value, json};

const ACCOUNT: &str = "111122223333";

/// Stack names as users name them, up to one long enough for CloudFormation to shorten the
/// generated role and function names to 64 characters.
const STACKS: [&str; 4] = [
    "crossfed",
    "crossfed-prod",
    "my-crossfed-stack-20",
    "team-data-platform-crossfed-production-eu",
];

/// The README's flags.
const FLAGS: [&str; 12] = [
    "--project-id",
    "my-project",
    "--project-number",
    "123456789012",
    "--sync-destination",
    "gs://my-sync-bucket/from-s3",
    "--report-gcs-bucket",
    "my-sync-bucket",
    "--report-gcs-bucket",
    "archive-bucket",
    "--vertex-location",
    "us-central1",
];

/// The stack `name` as deployed from template.yaml with `parameters`.
fn deployed(name: &str, parameters: &BTreeMap<String, String>) -> Value {
    let out = Command::new(venv_python(".venv-sam", "sam-venv"))
        .arg(workspace_root().join("deploy/check_template.py"))
        .args(["--stack", name, "--parameters"])
        .arg(serde_json::to_string(parameters).unwrap())
        .output()
        .expect("run deploy/check_template.py");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("check_template.py --stack prints JSON")
}

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

fn plan(cloud: &LocalCloud, args: &[&str]) -> Value {
    let out = bootstrap(cloud, &[args, &["--format", "json"]].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

async fn cloudformation(cloud: &LocalCloud) -> aws_sdk_cloudformation::Client {
    aws_sdk_cloudformation::Client::new(&cloud.admin_sdk_config().await)
}

/// A moto stack whose `DescribeStacks` shows `outputs`.
async fn serve_outputs(cfn: &aws_sdk_cloudformation::Client, name: &str, outputs: &Value) {
    let outputs: serde_json::Map<String, Value> = outputs
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), json!({ "Value": v })))
        .collect();
    let template = json!({
        "Resources": {"Marker": {"Type": "AWS::SQS::Queue"}},
        "Outputs": outputs,
    });
    let _ = cfn.delete_stack().stack_name(name).send().await;
    cfn.create_stack()
        .stack_name(name)
        // Compact: moto's SigV4 check and the SDK disagree on encoded spaces in form bodies.
        .template_body(template.to_string())
        .send()
        .await
        .expect("create the stack in moto");
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// What each function's code calls: (resource, permission), the resource named by the
/// function's environment.
fn needs(logical_id: &str, env: &BTreeMap<String, String>) -> Vec<(String, &'static str)> {
    let project = format!("projects/{}", env["GOOGLE_CLOUD_PROJECT"]);
    let bucket = |url: &str| {
        let name = url.trim_start_matches("gs://").split('/').next().unwrap();
        format!("gs://{name}")
    };
    match logical_id {
        "ListBucketsFunction" | "PythonListBucketsFunction" => {
            vec![(project, "storage.buckets.list")]
        }
        "GcsSyncFunction" => [
            "storage.objects.get",
            "storage.objects.create",
            "storage.objects.delete",
            "storage.objects.list",
        ]
        .into_iter()
        .map(|p| (bucket(&env["SYNC_DESTINATION"]), p))
        .collect(),
        "CrossCloudReportFunction" => {
            let mut needs: Vec<(String, &str)> = env["REPORT_GCS_BUCKETS"]
                .split(',')
                .filter(|b| !b.is_empty())
                .map(|b| (format!("gs://{b}"), "storage.objects.list"))
                .collect();
            needs.push((project, "aiplatform.endpoints.predict"));
            needs
        }
        other => panic!("a function of the template without known needs: {other}"),
    }
}

/// The permissions (of those the functions call) a granted role holds: predefined roles as
/// Google documents them, custom roles as the plan creates them.
fn permissions(role: &str, plan: &Value) -> Vec<String> {
    let predefined: &[&str] = match role {
        "roles/storage.bucketViewer" => &["storage.buckets.get", "storage.buckets.list"],
        "roles/storage.objectUser" => &[
            "storage.objects.create",
            "storage.objects.delete",
            "storage.objects.get",
            "storage.objects.list",
            "storage.objects.update",
        ],
        "roles/storage.objectCreator" => &["storage.objects.create"],
        _ => &[],
    };
    let custom = plan["custom_roles"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| role.ends_with(&format!("/roles/{}", c["id"].as_str().unwrap())))
        .flat_map(|c| strings(&c["permissions"]));
    predefined
        .iter()
        .map(|p| p.to_string())
        .chain(custom)
        .collect()
}

/// Sessions that must not pass, for a stack role `role`.
fn near_misses(role: &str) -> Vec<String> {
    let a = ACCOUNT;
    vec![
        format!(
            "arn:aws:sts::{a}:assumed-role/{}/s",
            &role[..role.len() - 1]
        ),
        format!("arn:aws:sts::{a}:assumed-role/{role}x/s"),
        format!("arn:aws:sts::{a}:assumed-role/x{role}/s"),
        format!("arn:aws:sts::999999999999:assumed-role/{role}/s"),
        format!("arn:aws-cn:sts::{a}:assumed-role/{role}/s"),
        format!("arn:aws:iam::{a}:user/assumed-role/{role}/eve"),
        format!("arn:aws:iam::{a}:user/x/arn:aws:sts::{a}:assumed-role/{role}/eve"),
        format!("arn:aws:iam::{a}:user/{role}"),
        format!("arn:aws:iam::{a}:role/{role}"),
        format!("arn:aws:sts::{a}:federated-user/{role}"),
        format!("arn:aws:iam::{a}:root"),
    ]
}

/// Google's verdict on one caller: mapped within the limits and admitted by the condition.
fn admitted(mapping: &AttributeMapping, condition: &AttributeCondition, arn: &str) -> bool {
    let assertion = AwsAssertion::from_arn(arn);
    match mapping.evaluate(&assertion) {
        Ok(mapped) => condition.admits(&assertion, &mapped) == Ok(true),
        Err(_) => false,
    }
}

/// Everything a plan must hold for the stack it was made for.
fn check_against_the_template(name: &str, stack: &Value, plan: &Value) {
    let functions = plan["functions"].as_array().unwrap();
    let names: Vec<&str> = functions
        .iter()
        .map(|f| f["function"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "cross-cloud-report",
            "gcs-sync",
            "list-buckets",
            "python-list-buckets"
        ],
        "{name}"
    );
    // Every override is a parameter of the template.
    let parameters = strings(&stack["parameters"]);
    let overrides: BTreeMap<String, String> =
        serde_json::from_value(plan["sam_parameter_overrides"].clone()).unwrap();
    for key in overrides.keys() {
        assert!(parameters.contains(key), "{name}: override {key}");
    }
    // The stack redeployed with them: every function reads the parameter the script
    // writes, and has the roles its code needs.
    let redeployed = deployed(name, &overrides);
    let written: Vec<String> = plan["aws"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| strings(&c["run"]))
        .filter_map(|a| a.strip_prefix("--name=").map(str::to_string))
        .collect();
    let mapping = AttributeMapping::from_pairs(
        plan["provider"]["attribute_mapping"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string())),
    )
    .unwrap();
    let condition =
        AttributeCondition::parse(plan["provider"]["attribute_condition"].as_str().unwrap())
            .unwrap();
    for (logical_id, function) in redeployed["functions"].as_object().unwrap() {
        let role_arn = function["role_arn"].as_str().unwrap();
        let planned = functions
            .iter()
            .find(|f| f["role_arn"] == role_arn)
            .unwrap_or_else(|| panic!("{name}: no plan for {logical_id} ({role_arn})"));
        let env: BTreeMap<String, String> =
            serde_json::from_value(function["environment"].clone()).unwrap();
        let parameter = planned["config_parameter"].as_str().unwrap();
        assert_eq!(env["CROSSFED_CONFIG_PARAMETER"], parameter, "{logical_id}");
        assert!(written.iter().any(|w| w == parameter), "{logical_id}");
        let grants: Vec<(String, String)> = planned["grants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| {
                (
                    g["resource"].as_str().unwrap().to_string(),
                    g["role"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        for (resource, permission) in needs(logical_id, &env) {
            assert!(
                grants.iter().any(|(r, role)| *r == resource
                    && permissions(role, plan).iter().any(|p| p == permission)),
                "{name}: {logical_id} needs {permission} on {resource}; grants {grants:?}"
            );
        }
        // Nothing broader than that for the report: no object reads, no Vertex AI jobs.
        for (_, role) in &grants {
            assert!(
                !["roles/storage.objectViewer", "roles/aiplatform.user"].contains(&role.as_str()),
                "{name}: {logical_id} gets {role}"
            );
        }
        if let Some(buckets) = env.get("REPORT_GCS_BUCKETS") {
            let listed: Vec<&str> = buckets.split(',').filter(|b| !b.is_empty()).collect();
            let unique: std::collections::BTreeSet<&str> = listed.iter().copied().collect();
            assert_eq!(listed.len(), unique.len(), "{name}: {buckets}");
        }
        // Lambda's session name is the function name: Google maps it within its limits,
        // and the condition admits it, and no near miss.
        let role = role_arn.rsplit('/').next().unwrap();
        let session = format!(
            "arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{}",
            function["name"].as_str().unwrap()
        );
        let mapped = mapping
            .evaluate(&AwsAssertion::from_arn(&session))
            .unwrap_or_else(|e| panic!("{name}: {session}: {e}"));
        assert!(mapped.subject.len() <= MAX_SUBJECT_BYTES, "{session}");
        assert!(admitted(&mapping, &condition, &session), "{session}");
        for miss in near_misses(role) {
            assert!(
                !admitted(&mapping, &condition, &miss),
                "{name}: the condition admits {miss}"
            );
        }
    }
    // Every binding tolerates a policy with conditional bindings.
    for c in plan["gcloud"].as_array().unwrap() {
        let run = strings(&c["run"]);
        if run.iter().any(|a| a == "add-iam-policy-binding") {
            assert!(run.iter().any(|a| a == "--condition=None"), "{run:?}");
        }
        for a in &run {
            if let Some(display) = a.strip_prefix("--display-name=") {
                assert!(display.len() <= 100, "{display}");
            }
        }
    }
}

#[tokio::test]
async fn plans_match_stacks_deployed_from_the_template() {
    let cloud = LocalCloud::load();
    let cfn = cloudformation(&cloud).await;
    let mut long_arns = 0;
    for name in STACKS {
        let stack = deployed(name, &BTreeMap::new());
        assert!(
            stack["outputs"]
                .as_object()
                .unwrap()
                .keys()
                .filter(|k| k.ends_with("RoleArn"))
                .count()
                == 4,
            "{name}: one <Function>RoleArn output per federated function"
        );
        for (f, function) in stack["functions"].as_object().unwrap() {
            let name_len = function["name"].as_str().unwrap().len();
            assert!(name_len <= 64, "{f}");
            let role = function["role_arn"].as_str().unwrap().rsplit('/').next();
            let arn = format!(
                "arn:aws:sts::{ACCOUNT}:assumed-role/{}/{}",
                role.unwrap(),
                function["name"].as_str().unwrap()
            );
            if arn.len() > MAX_SUBJECT_BYTES {
                long_arns += 1;
            }
        }
        serve_outputs(&cfn, name, &stack["outputs"]).await;
        for mapping in ["default", "role-name"] {
            for shared in [false, true] {
                let mut args = vec!["--stack", name, "--mapping", mapping];
                args.extend(FLAGS);
                if shared {
                    args.extend(["--shared-service-account", "crossfed"]);
                }
                let plan = plan(&cloud, &args);
                assert_eq!(plan["stack"], name);
                check_against_the_template(name, &stack, &plan);
            }
        }
    }
    // Google's default subject (the whole session ARN) would not fit for most of them.
    assert!(long_arns >= 8, "{long_arns}");

    // The shell output of one plan, twice: identical.
    let mut shell = vec!["--stack", STACKS[2], "--mapping", "role-name"];
    shell.extend(FLAGS);
    let a = bootstrap(&cloud, &shell);
    let b = bootstrap(&cloud, &shell);
    assert!(a.status.success());
    assert_eq!(a.stdout, b.stdout);

    // A missing stack says so.
    let mut missing = vec!["--stack", "no-such-stack"];
    missing.extend(FLAGS);
    let out = bootstrap(&cloud, &missing);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no-such-stack") && !err.contains("panicked"),
        "{err}"
    );
}

#[tokio::test]
async fn outputs_that_are_not_a_functions_role_are_not_functions() {
    let cloud = LocalCloud::load();
    let cfn = cloudformation(&cloud).await;
    let name = format!("crossfed-old-{:x}", fastrand::u32(..));
    let role = |f: &str| format!("arn:aws:iam::{ACCOUNT}:role/{name}-{f}FunctionRole-A1B2C3");
    // A stack deployed from the previous template: a second output for the list-buckets
    // role, and attribute outputs.
    let outputs = json!({
        "ListBucketsRoleArn": role("ListBuckets"),
        "ListBucketsFunctionRoleArn": role("ListBuckets"),
        "GcsSyncRoleArn": role("GcsSync"),
        "GoogleAwsRoleAttribute": format!("arn:aws:sts::{ACCOUNT}:assumed-role/{name}-ListBucketsFunctionRole-A1B2C3"),
        "GcsSyncRoleAttribute": format!("arn:aws:sts::{ACCOUNT}:assumed-role/{name}-GcsSyncFunctionRole-A1B2C3"),
        "SyncQueueUrl": "https://sqs.example/queue",
    });
    serve_outputs(&cfn, &name, &outputs).await;
    let mut args = vec![
        "--stack",
        name.as_str(),
        "--shared-service-account",
        "crossfed",
    ];
    args.extend(FLAGS);
    let plan = plan(&cloud, &args);
    let functions: Vec<&str> = plan["functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["function"].as_str().unwrap())
        .collect();
    assert_eq!(functions, ["gcs-sync", "list-buckets"]);

    // An output whose partition is not AWS's is refused, escaped, naming the output.
    let bad = format!("crossfed-bad-{:x}", fastrand::u32(..));
    let outputs = json!({
        "GcsSyncRoleArn": format!("arn:aws'||true||'x:iam::{ACCOUNT}:role/x"),
    });
    serve_outputs(&cfn, &bad, &outputs).await;
    let mut args = vec!["--stack", bad.as_str()];
    args.extend(FLAGS);
    let out = bootstrap(&cloud, &args);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("stack output GcsSyncRoleArn"), "{err}");
}
