//! Fake Cloud Storage gRPC API (`google.storage.v2.Storage`), the control
//! path of `google_cloud_storage::client::StorageControl`. Serves h2c, so
//! point the client at [`FakeStorage::endpoint`].
//!
//! `ListBuckets` answers from [`FakeStorageConfig::buckets`]. Started with
//! [`FakeStorage::start_backed`], the fake fronts a fake-gcs-server (its HTTP
//! JSON API, where the `Storage` client reads and writes objects): bucket
//! names then come from the backend, and `ListObjects`, `GetObject`,
//! `DeleteObject` and `ComposeObject` are answered from it, with the generation
//! and metageneration preconditions fake-gcs-server ignores checked here. MD5 and
//! CRC32C are fake-gcs-server's, computed from the stored bytes (it ignores
//! declared values); objects composed here are reported as Cloud Storage does, with
//! a component count and without an MD5.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use tonic::metadata::MetadataMap;
use tonic::{Code, Status};

use crate::faults::{self, Fault, FaultQueue};
use crate::google::token_registry::TokenRegistry;
use crate::server::lock;
use crate::server::{self, BackgroundServer, Body, BoxFuture};

mod backend;
pub mod proto;

use backend::{
    BUCKET_PREFIX, Backend, BackendError, PRECONDITION_FAILED, encode, object_from_json,
    object_path,
};
use proto::{
    Bucket, ComposeObjectRequest, DeleteObjectRequest, Empty, GetObjectRequest, ListBucketsRequest,
    ListBucketsResponse, ListObjectsRequest, ListObjectsResponse, Object,
};

const SERVICE_PREFIX: &str = "/google.storage.v2.Storage/";
const LIST_BUCKETS: &str = "/google.storage.v2.Storage/ListBuckets";
const LIST_OBJECTS: &str = "/google.storage.v2.Storage/ListObjects";
const GET_OBJECT: &str = "/google.storage.v2.Storage/GetObject";
const DELETE_OBJECT: &str = "/google.storage.v2.Storage/DeleteObject";
const COMPOSE_OBJECT: &str = "/google.storage.v2.Storage/ComposeObject";
/// Cloud Storage composes at most this many source objects per request.
const MAX_COMPOSE_SOURCES: usize = 32;
/// Server-side page size when the request leaves it at 0, and the maximum.
const MAX_PAGE_SIZE: usize = 1000;
const PAGE_TOKEN_PREFIX: &str = "fake-page-";
/// Scopes that allow reading (listing buckets, listing and getting objects).
const STORAGE_READ_SCOPES: [&str; 5] = [
    crate::google::scopes::CLOUD_PLATFORM_SCOPE,
    "https://www.googleapis.com/auth/cloud-platform.read-only",
    "https://www.googleapis.com/auth/devstorage.read_only",
    "https://www.googleapis.com/auth/devstorage.read_write",
    "https://www.googleapis.com/auth/devstorage.full_control",
];
/// Scopes that allow deleting objects.
const STORAGE_WRITE_SCOPES: [&str; 3] = [
    crate::google::scopes::CLOUD_PLATFORM_SCOPE,
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
    /// Bucket names (ids) in the project (ignored when backed by
    /// fake-gcs-server: its buckets are listed instead).
    pub buckets: Vec<String>,
    /// If set, only tokens whose principal is listed may call the API
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
    /// `parent` of `ListBuckets` / `ListObjects`.
    pub parent: Option<String>,
    pub page_size: Option<i32>,
    pub page_token: Option<String>,
    pub prefix: Option<String>,
    /// `delimiter` of `ListObjects`.
    pub delimiter: Option<String>,
    /// `bucket` of `GetObject` / `DeleteObject`, `destination.bucket` of `ComposeObject`
    /// (`projects/_/buckets/B`).
    pub bucket: Option<String>,
    /// `object` of `GetObject` / `DeleteObject`, `destination.name` of `ComposeObject`.
    pub object: Option<String>,
    /// `source_objects[].name` of `ComposeObject`.
    pub sources: Vec<String>,
    /// `generation` of `GetObject` / `DeleteObject` (0: live version).
    pub generation: Option<i64>,
    pub if_generation_match: Option<i64>,
    pub if_generation_not_match: Option<i64>,
    pub if_metageneration_match: Option<i64>,
    pub if_metageneration_not_match: Option<i64>,
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
    backend: Option<Backend>,
    faults: FaultQueue,
    calls: AtomicUsize,
    requests: Mutex<Vec<StorageRequestRecord>>,
    /// Objects composed here, `(bucket id, name, generation)` → component count:
    /// fake-gcs-server gives them an MD5 and no component count, Cloud Storage the reverse.
    composites: Mutex<HashMap<(String, String, i64), i32>>,
}

