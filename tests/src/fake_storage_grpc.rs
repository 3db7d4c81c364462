//! Fake Cloud Storage gRPC API (`google.storage.v2.Storage/ListBuckets`),
//! the control path of `google_cloud_storage::client::StorageControl`.
//! Serves h2c, so point the client at [`FakeStorage::endpoint`].

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use tonic::metadata::MetadataMap;
use tonic::{Code, Status};

use crate::fake_google::lock;
use crate::faults::{self, Fault, FaultQueue};
use crate::server::{self, BackgroundServer, Body, BoxFuture};
use crate::token_registry::TokenRegistry;

/// Hand-written subset of `google.storage.v2` (field numbers as in
/// `google/storage/v2/storage.proto`).
pub mod proto {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ListBucketsRequest {
        #[prost(string, tag = "1")]
        pub parent: String,
        #[prost(int32, tag = "2")]
        pub page_size: i32,
        #[prost(string, tag = "3")]
        pub page_token: String,
        #[prost(string, tag = "4")]
        pub prefix: String,
        #[prost(message, optional, tag = "5")]
        pub read_mask: Option<FieldMask>,
        #[prost(bool, tag = "9")]
        pub return_partial_success: bool,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ListBucketsResponse {
        #[prost(message, repeated, tag = "1")]
        pub buckets: Vec<Bucket>,
        #[prost(string, tag = "2")]
        pub next_page_token: String,
        #[prost(string, repeated, tag = "3")]
        pub unreachable: Vec<String>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Bucket {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(string, tag = "2")]
        pub bucket_id: String,
        #[prost(string, tag = "3")]
        pub project: String,
        #[prost(int64, tag = "4")]
        pub metageneration: i64,
        #[prost(string, tag = "5")]
        pub location: String,
        #[prost(string, tag = "6")]
        pub location_type: String,
        #[prost(string, tag = "7")]
        pub storage_class: String,
        #[prost(string, tag = "29")]
        pub etag: String,
    }

    /// `google.protobuf.FieldMask`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct FieldMask {
        #[prost(string, repeated, tag = "1")]
        pub paths: Vec<String>,
    }
}

use proto::{Bucket, ListBucketsRequest, ListBucketsResponse};

const SERVICE_PREFIX: &str = "/google.storage.v2.Storage/";
const LIST_BUCKETS: &str = "/google.storage.v2.Storage/ListBuckets";
/// Server-side page size when the request leaves it at 0, and the maximum.
const MAX_PAGE_SIZE: usize = 1000;
const PAGE_TOKEN_PREFIX: &str = "fake-page-";
/// Scopes that allow listing buckets.
const STORAGE_READ_SCOPES: [&str; 5] = [
    crate::CLOUD_PLATFORM_SCOPE,
    "https://www.googleapis.com/auth/cloud-platform.read-only",
    "https://www.googleapis.com/auth/devstorage.read_only",
    "https://www.googleapis.com/auth/devstorage.read_write",
    "https://www.googleapis.com/auth/devstorage.full_control",
];

/// Configuration of [`FakeStorage`].
#[derive(Clone, Debug)]
pub struct FakeStorageConfig {
    /// Project id; `parent` may be `projects/{project_id}`...
    pub project_id: String,
    /// ...or `projects/{project_number}`.
    pub project_number: String,
    /// Bucket names (ids) in the project.
    pub buckets: Vec<String>,
    /// If set, only tokens whose principal is listed may list buckets
    /// (e.g. `serviceAccount:crossfed@my-project.iam.gserviceaccount.com`).
    pub allowed_principals: Option<Vec<String>>,
}

impl Default for FakeStorageConfig {
    fn default() -> Self {
        Self {
            project_id: "my-project".into(),
            project_number: "123456".into(),
            buckets: vec!["crossfed-bucket-a".into(), "crossfed-bucket-b".into()],
            allowed_principals: None,
        }
    }
}

