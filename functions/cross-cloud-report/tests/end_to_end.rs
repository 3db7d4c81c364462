//! The real `cross-cloud-report` binary under a local Lambda Runtime API: credential
//! configuration in SSM (moto), federation through the strict Google fakes, listings through
//! the backed gRPC storage fake, summary from the fake Vertex AI, reports to moto and
//! fake-gcs-server.

mod common;

use std::path::Path;

use common::{Harness, SUMMARY};
use cross_cloud_report::report::Report;
use crossfed_tests::GoogleApi;
use crossfed_tests::{FunctionProcess, LambdaError, LambdaRuntimeApi};
use serde_json::json;

const BINARY: &str = env!("CARGO_BIN_EXE_cross-cloud-report");

#[tokio::test]
async fn scheduled_event_writes_the_report() {
    let f = Harness::start().await;
    let runtime = LambdaRuntimeApi::start_with_arn(
        "arn:aws:lambda:us-east-1:123456789012:function:cross-cloud-report",
    )
    .await;
    let vars = f.env(&[]);
    let extra: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let env = f
        .scenario
        .function_env(&runtime, "cross-cloud-report", &extra)
        .await;
    let _function = FunctionProcess::spawn(Path::new(BINARY), &env, false).unwrap();

    let event = json!({
        "version": "0",
        "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2026-11-25T06:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/daily-report"],
        "detail": {}
    });
    let response = runtime.invoke(event).await.expect("invocation");
    assert_eq!(response["report_date"], "2026-11-25");
    assert_eq!(response["summary"], true);
    assert_eq!(response["errors"], 0);
    assert_eq!(
        (
            &response["drift_missing"],
            &response["drift_extra"],
            &response["drift_different"]
        ),
        (&json!(1), &json!(1), &json!(2))
    );
    let outputs: Vec<String> = serde_json::from_value(response["outputs"].clone()).unwrap();
    assert_eq!(outputs.len(), 4, "{outputs:?}");

    // The JSON is in S3 under the date partition, and parses.
    let prefix = "reports/dt=2026-11-25/";
    let keys = f.s3_keys(&f.bucket("out"), prefix).await;
    assert_eq!(keys.len(), 2, "{keys:?}");
    let json_key = keys.iter().find(|k| k.ends_with(".json")).unwrap();
    let stamp = &json_key[prefix.len()..];
    assert!(
        stamp.starts_with("report-") && stamp.len() == "report-HHMMSS.json".len(),
        "{json_key}"
    );
    assert!(outputs.contains(&format!("s3://{}/{json_key}", f.bucket("out"))));
    let report: Report = serde_json::from_str(&f.read_s3(&f.bucket("out"), json_key).await)
        .expect("report JSON parses");
    assert_eq!(report.summary.as_deref(), Some(SUMMARY));
    assert_eq!(report.totals.s3_objects, 4);
    assert_eq!(report.totals.gcs_objects, 5);
    assert_eq!(report.drift[0].different.count, 2);

    // A manual re-run for another day, warm: no new federation.
    let again = runtime
        .invoke(json!({"date": "2026-11-24"}))
        .await
        .expect("manual invocation");
    assert_eq!(again["report_date"], "2026-11-24");
    assert_eq!(
        f.s3_keys(&f.bucket("out"), "reports/dt=2026-11-24/")
            .await
            .len(),
        2
    );
    assert_eq!(
        (
            f.scenario.google.calls(GoogleApi::Sts),
            f.scenario.google.calls(GoogleApi::GenerateAccessToken)
        ),
        (1, 1)
    );

    // A malformed manual payload is an invocation error that says what to send.
    let err = runtime
        .invoke(json!({"date": "yesterday"}))
        .await
        .expect_err("bad date");
    let LambdaError::Function { error_message, .. } = err else {
        panic!("{err:?}")
    };
    assert!(error_message.contains("YYYY-MM-DD"), "{error_message}");
}

#[tokio::test]
async fn bad_configuration_fails_init_with_what_to_fix() {
    let f = Harness::start().await;
    let runtime = LambdaRuntimeApi::start_with_arn(
        "arn:aws:lambda:us-east-1:123456789012:function:cross-cloud-report",
    )
    .await;
    let env = f
        .scenario
        .function_env(
            &runtime,
            "cross-cloud-report",
            &[
                ("REPORT_S3_BUCKETS", "ok-bucket"),
                ("REPORT_OUTPUT", "reports-bucket/prefix"),
                ("GOOGLE_CLOUD_PROJECT", "my-project"),
            ],
        )
        .await;
    let _function = FunctionProcess::spawn(Path::new(BINARY), &env, false).unwrap();
    let err = runtime.invoke(json!({})).await.expect_err("init fails");
    let LambdaError::Init { error_message, .. } = err else {
        panic!("{err:?}")
    };
    assert!(
        error_message.contains("REPORT_OUTPUT entry 1 (`reports-bucket/prefix`)")
            && error_message.contains("s3://bucket[/prefix]"),
        "{error_message}"
    );
}
