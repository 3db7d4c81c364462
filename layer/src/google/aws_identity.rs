//! The AWS side of the flow: credentials and region.
//!
//! Inside Lambda the execution role's credentials and the region are in the environment, so
//! they are read from there directly (the fast path) and the instance metadata service is
//! never contacted — Lambda has none, and a client that tries it hangs until it times out.
//! Where Lambda gives no keys in the environment (SnapStart, container-credential flavours)
//! they come from its container credentials endpoint ([`ContainerCredentials`]). Elsewhere, `aws-config`'s default chains are used (environment,
//! profiles/SSO, web identity, ECS/EKS container credentials, then IMDS last).

use aws_config::BehaviorVersion;
use aws_config::default_provider::{
    credentials::DefaultCredentialsChain, region::DefaultRegionChain,
};
use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_types::region::Region;
use tokio::sync::OnceCell;
use tracing::Instrument;

use super::container_credentials::{ContainerCredentials, FULL_URI_ENV};
use crate::context::Context;
use crate::error::{Error, Result, Step};

/// Resolved AWS identity: a credentials provider and a region.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct AwsIdentity {
    /// Provides (possibly refreshing) AWS credentials.
    pub credentials: SharedCredentialsProvider,
    /// The region used for signing and for AWS clients.
    pub region: Region,
}

impl AwsIdentity {
    /// Current credentials from the provider.
    pub async fn credentials(&self) -> Result<Credentials> {
        self.credentials.provide_credentials().await.map_err(|e| {
            Error::failed_with(
                Step::AwsIdentity,
                true,
                "the AWS credentials provider failed; check the role/profile configuration",
                e,
            )
        })
    }

    /// An `aws-config` [`aws_types::SdkConfig`] with this identity; endpoints and other
    /// settings still come from the usual `AWS_*` environment variables.
    pub async fn sdk_config(&self) -> aws_types::SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .credentials_provider(self.credentials.clone())
            .region(self.region.clone())
            .load()
            .await
    }
}

/// Where the AWS identity comes from.
#[derive(Clone, Debug)]
pub(crate) enum AwsIdentitySource {
    /// Given by the caller (tests, or applications that already hold a provider).
    Provided(AwsIdentity),
    /// Lambda fast path, else the `aws-config` default chains.
    Auto(Context),
}

fn env_value(env: &Context, name: &str) -> Option<String> {
    env.env_var(name)
}

/// `Some(function name)` when running in AWS Lambda.
fn lambda_function(env: &Context) -> Option<String> {
    env_value(env, "AWS_LAMBDA_FUNCTION_NAME")
}

fn region_from_env(env: &Context) -> Option<Region> {
    env_value(env, "AWS_REGION")
        .or_else(|| env_value(env, "AWS_DEFAULT_REGION"))
        .map(Region::new)
}

fn lambda_identity(env: &Context, function: &str) -> Result<AwsIdentity> {
    let missing = |name: &str| {
        Error::failed(
            Step::AwsIdentity,
            false,
            format!(
                "running in AWS Lambda (function `{function}`) but {name} is not set (nor {FULL_URI_ENV}). Lambda has no instance metadata service, so the credential configuration's metadata URLs cannot be used there: give the function an execution role and do not clear the AWS_* variables Lambda sets"
            ),
        )
    };
    let Some(key) = env_value(env, "AWS_ACCESS_KEY_ID") else {
        let region = region_from_env(env).ok_or_else(|| missing("AWS_REGION"))?;
        let container =
            ContainerCredentials::from_context(env)?.ok_or_else(|| missing("AWS_ACCESS_KEY_ID"))?;
        return Ok(AwsIdentity {
            credentials: SharedCredentialsProvider::new(container),
            region,
        });
    };
    let secret =
        env_value(env, "AWS_SECRET_ACCESS_KEY").ok_or_else(|| missing("AWS_SECRET_ACCESS_KEY"))?;
    let token = env_value(env, "AWS_SESSION_TOKEN");
    let region = region_from_env(env).ok_or_else(|| missing("AWS_REGION"))?;
    let creds = Credentials::new(key, secret, token, None, "LambdaEnvironment");
    Ok(AwsIdentity {
        credentials: SharedCredentialsProvider::new(creds),
        region,
    })
}

async fn default_chain_identity(env: &Context) -> Result<AwsIdentity> {
    let region = match region_from_env(env) {
        Some(r) => r,
        None => DefaultRegionChain::builder()
            .build()
            .region()
            .await
            .ok_or_else(|| {
                Error::failed(
                    Step::AwsIdentity,
                    false,
                    "no AWS region: set AWS_REGION, a profile region, or run on EC2",
                )
            })?,
    };
    let chain = DefaultCredentialsChain::builder()
        .region(region.clone())
        .build()
        .await;
    Ok(AwsIdentity {
        credentials: SharedCredentialsProvider::new(chain),
        region,
    })
}

/// Resolves the identity once, on first use.
#[derive(Debug)]
pub(crate) struct AwsIdentityResolver {
    source: AwsIdentitySource,
    resolved: OnceCell<AwsIdentity>,
}

impl AwsIdentityResolver {
    pub fn new(source: AwsIdentitySource) -> Self {
        AwsIdentityResolver {
            source,
            resolved: OnceCell::new(),
        }
    }

    pub async fn get(&self) -> Result<&AwsIdentity> {
        self.resolved
            .get_or_try_init(|| {
                async {
                    let started = std::time::Instant::now();
                    let identity = match &self.source {
                        AwsIdentitySource::Provided(identity) => identity.clone(),
                        AwsIdentitySource::Auto(env) => match lambda_function(env) {
                            Some(function) => lambda_identity(env, &function)?,
                            None => default_chain_identity(env).await?,
                        },
                    };
                    tracing::debug!(
                        region = %identity.region,
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "resolved AWS identity"
                    );
                    Ok(identity)
                }
                .instrument(tracing::info_span!("crossfed.aws_identity"))
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lambda_fast_path_reads_the_environment() {
        let env = Context::new().with_env_vars([
            ("AWS_LAMBDA_FUNCTION_NAME", "fn"),
            ("AWS_ACCESS_KEY_ID", "ASIAEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_SESSION_TOKEN", "token"),
            ("AWS_REGION", "eu-west-1"),
        ]);
        let r = AwsIdentityResolver::new(AwsIdentitySource::Auto(env));
        let id = r.get().await.unwrap();
        assert_eq!(id.region.as_ref(), "eu-west-1");
        let creds = id.credentials().await.unwrap();
        assert_eq!(creds.access_key_id(), "ASIAEXAMPLE");
        assert_eq!(creds.session_token(), Some("token"));
    }

    #[tokio::test]
    async fn lambda_without_credentials_fails_fast_and_clearly() {
        let env = Context::new().with_env_vars([
            ("AWS_LAMBDA_FUNCTION_NAME", "fn"),
            ("AWS_REGION", "eu-west-1"),
        ]);
        let r = AwsIdentityResolver::new(AwsIdentitySource::Auto(env));
        let err = r.get().await.unwrap_err().to_string();
        assert!(
            err.contains("AWS_ACCESS_KEY_ID") && err.contains("instance metadata"),
            "{err}"
        );
    }
}
