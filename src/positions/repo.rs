//! SQL for stock positions: the read side only. Positions are written by the
//! movement engine (`src/stock/`), never here.

use sqlx::{PgExecutor, Postgres, QueryBuilder};
use time::Date;
use uuid::Uuid;

use super::model::{ExpiringStock, StockPosition};
use crate::stock::{
    blind::under_open_blind_count,
    held,
    repo::{available, effective_reserved},
};

/// Filters shared by the position lists.
#[derive(Debug, Default, Clone)]
pub struct PositionFilter {
    pub product_id: Option<Uuid>,
    pub warehouse_id: Option<Uuid>,
    pub location_id: Option<Uuid>,
    pub lot_id: Option<Uuid>,
    /// Only lots expiring strictly before this date.
    pub expiring_before: Option<Date>,
    /// Leave out positions under an open blind count (see `stock::blind`).
    pub hide_blind: bool,
}

/// SELECT ... WHERE for positions holding stock that match `f`; the caller
/// adds its keyset condition and ORDER BY.
fn select(extra_columns: &str, f: &PositionFilter) -> QueryBuilder<Postgres> {
    let mut q = QueryBuilder::new(format!(
        "SELECT sp.id, sp.product_id, p.sku, sp.warehouse_id, w.code AS warehouse_code,
                sp.location_id, l.code AS location_code, l.path AS location_path,
                sp.lot_id, lt.code AS lot, lt.expires_on, {quantity} AS quantity,
                {reserved} AS level_reserved, {available} AS level_available,
                {updated_at} AS updated_at{extra_columns}
         FROM stock_positions sp
         {join_level}
         JOIN products p ON p.id = sp.product_id
         JOIN warehouses w ON w.id = sp.warehouse_id
         JOIN locations l ON l.id = sp.location_id
         LEFT JOIN lots lt ON lt.id = sp.lot_id
         WHERE {holds_stock}",
        quantity = held::quantity("sp", "s"),
        updated_at = held::updated_at("sp", "s"),
        join_level = held::join_level("sp", "s"),
        holds_stock = held::holds_stock("sp", "s"),
        reserved = effective_reserved("s"),
        available = available("s"),
    ));
    if let Some(p) = f.product_id {
        q.push(" AND sp.product_id = ").push_bind(p);
    }
    if let Some(w) = f.warehouse_id {
        q.push(" AND sp.warehouse_id = ").push_bind(w);
    }
    if let Some(l) = f.location_id {
        q.push(" AND sp.location_id = ").push_bind(l);
    }
    if let Some(lot) = f.lot_id {
        q.push(" AND sp.lot_id = ").push_bind(lot);
    }
    if let Some(d) = f.expiring_before {
        q.push(" AND lt.expires_on < ").push_bind(d);
    }
    if f.hide_blind {
        q.push(" AND NOT ")
            .push(under_open_blind_count("sp.product_id", "sp.warehouse_id"));
    }
    q
}

/// The keyset of the position list: (product, warehouse, location, lot), a
/// position without a lot standing as the largest UUID (they sort last).
pub type PositionKey = (Uuid, Uuid, Uuid, Uuid);

pub fn key_of(p: &StockPosition) -> PositionKey {
    (
        p.product_id,
        p.warehouse_id,
        p.location_id,
        p.lot_id.unwrap_or(Uuid::max()),
    )
}

/// Positions by product, warehouse, location, then lot (the order of `/stock`,
/// refined): the order of the unique index stock_positions_key, so a page is a
/// range scan of it rather than a sort of every position. `fetch: None`
/// returns every row.
pub async fn list(
    db: impl PgExecutor<'_>,
    f: &PositionFilter,
    after: Option<PositionKey>,
    fetch: Option<i64>,
) -> Result<Vec<StockPosition>, sqlx::Error> {
    let mut q = select("", f);
    if let Some((p, w, l, lot)) = after {
        // The first condition is the index range; the second skips the rows
        // of the last location already sent (few: one per lot).
        q.push(" AND (sp.product_id, sp.warehouse_id, sp.location_id) >= (")
            .push_bind(p)
            .push(", ")
            .push_bind(w)
            .push(", ")
            .push_bind(l)
            .push(") AND ((sp.product_id, sp.warehouse_id, sp.location_id) > (")
            .push_bind(p)
            .push(", ")
            .push_bind(w)
            .push(", ")
            .push_bind(l)
            .push(") OR COALESCE(sp.lot_id, 'ffffffff-ffff-ffff-ffff-ffffffffffff') > ")
            .push_bind(lot)
            .push(")");
    }
    q.push(" ORDER BY sp.product_id, sp.warehouse_id, sp.location_id, sp.lot_id");
    if let Some(fetch) = fetch {
        q.push(" LIMIT ").push_bind(fetch);
    }
    q.build_query_as().fetch_all(db).await
}

/// Positions whose lot expires on or before today + `within_days` (already
/// expired ones included), soonest first, keyset-paginated on (expires_on, id).
/// "Today" is the database's `current_date`.
pub async fn expiring(
    db: impl PgExecutor<'_>,
    f: &PositionFilter,
    within_days: i32,
    after: Option<(Date, Uuid)>,
    fetch: i64,
) -> Result<Vec<ExpiringStock>, sqlx::Error> {
    let mut q = select(
        ", lt.expires_on < current_date AS expired, (lt.expires_on - current_date) AS days_left",
        f,
    );
    // lots_expiry_idx serves this when few lots are near their date.
    q.push(" AND lt.expires_on <= current_date + ")
        .push_bind(within_days);
    if let Some((d, id)) = after {
        q.push(" AND (lt.expires_on, sp.id) > (")
            .push_bind(d)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    q.push(" ORDER BY lt.expires_on, sp.id LIMIT ")
        .push_bind(fetch);
    q.build_query_as().fetch_all(db).await
}
