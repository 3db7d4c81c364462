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
