//! A client of fake-gcs-server's JSON API (the Cloud Storage emulator of `make test`),
//! for tests that prepare or inspect buckets and objects behind the code under test, and
//! for the gRPC fake that answers object RPCs from it.

use std::fmt;

use bytes::Bytes;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};

use crate::aws::localcloud::LocalCloud;

/// The project buckets are created in (fake-gcs-server ignores it).
const PROJECT: &str = "my-project";

/// A failed JSON API call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JsonApiError {
    /// fake-gcs-server answered this HTTP status, with the error's message.
    Status(u16, String),
    /// fake-gcs-server could not be reached or answered garbage.
    Io(String),
}

impl JsonApiError {
    /// The HTTP status fake-gcs-server answered, if it answered.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            JsonApiError::Status(code, _) => Some(*code),
            JsonApiError::Io(_) => None,
        }
    }
}

impl fmt::Display for JsonApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JsonApiError::Status(code, message) => {
                write!(f, "fake-gcs-server answered HTTP {code}: {message}")
            }
            JsonApiError::Io(e) => write!(f, "fake-gcs-server: {e}"),
        }
    }
}

impl std::error::Error for JsonApiError {}

/// fake-gcs-server's JSON API at one base URL (`http://127.0.0.2:80`).
#[derive(Clone, Debug)]
pub struct FakeGcsServer {
    base: String,
    http: reqwest::Client,
}

impl FakeGcsServer {
    /// The JSON API at `base_url` (a trailing `/` is ignored).
    pub fn new(base_url: &str) -> Self {
        Self {
            base: base_url.trim_end_matches('/').to_string(),
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("reqwest client"),
        }
    }

    /// The fake-gcs-server of the local clouds (`LOCALCLOUD_GCS_HTTP`).
    ///
    /// # Panics
    /// If the local clouds run no GCS emulator.
    pub fn from_local_cloud(cloud: &LocalCloud) -> Self {
        Self::new(
            cloud
                .gcs_http
                .as_deref()
                .expect("LOCALCLOUD_GCS_HTTP: start the local clouds (make localcloud-up)"),
        )
    }

    /// The base URL, for `STORAGE_EMULATOR_HOST` or `Storage::builder().with_endpoint(..)`.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// `GET {path}?{query}` as JSON.
    pub async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value, JsonApiError> {
        let request = self.http.get(self.at(path)).query(query);
        json_of(send(request).await?).await
    }

    /// `POST {path}` with a JSON body, answered with JSON.
    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, JsonApiError> {
        json_of(send(self.http.post(self.at(path)).json(body)).await?).await
    }

    /// `DELETE {path}?{query}`.
    pub async fn delete(&self, path: &str, query: &[(&str, String)]) -> Result<(), JsonApiError> {
        send(self.http.delete(self.at(path)).query(query))
            .await
            .map(drop)
    }

    /// Creates bucket `name`.
    pub async fn create_bucket(&self, name: &str) -> Result<(), JsonApiError> {
        self.post(
            &format!("/storage/v1/b?project={PROJECT}"),
            &json!({ "name": name }),
        )
        .await
        .map(drop)
    }

    /// Creates a bucket named `{prefix}-{16 random hex digits}` and returns its name.
    ///
    /// # Panics
    /// If fake-gcs-server refuses.
    pub async fn create_unique_bucket(&self, prefix: &str) -> String {
        let name = format!("{prefix}-{:016x}", fastrand::u64(..));
        self.create_bucket(&name)
            .await
            .unwrap_or_else(|e| panic!("create bucket {name}: {e}"));
        name
    }

    /// Deletes a bucket and its objects, best effort (the server is shared by the tests).
    pub async fn delete_bucket(&self, bucket: &str) {
        for _ in 0..5 {
            if let Ok(objects) = self.objects(bucket).await {
                for object in objects {
                    let name = object["name"].as_str().unwrap_or_default();
                    let _ = self.delete_object(bucket, name).await;
                }
            }
            match self.delete(&bucket_path(bucket), &[]).await {
                Ok(()) | Err(JsonApiError::Status(404, _)) => return,
                Err(_) => {}
            }
        }
    }

    /// Every bucket's name (fake-gcs-server ignores `project`), following pages.
    pub async fn bucket_names(&self, project: &str) -> Result<Vec<String>, JsonApiError> {
        let items = self
            .pages("/storage/v1/b", vec![("project", project.to_string())])
            .await?;
        Ok(items
            .iter()
            .filter_map(|b| b["name"].as_str().map(str::to_string))
            .collect())
    }

    /// Every object resource of `bucket`, following pages.
    pub async fn objects(&self, bucket: &str) -> Result<Vec<Value>, JsonApiError> {
        self.pages(
            &format!("{}/o", bucket_path(bucket)),
            vec![("maxResults", "1000".to_string())],
        )
        .await
    }

    /// The object names of `bucket`, sorted.
    pub async fn object_names(&self, bucket: &str) -> Result<Vec<String>, JsonApiError> {
        let mut names: Vec<String> = self
            .objects(bucket)
            .await?
            .iter()
            .filter_map(|o| o["name"].as_str().map(str::to_string))
            .collect();
        names.sort();
        Ok(names)
    }

