//! `main` only wires the runtime; see [`list_buckets::handler`]. Concurrent invocations
//! (Lambda Managed Instances, `AWS_LAMBDA_MAX_CONCURRENCY`) share the one [`App`].

use std::sync::Arc;

use lambda_runtime::{Error, LambdaEvent, run_concurrent, service_fn};
use list_buckets::handler::{self, App};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let app = Arc::new(crossfed_kit::cold_start(App::from_env).await?);
    run_concurrent(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let app = app.clone();
        async move { handler::handle(&app, event.payload).await }
    }))
    .await
}
