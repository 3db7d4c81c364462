//! A small typed client for Vertex AI Gemini `generateContent`
//! (`POST {base}/v1/projects/{p}/locations/{l}/publishers/google/models/{m}:generateContent`).
//!
//! Why not the official `google-cloud-aiplatform-v1` crate: it generates the whole
//! AI Platform surface (hundreds of services and messages) and takes far too long to build on
//! a 2-core machine / CI runner for one REST call. This client sends the same JSON, with the
//! bearer token from the crossfed credentials (`AccessTokenCredentialsProvider`).
//!
//! Every request has a timeout; a 5xx/429 answer or a connection failure is retried once.

use std::fmt;
use std::time::Duration;

use google_cloud_auth::credentials::AccessTokenCredentials;
use serde::{Deserialize, Serialize};

use crate::config::VertexConfig;

const DEFAULT_RETRY_DELAY: Duration = Duration::from_secs(1);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(5);
const MAX_ERROR_CHARS: usize = 300;

/// Why no summary was produced. Never contains the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VertexError {
    /// No access token (federation failed).
    Auth(String),
    /// Transport failure or timeout.
    Transport(String),
    /// A non-2xx answer.
    Status { status: u16, message: String },
    /// 2xx, but no text (blocked, empty, or not the expected JSON).
    NoText(String),
}

impl fmt::Display for VertexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VertexError::Auth(e) => write!(f, "no Google access token for Vertex AI: {e}"),
            VertexError::Transport(e) => write!(f, "Vertex AI request failed: {e}"),
            VertexError::Status { status, message } => {
                write!(f, "Vertex AI returned HTTP {status}: {message}")
            }
            VertexError::NoText(e) => write!(f, "Vertex AI returned no summary: {e}"),
        }
    }
}

impl std::error::Error for VertexError {}

#[derive(Debug, Serialize, Deserialize, Clone, PartialEq)]
pub struct Part {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, Clone, PartialEq)]
pub struct Content {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default)]
    pub parts: Vec<Part>,
}

#[derive(Debug, Serialize, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GenerationConfig {
    pub temperature: f32,
    pub max_output_tokens: u32,
}

