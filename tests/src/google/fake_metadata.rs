//! Fake GCE metadata server: the identity endpoint that gives a workload on
//! Google Cloud its service account's ID token.
//!
//! Point the code under test at it with `GCE_METADATA_HOST={host()}`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use serde_json::json;

use crate::faults::{Fault, FaultQueue};
use crate::google::fake_google_config::DEFAULT_SERVICE_ACCOUNT_UNIQUE_ID;
use crate::google::id_tokens::{DEFAULT_ID_TOKEN_LIFETIME, IdTokenIssuer, unix_now};
use crate::server::lock;
use crate::server::{self, BackgroundServer, Body, header_str};

const IDENTITY_PREFIX: &str = "/computeMetadata/v1/instance/service-accounts/";

/// Configuration of [`FakeMetadata`]; see [`Default`] for the example values.
#[derive(Clone, Debug)]
pub struct FakeMetadataConfig {
    /// The instance's (default) service account.
    pub service_account_email: String,
    /// Its unique id: `sub` and `azp` of the ID tokens (21 digits).
    pub unique_id: String,
    /// `exp - iat` of the ID tokens.
    pub token_lifetime: Duration,
}

impl Default for FakeMetadataConfig {
    fn default() -> Self {
        Self {
            service_account_email: "crossfed@my-project.iam.gserviceaccount.com".into(),
            unique_id: DEFAULT_SERVICE_ACCOUNT_UNIQUE_ID.into(),
            token_lifetime: DEFAULT_ID_TOKEN_LIFETIME,
        }
    }
}

impl FakeMetadataConfig {
    /// `my-project` of `sa@my-project.iam.gserviceaccount.com`.
    pub fn project_id(&self) -> String {
        self.service_account_email
            .split_once('@')
            .map(|(_, domain)| domain)
            .and_then(|d| d.strip_suffix(".iam.gserviceaccount.com"))
            .unwrap_or("my-project")
            .to_string()
    }
}

/// What the fake saw in one request (it never records tokens).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetadataRequestRecord {
    pub method: String,
    pub path: String,
    /// Query parameters in order.
    pub query: Vec<(String, String)>,
    /// The `Metadata-Flavor` header, if any.
    pub metadata_flavor: Option<String>,
    pub status: u16,
    pub fault: Option<Fault>,
}

impl MetadataRequestRecord {
    /// First value of a query parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug)]
struct Settings {
    token_lifetime: Duration,
    expired_tokens: bool,
}

#[derive(Debug)]
struct MetadataState {
    config: FakeMetadataConfig,
    issuer: IdTokenIssuer,
    settings: Mutex<Settings>,
    faults: FaultQueue,
    calls: AtomicUsize,
    requests: Mutex<Vec<MetadataRequestRecord>>,
    last_audience: Mutex<Option<String>>,
}

/// Handle to a running fake metadata server; dropping it stops the server.
#[derive(Debug)]
pub struct FakeMetadata {
    state: Arc<MetadataState>,
    server: BackgroundServer,
}

impl FakeMetadata {
    /// Starts on an ephemeral port of 127.0.0.1.
    ///
    /// # Panics
    /// If no port can be bound.
    pub async fn start(config: FakeMetadataConfig) -> Self {
        let addr: SocketAddr = ([127, 0, 0, 1], 0).into();
        let state = Arc::new(MetadataState {
            settings: Mutex::new(Settings {
                token_lifetime: config.token_lifetime,
                expired_tokens: false,
            }),
            config,
            issuer: IdTokenIssuer::new(),
            faults: FaultQueue::default(),
            calls: AtomicUsize::new(0),
            requests: Mutex::new(Vec::new()),
            last_audience: Mutex::new(None),
        });
        let handler_state = state.clone();
        let server = BackgroundServer::spawn("fake-metadata", addr, move |listener| {
            server::serve_http(listener, move |req| {
                let state = handler_state.clone();
                Box::pin(async move { handle(&state, req).await })
            })
        })
        .unwrap_or_else(|e| panic!("FakeMetadata: cannot listen on {addr}: {e}"));
        Self { state, server }
    }

    /// `127.0.0.1:PORT`: the value for `GCE_METADATA_HOST`.
    pub fn host(&self) -> String {
        self.server.addr().to_string()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.host())
    }

