//! Google-style OpenID Connect ID tokens (RS256 JWTs) signed with the test
//! key in `tests/fixtures/google-id-token-test-key.pem`, as minted by the GCE
//! metadata server and IAM Credentials `generateIdToken`.
//!
//! moto (`tests/localcloud/moto_server.py`) verifies them with the matching
//! public key when a test calls `AssumeRoleWithWebIdentity`.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, RsaKeyPair, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// `iss` of every token: `https://accounts.google.com`.
pub const GOOGLE_ISSUER: &str = "https://accounts.google.com";
/// `kid` of the JWT header.
pub const TEST_KEY_ID: &str = "crossfed-test";
/// The test signing key (PKCS#8 PEM). Test only.
pub const TEST_PRIVATE_KEY_PEM: &str = include_str!("../../fixtures/google-id-token-test-key.pem");
/// The public half (SubjectPublicKeyInfo PEM), also used by moto.
pub const TEST_PUBLIC_KEY_PEM: &str =
    include_str!("../../fixtures/google-id-token-test-key.pub.pem");
/// Default lifetime of minted tokens (Google's: one hour).
pub const DEFAULT_ID_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// The claims of a Google ID token. `email`/`email_verified` are present only
/// when requested; `google` only in GCE `format=full` tokens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdTokenClaims {
    pub iss: String,
    pub aud: String,
    /// The service account's unique id.
    pub azp: String,
    /// The service account's unique id (21 digits).
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    /// `{"compute_engine": {...}}` of GCE `format=full` tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub google: Option<Value>,
    /// Seconds since the epoch.
    pub iat: u64,
    /// Seconds since the epoch.
    pub exp: u64,
}

impl IdTokenClaims {
    pub fn expires_at(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.exp)
    }

    pub fn is_expired(&self) -> bool {
        self.expires_at() <= SystemTime::now()
    }
}

/// Mints RS256 ID tokens with the test key; cheap to clone.
#[derive(Clone)]
pub struct IdTokenIssuer {
    key: Arc<RsaKeyPair>,
    lifetime: Duration,
}

impl fmt::Debug for IdTokenIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdTokenIssuer")
            .field("kid", &TEST_KEY_ID)
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl Default for IdTokenIssuer {
    fn default() -> Self {
        Self::new()
    }
}

impl IdTokenIssuer {
    /// An issuer using the fixture key and a one-hour lifetime.
    pub fn new() -> Self {
        let der = pem_der(TEST_PRIVATE_KEY_PEM, "PRIVATE KEY").expect("fixture private key PEM");
        let key = RsaKeyPair::from_pkcs8(&der).expect("fixture private key is RSA PKCS#8");
        Self {
            key: Arc::new(key),
            lifetime: DEFAULT_ID_TOKEN_LIFETIME,
        }
    }

    /// Same key, `exp = iat + lifetime`.
    pub fn with_lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// Claims for `audience` and the service account `unique_id`, issued
    /// now, with `email` + `email_verified: true` if `email` is given.
    pub fn claims(&self, audience: &str, unique_id: &str, email: Option<&str>) -> IdTokenClaims {
        let iat = unix_now();
        IdTokenClaims {
            iss: GOOGLE_ISSUER.into(),
            aud: audience.into(),
            azp: unique_id.into(),
            sub: unique_id.into(),
            email: email.map(str::to_string),
            email_verified: email.map(|_| true),
            google: None,
            iat,
            exp: iat + self.lifetime.as_secs(),
        }
    }

    /// A valid token (see [`Self::claims`]).
    pub fn mint(&self, audience: &str, unique_id: &str, email: Option<&str>) -> String {
        self.sign(&self.claims(audience, unique_id, email))
    }

    /// A correctly signed token that expired a minute ago (`iat` one
    /// lifetime earlier).
    pub fn mint_expired(&self, audience: &str, unique_id: &str, email: Option<&str>) -> String {
        let mut claims = self.claims(audience, unique_id, email);
        claims.exp = unix_now().saturating_sub(60);
        claims.iat = claims.exp.saturating_sub(self.lifetime.as_secs());
        self.sign(&claims)
    }

    /// Signs arbitrary claims with the standard header
    /// `{"alg":"RS256","kid":"crossfed-test","typ":"JWT"}`.
    pub fn sign(&self, claims: &IdTokenClaims) -> String {
        self.sign_json(
            &json!({"alg": "RS256", "kid": TEST_KEY_ID, "typ": "JWT"}),
            &serde_json::to_value(claims).expect("claims serialize"),
        )
    }