#[derive(Debug, Serialize, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GenerateContentRequest {
    pub contents: Vec<Content>,
    pub generation_config: GenerationConfig,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Candidate {
    #[serde(default)]
    pub content: Option<Content>,
    #[serde(default)]
    pub finish_reason: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PromptFeedback {
    #[serde(default)]
    pub block_reason: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct GenerateContentResponse {
    #[serde(default)]
    pub candidates: Vec<Candidate>,
    #[serde(default)]
    pub prompt_feedback: Option<PromptFeedback>,
}

impl GenerateContentResponse {
    /// The first candidate's text parts, joined.
    pub fn text(&self) -> Result<String, VertexError> {
        if let Some(reason) = self
            .prompt_feedback
            .as_ref()
            .and_then(|f| f.block_reason.as_deref())
        {
            return Err(VertexError::NoText(format!("prompt blocked ({reason})")));
        }
        let candidate = self
            .candidates
            .first()
            .ok_or_else(|| VertexError::NoText("no candidates".into()))?;
        let text: String = candidate
            .content
            .iter()
            .flat_map(|c| &c.parts)
            .filter_map(|p| p.text.as_deref())
            .collect();
        if text.trim().is_empty() {
            return Err(VertexError::NoText(format!(
                "empty candidate (finishReason {})",
                candidate.finish_reason.as_deref().unwrap_or("unknown")
            )));
        }
        Ok(text)
    }
}

/// Calls one model.
#[derive(Clone, Debug)]
pub struct VertexClient {
    http: reqwest::Client,
    url: String,
    credentials: AccessTokenCredentials,
    retry_delay: Duration,
}

impl VertexClient {
    pub fn new(
        config: &VertexConfig,
        credentials: AccessTokenCredentials,
    ) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .build()?;
        Ok(VertexClient {
            http,
            url: format!(
                "{}/v1/projects/{}/locations/{}/publishers/google/models/{}:generateContent",
                config.base_url, config.project, config.location, config.model
            ),
            credentials,
            retry_delay: DEFAULT_RETRY_DELAY,
        })
    }

    /// Pause before the retry when the server gives no `Retry-After` (tests shorten it).
    pub fn with_retry_delay(mut self, delay: Duration) -> Self {
        self.retry_delay = delay;
        self
    }

    /// The `generateContent` URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Generates text for a single-turn `prompt`.
    pub async fn generate(&self, prompt: &str) -> Result<String, VertexError> {
        let request = GenerateContentRequest {
            contents: vec![Content {
                role: Some("user".into()),
                parts: vec![Part {
                    text: Some(prompt.to_string()),
                }],
            }],
            generation_config: GenerationConfig {
                temperature: 0.2,
                max_output_tokens: 2048,
            },
        };
        match self.attempt(&request).await {
            Err(Attempt::Retry(error, after)) => {
                let delay = after.unwrap_or(self.retry_delay).min(MAX_RETRY_DELAY);
                tracing::warn!(error = %error, ?delay, "Vertex AI call failed; retrying once");
                tokio::time::sleep(delay).await;
                self.attempt(&request).await.map_err(Attempt::into_error)
            }
            other => other.map_err(Attempt::into_error),
        }
    }

    async fn attempt(&self, request: &GenerateContentRequest) -> Result<String, Attempt> {
        let token = self
            .credentials
            .access_token()
            .await
            .map_err(|e| Attempt::Fail(VertexError::Auth(e.to_string())))?;
        let response = self
            .http
            .post(&self.url)
            .bearer_auth(&token.token)
            .json(request)
            .send()
            .await
            .map_err(|e| {
                let error = VertexError::Transport(describe(&e));
                if e.is_connect() {
                    Attempt::Retry(error, None)
                } else {
                    Attempt::Fail(error)
                }
            })?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = response
            .bytes()
            .await
            .map_err(|e| Attempt::Fail(VertexError::Transport(describe(&e))))?;
        if !status.is_success() {
            let error = VertexError::Status {
                status: status.as_u16(),
                message: error_message(&body),
            };
            return Err(if status.is_server_error() || status.as_u16() == 429 {
                Attempt::Retry(error, retry_after)
            } else {
                Attempt::Fail(error)
            });
        }
        let parsed: GenerateContentResponse = serde_json::from_slice(&body)
            .map_err(|e| Attempt::Fail(VertexError::NoText(format!("unexpected response: {e}"))))?;
        parsed.text().map_err(Attempt::Fail)
    }
}

enum Attempt {
    Retry(VertexError, Option<Duration>),
    Fail(VertexError),
}

impl Attempt {
    fn into_error(self) -> VertexError {
        match self {
            Attempt::Retry(e, _) | Attempt::Fail(e) => e,
        }
    }
}

fn describe(e: &reqwest::Error) -> String {
    // Without the URL's query (there is none) and never with headers.
    if e.is_timeout() {
        "timed out".to_string()
    } else {
        let mut text = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            text = format!("{text}: {s}");
            source = s.source();
        }
        text
    }
}

