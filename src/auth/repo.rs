//! SQL for users and refresh tokens.

use sqlx::{PgPool, Postgres, Transaction};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{model::User, Role};

/// Creates a user whose password is already hashed. Uniqueness of the email
/// (in its normal form, see `auth::email`) is the database's job:
/// `users_email_normalized_key`.
pub async fn insert_user(
    db: impl sqlx::PgExecutor<'_>,
    email: &str,
    display_name: &str,
    role: Role,
    password_hash: &str,
) -> Result<Uuid, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO users (email, email_normalized, display_name, role, password_hash)
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(email)
    .bind(super::email::normalize(email))
    .bind(display_name)
    .bind(role)
    .bind(password_hash)
    .fetch_one(db)
    .await
}

/// Creates the first admin when the users table is empty. The advisory lock
/// keeps two replicas starting together from both creating one.
pub async fn bootstrap_admin(
    db: &PgPool,
    email: &str,
    password_hash: &str,
) -> Result<bool, sqlx::Error> {
    let mut tx = crate::db::begin(db).await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('inventory-api:bootstrap-admin'))")
        .execute(&mut *tx)
        .await?;
    let any: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users)")
        .fetch_one(&mut *tx)
        .await?;
    if any {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO users (email, email_normalized, display_name, role, password_hash)
         VALUES ($1, $2, 'Administrator', 'admin', $3)",
    )
    .bind(email)
    .bind(super::email::normalize(email))
    .bind(password_hash)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// Rewrites the normal form of non-ASCII addresses with the service's own
/// function, where rows were filled by the database's approximation (see the
/// migration `users_email_normalized`). Run at start-up; ASCII rows already agree.
pub async fn renormalize_emails(db: &PgPool) -> Result<u64, sqlx::Error> {
    let rows: Vec<(Uuid, String, String)> = sqlx::query_as(
        "SELECT id, email, email_normalized FROM users WHERE email ~ '[^\\x01-\\x7f]'",
    )
    .fetch_all(db)
    .await?;
    let mut changed = 0;
    for (id, email, stored) in rows {
        let normalized = super::email::normalize(&email);
        if normalized != stored {
            sqlx::query("UPDATE users SET email_normalized = $2 WHERE id = $1")
                .bind(id)
                .bind(&normalized)
                .execute(db)
                .await?;
            changed += 1;
        }
    }
    Ok(changed)
}

/// What login needs to know about an email.
#[derive(sqlx::FromRow)]
pub struct Credentials {
    pub id: Uuid,
    pub role: Role,
    pub active: bool,
    pub password_hash: String,
    pub token_generation: i32,
}

/// `normalized_email` comes from `auth::email::normalize`.
pub async fn credentials(
    db: &PgPool,
    normalized_email: &str,
) -> Result<Option<Credentials>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, role, active, password_hash, token_generation FROM users
         WHERE email_normalized = $1",
    )
    .bind(normalized_email)
    .fetch_optional(db)
    .await
}

pub async fn user(db: impl sqlx::PgExecutor<'_>, id: Uuid) -> Result<Option<User>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, email, display_name, role, active, created_at, updated_at FROM users WHERE id = $1",
    )
        .bind(id)
        .fetch_optional(db)
        .await
}

/// Users ordered by (created_at, id), after the cursor.
pub async fn list_users(
    db: &PgPool,
    after: Option<(OffsetDateTime, Uuid)>,
    fetch: i64,
) -> Result<Vec<User>, sqlx::Error> {
    let (at, id) = after.unzip();
    sqlx::query_as(
        "SELECT id, email, display_name, role, active, created_at, updated_at FROM users
         WHERE $1::timestamptz IS NULL OR (created_at, id) > ($1, $2)
         ORDER BY created_at, id LIMIT $3",
    )
    .bind(at)
    .bind(id)
    .bind(fetch)
    .fetch_all(db)
    .await
}