    /// `{base_url}/computeMetadata/v1/instance/service-accounts/default/identity`
    /// (without query).
    pub fn identity_url(&self) -> String {
        format!("{}{IDENTITY_PREFIX}default/identity", self.base_url())
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    pub fn config(&self) -> &FakeMetadataConfig {
        &self.state.config
    }

    /// Requests received (any path, including faulted and rejected ones).
    pub fn calls(&self) -> usize {
        self.state.calls.load(Ordering::SeqCst)
    }

    /// Identity requests that returned a token.
    pub fn tokens_issued(&self) -> usize {
        lock(&self.state.requests)
            .iter()
            .filter(|r| r.status == 200 && r.path.ends_with("/identity"))
            .count()
    }

    /// `audience` of the last identity request that had one.
    pub fn last_audience(&self) -> Option<String> {
        lock(&self.state.last_audience).clone()
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<MetadataRequestRecord> {
        lock(&self.state.requests).clone()
    }

    pub fn last_request(&self) -> Option<MetadataRequestRecord> {
        lock(&self.state.requests).last().cloned()
    }

    /// Queues faults for the next requests (one per request, FIFO). `Status`
    /// and `GoogleError` answer with a text/plain body (`description`).
    pub fn inject_faults(&self, faults: impl IntoIterator<Item = Fault>) {
        self.state.faults.push(faults);
    }

    pub fn clear_faults(&self) {
        self.state.faults.clear();
    }

    pub fn pending_faults(&self) -> usize {
        self.state.faults.pending()
    }

    /// Changes `exp - iat` of subsequently minted tokens.
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        lock(&self.state.settings).token_lifetime = lifetime;
    }

    /// While `true`, minted tokens are correctly signed but already expired
    /// (`exp` a minute ago).
    pub fn set_expired_tokens(&self, expired: bool) {
        lock(&self.state.settings).expired_tokens = expired;
    }
}

struct Reply {
    status: StatusCode,
    content_type: &'static str,
    body: String,
}

impl Reply {
    fn text(status: StatusCode, body: impl Into<String>) -> Self {
        Self {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
        }
    }
}

async fn handle(state: &MetadataState, req: Request<Incoming>) -> Response<Body> {
    state.calls.fetch_add(1, Ordering::SeqCst);
    let mut record = MetadataRequestRecord {
        method: req.method().to_string(),
        path: req.uri().path().to_string(),
        query: req
            .uri()
            .query()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default(),
        metadata_flavor: header_str(req.headers(), "metadata-flavor").map(str::to_string),
        ..Default::default()
    };
    let fault = state.faults.next();
    record.fault.clone_from(&fault);
    let reply = match fault {
        Some(Fault::Delay(delay)) => {
            tokio::time::sleep(delay).await;
            answer(state, &req, &record)
        }
        Some(Fault::Status(status)) => Reply::text(
            http_status(status),
            format!("Injected fault: HTTP {status}.\n"),
        ),
        Some(Fault::GoogleError {
            status,
            description,
            ..
        }) => Reply::text(http_status(status), description),
        Some(Fault::CorruptUpload) | None => answer(state, &req, &record),
    };
    record.status = reply.status.as_u16();
    lock(&state.requests).push(record);

    let mut response = Response::new(Body::new(Full::new(Bytes::from(reply.body))));
    *response.status_mut() = reply.status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(reply.content_type),
    );
    headers.insert("metadata-flavor", HeaderValue::from_static("Google"));
    response
}

