//! Reads of stock levels and the ledger. Writes go through the movement
//! engine ([`super::engine`]).

use rust_decimal::Decimal;
use std::collections::HashMap;

use sqlx::{PgExecutor, PgPool, Postgres, QueryBuilder};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{
    blind::{and_not_hidden, under_open_blind_count},
    engine::plan::round_cost,
    held,
    model::{LevelPosition, StockLevel, StockTransaction, TransactionKind},
};

/// SQL counting lots with stock that expire within 30 days (already expired
/// ones included; lot positions store their quantity, see [`super::held`]):
/// one definition for the dashboard and the
/// `inventory_expiring_lots` gauge. `hide_blind`: without the positions
/// under an open blind count ([`super::blind`]).
pub fn expiring_soon_lots(hide_blind: bool) -> String {
    format!(
        "(SELECT count(DISTINCT s.lot_id) FROM stock_positions s
          JOIN lots l ON l.id = s.lot_id
          WHERE s.quantity > 0 AND l.expires_on <= current_date + 30{})",
        and_not_hidden(hide_blind, "s")
    )
}

/// SQL for the *effective* `reserved` of the level row aliased `level`
/// (a `stock_levels` alias): its `reserved` minus what is still open of its
/// active reservations already past `expires_at`. Such reservations count
/// as released from that instant, for every read, even before the expiry
/// job (or the next movement of the level) marks them expired and lowers
/// `reserved`. The subquery is a probe of reservations_open_idx (active
/// reservations only, by product and warehouse). One definition for
/// `/stock`, `/products/{id}/stock`, positions, the dashboard and
/// replenishment.
pub fn effective_reserved(level: &str) -> String {
    format!(
        "({level}.reserved - COALESCE((SELECT sum(r.quantity - r.fulfilled_quantity)
              FROM reservations r
              WHERE r.product_id = {level}.product_id AND r.warehouse_id = {level}.warehouse_id
                AND r.status = 'active' AND r.expires_at <= now()), 0))::bigint"
    )
}

/// SQL for what the level aliased `level` can still give to an issue that
/// holds no reservation: quantity minus [`effective_reserved`].
pub fn available(level: &str) -> String {
    format!("({level}.quantity - {})", effective_reserved(level))
}

