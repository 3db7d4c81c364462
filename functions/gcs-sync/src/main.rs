//! `gcs-sync` Lambda entry point: builds the clients once, then handles S3 notifications
//! (via SQS or direct) by replicating objects into `SYNC_DESTINATION`.

use gcs_sync::{backfill, handler, init};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    crossfed::lambda::init_tracing();
    let app = crossfed::lambda::check_init(init::App::from_env().await).await?;
    let app = &app;
    run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            let deadline = event.context.deadline();
            if let Some(request) = backfill::request(&event.payload) {
                let (replicator, limits) = (&app.replicator, &app.limits);
                return Ok(app
                    .backfill
                    .handle(replicator, limits, request?, deadline)
                    .await?);
            }
            handler::handle(&app.replicator, &app.limits, event.payload, deadline).await
        },
    ))
    .await
}
