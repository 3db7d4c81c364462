//! `gcs-sync` Lambda entry point: builds the clients once ([`App::from_env`]), then handles
//! S3 notifications (via SQS or direct) by replicating objects into `SYNC_DESTINATION`.

use gcs_sync::handler::{self, App};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let app = crossfed_kit::cold_start(App::from_env).await?;
    run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let deadline = event.context.deadline();
        handler::handle(&app, event.payload, deadline, event.context.request_id)
    }))
    .await
}
