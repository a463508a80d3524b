//! Request and response bodies of the auth and users APIs.

use poem_openapi::Object;
use time::OffsetDateTime;
use uuid::Uuid;

use super::Role;
use crate::error::Validation;

/// Credentials for `POST /api/v1/auth/login`.
#[derive(Debug, Object)]
pub struct LoginRequest {
    /// The user's email (case does not matter).
    pub email: String,
    /// The password.
    pub password: String,
}

// Lengths are checked here rather than by poem-openapi validators, which
// answer a bare 400: a 422 names the field like every other limit. The spec
// declares them (src/contract/constraints.rs). They keep huge values away from
// the throttle keys and the password hasher.
impl LoginRequest {
    pub fn check(&self) -> crate::error::Result<()> {
        let mut v = Validation::new();
        v.check(
            self.email.chars().count() <= 254,
            "email",
            "must be at most 254 characters",
        );
        v.check(
            self.password.chars().count() <= 256,
            "password",
            "must be at most 256 characters",
        );
        v.finish()
    }
}

/// A fresh access token and refresh token.
#[derive(Debug, Object)]
pub struct TokenPair {
    /// JWT for `Authorization: Bearer ...`; valid for `expires_in` seconds.
    pub access_token: String,
    /// Single-use token for `POST /api/v1/auth/refresh`; valid for 30 days.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Lifetime of the access token in seconds.
    pub expires_in: i64,
}

/// A refresh token to exchange or revoke.
#[derive(Debug, Object)]
pub struct RefreshRequest {
    /// The refresh token from login or the last refresh.
    pub refresh_token: String,
}

impl RefreshRequest {
    pub fn check(&self) -> crate::error::Result<()> {
        let mut v = Validation::new();
        v.check(
            self.refresh_token.chars().count() <= 200,
            "refresh_token",
            "must be at most 200 characters",
        );
        v.finish()
    }
}

/// A user as the API shows it (never with the password hash).
#[derive(Debug, Clone, Object, sqlx::FromRow)]
pub struct User {
    /// Identifier (UUID) of this user.
    pub id: Uuid,
    /// Email address, unique case-insensitively.
    pub email: String,
    /// Name shown to people.
    pub display_name: String,
    pub role: Role,
    /// Inactive users cannot sign in and their tokens stop working.
    pub active: bool,
    /// When this user was created (RFC 3339).
    pub created_at: OffsetDateTime,
    /// When this user last changed (RFC 3339).
    pub updated_at: OffsetDateTime,
}

/// A new user.
#[derive(Debug, Object)]
pub struct CreateUser {
    /// Unique, case-insensitively.
    pub email: String,
    /// At least 12 characters.
    pub password: String,
    pub role: Role,
    /// Defaults to the part of the email before '@'.
    pub display_name: Option<String>,
}

/// Changes to a user; absent fields stay as they are.
#[derive(Debug, Object)]
pub struct UpdateUser {
    /// Name shown to people.
    pub display_name: Option<String>,
    /// The last active admin cannot be demoted.
    pub role: Option<Role>,
    /// false deactivates (the last active admin cannot be deactivated).
    pub active: Option<bool>,
    /// A new password (at least 12 characters); signs the user out everywhere.
    pub password: Option<String>,
}
