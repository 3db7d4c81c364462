//! `cross-cloud-report`: see the library docs. `main` only wires the runtime.

use cross_cloud_report::handler::{self, App};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let app = crossfed_kit::cold_start(App::from_env).await?;
    let app = &app;
    run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        Box::pin(handler::handle(
            app,
            event.payload,
            time::OffsetDateTime::now_utc(),
        ))
    }))
    .await
}
