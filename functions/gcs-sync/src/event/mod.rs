//! Event parsing: what invoked us (SQS batch, direct S3 notification, EventBridge, a
//! backfill request) and which object changes it carries ([`change`]).

pub mod change;

use aws_lambda_events::event::sqs::SqsEvent;
use serde::Deserialize;
use serde_json::Value;

pub use change::{ChangeKind, ObjectChange, decode_key, kind_of, parse_body};

use crate::event::change::{
    change_from_eventbridge, changes_from_s3, is_eventbridge_s3, is_test_event,
};

/// One SQS message: its id (for `batchItemFailures`), where to find it again (to delay
/// its retry) and its changes, or why its body could not be understood.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueMessage {
    pub message_id: String,
    /// `None` when the record lacks the receipt handle or the queue ARN.
    pub receipt: Option<Receipt>,
    pub changes: Result<Vec<ObjectChange>, String>,
}

/// What `ChangeMessageVisibility` needs to know about a received message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// `eventSourceARN`: the queue (`arn:aws:sqs:REGION:ACCOUNT:NAME`).
    pub queue_arn: String,
    pub handle: String,
    /// `ApproximateReceiveCount`: 1 on the first delivery (1 when absent or unreadable).
    pub receive_count: u32,
}

/// The shapes the function accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Invocation {
    /// S3 -> SQS -> Lambda (answer with `batchItemFailures`).
    Sqs(Vec<QueueMessage>),
    /// S3 (or EventBridge) -> Lambda directly.
    Direct(Vec<ObjectChange>),
    /// Nothing to do (e.g. `s3:TestEvent`), with the reason.
    Ignored(&'static str),
    /// `{"backfill": {...}}`: sync a whole prefix (see [`crate::backfill`]).
    Backfill(BackfillRequest),
}

/// `{"backfill": {...}}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackfillRequest {
    /// S3 key prefix to backfill ("" for the whole bucket).
    #[serde(default)]
    pub prefix: String,
    /// Source bucket: if given, it must be `SYNC_SOURCE_BUCKET` (the only bucket replicated).
    #[serde(default)]
    pub bucket: Option<String>,
    /// Continue this run (from its checkpoint).
    #[serde(default)]
    pub run: Option<String>,
}

/// The backfill request in `payload`, if it is one (`None`: some other event).
pub fn backfill_request(payload: &Value) -> Option<Result<BackfillRequest, String>> {
    let body = payload.as_object()?.get("backfill")?;
    Some(serde_json::from_value(body.clone()).map_err(|e| {
        format!(
            "invalid backfill request ({e}): send {{\"backfill\": {{\"prefix\": \"PREFIX\"}}}} \
             (optionally \"bucket\")"
        )
    }))
}

/// The payload has none of the accepted shapes.
#[derive(Debug, thiserror::Error)]
#[error("unsupported event: {0}")]
pub struct EventError(String);

/// Dispatches on the payload's shape.
pub fn parse(payload: Value) -> Result<Invocation, EventError> {
    if let Some(records) = payload.get("Records").and_then(Value::as_array) {
        let source = records
            .first()
            .and_then(|r| r.get("eventSource").or_else(|| r.get("EventSource")))
            .and_then(Value::as_str);
        return match source {
            None if records.is_empty() => Ok(Invocation::Ignored("no records")),
            Some("aws:sqs") => parse_sqs(payload),
            Some("aws:s3") => changes_from_s3(payload)
                .map(Invocation::Direct)
                .map_err(EventError),
            other => Err(EventError(format!(
                "records from {other:?}; expected aws:sqs or aws:s3"
            ))),
        };
    }
    if is_test_event(&payload) {
        return Ok(Invocation::Ignored("s3:TestEvent"));
    }
    if let Some(request) = backfill_request(&payload) {
        return request.map(Invocation::Backfill).map_err(EventError);
    }
    if is_eventbridge_s3(&payload) {
        return change_from_eventbridge(&payload)
            .map(|c| Invocation::Direct(vec![c]))
            .map_err(EventError);
    }
    Err(EventError(
        "expected an SQS batch of S3 notifications, an S3 notification, an EventBridge S3 event \
         or {\"backfill\": {\"prefix\": \"PREFIX\"}}"
            .into(),
    ))
}

