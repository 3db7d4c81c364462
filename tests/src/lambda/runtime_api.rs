//! A local AWS Lambda Runtime API
//! (<https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html>), to run
//! a real function binary as a child process with
//! `AWS_LAMBDA_RUNTIME_API=<address()>` and invoke it.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::{Notify, oneshot};

pub use crate::lambda::error::LambdaError;
use crate::lambda::extensions_api::{self, EXTENSION_PREFIX, ExtensionsState, RegisteredExtension};
use crate::server::lock;
use crate::server::{self, BackgroundServer, Body};

const PREFIX: &str = "/2018-06-01/runtime";
/// Default time `invoke` waits for the function's answer.
pub const DEFAULT_INVOKE_TIMEOUT: Duration = Duration::from_secs(30);

type Reply = oneshot::Sender<Result<serde_json::Value, LambdaError>>;

struct Pending {
    id: String,
    event: serde_json::Value,
    deadline: SystemTime,
    reply: Reply,
}

struct LambdaState {
    function_arn: String,
    queue: Mutex<VecDeque<Pending>>,
    queued: Notify,
    in_flight: Mutex<HashMap<String, Reply>>,
    init_error: Mutex<Option<LambdaError>>,
    next_calls: AtomicUsize,
    invocations: AtomicUsize,
    extensions: ExtensionsState,
}

impl fmt::Debug for LambdaState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LambdaState")
            .field("function_arn", &self.function_arn)
            .finish_non_exhaustive()
    }
}

impl LambdaState {
    fn fail(&self, error: &LambdaError) {
        for pending in lock(&self.queue).drain(..) {
            let _ = pending.reply.send(Err(error.clone()));
        }
        for (_, reply) in lock(&self.in_flight).drain() {
            let _ = reply.send(Err(error.clone()));
        }
    }
}

/// Handle to a running Runtime API; dropping it stops the server.
#[derive(Debug)]
pub struct LambdaRuntimeApi {
    state: Arc<LambdaState>,
    server: BackgroundServer,
}

impl LambdaRuntimeApi {
    /// Starts on an ephemeral port, reporting a `list-buckets` function ARN.
    pub async fn start() -> Self {
        Self::start_with_arn("arn:aws:lambda:us-east-1:123456789012:function:list-buckets").await
    }

    /// # Panics
    /// If no port can be bound.
    pub async fn start_with_arn(function_arn: &str) -> Self {
        Self::start_inner(function_arn, false).await
    }

    /// Like [`LambdaRuntimeApi::start_with_arn`], as on Lambda Managed Instances
    /// (`AWS_LAMBDA_INITIALIZATION_TYPE=lambda-managed-instances`): an extension that
    /// registers for INVOKE is refused.
    pub async fn start_managed_instances(function_arn: &str) -> Self {
        Self::start_inner(function_arn, true).await
    }

    async fn start_inner(function_arn: &str, managed_instances: bool) -> Self {
        let state = Arc::new(LambdaState {
            function_arn: function_arn.to_string(),
            queue: Mutex::new(VecDeque::new()),
            queued: Notify::new(),
            in_flight: Mutex::new(HashMap::new()),
            init_error: Mutex::new(None),
            next_calls: AtomicUsize::new(0),
            invocations: AtomicUsize::new(0),
            extensions: ExtensionsState::new(
                function_arn.rsplit(':').next().unwrap_or("function"),
                managed_instances,
            ),
        });
        let handler_state = state.clone();
        let server = BackgroundServer::spawn(
            "lambda-runtime-api",
            ([127, 0, 0, 1], 0).into(),
            move |listener| {
                server::serve_http(listener, move |req| {
                    Box::pin(route(handler_state.clone(), req))
                })
            },
        )
        .expect("LambdaRuntimeApi: bind 127.0.0.1:0");
        Self { state, server }
    }

