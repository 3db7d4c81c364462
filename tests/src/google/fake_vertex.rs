//! Fake Vertex AI `generateContent`
//! (`POST /v1/projects/{project}/locations/{location}/publishers/google/models/{model}:generateContent`).
//! Point the code under test at [`FakeVertex::url`] (the real base URL is
//! `https://{location}-aiplatform.googleapis.com`).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde_json::{Map, Value, json};

use crate::faults::{self, Fault, FaultQueue};
use crate::google::token_registry::TokenRegistry;
use crate::server::lock;
use crate::server::{self, BackgroundServer, Body};

/// Largest request body accepted.
const MAX_BODY: usize = 8 << 20;
/// Top-level fields of `GenerateContentRequest` (camelCase and proto names).
const REQUEST_FIELDS: [&str; 16] = [
    "contents",
    "systemInstruction",
    "system_instruction",
    "generationConfig",
    "generation_config",
    "safetySettings",
    "safety_settings",
    "tools",
    "toolConfig",
    "tool_config",
    "labels",
    "cachedContent",
    "cached_content",
    "model",
    "modelArmorConfig",
    "model_armor_config",
];
/// Fields of `GenerationConfig` the fake understands.
const GENERATION_CONFIG_FIELDS: [&str; 22] = [
    "temperature",
    "topP",
    "top_p",
    "topK",
    "top_k",
    "candidateCount",
    "candidate_count",
    "maxOutputTokens",
    "max_output_tokens",
    "stopSequences",
    "stop_sequences",
    "responseMimeType",
    "response_mime_type",
    "presencePenalty",
    "presence_penalty",
    "frequencyPenalty",
    "frequency_penalty",
    "seed",
    "responseSchema",
    "response_schema",
    "thinkingConfig",
    "thinking_config",
];

/// Configuration of [`FakeVertex`].
#[derive(Clone, Debug)]
pub struct FakeVertexConfig {
    /// Project id; the path may name it or [`Self::project_number`].
    pub project_id: String,
    pub project_number: String,
    /// e.g. `us-central1`.
    pub location: String,
    /// e.g. `gemini-2.5-flash`.
    pub model: String,
    /// Fixed reply text; `None` for a deterministic summary mentioning the
    /// prompt's byte count.
    pub reply: Option<String>,
    /// If set, only tokens whose principal is listed may call.
    pub allowed_principals: Option<Vec<String>>,
}

impl Default for FakeVertexConfig {
    fn default() -> Self {
        Self {
            project_id: "my-project".into(),
            project_number: "123456".into(),
            location: "us-central1".into(),
            model: "gemini-2.5-flash".into(),
            reply: None,
            allowed_principals: None,
        }
    }
}

/// What the fake saw in one request (no tokens).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VertexRequestRecord {
    pub method: String,
    pub path: String,
    /// Principal of the caller's (valid) token.
    pub caller: Option<String>,
    /// Text of the user parts, joined with `\n` (if the body parsed).
    pub prompt: Option<String>,
    pub system_instruction: Option<String>,
    pub generation_config: Option<Value>,
    pub status: u16,
    /// `error.status` when failing (`INVALID_ARGUMENT`, ...).
    pub error: Option<String>,
    pub fault: Option<Fault>,
}

#[derive(Debug)]
struct VertexState {
    config: FakeVertexConfig,
    tokens: TokenRegistry,
    faults: FaultQueue,
    calls: AtomicUsize,
    requests: Mutex<Vec<VertexRequestRecord>>,
}

/// Handle to a running fake Vertex AI; dropping it stops it.
#[derive(Debug)]
pub struct FakeVertex {
    state: Arc<VertexState>,
    server: BackgroundServer,
}

impl FakeVertex {
    /// Starts on an ephemeral port of 127.0.0.1, accepting tokens from
    /// `tokens` (cloud-platform scope).
    ///
    /// # Panics
    /// If no port can be bound.
    pub async fn start(config: FakeVertexConfig, tokens: TokenRegistry) -> Self {
        let state = Arc::new(VertexState {
            config,
            tokens,
            faults: FaultQueue::default(),
            calls: AtomicUsize::new(0),
            requests: Mutex::new(Vec::new()),
        });
        let handler_state = state.clone();
        let addr: SocketAddr = ([127, 0, 0, 1], 0).into();
        let server = BackgroundServer::spawn("fake-vertex", addr, move |listener| {
            server::serve_http(listener, move |req| {
                Box::pin(handle(handler_state.clone(), req))
            })
        })
        .unwrap_or_else(|e| panic!("FakeVertex: cannot listen on {addr}: {e}"));
        Self { state, server }
    }

