//! `cross-cloud-report`: see the library docs. `main` only wires the runtime.

use cross_cloud_report::handler::{self, App};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use time::OffsetDateTime;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let app = crossfed_kit::cold_start(App::from_env).await?;
    run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        Box::pin(handler::handle(
            &app,
            event.payload,
            OffsetDateTime::now_utc(),
        ))
    }))
    .await
}
