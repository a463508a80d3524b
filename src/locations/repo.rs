//! SQL for locations. The tree's paths and the refusal of cycles are kept by
//! triggers (migration 20261202180001), so nothing here computes a path.

use sqlx::{PgExecutor, Postgres, QueryBuilder, Transaction};
use uuid::Uuid;

use super::model::Location;
use crate::stock::held;

const COLUMNS: &str =
    "id, warehouse_id, code, name, parent_id, barcode, active, path, created_at, updated_at";

pub async fn insert(
    tx: &mut Transaction<'_, Postgres>,
    warehouse_id: Uuid,
    code: &str,
    name: &str,
    parent_id: Option<Uuid>,
    barcode: Option<&str>,
) -> Result<Location, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO locations (warehouse_id, code, name, parent_id, barcode)
         VALUES ($1, $2, $3, $4, $5) RETURNING {COLUMNS}"
    )))
    .bind(warehouse_id)
    .bind(code)
    .bind(name)
    .bind(parent_id)
    .bind(barcode)
    .fetch_one(&mut **tx)
    .await
}

pub async fn get(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<Location>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM locations WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(db)
    .await
}

pub async fn by_barcode(
    db: impl PgExecutor<'_>,
    barcode: &str,
) -> Result<Option<Location>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM locations WHERE barcode = $1"
    )))
    .bind(barcode)
    .fetch_optional(db)
    .await
}

/// Locks the row for a change or a delete. FOR UPDATE also waits for (and
/// then fails) movements inserting ledger rows or positions that reference it,
/// since their foreign key checks lock it FOR KEY SHARE.
pub async fn lock(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
) -> Result<Option<Location>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM locations WHERE id = $1 FOR UPDATE"
    )))
    .bind(id)
    .fetch_optional(&mut **tx)
    .await
}

/// Whether `id` is a location of `warehouse_id`.
pub async fn in_warehouse(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
    warehouse_id: Uuid,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM locations WHERE id = $1 AND warehouse_id = $2)",
    )
    .bind(id)
    .bind(warehouse_id)
    .fetch_one(&mut **tx)
    .await
}

/// Filters of a warehouse's location list.
#[derive(Debug, Default)]
pub struct LocationFilter {
    pub active: Option<bool>,
    /// Case-insensitive, anywhere in the path (so in any ancestor's code) or the name.
    pub q: Option<String>,
}

/// A warehouse's locations in tree order: by path (case-insensitive), then id.
pub async fn list(
    db: impl PgExecutor<'_>,
    warehouse_id: Uuid,
    filter: &LocationFilter,
    after: Option<(String, Uuid)>,
    fetch: i64,
) -> Result<Vec<Location>, sqlx::Error> {
    let mut q = QueryBuilder::new(format!(
        "SELECT {COLUMNS} FROM locations WHERE warehouse_id = "
    ));
    q.push_bind(warehouse_id);
    if let Some(active) = filter.active {
        q.push(" AND active = ").push_bind(active);
    }
    if let Some(term) = filter.q.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        let pattern = crate::catalog::repo::like_pattern(term);
        q.push(" AND (path ILIKE ")
            .push_bind(pattern.clone())
            .push(" OR name ILIKE ")
            .push_bind(pattern)
            .push(")");
    }
    if let Some((path, id)) = after {
        q.push(" AND (lower(path), id) > (")
            .push_bind(path)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    q.push(" ORDER BY lower(path), id LIMIT ").push_bind(fetch);
    q.build_query_as().fetch_all(db).await
}

/// A change to the nullable columns: `None` leaves it, `Some(v)` sets it to `v`.
pub type Set<T> = Option<Option<T>>;

pub async fn update(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
    code: Option<&str>,
    name: Option<&str>,
    parent_id: Set<Uuid>,
    barcode: Set<&str>,
    active: Option<bool>,
) -> Result<Location, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE locations SET
             code = COALESCE($2, code),
             name = COALESCE($3, name),
             parent_id = CASE WHEN $4 THEN $5 ELSE parent_id END,
             barcode = CASE WHEN $6 THEN $7 ELSE barcode END,
             active = COALESCE($8, active)
         WHERE id = $1
         RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(code)
    .bind(name)
    .bind(parent_id.is_some())
    .bind(parent_id.flatten())
    .bind(barcode.is_some())
    .bind(barcode.flatten())
    .bind(active)
    .fetch_one(&mut **tx)
    .await
}

/// Units held at the location, over all products and lots.
pub async fn units_held(tx: &mut Transaction<'_, Postgres>, id: Uuid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT COALESCE(sum({quantity}), 0)::bigint FROM stock_positions sp {join_level}
         WHERE sp.location_id = $1",
        quantity = held::quantity("sp", "s"),
        join_level = held::join_level("sp", "s"),
    )))
    .bind(id)
    .fetch_one(&mut **tx)
    .await
}

/// What still refers to the location besides stock: child locations, or a
/// history (ledger rows, positions, serial numbers, count lines, scans).
/// A location with a history can only be deactivated.
#[derive(Debug, sqlx::FromRow)]
pub struct References {
    pub children: bool,
    pub history: bool,
}

pub async fn references(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
) -> Result<References, sqlx::Error> {
    // Each EXISTS stops at its first row. The ledger has no index on
    // location_id (one more index on the hottest insert path for a rare
    // delete): naming the warehouse lets it use (warehouse_id, created_at).
    // Scans and count lines are probed unindexed; deletes are rare.
    sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM locations WHERE parent_id = $1) AS children,
                EXISTS (SELECT 1 FROM stock_positions WHERE location_id = $1)
             OR EXISTS (SELECT 1 FROM stock_transactions t JOIN locations l ON l.warehouse_id = t.warehouse_id
                        WHERE l.id = $1 AND t.location_id = $1)
             OR EXISTS (SELECT 1 FROM serial_numbers WHERE location_id = $1)
             OR EXISTS (SELECT 1 FROM count_lines WHERE location_id = $1)
             OR EXISTS (SELECT 1 FROM scan_events WHERE location_id = $1) AS history",
    )
    .bind(id)
    .fetch_one(&mut **tx)
    .await
}

pub async fn delete(tx: &mut Transaction<'_, Postgres>, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM locations WHERE id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
