//! SQL of the replenishment list.

use sqlx::PgPool;
use uuid::Uuid;

use super::Replenishment;
use crate::stock::{blind::and_product_not_hidden, repo::effective_reserved};

pub async fn warehouse_exists(db: &PgPool, id: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM warehouses WHERE id = $1)")
        .bind(id)
        .fetch_one(db)
        .await
}

/// Products to reorder by (lower(sku), id), keyset-paginated. A product with
/// no level (never stocked there) has 0 available. The per-product sums are a
/// probe of stock_levels' primary key (one warehouse) or a range of it (all).
/// `hide_blind`: leave out products with a level in scope under an open
/// blind count.
pub async fn list(
    db: &PgPool,
    warehouse_id: Option<Uuid>,
    hide_blind: bool,
    after: Option<(String, Uuid)>,
    fetch: i64,
) -> Result<Vec<Replenishment>, sqlx::Error> {
    let (sku, id) = after.unzip();
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT p.id AS product_id, p.sku, p.name, $1::uuid AS warehouse_id,
                t.quantity, t.reserved, t.quantity - t.reserved AS available,
                p.reorder_point, p.reorder_quantity,
                GREATEST(p.reorder_quantity::bigint,
                         p.reorder_point::bigint - (t.quantity - t.reserved) + 1) AS suggested_quantity
         FROM products p
         CROSS JOIN LATERAL (
             SELECT COALESCE(sum(s.quantity), 0)::bigint AS quantity,
                    COALESCE(sum({reserved}), 0)::bigint AS reserved
             FROM stock_levels s
             WHERE s.product_id = p.id AND ($1::uuid IS NULL OR s.warehouse_id = $1)
         ) t
         WHERE p.active AND p.reorder_point > 0
           AND t.quantity - t.reserved <= p.reorder_point
           AND ($2::text IS NULL OR (lower(p.sku), p.id) > ($2, $3)){hidden}
         ORDER BY lower(p.sku), p.id LIMIT $4",
        reserved = effective_reserved("s"),
        hidden = and_product_not_hidden(hide_blind, "p.id", "$1::uuid"),
    )))
    .bind(warehouse_id)
    .bind(sku)
    .bind(id)
    .bind(fetch)
    .fetch_all(db)
    .await
}
