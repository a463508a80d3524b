//! SQL for warehouses.

use sqlx::{PgExecutor, PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::model::Warehouse;

pub async fn insert(
    tx: &mut Transaction<'_, Postgres>,
    code: &str,
    name: &str,
    address: &str,
) -> Result<Warehouse, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO warehouses (code, name, address) VALUES ($1, $2, $3)
         RETURNING id, code, name, address, active, version, created_at, updated_at",
    )
    .bind(code)
    .bind(name)
    .bind(address)
    .fetch_one(&mut **tx)
    .await
}

pub async fn get(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<Warehouse>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, code, name, address, active, version, created_at, updated_at
         FROM warehouses WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(db)
    .await
}

/// Warehouses ordered by code (case-insensitive), then id.
pub async fn list(
    db: &PgPool,
    active: Option<bool>,
    after: Option<(String, Uuid)>,
    fetch: i64,
) -> Result<Vec<Warehouse>, sqlx::Error> {
    let (code, id) = after.unzip();
    sqlx::query_as(
        "SELECT id, code, name, address, active, version, created_at, updated_at
         FROM warehouses
         WHERE ($1::bool IS NULL OR active = $1)
           AND ($2::text IS NULL OR (lower(code), id) > ($2, $3))
         ORDER BY lower(code), id LIMIT $4",
    )
    .bind(active)
    .bind(code)
    .bind(id)
    .bind(fetch)
    .fetch_all(db)
    .await
}

/// Locks the row for a change (FOR UPDATE also waits for movements that are
/// inserting rows referencing it).
pub async fn lock(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
) -> Result<Option<Warehouse>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, code, name, address, active, version, created_at, updated_at
         FROM warehouses WHERE id = $1 FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(&mut **tx)
    .await
}

/// Units held in the warehouse, over all products.
pub async fn units_held(tx: &mut Transaction<'_, Postgres>, id: Uuid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT COALESCE(sum(quantity), 0)::bigint FROM stock_levels WHERE warehouse_id = $1",
    )
    .bind(id)
    .fetch_one(&mut **tx)
    .await
}

pub async fn update(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
    code: Option<&str>,
    name: Option<&str>,
    address: Option<&str>,
    active: Option<bool>,
) -> Result<Warehouse, sqlx::Error> {
    sqlx::query_as(
        "UPDATE warehouses SET
             code = COALESCE($2, code),
             name = COALESCE($3, name),
             address = COALESCE($4, address),
             active = COALESCE($5, active),
             version = version + 1
         WHERE id = $1
         RETURNING id, code, name, address, active, version, created_at, updated_at",
    )
    .bind(id)
    .bind(code)
    .bind(name)
    .bind(address)
    .bind(active)
    .fetch_one(&mut **tx)
    .await
}
