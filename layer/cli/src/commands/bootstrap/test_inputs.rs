//! The inputs of the unit tests: the stack's three functions in one account.

use super::inputs::{FunctionRole, Inputs, MappingChoice};

/// The first `n` of the stack's roles (list-buckets, gcs-sync, cross-cloud-report).
pub fn stack_roles(n: usize) -> Vec<FunctionRole> {
    [
        ("list-buckets", "arn:aws:iam::111122223333:role/crossfed-ListBucketsFunctionRole-AbCdEf123456"),
        ("gcs-sync", "arn:aws:iam::111122223333:role/crossfed-GcsSyncFunctionRole-GhIjKl789012"),
        ("cross-cloud-report", "arn:aws:sts::111122223333:assumed-role/crossfed-CrossCloudReportFunctionRole-MnOpQr345678"),
    ]
    .iter()
    .take(n)
    .map(|(f, arn)| FunctionRole::parse(f, arn, None).unwrap())
    .collect()
}

/// Every flag set, for `n` roles.
pub fn inputs(n: usize, mapping: MappingChoice, shared: bool) -> Inputs {
    Inputs {
        project_id: "my-project".into(),
        project_number: "123456789012".into(),
        pool: "aws-lambda".into(),
        provider: None,
        roles: stack_roles(n),
        shared_service_account: shared.then(|| "crossfed".to_string()),
        mapping,
        sync_destination: Some("gs://my-sync-bucket/from-s3".into()),
        report_gcs_buckets: vec!["my-sync-bucket".into(), "gs://archive-bucket".into()],
        report_output: Some("gs://my-reports/daily".into()),
        vertex_location: Some("us-central1".into()),
        config_parameter: "/crossfed/google-credential-config".into(),
        kms_key_id: (!shared).then(|| "alias/crossfed".to_string()),
        region: Some("eu-west-1".into()),
        stack: Some("crossfed".into()),
        enable_imdsv2: false,
        token_lifetime_seconds: None,
        prefix_condition: false,
    }
}