fn answer(state: &MetadataState, req: &Request<Incoming>, record: &MetadataRequestRecord) -> Reply {
    let path = req.uri().path();
    // The real server refuses proxied requests and requests without the header.
    if req.headers().contains_key("x-forwarded-for")
        || record.metadata_flavor.as_deref() != Some("Google")
    {
        let mut target = path.to_string();
        if let Some(q) = req.uri().query() {
            target = format!("{target}?{q}");
        }
        return Reply {
            status: StatusCode::FORBIDDEN,
            content_type: "text/html; charset=UTF-8",
            body: format!(
                "<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n  \
                 <title>Error 403 (Forbidden)!!1</title>\n  \
                 <p><b>403.</b> <ins>That\u{2019}s an error.</ins>\n  \
                 <p>Your client does not have permission to get URL <code>{target}</code> \
                 from this server. Missing Metadata-Flavor:Google header. \
                 <ins>That\u{2019}s all we know.</ins>\n"
            ),
        };
    }
    if req.method() != Method::GET {
        return Reply::text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed\n");
    }
    let config = &state.config;
    match path {
        "/" => return Reply::text(StatusCode::OK, "computeMetadata/\n"),
        "/computeMetadata/v1" | "/computeMetadata/v1/" => {
            return Reply::text(StatusCode::OK, "instance/\noauth/\nproject/\n");
        }
        "/computeMetadata/v1/project/project-id" => {
            return Reply::text(StatusCode::OK, config.project_id());
        }
        _ => {}
    }
    let Some(leaf) = path
        .strip_prefix(IDENTITY_PREFIX)
        .and_then(|rest| rest.split_once('/'))
        .filter(|(account, _)| *account == "default" || *account == config.service_account_email)
        .map(|(_, leaf)| leaf)
    else {
        return not_found(path);
    };
    match leaf {
        "email" => Reply::text(StatusCode::OK, config.service_account_email.clone()),
        "identity" => identity(state, record),
        _ => not_found(path),
    }
}

fn identity(state: &MetadataState, record: &MetadataRequestRecord) -> Reply {
    let bad = |message: &str| Reply::text(StatusCode::BAD_REQUEST, format!("{message}\n"));
    let audience = record.param("audience").unwrap_or_default();
    if audience.is_empty() {
        return bad("non-empty audience parameter required");
    }
    *lock(&state.last_audience) = Some(audience.to_string());
    let full = match record.param("format") {
        None | Some("standard") => false,
        Some("full") => true,
        Some(_) => return bad("invalid value for format parameter: must be standard or full"),
    };
    let include_email = match record.param("include_email").map(str::to_ascii_lowercase) {
        None => false,
        Some(v) if v == "true" => true,
        Some(v) if v == "false" => false,
        Some(_) => return bad("invalid value for include_email parameter: must be true or false"),
    };
    if let Some(licenses) = record.param("licenses")
        && !licenses.eq_ignore_ascii_case("true")
        && !licenses.eq_ignore_ascii_case("false")
    {
        return bad("invalid value for licenses parameter: must be TRUE or FALSE");
    }

    let config = &state.config;
    let (lifetime, expired) = {
        let s = lock(&state.settings);
        (s.token_lifetime, s.expired_tokens)
    };
    let email = (full && include_email).then_some(config.service_account_email.as_str());
    let issuer = state.issuer.clone().with_lifetime(lifetime);
    let mut claims = issuer.claims(audience, &config.unique_id, email);
    if expired {
        claims.exp = unix_now().saturating_sub(60);
        claims.iat = claims.exp.saturating_sub(lifetime.as_secs());
    }
    if full {
        claims.google = Some(json!({
            "compute_engine": {
                "instance_creation_timestamp": 1_700_000_000,
                "instance_id": "4242424242424242424",
                "instance_name": "crossfed-test-vm",
                "project_id": config.project_id(),
                "project_number": 123456,
                "zone": "us-central1-a",
            }
        }));
    }
    Reply::text(StatusCode::OK, issuer.sign(&claims))
}

fn not_found(path: &str) -> Reply {
    Reply {
        status: StatusCode::NOT_FOUND,
        content_type: "text/html; charset=UTF-8",
        body: format!(
            "<!DOCTYPE html>\n<html lang=en>\n  <title>Error 404 (Not Found)!!1</title>\n  \
             <p><b>404.</b> <ins>That\u{2019}s an error.</ins>\n  \
             <p>The requested URL <code>{path}</code> was not found on this server.  \
             <ins>That\u{2019}s all we know.</ins>\n"
        ),
    }
}

