//! The cold start: logs, the function's own init, and init-error reporting to the Lambda
//! Runtime API (`/runtime/init/error`), so a failed init says what to fix instead of a bare
//! `Runtime.ExitError`.

use std::error::Error;
use std::future::Future;
use std::time::Duration;

use crate::env::Env;
use crate::error_chain::chain;
use crate::logging;

/// The error type of Lambda handlers and init (`lambda_runtime::Error`).
pub type BoxError = lambda_runtime::Error;

/// The Runtime API address variable (`host:port`).
pub const RUNTIME_API_ENV: &str = "AWS_LAMBDA_RUNTIME_API";

/// Sets up logs ([`logging::init`]) and runs `init` on the process environment; a failure is
/// logged and reported ([`report_error`]) before it is returned.
///
/// ```no_run
/// # struct App;
/// # impl App { async fn from_env(_: crossfed_kit::Env) -> Result<App, crossfed_kit::BoxError> { Ok(App) } }
/// # async fn f() -> Result<(), crossfed_kit::BoxError> {
/// let app = crossfed_kit::cold_start(App::from_env).await?;
/// # Ok(()) }
/// ```
pub async fn cold_start<T, E, Fut>(init: impl FnOnce(Env) -> Fut) -> Result<T, BoxError>
where
    Fut: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    let env = Env::process();
    logging::init(&env);
    // Boxed: a function's init future is large (many clients) and would otherwise be laid out
    // inline in `main`'s.
    match Box::pin(init(env.clone())).await {
        Ok(app) => Ok(app),
        Err(e) => {
            let e: BoxError = e.into();
            report_error(&env, &*e).await;
            Err(e)
        }
    }
}

/// Logs an init failure and posts it (message = the whole error chain) to the Runtime API
/// named by `AWS_LAMBDA_RUNTIME_API` in `env`. Outside Lambda it only logs.
pub async fn report_error(env: &Env, error: &(dyn Error + 'static)) {
    let message = chain(error);
    tracing::error!(error = %message, "initialization failed");
    let Some(api) = env.get(RUNTIME_API_ENV) else {
        return;
    };
    let client = match reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
    {
        Ok(client) => client,
        Err(e) => {
            tracing::warn!(error = %chain(&e), "could not report the init error to the Runtime API");
            return;
        }
    };
    let sent = client
        .post(format!("http://{api}/2018-06-01/runtime/init/error"))
        .header("Lambda-Runtime-Function-Error-Type", "Runtime.InitError")
        .json(&serde_json::json!({
            "errorType": "Runtime.InitError",
            "errorMessage": message,
        }))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status);
    if let Err(e) = sent {
        tracing::warn!(error = %chain(&e), "could not report the init error to the Runtime API");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossfed_tests::{LambdaError, LambdaRuntimeApi};

    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("building the clients failed")
        }
    }

    impl Error for Outer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    #[tokio::test]
    async fn reports_the_whole_chain_to_the_runtime_api() {
        let runtime = LambdaRuntimeApi::start().await;
        let env = Env::from_pairs([(RUNTIME_API_ENV, runtime.address())]);
        let error = Outer(std::io::Error::other("connection refused"));
        report_error(&env, &error).await;
        let Some(LambdaError::Init { error_message, .. }) = runtime.init_error() else {
            panic!("{:?}", runtime.init_error())
        };
        assert_eq!(
            error_message,
            "building the clients failed: connection refused"
        );
    }

    #[tokio::test]
    async fn outside_lambda_only_logs() {
        report_error(
            &Env::from_pairs([("X", "1")]),
            &Outer(std::io::Error::other("x")),
        )
        .await;
    }
}
