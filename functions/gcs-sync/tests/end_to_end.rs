//! The real `gcs-sync` binary under a local Lambda Runtime API: configuration in SSM
//! (moto), federation through the Google fakes, uploads through the fault proxy into
//! fake-gcs-server, control calls through the backed gRPC fake.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Harness, data, failures, notification, sqs_event};
use crossfed_tests::GoogleApi;
use crossfed_tests::{FunctionProcess, LambdaError, LambdaRuntimeApi};
use serde_json::json;

const BINARY: &str = env!("CARGO_BIN_EXE_gcs-sync");

async fn spawn(h: &Harness, extra: &[(&str, &str)]) -> (LambdaRuntimeApi, FunctionProcess) {
    let runtime =
        LambdaRuntimeApi::start_with_arn("arn:aws:lambda:us-east-1:123456789012:function:gcs-sync")
            .await;
    let env = h.env(extra);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let env = h.scenario.function_env(&runtime, "gcs-sync", &env).await;
    let verbose = std::env::var_os("GCS_SYNC_TEST_LOGS").is_some();
    let function = FunctionProcess::spawn(Path::new(BINARY), &env, verbose).unwrap();
    (runtime, function)
}

#[tokio::test]
async fn binary_replicates_a_batch_and_reports_only_failed_messages() {
    let h = Harness::start().await;
    let (runtime, _function) = spawn(&h, &[]).await;
    let a = h.put("e2e/a b.txt", b"alpha".to_vec()).await;
    let b = h.put("e2e/ü.bin", data(9, 70_000)).await;
    let gone = h.put("e2e/gone.txt", b"x".to_vec()).await;
    h.delete_source("e2e/gone.txt").await;
    let test_event =
        json!({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": h.source_bucket});
    let event = sqs_event(&[
        ("m-a".into(), notification(vec![h.created(&a)])),
        ("m-b".into(), notification(vec![h.created(&b)])),
        ("m-gone".into(), notification(vec![h.created(&gone)])),
        ("m-test".into(), test_event),
        ("m-garbage".into(), json!({"unexpected": true})),
    ]);
    let response = runtime.invoke(event).await.expect("invocation");
    assert_eq!(failures(&response), vec!["m-garbage"]);
    assert_eq!(
        h.gcs_bytes(&Harness::dest_name("e2e/a b.txt")).await,
        b"alpha"
    );
    assert_eq!(
        h.gcs_bytes(&Harness::dest_name("e2e/ü.bin")).await,
        data(9, 70_000)
    );
    assert_eq!(
        (
            h.scenario.google.calls(GoogleApi::Sts),
            h.scenario.google.calls(GoogleApi::GenerateAccessToken)
        ),
        (1, 1),
        "token obtained once, at init"
    );

    // Warm: a delete batch.
    let event = sqs_event(&[("m-del".into(), notification(vec![h.removed(&a)]))]);
    h.delete_source("e2e/a b.txt").await;
    let response = runtime.invoke(event).await.expect("warm invocation");
    assert_eq!(failures(&response), Vec::<String>::new());
    assert_eq!(h.gcs_names().await, vec![Harness::dest_name("e2e/ü.bin")]);
    assert_eq!(
        h.scenario.google.calls(GoogleApi::Sts),
        1,
        "warm invocation made no auth call"
    );
}

/// Lambda Managed Instances: with `AWS_LAMBDA_MAX_CONCURRENCY` the binary polls that many
/// invocations at once; they share the cold start's token, and every copy lands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_invocations_share_the_cold_start() {
    let h = Harness::start().await;
    let (runtime, _function) = spawn(&h, &[("AWS_LAMBDA_MAX_CONCURRENCY", "4")]).await;
    let mut puts = Vec::new();
    for n in 0..8 {
        puts.push(
            h.put_owned(format!("mi/{n}.bin"), data(n, 4096 + n as usize))
                .await,
        );
    }
    let events = puts
        .iter()
        .enumerate()
        .map(|(n, put)| sqs_event(&[(format!("m-{n}"), notification(vec![h.created(put)]))]))
        .collect();
    for response in runtime.invoke_all(events).await {
        assert_eq!(
            failures(&response.expect("invocation")),
            Vec::<String>::new()
        );
    }
    for n in 0..8u64 {
        assert_eq!(
            h.gcs_bytes(&Harness::dest_name(&format!("mi/{n}.bin")))
                .await,
            data(n, 4096 + n as usize)
        );
    }
    // Four pollers each poll again after answering: 4 + 8 `/next` calls (one poller: 1 + 8).
    assert_eq!(
        runtime
            .wait_for_next_calls(4 + 8, Duration::from_secs(5))
            .await,
        4 + 8
    );
    assert_eq!(h.scenario.google.token_calls(), (1, 1));
}

#[tokio::test]
async fn binary_returns_messages_it_has_no_time_for() {
    let h = Harness::start().await;
    let (runtime, _function) = spawn(&h, &[("SYNC_DEADLINE_MARGIN_MS", "10000")]).await;
    let a = h.put("late.txt", b"late".to_vec()).await;
    let event = sqs_event(&[("m1".into(), notification(vec![h.created(&a)]))]);
    // 5 s left is under the 10 s margin: nothing starts, the message goes back.
    let response = runtime
        .invoke_with_timeout(event, Duration::from_secs(5))
        .await
        .expect("invocation");
    assert_eq!(failures(&response), vec!["m1"]);
    assert_eq!(h.gcs_names().await, Vec::<String>::new());
}

#[tokio::test]
async fn bad_destination_fails_init_saying_what_to_fix() {
    let h = Harness::start().await;
    let (runtime, mut function) = spawn(&h, &[("SYNC_DESTINATION", "s3://not-a-gcs-bucket")]).await;
    let err = runtime.invoke(json!({})).await.expect_err("init must fail");
    let LambdaError::Init { error_message, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(
        error_message.contains("SYNC_DESTINATION") && error_message.contains("gs://BUCKET"),
        "{error_message}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(function.exited());
}
