//! Fake IAM Service Account Credentials API:
//! `POST /v1/projects/-/serviceAccounts/{email}:generateAccessToken` and
//! `POST /v1/projects/-/serviceAccounts/{email}:generateIdToken`.

use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde::Deserialize;
use serde_json::json;

use crate::faults::{self, Fault};
use crate::google::google_state::{GoogleApi, GoogleState};
pub use crate::google::records::IamRequestRecord;
use crate::google::token_registry::TokenIssuer;
use crate::server::lock;
use crate::server::{self, Body, header_str};
use crate::time_format;

/// Default token lifetime when the request has no `lifetime`.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);

impl IamRequestRecord {
    /// The method this request called (a path naming neither counts as
    /// generateAccessToken).
    pub fn api(&self) -> GoogleApi {
        IamMethod::of_path(&self.path).api()
    }
}

/// The generateAccessToken request body (unknown fields are errors; `null` is the field's
/// default, as in proto3 JSON).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GenerateAccessTokenRequest {
    #[serde(default, deserialize_with = "null_as_default")]
    delegates: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    scope: Vec<String>,
    #[serde(default)]
    lifetime: Option<String>,
}

/// The generateIdToken request body (unknown fields are errors; `null` is the field's
/// default).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct GenerateIdTokenRequest {
    #[serde(default, deserialize_with = "null_as_default")]
    delegates: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    audience: String,
    #[serde(default, deserialize_with = "null_as_default")]
    include_email: bool,
}

/// proto3 JSON: `null` stands for the field's default value (Python google-auth sends
/// `"delegates": null`, which IAM Credentials accepts).
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// The two IAM Credentials methods the fake serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IamMethod {
    GenerateAccessToken,
    GenerateIdToken,
}

impl IamMethod {
    /// The method a path names; anything else counts as generateAccessToken
    /// (and gets a 404).
    pub(crate) fn of_path(path: &str) -> Self {
        if path.ends_with(":generateIdToken") {
            Self::GenerateIdToken
        } else {
            Self::GenerateAccessToken
        }
    }

    fn api(self) -> GoogleApi {
        match self {
            Self::GenerateAccessToken => GoogleApi::GenerateAccessToken,
            Self::GenerateIdToken => GoogleApi::GenerateIdToken,
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            Self::GenerateAccessToken => ":generateAccessToken",
            Self::GenerateIdToken => ":generateIdToken",
        }
    }

    fn permission(self) -> &'static str {
        match self {
            Self::GenerateAccessToken => "iam.serviceAccounts.getAccessToken",
            Self::GenerateIdToken => "iam.serviceAccounts.getOpenIdToken",
        }
    }
}

/// A Google API error: HTTP status, status name and message.
#[derive(Debug)]
struct ApiError(StatusCode, String, String);

impl ApiError {
    fn invalid_argument(message: impl Into<String>) -> Self {
        Self(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT".into(),
            message.into(),
        )
    }

    fn permission_denied(message: impl Into<String>) -> Self {
        Self(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED".into(),
            message.into(),
        )
    }
}

/// Handles one request under `/v1/projects/`.
pub(crate) async fn handle(state: &GoogleState, req: Request<Incoming>) -> Response<Body> {
    let method = IamMethod::of_path(req.uri().path());
    let fault = state.traffic(method.api()).begin();
    let mut record = IamRequestRecord {
        method: req.method().to_string(),
        path: req.uri().path().to_string(),
        content_type: header_str(req.headers(), "content-type").map(str::to_string),
        x_goog_api_client: header_str(req.headers(), "x-goog-api-client").map(str::to_string),
        ..Default::default()
    };
    record.fault.clone_from(&fault);
    let result = match fault {
        Some(Fault::Delay(delay)) => {
            tokio::time::sleep(delay).await;
            generate(state, method, req, &mut record).await
        }
        Some(Fault::Status(status)) => Err(ApiError(
            http_status(status),
            faults::status_name(status).into(),
            format!("Injected fault: HTTP {status}."),
        )),
        Some(Fault::GoogleError {
            status,
            error,
            description,
        }) => Err(ApiError(http_status(status), error, description)),
        Some(Fault::CorruptUpload) | None => generate(state, method, req, &mut record).await,
    };
    let response = match result {
        Ok(body) => {
            record.status = 200;
            server::json_response(StatusCode::OK, &body)
        }
        Err(ApiError(status, name, message)) => {
            record.status = status.as_u16();
            let response = google_error(status, &name, &message);
            record.error = Some(name);
            response
        }
    };
    lock(&state.iam_requests).push(record);
    response
}