    /// An object's resource, `None` if it does not exist.
    pub async fn object(&self, bucket: &str, name: &str) -> Result<Option<Value>, JsonApiError> {
        match self.get(&object_path(bucket, name), &[]).await {
            Ok(object) => Ok(Some(object)),
            Err(JsonApiError::Status(404, _)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The response carrying an object's bytes (`alt=media`), for reading it in chunks.
    pub async fn download(
        &self,
        bucket: &str,
        name: &str,
    ) -> Result<reqwest::Response, JsonApiError> {
        let request = self
            .http
            .get(self.at(&object_path(bucket, name)))
            .query(&[("alt", "media")]);
        send(request).await
    }

    /// An object's bytes, `None` if it does not exist.
    pub async fn read(&self, bucket: &str, name: &str) -> Result<Option<Bytes>, JsonApiError> {
        match self.download(bucket, name).await {
            Ok(response) => response.bytes().await.map(Some).map_err(io),
            Err(JsonApiError::Status(404, _)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Deletes the live version of an object.
    pub async fn delete_object(&self, bucket: &str, name: &str) -> Result<(), JsonApiError> {
        self.delete(&object_path(bucket, name), &[]).await
    }

    /// A multipart upload: `resource` (at least `name`; e.g. `storageClass`, `metadata`)
    /// and `data`. Returns the object's resource.
    pub async fn upload(
        &self,
        bucket: &str,
        resource: &Value,
        data: &[u8],
    ) -> Result<Value, JsonApiError> {
        const BOUNDARY: &str = "crossfed-tests-boundary";
        let mut body = format!(
            "--{BOUNDARY}\r\nContent-Type: application/json\r\n\r\n{resource}\r\n\
             --{BOUNDARY}\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(data);
        body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
        let request = self
            .http
            .post(self.at(&format!("/upload{}/o", bucket_path(bucket))))
            .query(&[("uploadType", "multipart")])
            .header(
                "content-type",
                format!("multipart/related; boundary={BOUNDARY}"),
            )
            .body(body);
        json_of(send(request).await?).await
    }

    /// The `items` of every page of a list call.
    async fn pages(
        &self,
        path: &str,
        query: Vec<(&str, String)>,
    ) -> Result<Vec<Value>, JsonApiError> {
        let mut items = Vec::new();
        let mut token = String::new();
        loop {
            let mut query = query.clone();
            if !token.is_empty() {
                query.push(("pageToken", token.clone()));
            }
            let page = self.get(path, &query).await?;
            items.extend(page["items"].as_array().into_iter().flatten().cloned());
            match page["nextPageToken"].as_str() {
                Some(next) if !next.is_empty() && next != token => token = next.to_string(),
                _ => return Ok(items),
            }
        }
    }

    fn at(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// `/storage/v1/b/{bucket}`.
pub fn bucket_path(bucket: &str) -> String {
    format!("/storage/v1/b/{}", encode(bucket))
}

/// `/storage/v1/b/{bucket}/o/{object}`, both percent-encoded.
pub fn object_path(bucket: &str, object: &str) -> String {
    format!("{}/o/{}", bucket_path(bucket), encode(object))
}

fn encode(segment: &str) -> String {
    utf8_percent_encode(segment, NON_ALPHANUMERIC).to_string()
}

fn io(e: reqwest::Error) -> JsonApiError {
    JsonApiError::Io(e.to_string())
}

/// Sends `request`; a non-2xx answer is [`JsonApiError::Status`].
async fn send(request: reqwest::RequestBuilder) -> Result<reqwest::Response, JsonApiError> {
    let response = request.send().await.map_err(io)?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let text = response.text().await.unwrap_or_default();
    Err(JsonApiError::Status(status.as_u16(), error_message(&text)))
}

async fn json_of(response: reqwest::Response) -> Result<Value, JsonApiError> {
    let text = response.text().await.map_err(io)?;
    serde_json::from_str(&text).map_err(|e| JsonApiError::Io(format!("bad JSON: {e}")))
}

/// `error.message` of a JSON API error body, or the body itself.
fn error_message(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| body.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_encode_every_segment() {
        assert_eq!(
            object_path("b", "dir/a b+ü.txt"),
            "/storage/v1/b/b/o/dir%2Fa%20b%2B%C3%BC%2Etxt"
        );
        assert_eq!(
            error_message(r#"{"error":{"code":404,"message":"Not Found"}}"#),
            "Not Found"
        );
        assert_eq!(error_message(" plain \n"), "plain");
    }

    #[tokio::test]
    async fn round_trip_through_the_local_fake_gcs_server() {
        let gcs = FakeGcsServer::from_local_cloud(&LocalCloud::load());
        let bucket = gcs.create_unique_bucket("json-client").await;
        let name = "dir/héllo wörld.txt";
        let object = gcs
            .upload(
                &bucket,
                &json!({"name": name, "storageClass": "NEARLINE", "metadata": {"k": "v"}}),
                b"hello",
            )
            .await
            .unwrap();
        assert_eq!(object["name"], name);
        let stored = gcs.object(&bucket, name).await.unwrap().expect("stored");
        assert_eq!(
            (&stored["storageClass"], &stored["metadata"]["k"]),
            (&json!("NEARLINE"), &json!("v"))
        );
        assert_eq!(
            gcs.read(&bucket, name).await.unwrap().as_deref(),
            Some(&b"hello"[..])
        );
        assert_eq!(gcs.object_names(&bucket).await.unwrap(), vec![name]);
        assert!(gcs.bucket_names(PROJECT).await.unwrap().contains(&bucket));
        gcs.delete_object(&bucket, name).await.unwrap();
        assert_eq!(gcs.object(&bucket, name).await.unwrap(), None);
        assert_eq!(gcs.read(&bucket, name).await.unwrap(), None);
        assert_eq!(
            gcs.delete_object(&bucket, name)
                .await
                .unwrap_err()
                .http_status(),
            Some(404)
        );
        gcs.delete_bucket(&bucket).await;
        assert!(!gcs.bucket_names(PROJECT).await.unwrap().contains(&bucket));
    }
}
