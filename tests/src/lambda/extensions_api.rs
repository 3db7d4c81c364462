//! The Lambda Extensions API (<https://docs.aws.amazon.com/lambda/latest/dg/runtimes-extensions-api.html>)
//! next to the local Runtime API: external extensions register, poll
//! `event/next` for INVOKE and SHUTDOWN, and report `init/error` / `exit/error`.
//! Served on the same address as [`crate::lambda::runtime_api::LambdaRuntimeApi`], like Lambda does.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use http::{HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::lambda::error::LambdaError;
use crate::server::lock;
use crate::server::{self, Body};

pub(crate) const EXTENSION_PREFIX: &str = "/2020-01-01/extension";
const ID_HEADER: &str = "lambda-extension-identifier";

/// A registered extension, as the test sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisteredExtension {
    /// `Lambda-Extension-Name` (the file name under `/opt/extensions`).
    pub name: String,
    /// Events it subscribed to (`INVOKE`, `SHUTDOWN`).
    pub events: Vec<String>,
    /// Whether the probe address accepted a connection at registration time.
    pub probe_connected: Option<bool>,
}

struct Extension {
    id: String,
    info: RegisteredExtension,
    events: mpsc::UnboundedSender<Value>,
    inbox: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Value>>>,
}

/// Extensions API state shared with the Runtime API server.
#[derive(Default)]
pub(crate) struct ExtensionsState {
    extensions: Mutex<Vec<Extension>>,
    init_errors: Mutex<Vec<LambdaError>>,
    exit_errors: Mutex<Vec<LambdaError>>,
    probe: Mutex<Option<SocketAddr>>,
    polls: AtomicUsize,
    function_name: String,
    /// Lambda Managed Instances: extensions may register for SHUTDOWN only.
    managed_instances: bool,
}

impl std::fmt::Debug for ExtensionsState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExtensionsState").finish_non_exhaustive()
    }
}

impl ExtensionsState {
    pub(crate) fn new(function_name: &str, managed_instances: bool) -> Self {
        ExtensionsState {
            function_name: function_name.to_string(),
            managed_instances,
            ..Self::default()
        }
    }

    fn broadcast(&self, event_type: &str, event: Value) {
        for ext in lock(&self.extensions).iter() {
            if ext.info.events.iter().any(|e| e == event_type) {
                let _ = ext.events.send(event.clone());
            }
        }
    }

    /// Sends INVOKE to the subscribed extensions (Lambda does so with the runtime's event).
    pub(crate) fn invoke(&self, request_id: &str, deadline: SystemTime, function_arn: &str) {
        self.broadcast(
            "INVOKE",
            json!({
                "eventType": "INVOKE",
                "deadlineMs": millis(deadline),
                "requestId": request_id,
                "invokedFunctionArn": function_arn,
                "tracing": {"type": "X-Amzn-Trace-Id", "value": "Root=1-00000000-000000000000000000000000;Sampled=0"},
            }),
        );
    }

    pub(crate) fn shutdown(&self, reason: &str, budget: Duration) {
        self.broadcast(
            "SHUTDOWN",
            json!({
                "eventType": "SHUTDOWN",
                "shutdownReason": reason,
                "deadlineMs": millis(SystemTime::now() + budget),
            }),
        );
    }

    pub(crate) fn registered(&self) -> Vec<RegisteredExtension> {
        lock(&self.extensions)
            .iter()
            .map(|e| e.info.clone())
            .collect()
    }

    pub(crate) fn init_errors(&self) -> Vec<LambdaError> {
        lock(&self.init_errors).clone()
    }

    pub(crate) fn exit_errors(&self) -> Vec<LambdaError> {
        lock(&self.exit_errors).clone()
    }

    pub(crate) fn set_probe(&self, addr: SocketAddr) {
        *lock(&self.probe) = Some(addr);
    }

    pub(crate) fn polls(&self) -> usize {
        self.polls.load(Ordering::SeqCst)
    }
}

