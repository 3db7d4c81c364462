//! `cross-cloud-report`: see the library docs. `main` only wires the runtime; concurrent
//! invocations (Lambda Managed Instances, `AWS_LAMBDA_MAX_CONCURRENCY`) share the one [`App`].

use std::sync::Arc;

use cross_cloud_report::handler::{self, App};
use lambda_runtime::{Error, LambdaEvent, run_concurrent, service_fn};
use time::OffsetDateTime;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let app = Arc::new(crossfed_kit::cold_start(App::from_env).await?);
    run_concurrent(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let app = app.clone();
        // Boxed: the handler's future is too deep for the runtime's type to be laid out inline.
        async move {
            Box::pin(handler::handle(
                &app,
                event.payload,
                OffsetDateTime::now_utc(),
            ))
            .await
        }
    }))
    .await
}