impl StorageState {
    fn backend(&self) -> Result<&Backend, Status> {
        self.backend.as_ref().ok_or_else(|| {
            Status::unimplemented("needs a fake-gcs-server backend (FakeStorage::start_backed)")
        })
    }

    /// `object` of `bucket_id` as Cloud Storage reports it: a composite object has a
    /// component count and no MD5 (only its CRC32C, which Cloud Storage computes).
    fn as_stored(&self, bucket_id: &str, mut object: Object) -> Object {
        let key = (
            bucket_id.to_string(),
            object.name.clone(),
            object.generation,
        );
        if let Some(count) = lock(&self.composites).get(&key) {
            object.component_count = *count;
            if let Some(checksums) = object.checksums.as_mut() {
                checksums.md5_hash.clear();
            }
        }
        object
    }
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

    /// Like [`FakeStorage::start`], backed by the fake-gcs-server whose HTTP
    /// JSON API is at `backend` (e.g. [`crate::LocalCloud::gcs_http`],
    /// `http://127.0.0.2:80`): objects written there over HTTP (by the
    /// `Storage` client) are listed, read and deleted here over gRPC.
    pub async fn start_backed(
        config: FakeStorageConfig,
        tokens: TokenRegistry,
        backend: &str,
    ) -> Self {
        let backend = Backend {
            base: backend.trim_end_matches('/').to_string(),
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("reqwest client"),
        };
        Self::spawn(config, tokens, Some(backend), ([127, 0, 0, 1], 0).into())
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
        Self::spawn(config, tokens, None, addr)
    }