/// Locks the user row and reports whether another active admin exists, so the
/// "last admin" rule holds even when two admins demote each other at once
/// (every such change locks all active admin rows in id order first).
pub async fn lock_for_admin_change(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
) -> Result<Option<(Role, bool, bool)>, sqlx::Error> {
    let admins: Vec<Uuid> = sqlx::query_scalar(
        "SELECT id FROM users WHERE role = 'admin' AND active ORDER BY id FOR UPDATE",
    )
    .fetch_all(&mut **tx)
    .await?;
    let row: Option<(Role, bool)> =
        sqlx::query_as("SELECT role, active FROM users WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?;
    let others = admins.iter().any(|a| *a != id);
    Ok(row.map(|(role, active)| (role, active, others)))
}

pub async fn update_user(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
    display_name: Option<&str>,
    role: Option<Role>,
    active: Option<bool>,
    password_hash: Option<&str>,
) -> Result<User, sqlx::Error> {
    sqlx::query_as(
        "UPDATE users SET
             display_name = COALESCE($2, display_name),
             role = COALESCE($3, role),
             active = COALESCE($4, active),
             password_hash = COALESCE($5, password_hash),
             -- A new password or deactivation ends every access token issued so far.
             token_generation = token_generation
                 + CASE WHEN $5 IS NOT NULL OR $4 = false THEN 1 ELSE 0 END
         WHERE id = $1
         RETURNING id, email, display_name, role, active, created_at, updated_at",
    )
    .bind(id)
    .bind(display_name)
    .bind(role)
    .bind(active)
    .bind(password_hash)
    .fetch_one(&mut **tx)
    .await
}

/// Signs a user out everywhere.
pub async fn revoke_user_tokens(
    tx: &mut Transaction<'_, Postgres>,
    user_id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL",
    )
    .bind(user_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn insert_refresh_token(
    db: impl sqlx::PgExecutor<'_>,
    user_id: Uuid,
    family_id: Uuid,
    token_hash: &[u8],
    expires_at: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO refresh_tokens (family_id, user_id, token_hash, expires_at)
         VALUES ($1, $2, $3, $4)",
    )
    .bind(family_id)
    .bind(user_id)
    .bind(token_hash)
    .bind(expires_at)
    .execute(db)
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
pub struct StoredRefresh {
    pub id: Uuid,
    pub family_id: Uuid,
    pub user_id: Uuid,
    pub expires_at: OffsetDateTime,
    pub used_at: Option<OffsetDateTime>,
    pub revoked_at: Option<OffsetDateTime>,
    pub role: Role,
    pub active: bool,
    pub token_generation: i32,
}

/// The token row, locked so two concurrent refreshes with one token cannot
/// both succeed.
pub async fn lock_refresh_token(
    tx: &mut Transaction<'_, Postgres>,
    token_hash: &[u8],
) -> Result<Option<StoredRefresh>, sqlx::Error> {
    sqlx::query_as(
        "SELECT t.id, t.family_id, t.user_id, t.expires_at, t.used_at, t.revoked_at, u.role, u.active,
                u.token_generation
         FROM refresh_tokens t JOIN users u ON u.id = t.user_id
         WHERE t.token_hash = $1
         FOR UPDATE OF t",
    )
    .bind(token_hash)
    .fetch_optional(&mut **tx)
    .await
}

pub async fn mark_refresh_used(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE refresh_tokens SET used_at = now() WHERE id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub async fn revoke_family(
    db: impl sqlx::PgExecutor<'_>,
    family_id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL",
    )
    .bind(family_id)
    .execute(db)
    .await?;
    Ok(())
}

/// The family of a refresh token, if it belongs to `user_id`.
pub async fn family_of(
    db: &PgPool,
    token_hash: &[u8],
    user_id: Uuid,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT family_id FROM refresh_tokens WHERE token_hash = $1 AND user_id = $2",
    )
    .bind(token_hash)
    .bind(user_id)
    .fetch_optional(db)
    .await
}
