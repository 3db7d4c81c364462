//! Plumbing every crossfed Lambda function shares: JSON logs and init-error reporting.

use std::fmt::Display;
use std::time::Duration;

/// JSON logs (Lambda's JSON log format), level from `RUST_LOG` (default `info`).
pub fn init_tracing() {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_target(false)
        .without_time()
        .init();
}

/// Logs an initialization failure and reports it to the Lambda Runtime API
/// (`/runtime/init/error`), so the invocation fails with what to fix instead of a bare
/// `Runtime.ExitError`. Does nothing more outside Lambda.
pub async fn report_init_error(error: &dyn Display) {
    tracing::error!(error = %error, "initialization failed");
    let Ok(api) = std::env::var("AWS_LAMBDA_RUNTIME_API") else {
        return;
    };
    let Ok(client) = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
    else {
        return;
    };
    let sent = client
        .post(format!("http://{api}/2018-06-01/runtime/init/error"))
        .header("Lambda-Runtime-Function-Error-Type", "Runtime.InitError")
        .json(&serde_json::json!({
            "errorType": "Runtime.InitError",
            "errorMessage": error.to_string(),
        }))
        .send()
        .await;
    if let Err(e) = sent {
        tracing::warn!(error = %e, "could not report the init error to the Runtime API");
    }
}

/// Passes an init result through, reporting an error first (see [`report_init_error`]):
/// `let app = crossfed::lambda::check_init(App::from_env().await).await?;`
pub async fn check_init<T, E: Display>(result: Result<T, E>) -> Result<T, E> {
    if let Err(e) = &result {
        report_init_error(e).await;
    }
    result
}
