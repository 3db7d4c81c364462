//! `list-buckets`: lists the buckets of `GOOGLE_CLOUD_PROJECT` using the function's own IAM
//! role, federated into Google Cloud by `crossfed`. No Google keys anywhere. `main` only wires
//! the runtime; see [`handler`].

mod config;
mod handler;

use handler::App;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let app = crossfed_kit::cold_start(App::from_env).await?;
    run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        handler::handle(&app, event.payload)
    }))
    .await
}
