//! The metadata-server paths Google's client libraries call, answered from a [`Backend`].

use std::time::SystemTime;

use http::StatusCode;
use serde_json::json;

use crate::backend::{Backend, BackendError, Identity};

/// The default OAuth scope of tokens requested without `scopes`.
pub const DEFAULT_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// Most scopes accepted in one token request.
const MAX_SCOPES: usize = 32;
/// Longest accepted scope or audience.
const MAX_VALUE: usize = 1024;
const PREFIX: &str = "/computeMetadata/v1";

/// A response body and its type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// HTTP status.
    pub status: StatusCode,
    /// `application/json` or `application/text`.
    pub content_type: &'static str,
    /// Body.
    pub body: String,
}

impl Answer {
    fn text(body: impl Into<String>) -> Self {
        Answer {
            status: StatusCode::OK,
            content_type: "application/text",
            body: body.into(),
        }
    }

    fn json(value: &serde_json::Value) -> Self {
        Answer {
            status: StatusCode::OK,
            content_type: "application/json",
            body: value.to_string(),
        }
    }

    /// An error answer with a short text.
    pub fn error(status: StatusCode, message: impl Into<String>) -> Self {
        let mut body = message.into();
        body.push('\n');
        Answer {
            status,
            content_type: "text/plain; charset=utf-8",
            body,
        }
    }

    fn not_found(path: &str) -> Self {
        let shown: String = path.chars().take(200).collect();
        Answer::error(
            StatusCode::NOT_FOUND,
            format!("Not found: {shown} is not served by the crossfed metadata server."),
        )
    }
}

impl From<BackendError> for Answer {
    fn from(e: BackendError) -> Self {
        let status = match &e {
            BackendError::Unavailable(_) => StatusCode::NOT_FOUND,
            BackendError::BadRequest(_) => StatusCode::BAD_REQUEST,
            BackendError::Failed {
                transient: true, ..
            } => StatusCode::SERVICE_UNAVAILABLE,
            BackendError::Failed {
                transient: false, ..
            } => StatusCode::BAD_GATEWAY,
        };
        Answer::error(status, e.to_string())
    }
}

/// Answers `GET path?query` (already past the [`crate::guard`]).
pub async fn answer<B: Backend>(backend: &B, path: &str, query: Option<&str>) -> Answer {
    match route(backend, path, query.unwrap_or("")).await {
        Ok(answer) => answer,
        Err(e) => e.into(),
    }
}

fn param<'a>(query: &'a str, name: &str) -> Option<std::borrow::Cow<'a, str>> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

async fn route<B: Backend>(backend: &B, path: &str, query: &str) -> Result<Answer, BackendError> {
    let recursive = param(query, "recursive").is_some_and(|v| v == "true");
    let rest = match path {
        "/" => return Ok(Answer::text("computeMetadata/\n")),
        "/computeMetadata" | "/computeMetadata/" => return Ok(Answer::text("v1/\n")),
        _ => match path.strip_prefix(PREFIX) {
            Some(rest) => rest,
            None => return Ok(Answer::not_found(path)),
        },
    };
    let segments: Vec<&str> = rest
        .trim_start_matches('/')
        .trim_end_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    match segments.as_slice() {
        [] => Ok(Answer::text("instance/\nproject/\nuniverse/\n")),
        ["instance"] => Ok(Answer::text("service-accounts/\n")),
        ["instance", "service-accounts"] => {
            let identity = backend.identity().await?;
            let mut body = String::from("default/\n");
            if let Some(email) = &identity.service_account {
                body.push_str(email);
                body.push_str("/\n");
            }
            Ok(Answer::text(body))
        }
        ["instance", "service-accounts", account, rest @ ..] => {
            let identity = backend.identity().await?;
            let email = identity.service_account.as_deref().unwrap_or("default");
            if *account != "default" && Some(*account) != identity.service_account.as_deref() {
                return Ok(Answer::error(
                    StatusCode::NOT_FOUND,
                    format!(
                        "Service account {account} not found: this function acts as `default` ({email})."
                    ),
                ));
            }
            service_account(backend, &identity, email, rest, query, recursive).await
        }
        ["project", "project-id"] => {
            let identity = backend.identity().await?;
            match identity.project_id {
                Some(p) => Ok(Answer::text(p)),
                None => Err(BackendError::Unavailable(
                    "The project id is not known: set GOOGLE_CLOUD_PROJECT in the function's environment.".into(),
                )),
            }
        }
        ["project", "numeric-project-id"] => Err(BackendError::Unavailable(
            "The numeric project id is not known to the crossfed metadata server.".into(),
        )),
        ["universe", "universe-domain" | "universe_domain"] => {
            Ok(Answer::text(backend.identity().await?.universe_domain))
        }
        _ => Ok(Answer::not_found(path)),
    }
}

