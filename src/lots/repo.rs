//! SQL for lots, recall traces and serial numbers: the read side only. Lots
//! and serial numbers are created by the movement engine (`src/stock/`).

use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

use super::model::{Lot, SerialWhereabouts, TracedMovement};
use crate::stock::blind::under_open_blind_count;

/// A lot's columns with its quantity on hand: the sum of its positions
/// (a lot position stores its own quantity, see `stock::held`), leaving out
/// (when `$2`) those under an open blind count.
fn lot_select() -> String {
    format!(
        "SELECT lt.id, lt.product_id, lt.code, lt.expires_on, lt.created_at,
                COALESCE((SELECT sum(sp.quantity) FROM stock_positions sp
                          WHERE sp.lot_id = lt.id AND NOT ($2 AND {hidden})), 0)::bigint AS quantity
         FROM lots lt",
        hidden = under_open_blind_count("sp.product_id", "sp.warehouse_id")
    )
}

pub async fn get(
    db: impl PgExecutor<'_>,
    id: Uuid,
    hide_blind: bool,
) -> Result<Option<Lot>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{} WHERE lt.id = $1",
        lot_select()
    )))
    .bind(id)
    .bind(hide_blind)
    .fetch_optional(db)
    .await
}

/// A product's lots by code, keyset-paginated on the code (unique per product).
pub async fn of_product(
    db: impl PgExecutor<'_>,
    product_id: Uuid,
    hide_blind: bool,
    in_stock: Option<bool>,
    after: Option<String>,
    fetch: i64,
) -> Result<Vec<Lot>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT * FROM ({lots} WHERE lt.product_id = $1 AND ($3::text IS NULL OR lt.code > $3)) x
         WHERE ($4::bool IS NULL OR (quantity > 0) = $4)
         ORDER BY code LIMIT $5",
        lots = lot_select()
    )))
    .bind(product_id)
    .bind(hide_blind)
    .bind(after)
    .bind(in_stock)
    .bind(fetch)
    .fetch_all(db)
    .await
}

/// The product's SKU, or None when there is no such product.
pub async fn sku(db: impl PgExecutor<'_>, product_id: Uuid) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT sku FROM products WHERE id = $1")
        .bind(product_id)
        .fetch_optional(db)
        .await
}

const MOVEMENT_SELECT: &str = "
    SELECT t.id, t.kind, t.warehouse_id, w.code AS warehouse_code, t.location_id,
           l.path AS location_path, t.quantity, lt.code AS lot, t.serial, t.reference,
           t.transfer_id, t.created_at
    FROM stock_transactions t
    JOIN warehouses w ON w.id = t.warehouse_id
    JOIN locations l ON l.id = t.location_id
    LEFT JOIN lots lt ON lt.id = t.lot_id";

/// Every ledger row of a lot, oldest first (stock_transactions_lot_idx).
pub async fn lot_movements(db: &PgPool, lot_id: Uuid) -> Result<Vec<TracedMovement>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{MOVEMENT_SELECT} WHERE t.lot_id = $1 ORDER BY t.created_at, t.id"
    )))
    .bind(lot_id)
    .fetch_all(db)
    .await
}

/// Every ledger row of a serial number, oldest first (stock_transactions_serial_idx).
pub async fn serial_movements(
    db: &PgPool,
    product_id: Uuid,
    serial: &str,
) -> Result<Vec<TracedMovement>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{MOVEMENT_SELECT} WHERE t.product_id = $1 AND t.serial = $2 ORDER BY t.created_at, t.id"
    )))
    .bind(product_id)
    .bind(serial)
    .fetch_all(db)
    .await
}

/// Where the serial number is in stock now, if it is (at most one row: the
/// partial unique index serial_numbers_in_stock_key).
pub async fn serial_in_stock(
    db: &PgPool,
    product_id: Uuid,
    serial: &str,
) -> Result<Option<SerialWhereabouts>, sqlx::Error> {
    sqlx::query_as(
        "SELECT s.warehouse_id, w.code AS warehouse_code, s.location_id, l.path AS location_path,
                s.lot_id, lt.code AS lot
         FROM serial_numbers s
         JOIN warehouses w ON w.id = s.warehouse_id
         JOIN locations l ON l.id = s.location_id
         LEFT JOIN lots lt ON lt.id = s.lot_id
         WHERE s.product_id = $1 AND s.serial = $2 AND s.in_stock",
    )
    .bind(product_id)
    .bind(serial)
    .fetch_optional(db)
    .await
}

/// Whether the serial number was ever received (it may have left since).
pub async fn serial_known(
    db: &PgPool,
    product_id: Uuid,
    serial: &str,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM serial_numbers WHERE product_id = $1 AND serial = $2)",
    )
    .bind(product_id)
    .bind(serial)
    .fetch_one(db)
    .await
}
