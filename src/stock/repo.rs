//! Reads of stock levels and the ledger. Writes go through the movement
//! engine ([`super::engine`]).

use rust_decimal::Decimal;
use sqlx::{PgPool, QueryBuilder};
use time::OffsetDateTime;
use uuid::Uuid;

use super::model::{StockLevel, StockTransaction, TransactionKind};

/// SQL counting lots with stock that expire within 30 days (already expired
/// ones included): one definition for the dashboard and the
/// `inventory_expiring_lots` gauge.
pub const EXPIRING_SOON_LOTS: &str = "(SELECT count(DISTINCT s.lot_id) FROM stock_positions s
      JOIN lots l ON l.id = s.lot_id
      WHERE s.quantity > 0 AND l.expires_on <= current_date + 30)";

pub const TRANSACTION_COLUMNS: &str =
    "id, kind, product_id, warehouse_id, location_id, lot_id, quantity, balance_after, \
    warehouse_balance_after, unit_cost, transfer_id, reason, reference, note, lot, expires_on, serial, \
    count_id, actor_user_id, actor_device_id, created_at, value_after, reservation_id";

pub async fn transaction(db: &PgPool, id: Uuid) -> Result<Option<StockTransaction>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {TRANSACTION_COLUMNS} FROM stock_transactions WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(db)
    .await
}

/// Filters of the ledger list.
#[derive(Debug, Default)]
pub struct TransactionFilter {
    pub product_id: Option<Uuid>,
    pub warehouse_id: Option<Uuid>,
    pub kind: Option<TransactionKind>,
    pub actor: Option<Uuid>,
    pub since: Option<OffsetDateTime>,
    pub until: Option<OffsetDateTime>,
    pub reference: Option<String>,
}

/// Ledger rows, newest first, keyset-paginated on (created_at, id). Each
/// filter has an index ending in (created_at DESC, id DESC) (migration
/// 20261202170002), so a page reads its LIMIT rows in order however deep.
pub async fn transactions(
    db: &PgPool,
    f: &TransactionFilter,
    after: Option<(OffsetDateTime, Uuid)>,
    fetch: i64,
) -> Result<Vec<StockTransaction>, sqlx::Error> {
    let mut q = QueryBuilder::new(format!(
        "SELECT {TRANSACTION_COLUMNS} FROM stock_transactions WHERE TRUE"
    ));
    if let Some(p) = f.product_id {
        q.push(" AND product_id = ").push_bind(p);
    }
    if let Some(w) = f.warehouse_id {
        q.push(" AND warehouse_id = ").push_bind(w);
    }
    if let Some(k) = f.kind {
        q.push(" AND kind = ").push_bind(k);
    }
    if let Some(a) = f.actor {
        q.push(" AND (actor_user_id = ")
            .push_bind(a)
            .push(" OR actor_device_id = ")
            .push_bind(a)
            .push(")");
    }
    if let Some(s) = f.since {
        q.push(" AND created_at >= ").push_bind(s);
    }
    if let Some(u) = f.until {
        q.push(" AND created_at < ").push_bind(u);
    }
    if let Some(r) = &f.reference {
        q.push(" AND reference = ").push_bind(r.clone());
    }
    if let Some((at, id)) = after {
        q.push(" AND (created_at, id) < (")
            .push_bind(at)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    q.push(" ORDER BY created_at DESC, id DESC LIMIT ")
        .push_bind(fetch);
    q.build_query_as().fetch_all(db).await
}

/// SQL that is true when the level of (`product`, `warehouse`) (column or
/// parameter expressions) is under an open blind count: its warehouse, and its
/// product unless the count covers the whole warehouse. While the count is
/// open such levels are hidden from the people doing the counting: device
/// keys, viewers and clerks; managers and admins still see them (see
/// [`hides_blind_counts`]).
pub fn under_open_blind_count(product: &str, warehouse: &str) -> String {
    format!(
        "EXISTS (SELECT 1 FROM count_sessions c
                 WHERE c.status = 'open' AND c.blind AND c.warehouse_id = {warehouse}
                   AND (c.product_ids IS NULL OR {product} = ANY(c.product_ids)))"
    )
}

/// Whether `principal` is one of those a blind count hides levels from.
pub fn hides_blind_counts(principal: &crate::auth::principal::Principal) -> bool {
    principal
        .role()
        .is_none_or(|role| role < crate::auth::Role::Manager)
}

/// Stock levels, keyset-paginated on (product_id, warehouse_id).
pub async fn levels(
    db: &PgPool,
    product_id: Option<Uuid>,
    warehouse_id: Option<Uuid>,
    below_reorder: bool,
    hide_blind: bool,
    after: Option<(Uuid, Uuid)>,
    fetch: i64,
) -> Result<Vec<StockLevel>, sqlx::Error> {
    let (ap, aw) = after.unzip();
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT s.product_id, p.sku, s.warehouse_id, w.code AS warehouse_code, s.quantity,
                p.reorder_point, s.updated_at
         FROM stock_levels s
         JOIN products p ON p.id = s.product_id
         JOIN warehouses w ON w.id = s.warehouse_id
         WHERE ($1::uuid IS NULL OR s.product_id = $1)
           AND ($2::uuid IS NULL OR s.warehouse_id = $2)
           AND (NOT $3 OR (p.reorder_point > 0 AND s.quantity <= p.reorder_point))
           AND ($4::uuid IS NULL OR (s.product_id, s.warehouse_id) > ($4, $5))
           AND NOT ($7 AND {hidden})
         ORDER BY s.product_id, s.warehouse_id LIMIT $6",
        hidden = under_open_blind_count("s.product_id", "s.warehouse_id")
    )))
    .bind(product_id)
    .bind(warehouse_id)
    .bind(below_reorder)
    .bind(ap)
    .bind(aw)
    .bind(fetch)
    .bind(hide_blind)
    .fetch_all(db)
    .await
}

/// A product's levels per warehouse with their value at the product's unit cost.
pub async fn product_levels(
    db: &PgPool,
    product_id: Uuid,
    hide_blind: bool,
) -> Result<Option<(Decimal, Vec<(Uuid, String, i64)>)>, sqlx::Error> {
    let cost: Option<Decimal> = sqlx::query_scalar("SELECT unit_cost FROM products WHERE id = $1")
        .bind(product_id)
        .fetch_optional(db)
        .await?;
    let Some(cost) = cost else { return Ok(None) };
    let rows = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT s.warehouse_id, w.code, s.quantity FROM stock_levels s
         JOIN warehouses w ON w.id = s.warehouse_id
         WHERE s.product_id = $1 AND NOT ($2 AND {hidden})
         ORDER BY w.code",
        hidden = under_open_blind_count("s.product_id", "s.warehouse_id")
    )))
    .bind(product_id)
    .bind(hide_blind)
    .fetch_all(db)
    .await?;
    Ok(Some((cost, rows)))
}
