//! `main` only wires the runtime; see [`list_buckets::handler`].

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use list_buckets::handler::{self, App};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let app = crossfed_kit::cold_start(App::from_env).await?;
    run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        handler::handle(&app, event.payload)
    }))
    .await
}
