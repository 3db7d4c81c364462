//! Test support for crossfed, grouped by what it stands in for: [`google`] (strict
//! in-process fakes of STS, IAM Credentials, the metadata server, Vertex AI and Cloud
//! Storage, and Google ID tokens), [`aws`] (the local clouds of `make test`) and
//! [`lambda`] (a local Runtime and Extensions API). [`scenario`] wires them together.
//!
//! Every fake runs on its own thread and Tokio runtime on an ephemeral
//! `127.0.0.1` port, so tests are isolated and may block their own thread.

pub mod aws;
mod connection_counter;
mod faults;
pub mod google;
pub mod lambda;
mod measure;
pub mod scenario;
mod server;
pub mod time_format;
mod workspace;

pub use aws::container_credentials::FakeContainerCredentials;
pub use aws::https_front::HttpsFront;
pub use aws::localcloud::{LocalCloud, RoleSession};
pub use connection_counter::ConnectionCounter;
pub use faults::Fault;
pub use google::fake_gcs_server::{FakeGcsServer, JsonApiError};
pub use google::fake_google::{
    AwsRoleMapping, DEFAULT_SERVICE_ACCOUNT_UNIQUE_ID, FakeGoogle, FakeGoogleConfig, GoogleApi,
    SubjectMapping,
};
pub use google::fake_iam::IamRequestRecord;
pub use google::fake_metadata::{FakeMetadata, FakeMetadataConfig, MetadataRequestRecord};
pub use google::fake_storage_grpc::{
    FakeStorage, FakeStorageConfig, StorageRequestRecord, proto as storage_proto,
};
pub use google::fake_sts::{
    ACCESS_TOKEN_TYPE, AWS4_REQUEST_TOKEN_TYPE, StsRequestRecord, TOKEN_EXCHANGE_GRANT,
};
pub use google::fake_vertex::{FakeVertex, FakeVertexConfig, VertexRequestRecord};
pub use google::gcs_fault_proxy::{GcsFaultProxy, ProxyRequestRecord};
pub use google::id_tokens::{IdTokenClaims, IdTokenIssuer};
pub use google::scopes::{CLOUD_PLATFORM_SCOPE, IAM_SCOPE};
pub use google::static_credentials::StaticBearerCredentials;
pub use google::token_registry::{TokenInfo, TokenIssuer, TokenRegistry};
pub use lambda::extensions_api::RegisteredExtension;
pub use lambda::function_process::{FunctionProcess, peak_rss_kib};
pub use lambda::runtime_api::{DEFAULT_INVOKE_TIMEOUT, LambdaError, LambdaRuntimeApi};
pub use measure::{median, percentile};
pub use server::free_addr;
pub use workspace::{venv_python, workspace_root};
