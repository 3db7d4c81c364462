//! The fake-gcs-server side of a backed fake: JSON API calls and their translation to
//! `google.storage.v2` resources and gRPC statuses.

use std::collections::HashMap;

use base64::Engine as _;
use base64::prelude::BASE64_STANDARD;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;
use tonic::Status;

use super::proto::{Object, ObjectChecksums, Timestamp};
use crate::faults;

pub(super) const BUCKET_PREFIX: &str = "projects/_/buckets/";
pub(super) const PRECONDITION_FAILED: &str =
    "At least one of the pre-conditions you specified did not hold.";

/// fake-gcs-server's JSON API.
#[derive(Debug)]
pub(super) struct Backend {
    pub(super) base: String,
    pub(super) http: reqwest::Client,
}

pub(super) fn encode(segment: &str) -> String {
    utf8_percent_encode(segment, NON_ALPHANUMERIC).to_string()
}

pub(super) fn object_path(bucket_id: &str, object: &str) -> String {
    format!("/storage/v1/b/{}/o/{}", encode(bucket_id), encode(object))
}

/// An object resource of the JSON API as a `google.storage.v2.Object`.
pub(super) fn object_from_json(json: &Value) -> Result<Object, Status> {
    let bad = |what: &str| Status::internal(format!("backend object without a valid {what}"));
    let str_field = |key: &str| json[key].as_str().unwrap_or_default().to_string();
    let int_field = |key: &str| -> Result<i64, Status> {
        match &json[key] {
            Value::Null => Ok(0),
            Value::String(s) => s.parse().map_err(|_| bad(key)),
            Value::Number(n) => n.as_i64().ok_or_else(|| bad(key)),
            _ => Err(bad(key)),
        }
    };
    let time_field = |key: &str| -> Result<Option<Timestamp>, Status> {
        let Some(text) = json[key].as_str() else {
            return Ok(None);
        };
        let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .map_err(|_| bad(key))?;
        Ok(Some(Timestamp {
            seconds: t.unix_timestamp(),
            nanos: i32::try_from(t.nanosecond()).map_err(|_| bad(key))?,
        }))
    };
    let crc32c = match json["crc32c"].as_str() {
        Some(b64) => {
            let bytes = BASE64_STANDARD.decode(b64).map_err(|_| bad("crc32c"))?;
            let bytes: [u8; 4] = bytes.try_into().map_err(|_| bad("crc32c"))?;
            Some(u32::from_be_bytes(bytes))
        }
        None => None,
    };
    let md5_hash = match json["md5Hash"].as_str() {
        Some(b64) => BASE64_STANDARD.decode(b64).map_err(|_| bad("md5Hash"))?,
        None => Vec::new(),
    };
    let metadata: HashMap<String, String> = json["metadata"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let v = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                    (k.clone(), v)
                })
                .collect()
        })
        .unwrap_or_default();
    let name = str_field("name");
    let bucket = str_field("bucket");
    if name.is_empty() || bucket.is_empty() {
        return Err(bad("name or bucket"));
    }
    Ok(Object {
        name,
        bucket: format!("{BUCKET_PREFIX}{bucket}"),
        etag: str_field("etag"),
        generation: int_field("generation")?,
        metageneration: int_field("metageneration")?,
        storage_class: str_field("storageClass"),
        size: int_field("size")?,
        content_encoding: str_field("contentEncoding"),
        content_disposition: str_field("contentDisposition"),
        cache_control: str_field("cacheControl"),
        content_language: str_field("contentLanguage"),
        content_type: str_field("contentType"),
        component_count: int_field("componentCount")?.try_into().unwrap_or_default(),
        create_time: time_field("timeCreated")?,
        checksums: Some(ObjectChecksums { crc32c, md5_hash }),
        update_time: time_field("updated")?,
        metadata,
    })
}

/// A failed backend call.
#[derive(Debug)]
pub(super) enum BackendError {
    /// The backend answered this HTTP status (and error message).
    Status(u16, String),
    /// The backend could not be reached or answered garbage.
    Io(String),
}

impl BackendError {
    /// The gRPC status: `not_found()` for 404, `UNAVAILABLE` when unreachable.
    pub(super) fn status(self, not_found: impl FnOnce() -> Status) -> Status {
        match self {
            BackendError::Status(404, _) => not_found(),
            BackendError::Status(412, _) => Status::failed_precondition(PRECONDITION_FAILED),
            BackendError::Status(code, message) => Status::new(
                faults::grpc_code(code),
                format!("fake-gcs-server answered HTTP {code}: {message}"),
            ),
            BackendError::Io(e) => Status::unavailable(format!("fake-gcs-server: {e}")),
        }
    }
}

impl Backend {
    pub(super) async fn get(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Value, BackendError> {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .query(query)
            .send()
            .await;
        json_response(response).await
    }

    pub(super) async fn post(&self, path: &str, body: &Value) -> Result<Value, BackendError> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .json(body)
            .send()
            .await;
        json_response(response).await
    }

    pub(super) async fn delete(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<(), BackendError> {
        let response = self
            .http
            .delete(format!("{}{path}", self.base))
            .query(query)
            .send()
            .await
            .map_err(|e| BackendError::Io(e.to_string()))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let text = response.text().await.unwrap_or_default();
        Err(BackendError::Status(status.as_u16(), error_message(&text)))
    }

    /// Every bucket of the backend (fake-gcs-server ignores `project`).
    pub(super) async fn bucket_names(&self, project: &str) -> Result<Vec<String>, Status> {
        let mut names = Vec::new();
        let mut token = String::new();
        loop {
            let mut query = vec![("project", project.to_string())];
            if !token.is_empty() {
                query.push(("pageToken", token.clone()));
            }
            let page = self
                .get("/storage/v1/b", &query)
                .await
                .map_err(|e| e.status(|| Status::not_found("no buckets")))?;
            names.extend(
                page["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|b| b["name"].as_str().map(str::to_string)),
            );
            match page["nextPageToken"].as_str() {
                Some(next) if !next.is_empty() && next != token => token = next.to_string(),
                _ => return Ok(names),
            }
        }
    }
}

/// The JSON body of a successful backend answer; the status and message otherwise.
async fn json_response(
    response: Result<reqwest::Response, reqwest::Error>,
) -> Result<Value, BackendError> {
    let response = response.map_err(|e| BackendError::Io(e.to_string()))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|e| BackendError::Io(e.to_string()))?;
    if !status.is_success() {
        return Err(BackendError::Status(status.as_u16(), error_message(&text)));
    }
    serde_json::from_str(&text).map_err(|e| BackendError::Io(format!("bad JSON: {e}")))
}

/// `error.message` of a JSON API error body, or the body itself.
pub(super) fn error_message(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| body.trim().to_string())
}