/// What the fake saw in one RPC (no tokens).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StorageRequestRecord {
    /// gRPC path, e.g. `/google.storage.v2.Storage/ListBuckets`.
    pub path: String,
    pub parent: Option<String>,
    pub page_size: Option<i32>,
    pub page_token: Option<String>,
    pub prefix: Option<String>,
    pub x_goog_request_params: Option<String>,
    pub x_goog_api_client: Option<String>,
    /// Principal of the caller's (valid) token.
    pub caller: Option<String>,
    /// gRPC status code returned (`Code::Ok` on success).
    pub code: i32,
    pub fault: Option<Fault>,
}

#[derive(Debug)]
struct StorageState {
    config: FakeStorageConfig,
    tokens: TokenRegistry,
    faults: FaultQueue,
    calls: AtomicUsize,
    requests: Mutex<Vec<StorageRequestRecord>>,
}

/// Handle to a running fake Cloud Storage gRPC server; dropping it stops it.
#[derive(Debug)]
pub struct FakeStorage {
    state: Arc<StorageState>,
    server: BackgroundServer,
}

impl FakeStorage {
    /// Starts on an ephemeral port of 127.0.0.1, accepting tokens from
    /// `tokens` (e.g. [`crate::FakeGoogle::tokens`]).
    pub async fn start(config: FakeStorageConfig, tokens: TokenRegistry) -> Self {
        Self::start_on(config, tokens, ([127, 0, 0, 1], 0).into()).await
    }

    /// Starts on `addr`.
    ///
    /// # Panics
    /// If `addr` cannot be bound.
    pub async fn start_on(
        config: FakeStorageConfig,
        tokens: TokenRegistry,
        addr: SocketAddr,
    ) -> Self {
        let state = Arc::new(StorageState {
            config,
            tokens,
            faults: FaultQueue::default(),
            calls: AtomicUsize::new(0),
            requests: Mutex::new(Vec::new()),
        });
        let handler_state = state.clone();
        let server = BackgroundServer::spawn("fake-storage", addr, move |listener| {
            server::serve_http(listener, move |req| {
                Box::pin(route(handler_state.clone(), req))
            })
        })
        .unwrap_or_else(|e| panic!("FakeStorage: cannot listen on {addr}: {e}"));
        Self { state, server }
    }

    /// `http://127.0.0.1:PORT`, for `StorageControl::builder().with_endpoint(..)`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    pub fn config(&self) -> &FakeStorageConfig {
        &self.state.config
    }

    /// RPCs received (including faulted and rejected ones).
    pub fn calls(&self) -> usize {
        self.state.calls.load(Ordering::SeqCst)
    }

    /// Every RPC so far, oldest first.
    pub fn requests(&self) -> Vec<StorageRequestRecord> {
        lock(&self.state.requests).clone()
    }

    pub fn last_request(&self) -> Option<StorageRequestRecord> {
        lock(&self.state.requests).last().cloned()
    }

    /// Queues faults for the next RPCs (HTTP statuses map to gRPC codes).
    pub fn inject_faults(&self, faults: impl IntoIterator<Item = Fault>) {
        self.state.faults.push(faults);
    }
}

async fn route(state: Arc<StorageState>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    if !path.starts_with(SERVICE_PREFIX) {
        return server::empty_response(StatusCode::NOT_FOUND);
    }
    state.calls.fetch_add(1, Ordering::SeqCst);
    if path != LIST_BUCKETS {
        lock(&state.requests).push(StorageRequestRecord {
            path: path.clone(),
            code: Code::Unimplemented as i32,
            ..Default::default()
        });
        return Status::unimplemented(format!("{path} is not implemented by the fake")).into_http();
    }
    let codec = tonic_prost::ProstCodec::<ListBucketsResponse, ListBucketsRequest>::default();
    tonic::server::Grpc::new(codec)
        .unary(ListBucketsService(state), req)
        .await
}

/// `tower::Service` adapter for `tonic::server::Grpc::unary`.
#[derive(Clone)]
struct ListBucketsService(Arc<StorageState>);

