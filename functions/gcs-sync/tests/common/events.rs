//! S3 notifications and SQS batches shaped as AWS sends them, and what the function answers.

use serde_json::{Value, json};

/// An SQS batch: one message per `(id, body)`.
pub fn sqs_event(messages: &[(String, Value)]) -> Value {
    let records: Vec<Value> = messages
        .iter()
        .map(|(id, body)| {
            json!({
                "messageId": id,
                "receiptHandle": format!("AQEB{id}"),
                "body": body.to_string(),
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1714564800000",
                    "SenderId": "AIDAEXAMPLE",
                    "ApproximateFirstReceiveTimestamp": "1714564800001"
                },
                "messageAttributes": {},
                "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:gcs-sync",
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    json!({ "Records": records })
}

/// One SQS message `(id, body)` carrying an S3 notification of `records`.
pub fn msg(id: &str, records: Vec<Value>) -> (String, Value) {
    (id.to_string(), notification(records))
}

/// An S3 notification body carrying `records`.
pub fn notification(records: Vec<Value>) -> Value {
    json!({ "Records": records })
}

/// Message ids reported in `batchItemFailures`.
pub fn failures(response: &Value) -> Vec<String> {
    let mut ids: Vec<String> = response["batchItemFailures"]
        .as_array()
        .unwrap_or_else(|| panic!("not an SQS batch response: {response}"))
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

/// Keys as S3 puts them in notifications: form encoding (`+` for space).
pub fn s3_encode_key(key: &str) -> String {
    let mut out = String::new();
    for b in key.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