/// SQL for the value of all stock: the sum of the levels' moving-average
/// values (exact at 4 decimals). One definition for the dashboard and the
/// `inventory_stock_value` gauge. `hide_blind`: without the levels under an
/// open blind count.
pub fn stock_value(hide_blind: bool) -> String {
    format!(
        "(SELECT COALESCE(sum(s.value), 0) FROM stock_levels s WHERE TRUE{})",
        and_not_hidden(hide_blind, "s")
    )
}

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
    /// For a principal a blind count hides levels from: rows of a level under
    /// an open blind count are listed only when this principal posted them
    /// (everybody's quantities would add up to the level being counted).
    pub blind_viewer: Option<Uuid>,
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
    if let Some(me) = f.blind_viewer {
        q.push(format!(
            " AND (NOT {} OR actor_user_id = ",
            under_open_blind_count(
                "stock_transactions.product_id",
                "stock_transactions.warehouse_id"
            )
        ))
        .push_bind(me)
        .push(" OR actor_device_id = ")
        .push_bind(me)
        .push(")");
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

/// Stock levels, keyset-paginated on (product_id, warehouse_id).
pub async fn levels(
    db: impl PgExecutor<'_>,
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
                {reserved} AS reserved, {available} AS available, p.reorder_point, s.updated_at
         FROM stock_levels s
         JOIN products p ON p.id = s.product_id
         JOIN warehouses w ON w.id = s.warehouse_id
         WHERE ($1::uuid IS NULL OR s.product_id = $1)
           AND ($2::uuid IS NULL OR s.warehouse_id = $2)
           AND (NOT $3 OR (p.reorder_point > 0 AND s.quantity <= p.reorder_point))
           AND ($4::uuid IS NULL OR (s.product_id, s.warehouse_id) > ($4, $5))
           AND NOT ($7 AND {hidden})
         ORDER BY s.product_id, s.warehouse_id LIMIT $6",
        hidden = under_open_blind_count("s.product_id", "s.warehouse_id"),
        reserved = effective_reserved("s"),
        available = available("s"),
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

/// Which levels a valuation covers.
#[derive(Debug, Default, Clone)]
pub struct ValuationFilter {
    pub product_id: Option<Uuid>,
    pub warehouse_id: Option<Uuid>,
    pub category_id: Option<Uuid>,
    /// Leave out levels under an open blind count (see [`super::blind`]).
    pub hide_blind: bool,
    /// Keep levels holding nothing at that instant (a product's page lists
    /// every warehouse it has been in; a valuation lists stock only).
    pub include_empty: bool,
}

/// A level's quantity and value at an instant.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ValuedLevel {
    pub product_id: Uuid,
    pub sku: String,
    pub warehouse_id: Uuid,
    pub warehouse_code: String,
    pub quantity: i64,
    /// Effective reserved now; None for a past instant.
    pub reserved: Option<i64>,
    /// Exact, 4 decimals.
    pub value: Decimal,
    /// The moving average; None when the instant's last ledger row was an
    /// arrival that re-averaged (see [`ValuedLevel::average`]).
    unit_cost: Option<Decimal>,
}

impl ValuedLevel {
    /// The level's moving-average cost. Now: the level's own `unit_cost`.
    /// At a past instant, from the last ledger row at or before it: units
    /// leaving leave at the average without changing it, so a removal row's
    /// `unit_cost` *is* the average; an arrival re-averaged to its
    /// `value_after / warehouse_balance_after` rounded half to even at 4
    /// decimals, exactly as the engine rounds ([`round_cost`]); rows from
    /// before valuation are at the product's unit cost.
    pub fn average(&self) -> Decimal {
        self.unit_cost.unwrap_or_else(|| {
            if self.quantity > 0 {
                round_cost(self.value / Decimal::from(self.quantity))
            } else {
                Decimal::ZERO
            }
        })
    }
}

/// FROM ... WHERE of a valuation at `as_of` (None: now, from the levels
/// themselves). A past instant is read from the ledger: per (product,
/// warehouse) pair that ever existed (stock_levels lists them), the last row
/// at or before the instant, found by a LIMIT 1 probe of
/// stock_transactions_level_idx (product_id, warehouse_id, created_at DESC,
/// id DESC). The cost is one index probe per level, whatever the length of
/// the ledger. The caller adds the keyset and ORDER BY.
fn valuation_from(
    q: &mut QueryBuilder<Postgres>,
    as_of: Option<OffsetDateTime>,
    f: &ValuationFilter,
) {
    match as_of {
        None => {
            q.push(format!(
                " s.quantity, {reserved} AS reserved, s.value, s.unit_cost
                 FROM stock_levels s
                 JOIN products p ON p.id = s.product_id
                 JOIN warehouses w ON w.id = s.warehouse_id
                 WHERE TRUE",
                reserved = effective_reserved("s")
            ));
            if !f.include_empty {
                q.push(" AND s.quantity > 0");
            }
        }
        Some(at) => {
            // value_after is NULL on rows from before valuation: those are
            // valued at the product's unit cost, as the migration valued the
            // levels. unit_cost is NULL where the average must be recomputed
            // (see ValuedLevel::average).
            q.push(
                " t.warehouse_balance_after AS quantity, NULL::bigint AS reserved,
                 COALESCE(t.value_after, t.warehouse_balance_after * p.unit_cost) AS value,
                 CASE WHEN t.value_after IS NULL THEN p.unit_cost
                      WHEN t.quantity > 0 THEN NULL
                      ELSE t.unit_cost END AS unit_cost
                 FROM stock_levels s
                 JOIN products p ON p.id = s.product_id
                 JOIN warehouses w ON w.id = s.warehouse_id
                 CROSS JOIN LATERAL (
                     SELECT t.warehouse_balance_after, t.quantity, t.unit_cost, t.value_after
                     FROM stock_transactions t
                     WHERE t.product_id = s.product_id AND t.warehouse_id = s.warehouse_id
                       AND t.created_at <= ",
            )
            .push_bind(at)
            .push(
                "
                     ORDER BY t.created_at DESC, t.id DESC LIMIT 1
                 ) t
                 WHERE TRUE",
            );
            if !f.include_empty {
                q.push(" AND t.warehouse_balance_after > 0");
            }
        }
    }
    if let Some(p) = f.product_id {
        q.push(" AND s.product_id = ").push_bind(p);
    }
    if let Some(w) = f.warehouse_id {
        q.push(" AND s.warehouse_id = ").push_bind(w);
    }
    if let Some(c) = f.category_id {
        q.push(" AND p.category_id = ").push_bind(c);
    }
    if f.hide_blind {
        q.push(" AND NOT ")
            .push(under_open_blind_count("s.product_id", "s.warehouse_id"));
    }
}

/// Levels with their quantity and value at `as_of` (None: now), by
/// (product_id, warehouse_id): the order of stock_levels' primary key (and,
/// for one warehouse, of stock_levels_warehouse_idx), so a page reads only
/// its own levels. `fetch: None` returns every row.
pub async fn valued_levels(
    db: impl PgExecutor<'_>,
    as_of: Option<OffsetDateTime>,
    f: &ValuationFilter,
    after: Option<(Uuid, Uuid)>,
    fetch: Option<i64>,
) -> Result<Vec<ValuedLevel>, sqlx::Error> {
    let mut q =
        QueryBuilder::new("SELECT s.product_id, p.sku, s.warehouse_id, w.code AS warehouse_code,");
    valuation_from(&mut q, as_of, f);
    if let Some((p, w)) = after {
        q.push(" AND (s.product_id, s.warehouse_id) > (")
            .push_bind(p)
            .push(", ")
            .push_bind(w)
            .push(")");
    }
    q.push(" ORDER BY s.product_id, s.warehouse_id");
    if let Some(fetch) = fetch {
        q.push(" LIMIT ").push_bind(fetch);
    }
    q.build_query_as().fetch_all(db).await
}

/// Units and exact value (4 decimals) summed over every level of a valuation.
pub async fn valuation_totals(
    db: &PgPool,
    as_of: Option<OffsetDateTime>,
    f: &ValuationFilter,
) -> Result<(i64, Decimal), sqlx::Error> {
    let mut q = QueryBuilder::new(
        "SELECT COALESCE(sum(quantity), 0)::bigint, COALESCE(sum(value), 0) FROM (SELECT",
    );
    valuation_from(&mut q, as_of, f);
    q.push(") v");
    q.build_query_as().fetch_one(db).await
}

/// Whether the product exists.
pub async fn product_exists(db: &PgPool, id: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM products WHERE id = $1)")
        .bind(id)
        .fetch_one(db)
        .await
}

