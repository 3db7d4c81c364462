//! The sample events shipped in `events/` (what `sam local invoke`/`sam remote invoke` users
//! feed the function) parse as real notifications do, and drive the real binary.

mod common;

use std::path::Path;

use common::{Harness, failures};
use crossfed_tests::lambda::sample_events;
use crossfed_tests::{FunctionProcess, LambdaRuntimeApi};
use gcs_sync::event::{ChangeKind, Invocation, parse};

fn sample(name: &str) -> serde_json::Value {
    let path = format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("sample event")).unwrap()
}

#[test]
fn sqs_wrapped_put_and_delete() {
    for (file, kind) in [
        ("gcs-sync-sqs-put.json", ChangeKind::Created),
        (
            "gcs-sync-sqs-delete.json",
            ChangeKind::Removed {
                delete_marker: false,
            },
        ),
    ] {
        let Invocation::Sqs(messages) = parse(sample(file)).unwrap() else {
            panic!("{file}: not an SQS batch")
        };
        assert_eq!(messages.len(), 1, "{file}");
        let changes = messages[0].changes.as_ref().expect(file);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].kind, kind, "{file}");
        assert_eq!(changes[0].key, "reports/2026/hello world été.txt");
        assert_eq!(changes[0].bucket, "crossfed-source");
    }
}

#[test]
fn test_event_is_ignored_and_direct_event_is_understood() {
    match parse(sample("gcs-sync-sqs-test-event.json")).unwrap() {
        Invocation::Ignored(_) => {}
        Invocation::Sqs(messages) => {
            assert!(
                messages
                    .iter()
                    .all(|m| m.changes.as_ref().is_ok_and(|c| c.is_empty())),
                "{messages:?}"
            )
        }
        other => panic!("{other:?}"),
    }
    let Invocation::Direct(changes) = parse(sample("gcs-sync-s3-put.json")).unwrap() else {
        panic!("not a direct S3 event")
    };
    assert_eq!(changes[0].size, Some(1024));
    assert_eq!(changes[0].sequencer.as_deref(), Some("0062F7A4E8C5D1B2A3"));
}

/// Every `events/gcs-sync*.json` through the binary, in an order that makes each do its
/// work: the samples' bucket, ETag and version are rewritten to a real object's.
#[tokio::test]
async fn every_sample_event_drives_the_binary() {
    const KEY: &str = "reports/2026/hello world été.txt";
    let h = Harness::start().await;
    h.enable_versioning().await;
    let put = h.put(KEY, vec![b'x'; 1024]).await;
    let version = put.version_id.clone().expect("versioned bucket");
    let sample = |file: &str| -> serde_json::Value {
        let text = sample_events::text(file)
            .replace("crossfed-source", &h.source_bucket)
            .replace("0123456789abcdef0123456789abcdef", &put.etag)
            .replace("3sL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY", &version);
        serde_json::from_str(&text).unwrap()
    };
    let runtime =
        LambdaRuntimeApi::start_with_arn("arn:aws:lambda:us-east-1:123456789012:function:gcs-sync")
            .await;
    let env = h.env(&[]);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let env = h.scenario.function_env(&runtime, "gcs-sync", &env).await;
    let _function =
        FunctionProcess::spawn(Path::new(env!("CARGO_BIN_EXE_gcs-sync")), &env, false).unwrap();
    let name = Harness::dest_name(KEY);

    let order = [
        ("gcs-sync-sqs-test-event.json", false),
        ("gcs-sync-sqs-put.json", true),
        ("gcs-sync-s3-put.json", true),
        ("gcs-sync-sqs-delete.json", false),
    ];
    let mut names: Vec<&str> = order.iter().map(|(f, _)| *f).collect();
    names.sort();
    let all: Vec<String> = sample_events::for_function("gcs-sync")
        .into_iter()
        .map(|(f, _)| f)
        .collect();
    assert_eq!(
        names, all,
        "a new gcs-sync sample event needs a place in this test"
    );
    for (file, copy_exists_after) in order {
        if file == "gcs-sync-sqs-delete.json" {
            // A removal is applied only once S3 confirms it: do what the event reports.
            h.delete_marker(KEY).await;
        }
        let out = runtime.invoke(sample(file)).await.expect(file);
        if out.get("batchItemFailures").is_some() {
            assert!(failures(&out).is_empty(), "{file}: {out}");
        }
        assert_eq!(
            h.gcs_object(&name).await.is_some(),
            copy_exists_after,
            "{file}: copy of {KEY} after it ({out})"
        );
    }
}
