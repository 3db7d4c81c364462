//! Test support for crossfed: strict in-process fakes of the Google services
//! crossfed talks to (STS, IAM Credentials, Cloud Storage gRPC, the GCE
//! metadata server's identity endpoint), Google ID tokens, a local
//! AWS Lambda Runtime API, and access to the local clouds of `make test`.
//!
//! Every fake runs on its own thread and Tokio runtime on an ephemeral
//! `127.0.0.1` port, so tests are isolated and may block their own thread.

pub mod aws_subject_token;
mod connection_counter;
mod fake_gcs_server;
mod fake_google;
mod fake_iam;
mod fake_metadata;
mod fake_storage_grpc;
mod fake_sts;
mod fake_vertex;
mod faults;
mod function_process;
mod gcs_fault_proxy;
mod https_front;
pub mod id_tokens;
mod lambda_extensions_api;
mod lambda_runtime_api;
pub mod localcloud;
pub mod sample_events;
pub mod scenario;
mod server;
mod static_credentials;
#[cfg(test)]
mod storage_test_support;
pub mod time_format;
mod token_registry;

pub use connection_counter::ConnectionCounter;
pub use fake_gcs_server::{FakeGcsServer, JsonApiError};
pub use fake_google::{
    AwsRoleMapping, DEFAULT_SERVICE_ACCOUNT_UNIQUE_ID, FakeGoogle, FakeGoogleConfig, GoogleApi,
};
pub use fake_iam::IamRequestRecord;
pub use fake_metadata::{FakeMetadata, FakeMetadataConfig, MetadataRequestRecord};
pub use fake_storage_grpc::{
    FakeStorage, FakeStorageConfig, StorageRequestRecord, proto as storage_proto,
};
pub use fake_sts::{
    ACCESS_TOKEN_TYPE, AWS4_REQUEST_TOKEN_TYPE, StsRequestRecord, TOKEN_EXCHANGE_GRANT,
};
pub use fake_vertex::{FakeVertex, FakeVertexConfig, VertexRequestRecord};
pub use faults::Fault;
pub use function_process::{FunctionProcess, peak_rss_kib};
pub use gcs_fault_proxy::{GcsFaultProxy, ProxyRequestRecord};
pub use https_front::HttpsFront;
pub use id_tokens::{IdTokenClaims, IdTokenIssuer};
pub use lambda_extensions_api::RegisteredExtension;
pub use lambda_runtime_api::{DEFAULT_INVOKE_TIMEOUT, LambdaError, LambdaRuntimeApi};
pub use localcloud::{LocalCloud, RoleSession};
pub use static_credentials::StaticBearerCredentials;
pub use token_registry::{TokenInfo, TokenIssuer, TokenRegistry};

/// `https://www.googleapis.com/auth/cloud-platform`.
pub const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// `https://www.googleapis.com/auth/iam`.
pub const IAM_SCOPE: &str = "https://www.googleapis.com/auth/iam";
