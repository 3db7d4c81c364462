//! One object change, from an S3 notification (direct, in an SQS message, in an SNS
//! envelope) or an EventBridge S3 event. Keys come out decoded.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lambda_events::event::s3::{S3Event, S3EventRecord};
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

/// An S3 test event (`s3:TestEvent`).
pub fn is_test_event(value: &Value) -> bool {
    value.get("Event").and_then(Value::as_str) == Some("s3:TestEvent")
}

/// An EventBridge event from S3.
pub fn is_eventbridge_s3(value: &Value) -> bool {
    value.get("source").and_then(Value::as_str) == Some("aws.s3")
        && value.get("detail-type").is_some()
}

/// The changes of an S3 notification (`{"Records": [...]}`).
pub fn changes_from_s3(value: Value) -> Result<Vec<ObjectChange>, String> {
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
pub fn change_from_eventbridge(value: &Value) -> Result<ObjectChange, String> {
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
}
