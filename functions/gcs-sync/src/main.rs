//! `gcs-sync` Lambda entry point: builds the clients once ([`App::from_env`]), then handles
//! S3 notifications (via SQS or direct) by replicating objects into `SYNC_DESTINATION`.
//! On Lambda Managed Instances it polls `AWS_LAMBDA_MAX_CONCURRENCY` invocations at once.

use std::sync::Arc;

use gcs_sync::handler::{self, App};
use lambda_runtime::{Error, LambdaEvent, run_concurrent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let app = Arc::new(crossfed_kit::cold_start(App::from_env).await?);
    run_concurrent(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let app = app.clone();
        async move {
            let deadline = event.context.deadline();
            handler::handle(&app, event.payload, deadline, event.context.request_id).await
        }
    }))
    .await
}