    /// Base URL `http://127.0.0.1:PORT` (like `GOOGLE_VERTEX_BASE_URL`).
    pub fn url(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    /// Full `generateContent` URL for the configured project/location/model.
    pub fn generate_content_url(&self) -> String {
        let c = &self.state.config;
        format!(
            "{}/v1/projects/{}/locations/{}/publishers/google/models/{}:generateContent",
            self.url(),
            c.project_id,
            c.location,
            c.model
        )
    }

    pub fn config(&self) -> &FakeVertexConfig {
        &self.state.config
    }

    /// Requests received (including faulted and rejected ones).
    pub fn calls(&self) -> usize {
        self.state.calls.load(Ordering::SeqCst)
    }

    pub fn requests(&self) -> Vec<VertexRequestRecord> {
        lock(&self.state.requests).clone()
    }

    pub fn last_request(&self) -> Option<VertexRequestRecord> {
        lock(&self.state.requests).last().cloned()
    }

    /// The user text of the last request that carried a valid body.
    pub fn last_prompt(&self) -> Option<String> {
        lock(&self.state.requests)
            .iter()
            .rev()
            .find_map(|r| r.prompt.clone())
    }

    /// Queues faults for the next requests (`Status`, `GoogleError` with
    /// `error` as the status name, `Delay`; `CorruptUpload` is ignored).
    pub fn inject_faults(&self, faults: impl IntoIterator<Item = Fault>) {
        self.state.faults.push(faults);
    }
}

/// An error in Google's JSON format.
struct ApiError {
    status: u16,
    name: String,
    message: String,
    details: Vec<Value>,
}

impl ApiError {
    fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            name: faults::status_name(status).into(),
            message: message.into(),
            details: Vec::new(),
        }
    }

    fn invalid(message: impl Into<String>) -> Self {
        let message = message.into();
        let mut e = Self::new(400, message.clone());
        e.details = vec![json!({
            "@type": "type.googleapis.com/google.rpc.BadRequest",
            "fieldViolations": [{ "description": message }],
        })];
        e
    }

    fn response(&self) -> Response<Body> {
        let mut error = json!({
            "code": self.status,
            "message": self.message,
            "status": self.name,
        });
        if !self.details.is_empty() {
            error["details"] = Value::Array(self.details.clone());
        }
        server::json_response(
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            &json!({ "error": error }),
        )
    }
}

async fn handle(state: Arc<VertexState>, req: Request<Incoming>) -> Response<Body> {
    state.calls.fetch_add(1, Ordering::SeqCst);
    let mut record = VertexRequestRecord {
        method: req.method().to_string(),
        path: req.uri().path().to_string(),
        ..Default::default()
    };
    let fault = state.faults.next();
    record.fault.clone_from(&fault);
    let result = match fault {
        Some(Fault::Status(status)) => Err(ApiError::new(
            status,
            match status {
                429 => "Resource exhausted. Please try again later. Please refer to \
                        https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429 \
                        for more details."
                    .to_string(),
                503 => "The service is currently unavailable.".to_string(),
                _ => format!("Injected fault: HTTP {status}."),
            },
        )),
        Some(Fault::GoogleError {
            status,
            error,
            description,
        }) => Err(ApiError {
            status,
            name: error,
            message: description,
            details: Vec::new(),
        }),
        Some(Fault::Delay(delay)) => {
            tokio::time::sleep(delay).await;
            generate(&state, req, &mut record).await
        }
        Some(Fault::CorruptUpload) | None => generate(&state, req, &mut record).await,
    };
    let response = match result {
        Ok(body) => server::json_response(StatusCode::OK, &body),
        Err(e) => {
            record.error = Some(e.name.clone());
            e.response()
        }
    };
    record.status = response.status().as_u16();
    lock(&state.requests).push(record);
    response
}