impl tonic::codegen::Service<tonic::Request<ListBucketsRequest>> for ListBucketsService {
    type Response = tonic::Response<ListBucketsResponse>;
    type Error = Status;
    type Future = BoxFuture<Result<Self::Response, Status>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: tonic::Request<ListBucketsRequest>) -> Self::Future {
        let state = self.0.clone();
        Box::pin(async move {
            let (metadata, _, message) = request.into_parts();
            let mut record = StorageRequestRecord {
                path: LIST_BUCKETS.into(),
                parent: Some(message.parent.clone()),
                page_size: Some(message.page_size),
                page_token: Some(message.page_token.clone()),
                prefix: Some(message.prefix.clone()),
                x_goog_request_params: metadata_str(&metadata, "x-goog-request-params"),
                x_goog_api_client: metadata_str(&metadata, "x-goog-api-client"),
                ..Default::default()
            };
            let fault = state.faults.next();
            record.fault.clone_from(&fault);
            let result = match fault {
                Some(Fault::Delay(delay)) => {
                    tokio::time::sleep(delay).await;
                    list_buckets(&state, &metadata, &message, &mut record)
                }
                Some(Fault::Status(status)) => Err(Status::new(
                    faults::grpc_code(status),
                    format!("Injected fault: HTTP {status}."),
                )),
                Some(Fault::GoogleError {
                    status,
                    description,
                    ..
                }) => Err(Status::new(faults::grpc_code(status), description)),
                None => list_buckets(&state, &metadata, &message, &mut record),
            };
            record.code = match &result {
                Ok(_) => Code::Ok as i32,
                Err(status) => status.code() as i32,
            };
            lock(&state.requests).push(record);
            result.map(tonic::Response::new)
        })
    }
}