async fn service_account<B: Backend>(
    backend: &B,
    identity: &Identity,
    email: &str,
    rest: &[&str],
    query: &str,
    recursive: bool,
) -> Result<Answer, BackendError> {
    let scopes = [DEFAULT_SCOPE];
    match rest {
        [] if recursive => Ok(Answer::json(&json!({
            "aliases": ["default"],
            "email": email,
            "scopes": scopes,
        }))),
        [] => Ok(Answer::text("aliases\nemail\nidentity\nscopes\ntoken\n")),
        ["aliases"] => Ok(Answer::text("default\n")),
        ["email"] => Ok(Answer::text(email)),
        ["scopes"] => Ok(Answer::text(format!("{}\n", scopes.join("\n")))),
        ["token"] => {
            let scopes = requested_scopes(query)?;
            let token = backend.access_token(&scopes).await?;
            let expires_in = token
                .expires_at
                .duration_since(SystemTime::now())
                .unwrap_or_default()
                .as_secs()
                .max(1);
            Ok(Answer::json(&json!({
                "access_token": token.value,
                "expires_in": expires_in,
                "token_type": "Bearer",
            })))
        }
        ["identity"] => {
            let audience = param(query, "audience").unwrap_or_default();
            let audience = audience.trim();
            if audience.is_empty() || audience.len() > MAX_VALUE {
                return Err(BackendError::BadRequest(
                    "The identity endpoint needs an `audience` query parameter (at most 1024 characters).".into(),
                ));
            }
            let include_email = match param(query, "format").as_deref() {
                None | Some("standard") => false,
                Some("full") => true,
                Some(other) => {
                    return Err(BackendError::BadRequest(format!(
                        "Unknown format `{}`: use `standard` or `full`.",
                        other.chars().take(40).collect::<String>()
                    )));
                }
            };
            if identity.service_account.is_none() {
                return Err(BackendError::Unavailable(
                    "ID tokens need service account impersonation: create the credential configuration with --service-account.".into(),
                ));
            }
            Ok(Answer::text(
                backend.id_token(audience, include_email).await?,
            ))
        }
        _ => Ok(Answer::not_found(&format!(
            "{PREFIX}/instance/service-accounts/{email}/{}",
            rest.join("/")
        ))),
    }
}