/// The positions holding stock of each (product, warehouse) level in
/// `levels`, in ONE query (a probe of stock_positions_key per level), by
/// location path, then lots soonest-expiring first (lots without expiry
/// last), then lot code. Levels without positions are absent from the map.
pub async fn level_positions(
    db: impl PgExecutor<'_>,
    levels: impl IntoIterator<Item = (Uuid, Uuid)>,
) -> Result<HashMap<(Uuid, Uuid), Vec<LevelPosition>>, sqlx::Error> {
    let (products, warehouses): (Vec<Uuid>, Vec<Uuid>) = levels.into_iter().unzip();
    let mut found: HashMap<(Uuid, Uuid), Vec<LevelPosition>> = HashMap::new();
    if products.is_empty() {
        return Ok(found);
    }
    #[derive(sqlx::FromRow)]
    struct Row {
        product_id: Uuid,
        warehouse_id: Uuid,
        #[sqlx(flatten)]
        position: LevelPosition,
    }
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT sp.product_id, sp.warehouse_id, sp.location_id, l.code AS location_code,
                l.path AS location_path, sp.lot_id, lt.code AS lot, lt.expires_on,
                {quantity} AS quantity
         FROM unnest($1::uuid[], $2::uuid[]) AS t(p, w)
         JOIN stock_positions sp ON sp.product_id = t.p AND sp.warehouse_id = t.w
         {join_level}
         JOIN locations l ON l.id = sp.location_id
         LEFT JOIN lots lt ON lt.id = sp.lot_id
         WHERE {holds_stock}
         ORDER BY sp.product_id, sp.warehouse_id, l.path, lt.expires_on NULLS LAST, lt.code NULLS FIRST",
        quantity = held::quantity("sp", "s"),
        join_level = held::join_level("sp", "s"),
        holds_stock = held::holds_stock("sp", "s"),
    )))
    .bind(&products)
    .bind(&warehouses)
    .fetch_all(db)
    .await?;
    for r in rows {
        found
            .entry((r.product_id, r.warehouse_id))
            .or_default()
            .push(r.position);
    }
    Ok(found)
}
