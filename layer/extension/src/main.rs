//! `crossfed-extension`: wiring only (see the library docs for the flow).

use std::process::ExitCode;
use std::sync::Arc;

use crossfed::ErrorChain;
use crossfed_extension::federated::FederatedBackend;
use crossfed_extension::settings::{Initialization, Settings};
use crossfed_extension::{lifecycle, server};
use lambda_extension::{Extension, LambdaEvent, service_fn};
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// The extension's name: its file name under `/opt/extensions`.
const NAME: &str = "crossfed-extension";

fn main() -> ExitCode {
    crossfed_lambda_log::init(|key| std::env::var(key).ok());
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(run()),
        Err(e) => {
            tracing::error!(error = %e, "cannot start the Tokio runtime");
            ExitCode::FAILURE
        }
    }
}

async fn prepare() -> Result<(TcpListener, Arc<FederatedBackend>, Initialization), String> {
    let settings = Settings::from_env(|k| std::env::var(k).ok())?;
    for warning in &settings.warnings {
        tracing::warn!("{warning}");
    }
    let backend =
        FederatedBackend::from_settings(&settings).map_err(|e| ErrorChain(&e).to_string())?;
    let listener = server::bind(settings.addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", settings.addr))?;
    Ok((listener, Arc::new(backend), settings.initialization))
}

async fn run() -> ExitCode {
    // Listen before registering: Lambda starts the runtime once every extension has
    // registered, and the function's init may ask for a token right away.
    let prepared = prepare().await;
    let shutdown = Arc::new(Notify::new());
    let backend = prepared.as_ref().ok().map(|(_, b, _)| b.clone());
    // Without settings, register as usual so that the init error reaches Lambda.
    let initialization = prepared
        .as_ref()
        .map_or(Initialization::default(), |(_, _, initialization)| {
            *initialization
        });
    let processor = {
        let shutdown = shutdown.clone();
        service_fn(move |event: LambdaEvent| {
            let backend = backend.clone();
            let shutdown = shutdown.clone();
            async move {
                match &backend {
                    Some(b) => lifecycle::on_event(&**b, event.next, &shutdown).await,
                    None => shutdown.notify_one(),
                }
                Ok::<(), lambda_extension::Error>(())
            }
        })
    };
    let backend = match prepared {
        Ok((listener, backend, _)) => {
            tokio::spawn(server::serve(listener, backend.clone()));
            Ok(backend)
        }
        Err(message) => Err(message),
    };
    let registered = match Extension::new()
        .with_extension_name(NAME)
        .with_events(lifecycle::events(initialization))
        .with_events_processor(processor)
        .register()
        .await
    {
        Ok(registered) => registered,
        Err(e) => {
            tracing::error!(error = %e, "cannot register with the Lambda Extensions API");
            return ExitCode::FAILURE;
        }
    };
    let backend = match backend {
        Ok(backend) => backend,
        Err(message) => return init_error(&registered.extension_id, &message).await,
    };
    // The configuration loads while the runtime starts; its errors fail the init.
    if let Err(e) = backend.load().await {
        return init_error(&registered.extension_id, &ErrorChain(&e).to_string()).await;
    }
    if initialization.warms_up() {
        let backend = backend.clone();
        tokio::spawn(async move { backend.warm_up().await });
    }
    if initialization == Initialization::ManagedInstances {
        // Never frozen and no INVOKE: keep tokens fresh on a timer instead.
        let backend = backend.clone();
        tokio::spawn(async move {
            lifecycle::refresh_in_background(&*backend, lifecycle::BACKGROUND_REFRESH).await
        });
    }
    tracing::info!("serving Google credentials on the metadata server");
    tokio::select! {
        result = registered.run() => match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = %e, "the Lambda Extensions API loop failed");
                ExitCode::FAILURE
            }
        },
        () = shutdown.notified() => ExitCode::SUCCESS,
    }
}

/// Reports an init error to Lambda (the function's init then fails with it) and exits.
async fn init_error(extension_id: &str, message: &str) -> ExitCode {
    const ERROR_TYPE: &str = "Extension.ConfigError";
    tracing::error!(error = %message, "initialization failed");
    let request = lambda_extension::requests::init_error(
        extension_id,
        ERROR_TYPE,
        Some(lambda_extension::requests::ErrorRequest {
            error_message: message,
            error_type: ERROR_TYPE,
            stack_trace: Vec::new(),
        }),
    );
    let sent = async {
        let client = lambda_runtime_api_client::Client::builder().build()?;
        client.call(request?).await?;
        Ok::<(), lambda_extension::Error>(())
    }
    .await;
    if let Err(e) = sent {
        tracing::warn!(error = %e, "could not report the init error to the Extensions API");
    }
    ExitCode::FAILURE
}
