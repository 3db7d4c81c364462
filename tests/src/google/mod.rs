//! Google Cloud, faked: STS and IAM Credentials ([`fake_google`]), the metadata server,
//! Vertex AI, Cloud Storage (the gRPC control plane, fake-gcs-server's JSON API and a fault
//! proxy in front of it), Google ID tokens and the access tokens the fakes issue.

pub mod aws_subject_token;
pub(crate) mod fake_gcs_server;
pub(crate) mod fake_google;
pub(crate) mod fake_google_config;
pub(crate) mod fake_iam;
pub(crate) mod fake_metadata;
pub(crate) mod fake_storage_grpc;
pub(crate) mod fake_sts;
pub(crate) mod fake_vertex;
pub(crate) mod gcs_fault_proxy;
pub(crate) mod google_state;
pub mod id_tokens;
pub(crate) mod records;
pub(crate) mod scopes;
pub(crate) mod static_credentials;
#[cfg(test)]
pub(crate) mod storage_test_support;
pub(crate) mod token_registry;
