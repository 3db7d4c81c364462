//! Event parsing: what invoked us (SQS batch, direct S3 notification, EventBridge) and which
//! object changes it carries. Keys come out decoded.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lambda_events::event::s3::{S3Event, S3EventRecord};
use aws_lambda_events::event::sqs::SqsEvent;
use serde::Deserialize;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// What happened to an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    /// `ObjectCreated:*`.
    Created,
    /// `ObjectRemoved:*` / lifecycle expiration. `delete_marker`: the object was hidden by a
    /// delete marker (versioned bucket) rather than a version being removed.
    Removed { delete_marker: bool },
    /// Any other notification (restore, tagging, ACL, ...): nothing to replicate.
    Other,
}

/// One object change from a notification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectChange {
    pub kind: ChangeKind,
    /// As sent, e.g. `ObjectCreated:Put`.
    pub event_name: String,
    pub bucket: String,
    /// Decoded key.
    pub key: String,
    pub size: Option<u64>,
    /// Without quotes.
    pub etag: Option<String>,
    pub version_id: Option<String>,
    /// Hex string; orders events of one key.
    pub sequencer: Option<String>,
    /// When S3 says the change happened (`eventTime`, EventBridge `time`): the start of the
    /// replication lag metric only, never a decision input.
    pub event_time: Option<SystemTime>,
}

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

/// The body of one SQS message: an S3 notification, an S3 test event, an SNS envelope
/// around either, or an EventBridge S3 event.
pub fn parse_body(body: &str) -> Result<Vec<ObjectChange>, String> {
    let value: Value =
        serde_json::from_str(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    if value.get("Records").is_some() {
        return changes_from_s3(value);
    }
    if is_test_event(&value) {
        return Ok(Vec::new());
    }
    if value.get("Type").and_then(Value::as_str) == Some("Notification")
        && let Some(inner) = value.get("Message").and_then(Value::as_str)
    {
        return parse_body(inner);
    }
    if is_eventbridge_s3(&value) {
        return change_from_eventbridge(&value).map(|c| vec![c]);
    }
    Err("the body is not an S3 event notification".into())
}

fn is_test_event(value: &Value) -> bool {
    value.get("Event").and_then(Value::as_str) == Some("s3:TestEvent")
}

fn is_eventbridge_s3(value: &Value) -> bool {
    value.get("source").and_then(Value::as_str) == Some("aws.s3")
        && value.get("detail-type").is_some()
}

fn changes_from_s3(value: Value) -> Result<Vec<ObjectChange>, String> {
    let event: S3Event =
        serde_json::from_value(value).map_err(|e| format!("malformed S3 notification: {e}"))?;
    event.records.iter().map(change_from_s3_record).collect()
}

fn change_from_s3_record(record: &S3EventRecord) -> Result<ObjectChange, String> {
    let event_name = record
        .event_name
        .clone()
        .ok_or("S3 record without eventName")?;
    let bucket = record
        .s3
        .bucket
        .name
        .clone()
        .filter(|b| !b.is_empty())
        .ok_or("S3 record without a bucket name")?;
    let raw_key = record
        .s3
        .object
        .key
        .as_deref()
        .ok_or("S3 record without a key")?;
    let object = &record.s3.object;
    Ok(ObjectChange {
        kind: kind_of(&event_name),
        key: decode_key(raw_key)?,
        bucket,
        size: object.size.and_then(|s| u64::try_from(s).ok()),
        etag: non_empty(object.e_tag.as_deref()).map(unquote),
        version_id: non_empty(object.version_id.as_deref()).map(str::to_string),
        sequencer: non_empty(object.sequencer.as_deref()).map(str::to_string),
        event_time: plausible_time(record.event_time.into()),
        event_name,
    })
}

/// EventBridge `Object Created` / `Object Deleted` (keys are not URL-encoded there).
fn change_from_eventbridge(value: &Value) -> Result<ObjectChange, String> {
    let detail_type = value["detail-type"].as_str().unwrap_or_default();
    let detail = &value["detail"];
    let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_string);
    let kind = match detail_type {
        "Object Created" => ChangeKind::Created,
        "Object Deleted" => ChangeKind::Removed {
            delete_marker: detail["deletion-type"].as_str() == Some("Delete Marker Created"),
        },
        _ => ChangeKind::Other,
    };
    Ok(ObjectChange {
        kind,
        event_name: detail_type.to_string(),
        bucket: text(&detail["bucket"]["name"]).ok_or("EventBridge event without a bucket")?,
        key: text(&detail["object"]["key"]).ok_or("EventBridge event without a key")?,
        size: detail["object"]["size"].as_u64(),
        etag: text(&detail["object"]["etag"]).map(|e| unquote(&e)),
        version_id: text(&detail["object"]["version-id"]),
        sequencer: text(&detail["object"]["sequencer"]),
        event_time: value["time"]
            .as_str()
            .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
            .and_then(|t| plausible_time(t.into())),
    })
}

