//! Fake Google STS `POST /v1/token` (token exchange of a signed AWS
//! `GetCallerIdentity` request for a federated access token).

use std::collections::BTreeMap;
use std::time::SystemTime;

use http::{HeaderMap, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::json;

use crate::faults::Fault;
use crate::google::aws_subject_token::{self, AwsSubjectToken, Expectations, OAuthError};
use crate::google::google_state::{GoogleApi, GoogleState};
pub use crate::google::records::StsRequestRecord;
use crate::google::token_registry::TokenIssuer;
use crate::server::lock;
use crate::server::{self, Body, header_str};

pub const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
pub const AWS4_REQUEST_TOKEN_TYPE: &str = "urn:ietf:params:aws:token-type:aws4_request";
/// Google's limit on a mapped `google.subject`, in bytes.
pub const MAX_SUBJECT_BYTES: usize = 127;

/// Form fields STS understands; anything else is rejected.
const KNOWN_FIELDS: [&str; 7] = [
    "grant_type",
    "audience",
    "scope",
    "requested_token_type",
    "subject_token_type",
    "subject_token",
    "options",
];

/// Handles one `POST /v1/token`.
pub(crate) async fn handle(state: &GoogleState, req: Request<Incoming>) -> Response<Body> {
    let fault = state.traffic(GoogleApi::Sts).begin();
    let mut record = StsRequestRecord {
        content_type: header_str(req.headers(), "content-type").map(str::to_string),
        x_goog_api_client: header_str(req.headers(), "x-goog-api-client").map(str::to_string),
        user_agent: header_str(req.headers(), "user-agent").map(str::to_string),
        ..Default::default()
    };
    record.fault.clone_from(&fault);
    let response = match fault {
        Some(Fault::Delay(delay)) => {
            tokio::time::sleep(delay).await;
            exchange(state, req, &mut record).await
        }
        Some(Fault::CorruptUpload) | None => exchange(state, req, &mut record).await,
        Some(fault) => Err(fault_error(&fault)),
    };
    let response = match response {
        Ok(body) => {
            record.status = 200;
            server::json_response(StatusCode::OK, &body)
        }
        Err((status, err)) => {
            record.status = status.as_u16();
            record.error = Some(err.error.clone());
            oauth_error(status, &err)
        }
    };
    lock(&state.sts_requests).push(record);
    response
}

type StsResult = Result<serde_json::Value, (StatusCode, OAuthError)>;

fn bad(err: OAuthError) -> (StatusCode, OAuthError) {
    (StatusCode::BAD_REQUEST, err)
}

async fn exchange(
    state: &GoogleState,
    req: Request<Incoming>,
    record: &mut StsRequestRecord,
) -> StsResult {
    let (parts, body) = req.into_parts();
    let body = server::read_body(body)
        .await
        .map_err(|e| bad(OAuthError::invalid_request(e)))?;
    let form = parse_form(&body).map_err(bad)?;
    record.form = form
        .iter()
        .map(|(k, v)| {
            let v = if k == "subject_token" {
                "<redacted>"
            } else {
                v.as_str()
            };
            (k.clone(), v.to_string())
        })
        .collect();
    check_headers(&parts.headers).map_err(bad)?;
    check_fields(state, &form).map_err(bad)?;
    let scopes = check_scope(form.get("scope").map(String::as_str)).map_err(bad)?;

    let subject = AwsSubjectToken::decode(
        form.get("subject_token")
            .map(String::as_str)
            .unwrap_or_default(),
    )
    .map_err(bad)?;
    record.subject_token_url = Some(subject.url.clone());
    record.subject_token_headers = subject.header_names();
    subject
        .check(&Expectations {
            aws_sts_url: &state.aws_sts_url,
            audience: &state.config.audience,
            now: SystemTime::now() + state.config.clock_offset,
            max_skew: state.config.max_clock_skew,
        })
        .map_err(bad)?;

    let arn = replay(state, &subject).await?;
    record.aws_arn = Some(arn.clone());
    let role = state.config.aws_role_mapping.aws_role(&arn);
    let google_subject = state.config.subject_mapping.subject(&arn);
    check_subject_size(&google_subject).map_err(bad)?;
    if let Some(allowed) = &state.config.allowed_aws_roles
        && !role.as_ref().is_some_and(|r| allowed.contains(r))
    {
        return Err(bad(OAuthError {
            error: "unauthorized_client".into(),
            description: "The given credential is rejected by the attribute condition.".into(),
        }));
    }

    let pool = &state.pool;
    let principal = format!("principal://iam.googleapis.com/{pool}/subject/{google_subject}");
    let mut principal_sets = vec![format!("principalSet://iam.googleapis.com/{pool}/*")];
    if let Some(role) = role {
        principal_sets.insert(
            0,
            format!("principalSet://iam.googleapis.com/{pool}/attribute.aws_role/{role}"),
        );
    }
    let lifetime = state.settings().sts_token_lifetime;
    let (token, _) = state.tokens.issue(
        TokenIssuer::Sts,
        principal.clone(),
        principal_sets,
        scopes,
        lifetime,
    );
    record.principal = Some(principal);
    Ok(json!({
        "access_token": token,
        "issued_token_type": ACCESS_TOKEN_TYPE,
        "token_type": "Bearer",
        "expires_in": lifetime.as_secs(),
    }))
}

/// Google's limit on the mapped subject, with Google's words. (The fake's mappings cannot
/// reach Google's other limits: two attributes, each at most an ARN.)
fn check_subject_size(subject: &str) -> Result<(), OAuthError> {
    if subject.len() > MAX_SUBJECT_BYTES {
        return Err(OAuthError::invalid_request(format!(
            "The size of mapped attribute google.subject exceeds the {MAX_SUBJECT_BYTES} bytes limit. Either modify your attribute mapping or the incoming assertion to produce a mapped attribute that is less than {MAX_SUBJECT_BYTES} bytes."
        )));
    }
    Ok(())
}

/// Parses an `application/x-www-form-urlencoded` body; duplicate or unknown
/// fields are errors.
fn parse_form(body: &[u8]) -> Result<BTreeMap<String, String>, OAuthError> {
    let mut form = BTreeMap::new();
    for (key, value) in form_urlencoded::parse(body) {
        if !KNOWN_FIELDS.contains(&key.as_ref()) {
            return Err(OAuthError::invalid_request(format!(
                "Unknown parameter \"{key}\"."
            )));
        }
        if form.insert(key.to_string(), value.into_owned()).is_some() {
            return Err(OAuthError::invalid_request(format!(
                "Duplicate parameter \"{key}\"."
            )));
        }
    }
    Ok(form)
}

fn check_headers(headers: &HeaderMap) -> Result<(), OAuthError> {
    let content_type = header_str(headers, "content-type").unwrap_or_default();
    if !content_type
        .to_ascii_lowercase()
        .starts_with("application/x-www-form-urlencoded")
    {
        return Err(OAuthError::invalid_request(format!(
            "Content-Type must be application/x-www-form-urlencoded, got {content_type:?}."
        )));
    }
    // Real STS does not require the metrics header (google-cloud-auth 1.19 sends none to
    // STS); when present it must be well formed. crossfed's own tests assert its content.
    let api_client = header_str(headers, "x-goog-api-client");
    if let Some(api_client) = api_client
        && !api_client.starts_with("gl-rust/")
        && !api_client.contains("google-byoid-sdk")
    {
        return Err(OAuthError::invalid_request(format!(
            "The x-goog-api-client header must start with gl-rust/ or contain google-byoid-sdk, \
             got {api_client:?}."
        )));
    }
    Ok(())
}

fn check_fields(state: &GoogleState, form: &BTreeMap<String, String>) -> Result<(), OAuthError> {
    let field = |name: &str| form.get(name).map(String::as_str);
    let expect = |name: &str, want: &str| match field(name) {
        Some(v) if v == want => Ok(()),
        Some(v) => Err(OAuthError::invalid_request(format!(
            "Invalid value for \"{name}\": {v:?}; expected {want:?}."
        ))),
        None => Err(OAuthError::invalid_request(format!(
            "Missing required parameter \"{name}\"."
        ))),
    };
    expect("grant_type", TOKEN_EXCHANGE_GRANT)?;
    expect("requested_token_type", ACCESS_TOKEN_TYPE)?;
    expect("subject_token_type", AWS4_REQUEST_TOKEN_TYPE)?;
    match field("audience") {
        None => {
            return Err(OAuthError::invalid_request(
                "Missing required parameter \"audience\".",
            ));
        }
        Some(a) if state.config.pool_audience().as_deref() == Some(a) => {
            return Err(OAuthError::invalid_request(
                "Invalid value for \"audience\". This value should be the full resource name of the \
                 Identity Provider. See https://cloud.google.com/iam/docs/reference/sts/rest/v1/TopLevel/token \
                 for the list of possible formats.",
            ));
        }
        Some(a) if a != state.config.audience => {
            return Err(OAuthError {
                error: "invalid_target".into(),
                description: "The target service indicated by the \"audience\" parameters is invalid. \
                              This might either be because the pool or provider is disabled or deleted \
                              or because it doesn't exist."
                    .into(),
            });
        }
        Some(_) => {}
    }
    if field("subject_token").is_none_or(str::is_empty) {
        return Err(OAuthError::invalid_request(
            "Missing required parameter \"subject_token\".",
        ));
    }
    if let Some(options) = field("options") {
        let parsed: Result<serde_json::Map<String, serde_json::Value>, _> =
            serde_json::from_str(options);
        if parsed.is_err() {
            return Err(OAuthError::invalid_request(
                "Invalid value for \"options\": must be a JSON object.",
            ));
        }
    }
    Ok(())
}

/// Validates the space-separated scope list; it must include
/// `cloud-platform` or `iam`.
fn check_scope(scope: Option<&str>) -> Result<Vec<String>, OAuthError> {
    let scopes: Vec<String> = scope
        .unwrap_or_default()
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let valid = scopes
        .iter()
        .all(|s| s.starts_with("https://www.googleapis.com/auth/"))
        && scopes.iter().any(|s| {
            s == crate::google::scopes::CLOUD_PLATFORM_SCOPE
                || s == crate::google::scopes::IAM_SCOPE
        });
    if !valid {
        return Err(OAuthError::invalid_request(format!(
            "Invalid value for \"scope\": {scope:?}; expected {} or {}.",
            crate::google::scopes::CLOUD_PLATFORM_SCOPE,
            crate::google::scopes::IAM_SCOPE
        )));
    }
    Ok(scopes)
}

/// Sends the serialized request to AWS STS exactly as signed and returns the
/// caller ARN; AWS verifies the signature.
async fn replay(
    state: &GoogleState,
    subject: &AwsSubjectToken,
) -> Result<String, (StatusCode, OAuthError)> {
    let mut request = state.http.post(&subject.url);
    for h in &subject.headers {
        let name = http::HeaderName::from_bytes(h.key.as_bytes());
        let value = http::HeaderValue::from_str(&h.value);
        let (Ok(name), Ok(value)) = (name, value) else {
            return Err(bad(OAuthError::invalid_grant(format!(
                "The AWS request header {:?} is not a valid HTTP header.",
                h.key
            ))));
        };
        request = request.header(name, value);
    }
    let response = request.send().await.map_err(|e| {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            OAuthError {
                error: "server_error".into(),
                description: format!(
                    "Fake STS cannot reach AWS STS at {}: {e}",
                    state.aws_sts_url
                ),
            },
        )
    })?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    if status.is_success() {
        return aws_subject_token::caller_identity_arn(&text).ok_or_else(|| {
            bad(OAuthError::invalid_grant(
                "AWS STS returned no caller ARN for the GetCallerIdentity request.",
            ))
        });
    }
    let message = aws_subject_token::aws_error_message(&text).unwrap_or_default();
    let description = if status == StatusCode::FORBIDDEN {
        format!("The AWS request signature is invalid: {message}")
    } else {
        format!("AWS STS rejected the GetCallerIdentity request (HTTP {status}): {message}")
    };
    Err(bad(OAuthError::invalid_grant(description)))
}