async fn generate(
    state: &GoogleState,
    method: IamMethod,
    req: Request<Incoming>,
    record: &mut IamRequestRecord,
) -> Result<serde_json::Value, ApiError> {
    let (parts, body) = req.into_parts();
    let not_found = || {
        ApiError(
            StatusCode::NOT_FOUND,
            "NOT_FOUND".into(),
            format!(
                "The requested URL {} was not found on this server.",
                parts.uri.path()
            ),
        )
    };
    let (project, email) = parse_path(parts.uri.path(), method).ok_or_else(not_found)?;
    record.email = Some(email.clone());
    if parts.method != Method::POST {
        return Err(not_found());
    }

    let caller = state
        .tokens
        .validate_bearer(header_str(&parts.headers, "authorization"))
        .ok_or_else(|| {
            ApiError(
                StatusCode::UNAUTHORIZED,
                "UNAUTHENTICATED".into(),
                "Request had invalid authentication credentials. Expected OAuth 2 access token, \
                 login cookie or other valid authentication credential. See \
                 https://developers.google.com/identity/sign-in/web/devconsole-project."
                    .into(),
            )
        })?;
    record.caller = Some(caller.principal.clone());
    if !caller.has_scope(crate::google::scopes::IAM_SCOPE) {
        return Err(ApiError::permission_denied(
            "Request had insufficient authentication scopes.",
        ));
    }
    if project != "-" {
        return Err(ApiError::invalid_argument(
            "The project in the resource name must be the `-` wildcard: \
             projects/-/serviceAccounts/{ACCOUNT_EMAIL_OR_UNIQUEID}.",
        ));
    }
    if email != state.config.service_account_email {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            "NOT_FOUND".into(),
            format!("Service account projects/-/serviceAccounts/{email} not found."),
        ));
    }
    let permission_denied = || {
        ApiError::permission_denied(format!(
            "Permission '{}' denied on resource (or it may not exist).",
            method.permission()
        ))
    };
    if !state
        .config
        .bindings
        .iter()
        .any(|m| caller.matches_member(m))
    {
        return Err(permission_denied());
    }

    let content_type = header_str(&parts.headers, "content-type").unwrap_or_default();
    if !content_type
        .to_ascii_lowercase()
        .starts_with("application/json")
    {
        return Err(ApiError::invalid_argument(format!(
            "Content-Type must be application/json, got {content_type:?}."
        )));
    }
    let body = server::read_body(body)
        .await
        .map_err(ApiError::invalid_argument)?;
    record.body = serde_json::from_slice(&body).ok();
    if method == IamMethod::GenerateIdToken {
        return generate_id_token(state, &email, &body, permission_denied);
    }
    let request: GenerateAccessTokenRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::invalid_argument(format!("Invalid JSON payload received. {e}")))?;
    let lifetime = check_request(&request, state.settings().max_lifetime_secs)?;
    if !request.delegates.is_empty() {
        // No delegation chains are configured in the fake.
        return Err(permission_denied());
    }

    let principal = format!("serviceAccount:{email}");
    let (token, info) = state.tokens.issue(
        TokenIssuer::Iam,
        principal,
        Vec::new(),
        request.scope,
        lifetime,
    );
    Ok(json!({
        "accessToken": token,
        "expireTime": time_format::format_rfc3339(info.expires_at),
    }))
}

/// The generateIdToken part after authorization: body rules and the token.
fn generate_id_token(
    state: &GoogleState,
    email: &str,
    body: &[u8],
    permission_denied: impl Fn() -> ApiError,
) -> Result<serde_json::Value, ApiError> {
    let request: GenerateIdTokenRequest = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid_argument(format!("Invalid JSON payload received. {e}")))?;
    if request.audience.trim().is_empty() {
        return Err(ApiError::invalid_argument(
            "Invalid value for audience: the audience is required and must not be empty.",
        ));
    }
    if !request.delegates.is_empty() {
        return Err(permission_denied());
    }
    let email = request.include_email.then_some(email);
    let token = state.id_tokens.mint(
        &request.audience,
        &state.config.service_account_unique_id,
        email,
    );
    Ok(json!({ "token": token }))
}

/// Splits `/v1/projects/{project}/serviceAccounts/{email}{method suffix}`.
fn parse_path(path: &str, method: IamMethod) -> Option<(String, String)> {
    let rest = path.strip_prefix("/v1/projects/")?;
    let (project, rest) = rest.split_once("/serviceAccounts/")?;
    let account = rest.strip_suffix(method.suffix())?;
    let account = percent_encoding::percent_decode_str(account)
        .decode_utf8()
        .ok()?;
    let valid = |s: &str| !s.is_empty() && !s.contains('/');
    (valid(project) && valid(&account)).then(|| (project.to_string(), account.into_owned()))
}