fn millis(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

/// Routes `/2020-01-01/extension/...`.
pub(crate) async fn route(state: &ExtensionsState, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    let rest = path.strip_prefix(EXTENSION_PREFIX).unwrap_or_default();
    match (req.method().clone(), rest) {
        (Method::POST, "/register") => register(state, req).await,
        (Method::GET, "/event/next") => {
            let Some(inbox) = inbox(state, &req) else {
                return forbidden();
            };
            state.polls.fetch_add(1, Ordering::SeqCst);
            let event = inbox.lock().await.recv().await;
            match event {
                Some(event) => server::json_response(StatusCode::OK, &event),
                None => forbidden(),
            }
        }
        (Method::POST, "/init/error" | "/exit/error") => {
            if inbox(state, &req).is_none() {
                return forbidden();
            }
            let error_type =
                server::header_str(req.headers(), "lambda-extension-function-error-type")
                    .unwrap_or_default()
                    .to_string();
            if error_type.is_empty() {
                return error(
                    StatusCode::BAD_REQUEST,
                    "InvalidRequest",
                    "missing Lambda-Extension-Function-Error-Type",
                );
            }
            let body = server::read_body(req.into_body()).await.unwrap_or_default();
            let message = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v["errorMessage"].as_str().map(str::to_string))
                .unwrap_or_default();
            let recorded = LambdaError::Init {
                error_type,
                error_message: message,
            };
            if rest == "/init/error" {
                lock(&state.init_errors).push(recorded);
            } else {
                lock(&state.exit_errors).push(recorded);
            }
            server::json_response(StatusCode::ACCEPTED, &json!({"status": "OK"}))
        }
        _ => error(
            StatusCode::NOT_FOUND,
            "NotFound",
            "Unknown Extensions API path",
        ),
    }
}

fn inbox(
    state: &ExtensionsState,
    req: &Request<Incoming>,
) -> Option<Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Value>>>> {
    let id = server::header_str(req.headers(), ID_HEADER)?;
    lock(&state.extensions)
        .iter()
        .find(|e| e.id == id)
        .map(|e| e.inbox.clone())
}

async fn register(state: &ExtensionsState, req: Request<Incoming>) -> Response<Body> {
    let Some(name) = server::header_str(req.headers(), "lambda-extension-name").map(str::to_string)
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            "missing Lambda-Extension-Name",
        );
    };
    let body = server::read_body(req.into_body()).await.unwrap_or_default();
    let events: Vec<String> = match serde_json::from_slice::<Value>(&body) {
        Ok(v) => match v["events"].as_array() {
            Some(events) => events
                .iter()
                .filter_map(|e| e.as_str().map(str::to_string))
                .collect(),
            None => Vec::new(),
        },
        Err(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "InvalidRequest",
                "body is not JSON",
            );
        }
    };
    if events.iter().any(|e| e != "INVOKE" && e != "SHUTDOWN") {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            "unknown event type",
        );
    }
    if state.managed_instances && events.iter().any(|e| e == "INVOKE") {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            "INVOKE is not supported for extensions on Lambda Managed Instances: register for SHUTDOWN only",
        );
    }
    if lock(&state.extensions).iter().any(|e| e.info.name == name) {
        return error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "extension already registered",
        );
    }
    let probe = *lock(&state.probe);
    let probe_connected = match probe {
        Some(addr) => Some(
            tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(addr))
                .await
                .is_ok_and(|r| r.is_ok()),
        ),
        None => None,
    };
    let id = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
    let (events_tx, inbox) = mpsc::unbounded_channel();
    lock(&state.extensions).push(Extension {
        id: id.clone(),
        info: RegisteredExtension {
            name,
            events,
            probe_connected,
        },
        events: events_tx,
        inbox: Arc::new(tokio::sync::Mutex::new(inbox)),
    });
    let mut response = server::json_response(
        StatusCode::OK,
        &json!({
            "functionName": state.function_name,
            "functionVersion": "$LATEST",
            "handler": "app.handler",
        }),
    );
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(ID_HEADER, value);
    }
    response
}

fn forbidden() -> Response<Body> {
    error(
        StatusCode::FORBIDDEN,
        "Extension.UnknownExtensionIdentifier",
        "unknown or missing Lambda-Extension-Identifier",
    )
}

fn error(status: StatusCode, error_type: &str, message: &str) -> Response<Body> {
    server::json_response(
        status,
        &json!({"errorType": error_type, "errorMessage": message}),
    )
}
