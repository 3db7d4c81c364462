//! One in-process server hosting the fake Google STS and IAM Credentials
//! APIs (generateAccessToken, generateIdToken), sharing a [`TokenRegistry`].

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use url::Url;

use crate::faults::Fault;
use crate::google::fake_iam;
use crate::google::fake_sts;
use crate::google::id_tokens::IdTokenIssuer;
use crate::google::token_registry::{TokenInfo, TokenRegistry};
use crate::server::{self, BackgroundServer, Body, lock};

use crate::google::fake_google_config::ASSUMED_ROLE_ARN_EXPRESSION;
pub use crate::google::fake_google_config::{
    AwsRoleMapping, DEFAULT_SERVICE_ACCOUNT_UNIQUE_ID, FakeGoogleConfig, SubjectMapping,
};
pub use crate::google::google_state::GoogleApi;
use crate::google::google_state::{GoogleState, Settings};
use crate::google::records::{IamRequestRecord, StsRequestRecord};

/// Handle to a running fake STS + IAM Credentials server; dropping it stops
/// the server.
#[derive(Debug)]
pub struct FakeGoogle {
    state: Arc<GoogleState>,
    server: BackgroundServer,
}

impl FakeGoogle {
    /// Starts on an ephemeral port of 127.0.0.1 with a fresh token registry.
    pub async fn start(config: FakeGoogleConfig) -> Self {
        Self::start_with(config, TokenRegistry::new(), ([127, 0, 0, 1], 0).into()).await
    }

