//! `list-buckets`: lists the buckets of `GOOGLE_CLOUD_PROJECT` using the function's own IAM
//! role, federated into Google Cloud by `crossfed`. No Google keys anywhere.

mod handler;
mod init;

use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    crossfed::lambda::init_tracing();
    let app = crossfed::lambda::check_init(init::App::from_env().await).await?;
    let app = &app;
    run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            handler::handle(&app.control, &app.project, event.payload).await
        },
    ))
    .await
}
