//! Google client credentials that always send one fixed Bearer token, to
//! drive the real client libraries against the fakes.

use std::fmt;

use google_cloud_auth::credentials::{
    CacheableResource, Credentials, CredentialsProvider, EntityTag,
};
use google_cloud_auth::errors::CredentialsError;
use http::{Extensions, HeaderMap, HeaderValue, header::AUTHORIZATION};

/// Sends `Authorization: Bearer <token>`. `Debug` does not show the token.
#[derive(Clone)]
pub struct StaticBearerCredentials {
    header: HeaderValue,
}

impl StaticBearerCredentials {
    /// # Panics
    /// If the token is not a valid header value.
    pub fn new(token: &str) -> Self {
        let mut header = HeaderValue::from_str(&format!("Bearer {token}"))
            .expect("token is a valid header value");
        header.set_sensitive(true);
        Self { header }
    }

    /// As `google_cloud_auth` credentials, for `with_credentials(..)`.
    pub fn credentials(token: &str) -> Credentials {
        Credentials::from(Self::new(token))
    }
}

impl fmt::Debug for StaticBearerCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StaticBearerCredentials(<redacted>)")
    }
}

impl CredentialsProvider for StaticBearerCredentials {
    async fn headers(
        &self,
        _extensions: Extensions,
    ) -> Result<CacheableResource<HeaderMap>, CredentialsError> {
        let mut data = HeaderMap::new();
        data.insert(AUTHORIZATION, self.header.clone());
        Ok(CacheableResource::New {
            entity_tag: EntityTag::default(),
            data,
        })
    }

    async fn universe_domain(&self) -> Option<String> {
        None
    }
}
