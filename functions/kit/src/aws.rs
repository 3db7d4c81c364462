//! AWS SDK clients from the Lambda environment (region, role credentials,
//! `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_S3`).

use aws_config::retry::RetryConfig;

use crate::env::Env;

/// The shared SDK configuration, with `retry` when given (the SDK's standard retries otherwise).
pub async fn sdk_config(retry: Option<RetryConfig>) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(retry) = retry {
        loader = loader.retry_config(retry);
    }
    loader.load().await
}

/// An S3 client for `sdk`. A custom endpoint (`AWS_ENDPOINT_URL` or `AWS_ENDPOINT_URL_S3`)
/// implies path-style addressing, which emulators and most S3-compatible stores want.
pub fn s3_client(sdk: &aws_config::SdkConfig, env: &Env) -> aws_sdk_s3::Client {
    let custom_endpoint = sdk.endpoint_url().is_some() || env.get("AWS_ENDPOINT_URL_S3").is_some();
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(custom_endpoint)
            .build(),
    )
}

/// [`sdk_config`] then [`s3_client`]: the S3 client a function builds at init.
pub async fn s3_from_env(env: &Env, retry: Option<RetryConfig>) -> aws_sdk_s3::Client {
    s3_client(&sdk_config(retry).await, env)
}
