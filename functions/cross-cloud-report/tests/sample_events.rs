//! Every `events/cross-cloud-report*.json` sample (the event the stack's EventBridge
//! Scheduler schedule sends) fed to the real binary.

mod common;

use std::path::Path;

use common::Harness;
use crossfed_tests::lambda::sample_events;
use crossfed_tests::{FunctionProcess, LambdaRuntimeApi};

#[tokio::test]
async fn every_sample_event_writes_a_report_for_its_day() {
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
    let _function = FunctionProcess::spawn(
        Path::new(env!("CARGO_BIN_EXE_cross-cloud-report")),
        &env,
        false,
    )
    .unwrap();
    let samples = sample_events::for_function("cross-cloud-report");
    assert!(!samples.is_empty());
    for (file, event) in samples {
        let day = &event["time"].as_str().expect("scheduled event time")[..10];
        let out = runtime.invoke(event.clone()).await.expect(&file);
        assert_eq!(out["report_date"], day, "{file}: {out}");
        assert_eq!(
            (&out["errors"], &out["summary"]),
            (&0.into(), &true.into()),
            "{file}: {out}"
        );
        let keys = f
            .s3_keys(&f.bucket("out"), &format!("reports/dt={day}/"))
            .await;
        assert_eq!(keys.len(), 2, "{file}: {keys:?}");
    }
}