fn fault_error(fault: &Fault) -> (StatusCode, OAuthError) {
    let (status, error, description) = match fault {
        Fault::GoogleError {
            status,
            error,
            description,
        } => (*status, error.clone(), description.clone()),
        Fault::Status(status) => {
            let error = match status {
                429 => "rate_limit_exceeded",
                500.. => "temporarily_unavailable",
                _ => "invalid_request",
            };
            (
                *status,
                error.to_string(),
                format!("Injected fault: HTTP {status}."),
            )
        }
        Fault::Delay(_) | Fault::CorruptUpload => (500, "server_error".into(), String::new()),
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, OAuthError { error, description })
}

fn oauth_error(status: StatusCode, err: &OAuthError) -> Response<Body> {
    server::json_response(
        status,
        &json!({"error": err.error, "error_description": err.description}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_rejects_unknown_and_duplicates() {
        let ok = parse_form(b"grant_type=a&scope=b+c&audience=%2F%2Fx").unwrap();
        assert_eq!(ok["scope"], "b c");
        assert_eq!(ok["audience"], "//x");
        assert!(parse_form(b"grant_type=a&grant_type=b").is_err());
        assert!(parse_form(b"grant_type=a&actor_token=b").is_err());
    }

    #[test]
    fn scopes() {
        let cp = crate::google::scopes::CLOUD_PLATFORM_SCOPE;
        let iam = crate::google::scopes::IAM_SCOPE;
        assert_eq!(check_scope(Some(cp)).unwrap(), [cp]);
        assert_eq!(
            check_scope(Some(&format!("{iam} {cp}"))).unwrap(),
            [iam, cp]
        );
        assert!(check_scope(None).is_err());
        assert!(check_scope(Some("")).is_err());
        assert!(check_scope(Some("https://www.googleapis.com/auth/devstorage.read_only")).is_err());
        assert!(check_scope(Some(&format!("{cp} openid"))).is_err());
    }

    #[test]
    fn fault_errors() {
        let (s, e) = fault_error(&Fault::Status(503));
        assert_eq!(
            (s.as_u16(), e.error.as_str()),
            (503, "temporarily_unavailable")
        );
        let (s, e) = fault_error(&Fault::GoogleError {
            status: 400,
            error: "invalid_grant".into(),
            description: "d".into(),
        });
        assert_eq!(
            (s.as_u16(), e.error.as_str(), e.description.as_str()),
            (400, "invalid_grant", "d")
        );
    }
}
