//! The `crossfed-extension` binary under a local Lambda Extensions API + Runtime API, with
//! Google's unmodified Python (run by `awslambdaric`) and Node.js libraries as its clients,
//! against moto, the fake Google STS / IAM Credentials and fake-gcs-server behind a
//! token-checking proxy.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use crossfed::google::Credentials;
use crossfed_extension::federated::FederatedBackend;
use crossfed_extension::server;
use crossfed_tests::google::id_tokens;
use crossfed_tests::scenario::{ConfigShape, Scenario, quick_context};
use crossfed_tests::{
    FakeGcsServer, Fault, GcsFaultProxy, GoogleApi, LambdaError, LambdaRuntimeApi, TokenIssuer,
    free_addr, venv_python,
};
use serde_json::{Value, json};

const TOKEN_PATH: &str = "/computeMetadata/v1/instance/service-accounts/default/token";
const SERVICE_ACCOUNT: &str = "crossfed@my-project.iam.gserviceaccount.com";

fn clients() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

/// A child process, killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Process {
    fn spawn(
        program: &std::path::Path,
        args: &[&str],
        env: &[(String, String)],
        dir: Option<PathBuf>,
    ) -> Self {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .stdin(Stdio::null());
        if let Some(dir) = dir {
            cmd.current_dir(dir);
        }
        Process(
            cmd.spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display())),
        )
    }

    /// Waits up to `limit` for the exit; `None` if still running.
    async fn wait(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let until = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.0.try_wait() {
                return Some(status);
            }
            if Instant::now() > until {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// The extension running under the local Lambda APIs.
struct Running {
    scenario: Scenario,
    api: LambdaRuntimeApi,
    addr: SocketAddr,
    env: Vec<(String, String)>,
    extension: Process,
}

const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:python-list-buckets";

async fn start_with(scenario: Scenario, extra: &[(&str, &str)]) -> Running {
    let api = LambdaRuntimeApi::start_with_arn(FUNCTION_ARN).await;
    start_on(api, scenario, extra).await
}

/// The extension under `api` (the local Lambda APIs) with `scenario`'s clouds.
async fn start_on(api: LambdaRuntimeApi, scenario: Scenario, extra: &[(&str, &str)]) -> Running {
    let addr = free_addr();
    api.probe_on_register(addr);
    let addr_text = addr.to_string();
    let mut vars = vec![
        ("CROSSFED_METADATA_ADDR", addr_text.as_str()),
        ("GCE_METADATA_HOST", addr_text.as_str()),
        ("GCE_METADATA_IP", addr_text.as_str()),
    ];
    vars.extend_from_slice(extra);
    let env = scenario
        .function_env(&api, "python-list-buckets", &vars)
        .await;
    let extension = Process::spawn(
        std::path::Path::new(env!("CARGO_BIN_EXE_crossfed-extension")),
        &[],
        &env,
        None,
    );
    Running {
        scenario,
        api,
        addr,
        env,
        extension,
    }
}

async fn start() -> Running {
    registered(start_with(Scenario::start().await, &[]).await).await
}

/// `running` once its extension has registered (within 10 s).
async fn registered(running: Running) -> Running {
    assert!(
        running
            .api
            .wait_for_extensions(1, Duration::from_secs(10))
            .await,
        "the extension did not register"
    );
    running
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

impl Running {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn token(&self) -> Value {
        let resp = http()
            .get(self.url(TOKEN_PATH))
            .header("Metadata-Flavor", "Google")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp.json().await.unwrap()
    }

    /// `token` is the one the extension holds for the token's scopes (the clients ask for
    /// their own scope sets).
    async fn assert_issued_by_extension(&self, token: &str) {
        let info = self
            .scenario
            .google
            .validate_token(token)
            .expect("a live token");
        let resp = http()
            .get(self.url(&format!("{TOKEN_PATH}?scopes={}", info.scopes.join(","))))
            .header("Metadata-Flavor", "Google")
            .send()
            .await
            .unwrap();
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["access_token"], token, "scopes {:?}", info.scopes);
    }

    /// A bucket with one object in fake-gcs-server, and the token-checking proxy before it.
    async fn storage(&self) -> (GcsFaultProxy, String, String) {
        let gcs = FakeGcsServer::from_local_cloud(&self.scenario.cloud);
        let bucket = gcs.create_unique_bucket("crossfed-ext").await;
        gcs.upload(
            &bucket,
            &json!({ "name": "hello.txt" }),
            b"hello through the metadata server",
        )
        .await
        .expect("upload hello.txt");
        let proxy =
            GcsFaultProxy::start_checking_tokens(gcs.url(), self.scenario.google.tokens()).await;
        (proxy, bucket, "hello.txt".into())
    }

    /// Every request that reached the proxy carried `token`, and they all succeeded.
    fn assert_all_carried(&self, proxy: &GcsFaultProxy, token: &str) {
        let requests = proxy.requests();
        assert!(requests.len() >= 2, "{requests:?}");
        for r in &requests {
            assert_eq!(r.bearer.as_deref(), Some(token), "{} {}", r.method, r.path);
            assert!(r.status < 300, "{} {} -> {}", r.method, r.path, r.status);
        }
        let info = self
            .scenario
            .google
            .validate_token(token)
            .expect("a live token the fake IAM minted");
        assert_eq!(info.issuer, TokenIssuer::Iam);
        assert_eq!(info.principal, format!("serviceAccount:{SERVICE_ACCOUNT}"));
    }

    async fn shutdown_within_lambda_budget(mut self) {
        self.api.shutdown_extensions("spindown");
        let status = self.extension.wait(Duration::from_secs(2)).await;
        assert!(
            status.is_some_and(|s| s.success()),
            "no clean exit within 2 s: {status:?}"
        );
    }
}

fn python() -> PathBuf {
    venv_python(".venv-ext", "ext-clients")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_google_libraries_use_the_extension_with_no_code_change() {
    let running = start().await;
    assert_eq!(
        running.api.extensions()[0].probe_connected,
        Some(true),
        "the metadata server must listen before the extension registers"
    );
    assert_eq!(running.api.extensions()[0].name, "crossfed-extension");
    let (proxy, bucket, object) = running.storage().await;
    let mut env = running.env.clone();
    env.retain(|(k, _)| !k.starts_with("CROSSFED_") && k != "AWS_ENDPOINT_URL");
    env.push(("TEST_STORAGE_ENDPOINT".into(), proxy.url()));
    env.push(("_HANDLER".into(), "app.handler".into()));
    env.push((
        "LAMBDA_TASK_ROOT".into(),
        clients().join("python").display().to_string(),
    ));
    let _runtime = Process::spawn(
        &python(),
        &["-m", "awslambdaric", "app.handler"],
        &env,
        Some(clients().join("python")),
    );
    let audience = "https://my-service.example.com";
    let polls_before = running.api.extension_polls();
    let result = running
        .api
        .invoke(json!({"bucket": bucket, "object": object, "audience": audience}))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        result["default_credentials"],
        "google.auth.compute_engine.credentials.Credentials"
    );
    assert_eq!(result["default_project"], "my-project");
    assert_eq!(result["storage_project"], "my-project");
    assert_eq!(result["service_account"], SERVICE_ACCOUNT);
    assert_eq!(
        result["buckets"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b == &&json!(bucket))
            .count(),
        1
    );
    assert_eq!(result["object"], "hello through the metadata server");
    let token = result["token"].as_str().unwrap();
    running.assert_issued_by_extension(token).await;
    running.assert_all_carried(&proxy, token);
    let claims = id_tokens::verify(result["id_token"].as_str().unwrap()).expect("a valid ID token");
    assert_eq!(claims.aud, audience);
    assert_eq!(running.scenario.google.calls(GoogleApi::GenerateIdToken), 1);
    assert_eq!(
        running.scenario.google.calls(GoogleApi::Sts),
        1,
        "one STS exchange serves access and ID tokens"
    );
    // The extension got the INVOKE and came back for the next event.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        running.api.extension_polls() > polls_before,
        "no event/next after INVOKE"
    );
    // One access token: the storage client's scope set. The extension warms only the
    // federated token at init and mints no token for a scope set nobody asked for (nor
    // on INVOKE).
    assert_eq!(
        running
            .scenario
            .google
            .calls(GoogleApi::GenerateAccessToken),
        1
    );
    let scopes = running
        .scenario
        .google
        .last_iam_request(GoogleApi::GenerateAccessToken)
        .and_then(|r| r.body)
        .map(|b| b["scope"].clone());
    assert_eq!(
        scopes,
        Some(json!([
            "https://www.googleapis.com/auth/devstorage.full_control",
            "https://www.googleapis.com/auth/devstorage.read_only",
            "https://www.googleapis.com/auth/devstorage.read_write"
        ]))
    );
    // A second invocation makes no auth call.
    let (sts, iam, id) = (
        running.scenario.google.calls(GoogleApi::Sts),
        running
            .scenario
            .google
            .calls(GoogleApi::GenerateAccessToken),
        running.scenario.google.calls(GoogleApi::GenerateIdToken),
    );
    running
        .api
        .invoke(json!({"bucket": bucket, "object": object, "audience": audience}))
        .await
        .unwrap();
    assert_eq!(
        (
            running.scenario.google.calls(GoogleApi::Sts),
            running
                .scenario
                .google
                .calls(GoogleApi::GenerateAccessToken),
            running.scenario.google.calls(GoogleApi::GenerateIdToken)
        ),
        (sts, iam, id)
    );
    assert!(running.api.extension_init_errors().is_empty());
    running.shutdown_within_lambda_budget().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_google_libraries_use_the_extension_with_no_code_change() {
    let running = start().await;
    let (proxy, bucket, object) = running.storage().await;
    let node_dir = clients().join("node");
    assert!(
        node_dir.join("node_modules/@google-cloud/storage").exists(),
        "run `make ext-clients` (npm ci)"
    );
    let mut env = running.env.clone();
    env.retain(|(k, _)| !k.starts_with("CROSSFED_") && !k.starts_with("AWS_"));
    env.push(("TEST_STORAGE_ENDPOINT".into(), proxy.url()));
    env.push(("HOME".into(), std::env::temp_dir().display().to_string()));
    let audience = "https://node.example.com";
    let output = tokio::process::Command::new("node")
        .args(["check.mjs", &bucket, &object, audience])
        .current_dir(&node_dir)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .await
        .expect("node");
    assert!(
        output.status.success(),
        "node failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let result: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(result["client"], "Compute");
    assert_eq!(result["project"], "my-project");
    assert_eq!(result["object"], "hello through the metadata server");
    assert!(
        result["buckets"]
            .as_array()
            .unwrap()
            .contains(&json!(bucket))
    );
    let token = result["token"].as_str().unwrap();
    running.assert_issued_by_extension(token).await;
    running.assert_all_carried(&proxy, token);
    let claims = id_tokens::verify(result["id_token"].as_str().unwrap()).expect("a valid ID token");
    assert_eq!(claims.aud, audience);
    running.shutdown_within_lambda_budget().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cold_parallel_requests_make_one_sts_and_one_iam_call() {
    // No warm-up race: the extension's own warm-up (the federated token) is one of the
    // concurrent callers.
    let running = start().await;
    let client = http();
    let burst = |n: usize| {
        let tasks: Vec<_> = (0..n)
            .map(|_| {
                let (client, url) = (client.clone(), running.url(TOKEN_PATH));
                tokio::spawn(async move {
                    let resp = client
                        .get(url)
                        .header("Metadata-Flavor", "Google")
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(resp.status(), 200);
                    assert_eq!(resp.headers()["metadata-flavor"], "Google");
                    assert!(
                        resp.headers()["content-type"]
                            .to_str()
                            .unwrap()
                            .starts_with("application/json")
                    );
                    let v: Value = resp.json().await.unwrap();
                    assert_eq!(v["token_type"], "Bearer");
                    assert!(v["expires_in"].as_u64().unwrap() > 0);
                    v["access_token"].as_str().unwrap().to_string()
                })
            })
            .collect();
        async move {
            let mut tokens = Vec::new();
            for t in tasks {
                tokens.push(t.await.unwrap());
            }
            tokens
        }
    };
    let cold = burst(100).await;
    assert!(cold.iter().all(|t| *t == cold[0]));
    let google = &running.scenario.google;
    assert_eq!(
        (
            google.calls(GoogleApi::Sts),
            google.calls(GoogleApi::GenerateAccessToken)
        ),
        (1, 1)
    );
    let warm = burst(100).await;
    assert!(warm.iter().all(|t| *t == cold[0]));
    assert_eq!(
        (
            google.calls(GoogleApi::Sts),
            google.calls(GoogleApi::GenerateAccessToken)
        ),
        (1, 1),
        "warm requests make no auth call"
    );
    // Another scope set: its own token, the same federated token.
    let scoped: Value = client
        .get(running.url(&format!("{TOKEN_PATH}?scopes=https://www.googleapis.com/auth/devstorage.read_only,https://www.googleapis.com/auth/userinfo.email&alt=json")))
        .header("Metadata-Flavor", "Google")
        .send().await.unwrap().json().await.unwrap();
    let info = google
        .validate_token(scoped["access_token"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        info.scopes,
        [
            "https://www.googleapis.com/auth/devstorage.read_only",
            "https://www.googleapis.com/auth/userinfo.email"
        ]
    );
    assert_eq!(
        (
            google.calls(GoogleApi::Sts),
            google.calls(GoogleApi::GenerateAccessToken)
        ),
        (1, 2)
    );
    // ID tokens: one generateIdToken per audience, cached, with the same STS token.
    for _ in 0..3 {
        let resp = client
            .get(running.url("/computeMetadata/v1/instance/service-accounts/default/identity?audience=aud-1&format=full&licenses=FALSE"))
            .header("Metadata-Flavor", "Google")
            .send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let claims = id_tokens::verify(&resp.text().await.unwrap()).unwrap();
        assert_eq!(
            (claims.aud.as_str(), claims.email.as_deref()),
            ("aud-1", Some(SERVICE_ACCOUNT))
        );
    }
    assert_eq!(
        (
            google.calls(GoogleApi::Sts),
            google.calls(GoogleApi::GenerateIdToken)
        ),
        (1, 1)
    );
    running.shutdown_within_lambda_budget().await;
}

#[tokio::test]
async fn refuses_requests_without_the_header_or_through_a_proxy() {
    let running = start().await;
    let client = http();
    for (name, request) in [
        ("no header", client.get(running.url(TOKEN_PATH))),
        (
            "wrong header",
            client
                .get(running.url(TOKEN_PATH))
                .header("Metadata-Flavor", "Amazon"),
        ),
        (
            "forwarded",
            client
                .get(running.url(TOKEN_PATH))
                .header("Metadata-Flavor", "Google")
                .header("X-Forwarded-For", "10.0.0.1"),
        ),
    ] {
        let resp = request.send().await.unwrap();
        assert_eq!(resp.status(), 403, "{name}");
        assert_eq!(resp.headers()["metadata-flavor"], "Google");
        assert!(!resp.text().await.unwrap().contains("ya29"), "{name}");
    }
    let resp = client
        .post(running.url(TOKEN_PATH))
        .header("Metadata-Flavor", "Google")
        .body("x")
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_client_error());
    let long = "a".repeat(5000);
    let resp = client
        .get(running.url(&format!("{TOKEN_PATH}?scopes={long}")))
        .header("Metadata-Flavor", "Google")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 414);
    let resp = client
        .get(running.url("/computeMetadata/v1/instance/attributes/x"))
        .header("Metadata-Flavor", "Google")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    running.token().await;
    assert_eq!(
        running
            .scenario
            .google
            .calls(GoogleApi::GenerateAccessToken),
        1,
        "refused requests fetch nothing"
    );
    running.shutdown_within_lambda_budget().await;
}

/// Starts the extension expecting an init error; returns its message.
async fn init_error(scenario: Scenario, extra: &[(&str, &str)], remove: &[&str]) -> String {
    let mut running = start_with(scenario, extra).await;
    // Re-spawn without the removed variables when asked.
    if !remove.is_empty() {
        drop(std::mem::replace(
            &mut running.extension,
            Process::spawn(std::path::Path::new("true"), &[], &[], None),
        ));
        let mut env = running.env.clone();
        env.retain(|(k, _)| !remove.contains(&k.as_str()));
        running.api = LambdaRuntimeApi::start().await;
        env.retain(|(k, _)| k != "AWS_LAMBDA_RUNTIME_API");
        env.push(("AWS_LAMBDA_RUNTIME_API".into(), running.api.address()));
        running.extension = Process::spawn(
            std::path::Path::new(env!("CARGO_BIN_EXE_crossfed-extension")),
            &[],
            &env,
            None,
        );
    }
    let status = running.extension.wait(Duration::from_secs(20)).await;
    assert!(
        status.is_some_and(|s| !s.success()),
        "the extension must exit with an error: {status:?}"
    );
    let errors = running.api.extension_init_errors();
    assert_eq!(errors.len(), 1, "{errors:?}");
    match &errors[0] {
        LambdaError::Init {
            error_type,
            error_message,
        } => {
            assert_eq!(error_type, "Extension.ConfigError");
            error_message.clone()
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn config_problems_fail_the_init_with_what_to_fix() {
    let message = init_error(Scenario::start().await, &[], &["CROSSFED_CONFIG_PARAMETER"]).await;
    assert!(
        message.contains("set CROSSFED_CONFIG_PARAMETER"),
        "{message}"
    );

    let message = init_error(
        Scenario::start().await,
        &[("CROSSFED_METADATA_ADDR", "0.0.0.0:8173")],
        &[],
    )
    .await;
    assert!(message.contains("not a loopback address"), "{message}");

    // A parameter that does not exist: the library's message, as the functions give it.
    let scenario = Scenario::start().await;
    let missing = format!("/crossfed/missing-{:x}", fastrand::u32(..));
    let message = init_error(scenario, &[("CROSSFED_CONFIG_PARAMETER", &missing)], &[]).await;
    assert!(
        message.starts_with(&format!(
            "loading the credential configuration failed: reading SSM parameter `{missing}` failed: ParameterNotFound"
        )),
        "{message}"
    );
    assert!(
        message.contains("check the name and the region"),
        "{message}"
    );
}

/// A wall clock the test moves forward, as a thawed sandbox sees it.
#[derive(Debug)]
struct JumpClock(AtomicU64);

impl crossfed::Clock for JumpClock {
    fn now(&self) -> SystemTime {
        SystemTime::now() + Duration::from_secs(self.0.load(Ordering::SeqCst))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_that_expired_while_frozen_is_replaced_on_the_next_request() {
    let s = Scenario::start().await;
    let clock = Arc::new(JumpClock(AtomicU64::new(0)));
    let credentials = s
        .builder(&s.config_json(&ConfigShape {
            lifetime_secs: Some(600),
            ..ConfigShape::default()
        }))
        .with_context(quick_context().with_clock(clock.clone()))
        .build()
        .unwrap();
    let (addr, serving) = serve(credentials).await;
    let get = || async {
        let v: Value = http()
            .get(format!("http://{addr}{TOKEN_PATH}"))
            .header("Metadata-Flavor", "Google")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["access_token"].as_str().unwrap().to_string()
    };
    let first = get().await;
    assert_eq!(get().await, first);
    // Frozen for 700 s: the 600 s token expired meanwhile (the federated one did not).
    clock.0.store(700, Ordering::SeqCst);
    let second = get().await;
    assert_ne!(second, first);
    assert!(s.google.validate_token(&second).is_some());
    assert_eq!(
        (
            s.google.calls(GoogleApi::Sts),
            s.google.calls(GoogleApi::GenerateAccessToken)
        ),
        (1, 2)
    );
    serving.abort();
}

/// The metadata server on loopback, in process, serving `credentials`.
async fn serve(credentials: Credentials) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let backend = Arc::new(FederatedBackend::new(credentials, None));
    let listener = server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    (addr, tokio::spawn(server::serve(listener, backend)))
}

/// [`serve`] with the scenario's federated credentials (quick retries).
async fn serve_federated(s: &Scenario) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let credentials = s
        .builder(&s.config_json(&ConfigShape::default()))
        .with_context(quick_context())
        .build()
        .unwrap();
    serve(credentials).await
}

/// A scope set takes one of the 16 slots only once it obtained a token: scope sets whose
/// token request failed do not lock the next client out.
#[tokio::test]
async fn failed_scope_sets_do_not_fill_the_table() {
    let s = Scenario::start().await;
    let (addr, serving) = serve_federated(&s).await;
    let get = |scope: String| async move {
        http()
            .get(format!("http://{addr}{TOKEN_PATH}?scopes={scope}"))
            .header("Metadata-Flavor", "Google")
            .send()
            .await
            .unwrap()
            .status()
    };
    s.google.inject_faults(
        GoogleApi::GenerateAccessToken,
        (0..20).map(|_| Fault::Status(403)),
    );
    for i in 0..20 {
        let status = get(format!("https://www.googleapis.com/auth/junk{i}")).await;
        assert!(!status.is_success(), "junk{i}: {status}");
    }
    assert_eq!(s.google.calls(GoogleApi::GenerateAccessToken), 20);
    let status = get("https://www.googleapis.com/auth/devstorage.read_only".into()).await;
    assert_eq!(status, 200, "a real scope set after 20 failed ones");
    // Sixteen scope sets that obtained tokens fill the table; the 17th is refused.
    for i in 1..16 {
        let status = get(format!("https://www.googleapis.com/auth/ok{i}")).await;
        assert_eq!(status, 200, "ok{i}");
    }
    let status = get("https://www.googleapis.com/auth/one-too-many".into()).await;
    assert_eq!(status, 400);
    serving.abort();
}

/// DNS rebinding: a page on another name that resolves to 127.0.0.1 sends that name as
/// `Host`; the metadata server answers only to its own names.
#[tokio::test]
async fn requests_for_another_host_are_refused() {
    let s = Scenario::start().await;
    let (addr, serving) = serve_federated(&s).await;
    let port = addr.port();
    for (host, expected) in [
        (format!("evil.example:{port}"), 403),
        (format!("127.0.0.1.nip.io:{port}"), 403),
        (format!("localhost:{port}"), 200),
        (format!("127.0.0.1:{port}"), 200),
    ] {
        let status = http()
            .get(format!("http://{addr}{TOKEN_PATH}"))
            .header("Metadata-Flavor", "Google")
            .header("Host", &host)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, expected, "{host}");
    }
    assert_eq!(
        s.google.calls(GoogleApi::Sts),
        1,
        "refused requests reach no Google API"
    );
    serving.abort();
}

/// Lambda Managed Instances refuse INVOKE registrations and never freeze the sandbox: the
/// extension registers for SHUTDOWN only (init succeeds), and serves concurrent invocations'
/// clients with one exchange per scope set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_managed_instances_registers_for_shutdown_only_and_serves_concurrent_clients() {
    let api = LambdaRuntimeApi::start_managed_instances(FUNCTION_ARN).await;
    let running = registered(
        start_on(
            api,
            Scenario::start().await,
            &[("AWS_LAMBDA_INITIALIZATION_TYPE", "lambda-managed-instances")],
        )
        .await,
    )
    .await;
    assert_eq!(running.api.extensions()[0].events, ["SHUTDOWN"]);
    assert!(running.api.extension_init_errors().is_empty());
    let storage = "https://www.googleapis.com/auth/devstorage.read_only";
    let requests: Vec<_> = (0..16)
        .map(|i| {
            let url = if i % 2 == 0 {
                running.url(TOKEN_PATH)
            } else {
                running.url(&format!("{TOKEN_PATH}?scopes={storage}"))
            };
            tokio::spawn(async move {
                let resp = http()
                    .get(url)
                    .header("Metadata-Flavor", "Google")
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 200);
                resp.json::<Value>().await.unwrap()["access_token"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
        })
        .collect();
    let mut tokens = Vec::new();
    for request in requests {
        tokens.push(request.await.unwrap());
    }
    let distinct: std::collections::HashSet<_> = tokens.iter().collect();
    assert_eq!(distinct.len(), 2, "one token per scope set");
    assert_eq!(
        (
            running.scenario.google.calls(GoogleApi::Sts),
            running
                .scenario
                .google
                .calls(GoogleApi::GenerateAccessToken)
        ),
        (1, 2),
        "1 STS exchange, 1 IAM call per scope set"
    );
}

/// Debian's libfaketime (`make test-tools` installs it as root). `None` where it is missing
/// outside CI (a normal user's machine); under CI it must be there.
fn libfaketime() -> Option<PathBuf> {
    let path = PathBuf::from(format!(
        "/usr/lib/{}-linux-gnu/faketime/libfaketime.so.1",
        std::env::consts::ARCH
    ));
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{} is missing: run `make test-tools` as root (Debian's libfaketime)",
        path.display()
    );
    eprintln!(
        "skipped: {} is missing (sudo apt-get install libfaketime)",
        path.display()
    );
    None
}

/// Sends `signal` (`STOP`, `CONT`) to the extension process.
fn signal(running: &Running, signal: &str) {
    let status = Command::new("kill")
        .args([format!("-{signal}"), running.extension.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} failed");
}

/// SnapStart: a token minted before the snapshot is never served after a restore. The real
/// extension process is frozen (SIGSTOP) and thawed with its wall clock 10 minutes ahead and
/// its own time not (libfaketime moves `CLOCK_REALTIME` only), as a sandbox restored from a
/// snapshot sees it: a new token, from a new STS exchange. A freeze alone keeps the token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_snap_start_a_token_minted_before_the_snapshot_is_not_served_after_a_restore() {
    let Some(preload) = libfaketime() else {
        return;
    };
    let offset = std::env::temp_dir().join(format!("crossfed-faketime-{:x}", fastrand::u64(..)));
    std::fs::write(&offset, "+0\n").unwrap();
    let running = registered(
        start_with(
            Scenario::start().await,
            &[
                ("AWS_LAMBDA_INITIALIZATION_TYPE", "snap-start"),
                ("LD_PRELOAD", preload.to_str().unwrap()),
                ("FAKETIME_TIMESTAMP_FILE", offset.to_str().unwrap()),
                ("FAKETIME_NO_CACHE", "1"),
                ("DONT_FAKE_MONOTONIC", "1"),
            ],
        )
        .await,
    )
    .await;
    assert_eq!(running.api.extensions()[0].events, ["INVOKE", "SHUTDOWN"]);
    let google = &running.scenario.google;
    let calls = || google.token_calls();
    let token = |v: Value| v["access_token"].as_str().unwrap().to_string();
    let before = token(running.token().await);
    assert_eq!(calls(), (1, 1));

    // Frozen between invocations, both clocks move on: the token is kept.
    signal(&running, "STOP");
    tokio::time::sleep(Duration::from_millis(300)).await;
    signal(&running, "CONT");
    assert_eq!(token(running.token().await), before);
    assert_eq!(calls(), (1, 1));

    // Restored from the snapshot: only the wall clock jumped.
    signal(&running, "STOP");
    std::fs::write(&offset, "+600\n").unwrap();
    signal(&running, "CONT");
    let after = token(running.token().await);
    assert_ne!(
        after, before,
        "the token minted before the snapshot was served"
    );
    assert!(google.validate_token(&after).is_some());
    assert_eq!(calls(), (2, 2), "a new STS exchange and impersonation");
    // The new token is cached again.
    assert_eq!(token(running.token().await), after);
    assert_eq!(calls(), (2, 2));
    let _ = std::fs::remove_file(&offset);
}
