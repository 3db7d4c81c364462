//! The handler: a plain async fn over the Storage control client, built once at init
//! ([`App`]), testable without Lambda.

use crossfed_kit::{BoxError, Env};
use google_cloud_gax::paginator::ItemPaginator as _;
use google_cloud_storage::client::StorageControl;
use serde::Serialize;
use serde_json::Value;

use crate::settings::Settings;

/// What every invocation reuses.
pub struct App {
    pub settings: Settings,
    pub control: StorageControl,
}

impl App {
    /// The cold start: reads the settings and the credential configuration
    /// (`CROSSFED_CONFIG_PARAMETER` / `GOOGLE_APPLICATION_CREDENTIALS`), builds the client and,
    /// concurrently, warms the token cache so the first invocation makes no auth call either.
    pub async fn from_env(env: Env) -> Result<Self, BoxError> {
        let settings = Settings::from_env(&env)?;
        let credentials = crossfed::google::Credentials::from_env()?;
        Self::new(settings, credentials).await
    }

    /// The client for `settings` with Google `credentials`, its token warmed.
    pub async fn new(
        settings: Settings,
        credentials: crossfed::google::Credentials,
    ) -> Result<Self, BoxError> {
        let mut builder = StorageControl::builder().with_credentials(credentials.clone());
        if let Some(endpoint) = &settings.grpc_endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        let control = crossfed_kit::warm_up::alongside(&credentials, builder.build()).await?;
        Ok(App { settings, control })
    }
}

/// API Gateway-style response: `{"statusCode":200,"body":"{\"buckets\":[...]}"}`.
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Response {
    pub status_code: u16,
    pub body: String,
}

#[derive(Serialize)]
struct Body<'a> {
    buckets: &'a [String],
}

/// Lists every bucket of the project (all pages). The event is not used.
pub async fn handle(app: &App, _event: Value) -> Result<Response, BoxError> {
    let project = app.settings.project.as_str();
    let mut buckets = Vec::new();
    let mut items = app
        .control
        .list_buckets()
        .set_parent(format!("projects/{project}"))
        .by_item();
    while let Some(bucket) = items
        .next()
        .await
        .transpose()
        .map_err(|e| crossfed_kit::chain(&e))?
    {
        buckets.push(bucket.bucket_id);
    }
    tracing::info!(project, count = buckets.len(), "listed buckets");
    Ok(Response {
        status_code: 200,
        body: serde_json::to_string(&Body { buckets: &buckets })?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use google_cloud_gax::options::RequestOptions;
    use google_cloud_gax::response::Response as GaxResponse;
    use google_cloud_storage::model::{Bucket, ListBucketsRequest, ListBucketsResponse};
    use std::sync::Mutex;

    /// Serves two pages and records the requests.
    #[derive(Debug, Default)]
    struct TwoPages {
        requests: Mutex<Vec<ListBucketsRequest>>,
    }

    impl google_cloud_storage::stub::StorageControl for TwoPages {
        async fn list_buckets(
            &self,
            req: ListBucketsRequest,
            _options: RequestOptions,
        ) -> google_cloud_storage::Result<GaxResponse<ListBucketsResponse>> {
            let first = req.page_token.is_empty();
            self.requests.lock().unwrap().push(req);
            let (names, next) = if first {
                (vec!["a", "b"], "p2")
            } else {
                (vec!["c"], "")
            };
            let buckets = names.into_iter().map(|n| Bucket::new().set_bucket_id(n));
            Ok(GaxResponse::from(
                ListBucketsResponse::new()
                    .set_buckets(buckets)
                    .set_next_page_token(next),
            ))
        }
    }

    #[tokio::test]
    async fn lists_all_pages() {
        let stub = std::sync::Arc::new(TwoPages::default());
        let app = App {
            settings: Settings {
                project: "my-proj".into(),
                grpc_endpoint: None,
            },
            control: StorageControl::from_stub::<TwoPages>(stub.clone()),
        };
        let resp = handle(&app, Value::Null).await.unwrap();
        assert_eq!(resp.status_code, 200);
        assert_eq!(resp.body, r#"{"buckets":["a","b","c"]}"#);
        let reqs = stub.requests.lock().unwrap();
        assert_eq!(reqs.len(), 2);
        assert!(reqs.iter().all(|r| r.parent == "projects/my-proj"));
        assert_eq!(reqs[1].page_token, "p2");
        let json = serde_json::to_value(&resp).unwrap();
        assert_eq!(json["statusCode"], 200);
    }
}