fn parse_sqs(payload: Value) -> Result<Invocation, EventError> {
    let event: SqsEvent = serde_json::from_value(payload)
        .map_err(|e| EventError(format!("malformed SQS event: {e}")))?;
    let messages = event
        .records
        .into_iter()
        .map(|m| QueueMessage {
            message_id: m.message_id.unwrap_or_default(),
            receipt: match (m.event_source_arn, m.receipt_handle) {
                (Some(queue_arn), Some(handle)) if !queue_arn.is_empty() && !handle.is_empty() => {
                    Some(Receipt {
                        queue_arn,
                        handle,
                        receive_count: m
                            .attributes
                            .get("ApproximateReceiveCount")
                            .and_then(|n| n.parse().ok())
                            .unwrap_or(1),
                    })
                }
                _ => None,
            },
            changes: match m.body {
                Some(body) => parse_body(&body),
                None => Err("the message has no body".into()),
            },
        })
        .collect();
    Ok(Invocation::Sqs(messages))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use serde_json::json;

    fn s3_record(name: &str, key: &str, seq: &str) -> Value {
        json!({
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": "us-east-1",
            "eventTime": "2024-01-01T00:00:00.000Z",
            "eventName": name,
            "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
            "requestParameters": {"sourceIPAddress": "127.0.0.1"},
            "responseElements": {"x-amz-request-id": "r", "x-amz-id-2": "i"},
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "sync",
                "bucket": {"name": "src", "ownerIdentity": {"principalId": "A"}, "arn": "arn:aws:s3:::src"},
                "object": {"key": key, "size": 5, "eTag": "5d41402abc4b2a76b9719d911017c592", "sequencer": seq}
            }
        })
    }

    fn sqs(bodies: &[(&str, String)]) -> Value {
        let records: Vec<Value> = bodies
            .iter()
            .map(|(id, body)| {
                json!({
                    "messageId": id,
                    "receiptHandle": "h",
                    "body": body,
                    "attributes": {"ApproximateReceiveCount": "1"},
                    "messageAttributes": {},
                    "md5OfBody": "x",
                    "eventSource": "aws:sqs",
                    "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
                    "awsRegion": "us-east-1"
                })
            })
            .collect();
        json!({ "Records": records })
    }

    #[test]
    fn backfill_requests() {
        assert_eq!(backfill_request(&json!({"Records": []})), None);
        assert_eq!(
            backfill_request(&json!({"backfill": {"prefix": "p/"}})),
            Some(Ok(BackfillRequest {
                prefix: "p/".into(),
                ..BackfillRequest::default()
            }))
        );
        let err = backfill_request(&json!({"backfill": {"prefx": "p/"}}))
            .unwrap()
            .unwrap_err();
        assert!(err.contains("prefix"), "{err}");
    }

    #[test]
    fn sqs_batch_with_notifications_test_event_and_garbage() {
        let notification = json!({"Records": [s3_record("ObjectCreated:Put", "a+dir/k%C3%A9y", "0055AED6DCD90281E5")]});
        let test_event = json!({"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2024-01-01T00:00:00.000Z", "Bucket": "src", "RequestId": "r", "HostId": "h"});
        let sns =
            json!({"Type": "Notification", "MessageId": "m", "Message": notification.to_string()});
        let payload = sqs(&[
            ("m1", notification.to_string()),
            ("m2", test_event.to_string()),
            ("m3", "not json".into()),
            ("m4", sns.to_string()),
            ("m5", json!({"hello": 1}).to_string()),
        ]);
        let Invocation::Sqs(messages) = parse(payload).unwrap() else {
            panic!("not sqs")
        };
        assert_eq!(messages.len(), 5);
        assert_eq!(
            messages[0].receipt,
            Some(Receipt {
                queue_arn: "arn:aws:sqs:us-east-1:123456789012:q".into(),
                handle: "h".into(),
                receive_count: 1
            })
        );
        let first = messages[0].changes.as_ref().unwrap();
        assert_eq!(
            first,
            &vec![ObjectChange {
                kind: ChangeKind::Created,
                event_name: "ObjectCreated:Put".into(),
                bucket: "src".into(),
                key: "a dir/kéy".into(),
                size: Some(5),
                etag: Some("5d41402abc4b2a76b9719d911017c592".into()),
                version_id: None,
                sequencer: Some("0055AED6DCD90281E5".into()),
                event_time: Some(UNIX_EPOCH + Duration::from_secs(1_704_067_200)),
            }]
        );
        assert_eq!(messages[1].changes, Ok(vec![]));
        assert!(
            messages[2]
                .changes
                .as_ref()
                .unwrap_err()
                .contains("not JSON")
        );
        assert_eq!(messages[3].changes.as_ref().unwrap(), first);
        assert!(messages[4].changes.is_err());
        assert_eq!(messages[4].message_id, "m5");
    }

    #[test]
    fn direct_s3_event_and_test_event() {
        let payload = json!({"Records": [s3_record("ObjectRemoved:Delete", "x", "01")]});
        let Invocation::Direct(changes) = parse(payload).unwrap() else {
            panic!()
        };
        assert_eq!(
            changes[0].kind,
            ChangeKind::Removed {
                delete_marker: false
            }
        );
        let test = json!({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b"});
        assert_eq!(parse(test).unwrap(), Invocation::Ignored("s3:TestEvent"));
        assert_eq!(
            parse(json!({"Records": []})).unwrap(),
            Invocation::Ignored("no records")
        );
        assert!(parse(json!({"Records": [{"eventSource": "aws:kinesis"}]})).is_err());
        assert!(parse(json!({"foo": 1})).is_err());
    }

    #[test]
    fn eventbridge_events() {
        let event = json!({
            "version": "0", "id": "1", "detail-type": "Object Deleted", "source": "aws.s3",
            "account": "123456789012", "time": "2024-01-01T00:00:00Z", "region": "us-east-1",
            "resources": ["arn:aws:s3:::src"],
            "detail": {"version": "0", "bucket": {"name": "src"},
                       "object": {"key": "a b+c", "sequencer": "0A", "version-id": "v1"},
                       "reason": "DeleteObject", "deletion-type": "Delete Marker Created"}
        });
        let Invocation::Direct(changes) = parse(event.clone()).unwrap() else {
            panic!()
        };
        assert_eq!(changes[0].key, "a b+c");
        assert_eq!(
            changes[0].kind,
            ChangeKind::Removed {
                delete_marker: true
            }
        );
        assert_eq!(changes[0].version_id.as_deref(), Some("v1"));
        assert_eq!(
            changes[0].event_time,
            Some(UNIX_EPOCH + Duration::from_secs(1_704_067_200))
        );
        assert_eq!(parse_body(&event.to_string()).unwrap(), changes);
    }

    #[test]
    fn implausible_event_times_are_dropped_not_trusted() {
        let mut record = s3_record("ObjectCreated:Put", "k", "01");
        for bad in ["1970-01-01T00:00:00.000Z", "2999-01-01T00:00:00.000Z"] {
            record["eventTime"] = json!(bad);
            let changes = parse_body(&json!({"Records": [record.clone()]}).to_string()).unwrap();
            assert_eq!(changes[0].event_time, None, "{bad}");
        }
        let event = json!({
            "detail-type": "Object Created", "source": "aws.s3", "time": "not a time",
            "detail": {"bucket": {"name": "src"}, "object": {"key": "k"}}
        });
        assert_eq!(parse_body(&event.to_string()).unwrap()[0].event_time, None);
    }

    #[test]
    fn malformed_s3_record_is_an_error() {
        let mut record = s3_record("ObjectCreated:Put", "%FF", "01");
        assert!(parse_body(&json!({"Records": [record.clone()]}).to_string()).is_err());
        record["s3"]["object"]["key"] = json!("ok");
        record["s3"]["bucket"]["name"] = json!("");
        assert!(parse_body(&json!({"Records": [record]}).to_string()).is_err());
    }
}