    fn spawn(
        config: FakeStorageConfig,
        tokens: TokenRegistry,
        backend: Option<Backend>,
        addr: SocketAddr,
    ) -> Self {
        let state = Arc::new(StorageState {
            config,
            tokens,
            backend,
            faults: FaultQueue::default(),
            calls: AtomicUsize::new(0),
            requests: Mutex::new(Vec::new()),
            composites: Mutex::new(HashMap::new()),
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

    /// The fake-gcs-server base URL, if started with [`FakeStorage::start_backed`].
    pub fn backend(&self) -> Option<&str> {
        self.state.backend.as_ref().map(|b| b.base.as_str())
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

    /// Queues faults for the next RPCs (HTTP statuses map to gRPC codes;
    /// [`Fault::CorruptUpload`] is ignored).
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
    match path.as_str() {
        LIST_BUCKETS => serve::<ListBucketsRequest>(state, req).await,
        LIST_OBJECTS | GET_OBJECT | DELETE_OBJECT | COMPOSE_OBJECT if state.backend.is_none() => {
            lock(&state.requests).push(StorageRequestRecord {
                path: path.clone(),
                code: Code::Unimplemented as i32,
                ..Default::default()
            });
            Status::unimplemented(format!(
                "{path} needs a fake-gcs-server backend (FakeStorage::start_backed)"
            ))
            .into_http()
        }
        LIST_OBJECTS => serve::<ListObjectsRequest>(state, req).await,
        GET_OBJECT => serve::<GetObjectRequest>(state, req).await,
        DELETE_OBJECT => serve::<DeleteObjectRequest>(state, req).await,
        COMPOSE_OBJECT => serve::<ComposeObjectRequest>(state, req).await,
        _ => {
            lock(&state.requests).push(StorageRequestRecord {
                path: path.clone(),
                code: Code::Unimplemented as i32,
                ..Default::default()
            });
            Status::unimplemented(format!("{path} is not implemented by the fake")).into_http()
        }
    }
}

async fn serve<R: Rpc>(state: Arc<StorageState>, req: Request<Incoming>) -> Response<Body> {
    let codec = tonic_prost::ProstCodec::<R::Response, R>::default();
    tonic::server::Grpc::new(codec)
        .unary(RpcService::<R>(state, PhantomData), req)
        .await
}

/// One unary RPC of the fake.
trait Rpc: prost::Message + Default + Send + Sync + 'static {
    type Response: prost::Message + Default + Send + Sync + 'static;
    const PATH: &'static str;
    /// IAM permission, for the `allowed_principals` check.
    const PERMISSION: &'static str;
    /// Whether the RPC mutates (needs a read-write scope).
    const WRITE: bool;
    /// Fills the request-specific fields of the record.
    fn describe(&self, record: &mut StorageRequestRecord);
    /// The `x-goog-request-params` key and the value it must route.
    fn routing(&self) -> (&'static str, &str);
    /// Handles an authenticated, correctly routed request.
    fn handle(self, state: Arc<StorageState>) -> BoxFuture<Result<Self::Response, Status>>;
}

/// `tower::Service` adapter for `tonic::server::Grpc::unary`.
struct RpcService<R>(Arc<StorageState>, PhantomData<fn() -> R>);

impl<R> Clone for RpcService<R> {
    fn clone(&self) -> Self {
        Self(self.0.clone(), PhantomData)
    }
}

impl<R: Rpc> tonic::codegen::Service<tonic::Request<R>> for RpcService<R> {
    type Response = tonic::Response<R::Response>;
    type Error = Status;
    type Future = BoxFuture<Result<Self::Response, Status>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: tonic::Request<R>) -> Self::Future {
        let state = self.0.clone();
        Box::pin(async move {
            let (metadata, _, message) = request.into_parts();
            let mut record = StorageRequestRecord {
                path: R::PATH.into(),
                x_goog_request_params: metadata_str(&metadata, "x-goog-request-params"),
                x_goog_api_client: metadata_str(&metadata, "x-goog-api-client"),
                ..Default::default()
            };
            message.describe(&mut record);
            let fault = state.faults.next();
            record.fault.clone_from(&fault);
            let result = match fault {
                Some(Fault::Delay(delay)) => {
                    tokio::time::sleep(delay).await;
                    handle(&state, &metadata, message, &mut record).await
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
                Some(Fault::CorruptUpload) | None => {
                    handle(&state, &metadata, message, &mut record).await
                }
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

/// Authentication, authorization and routing checks shared by every RPC,
/// then the RPC itself.
async fn handle<R: Rpc>(
    state: &Arc<StorageState>,
    metadata: &MetadataMap,
    request: R,
    record: &mut StorageRequestRecord,
) -> Result<R::Response, Status> {
    let authorization = metadata.get("authorization").and_then(|v| v.to_str().ok());
    let caller = state.tokens.validate_bearer(authorization).ok_or_else(|| {
        Status::unauthenticated(
            "Request had invalid authentication credentials. Expected OAuth 2 access token, \
             login cookie or other valid authentication credential.",
        )
    })?;
    record.caller = Some(caller.principal.clone());
    let scopes: &[&str] = if R::WRITE {
        &STORAGE_WRITE_SCOPES
    } else {
        &STORAGE_READ_SCOPES
    };
    if !scopes.iter().any(|s| caller.has_scope(s)) {
        return Err(Status::permission_denied(
            "Request had insufficient authentication scopes.",
        ));
    }
    if let Some(allowed) = &state.config.allowed_principals
        && !allowed.iter().any(|m| caller.matches_member(m))
    {
        let permission = R::PERMISSION;
        let on = if permission.starts_with("storage.buckets") {
            "the Google Cloud project"
        } else {
            "the Google Cloud Storage object"
        };
        return Err(Status::permission_denied(format!(
            "{} does not have {permission} access to {on}. \
             Permission '{permission}' denied on resource (or it may not exist).",
            caller.principal.trim_start_matches("serviceAccount:")
        )));
    }
    if !metadata_str(metadata, "x-goog-api-client").is_some_and(|v| v.contains("gl-rust/")) {
        return Err(Status::invalid_argument(
            "missing x-goog-api-client metadata (expected the Rust client library's gl-rust/...)",
        ));
    }
    let routing = metadata_str(metadata, "x-goog-request-params").unwrap_or_default();
    let (key, value) = request.routing();
    if routing_param(&routing, key).as_deref() != Some(value) {
        return Err(Status::invalid_argument(format!(
            "x-goog-request-params must route {key}={value:?}, got {routing:?}"
        )));
    }
    request.handle(state.clone()).await
}

impl Rpc for ListBucketsRequest {
    type Response = ListBucketsResponse;
    const PATH: &'static str = LIST_BUCKETS;
    const PERMISSION: &'static str = "storage.buckets.list";
    const WRITE: bool = false;

    fn describe(&self, record: &mut StorageRequestRecord) {
        record.parent = Some(self.parent.clone());
        record.page_size = Some(self.page_size);
        record.page_token = Some(self.page_token.clone());
        record.prefix = Some(self.prefix.clone());
    }

    fn routing(&self) -> (&'static str, &str) {
        ("project", &self.parent)
    }

    fn handle(self, state: Arc<StorageState>) -> BoxFuture<Result<Self::Response, Status>> {
        Box::pin(async move { list_buckets(&state, &self).await })
    }
}

async fn list_buckets(
    state: &StorageState,
    request: &ListBucketsRequest,
) -> Result<ListBucketsResponse, Status> {
    let config = &state.config;
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

    let all = match &state.backend {
        Some(backend) => backend.bucket_names(&config.project_id).await?,
        None => config.buckets.clone(),
    };
    let mut names: Vec<&String> = all
        .iter()
        .filter(|b| b.starts_with(&request.prefix))
        .collect();
    names.sort();
    names.dedup();
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

impl Rpc for ListObjectsRequest {
    type Response = ListObjectsResponse;
    const PATH: &'static str = LIST_OBJECTS;
    const PERMISSION: &'static str = "storage.objects.list";
    const WRITE: bool = false;

    fn describe(&self, record: &mut StorageRequestRecord) {
        record.parent = Some(self.parent.clone());
        record.page_size = Some(self.page_size);
        record.page_token = Some(self.page_token.clone());
        record.prefix = Some(self.prefix.clone());
        record.delimiter = Some(self.delimiter.clone());
    }

    fn routing(&self) -> (&'static str, &str) {
        ("bucket", &self.parent)
    }

    fn handle(self, state: Arc<StorageState>) -> BoxFuture<Result<Self::Response, Status>> {
        Box::pin(async move { list_objects(&state, self).await })
    }
}

async fn list_objects(
    state: &StorageState,
    request: ListObjectsRequest,
) -> Result<ListObjectsResponse, Status> {
    let bucket_id = bucket_id(&request.parent, "parent")?;
    let unsupported = [
        ("versions", request.versions),
        ("soft_deleted", request.soft_deleted),
        (
            "include_folders_as_prefixes",
            request.include_folders_as_prefixes,
        ),
        (
            "include_trailing_delimiter",
            request.include_trailing_delimiter,
        ),
        ("lexicographic_end", !request.lexicographic_end.is_empty()),
        ("match_glob", !request.match_glob.is_empty()),
        ("filter", !request.filter.is_empty()),
    ];
    if let Some((field, _)) = unsupported.iter().find(|(_, set)| *set) {
        return Err(Status::unimplemented(format!(
            "ListObjects.{field} is not supported by the fake"
        )));
    }
    let page_size = match usize::try_from(request.page_size) {
        Ok(0) => MAX_PAGE_SIZE,
        Ok(n) => n.min(MAX_PAGE_SIZE),
        Err(_) => return Err(Status::invalid_argument("page_size must not be negative.")),
    };
    let mut query = vec![("maxResults", page_size.to_string())];
    for (key, value) in [
        ("prefix", &request.prefix),
        ("delimiter", &request.delimiter),
        ("pageToken", &request.page_token),
        // Inclusive, like the JSON API's startOffset.
        ("startOffset", &request.lexicographic_start),
    ] {
        if !value.is_empty() {
            query.push((key, value.clone()));
        }
    }
    let path = format!("/storage/v1/b/{}/o", encode(bucket_id));
    let listing = state
        .backend()?
        .get(&path, &query)
        .await
        .map_err(|e| e.status(|| bucket_not_found(bucket_id)))?;
    let objects = listing["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|item| object_from_json(item).map(|o| state.as_stored(bucket_id, o)))
                .collect()
        })
        .transpose()?
        .unwrap_or_default();
    let prefixes = listing["prefixes"]
        .as_array()
        .map(|p| {
            p.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    Ok(ListObjectsResponse {
        objects,
        prefixes,
        next_page_token: listing["nextPageToken"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    })
}

/// The generation and metageneration preconditions of a request.
#[derive(Clone, Copy, Debug, Default)]
struct Preconditions {
    if_generation_match: Option<i64>,
    if_generation_not_match: Option<i64>,
    if_metageneration_match: Option<i64>,
    if_metageneration_not_match: Option<i64>,
}

impl Preconditions {
    fn any(&self) -> bool {
        self.if_generation_match.is_some()
            || self.if_generation_not_match.is_some()
            || self.if_metageneration_match.is_some()
            || self.if_metageneration_not_match.is_some()
    }

    fn record(&self, record: &mut StorageRequestRecord) {
        record.if_generation_match = self.if_generation_match;
        record.if_generation_not_match = self.if_generation_not_match;
        record.if_metageneration_match = self.if_metageneration_match;
        record.if_metageneration_not_match = self.if_metageneration_not_match;
    }

    /// `FAILED_PRECONDITION` unless `object` satisfies every precondition.
    fn check(&self, object: &Object) -> Result<(), Status> {
        let holds = self
            .if_generation_match
            .is_none_or(|g| g == object.generation)
            && self
                .if_generation_not_match
                .is_none_or(|g| g != object.generation)
            && self
                .if_metageneration_match
                .is_none_or(|m| m == object.metageneration)
            && self
                .if_metageneration_not_match
                .is_none_or(|m| m != object.metageneration);
        if holds {
            Ok(())
        } else {
            Err(Status::failed_precondition(PRECONDITION_FAILED))
        }
    }
}

impl Rpc for GetObjectRequest {
    type Response = Object;
    const PATH: &'static str = GET_OBJECT;
    const PERMISSION: &'static str = "storage.objects.get";
    const WRITE: bool = false;

    fn describe(&self, record: &mut StorageRequestRecord) {
        record.bucket = Some(self.bucket.clone());
        record.object = Some(self.object.clone());
        record.generation = Some(self.generation);
        self.preconditions().record(record);
    }

    fn routing(&self) -> (&'static str, &str) {
        ("bucket", &self.bucket)
    }

    fn handle(self, state: Arc<StorageState>) -> BoxFuture<Result<Self::Response, Status>> {
        Box::pin(async move {
            if self.soft_deleted == Some(true) || !self.restore_token.is_empty() {
                return Err(Status::unimplemented(
                    "GetObject of soft-deleted objects is not supported by the fake",
                ));
            }
            let bucket_id = bucket_id(&self.bucket, "bucket")?;
            let object = get_object(&state, bucket_id, &self.object, self.generation).await?;
            self.preconditions().check(&object)?;
            Ok(object)
        })
    }
}

impl GetObjectRequest {
    fn preconditions(&self) -> Preconditions {
        Preconditions {
            if_generation_match: self.if_generation_match,
            if_generation_not_match: self.if_generation_not_match,
            if_metageneration_match: self.if_metageneration_match,
            if_metageneration_not_match: self.if_metageneration_not_match,
        }
    }
}

impl Rpc for DeleteObjectRequest {
    type Response = Empty;
    const PATH: &'static str = DELETE_OBJECT;
    const PERMISSION: &'static str = "storage.objects.delete";
    const WRITE: bool = true;

    fn describe(&self, record: &mut StorageRequestRecord) {
        record.bucket = Some(self.bucket.clone());
        record.object = Some(self.object.clone());
        record.generation = Some(self.generation);
        self.preconditions().record(record);
    }

    fn routing(&self) -> (&'static str, &str) {
        ("bucket", &self.bucket)
    }

    fn handle(self, state: Arc<StorageState>) -> BoxFuture<Result<Self::Response, Status>> {
        Box::pin(async move {
            let bucket_id = bucket_id(&self.bucket, "bucket")?;
            let preconditions = self.preconditions();
            // fake-gcs-server ignores ifGenerationMatch & co. on DELETE:
            // read the object, check here, then delete exactly that generation.
            let object = get_object(&state, bucket_id, &self.object, self.generation).await?;
            preconditions.check(&object)?;
            let path = object_path(bucket_id, &self.object);
            let generation = object.generation.to_string();
            match state
                .backend()?
                .delete(&path, &[("generation", generation)])
                .await
            {
                Ok(()) => Ok(Empty {}),
                // Replaced or deleted since the read.
                Err(BackendError::Status(404, _)) if preconditions.any() => {
                    Err(Status::failed_precondition(PRECONDITION_FAILED))
                }
                Err(e) => Err(e.status(|| no_such_object(bucket_id, &self.object))),
            }
        })
    }
}

impl DeleteObjectRequest {
    fn preconditions(&self) -> Preconditions {
        Preconditions {
            if_generation_match: self.if_generation_match,
            if_generation_not_match: self.if_generation_not_match,
            if_metageneration_match: self.if_metageneration_match,
            if_metageneration_not_match: self.if_metageneration_not_match,
        }
    }
}

impl Rpc for ComposeObjectRequest {
    type Response = Object;
    const PATH: &'static str = COMPOSE_OBJECT;
    const PERMISSION: &'static str = "storage.objects.create";
    const WRITE: bool = true;

    fn describe(&self, record: &mut StorageRequestRecord) {
        if let Some(d) = &self.destination {
            record.bucket = Some(d.bucket.clone());
            record.object = Some(d.name.clone());
        }
        record.sources = self.source_objects.iter().map(|s| s.name.clone()).collect();
        record.if_generation_match = self.if_generation_match;
        record.if_metageneration_match = self.if_metageneration_match;
    }

    fn routing(&self) -> (&'static str, &str) {
        (
            "bucket",
            self.destination.as_ref().map_or("", |d| d.bucket.as_str()),
        )
    }

    fn handle(self, state: Arc<StorageState>) -> BoxFuture<Result<Self::Response, Status>> {
        Box::pin(async move { compose_object(&state, self).await })
    }
}

/// `ComposeObject`, checked like Cloud Storage (1 to 32 existing sources, their
/// generation preconditions, the destination's preconditions), then composed by the
/// backend's JSON API, which ignores preconditions (checked here, read-then-compose).
async fn compose_object(
    state: &StorageState,
    request: ComposeObjectRequest,
) -> Result<Object, Status> {
    let unsupported = [
        (
            "destination_predefined_acl",
            !request.destination_predefined_acl.is_empty(),
        ),
        ("kms_key", !request.kms_key.is_empty()),
        (
            "common_object_request_params",
            request.common_object_request_params.is_some(),
        ),
        ("object_checksums", request.object_checksums.is_some()),
        (
            "delete_source_objects",
            request.delete_source_objects == Some(true),
        ),
    ];
    if let Some((field, _)) = unsupported.iter().find(|(_, set)| *set) {
        return Err(Status::unimplemented(format!(
            "ComposeObject.{field} is not supported by the fake"
        )));
    }
    let destination = request
        .destination
        .ok_or_else(|| Status::invalid_argument("destination is required."))?;
    let bucket_id = bucket_id(&destination.bucket, "destination.bucket")?;
    if destination.name.is_empty() {
        return Err(Status::invalid_argument(
            "destination.name must not be empty.",
        ));
    }
    let count = request.source_objects.len();
    if count == 0 {
        return Err(Status::invalid_argument(
            "source_objects must not be empty.",
        ));
    }
    if count > MAX_COMPOSE_SOURCES {
        return Err(Status::invalid_argument(format!(
            "The number of source components provided ({count}) exceeds the maximum \
             ({MAX_COMPOSE_SOURCES})."
        )));
    }
    let mut sources = Vec::with_capacity(count);
    for source in &request.source_objects {
        let object = get_object(state, bucket_id, &source.name, source.generation).await?;
        if let Some(want) = source
            .object_preconditions
            .and_then(|p| p.if_generation_match)
            && want != object.generation
        {
            return Err(Status::failed_precondition(PRECONDITION_FAILED));
        }
        let mut json = serde_json::json!({"name": source.name});
        if source.generation != 0 {
            json["generation"] = source.generation.to_string().into();
        }
        sources.push(json);
    }
    if request.if_generation_match.is_some() || request.if_metageneration_match.is_some() {
        let preconditions = Preconditions {
            if_generation_match: request.if_generation_match,
            if_metageneration_match: request.if_metageneration_match,
            ..Preconditions::default()
        };
        match get_object(state, bucket_id, &destination.name, 0).await {
            Ok(current) => preconditions.check(&current)?,
            Err(status) if status.code() == Code::NotFound => {
                if request.if_generation_match != Some(0) {
                    return Err(Status::failed_precondition(PRECONDITION_FAILED));
                }
            }
            Err(status) => return Err(status),
        }
    }
    let mut resource = serde_json::Map::new();
    for (key, value) in [
        ("contentType", &destination.content_type),
        ("contentEncoding", &destination.content_encoding),
        ("contentDisposition", &destination.content_disposition),
        ("contentLanguage", &destination.content_language),
        ("cacheControl", &destination.cache_control),
    ] {
        if !value.is_empty() {
            resource.insert(key.into(), value.clone().into());
        }
    }
    if !destination.metadata.is_empty() {
        resource.insert("metadata".into(), serde_json::json!(destination.metadata));
    }
    let body = serde_json::json!({"sourceObjects": sources, "destination": resource});
    let path = format!("{}/compose", object_path(bucket_id, &destination.name));
    let json = state
        .backend()?
        .post(&path, &body)
        .await
        .map_err(|e| e.status(|| no_such_object(bucket_id, &destination.name)))?;
    let object = object_from_json(&json)?;
    lock(&state.composites).insert(
        (
            bucket_id.to_string(),
            object.name.clone(),
            object.generation,
        ),
        i32::try_from(count).unwrap_or(i32::MAX),
    );
    Ok(state.as_stored(bucket_id, object))
}

/// The live (`generation == 0`) or given generation of an object.
async fn get_object(
    state: &StorageState,
    bucket_id: &str,
    object: &str,
    generation: i64,
) -> Result<Object, Status> {
    if object.is_empty() {
        return Err(Status::invalid_argument("object must not be empty."));
    }
    let mut query = Vec::new();
    if generation != 0 {
        query.push(("generation", generation.to_string()));
    }
    let json = state
        .backend()?
        .get(&object_path(bucket_id, object), &query)
        .await
        .map_err(|e| e.status(|| no_such_object(bucket_id, object)))?;
    Ok(state.as_stored(bucket_id, object_from_json(&json)?))
}

fn no_such_object(bucket_id: &str, object: &str) -> Status {
    Status::not_found(format!("No such object: {bucket_id}/{object}"))
}

fn bucket_not_found(bucket_id: &str) -> Status {
    Status::not_found(format!("The specified bucket does not exist: {bucket_id}"))
}

/// `B` of `projects/_/buckets/B`.
fn bucket_id<'a>(name: &'a str, field: &str) -> Result<&'a str, Status> {
    name.strip_prefix(BUCKET_PREFIX)
        .filter(|b| !b.is_empty() && !b.contains('/'))
        .ok_or_else(|| {
            Status::invalid_argument(format!(
                "Invalid {field} {name:?}: expected projects/_/buckets/{{bucket}}."
            ))
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
mod tests;