fn metadata_str(metadata: &MetadataMap, key: &str) -> Option<String> {
    metadata
        .get(key)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn list_buckets(
    state: &StorageState,
    metadata: &MetadataMap,
    request: &ListBucketsRequest,
    record: &mut StorageRequestRecord,
) -> Result<ListBucketsResponse, Status> {
    let authorization = metadata.get("authorization").and_then(|v| v.to_str().ok());
    let caller = state.tokens.validate_bearer(authorization).ok_or_else(|| {
        Status::unauthenticated(
            "Request had invalid authentication credentials. Expected OAuth 2 access token, \
             login cookie or other valid authentication credential.",
        )
    })?;
    record.caller = Some(caller.principal.clone());
    if !STORAGE_READ_SCOPES.iter().any(|s| caller.has_scope(s)) {
        return Err(Status::permission_denied(
            "Request had insufficient authentication scopes.",
        ));
    }
    let config = &state.config;
    if let Some(allowed) = &config.allowed_principals
        && !allowed.iter().any(|m| caller.matches_member(m))
    {
        return Err(Status::permission_denied(format!(
            "{} does not have storage.buckets.list access to the Google Cloud project. \
             Permission 'storage.buckets.list' denied on resource (or it may not exist).",
            caller.principal.trim_start_matches("serviceAccount:")
        )));
    }
    if !metadata_str(metadata, "x-goog-api-client").is_some_and(|v| v.contains("gl-rust/")) {
        return Err(Status::invalid_argument(
            "missing x-goog-api-client metadata (expected the Rust client library's gl-rust/...)",
        ));
    }
    let routing = metadata_str(metadata, "x-goog-request-params").unwrap_or_default();
    if routing_param(&routing, "project").as_deref() != Some(request.parent.as_str()) {
        return Err(Status::invalid_argument(format!(
            "x-goog-request-params must route project={:?}, got {routing:?}",
            request.parent
        )));
    }
    let Some(project) = request
        .parent
        .strip_prefix("projects/")
        .filter(|p| !p.is_empty() && !p.contains('/'))
    else {
        return Err(Status::invalid_argument(format!(
            "Invalid parent {:?}: expected projects/{{project}}.",
            request.parent
        )));
    };
    if project != config.project_id && project != config.project_number {
        return Err(Status::not_found(format!(
            "The project {project} was not found."
        )));
    }
    let page_size = match usize::try_from(request.page_size) {
        Ok(0) => MAX_PAGE_SIZE,
        Ok(n) => n.min(MAX_PAGE_SIZE),
        Err(_) => return Err(Status::invalid_argument("page_size must not be negative.")),
    };
    let offset = parse_page_token(&request.page_token).ok_or_else(|| {
        Status::invalid_argument(format!("Invalid page token {:?}.", request.page_token))
    })?;

    let mut names: Vec<&String> = config
        .buckets
        .iter()
        .filter(|b| b.starts_with(&request.prefix))
        .collect();
    names.sort();
    let page: Vec<Bucket> = names
        .iter()
        .skip(offset)
        .take(page_size)
        .map(|name| bucket(name, &config.project_number))
        .collect();
    let next = offset + page.len();
    let next_page_token = if next < names.len() {
        format!("{PAGE_TOKEN_PREFIX}{next}")
    } else {
        String::new()
    };
    Ok(ListBucketsResponse {
        buckets: page,
        next_page_token,
        unreachable: Vec::new(),
    })
}

fn bucket(name: &str, project_number: &str) -> Bucket {
    Bucket {
        name: format!("projects/_/buckets/{name}"),
        bucket_id: name.to_string(),
        project: format!("projects/{project_number}"),
        metageneration: 1,
        location: "US".into(),
        location_type: "multi-region".into(),
        storage_class: "STANDARD".into(),
        etag: "CAE=".into(),
    }
}

/// Offset encoded in a page token; the empty token is offset 0.
fn parse_page_token(token: &str) -> Option<usize> {
    if token.is_empty() {
        return Some(0);
    }
    token.strip_prefix(PAGE_TOKEN_PREFIX)?.parse().ok()
}

/// Value of `key` in an `x-goog-request-params` header (`k=v&k2=v2`,
/// percent-encoded).
fn routing_param(header: &str, key: &str) -> Option<String> {
    header.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .ok()
                .map(|c| c.into_owned())
        };
        (decode(k)? == key).then(|| decode(v)).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_params() {
        assert_eq!(
            routing_param("project=projects%2Fmy-project", "project").as_deref(),
            Some("projects/my-project")
        );
        assert_eq!(
            routing_param("a=b&project=p", "project").as_deref(),
            Some("p")
        );
        assert_eq!(routing_param("bucket=x", "project"), None);
    }

    #[test]
    fn page_tokens() {
        assert_eq!(parse_page_token(""), Some(0));
        assert_eq!(parse_page_token("fake-page-7"), Some(7));
        assert_eq!(parse_page_token("garbage"), None);
        assert_eq!(parse_page_token("fake-page--1"), None);
    }

    /// The real `StorageControl` client against the fake, with paging.
    mod client {
        use super::super::*;
        use crate::{StaticBearerCredentials, TokenIssuer};
        use google_cloud_gax::paginator::ItemPaginator as _;
        use google_cloud_storage::client::StorageControl;
        use std::time::Duration;

        const SA: &str = "serviceAccount:crossfed@my-project.iam.gserviceaccount.com";

        async fn fake(tokens: &TokenRegistry) -> FakeStorage {
            let config = FakeStorageConfig {
                buckets: ["b-3", "b-1", "a-0", "b-2", "b-4"]
                    .map(String::from)
                    .to_vec(),
                allowed_principals: Some(vec![SA.into()]),
                ..Default::default()
            };
            FakeStorage::start(config, tokens.clone()).await
        }

        async fn client(storage: &FakeStorage, token: &str) -> StorageControl {
            StorageControl::builder()
                .with_endpoint(storage.endpoint())
                .with_credentials(StaticBearerCredentials::credentials(token))
                .build()
                .await
                .expect("build StorageControl")
        }

        fn token(tokens: &TokenRegistry, principal: &str, scope: &str) -> String {
            let scopes = vec![scope.to_string()];
            tokens
                .issue(
                    TokenIssuer::Test,
                    principal,
                    vec![],
                    scopes,
                    Duration::from_secs(600),
                )
                .0
        }

        async fn list(
            client: &StorageControl,
            parent: &str,
            page_size: i32,
        ) -> Result<Vec<String>, google_cloud_storage::Error> {
            let mut items = client
                .list_buckets()
                .set_parent(parent)
                .set_page_size(page_size)
                .by_item();
            let mut names = Vec::new();
            while let Some(bucket) = items.next().await {
                names.push(bucket?.name);
            }
            Ok(names)
        }

        fn code(err: &google_cloud_storage::Error) -> Option<google_cloud_gax::error::rpc::Code> {
            err.status().map(|s| s.code)
        }

        #[tokio::test]
        async fn lists_buckets_with_paging() {
            let tokens = TokenRegistry::new();
            let storage = fake(&tokens).await;
            let client = client(&storage, &token(&tokens, SA, crate::CLOUD_PLATFORM_SCOPE)).await;
            let names = list(&client, "projects/my-project", 2).await.unwrap();
            let want: Vec<String> = ["a-0", "b-1", "b-2", "b-3", "b-4"]
                .iter()
                .map(|b| format!("projects/_/buckets/{b}"))
                .collect();
            assert_eq!(names, want);
            assert_eq!(storage.calls(), 3, "5 buckets in pages of 2");
            let last = storage.last_request().unwrap();
            assert_eq!(last.page_token.as_deref(), Some("fake-page-4"));
            assert_eq!(
                last.x_goog_request_params.as_deref(),
                Some("project=projects%2Fmy-project")
            );
            assert!(last.x_goog_api_client.unwrap().starts_with("gl-rust/"));
            assert_eq!(last.caller.as_deref(), Some(SA));

            // By project number, one page.
            assert_eq!(list(&client, "projects/123456", 0).await.unwrap().len(), 5);
            assert_eq!(storage.calls(), 4);
        }

        #[tokio::test]
        async fn rejects_bad_tokens_principals_and_projects() {
            use google_cloud_gax::error::rpc::Code;
            let tokens = TokenRegistry::new();
            let storage = fake(&tokens).await;

            let err = list(
                &client(&storage, "ya29.not-issued").await,
                "projects/my-project",
                0,
            )
            .await
            .unwrap_err();
            assert_eq!(code(&err), Some(Code::Unauthenticated), "{err:?}");

            let expired = token(&tokens, SA, crate::CLOUD_PLATFORM_SCOPE);
            tokens.expire(&expired);
            let err = list(&client(&storage, &expired).await, "projects/my-project", 0)
                .await
                .unwrap_err();
            assert_eq!(code(&err), Some(Code::Unauthenticated), "{err:?}");

            let federated = token(
                &tokens,
                "principal://iam.googleapis.com/x/subject/y",
                crate::CLOUD_PLATFORM_SCOPE,
            );
            let err = list(
                &client(&storage, &federated).await,
                "projects/my-project",
                0,
            )
            .await
            .unwrap_err();
            assert_eq!(code(&err), Some(Code::PermissionDenied), "{err:?}");

            let iam_only = token(&tokens, SA, crate::IAM_SCOPE);
            let err = list(&client(&storage, &iam_only).await, "projects/my-project", 0)
                .await
                .unwrap_err();
            assert_eq!(code(&err), Some(Code::PermissionDenied), "{err:?}");

            let good = client(&storage, &token(&tokens, SA, crate::CLOUD_PLATFORM_SCOPE)).await;
            let err = list(&good, "projects/other-project", 0).await.unwrap_err();
            assert_eq!(code(&err), Some(Code::NotFound), "{err:?}");

            storage.inject_faults([Fault::Status(403)]);
            let err = list(&good, "projects/my-project", 0).await.unwrap_err();
            assert_eq!(code(&err), Some(Code::PermissionDenied), "{err:?}");
            assert_eq!(
                list(&good, "projects/my-project", 0).await.unwrap().len(),
                5
            );
        }
    }
}
