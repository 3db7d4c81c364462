//! AWS → Google Cloud: Google credentials for an AWS workload by Workload Identity
//! Federation (signed `GetCallerIdentity` → Google STS → service-account impersonation).
//!
//! [`Credentials`] plugs into the official `google-cloud-*` clients; [`Builder`] configures
//! it; the credential configuration is the file `gcloud iam workload-identity-pools
//! create-cred-config --aws` writes, read from SSM, a file or inline JSON ([`ConfigSource`]).

pub mod attribute_mapping;
mod aws_identity;
mod cel;
mod config;
mod config_source;
mod container_credentials;
mod credentials;
mod id_token;
mod impersonation;
mod sts;
mod subject_token;
mod whoami;

pub use attribute_mapping::{
    AttributeCondition, AttributeMapping, AwsAssertion, MappedAttributes, MappingError,
};
pub use aws_identity::AwsIdentity;
pub use config::{
    AwsCredentialSource, ExternalAccountConfig, Impersonation, ParseOptions, WorkloadProvider,
};
pub use config_source::{
    CONFIG_PARAMETER_ENV, CREDENTIALS_FILE_ENV, ConfigSource, DEFAULT_SSM_TTL,
};
pub use credentials::{Builder, CLOUD_PLATFORM_SCOPE, Credentials};
pub use whoami::Whoami;

#[cfg(fuzzing)]
pub(crate) use sts::token_from as sts_token_from;