/// Validates scope and lifetime; returns the token lifetime.
fn check_request(
    request: &GenerateAccessTokenRequest,
    max_lifetime_secs: u64,
) -> Result<Duration, ApiError> {
    if request.scope.is_empty() || request.scope.iter().any(|s| s.trim().is_empty()) {
        return Err(ApiError::invalid_argument("Scope required."));
    }
    let Some(lifetime) = &request.lifetime else {
        return Ok(DEFAULT_LIFETIME);
    };
    let secs = time_format::parse_seconds(lifetime)
        .ok_or_else(|| {
            ApiError::invalid_argument(format!(
                "Invalid value at 'lifetime' (type.googleapis.com/google.protobuf.Duration), \"{lifetime}\""
            ))
        })?
        .as_secs();
    if secs == 0 || secs > max_lifetime_secs {
        return Err(ApiError::invalid_argument(format!(
            "The lifetime must be between 1s and {max_lifetime_secs}s, got {lifetime}."
        )));
    }
    Ok(Duration::from_secs(secs))
}

fn http_status(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn error_body(code: u16, status: &str, message: &str) -> serde_json::Value {
    json!({"error": {"code": code, "message": message, "status": status}})
}

/// A Google JSON API error response.
pub(crate) fn google_error(status: StatusCode, name: &str, message: &str) -> Response<Body> {
    server::json_response(status, &error_body(status.as_u16(), name, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(json: serde_json::Value) -> Result<GenerateAccessTokenRequest, serde_json::Error> {
        serde_json::from_value(json)
    }

    #[test]
    fn paths() {
        let access = IamMethod::GenerateAccessToken;
        let id = IamMethod::GenerateIdToken;
        assert_eq!(
            parse_path(
                "/v1/projects/-/serviceAccounts/sa%40p.iam.gserviceaccount.com:generateAccessToken",
                access
            ),
            Some(("-".into(), "sa@p.iam.gserviceaccount.com".into()))
        );
        assert_eq!(
            parse_path(
                "/v1/projects/-/serviceAccounts/sa@p:generateAccessToken",
                access
            ),
            Some(("-".into(), "sa@p".into()))
        );
        let id_path = "/v1/projects/-/serviceAccounts/sa@p:generateIdToken";
        assert_eq!(IamMethod::of_path(id_path), id);
        assert_eq!(parse_path(id_path, id), Some(("-".into(), "sa@p".into())));
        for bad in [
            id_path,
            "/v1/projects/-/serviceAccounts/:generateAccessToken",
            "/v1/projects/-/serviceAccounts/a/b:generateAccessToken",
            "/v1/projects//serviceAccounts/sa@p:generateAccessToken",
        ] {
            assert_eq!(parse_path(bad, access), None, "{bad}");
        }
        assert_eq!(
            parse_path(
                "/v1/projects/-/serviceAccounts/sa@p:generateAccessToken",
                id
            ),
            None
        );
    }

    #[test]
    fn id_token_body_rules() {
        let r: GenerateIdTokenRequest =
            serde_json::from_value(json!({"audience": "a", "includeEmail": true})).unwrap();
        assert!(r.include_email && r.audience == "a" && r.delegates.is_empty());
        let r: GenerateIdTokenRequest = serde_json::from_value(json!({})).unwrap();
        assert!(r.audience.is_empty() && !r.include_email);
        for bad in [
            json!({"audience": "a", "include_email": true}),
            json!({"audience": "a", "lifetime": "3600s"}),
            json!({"audience": 1}),
            json!({"audience": "a", "includeEmail": "yes"}),
        ] {
            assert!(
                serde_json::from_value::<GenerateIdTokenRequest>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn body_rules() {
        let scope = json!([crate::google::scopes::CLOUD_PLATFORM_SCOPE]);
        let ok = req(json!({"scope": scope, "lifetime": "3600s"})).unwrap();
        assert_eq!(check_request(&ok, 3600).unwrap(), Duration::from_secs(3600));
        let ok = req(json!({"scope": scope, "delegates": []})).unwrap();
        assert_eq!(check_request(&ok, 3600).unwrap(), DEFAULT_LIFETIME);
        // Python google-auth's body: null delegates are none.
        let ok = req(json!({"delegates": null, "scope": scope, "lifetime": "3600s"})).unwrap();
        assert!(ok.delegates.is_empty());
        assert_eq!(check_request(&ok, 3600).unwrap(), Duration::from_secs(3600));
        assert!(req(json!({"scope": scope, "delegates": "x"})).is_err());
        assert!(check_request(&req(json!({"scope": null})).unwrap(), 3600).is_err());
        let long = req(json!({"scope": scope, "lifetime": "43200s"})).unwrap();
        assert!(check_request(&long, 3600).is_err());
        assert!(check_request(&long, 43200).is_ok());
        for lifetime in ["0s", "3601s", "3600", "1.5s", "1h"] {
            let r = req(json!({"scope": scope, "lifetime": lifetime})).unwrap();
            assert!(check_request(&r, 3600).is_err(), "{lifetime}");
        }
        assert!(check_request(&req(json!({})).unwrap(), 3600).is_err());
        assert!(check_request(&req(json!({"scope": [""]})).unwrap(), 3600).is_err());
        assert!(req(json!({"scope": scope, "lifetimeSecs": 3})).is_err());
        assert!(req(json!({"scope": scope, "lifetime": 3600})).is_err());
    }
}