/// An event time usable for the lag metric: after 2006 (S3's launch; a defaulted or forged
/// epoch would report decades of lag) and not more than a minute ahead of this clock.
fn plausible_time(at: SystemTime) -> Option<SystemTime> {
    const S3_LAUNCH: Duration = Duration::from_secs(1_142_000_000);
    let latest = SystemTime::now() + Duration::from_secs(60);
    (at > UNIX_EPOCH + S3_LAUNCH && at <= latest).then_some(at)
}

/// `ObjectCreated:Put` -> Created, etc. (an `s3:` prefix is tolerated).
pub fn kind_of(event_name: &str) -> ChangeKind {
    let name = event_name.strip_prefix("s3:").unwrap_or(event_name);
    match name {
        "ObjectRemoved:DeleteMarkerCreated" | "LifecycleExpiration:DeleteMarkerCreated" => {
            ChangeKind::Removed {
                delete_marker: true,
            }
        }
        "LifecycleExpiration:Delete" => ChangeKind::Removed {
            delete_marker: false,
        },
        n if n.starts_with("ObjectCreated:") => ChangeKind::Created,
        n if n.starts_with("ObjectRemoved:") => ChangeKind::Removed {
            delete_marker: false,
        },
        _ => ChangeKind::Other,
    }
}

/// S3 notification keys are form-encoded: `+` is a space, `%XX` a UTF-8 byte.
pub fn decode_key(raw: &str) -> Result<String, String> {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(|k| k.into_owned())
        .map_err(|_| format!("key {raw:?} does not decode to UTF-8"))
}

fn non_empty(s: Option<&str>) -> Option<&str> {
    s.filter(|s| !s.is_empty())
}

fn unquote(etag: &str) -> String {
    etag.trim_matches('"').to_string()
}

#[cfg(test)]
mod tests {
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
    fn decodes_keys_like_s3_encodes_them() {
        assert_eq!(decode_key("a+b%2Bc").unwrap(), "a b+c");
        assert_eq!(
            decode_key("dir/f%C3%BCr+%E2%9C%93.txt").unwrap(),
            "dir/für ✓.txt"
        );
        assert_eq!(decode_key("%F0%9F%98%80").unwrap(), "😀");
        assert_eq!(decode_key("100%25").unwrap(), "100%");
        assert!(decode_key("%FF%FE").is_err());
    }

    #[test]
    fn event_kinds() {
        assert_eq!(kind_of("ObjectCreated:Put"), ChangeKind::Created);
        assert_eq!(
            kind_of("s3:ObjectCreated:CompleteMultipartUpload"),
            ChangeKind::Created
        );
        assert_eq!(
            kind_of("ObjectRemoved:Delete"),
            ChangeKind::Removed {
                delete_marker: false
            }
        );
        assert_eq!(
            kind_of("ObjectRemoved:DeleteMarkerCreated"),
            ChangeKind::Removed {
                delete_marker: true
            }
        );
        assert_eq!(
            kind_of("LifecycleExpiration:Delete"),
            ChangeKind::Removed {
                delete_marker: false
            }
        );
        assert_eq!(kind_of("ObjectRestore:Completed"), ChangeKind::Other);
        assert_eq!(kind_of("ObjectTagging:Put"), ChangeKind::Other);
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
