//! The real `list-buckets` binary under a local Lambda Runtime API, with its configuration
//! in SSM (moto), federation through the strict Google fakes, and the gRPC storage fake.

mod common;

use common::Harness;
use crossfed_tests::GoogleApi;
use serde_json::json;

#[tokio::test]
async fn lists_buckets_and_warm_invocations_make_no_auth_call() {
    let h = Harness::start().await;
    let _function = h.spawn(&[]).await;

    let first = h.runtime.invoke(json!({})).await.expect("first invocation");
    assert_eq!(first["statusCode"], 200);
    let body: serde_json::Value = serde_json::from_str(first["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        body,
        json!({"buckets": ["crossfed-bucket-a", "crossfed-bucket-b"]})
    );
    assert_eq!(
        (
            h.scenario.google.calls(GoogleApi::Sts),
            h.scenario.google.calls(GoogleApi::GenerateAccessToken)
        ),
        (1, 1),
        "token obtained once, at init"
    );

    for _ in 0..3 {
        let warm = h
            .runtime
            .invoke(json!({"source": "aws.events"}))
            .await
            .expect("warm invocation");
        assert_eq!(warm, first);
    }
    assert_eq!(
        (
            h.scenario.google.calls(GoogleApi::Sts),
            h.scenario.google.calls(GoogleApi::GenerateAccessToken)
        ),
        (1, 1),
        "warm invocations make no auth call"
    );
    assert_eq!(h.scenario.storage.calls(), 4);
}

#[tokio::test]
async fn unbound_role_reports_a_clear_invocation_error() {
    let h = Harness::start_with(|c| c.bindings.clear()).await;
    let _function = h.spawn(&[]).await;
    let err = h.runtime.invoke(json!({})).await.expect_err("must fail");
    let text = format!("{err:?}");
    assert!(
        text.contains("PERMISSION_DENIED") && text.contains("workloadIdentityUser"),
        "{text}"
    );
    assert_eq!(h.scenario.storage.calls(), 0);
}

#[tokio::test]
async fn the_handler_in_process_lists_the_project_and_reuses_the_warm_token() {
    let h = Harness::start().await;
    let app = h.app(&[]).await;
    let calls = || {
        (
            h.scenario.google.calls(GoogleApi::Sts),
            h.scenario.google.calls(GoogleApi::GenerateAccessToken),
        )
    };
    assert_eq!(calls(), (1, 1), "App::new warms the token");
    for _ in 0..2 {
        let out = list_buckets::handler::handle(&app, json!({}))
            .await
            .unwrap();
        assert_eq!(out.status_code, 200);
        assert_eq!(
            out.body,
            r#"{"buckets":["crossfed-bucket-a","crossfed-bucket-b"]}"#
        );
    }
    assert_eq!(calls(), (1, 1));
    assert_eq!(h.scenario.storage.calls(), 2);
}

/// Lambda Managed Instances: with `AWS_LAMBDA_MAX_CONCURRENCY` the function polls that many
/// invocations at once and they share one token (one STS and one IAM call in all).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_invocations_share_the_cold_start() {
    let h = Harness::start().await;
    let _function = h.spawn(&[("AWS_LAMBDA_MAX_CONCURRENCY", "4")]).await;
    let answers: Vec<_> = h
        .runtime
        .invoke_all((0..8).map(|n| json!({ "n": n })).collect())
        .await
        .into_iter()
        .map(|a| a.expect("invocation"))
        .collect();
    assert!(
        answers.iter().all(|a| a["statusCode"] == 200),
        "{answers:?}"
    );
    // Four pollers each poll again after answering: 4 + 8 `/next` calls (one poller: 1 + 8).
    assert_eq!(
        h.runtime
            .wait_for_next_calls(4 + 8, std::time::Duration::from_secs(5))
            .await,
        4 + 8
    );
    assert_eq!(h.scenario.google.token_calls(), (1, 1));
}
