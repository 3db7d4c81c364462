//! An access token and its wall-clock expiry.

use std::time::{Duration, SystemTime};

use crate::secret::Secret;

/// A short-lived access token. Expiry is wall-clock time, so a Lambda sandbox that was
/// frozen and thawed never uses an expired token.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Token {
    /// The bearer token.
    pub value: Secret,
    /// When the token stops working.
    pub expires_at: SystemTime,
}

impl Token {
    /// Time left at `now` (zero when expired).
    pub fn remaining(&self, now: SystemTime) -> Duration {
        self.expires_at.duration_since(now).unwrap_or_default()
    }
}

/// The longest lifetime believed for any token or credentials (12 hours, the most Google
/// impersonation and AWS role sessions grant). A longer one is capped to it.
pub(crate) const MAX_LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// `now + lifetime`, with the lifetime capped at [`MAX_LIFETIME`]; never overflows.
pub(crate) fn expiry_after(now: SystemTime, lifetime: Duration) -> SystemTime {
    let lifetime = lifetime.min(MAX_LIFETIME);
    now.checked_add(lifetime).unwrap_or(now)
}

/// An expiry reported by a service, capped at `now +` [`MAX_LIFETIME`].
pub(crate) fn capped_expiry(now: SystemTime, at: SystemTime) -> SystemTime {
    at.min(expiry_after(now, MAX_LIFETIME))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_math_saturates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(expiry_after(now, Duration::MAX), now + MAX_LIFETIME);
        assert_eq!(
            expiry_after(now, Duration::from_secs(60)),
            now + Duration::from_secs(60)
        );
        let far = now + Duration::from_secs(100 * 365 * 86400);
        assert_eq!(capped_expiry(now, far), now + MAX_LIFETIME);
        assert_eq!(capped_expiry(now, now), now);
    }
}
