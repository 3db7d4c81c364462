//! The sample events shipped in `events/` (what `sam local invoke`/`sam remote invoke` users
//! feed the function) parse as real notifications do.

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