    /// Starts on `addr` using `tokens` (share it with [`crate::google::fake_storage_grpc::FakeStorage`]).
    ///
    /// # Panics
    /// On a malformed config or if `addr` cannot be bound.
    pub async fn start_with(
        config: FakeGoogleConfig,
        tokens: TokenRegistry,
        addr: SocketAddr,
    ) -> Self {
        let pool = config.pool_resource().unwrap_or_else(|| {
            panic!("FakeGoogleConfig: malformed audience {:?}", config.audience)
        });
        let aws_sts_url = Url::parse(&config.aws_sts_url).unwrap_or_else(|e| {
            panic!(
                "FakeGoogleConfig: bad aws_sts_url {:?}: {e}",
                config.aws_sts_url
            )
        });
        let mut http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10));
        if let Some(pem) = &config.aws_sts_ca_pem {
            let ca = reqwest::Certificate::from_pem(pem.as_bytes())
                .unwrap_or_else(|e| panic!("FakeGoogleConfig: bad aws_sts_ca_pem: {e}"));
            http = http.tls_certs_merge([ca]);
        }
        if let (Some(addr), Some(host)) = (config.aws_sts_resolve, aws_sts_url.host_str()) {
            http = http.resolve(host, addr);
        }
        let http = http.build().expect("build reqwest client");
        let state = Arc::new(GoogleState {
            settings: Mutex::new(Settings {
                sts_token_lifetime: config.sts_token_lifetime,
                max_lifetime_secs: config.max_lifetime_secs,
            }),
            config,
            pool,
            aws_sts_url,
            tokens,
            http,
            traffic: Default::default(),
            sts_requests: Mutex::new(Vec::new()),
            iam_requests: Mutex::new(Vec::new()),
            id_tokens: IdTokenIssuer::new(),
        });
        let handler_state = state.clone();
        let server = BackgroundServer::spawn("fake-google", addr, move |listener| {
            server::serve_http(listener, move |req| {
                let state = handler_state.clone();
                Box::pin(route(state, req))
            })
        })
        .unwrap_or_else(|e| panic!("FakeGoogle: cannot listen on {addr}: {e}"));
        Self { state, server }
    }

    /// `http://127.0.0.1:PORT/v1/token`.
    pub fn sts_url(&self) -> String {
        format!("{}/v1/token", self.iam_base_url())
    }

    /// `http://127.0.0.1:PORT`; generateAccessToken lives at
    /// `{iam_base_url}/v1/projects/-/serviceAccounts/{email}:generateAccessToken`.
    pub fn iam_base_url(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    /// The generateAccessToken URL of the configured service account.
    pub fn impersonation_url(&self) -> String {
        format!(
            "{}/v1/projects/-/serviceAccounts/{}:generateAccessToken",
            self.iam_base_url(),
            self.state.config.service_account_email
        )
    }

    /// The generateIdToken URL of the configured service account.
    pub fn id_token_url(&self) -> String {
        format!(
            "{}/v1/projects/-/serviceAccounts/{}:generateIdToken",
            self.iam_base_url(),
            self.state.config.service_account_email
        )
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    pub fn config(&self) -> &FakeGoogleConfig {
        &self.state.config
    }

    /// The registry holding every token this fake issued.
    pub fn tokens(&self) -> TokenRegistry {
        self.state.tokens.clone()
    }

    /// Info about an unexpired token issued by (or registered with) the fake.
    pub fn validate_token(&self, token: &str) -> Option<TokenInfo> {
        self.state.tokens.validate(token)
    }

    /// Requests `api` received (including faulted ones).
    pub fn calls(&self, api: GoogleApi) -> usize {
        self.state.traffic(api).calls.load(Ordering::SeqCst)
    }

    /// `(STS exchanges, generateAccessToken calls)`: what one access token costs.
    pub fn token_calls(&self) -> (usize, usize) {
        (
            self.calls(GoogleApi::Sts),
            self.calls(GoogleApi::GenerateAccessToken),
        )
    }

    /// Requests of `api` that returned a token.
    pub fn tokens_issued(&self, api: GoogleApi) -> usize {
        match api {
            GoogleApi::Sts => lock(&self.state.sts_requests)
                .iter()
                .filter(|r| r.status == 200)
                .count(),
            _ => lock(&self.state.iam_requests)
                .iter()
                .filter(|r| r.status == 200 && r.api() == api)
                .count(),
        }
    }

    /// Queues faults for the next requests of `api` (one per request, FIFO).
    pub fn inject_faults(&self, api: GoogleApi, faults: impl IntoIterator<Item = Fault>) {
        self.state.traffic(api).faults.push(faults);
    }

    /// Faults queued for `api` and not consumed yet.
    pub fn pending_faults(&self, api: GoogleApi) -> usize {
        self.state.traffic(api).faults.pending()
    }

    /// Drops all queued faults.
    pub fn clear_faults(&self) {
        for api in GoogleApi::ALL {
            self.state.traffic(api).faults.clear();
        }
    }

    /// Changes `expires_in` of subsequently issued STS tokens.
    pub fn set_sts_token_lifetime(&self, lifetime: Duration) {
        lock(&self.state.settings).sts_token_lifetime = lifetime;
    }

    /// Changes the largest accepted generateAccessToken `lifetime`.
    pub fn set_iam_max_lifetime(&self, max: Duration) {
        lock(&self.state.settings).max_lifetime_secs = max.as_secs();
    }

    /// Every STS request so far, oldest first.
    pub fn sts_requests(&self) -> Vec<StsRequestRecord> {
        lock(&self.state.sts_requests).clone()
    }

    pub fn last_sts_request(&self) -> Option<StsRequestRecord> {
        lock(&self.state.sts_requests).last().cloned()
    }

    /// Every request of the IAM Credentials `api` so far, oldest first (none for
    /// [`GoogleApi::Sts`]: see [`FakeGoogle::sts_requests`]).
    pub fn iam_requests(&self, api: GoogleApi) -> Vec<IamRequestRecord> {
        lock(&self.state.iam_requests)
            .iter()
            .filter(|r| r.api() == api)
            .cloned()
            .collect()
    }

    pub fn last_iam_request(&self, api: GoogleApi) -> Option<IamRequestRecord> {
        lock(&self.state.iam_requests)
            .iter()
            .rfind(|r| r.api() == api)
            .cloned()
    }
}

async fn route(state: Arc<GoogleState>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path();
    if path == "/v1/token" {
        if req.method() != Method::POST {
            return server::empty_response(StatusCode::METHOD_NOT_ALLOWED);
        }
        return fake_sts::handle(&state, req).await;
    }
    if path.starts_with("/v1/projects/") && path.contains("/workloadIdentityPools/") {
        return provider_resource(&state, &req);
    }
    if path.starts_with("/v1/projects/") {
        return fake_iam::handle(&state, req).await;
    }
    fake_iam::google_error(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        &format!("The requested URL {path} was not found on this server."),
    )
}

/// `GET /v1/projects/N/locations/global/workloadIdentityPools/P/providers/X`: the provider
/// resource as the IAM API returns it, built from the fake's own mapping and condition.
fn provider_resource(state: &GoogleState, req: &Request<Incoming>) -> Response<Body> {
    let config = &state.config;
    if req.method() != Method::GET {
        return server::empty_response(StatusCode::METHOD_NOT_ALLOWED);
    }
    let authorized = matches!(
        (server::header_str(req.headers(), "authorization"), &config.provider_reader_token),
        (Some(h), Some(t)) if h.strip_prefix("Bearer ") == Some(t.as_str())
    );
    if !authorized {
        return fake_iam::google_error(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            "Permission 'iam.workloadIdentityPoolProviders.get' denied on resource (or it may not exist).",
        );
    }
    let name = req.uri().path().trim_start_matches("/v1/");
    if format!("//iam.googleapis.com/{name}") != config.audience {
        return fake_iam::google_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            &format!("Requested entity was not found: {name}."),
        );
    }
    let aws_role = match config.aws_role_mapping {
        AwsRoleMapping::AssumedRoleArn => ASSUMED_ROLE_ARN_EXPRESSION,
        AwsRoleMapping::RoleName => "assertion.arn.extract('assumed-role/{role}/')",
    };
    let mut body = serde_json::json!({
        "name": name,
        "state": "ACTIVE",
        "attributeMapping": {
            "google.subject": config.subject_mapping.expression(),
            "attribute.aws_role": aws_role,
        },
        "aws": {"accountId": config.aws_account_id},
    });
    if let Some(roles) = &config.allowed_aws_roles {
        let list: Vec<String> = roles.iter().map(|r| format!("'{r}'")).collect();
        body["attributeCondition"] = format!("attribute.aws_role in [{}]", list.join(", ")).into();
    }
    server::json_response(StatusCode::OK, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principals_from_audience() {
        let c = FakeGoogleConfig::default();
        let pool = "projects/123456/locations/global/workloadIdentityPools/my-pool";
        assert_eq!(c.pool_resource().as_deref(), Some(pool));
        assert_eq!(
            c.principal_set_for_aws_role("arn:aws:sts::1:assumed-role/r"),
            format!(
                "principalSet://iam.googleapis.com/{pool}/attribute.aws_role/arn:aws:sts::1:assumed-role/r"
            )
        );
        assert_eq!(
            c.principal_for_aws_arn("arn:aws:sts::1:assumed-role/r/s"),
            format!(
                "principal://iam.googleapis.com/{pool}/subject/arn:aws:sts::1:assumed-role/r/s"
            )
        );
        for bad in [
            "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p",
            "iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/x",
            "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/",
        ] {
            let c = FakeGoogleConfig {
                audience: bad.into(),
                ..Default::default()
            };
            assert!(c.pool_resource().is_none(), "{bad}");
        }
    }

    /// STS -> IAM over HTTP, with a stub AWS STS (moto verifies real
    /// signatures in the integration tests).
    mod http_flow {
        use super::super::*;
        use crate::google::token_registry::TokenIssuer;
        use crate::time_format;
        use serde_json::{Value, json};

        const ROLE: &str = "arn:aws:sts::123456789012:assumed-role/crossfed-lambda";
        const GOOD_SIG: &str = "1111111111111111111111111111111111111111111111111111111111111111";
        const BAD_SIG: &str = "2222222222222222222222222222222222222222222222222222222222222222";

        /// Answers GetCallerIdentity for requests signed with `GOOD_SIG`.
        fn stub_aws() -> BackgroundServer {
            stub_aws_as(format!("{ROLE}/session-1"))
        }

        /// [`stub_aws`] for the caller `arn`.
        fn stub_aws_as(arn: String) -> BackgroundServer {
            BackgroundServer::spawn("stub-aws", ([127, 0, 0, 1], 0).into(), move |listener| {
                server::serve_http(listener, move |req| {
                    let arn = arn.clone();
                    Box::pin(async move {
                        let auth = server::header_str(req.headers(), "authorization").unwrap_or_default();
                        let (status, body) = if auth.ends_with(GOOD_SIG) {
                            (200, format!("<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>{arn}</Arn></GetCallerIdentityResult></GetCallerIdentityResponse>"))
                        } else {
                            (403, "<ErrorResponse><Error><Message>The request signature we calculated does not match</Message></Error></ErrorResponse>".into())
                        };
                        let mut r = Response::new(Body::new(http_body_util::Full::new(bytes::Bytes::from(body))));
                        *r.status_mut() = StatusCode::from_u16(status).unwrap();
                        r
                    })
                })
            })
            .unwrap()
        }

        fn subject_token(aws: &str, audience: &str, signature: &str) -> String {
            let date = time_format::format_amz_date(std::time::SystemTime::now());
            let host = aws.trim_start_matches("http://");
            let json = json!({
                "url": format!("{aws}/?Action=GetCallerIdentity&Version=2011-06-15"),
                "method": "POST",
                "headers": [
                    {"key": "host", "value": host},
                    {"key": "x-amz-date", "value": date},
                    {"key": "x-amz-security-token", "value": "FQoG+/session=="},
                    {"key": "x-goog-cloud-target-resource", "value": audience},
                    {"key": "Authorization", "value": format!(
                        "AWS4-HMAC-SHA256 Credential=ASIAX/{}/us-east-1/sts/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token;x-goog-cloud-target-resource, Signature={signature}",
                        &date[..8])},
                ],
            })
            .to_string();
            form_urlencoded::byte_serialize(json.as_bytes()).collect()
        }

        async fn exchange(google: &FakeGoogle, form: &[(&str, &str)]) -> (u16, Value) {
            let response = reqwest::Client::new()
                .post(google.sts_url())
                .header("x-goog-api-client", "gl-rust/1.91 auth/1.0 google-byoid-sdk source/aws sa-impersonation/true config-lifetime/false")
                .form(form)
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), response.json().await.unwrap())
        }

        fn form<'a>(google: &'a FakeGoogle, subject: &'a str) -> Vec<(&'a str, &'a str)> {
            vec![
                ("grant_type", crate::google::fake_sts::TOKEN_EXCHANGE_GRANT),
                ("audience", google.config().audience.as_str()),
                ("scope", crate::google::scopes::CLOUD_PLATFORM_SCOPE),
                (
                    "requested_token_type",
                    crate::google::fake_sts::ACCESS_TOKEN_TYPE,
                ),
                (
                    "subject_token_type",
                    crate::google::fake_sts::AWS4_REQUEST_TOKEN_TYPE,
                ),
                ("subject_token", subject),
            ]
        }

        async fn generate(google: &FakeGoogle, token: &str, body: Value) -> (u16, Value) {
            let response = reqwest::Client::new()
                .post(google.impersonation_url())
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), response.json().await.unwrap())
        }

        async fn start(aws: &BackgroundServer, allowed: Option<Vec<String>>) -> FakeGoogle {
            let mut config = FakeGoogleConfig {
                aws_sts_url: format!("http://{}", aws.addr()),
                allowed_aws_roles: allowed,
                ..Default::default()
            };
            config.bindings = vec![config.principal_set_for_aws_role(ROLE)];
            FakeGoogle::start(config).await
        }

        #[tokio::test]
        async fn exchange_then_impersonate() {
            let aws = stub_aws();
            let google = start(&aws, Some(vec![ROLE.into()])).await;
            let aws_url = google.config().aws_sts_url.clone();
            let subject = subject_token(&aws_url, &google.config().audience, GOOD_SIG);
            let (status, body) = exchange(&google, &form(&google, &subject)).await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["token_type"], "Bearer");
            assert_eq!(
                body["issued_token_type"],
                crate::google::fake_sts::ACCESS_TOKEN_TYPE
            );
            assert_eq!(body["expires_in"], 3600);
            let sts_token = body["access_token"].as_str().unwrap().to_string();
            let info = google.validate_token(&sts_token).unwrap();
            assert_eq!(info.issuer, TokenIssuer::Sts);
            assert!(
                info.principal
                    .ends_with(&format!("/subject/{ROLE}/session-1"))
            );

            let record = google.last_sts_request().unwrap();
            assert_eq!(record.field("subject_token"), Some("<redacted>"));
            assert_eq!(
                record.field("scope"),
                Some(crate::google::scopes::CLOUD_PLATFORM_SCOPE)
            );
            assert!(
                record
                    .x_goog_api_client
                    .unwrap()
                    .contains("sa-impersonation/true")
            );
            assert!(
                record
                    .subject_token_headers
                    .contains(&"x-amz-security-token".to_string())
            );
            assert!(!format!("{:?}", google.sts_requests()).contains("FQoG"));

            let (status, body) = generate(
                &google,
                &sts_token,
                json!({"scope": [crate::google::scopes::CLOUD_PLATFORM_SCOPE], "lifetime": "1800s"}),
            )
            .await;
            assert_eq!(status, 200, "{body}");
            let sa_token = body["accessToken"].as_str().unwrap();
            let info = google.validate_token(sa_token).unwrap();
            assert_eq!(
                info.principal,
                "serviceAccount:crossfed@my-project.iam.gserviceaccount.com"
            );
            let expire = time_format::parse_rfc3339(body["expireTime"].as_str().unwrap()).unwrap();
            assert!(
                expire.duration_since(std::time::SystemTime::now()).unwrap()
                    > Duration::from_secs(1790)
            );
            assert!(body["expireTime"].as_str().unwrap().ends_with('Z'));
            assert_eq!(
                (
                    google.calls(GoogleApi::Sts),
                    google.calls(GoogleApi::GenerateAccessToken)
                ),
                (1, 1)
            );
            assert_eq!(
                (
                    google.tokens_issued(GoogleApi::Sts),
                    google.tokens_issued(GoogleApi::GenerateAccessToken)
                ),
                (1, 1)
            );

            // An SA token is not bound to itself; a federated token is not valid for a lifetime > max.
            assert_eq!(
                generate(
                    &google,
                    sa_token,
                    json!({"scope": [crate::google::scopes::CLOUD_PLATFORM_SCOPE]})
                )
                .await
                .0,
                403
            );
            let (status, body) = generate(
                &google,
                &sts_token,
                json!({"scope": [crate::google::scopes::CLOUD_PLATFORM_SCOPE], "lifetime": "7200s"}),
            )
            .await;
            assert_eq!(
                (status, body["error"]["status"].as_str()),
                (400, Some("INVALID_ARGUMENT"))
            );
            google.set_iam_max_lifetime(Duration::from_secs(43200));
            assert_eq!(
                generate(
                    &google,
                    &sts_token,
                    json!({"scope": [crate::google::scopes::CLOUD_PLATFORM_SCOPE], "lifetime": "7200s"})
                )
                .await
                .0,
                200
            );
            let (status, body) = generate(
                &google,
                "ya29.nope",
                json!({"scope": [crate::google::scopes::CLOUD_PLATFORM_SCOPE]}),
            )
            .await;
            assert_eq!(
                (status, body["error"]["status"].as_str()),
                (401, Some("UNAUTHENTICATED"))
            );
            google.tokens().expire(&sts_token);
            assert_eq!(
                generate(
                    &google,
                    &sts_token,
                    json!({"scope": [crate::google::scopes::CLOUD_PLATFORM_SCOPE]})
                )
                .await
                .0,
                401
            );
        }

        async fn generate_id(google: &FakeGoogle, token: &str, body: Value) -> (u16, Value) {
            let response = reqwest::Client::new()
                .post(google.id_token_url())
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), response.json().await.unwrap())
        }

        #[tokio::test]
        async fn generate_id_token() {
            let aws = stub_aws();
            let google = start(&aws, None).await;
            let aws_url = google.config().aws_sts_url.clone();
            let subject = subject_token(&aws_url, &google.config().audience, GOOD_SIG);
            let (_, body) = exchange(&google, &form(&google, &subject)).await;
            let sts_token = body["access_token"].as_str().unwrap().to_string();

            let (status, body) = generate_id(
                &google,
                &sts_token,
                json!({"audience": "crossfed-test-audience", "includeEmail": true}),
            )
            .await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
            let claims = crate::google::id_tokens::verify(body["token"].as_str().unwrap()).unwrap();
            assert_eq!(claims.aud, "crossfed-test-audience");
            assert_eq!(claims.sub, DEFAULT_SERVICE_ACCOUNT_UNIQUE_ID);
            assert_eq!(claims.azp, DEFAULT_SERVICE_ACCOUNT_UNIQUE_ID);
            assert_eq!(
                claims.email.as_deref(),
                Some("crossfed@my-project.iam.gserviceaccount.com")
            );
            let (status, body) = generate_id(&google, &sts_token, json!({"audience": "a"})).await;
            assert_eq!(status, 200);
            let claims = crate::google::id_tokens::verify(body["token"].as_str().unwrap()).unwrap();
            assert!(claims.email.is_none() && claims.email_verified.is_none());
            let record = google.last_iam_request(GoogleApi::GenerateIdToken).unwrap();
            assert_eq!(record.body, Some(json!({"audience": "a"})));
            assert!(record.caller.unwrap().contains("/subject/"));
            assert!(
                !format!("{:?}", google.iam_requests(GoogleApi::GenerateIdToken)).contains("eyJ")
            );

            for bad in [
                json!({}),
                json!({"audience": ""}),
                json!({"audience": "a", "include_email": true}),
            ] {
                let (status, body) = generate_id(&google, &sts_token, bad.clone()).await;
                assert_eq!(
                    (status, body["error"]["status"].as_str()),
                    (400, Some("INVALID_ARGUMENT")),
                    "{bad}"
                );
            }
            assert_eq!(
                generate_id(&google, "ya29.nope", json!({"audience": "a"}))
                    .await
                    .0,
                401
            );

            let unbound = {
                let mut config = google.config().clone();
                config.bindings =
                    vec![config.principal_set_for_aws_role(
                        "arn:aws:sts::123456789012:assumed-role/other",
                    )];
                FakeGoogle::start(config).await
            };
            let (_, body) = exchange(&unbound, &form(&unbound, &subject)).await;
            let token = body["access_token"].as_str().unwrap();
            let (status, body) = generate_id(&unbound, token, json!({"audience": "a"})).await;
            assert_eq!(status, 403);
            assert_eq!(
                body["error"]["message"],
                "Permission 'iam.serviceAccounts.getOpenIdToken' denied on resource (or it may not exist)."
            );

            google.inject_faults(GoogleApi::GenerateIdToken, [Fault::Status(503)]);
            assert_eq!(
                generate_id(&google, &sts_token, json!({"audience": "a"}))
                    .await
                    .0,
                503
            );
            assert_eq!(
                (
                    google.calls(GoogleApi::GenerateIdToken),
                    google.tokens_issued(GoogleApi::GenerateIdToken)
                ),
                (7, 2)
            );
            assert_eq!(
                (
                    google.calls(GoogleApi::GenerateAccessToken),
                    google.pending_faults(GoogleApi::Sts),
                    google.pending_faults(GoogleApi::GenerateAccessToken),
                ),
                (0, 0, 0)
            );
        }

        #[tokio::test]
        async fn sts_rejections() {
            let aws = stub_aws();
            let google = start(&aws, None).await;
            let aws_url = google.config().aws_sts_url.clone();
            let audience = google.config().audience.clone();

            let bad_sig = subject_token(&aws_url, &audience, BAD_SIG);
            let (status, body) = exchange(&google, &form(&google, &bad_sig)).await;
            assert_eq!(
                (status, body["error"].as_str()),
                (400, Some("invalid_grant")),
                "{body}"
            );
            assert!(
                body["error_description"]
                    .as_str()
                    .unwrap()
                    .contains("signature is invalid")
            );

            let good = subject_token(&aws_url, &audience, GOOD_SIG);
            let mut f = form(&google, &good);
            f[1].1 = "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/x/providers/y";
            let (status, body) = exchange(&google, &f).await;
            assert_eq!(
                (status, body["error"].as_str()),
                (400, Some("invalid_target"))
            );

            // The pool where the provider belongs: Google's "Invalid value for audience".
            let pool = google.config().pool_audience().unwrap();
            let mut f = form(&google, &good);
            f[1].1 = &pool;
            let (status, body) = exchange(&google, &f).await;
            assert_eq!(
                (status, body["error"].as_str()),
                (400, Some("invalid_request"))
            );
            assert!(
                body["error_description"]
                    .as_str()
                    .unwrap()
                    .starts_with("Invalid value for \"audience\". This value should be the full resource name of the Identity Provider.")
            );

            let mut f = form(&google, &good);
            f[2].1 = "https://www.googleapis.com/auth/devstorage.read_only";
            assert_eq!(exchange(&google, &f).await.1["error"], "invalid_request");

            let wrong_target = subject_token(&aws_url, "//iam.googleapis.com/other", GOOD_SIG);
            let (_, body) = exchange(&google, &form(&google, &wrong_target)).await;
            assert_eq!(body["error"], "invalid_grant");
            assert!(
                body["error_description"]
                    .as_str()
                    .unwrap()
                    .contains("x-goog-cloud-target-resource")
            );

            google.inject_faults(
                GoogleApi::Sts,
                [
                    Fault::Status(503),
                    Fault::GoogleError {
                        status: 400,
                        error: "invalid_grant".into(),
                        description: "injected".into(),
                    },
                ],
            );
            assert_eq!(exchange(&google, &form(&google, &good)).await.0, 503);
            assert_eq!(
                exchange(&google, &form(&google, &good)).await.1["error_description"],
                "injected"
            );
            assert_eq!(exchange(&google, &form(&google, &good)).await.0, 200);
            assert_eq!(google.calls(GoogleApi::Sts), 8);
        }

        #[test]
        fn aws_role_mappings() {
            let arn = format!("{ROLE}/session-1");
            assert_eq!(
                AwsRoleMapping::AssumedRoleArn.aws_role(&arn).as_deref(),
                Some(ROLE)
            );
            assert_eq!(
                AwsRoleMapping::RoleName.aws_role(&arn).as_deref(),
                Some("crossfed-lambda")
            );
            assert_eq!(
                AwsRoleMapping::RoleName.aws_role("arn:aws:iam::1:user/bob"),
                None
            );
        }

        #[tokio::test]
        async fn a_subject_over_127_bytes_is_refused_as_google_does() {
            // A Lambda session: role and function names as CloudFormation generates them.
            let role = format!("arn:aws:sts::123456789012:assumed-role/{}", "r".repeat(64));
            let aws = stub_aws_as(format!("{role}/{}", "f".repeat(64)));
            let mut config = FakeGoogleConfig {
                aws_sts_url: format!("http://{}", aws.addr()),
                ..Default::default()
            };
            let google = FakeGoogle::start(config.clone()).await;
            let subject = subject_token(&config.aws_sts_url, &config.audience, GOOD_SIG);
            let (status, body) = exchange(&google, &form(&google, &subject)).await;
            assert_eq!(
                (status, body["error"].as_str()),
                (400, Some("invalid_request"))
            );
            assert!(
                body["error_description"].as_str().unwrap().starts_with(
                    "The size of mapped attribute google.subject exceeds the 127 bytes limit."
                ),
                "{body}"
            );
            // The role ARN without the session fits (111 bytes here).
            config.subject_mapping = SubjectMapping::AssumedRoleArn;
            let google = FakeGoogle::start(config.clone()).await;
            let (status, body) = exchange(&google, &form(&google, &subject)).await;
            assert_eq!(status, 200, "{body}");
            let info = google
                .validate_token(body["access_token"].as_str().unwrap())
                .unwrap();
            assert_eq!(
                info.principal,
                config.principal_for_aws_arn(&format!("{role}/s"))
            );
            assert!(info.principal.ends_with(&format!("/subject/{role}")));
        }

        #[tokio::test]
        async fn role_name_mapping_condition_and_binding() {
            let aws = stub_aws();
            let mut config = FakeGoogleConfig {
                aws_sts_url: format!("http://{}", aws.addr()),
                aws_role_mapping: AwsRoleMapping::RoleName,
                allowed_aws_roles: Some(vec!["crossfed-lambda".into()]),
                ..Default::default()
            };
            config.bindings = vec![config.principal_set_for_aws_role("crossfed-lambda")];
            let google = FakeGoogle::start(config.clone()).await;
            let subject = subject_token(&config.aws_sts_url, &config.audience, GOOD_SIG);
            let (status, body) = exchange(&google, &form(&google, &subject)).await;
            assert_eq!(status, 200, "{body}");
            let token = body["access_token"].as_str().unwrap();
            let (status, _) = generate(
                &google,
                token,
                json!({"scope": [crate::google::scopes::CLOUD_PLATFORM_SCOPE]}),
            )
            .await;
            assert_eq!(status, 200);
            // The full-ARN principal set the default mapping would give matches nothing here.
            config.bindings = vec![config.principal_set_for_aws_role(ROLE)];
            config.allowed_aws_roles = Some(vec![ROLE.into()]);
            let google = FakeGoogle::start(config).await;
            let (_, body) = exchange(&google, &form(&google, &subject)).await;
            assert_eq!(body["error"], "unauthorized_client");
        }

        #[tokio::test]
        async fn attribute_condition_and_bindings() {
            let aws = stub_aws();
            let google = start(
                &aws,
                Some(vec!["arn:aws:sts::123456789012:assumed-role/other".into()]),
            )
            .await;
            let subject = subject_token(
                &google.config().aws_sts_url,
                &google.config().audience,
                GOOD_SIG,
            );
            let (status, body) = exchange(&google, &form(&google, &subject)).await;
            assert_eq!(
                (status, body["error"].as_str()),
                (400, Some("unauthorized_client"))
            );

            let unbound = {
                let mut config = google.config().clone();
                config.allowed_aws_roles = None;
                config.bindings =
                    vec![config.principal_set_for_aws_role(
                        "arn:aws:sts::123456789012:assumed-role/other",
                    )];
                FakeGoogle::start(config).await
            };
            let (status, body) = exchange(&unbound, &form(&unbound, &subject)).await;
            assert_eq!(status, 200, "{body}");
            let token = body["access_token"].as_str().unwrap();
            let (status, body) = generate(
                &unbound,
                token,
                json!({"scope": [crate::google::scopes::CLOUD_PLATFORM_SCOPE]}),
            )
            .await;
            assert_eq!(
                (status, body["error"]["status"].as_str()),
                (403, Some("PERMISSION_DENIED"))
            );
            assert_eq!(
                body["error"]["message"],
                "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist)."
            );
            assert_eq!(
                unbound
                    .last_iam_request(GoogleApi::GenerateAccessToken)
                    .unwrap()
                    .status,
                403
            );
        }
    }
}
