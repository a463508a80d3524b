//! The dashboard: a few aggregate reads for a front page. The summary is
//! cached in Redis for a few seconds (a dashboard refreshing every second from
//! many screens would otherwise aggregate the stock table each time).

use std::time::Duration;

use poem::web::Data;
use poem_openapi::{param::Query, payload::Json, Object, OpenApi};
use time::Date;
use uuid::Uuid;

use crate::{
    auth::principal::ViewerAuth,
    error::{ApiError, Result},
    pagination::{Page, PageRequest},
    state::AppState,
    stock::blind::{and_not_hidden, and_product_not_hidden, hides_blind_counts},
    Tags,
};

/// How long a summary is served from the cache before it is recomputed (and
/// served a little longer while that runs, see `Cache::computed_once`).
const SUMMARY_TTL: Duration = Duration::from_secs(10);

/// The inventory at a glance.
#[derive(Debug, Clone, Object, serde::Serialize, serde::Deserialize, sqlx::FromRow)]
pub struct Summary {
    /// Products not archived.
    pub active_products: i64,
    /// Archived products.
    pub archived_products: i64,
    /// Active warehouses.
    pub active_warehouses: i64,
    /// Units on hand over all products and warehouses.
    pub units_on_hand: i64,
    /// Units promised to open reservations (those past `expires_at` count as released).
    pub units_reserved: i64,
    /// `units_on_hand - units_reserved`.
    pub units_available: i64,
    /// Value of the stock: the sum of every (product, warehouse) level's
    /// value at its moving-average cost, to the cent.
    pub stock_value: crate::money::Total,
    /// Active products at or below their reorder point.
    pub low_stock_products: i64,
    /// Ledger rows written today (UTC).
    pub movements_today: i64,
    /// Count sessions still open.
    pub open_counts: i64,
    /// Scanner events rejected in the last 24 hours.
    pub rejected_scans_24h: i64,
    /// Lots with stock that expire within 30 days (or have expired).
    pub expiring_soon_lots: i64,
}

/// A product that needs reordering.
#[derive(Debug, Clone, Object, sqlx::FromRow)]
pub struct LowStock {
    /// The product (UUID).
    pub product_id: Uuid,
    /// Stock keeping unit of the product.
    pub sku: String,
    /// Display name.
    pub name: String,
    /// Units on hand over all warehouses.
    pub on_hand: i64,
    /// Units promised to open reservations over all warehouses.
    pub reserved: i64,
    /// `on_hand - reserved`.
    pub available: i64,
    /// Low-stock threshold of the product.
    pub reorder_point: i32,
    /// How much to reorder.
    pub reorder_quantity: i32,
}

/// Movements of one kind on one day.
#[derive(Debug, Clone, Object, sqlx::FromRow)]
pub struct DailyMovements {
    /// The day (UTC).
    pub day: Date,
    /// The kind of movement.
    pub kind: String,
    /// Ledger rows.
    pub movements: i64,
    /// Units moved (absolute).
    pub units: i64,
}

pub struct DashboardApi;

