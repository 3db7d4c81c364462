//! A tiny loopback HTTP/1.1 server for the hardening tests: each connection carries one
//! request, answered by a handler and closed. Counts connections and records requests, so
//! tests can prove that a host was (or was not) contacted.

#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One received request.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as `application/x-www-form-urlencoded` pairs.
    pub fn form(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(&self.body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    pub fn form_field(&self, key: &str) -> Option<String> {
        self.form()
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }
}

/// An answer: status, extra headers, body.
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Wait this long before answering (to provoke client timeouts).
    pub delay: Option<Duration>,
}

impl Response {
    pub fn json(status: u16, body: impl Into<String>) -> Self {
        Response {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.into().into_bytes(),
            delay: None,
        }
    }

    pub fn text(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Response {
            status,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: body.into(),
            delay: None,
        }
    }

    pub fn redirect(status: u16, location: &str) -> Self {
        Response {
            status,
            headers: vec![("location".into(), location.into())],
            body: Vec::new(),
            delay: None,
        }
    }
}

type Handler = dyn Fn(&Request) -> Response + Send + Sync;

/// A running server on `127.0.0.1:<ephemeral>`.
pub struct Server {
    pub port: u16,
    connections: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Server {
    /// Starts a server answering every request with `handler`.
    pub async fn start(handler: impl Fn(&Request) -> Response + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let (c, r) = (connections.clone(), requests.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                c.fetch_add(1, Ordering::SeqCst);
                let (handler, requests) = (handler.clone(), r.clone());
                tokio::spawn(async move {
                    let Some(req) = read_request(&mut sock).await else {
                        return;
                    };
                    requests.lock().unwrap().push(req.clone());
                    let resp = handler(&req);
                    if let Some(delay) = resp.delay {
                        tokio::time::sleep(delay).await;
                    }
                    let mut head = format!("HTTP/1.1 {} X\r\n", resp.status);
                    for (k, v) in &resp.headers {
                        head.push_str(&format!("{k}: {v}\r\n"));
                    }
                    head.push_str(&format!(
                        "content-length: {}\r\nconnection: close\r\n\r\n",
                        resp.body.len()
                    ));
                    let _ = sock.write_all(head.as_bytes()).await;
                    let _ = sock.write_all(&resp.body).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        Server {
            port,
            connections,
            requests,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

async fn read_request(sock: &mut tokio::net::TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let path = first.next()?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Request {
        method,
        path,
        headers,
        body,
    })
}

/// A wall clock the test moves by hand.
#[derive(Debug)]
pub struct ManualClock(Mutex<SystemTime>);

impl ManualClock {
    pub fn new() -> Arc<Self> {
        Arc::new(ManualClock(Mutex::new(SystemTime::now())))
    }

    pub fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }

    pub fn set(&self, to: SystemTime) {
        *self.0.lock().unwrap() = to;
    }
}

impl crossfed::Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.0.lock().unwrap()
    }
}

pub const AUDIENCE: &str = "//iam.googleapis.com/projects/123456/locations/global/workloadIdentityPools/pool/providers/aws";
pub const VERIFICATION_URL: &str =
    "https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15";

/// A gcloud-style configuration whose STS is `token_url` (no impersonation).
pub fn config(token_url: &str) -> serde_json::Value {
    serde_json::json!({
        "type": "external_account",
        "audience": AUDIENCE,
        "subject_token_type": "urn:ietf:params:aws:token-type:aws4_request",
        "token_url": token_url,
        "credential_source": {
            "environment_id": "aws1",
            "regional_cred_verification_url": VERIFICATION_URL,
        },
    })
}

/// Static temporary AWS credentials (only used to sign; nothing is sent to AWS).
pub fn aws_credentials() -> aws_credential_types::Credentials {
    aws_credential_types::Credentials::new(
        "ASIAEXAMPLE",
        "secret",
        Some("session".into()),
        None,
        "test",
    )
}

/// An empty environment and quick retries (2 attempts).
pub fn test_context() -> crossfed::Context {
    crossfed::Context::new()
        .with_env_vars::<_, String, String>([])
        .with_retry_policy(
            crossfed::RetryPolicy::default()
                .with_max_attempts(2)
                .with_delays(Duration::from_millis(5), Duration::from_millis(10)),
        )
}

/// A builder for `config` with `ctx`, static AWS credentials and loopback allowed.
pub fn builder_with(
    config: &serde_json::Value,
    ctx: crossfed::Context,
) -> crossfed::google::Builder {
    crossfed::google::Credentials::builder()
        .with_context(ctx)
        .with_config_json(config.to_string())
        .with_aws_identity(aws_credentials(), "us-east-1")
        .with_allow_local_endpoints(true)
}

/// [`builder_with`] the [`test_context`].
pub fn builder(config: &serde_json::Value) -> crossfed::google::Builder {
    builder_with(config, test_context())
}

/// Checks a token-exchange request the way Google STS would, before answering `ok`.
pub fn sts_handler(
    ok: impl Fn(usize) -> Response + Send + Sync + 'static,
) -> impl Fn(&Request) -> Response + Send + Sync + 'static {
    let calls = AtomicUsize::new(0);
    move |req| {
        let fields = [
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            ("audience", AUDIENCE),
            (
                "subject_token_type",
                "urn:ietf:params:aws:token-type:aws4_request",
            ),
            (
                "requested_token_type",
                "urn:ietf:params:oauth:token-type:access_token",
            ),
        ];
        if req.method != "POST" || req.path != "/v1/token" {
            return Response::json(404, r#"{"error":"not_found"}"#);
        }
        for (k, v) in fields {
            if req.form_field(k).as_deref() != Some(v) {
                return Response::json(
                    400,
                    format!(r#"{{"error":"invalid_request","error_description":"bad {k}"}}"#),
                );
            }
        }
        let subject = req.form_field("subject_token").unwrap_or_default();
        let decoded = percent_encoding::percent_decode_str(&subject).decode_utf8_lossy();
        let parsed: serde_json::Value = serde_json::from_str(&decoded).unwrap_or_default();
        if parsed["method"] != "POST" || !parsed["headers"].is_array() {
            return Response::json(
                400,
                r#"{"error":"invalid_grant","error_description":"bad subject token"}"#,
            );
        }
        ok(calls.fetch_add(1, Ordering::SeqCst) + 1)
    }
}

/// An STS answer with `expires_in`.
pub fn sts_token(n: usize, expires_in: u64) -> Response {
    Response::json(
        200,
        format!(
            r#"{{"access_token":"fed-{n}","issued_token_type":"urn:ietf:params:oauth:token-type:access_token","token_type":"Bearer","expires_in":{expires_in}}}"#
        ),
    )
}