async fn generate(
    state: &VertexState,
    req: Request<Incoming>,
    record: &mut VertexRequestRecord,
) -> Result<Value, ApiError> {
    let config = &state.config;
    // /v1/projects/{p}/locations/{l}/publishers/google/models/{m}:generateContent
    let path = req.uri().path().to_string();
    let parsed = path
        .strip_prefix("/v1/")
        .and_then(|p| p.strip_suffix(":generateContent"))
        .map(|p| p.split('/').collect::<Vec<_>>());
    let Some(
        [
            "projects",
            project,
            "locations",
            location,
            "publishers",
            "google",
            "models",
            model,
        ],
    ) = parsed.as_deref()
    else {
        return Err(ApiError::new(
            404,
            format!("The requested URL {path} was not found on this server."),
        ));
    };
    if req.method() != Method::POST {
        return Err(ApiError::new(405, "Method Not Allowed"));
    }
    let authorization = server::header_str(req.headers(), "authorization");
    let caller = state.tokens.validate_bearer(authorization).ok_or_else(|| {
        let mut e = ApiError::new(
            401,
            "Request had invalid authentication credentials. Expected OAuth 2 access token, \
             login cookie or other valid authentication credential. See \
             https://developers.google.com/identity/sign-in/web/devconsole-project.",
        );
        e.details = vec![json!({
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "ACCESS_TOKEN_TYPE_UNSUPPORTED",
            "domain": "googleapis.com",
        })];
        e
    })?;
    record.caller = Some(caller.principal.clone());
    if !caller.has_scope(crate::google::scopes::CLOUD_PLATFORM_SCOPE) {
        let mut e = ApiError::new(403, "Request had insufficient authentication scopes.");
        e.details = vec![json!({
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
            "domain": "googleapis.com",
            "metadata": { "service": "aiplatform.googleapis.com",
                          "method": "google.cloud.aiplatform.v1.PredictionService.GenerateContent" },
        })];
        return Err(e);
    }
    let resource =
        format!("projects/{project}/locations/{location}/publishers/google/models/{model}");
    if let Some(allowed) = &config.allowed_principals
        && !allowed.iter().any(|m| caller.matches_member(m))
    {
        return Err(ApiError::new(
            403,
            format!(
                "Permission 'aiplatform.endpoints.predict' denied on resource \
                 '//aiplatform.googleapis.com/{resource}' (or it may not exist)."
            ),
        ));
    }
    if (*project != config.project_id && *project != config.project_number)
        || *location != config.location
        || *model != config.model
    {
        return Err(ApiError::new(
            404,
            format!("Publisher Model `{resource}` not found."),
        ));
    }
    let content_type = server::header_str(req.headers(), "content-type").unwrap_or_default();
    if !content_type.starts_with("application/json") {
        return Err(ApiError::invalid(format!(
            "Invalid Content-Type {content_type:?}: expected application/json."
        )));
    }
    let body = Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| ApiError::new(400, format!("cannot read request body: {e}")))?;
    let request = parse_request(&body)?;
    record.prompt = Some(request.prompt.clone());
    record
        .system_instruction
        .clone_from(&request.system_instruction);
    record
        .generation_config
        .clone_from(&request.generation_config);

    let prompt_bytes = request.prompt.len();
    let text = config.reply.clone().unwrap_or_else(|| {
        format!(
            "Summary: the prompt had {prompt_bytes} bytes in {} user part(s).",
            request.user_parts
        )
    });
    let prompt_tokens = prompt_bytes.div_ceil(4);
    let candidate_tokens = text.len().div_ceil(4);
    Ok(json!({
        "candidates": [{
            "content": { "role": "model", "parts": [{ "text": text }] },
            "finishReason": "STOP",
            "avgLogprobs": -0.1,
        }],
        "usageMetadata": {
            "promptTokenCount": prompt_tokens,
            "candidatesTokenCount": candidate_tokens,
            "totalTokenCount": prompt_tokens + candidate_tokens,
        },
        "modelVersion": config.model,
        "createTime": time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        "responseId": format!("fake-{:016x}", fastrand::u64(..)),
    }))
}

struct GenerateRequest {
    prompt: String,
    user_parts: usize,
    system_instruction: Option<String>,
    generation_config: Option<Value>,
}

fn unknown(name: &str, at: Option<&str>) -> ApiError {
    let at = at.map(|a| format!(" at '{a}'")).unwrap_or_default();
    ApiError::invalid(format!(
        "Invalid JSON payload received. Unknown name \"{name}\"{at}: Cannot find field."
    ))
}

fn get<'a>(object: &'a Map<String, Value>, camel: &str, snake: &str) -> Option<&'a Value> {
    object.get(camel).or_else(|| object.get(snake))
}