#[OpenApi(prefix_path = "/api/v1/dashboard", tag = "Tags::Dashboard")]
impl DashboardApi {
    /// Totals for a front page (viewer); at most 10 seconds old.
    ///
    /// For device keys, viewers and clerks, the stock figures leave out the
    /// levels (and their lots) under an open blind count, and
    /// `low_stock_products` the products with such a level, as `/low-stock`.
    #[oai(
        path = "/summary",
        method = "get",
        operation_id = "getDashboardSummary"
    )]
    async fn summary(&self, auth: ViewerAuth, state: Data<&AppState>) -> Result<Json<Summary>> {
        let hide = hides_blind_counts(&auth.0);
        // Those a blind count hides from get a summary of their own, cached
        // under the open blind counts: opening or closing one is a new key.
        let key = if hide {
            let open: String = sqlx::query_scalar(
                "SELECT COALESCE(string_agg(id::text, ',' ORDER BY id), '') FROM count_sessions
                 WHERE status = 'open' AND blind",
            )
            .fetch_one(&state.db)
            .await?;
            format!("dashboard:summary:blind:{open}")
        } else {
            "dashboard:summary".to_owned()
        };
        // Seconds at a million products: computed once for every replica and
        // concurrent request, then served from the cache for SUMMARY_TTL, and
        // while its recompute runs.
        let sql = format!(
            "WITH levels AS NOT MATERIALIZED (SELECT * FROM stock_levels s WHERE TRUE{visible}),
                  totals AS (SELECT product_id, sum(quantity) AS q FROM levels GROUP BY product_id),
                  on_hand AS (SELECT COALESCE(sum(quantity), 0)::bigint AS q FROM levels),
                  promised AS (SELECT COALESCE(sum({reserved}), 0)::bigint AS r FROM levels s WHERE s.reserved > 0)
             SELECT (SELECT count(*) FROM products WHERE active) AS active_products,
                    (SELECT count(*) FROM products WHERE NOT active) AS archived_products,
                    (SELECT count(*) FROM warehouses WHERE active) AS active_warehouses,
                    (SELECT q FROM on_hand) AS units_on_hand,
                    (SELECT r FROM promised) AS units_reserved,
                    (SELECT q FROM on_hand) - (SELECT r FROM promised) AS units_available,
                    {stock_value} AS stock_value,
                    (SELECT count(*) FROM products p LEFT JOIN totals t ON t.product_id = p.id
                      WHERE p.active AND p.reorder_point > 0 AND COALESCE(t.q, 0) <= p.reorder_point{products})
                      AS low_stock_products,
                    (SELECT count(*) FROM stock_transactions
                      WHERE created_at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')
                      AS movements_today,
                    (SELECT count(*) FROM count_sessions WHERE status = 'open') AS open_counts,
                    (SELECT count(*) FROM scan_events
                      WHERE status = 'rejected' AND received_at > now() - interval '24 hours') AS rejected_scans_24h,
                    {expiring} AS expiring_soon_lots",
            visible = and_not_hidden(hide, "s"),
            products = and_product_not_hidden(hide, "p.id", "NULL::uuid"),
            expiring = crate::stock::repo::expiring_soon_lots(hide),
            reserved = crate::stock::repo::effective_reserved("s"),
            stock_value = crate::stock::repo::stock_value(hide),
        );
        let summary: Summary = state
            .cache
            .computed_once(&state.db, "dashboard", &key, SUMMARY_TTL, async |conn| {
                crate::db::plan_for_whole_tables(conn).await?;
                sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .fetch_one(conn)
                    .await
            })
            .await?;
        Ok(Json(summary))
    }

    /// Active products at or below their reorder point (viewer), by SKU.
    ///
    /// For device keys, viewers and clerks, a product with a level under an
    /// open blind count is left out (its sum would be that level's secret,
    /// or misleading without it).
    #[oai(path = "/low-stock", method = "get", operation_id = "listLowStock")]
    async fn low_stock(
        &self,
        auth: ViewerAuth,
        state: Data<&AppState>,
        /// Page size, 1-500 (default 50).
        limit: Query<Option<u32>>,
        /// `next_cursor` from the previous page.
        cursor: Query<Option<String>>,
    ) -> Result<Json<Page<LowStock>>> {
        let page = PageRequest::<(String, Uuid)>::new(limit.0, cursor.0.as_deref())?;
        let (sku, id) = page.after.clone().unzip();
        // On hand and promised over all warehouses; the list is still "on
        // hand at or below the reorder point" (as in v1). /replenishment is
        // the list by what is available.
        let rows: Vec<LowStock> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT p.id AS product_id, p.sku, p.name, t.on_hand, t.reserved,
                    t.on_hand - t.reserved AS available, p.reorder_point, p.reorder_quantity
             FROM products p
             CROSS JOIN LATERAL (
                 SELECT COALESCE(sum(s.quantity), 0)::bigint AS on_hand,
                        COALESCE(sum({reserved}), 0)::bigint AS reserved
                 FROM stock_levels s WHERE s.product_id = p.id
             ) t
             WHERE p.active AND p.reorder_point > 0 AND t.on_hand <= p.reorder_point
               AND ($1::text IS NULL OR (lower(p.sku), p.id) > ($1, $2)){hidden}
             ORDER BY lower(p.sku), p.id LIMIT $3",
            reserved = crate::stock::repo::effective_reserved("s"),
            hidden = and_product_not_hidden(hides_blind_counts(&auth.0), "p.id", "NULL::uuid"),
        )))
        .bind(sku)
        .bind(id)
        .bind(page.fetch())
        .fetch_all(&state.db)
        .await?;
        Ok(Json(page.page(
            rows,
            |r| (r.sku.to_lowercase(), r.product_id),
            |r| r,
        )))
    }

    /// Movements per day and kind over the last `days` days (viewer), oldest first.
    #[oai(
        path = "/movements",
        method = "get",
        operation_id = "getDailyMovements"
    )]
    async fn movements(
        &self,
        _auth: ViewerAuth,
        state: Data<&AppState>,
        /// 1-366 (default 7), counting today (UTC).
        days: Query<Option<u32>>,
    ) -> Result<Json<Vec<DailyMovements>>> {
        let days = days.0.unwrap_or(7);
        if !(1..=366).contains(&days) {
            return Err(ApiError::field("days", "must be between 1 and 366"));
        }
        let rows: Vec<DailyMovements> = sqlx::query_as(
            "SELECT (created_at AT TIME ZONE 'UTC')::date AS day, kind,
                    count(*) AS movements, sum(abs(quantity))::bigint AS units
             FROM stock_transactions
             WHERE created_at >= (date_trunc('day', now() AT TIME ZONE 'UTC') - ($1::int - 1) * interval '1 day') AT TIME ZONE 'UTC'
             GROUP BY 1, 2 ORDER BY 1, 2",
        )
        .bind(days as i32)
        .fetch_all(&state.db)
        .await?;
        Ok(Json(rows))
    }
}
