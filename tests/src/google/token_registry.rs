//! Access tokens minted by the fakes, shared so every fake can validate them.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// Which fake minted a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenIssuer {
    /// Federated token from the fake STS (`POST /v1/token`).
    Sts,
    /// Service-account token from the fake IAM Credentials API.
    Iam,
    /// Registered directly by a test via [`TokenRegistry::issue`].
    Test,
}

/// What a token stands for. Never contains the token itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenInfo {
    /// `principal://iam.googleapis.com/.../subject/<arn>` for federated
    /// tokens, `serviceAccount:<email>` for service-account tokens.
    pub principal: String,
    /// Extra principals the token belongs to, e.g.
    /// `principalSet://iam.googleapis.com/.../attribute.aws_role/<role arn>`.
    pub principal_sets: Vec<String>,
    /// OAuth scopes granted to the token.
    pub scopes: Vec<String>,
    /// Wall-clock expiry.
    pub expires_at: SystemTime,
    pub issuer: TokenIssuer,
}

impl TokenInfo {
    /// Whether the token grants `scope`, or `cloud-platform` (which implies
    /// every other scope).
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes
            .iter()
            .any(|s| s == scope || s == crate::google::scopes::CLOUD_PLATFORM_SCOPE)
    }

    /// Whether `member` (an IAM binding member) matches this token.
    pub fn matches_member(&self, member: &str) -> bool {
        self.principal == member || self.principal_sets.iter().any(|p| p == member)
    }
}

/// Thread-safe registry of opaque random tokens; cheap to clone.
#[derive(Clone, Default)]
pub struct TokenRegistry {
    tokens: Arc<Mutex<HashMap<String, TokenInfo>>>,
}

impl fmt::Debug for TokenRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenRegistry")
            .field("tokens", &self.lock().len())
            .finish()
    }
}

impl TokenRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Mints a new token (`ya29.fake-<32 hex>`) valid for `lifetime`.
    pub fn issue(
        &self,
        issuer: TokenIssuer,
        principal: impl Into<String>,
        principal_sets: Vec<String>,
        scopes: Vec<String>,
        lifetime: Duration,
    ) -> (String, TokenInfo) {
        let token = format!(
            "ya29.fake-{:016x}{:016x}",
            fastrand::u64(..),
            fastrand::u64(..)
        );
        let info = TokenInfo {
            principal: principal.into(),
            principal_sets,
            scopes,
            expires_at: SystemTime::now() + lifetime,
            issuer,
        };
        self.lock().insert(token.clone(), info.clone());
        (token, info)
    }

    /// The token's info if it is known and not expired.
    pub fn validate(&self, token: &str) -> Option<TokenInfo> {
        let info = self.lock().get(token).cloned()?;
        (info.expires_at > SystemTime::now()).then_some(info)
    }

    /// Makes a token expire now (it stays known but fails validation).
    pub fn expire(&self, token: &str) {
        if let Some(info) = self.lock().get_mut(token) {
            info.expires_at = SystemTime::UNIX_EPOCH;
        }
    }

    /// Number of tokens ever issued.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Validates an `Authorization: Bearer <token>` header value.
    pub fn validate_bearer(&self, authorization: Option<&str>) -> Option<TokenInfo> {
        let value = authorization?;
        let (scheme, token) = value.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
            return None;
        }
        self.validate(token.trim())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, TokenInfo>> {
        // A panic while holding the lock cannot leave the map inconsistent.
        self.tokens.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_validate_expire() {
        let registry = TokenRegistry::new();
        let (token, _) = registry.issue(
            TokenIssuer::Test,
            "serviceAccount:a@b",
            vec![],
            vec![crate::google::scopes::CLOUD_PLATFORM_SCOPE.into()],
            Duration::from_secs(60),
        );
        assert!(token.starts_with("ya29.fake-") && token.len() == "ya29.fake-".len() + 32);
        let info = registry.validate(&token).expect("valid");
        assert!(info.has_scope(crate::google::scopes::IAM_SCOPE));
        assert!(info.matches_member("serviceAccount:a@b"));
        assert_eq!(
            registry.validate_bearer(Some(&format!("Bearer {token}"))),
            Some(info)
        );
        assert!(
            registry
                .validate_bearer(Some(&format!("Basic {token}")))
                .is_none()
        );
        assert!(registry.validate("ya29.unknown").is_none());
        registry.expire(&token);
        assert!(registry.validate(&token).is_none());
    }

    #[test]
    fn zero_lifetime_is_expired() {
        let registry = TokenRegistry::new();
        let (token, _) = registry.issue(TokenIssuer::Test, "p", vec![], vec![], Duration::ZERO);
        assert!(registry.validate(&token).is_none());
    }
}