    /// `127.0.0.1:PORT`, the value for `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        self.server.addr().to_string()
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Invokes the function with `event` and waits up to
    /// [`DEFAULT_INVOKE_TIMEOUT`] for its response.
    pub async fn invoke(&self, event: serde_json::Value) -> Result<serde_json::Value, LambdaError> {
        self.invoke_with_timeout(event, DEFAULT_INVOKE_TIMEOUT)
            .await
    }

    /// Invokes with a deadline of `timeout` (also sent as
    /// `Lambda-Runtime-Deadline-Ms`).
    pub async fn invoke_with_timeout(
        &self,
        event: serde_json::Value,
        timeout: Duration,
    ) -> Result<serde_json::Value, LambdaError> {
        invoke_on(self.state.clone(), event, timeout).await
    }

    /// Invokes the function with every event at once (as many concurrent invocations, each
    /// with [`DEFAULT_INVOKE_TIMEOUT`]); the answers in the events' order.
    pub async fn invoke_all(
        &self,
        events: Vec<serde_json::Value>,
    ) -> Vec<Result<serde_json::Value, LambdaError>> {
        let calls: Vec<_> = events
            .into_iter()
            .map(|event| tokio::spawn(invoke_on(self.state.clone(), event, DEFAULT_INVOKE_TIMEOUT)))
            .collect();
        let mut answers = Vec::with_capacity(calls.len());
        for call in calls {
            answers.push(call.await.unwrap_or(Err(LambdaError::Stopped)));
        }
        answers
    }

    /// Waits up to `timeout` until the runtime has polled `/invocation/next` `n` times;
    /// the count then.
    pub async fn wait_for_next_calls(&self, n: usize, timeout: Duration) -> usize {
        let until = std::time::Instant::now() + timeout;
        while self.next_calls() < n && std::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.next_calls()
    }

    /// The error the runtime reported via `/init/error`, if any.
    pub fn init_error(&self) -> Option<LambdaError> {
        lock(&self.state.init_error).clone()
    }

    /// `GET /invocation/next` calls so far (a runtime polls once per
    /// invocation, plus one waiting call).
    pub fn next_calls(&self) -> usize {
        self.state.next_calls.load(Ordering::SeqCst)
    }

    /// Invocations queued so far.
    pub fn invocations(&self) -> usize {
        self.state.invocations.load(Ordering::SeqCst)
    }

    /// Extensions registered so far (Extensions API).
    pub fn extensions(&self) -> Vec<RegisteredExtension> {
        self.state.extensions.registered()
    }

