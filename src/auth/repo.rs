//! SQL for users.

use sqlx::PgPool;
use uuid::Uuid;

use super::Role;

/// Creates a user whose password is already hashed. Uniqueness of the email
/// (case-insensitive) is the database's job: `users_email_key`.
pub async fn insert_user(
    db: &PgPool,
    email: &str,
    display_name: &str,
    role: Role,
    password_hash: &str,
) -> Result<Uuid, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO users (email, display_name, role, password_hash)
         VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(email)
    .bind(display_name)
    .bind(role.as_str())
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
    let mut tx = db.begin().await?;
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
        "INSERT INTO users (email, display_name, role, password_hash)
         VALUES ($1, 'Administrator', 'admin', $2)",
    )
    .bind(email)
    .bind(password_hash)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}
