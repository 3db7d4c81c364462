//! OAuth scopes the fakes check.

/// `https://www.googleapis.com/auth/cloud-platform`.
pub const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// `https://www.googleapis.com/auth/iam`.
pub const IAM_SCOPE: &str = "https://www.googleapis.com/auth/iam";