    /// Waits until `n` extensions have registered (Lambda starts the runtime only then).
    pub async fn wait_for_extensions(&self, n: usize, timeout: Duration) -> bool {
        let until = std::time::Instant::now() + timeout;
        while self.extensions().len() < n {
            if std::time::Instant::now() > until {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }

    /// Errors extensions reported at `/extension/init/error`.
    pub fn extension_init_errors(&self) -> Vec<LambdaError> {
        self.state.extensions.init_errors()
    }

    /// Errors extensions reported at `/extension/exit/error`.
    pub fn extension_exit_errors(&self) -> Vec<LambdaError> {
        self.state.extensions.exit_errors()
    }

    /// `GET /extension/event/next` calls so far.
    pub fn extension_polls(&self) -> usize {
        self.state.extensions.polls()
    }

    /// At each registration, try to connect to `addr` and record whether it was listening.
    pub fn probe_on_register(&self, addr: SocketAddr) {
        self.state.extensions.set_probe(addr);
    }

    /// Sends SHUTDOWN to the subscribed extensions (Lambda gives them 2 s).
    pub fn shutdown_extensions(&self, reason: &str) {
        self.state
            .extensions
            .shutdown(reason, Duration::from_secs(2));
    }
}

impl Drop for LambdaRuntimeApi {
    fn drop(&mut self) {
        self.state.fail(&LambdaError::Stopped);
    }
}

/// One invocation of `event` on the Runtime API `state`, waiting up to `timeout`.
async fn invoke_on(
    state: Arc<LambdaState>,
    event: serde_json::Value,
    timeout: Duration,
) -> Result<serde_json::Value, LambdaError> {
    if let Some(error) = lock(&state.init_error).clone() {
        return Err(error);
    }
    let (reply, response) = oneshot::channel();
    let id = request_id();
    let deadline = SystemTime::now() + timeout;
    lock(&state.queue).push_back(Pending {
        id: id.clone(),
        event,
        deadline,
        reply,
    });
    state.extensions.invoke(&id, deadline, &state.function_arn);
    state.invocations.fetch_add(1, Ordering::SeqCst);
    state.queued.notify_one();
    match tokio::time::timeout(timeout, response).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err(LambdaError::Stopped),
        Err(_) => {
            lock(&state.queue).retain(|p| p.id != id);
            lock(&state.in_flight).remove(&id);
            Err(LambdaError::Timeout(timeout))
        }
    }
}

/// A random UUID-formatted request id.
fn request_id() -> String {
    let hex = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

async fn route(state: Arc<LambdaState>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    if path.starts_with(EXTENSION_PREFIX) {
        return extensions_api::route(&state.extensions, req).await;
    }
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return not_found();
    };
    match (req.method().clone(), rest) {
        (Method::GET, "/invocation/next") => next_invocation(&state).await,
        (Method::POST, "/init/error") => {
            let error = read_error(req).await;
            let error = LambdaError::Init {
                error_type: error.error_type,
                error_message: error.error_message,
            };
            *lock(&state.init_error) = Some(error.clone());
            state.fail(&error);
            accepted()
        }
        (Method::POST, rest) => {
            let Some(rest) = rest.strip_prefix("/invocation/") else {
                return not_found();
            };
            let Some(reply) = (|| {
                let (id, kind) = rest.split_once('/')?;
                let reply = lock(&state.in_flight).remove(id)?;
                Some((kind.to_string(), reply))
            })() else {
                return lambda_error(
                    StatusCode::BAD_REQUEST,
                    "InvalidRequestID",
                    "Invalid request ID",
                );
            };
            match reply {
                (kind, reply) if kind == "response" => {
                    let result = match server::read_body(req.into_body()).await {
                        Ok(body) => serde_json::from_slice(&body)
                            .map_err(|e| LambdaError::InvalidResponse(format!("not JSON: {e}"))),
                        Err(e) => Err(LambdaError::InvalidResponse(e)),
                    };
                    let _ = reply.send(result);
                    accepted()
                }
                (kind, reply) if kind == "error" => {
                    let error = read_error(req).await;
                    let _ = reply.send(Err(LambdaError::Function {
                        error_type: error.error_type,
                        error_message: error.error_message,
                    }));
                    accepted()
                }
                (_, reply) => {
                    let _ = reply.send(Err(LambdaError::InvalidResponse(format!(
                        "unknown path {path}"
                    ))));
                    not_found()
                }
            }
        }
        _ => not_found(),
    }
}

async fn next_invocation(state: &LambdaState) -> Response<Body> {
    state.next_calls.fetch_add(1, Ordering::SeqCst);
    let pending = loop {
        if let Some(pending) = lock(&state.queue).pop_front() {
            break pending;
        }
        state.queued.notified().await;
    };
    let deadline_ms = pending
        .deadline
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    let trace_id = format!(
        "Root=1-{:08x}-{:024x};Parent={:016x};Sampled=0",
        fastrand::u32(..),
        fastrand::u128(..) >> 32,
        fastrand::u64(..)
    );
    lock(&state.in_flight).insert(pending.id.clone(), pending.reply);
    let mut response = Response::new(Body::new(Full::new(Bytes::from(pending.event.to_string()))));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let mut set = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    };
    set("lambda-runtime-aws-request-id", pending.id);
    set("lambda-runtime-deadline-ms", deadline_ms.to_string());
    set(
        "lambda-runtime-invoked-function-arn",
        state.function_arn.clone(),
    );
    set("lambda-runtime-trace-id", trace_id);
    response
}