fn http_status(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::google::id_tokens::{self, GOOGLE_ISSUER};

    async fn get(url: &str, flavor: Option<&str>) -> (u16, Option<String>, String) {
        let mut request = reqwest::Client::new().get(url);
        if let Some(flavor) = flavor {
            request = request.header("Metadata-Flavor", flavor);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let header = response
            .headers()
            .get("metadata-flavor")
            .map(|v| v.to_str().unwrap().to_string());
        (status, header, response.text().await.unwrap())
    }

    #[tokio::test]
    async fn identity_endpoint() {
        let md = FakeMetadata::start(FakeMetadataConfig::default()).await;
        let url = md.identity_url();
        let g = Some("Google");

        let (status, flavor, token) = get(
            &format!("{url}?audience=aud-1&format=full&include_email=true"),
            g,
        )
        .await;
        assert_eq!(
            (status, flavor.as_deref()),
            (200, Some("Google")),
            "{token}"
        );
        let claims = id_tokens::verify(&token).unwrap();
        assert_eq!(claims.iss, GOOGLE_ISSUER);
        assert_eq!(claims.aud, "aud-1");
        assert_eq!(claims.sub, DEFAULT_SERVICE_ACCOUNT_UNIQUE_ID);
        assert_eq!(claims.azp, DEFAULT_SERVICE_ACCOUNT_UNIQUE_ID);
        assert_eq!(
            claims.email.as_deref(),
            Some("crossfed@my-project.iam.gserviceaccount.com")
        );
        assert_eq!(claims.email_verified, Some(true));
        assert_eq!(
            claims.google.unwrap()["compute_engine"]["project_id"],
            "my-project"
        );
        assert_eq!(claims.exp - claims.iat, 3600);
        assert_eq!(md.last_audience().as_deref(), Some("aud-1"));

        for query in [
            "audience=a",
            "audience=a&format=standard&include_email=true",
        ] {
            let (status, _, token) = get(&format!("{url}?{query}"), g).await;
            assert_eq!(status, 200);
            let claims = id_tokens::verify(&token).unwrap();
            assert!(claims.email.is_none() && claims.google.is_none(), "{query}");
        }
        let (status, _, token) = get(&format!("{url}?audience=a&format=full"), g).await;
        assert_eq!(status, 200);
        assert!(id_tokens::verify(&token).unwrap().email.is_none());

        let (status, _, body) = get(&format!("{url}?audience=a"), None).await;
        assert_eq!(status, 403);
        assert!(
            body.contains("Missing Metadata-Flavor:Google header"),
            "{body}"
        );
        assert_eq!(
            get(&format!("{url}?audience=a"), Some("google")).await.0,
            403
        );
        let (status, _, body) = get(&url, g).await;
        assert_eq!(
            (status, body.as_str()),
            (400, "non-empty audience parameter required\n")
        );
        assert_eq!(get(&format!("{url}?audience="), g).await.0, 400);
        assert_eq!(get(&format!("{url}?audience=a&format=jwt"), g).await.0, 400);
        let other = format!(
            "{}{IDENTITY_PREFIX}other@p.iam.gserviceaccount.com/identity?audience=a",
            md.base_url()
        );
        assert_eq!(get(&other, g).await.0, 404);
        let by_email = url.replace("default", &md.config().service_account_email);
        assert_eq!(get(&format!("{by_email}?audience=a"), g).await.0, 200);

        md.set_expired_tokens(true);
        let (_, _, token) = get(&format!("{url}?audience=a"), g).await;
        assert!(id_tokens::verify(&token).unwrap().is_expired());
        md.set_expired_tokens(false);
        md.set_token_lifetime(Duration::from_secs(10));
        let (_, _, token) = get(&format!("{url}?audience=a"), g).await;
        let claims = id_tokens::verify(&token).unwrap();
        assert_eq!(claims.exp - claims.iat, 10);

        md.inject_faults([
            Fault::Status(503),
            Fault::GoogleError {
                status: 500,
                error: String::new(),
                description: "boom".into(),
            },
        ]);
        assert_eq!(get(&format!("{url}?audience=a"), g).await.0, 503);
        assert_eq!(
            get(&format!("{url}?audience=a"), g).await,
            (500, Some("Google".into()), "boom".into())
        );
        assert_eq!(md.pending_faults(), 0);
        assert_eq!(md.calls(), 15);
        assert_eq!(md.tokens_issued(), 7);
        let last = md.last_request().unwrap();
        assert_eq!(
            (last.param("audience"), last.status, last.fault.is_some()),
            (Some("a"), 500, true)
        );
        assert!(!format!("{:?}", md.requests()).contains("eyJ"));
    }
}
