//! The real `list-buckets` binary under a local Lambda Runtime API, with its configuration
//! in SSM (moto), federation through the strict Google fakes, and the gRPC storage fake.

use std::path::Path;

use crossfed_tests::GoogleApi;
use crossfed_tests::scenario::Scenario;
use crossfed_tests::{FunctionProcess, LambdaRuntimeApi};
use serde_json::json;

#[tokio::test]
async fn lists_buckets_and_warm_invocations_make_no_auth_call() {
    let s = Scenario::start().await;
    let runtime = LambdaRuntimeApi::start().await;
    let env = s.list_buckets_env(&runtime).await;
    let _function =
        FunctionProcess::spawn(Path::new(env!("CARGO_BIN_EXE_list-buckets")), &env, false).unwrap();

    let first = runtime.invoke(json!({})).await.expect("first invocation");
    assert_eq!(first["statusCode"], 200);
    let body: serde_json::Value = serde_json::from_str(first["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        body,
        json!({"buckets": ["crossfed-bucket-a", "crossfed-bucket-b"]})
    );
    assert_eq!(
        (
            s.google.calls(GoogleApi::Sts),
            s.google.calls(GoogleApi::GenerateAccessToken)
        ),
        (1, 1),
        "token obtained once, at init"
    );

    for _ in 0..3 {
        let warm = runtime
            .invoke(json!({"source": "aws.events"}))
            .await
            .expect("warm invocation");
        assert_eq!(warm, first);
    }
    assert_eq!(
        (
            s.google.calls(GoogleApi::Sts),
            s.google.calls(GoogleApi::GenerateAccessToken)
        ),
        (1, 1),
        "warm invocations make no auth call"
    );
    assert_eq!(s.storage.calls(), 4);
}

#[tokio::test]
async fn unbound_role_reports_a_clear_invocation_error() {
    let s = Scenario::start_with(|c| c.bindings.clear()).await;
    let runtime = LambdaRuntimeApi::start().await;
    let env = s.list_buckets_env(&runtime).await;
    let _function =
        FunctionProcess::spawn(Path::new(env!("CARGO_BIN_EXE_list-buckets")), &env, false).unwrap();
    let err = runtime.invoke(json!({})).await.expect_err("must fail");
    let text = format!("{err:?}");
    assert!(
        text.contains("PERMISSION_DENIED") && text.contains("workloadIdentityUser"),
        "{text}"
    );
    assert_eq!(s.storage.calls(), 0);
}
