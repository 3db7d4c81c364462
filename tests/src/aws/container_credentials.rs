//! A Lambda/ECS container credentials endpoint (`AWS_CONTAINER_CREDENTIALS_FULL_URI`): GET
//! its one path with `Authorization: <token>` and get a role session as JSON, the way
//! Lambda's SnapStart and container-credential flavours give functions their credentials.
//! Anything else is refused as the real endpoint does.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use http::{Method, StatusCode};
use serde_json::json;

use crate::aws::localcloud::RoleSession;
use crate::server::{self, BackgroundServer, header_str};

/// The path served.
pub const CREDENTIALS_PATH: &str = "/2021-04-23/credentials";

/// A running endpoint; dropping it stops it.
#[derive(Debug)]
pub struct FakeContainerCredentials {
    server: BackgroundServer,
    served: Arc<AtomicUsize>,
    refused: Arc<AtomicUsize>,
}

impl FakeContainerCredentials {
    /// Serves `session` (valid for `lifetime` from now) to requests carrying `token`.
    ///
    /// # Panics
    /// If no port can be bound.
    pub fn start(session: &RoleSession, token: &str, lifetime: Duration) -> Self {
        let expiration = crate::time_format::format_rfc3339(SystemTime::now() + lifetime);
        let answer = json!({
            "AccessKeyId": session.access_key_id,
            "SecretAccessKey": session.secret_access_key,
            "Token": session.session_token,
            "Expiration": expiration,
        });
        let token = token.to_string();
        let (served, refused): (Arc<AtomicUsize>, Arc<AtomicUsize>) = Default::default();
        let (count, deny) = (Arc::clone(&served), Arc::clone(&refused));
        let server = BackgroundServer::spawn(
            "fake-container-credentials",
            ([127, 0, 0, 1], 0).into(),
            move |listener| {
                server::serve_http(listener, move |req| {
                    let ok = req.method() == Method::GET
                        && req.uri().path() == CREDENTIALS_PATH
                        && req.uri().query().is_none()
                        && header_str(req.headers(), "authorization") == Some(token.as_str());
                    let (status, body) = if ok {
                        count.fetch_add(1, Ordering::SeqCst);
                        (StatusCode::OK, answer.clone())
                    } else {
                        deny.fetch_add(1, Ordering::SeqCst);
                        let message = "Unauthorized: the authorization token is missing or wrong";
                        (StatusCode::UNAUTHORIZED, json!({ "message": message }))
                    };
                    Box::pin(async move { server::json_response(status, &body) })
                })
            },
        )
        .expect("FakeContainerCredentials: bind 127.0.0.1:0");
        FakeContainerCredentials {
            server,
            served,
            refused,
        }
    }

    /// The `AWS_CONTAINER_CREDENTIALS_FULL_URI` value.
    pub fn full_uri(&self) -> String {
        format!("http://{}{CREDENTIALS_PATH}", self.server.addr())
    }

    /// Requests answered with credentials.
    pub fn served(&self) -> usize {
        self.served.load(Ordering::SeqCst)
    }

    /// Requests refused.
    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }
}