/// Validates a `GenerateContentRequest` JSON body.
fn parse_request(body: &Bytes) -> Result<GenerateRequest, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid(format!("Invalid JSON payload received. {e}")))?;
    let Value::Object(object) = value else {
        return Err(ApiError::invalid(
            "Invalid JSON payload received. Expected an object.",
        ));
    };
    if let Some(name) = object
        .keys()
        .find(|k| !REQUEST_FIELDS.contains(&k.as_str()))
    {
        return Err(unknown(name, None));
    }
    let contents = object
        .get("contents")
        .and_then(Value::as_array)
        .filter(|c| !c.is_empty())
        .ok_or_else(|| {
            ApiError::invalid("Unable to submit request because it has an empty contents field.")
        })?;
    let mut texts = Vec::new();
    for (i, content) in contents.iter().enumerate() {
        let role = content
            .get("role")
            .and_then(Value::as_str)
            .unwrap_or("user");
        if role != "user" && role != "model" {
            return Err(ApiError::invalid(format!(
                "Please use a valid role: user, model. (contents[{i}].role = {role:?})"
            )));
        }
        let parts = content_texts(content, &format!("contents[{i}]"))?;
        if role == "user" {
            texts.extend(parts);
        }
    }
    if contents
        .last()
        .and_then(|c| c.get("role"))
        .and_then(Value::as_str)
        .is_some_and(|r| r != "user")
    {
        return Err(ApiError::invalid(
            "Please ensure that the last content has the role user.",
        ));
    }
    if texts.is_empty() {
        return Err(ApiError::invalid(
            "Unable to submit request because it must have at least one user text part.",
        ));
    }
    let system_instruction = get(&object, "systemInstruction", "system_instruction")
        .map(|s| content_texts(s, "system_instruction").map(|t| t.join("\n")))
        .transpose()?;
    let generation_config = get(&object, "generationConfig", "generation_config").cloned();
    if let Some(config) = &generation_config {
        let Value::Object(fields) = config else {
            return Err(ApiError::invalid(
                "Invalid JSON payload received. generation_config must be an object.",
            ));
        };
        if let Some(name) = fields
            .keys()
            .find(|k| !GENERATION_CONFIG_FIELDS.contains(&k.as_str()))
        {
            return Err(unknown(name, Some("generation_config")));
        }
        if let Some(t) = get(fields, "temperature", "temperature")
            && !t.as_f64().is_some_and(|t| (0.0..=2.0).contains(&t))
        {
            return Err(ApiError::invalid(
                "temperature must be a number in [0.0, 2.0].",
            ));
        }
        if let Some(m) = get(fields, "maxOutputTokens", "max_output_tokens")
            && m.as_u64().is_none_or(|m| m == 0)
        {
            return Err(ApiError::invalid("max_output_tokens must be positive."));
        }
    }
    let user_parts = texts.len();
    Ok(GenerateRequest {
        prompt: texts.join("\n"),
        user_parts,
        system_instruction,
        generation_config,
    })
}