/// The error document a runtime posts.
#[derive(Debug, Default, Deserialize)]
struct ErrorDocument {
    #[serde(rename = "errorType", default)]
    error_type: String,
    #[serde(rename = "errorMessage", default)]
    error_message: String,
}

async fn read_error(req: Request<Incoming>) -> ErrorDocument {
    let header_type =
        server::header_str(req.headers(), "lambda-runtime-function-error-type").map(str::to_string);
    let body = server::read_body(req.into_body()).await.unwrap_or_default();
    let mut doc: ErrorDocument = serde_json::from_slice(&body).unwrap_or_else(|_| ErrorDocument {
        error_type: String::new(),
        error_message: String::from_utf8_lossy(&body).into_owned(),
    });
    if doc.error_type.is_empty() {
        doc.error_type = header_type.unwrap_or_else(|| "Unknown".into());
    }
    doc
}

fn accepted() -> Response<Body> {
    server::json_response(StatusCode::ACCEPTED, &json!({"status": "OK"}))
}

fn not_found() -> Response<Body> {
    lambda_error(
        StatusCode::NOT_FOUND,
        "NotFound",
        "Unknown Runtime API path",
    )
}

fn lambda_error(status: StatusCode, error_type: &str, message: &str) -> Response<Body> {
    server::json_response(
        status,
        &json!({"errorType": error_type, "errorMessage": message}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Minimal runtime loop over raw HTTP, standing in for `lambda_runtime`.
    async fn runtime_once(
        addr: &str,
        answer: impl Fn(&serde_json::Value) -> (String, serde_json::Value),
    ) {
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let next = client
            .get(format!("http://{addr}{PREFIX}/invocation/next"))
            .send()
            .await
            .unwrap();
        let id = next.headers()["lambda-runtime-aws-request-id"]
            .to_str()
            .unwrap()
            .to_string();
        let deadline: u128 = next.headers()["lambda-runtime-deadline-ms"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            deadline
                > SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap()
                    .as_millis()
        );
        assert!(
            next.headers()
                .contains_key("lambda-runtime-invoked-function-arn")
        );
        assert!(next.headers().contains_key("lambda-runtime-trace-id"));
        let event: serde_json::Value = next.json().await.unwrap();
        let (kind, body) = answer(&event);
        let status = client
            .post(format!("http://{addr}{PREFIX}/invocation/{id}/{kind}"))
            .json(&body)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, StatusCode::ACCEPTED);
    }

    #[tokio::test]
    async fn invoke_response_and_error() {
        let api = LambdaRuntimeApi::start().await;
        let addr = api.address();
        let runtime = tokio::spawn(async move {
            runtime_once(&addr, |e| ("response".into(), json!({"echo": e}))).await;
            runtime_once(&addr, |_| {
                (
                    "error".into(),
                    json!({"errorType": "Boom", "errorMessage": "it broke"}),
                )
            })
            .await;
        });
        assert_eq!(
            api.invoke(json!({"n": 1})).await,
            Ok(json!({"echo": {"n": 1}}))
        );
        assert_eq!(
            api.invoke(json!({})).await,
            Err(LambdaError::Function {
                error_type: "Boom".into(),
                error_message: "it broke".into()
            })
        );
        runtime.await.unwrap();
        assert_eq!(api.invocations(), 2);
    }

    #[tokio::test]
    async fn timeout_and_init_error() {
        let api = LambdaRuntimeApi::start().await;
        let short = Duration::from_millis(50);
        assert_eq!(
            api.invoke_with_timeout(json!({}), short).await,
            Err(LambdaError::Timeout(short))
        );
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let status = client
            .post(format!(
                "http://{}{PREFIX}/invocation/nope/response",
                api.address()
            ))
            .body("{}")
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, StatusCode::BAD_REQUEST);
        client
            .post(format!("http://{}{PREFIX}/init/error", api.address()))
            .json(&json!({"errorType": "Init", "errorMessage": "no config"}))
            .send()
            .await
            .unwrap();
        assert!(matches!(
            api.invoke(json!({})).await,
            Err(LambdaError::Init { .. })
        ));
    }
}