    /// Signs any header and payload with RS256 (for malformed-token tests).
    pub fn sign_json(&self, header: &Value, payload: &Value) -> String {
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(payload.to_string())
        );
        let mut signature = vec![0; self.key.public_modulus_len()];
        self.key
            .sign(
                &signature::RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                signing_input.as_bytes(),
                &mut signature,
            )
            .expect("RS256 signing");
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }
}

/// Seconds since the epoch, now.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Header and payload of a JWT, without checking the signature.
pub fn decode_unverified(token: &str) -> Result<(Value, Value), String> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("a JWT has three dot-separated parts".into());
    };
    let part = |name: &str, b64: &str| -> Result<Value, String> {
        let bytes = URL_SAFE_NO_PAD
            .decode(b64)
            .map_err(|e| format!("JWT {name} is not base64url: {e}"))?;
        serde_json::from_slice(&bytes).map_err(|e| format!("JWT {name} is not JSON: {e}"))
    };
    Ok((part("header", header)?, part("payload", payload)?))
}

/// Checks `alg`/`kid` and the RS256 signature with the test public key, and
/// returns the claims. Does not check `exp`, `iss` or `aud`.
pub fn verify(token: &str) -> Result<IdTokenClaims, String> {
    let (header, payload) = decode_unverified(token)?;
    if header["alg"] != "RS256" || header["kid"] != TEST_KEY_ID {
        return Err(format!("unexpected JWT header {header}"));
    }
    let (signing_input, signature) = token.rsplit_once('.').expect("three parts");
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|e| format!("JWT signature is not base64url: {e}"))?;
    let public = pem_der(TEST_PUBLIC_KEY_PEM, "PUBLIC KEY").expect("fixture public key PEM");
    UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, public)
        .verify(signing_input.as_bytes(), &signature)
        .map_err(|_| "JWT signature does not verify".to_string())?;
    serde_json::from_value(payload).map_err(|e| format!("unexpected ID token claims: {e}"))
}

/// The token with one signature byte changed (still well-formed base64url).
pub fn tamper_signature(token: &str) -> String {
    let (signing_input, signature) = token.rsplit_once('.').expect("a JWT");
    let mut bytes = URL_SAFE_NO_PAD
        .decode(signature)
        .expect("base64url signature");
    if let Some(b) = bytes.get_mut(10) {
        *b ^= 0x55;
    }
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// The DER body of the first `-----BEGIN {label}-----` block.
fn pem_der(pem: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let body = pem.split_once(&begin)?.1.split_once(&end)?.0;
    let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    STANDARD.decode(b64).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUB: &str = "111111111111111111111";

    #[test]
    fn mint_and_verify() {
        let issuer = IdTokenIssuer::new();
        let token = issuer.mint("aud-1", SUB, Some("sa@p.iam.gserviceaccount.com"));
        let (header, payload) = decode_unverified(&token).unwrap();
        assert_eq!(
            header,
            json!({"alg": "RS256", "kid": "crossfed-test", "typ": "JWT"})
        );
        assert_eq!(payload["email_verified"], true);
        let claims = verify(&token).unwrap();
        assert_eq!(claims.iss, GOOGLE_ISSUER);
        assert_eq!((claims.aud.as_str(), claims.azp.as_str()), ("aud-1", SUB));
        assert_eq!(claims.sub, SUB);
        assert_eq!(claims.exp - claims.iat, 3600);
        assert!(!claims.is_expired());

        let no_email = issuer.mint("aud-1", SUB, None);
        let (_, payload) = decode_unverified(&no_email).unwrap();
        assert!(payload.get("email").is_none() && payload.get("email_verified").is_none());

        assert!(verify(&tamper_signature(&token)).is_err());
        let expired = verify(&issuer.mint_expired("a", SUB, None)).unwrap();
        assert!(expired.is_expired() && expired.exp - expired.iat == 3600);
        let short = IdTokenIssuer::new().with_lifetime(Duration::from_secs(5));
        let claims = verify(&short.mint("a", SUB, None)).unwrap();
        assert_eq!(claims.exp - claims.iat, 5);
        assert!(decode_unverified("a.b").is_err());
    }
}