/// Google's `{"error":{"status","message"}}`, or the start of the body.
fn error_message(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Envelope {
        error: Inner,
    }
    #[derive(Deserialize)]
    struct Inner {
        #[serde(default)]
        status: String,
        #[serde(default)]
        message: String,
    }
    let text = match serde_json::from_slice::<Envelope>(body) {
        Ok(Envelope { error }) if !error.status.is_empty() => {
            format!("{}: {}", error.status, error.message)
        }
        Ok(Envelope { error }) => error.message,
        Err(_) => String::from_utf8_lossy(body).trim().to_string(),
    };
    let mut text: String = text.replace(['\n', '\r'], " ");
    if text.chars().count() > MAX_ERROR_CHARS {
        text = text.chars().take(MAX_ERROR_CHARS).collect::<String>() + "…";
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn request_shape() {
        let r = GenerateContentRequest {
            contents: vec![Content {
                role: Some("user".into()),
                parts: vec![Part {
                    text: Some("hi".into()),
                }],
            }],
            generation_config: GenerationConfig {
                temperature: 0.5,
                max_output_tokens: 10,
            },
        };
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({"contents":[{"role":"user","parts":[{"text":"hi"}]}],
                   "generationConfig":{"temperature":0.5,"maxOutputTokens":10}})
        );
    }

    fn parse(v: serde_json::Value) -> Result<String, VertexError> {
        serde_json::from_value::<GenerateContentResponse>(v)
            .unwrap()
            .text()
    }

    #[test]
    fn response_text() {
        let ok = parse(
            json!({"candidates":[{"content":{"role":"model","parts":[{"text":"- a\n"},{"text":"- b"}]},
            "finishReason":"STOP"}],"usageMetadata":{"totalTokenCount":3}}),
        );
        assert_eq!(ok.unwrap(), "- a\n- b");
        let e = parse(json!({"promptFeedback":{"blockReason":"SAFETY"}})).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Vertex AI returned no summary: prompt blocked (SAFETY)"
        );
        let e = parse(json!({"candidates":[{"finishReason":"MAX_TOKENS"}]})).unwrap_err();
        assert!(e.to_string().contains("MAX_TOKENS"), "{e}");
        let e = parse(json!({})).unwrap_err();
        assert!(e.to_string().contains("no candidates"), "{e}");
    }

    #[test]
    fn error_messages() {
        assert_eq!(
            error_message(br#"{"error":{"code":429,"message":"Quota exceeded","status":"RESOURCE_EXHAUSTED"}}"#),
            "RESOURCE_EXHAUSTED: Quota exceeded"
        );
        assert_eq!(
            error_message(b"upstream\nconnect error"),
            "upstream connect error"
        );
        assert!(error_message(&[b'x'; 1000]).ends_with('…'));
    }

    #[test]
    fn url_from_config() {
        #[derive(Debug)]
        struct NoToken;
        impl google_cloud_auth::credentials::CredentialsProvider for NoToken {
            async fn headers(
                &self,
                _: http::Extensions,
            ) -> Result<
                google_cloud_auth::credentials::CacheableResource<http::HeaderMap>,
                google_cloud_auth::errors::CredentialsError,
            > {
                Err(google_cloud_auth::errors::CredentialsError::from_msg(
                    false, "none",
                ))
            }
            async fn universe_domain(&self) -> Option<String> {
                None
            }
        }
        impl google_cloud_auth::credentials::AccessTokenCredentialsProvider for NoToken {
            async fn access_token(
                &self,
            ) -> Result<
                google_cloud_auth::credentials::AccessToken,
                google_cloud_auth::errors::CredentialsError,
            > {
                Err(google_cloud_auth::errors::CredentialsError::from_msg(
                    false, "none",
                ))
            }
        }
        let c = VertexClient::new(
            &VertexConfig {
                base_url: "https://europe-west4-aiplatform.googleapis.com".into(),
                project: "p".into(),
                location: "europe-west4".into(),
                model: "gemini-2.5-flash".into(),
                timeout: Duration::from_secs(5),
            },
            AccessTokenCredentials::from(NoToken),
        )
        .unwrap();
        assert_eq!(
            c.url(),
            "https://europe-west4-aiplatform.googleapis.com/v1/projects/p/locations/europe-west4/publishers/google/models/gemini-2.5-flash:generateContent"
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let e = rt.block_on(c.generate("x")).unwrap_err();
        assert!(matches!(e, VertexError::Auth(_)), "{e}");
    }
}
