//! Access tokens (JWT, HS256), refresh tokens and device keys.
//!
//! Access tokens are short-lived (15 min) and verified without a database
//! round trip: signature, expiry, issuer and audience. Refresh tokens and device
//! keys are opaque random strings with a recognisable prefix; only their
//! SHA-256 is stored, so a database dump does not yield usable credentials.
//! (A fast hash is right here: the inputs are 256 random bits, not passwords.)

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

use super::Role;
use crate::cache::LocalCache;

pub const ACCESS_TOKEN_TTL_SECS: i64 = 15 * 60;
pub const REFRESH_TOKEN_TTL_DAYS: i64 = 30;
pub const ISSUER: &str = "inventory-api";
pub const AUDIENCE: &str = "inventory-api";
/// Prefix of scanner device keys: recognisable in logs and secret scanners.
pub const DEVICE_KEY_PREFIX: &str = "invd_";
/// Prefix of refresh tokens.
pub const REFRESH_TOKEN_PREFIX: &str = "invr_";

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: Uuid,
    pub role: Role,
    pub jti: Uuid,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    /// The user's `token_generation` at issue; absent in tokens issued before
    /// generations existed, which count as 0.
    #[serde(default)]
    pub gen: i32,
}

/// What a verified access token says ([`Keys::verify`]).
#[derive(Debug, Clone, Copy)]
pub struct Verified {
    pub sub: Uuid,
    pub role: Role,
    /// The `gen` claim (see [`Claims::gen`]).
    pub gen: i32,
    exp: i64,
}

/// How long a verified token is remembered (its expiry is checked on every use).
const VERIFIED_TTL: std::time::Duration = std::time::Duration::from_secs(60);

/// Signing and verification keys, built once from `JWT_SECRET`.
pub struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    /// Tokens this process has verified, by their exact text. A client sends
    /// the same token with every request for up to 15 minutes, and decoding
    /// it again (three base64 parts, two JSON parses, the HMAC) cost ~5 % of
    /// the API's CPU in a movement run (perf). A hit is the same bytes under
    /// the same key, so only the expiry can have changed, and it is checked.
    verified: LocalCache<String, Verified>,
}

impl Keys {
    pub fn new(secret: &SecretString) -> Self {
        let bytes = secret.expose_secret().as_bytes();
        // Only HS256 is accepted: a token claiming `alg: none` or another
        // algorithm fails verification.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        validation.leeway = 5;
        Self {
            encoding: EncodingKey::from_secret(bytes),
            decoding: DecodingKey::from_secret(bytes),
            validation,
            verified: LocalCache::new(VERIFIED_TTL),
        }
    }

    pub fn issue_access(
        &self,
        user_id: Uuid,
        role: Role,
        generation: i32,
    ) -> anyhow::Result<String> {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        self.sign(&Claims {
            sub: user_id,
            role,
            jti: Uuid::new_v4(),
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            iat: now,
            exp: now + ACCESS_TOKEN_TTL_SECS,
            gen: generation,
        })
    }

    pub fn sign(&self, claims: &Claims) -> anyhow::Result<String> {
        Ok(encode(
            &Header::new(Algorithm::HS256),
            claims,
            &self.encoding,
        )?)
    }

    /// What a valid token says, or None for anything else.
    pub fn verify(&self, token: &str) -> Option<Verified> {
        // jsonwebtoken's rule: expired once `exp` is more than the leeway ago.
        let unexpired = |v: &Verified| {
            v.exp >= OffsetDateTime::now_utc().unix_timestamp() - self.validation.leeway as i64
        };
        if let Some(v) = self.verified.get(token) {
            return Some(v).filter(unexpired);
        }
        let claims = decode::<Claims>(token, &self.decoding, &self.validation)
            .ok()?
            .claims;
        let v = Verified {
            sub: claims.sub,
            role: claims.role,
            gen: claims.gen,
            exp: claims.exp,
        };
        self.verified.put(token.to_owned(), v);
        Some(v)
    }
}

/// A new random opaque credential: `prefix` + 32 random bytes, base64url.
pub fn random_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// What the database stores for an opaque credential.
pub fn sha256(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(secret: &str) -> Keys {
        Keys::new(&SecretString::from(secret.to_owned()))
    }

    /// Claims of a new user's token issued at `iat`, expiring at `exp`.
    fn claims(role: Role, iat: i64, exp: i64, gen: i32) -> Claims {
        Claims {
            sub: Uuid::new_v4(),
            role,
            jti: Uuid::new_v4(),
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            iat,
            exp,
            gen,
        }
    }

    #[test]
    fn tokens_verify_only_with_the_same_secret() {
        let a = keys("a-secret-a-secret-a-secret-a-secret");
        let b = keys("b-secret-b-secret-b-secret-b-secret");
        let token = a.issue_access(Uuid::new_v4(), Role::Clerk, 0).unwrap();
        assert_eq!(a.verify(&token).unwrap().role, Role::Clerk);
        assert!(b.verify(&token).is_none());
    }

    #[test]
    fn expired_and_unsigned_tokens_are_refused() {
        let k = keys("a-secret-a-secret-a-secret-a-secret");
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let expired = k
            .sign(&claims(Role::Admin, now - 3600, now - 60, 0))
            .unwrap();
        assert!(k.verify(&expired).is_none());
        // alg: none, with a plausible payload and an empty signature.
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(
            format!(
                r#"{{"sub":"{}","role":"admin","jti":"{}","iss":"inventory-api","aud":"inventory-api","iat":{now},"exp":{}}}"#,
                Uuid::new_v4(),
                Uuid::new_v4(),
                now + 600
            )
            .as_bytes(),
        );
        assert!(k.verify(&format!("{header}.{payload}.")).is_none());
    }

    #[test]
    fn a_remembered_token_is_refused_once_it_expires() {
        let mut k = keys("a-secret-a-secret-a-secret-a-secret");
        k.validation.leeway = 0;
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let token = k.sign(&claims(Role::Clerk, now, now + 1, 3)).unwrap();
        let first = k.verify(&token).unwrap();
        assert_eq!((first.role, first.gen), (Role::Clerk, 3));
        assert!(k.verified.get(token.as_str()).is_some(), "not remembered");
        assert_eq!(k.verify(&token).unwrap().sub, first.sub);
        std::thread::sleep(std::time::Duration::from_millis(2100));
        // Still remembered, and refused all the same.
        assert!(k.verified.get(token.as_str()).is_some());
        assert!(k.verify(&token).is_none());
        // Another key never sees it: each key has its own memory.
        assert!(keys("b-secret-b-secret-b-secret-b-secret")
            .verify(&token)
            .is_none());
    }

    #[test]
    fn random_secrets_are_prefixed_and_unique() {
        let a = random_secret(DEVICE_KEY_PREFIX);
        let b = random_secret(DEVICE_KEY_PREFIX);
        assert!(a.starts_with("invd_") && a.len() == 5 + 43);
        assert_ne!(a, b);
        assert_eq!(sha256(&a).len(), 32);
    }
}
