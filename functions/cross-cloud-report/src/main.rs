//! `cross-cloud-report`: see the library docs. `main` only wires the runtime.

use cross_cloud_report::{handler, init};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    crossfed::lambda::init_tracing();
    let app = crossfed::lambda::check_init(Box::pin(init::from_env()).await).await?;
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
