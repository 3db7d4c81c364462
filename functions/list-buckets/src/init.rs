//! Cold-start wiring: credentials and the Storage control client, built once per sandbox.

use google_cloud_storage::client::StorageControl;
use lambda_runtime::Error;

/// What every invocation reuses.
pub struct App {
    pub control: StorageControl,
    pub project: String,
}

/// The gRPC endpoint: `STORAGE_EMULATOR_HOST_GRPC` (`host:port` or a URL) when set.
pub fn grpc_endpoint(value: Option<String>) -> Option<String> {
    let value = value.filter(|v| !v.trim().is_empty())?;
    Some(if value.contains("://") {
        value
    } else {
        format!("http://{value}")
    })
}

impl App {
    /// Reads `CROSSFED_CONFIG_PARAMETER` / `GOOGLE_APPLICATION_CREDENTIALS` and
    /// `GOOGLE_CLOUD_PROJECT`, builds the client, and warms the token cache so the first
    /// invocation makes no auth call either.
    pub async fn from_env() -> Result<Self, Error> {
        let project = std::env::var("GOOGLE_CLOUD_PROJECT")
            .ok()
            .filter(|p| !p.trim().is_empty())
            .ok_or("GOOGLE_CLOUD_PROJECT is not set: set it to the Google Cloud project id whose buckets to list")?;
        let credentials = crossfed::google::Credentials::from_env()?;
        let mut builder = StorageControl::builder().with_credentials(credentials.clone());
        if let Some(endpoint) = grpc_endpoint(std::env::var("STORAGE_EMULATOR_HOST_GRPC").ok()) {
            builder = builder.with_endpoint(endpoint);
        }
        let control = builder.build().await?;
        if let Err(e) = credentials.token().await {
            tracing::warn!(error = %e, "could not obtain a Google token at start-up; will retry per invocation");
        }
        Ok(App { control, project })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_endpoint_forms() {
        assert_eq!(grpc_endpoint(None), None);
        assert_eq!(grpc_endpoint(Some(" ".into())), None);
        assert_eq!(
            grpc_endpoint(Some("127.0.0.1:9000".into())).as_deref(),
            Some("http://127.0.0.1:9000")
        );
        assert_eq!(
            grpc_endpoint(Some("https://x:1".into())).as_deref(),
            Some("https://x:1")
        );
    }
}
