//! A small typed client for Vertex AI Gemini `generateContent`
//! (`POST {base}/v1/projects/{p}/locations/{l}/publishers/google/models/{m}:generateContent`).
//!
//! Why not the official `google-cloud-aiplatform-v1` crate: it generates the whole
//! AI Platform surface (hundreds of services and messages) and takes far too long to build on
//! a 2-core machine / CI runner for one REST call. This client sends the same JSON, with the
//! bearer token from the crossfed credentials (`AccessTokenCredentialsProvider`).
//!
//! Requests go through the library's Google JSON transport (`crossfed::transport`): every
//! request has a timeout; a 5xx/429 answer, a timeout or a connection failure is retried once
//! (the shared retry policy, two attempts), and Google's error answers are parsed there.

use std::fmt;
use std::time::Duration;

use crossfed::transport::Transport;
use crossfed::{Context, RetryPolicy, Step, Timeouts};
use google_cloud_auth::credentials::AccessTokenCredentials;
use serde::{Deserialize, Serialize};

use crate::settings::VertexSettings;

const DEFAULT_RETRY_DELAY: Duration = Duration::from_secs(1);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(5);
/// One call and one retry.
const ATTEMPTS: usize = 2;

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
    transport: Transport,
    url: String,
    credentials: AccessTokenCredentials,
}

impl VertexClient {
    pub fn new(
        settings: &VertexSettings,
        credentials: AccessTokenCredentials,
    ) -> crossfed::Result<Self> {
        let transport = Context::new()
            .with_timeouts(
                Timeouts::default()
                    .with_total(settings.timeout)
                    .with_connect(settings.timeout.min(Duration::from_secs(10))),
            )
            .with_retry_policy(
                RetryPolicy::default()
                    .with_max_attempts(ATTEMPTS)
                    .with_delays(DEFAULT_RETRY_DELAY, MAX_RETRY_DELAY),
            )
            .transport()?;
        Ok(VertexClient {
            transport,
            url: format!(
                "{}/v1/projects/{}/locations/{}/publishers/google/models/{}:generateContent",
                settings.base_url, settings.project, settings.location, settings.model
            ),
            credentials,
        })
    }

    /// Pause before the retry (tests shorten it).
    pub fn with_retry_delay(mut self, delay: Duration) -> Self {
        let retry = self
            .transport
            .retry_policy()
            .clone()
            .with_delays(delay, delay);
        self.transport = Transport::new(self.transport.client().clone(), retry);
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
        let token = self
            .credentials
            .access_token()
            .await
            .map_err(|e| VertexError::Auth(crossfed_kit::chain(&e)))?;
        let response: GenerateContentResponse = self
            .transport
            .send_json(Step::GoogleApi, "Vertex AI", |http| {
                http.post(&self.url)
                    .bearer_auth(&token.token)
                    .json(&request)
            })
            .await
            .map_err(VertexError::from)?;
        response.text()
    }
}

impl From<crossfed::Error> for VertexError {
    fn from(e: crossfed::Error) -> Self {
        match &e {
            crossfed::Error::Google {
                status,
                code,
                description,
                ..
            } => VertexError::Status {
                status: *status,
                message: format!("{code}: {description}"),
            },
            _ => VertexError::Transport(crossfed_kit::chain(&e)),
        }
    }
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
            &VertexSettings {
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