/// The `text` of every part of a `Content`; each part must be text.
fn content_texts(content: &Value, at: &str) -> Result<Vec<String>, ApiError> {
    let Value::Object(fields) = content else {
        return Err(ApiError::invalid(format!("{at} must be an object.")));
    };
    if let Some(name) = fields.keys().find(|k| *k != "role" && *k != "parts") {
        return Err(unknown(name, Some(at)));
    }
    let parts = fields
        .get("parts")
        .and_then(Value::as_array)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "Unable to submit request because it has an empty parts field ({at})."
            ))
        })?;
    parts
        .iter()
        .enumerate()
        .map(|(j, part)| {
            let text = part.get("text").and_then(Value::as_str);
            match (part.as_object().map(Map::len), text) {
                (Some(1), Some(text)) => Ok(text.to_string()),
                _ => Err(ApiError::invalid(format!(
                    "{at}.parts[{j}] must be a text part ({{\"text\": ...}}); the fake supports only text."
                ))),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::google::token_registry::TokenIssuer;
    use std::time::Duration;

    const SA: &str = "serviceAccount:crossfed@my-project.iam.gserviceaccount.com";

    fn token(tokens: &TokenRegistry, scope: &str) -> String {
        tokens
            .issue(
                TokenIssuer::Test,
                SA,
                vec![],
                vec![scope.into()],
                Duration::from_secs(600),
            )
            .0
    }

    async fn post(url: &str, token: &str, body: &Value) -> (u16, Value) {
        let response = reqwest::Client::new()
            .post(url)
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    fn prompt(text: &str) -> Value {
        json!({ "contents": [{ "role": "user", "parts": [{ "text": text }] }] })
    }

    #[tokio::test]
    async fn generates_and_validates() {
        let tokens = TokenRegistry::new();
        let vertex = FakeVertex::start(FakeVertexConfig::default(), tokens.clone()).await;
        let good = token(&tokens, crate::google::scopes::CLOUD_PLATFORM_SCOPE);
        let url = vertex.generate_content_url();

        let mut body = prompt("héllo");
        body["generationConfig"] = json!({ "temperature": 0.2, "maxOutputTokens": 256 });
        body["systemInstruction"] = json!({ "parts": [{ "text": "Be brief." }] });
        let (status, reply) = post(&url, &good, &body).await;
        assert_eq!(status, 200, "{reply}");
        let text = reply["candidates"][0]["content"]["parts"][0]["text"]
            .as_str()
            .unwrap();
        assert!(text.contains("6 bytes"), "{text}");
        assert_eq!(reply["candidates"][0]["content"]["role"], "model");
        assert_eq!(reply["candidates"][0]["finishReason"], "STOP");
        assert_eq!(reply["modelVersion"], "gemini-2.5-flash");
        assert!(reply["usageMetadata"]["totalTokenCount"].as_u64().unwrap() > 0);
        assert_eq!(vertex.last_prompt().as_deref(), Some("héllo"));
        let last = vertex.last_request().unwrap();
        assert_eq!(last.system_instruction.as_deref(), Some("Be brief."));
        assert_eq!(last.caller.as_deref(), Some(SA));

        // Strictness.
        let mut extra = prompt("x");
        extra["temprature"] = json!(1);
        let (status, err) = post(&url, &good, &extra).await;
        assert_eq!(
            (status, err["error"]["status"].as_str()),
            (400, Some("INVALID_ARGUMENT"))
        );
        assert!(
            err["error"]["message"]
                .as_str()
                .unwrap()
                .contains("temprature")
        );
        let mut bad_config = prompt("x");
        bad_config["generationConfig"] = json!({ "maxTokens": 5 });
        assert_eq!(post(&url, &good, &bad_config).await.0, 400);
        assert_eq!(post(&url, &good, &json!({ "contents": [] })).await.0, 400);
        assert_eq!(
            post(
                &url,
                &good,
                &json!({ "contents": [{ "role": "user", "parts": [] }] })
            )
            .await
            .0,
            400
        );
        let other_model = url.replace("gemini-2.5-flash", "gemini-1.0-pro");
        assert_eq!(post(&other_model, &good, &prompt("x")).await.0, 404);
        let other_project = url.replace("my-project", "other-project");
        assert_eq!(post(&other_project, &good, &prompt("x")).await.0, 404);
        let by_number = url.replace("my-project", "123456");
        assert_eq!(post(&by_number, &good, &prompt("x")).await.0, 200);

        // Auth.
        let (status, err) = post(&url, "ya29.not-issued", &prompt("x")).await;
        assert_eq!(
            (status, err["error"]["status"].as_str()),
            (401, Some("UNAUTHENTICATED"))
        );
        let narrow = token(&tokens, crate::google::scopes::IAM_SCOPE);
        let (status, err) = post(&url, &narrow, &prompt("x")).await;
        assert_eq!(
            (status, err["error"]["status"].as_str()),
            (403, Some("PERMISSION_DENIED"))
        );
        let expired = token(&tokens, crate::google::scopes::CLOUD_PLATFORM_SCOPE);
        tokens.expire(&expired);
        assert_eq!(post(&url, &expired, &prompt("x")).await.0, 401);

        // Faults.
        vertex.inject_faults([
            Fault::Status(503),
            Fault::Status(429),
            Fault::Delay(Duration::from_millis(50)),
        ]);
        let (status, err) = post(&url, &good, &prompt("x")).await;
        assert_eq!(
            (status, err["error"]["status"].as_str()),
            (503, Some("UNAVAILABLE"))
        );
        let (status, err) = post(&url, &good, &prompt("x")).await;
        assert_eq!(
            (status, err["error"]["status"].as_str()),
            (429, Some("RESOURCE_EXHAUSTED"))
        );
        let started = std::time::Instant::now();
        assert_eq!(post(&url, &good, &prompt("after")).await.0, 200);
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert_eq!(vertex.last_prompt().as_deref(), Some("after"));
        assert_eq!(vertex.calls(), 14);
    }

    #[tokio::test]
    async fn configured_reply() {
        let tokens = TokenRegistry::new();
        let config = FakeVertexConfig {
            reply: Some("All in sync.".into()),
            ..Default::default()
        };
        let vertex = FakeVertex::start(config, tokens.clone()).await;
        let (status, reply) = post(
            &vertex.generate_content_url(),
            &token(&tokens, crate::google::scopes::CLOUD_PLATFORM_SCOPE),
            &prompt("report"),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(
            reply["candidates"][0]["content"]["parts"][0]["text"],
            "All in sync."
        );
    }
}