/// The `scopes` query parameter(s): comma-separated, sorted and deduplicated; default
/// cloud-platform.
fn requested_scopes(query: &str) -> Result<Vec<String>, BackendError> {
    let mut scopes: Vec<String> = form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k == "scopes")
        .flat_map(|(_, v)| {
            v.split(',')
                .map(|s| s.trim().to_string())
                .collect::<Vec<_>>()
        })
        .filter(|s| !s.is_empty())
        .collect();
    scopes.sort();
    scopes.dedup();
    if scopes.len() > MAX_SCOPES
        || scopes
            .iter()
            .any(|s| s.len() > MAX_VALUE || s.bytes().any(|b| !b.is_ascii_graphic()))
    {
        return Err(BackendError::BadRequest(format!(
            "Invalid scopes: at most {MAX_SCOPES} comma-separated OAuth scopes without spaces."
        )));
    }
    if scopes.is_empty() {
        scopes.push(DEFAULT_SCOPE.to_string());
    }
    Ok(scopes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::AccessToken;
    use std::sync::Mutex;
    use std::time::Duration;

    #[derive(Default)]
    struct Fake {
        impersonating: bool,
        calls: Mutex<Vec<String>>,
    }

    impl Backend for Fake {
        async fn access_token(&self, scopes: &[String]) -> Result<AccessToken, BackendError> {
            self.calls
                .lock()
                .unwrap()
                .push(format!("token {}", scopes.join(" ")));
            Ok(AccessToken {
                value: "ya29.t".into(),
                expires_at: SystemTime::now() + Duration::from_secs(600),
            })
        }
        async fn id_token(
            &self,
            audience: &str,
            include_email: bool,
        ) -> Result<String, BackendError> {
            self.calls
                .lock()
                .unwrap()
                .push(format!("id {audience} {include_email}"));
            Err(BackendError::Failed {
                message: "IAM said no".into(),
                transient: true,
            })
        }
        async fn identity(&self) -> Result<Identity, BackendError> {
            Ok(Identity {
                service_account: self
                    .impersonating
                    .then(|| "sa@p.iam.gserviceaccount.com".to_string()),
                project_id: self.impersonating.then(|| "p".to_string()),
                universe_domain: "googleapis.com".into(),
            })
        }
        async fn refresh_expiring(&self) {}
    }

    async fn get(b: &Fake, uri: &str) -> Answer {
        let (path, query) = match uri.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (uri, None),
        };
        answer(b, path, query).await
    }

    #[tokio::test]
    async fn probes_identity_and_project() {
        let b = Fake {
            impersonating: true,
            ..Fake::default()
        };
        for probe in [
            "/",
            "/computeMetadata/v1/",
            "/computeMetadata/v1",
            "/computeMetadata/v1/instance",
            "/computeMetadata/v1/instance/",
        ] {
            assert_eq!(get(&b, probe).await.status, StatusCode::OK, "{probe}");
        }
        for account in ["default", "sa@p.iam.gserviceaccount.com"] {
            let a = get(
                &b,
                &format!("/computeMetadata/v1/instance/service-accounts/{account}/email"),
            )
            .await;
            assert_eq!(a.body, "sa@p.iam.gserviceaccount.com");
            let a = get(
                &b,
                &format!("/computeMetadata/v1/instance/service-accounts/{account}/?recursive=true"),
            )
            .await;
            let v: serde_json::Value = serde_json::from_str(&a.body).unwrap();
            assert_eq!(v["email"], "sa@p.iam.gserviceaccount.com");
            assert_eq!(v["aliases"][0], "default");
            assert_eq!(v["scopes"][0], DEFAULT_SCOPE);
            assert_eq!(a.content_type, "application/json");
        }
        let a = get(
            &b,
            "/computeMetadata/v1/instance/service-accounts/other@p.iam.gserviceaccount.com/token",
        )
        .await;
        assert_eq!(a.status, StatusCode::NOT_FOUND);
        assert_eq!(
            get(&b, "/computeMetadata/v1/project/project-id").await.body,
            "p"
        );
        assert_eq!(
            get(&b, "/computeMetadata/v1/project/numeric-project-id")
                .await
                .status,
            StatusCode::NOT_FOUND
        );
        for u in ["universe-domain", "universe_domain"] {
            assert_eq!(
                get(&b, &format!("/computeMetadata/v1/universe/{u}"))
                    .await
                    .body,
                "googleapis.com"
            );
        }
        for missing in [
            "/x",
            "/computeMetadata/v2/instance",
            "/computeMetadata/v1/instance/zone",
            "/computeMetadata/v1/instance/service-accounts/default/token/x",
        ] {
            let a = get(&b, missing).await;
            assert_eq!(a.status, StatusCode::NOT_FOUND, "{missing}");
            assert!(a.body.starts_with("Not found"), "{}", a.body);
        }
    }

    #[tokio::test]
    async fn tokens_per_scope_set_and_identity_errors() {
        let b = Fake {
            impersonating: true,
            ..Fake::default()
        };
        let a = get(
            &b,
            "/computeMetadata/v1/instance/service-accounts/default/token?foo=bar",
        )
        .await;
        let v: serde_json::Value = serde_json::from_str(&a.body).unwrap();
        assert_eq!(
            (v["access_token"].as_str(), v["token_type"].as_str()),
            (Some("ya29.t"), Some("Bearer"))
        );
        assert!(v["expires_in"].as_u64().unwrap() > 590);
        get(
            &b,
            "/computeMetadata/v1/instance/service-accounts/default/token?scopes=b,a,%20b&scopes=c",
        )
        .await;
        let bad = get(
            &b,
            "/computeMetadata/v1/instance/service-accounts/default/token?scopes=a%20b",
        )
        .await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        let a = get(&b, "/computeMetadata/v1/instance/service-accounts/default/identity?audience=https://x&format=full").await;
        assert_eq!(
            (a.status, a.body.as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, "IAM said no\n")
        );
        for q in ["", "?audience=", "?audience=a&format=weird"] {
            let a = get(
                &b,
                &format!("/computeMetadata/v1/instance/service-accounts/default/identity{q}"),
            )
            .await;
            assert_eq!(a.status, StatusCode::BAD_REQUEST, "{q}");
        }
        assert_eq!(
            *b.calls.lock().unwrap(),
            vec![
                format!("token {DEFAULT_SCOPE}"),
                "token a b c".to_string(),
                "id https://x true".to_string()
            ]
        );
        let plain = Fake::default();
        let a = get(
            &plain,
            "/computeMetadata/v1/instance/service-accounts/default/identity?audience=a",
        )
        .await;
        assert_eq!(a.status, StatusCode::NOT_FOUND);
        assert!(a.body.contains("impersonation"), "{}", a.body);
        assert_eq!(
            get(
                &plain,
                "/computeMetadata/v1/instance/service-accounts/default/email"
            )
            .await
            .body,
            "default"
        );
        assert_eq!(
            get(&plain, "/computeMetadata/v1/project/project-id")
                .await
                .status,
            StatusCode::NOT_FOUND
        );
    }
}
