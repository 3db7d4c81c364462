//! What the fake STS and IAM Credentials saw in each request (never a token).

use std::collections::BTreeMap;

use crate::faults::Fault;

/// What the fake saw in one STS request. Holds no secrets: the subject token
/// is redacted and only its URL and header names are kept.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StsRequestRecord {
    /// Form fields; `subject_token` is replaced by `<redacted>`.
    pub form: BTreeMap<String, String>,
    pub content_type: Option<String>,
    pub x_goog_api_client: Option<String>,
    pub user_agent: Option<String>,
    /// URL of the serialized AWS request, if the subject token decoded.
    pub subject_token_url: Option<String>,
    /// Lower-cased header names of the serialized AWS request.
    pub subject_token_headers: Vec<String>,
    /// Caller ARN AWS returned for the replayed request.
    pub aws_arn: Option<String>,
    /// Federated principal of the issued token.
    pub principal: Option<String>,
    /// HTTP status returned.
    pub status: u16,
    /// OAuth error code returned, if any.
    pub error: Option<String>,
    /// Set when an injected fault answered the request.
    pub fault: Option<Fault>,
}

impl StsRequestRecord {
    /// A form field (the subject token is always `<redacted>`).
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form.get(name).map(String::as_str)
    }
}

/// What the fake saw in one generateAccessToken or generateIdToken request
/// (no tokens).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IamRequestRecord {
    pub method: String,
    pub path: String,
    /// Service account from the path (percent-decoded).
    pub email: Option<String>,
    /// Request body, if it was valid JSON.
    pub body: Option<serde_json::Value>,
    pub content_type: Option<String>,
    pub x_goog_api_client: Option<String>,
    /// Principal of the caller's (valid) token.
    pub caller: Option<String>,
    pub status: u16,
    /// Google status name of the error (`PERMISSION_DENIED`), if any.
    pub error: Option<String>,
    pub fault: Option<Fault>,
}
