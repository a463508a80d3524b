//! Request and response bodies of the auth and users APIs.

use poem_openapi::Object;
use time::OffsetDateTime;
use uuid::Uuid;

use super::Role;

/// Credentials for `POST /api/v1/auth/login`.
#[derive(Debug, Object)]
pub struct LoginRequest {
    /// The user's email (case does not matter).
    #[oai(validator(max_length = 254))]
    pub email: String,
    /// The password.
    #[oai(validator(max_length = 256))]
    pub password: String,
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
    #[oai(validator(max_length = 200))]
    pub refresh_token: String,
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
