//! Google Cloud → AWS: AWS credentials for a Google identity, a Google ID token exchanged
//! with `AssumeRoleWithWebIdentity`.
//!
//! [`WebIdentity`] is an `aws-config` credentials provider; [`Builder`] configures it;
//! [`IdTokenSource`] says where the ID token comes from (the metadata server, or IAM
//! Credentials `generateIdToken` with any Google credentials, including
//! [`crate::google::Credentials`] for AWS → Google → AWS chains).

pub(crate) mod id_token;
mod trust_policy;
mod web_identity;

pub use id_token::{IdToken, IdTokenClaims, IdTokenSource, METADATA_HOST_ENV};
pub use trust_policy::google_trust_policy;
pub use web_identity::{Builder, DEFAULT_STS_REGION, WebIdentity};
