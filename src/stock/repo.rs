//! SQL for stock levels and the ledger.
//!
//! A movement leg is ONE statement: the guarded level change, the ledger row
//! with the balance after it, and the outbox event, chained with CTEs. The
//! guard lives in SQL (`quantity + delta >= 0` in the UPDATE's WHERE), so two
//! concurrent issues of the last unit cannot both pass: the second waits for
//! the first's row lock, re-checks the guard against the committed quantity and
//! updates nothing. Nothing is read into Rust and written back.

use rust_decimal::Decimal;
use sqlx::{PgConnection, PgPool, QueryBuilder};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use super::model::{StockLevel, StockTransaction, TransactionKind};
use crate::error::{ApiError, Result};

/// Who posts a movement.
#[derive(Debug, Clone, Copy)]
pub enum Actor {
    User(Uuid),
    Device(Uuid),
}

impl Actor {
    fn user(self) -> Option<Uuid> {
        match self {
            Self::User(id) => Some(id),
            Self::Device(_) => None,
        }
    }

    fn device(self) -> Option<Uuid> {
        match self {
            Self::Device(id) => Some(id),
            Self::User(_) => None,
        }
    }
}

/// One ledger row to write together with its level change.
#[derive(Debug, Clone)]
pub struct Leg {
    pub kind: TransactionKind,
    pub product_id: Uuid,
    pub warehouse_id: Uuid,
    /// Signed, never zero.
    pub delta: i64,
    pub unit_cost: Option<Decimal>,
    pub transfer_id: Option<Uuid>,
    pub reason: Option<&'static str>,
    pub reference: Option<String>,
    pub note: Option<String>,
    pub lot: Option<String>,
    pub expires_on: Option<Date>,
    pub serial: Option<String>,
    pub count_id: Option<Uuid>,
    pub actor: Actor,
}

impl Leg {
    pub fn new(
        kind: TransactionKind,
        product_id: Uuid,
        warehouse_id: Uuid,
        delta: i64,
        actor: Actor,
    ) -> Self {
        Self {
            kind,
            product_id,
            warehouse_id,
            delta,
            unit_cost: None,
            transfer_id: None,
            reason: None,
            reference: None,
            note: None,
            lot: None,
            expires_on: None,
            serial: None,
            count_id: None,
            actor,
        }
    }
}

pub const TRANSACTION_COLUMNS: &str =
    "id, kind, product_id, warehouse_id, quantity, balance_after, \
    unit_cost, transfer_id, reason, reference, note, lot, expires_on, serial, count_id, \
    actor_user_id, actor_device_id, created_at";

/// Adds stock: upserts the level (a first receipt creates it).
const ADD_LEVEL: &str = "
    INSERT INTO stock_levels AS s (product_id, warehouse_id, quantity)
    SELECT $1, $2, $3 FROM ok
    ON CONFLICT (product_id, warehouse_id)
    DO UPDATE SET quantity = s.quantity + EXCLUDED.quantity, updated_at = now()
    RETURNING s.quantity";

/// Removes stock only if enough is there. The row lock taken by the UPDATE
/// serialises concurrent movements of one level; the WHERE is re-evaluated
/// against the latest committed quantity after waiting (READ COMMITTED).
const TAKE_LEVEL: &str = "
    UPDATE stock_levels AS s SET quantity = s.quantity + $3, updated_at = now()
    FROM ok
    WHERE s.product_id = $1 AND s.warehouse_id = $2 AND s.quantity + $3 >= 0
    RETURNING s.quantity";

fn leg_sql(level_change: &str) -> String {
    format!(
        "WITH ok AS (
             -- Archived products and inactive warehouses take no movements.
             SELECT 1 FROM products p, warehouses w
             WHERE p.id = $1 AND p.active AND w.id = $2 AND w.active
         ),
         lvl AS ({level_change}),
         tx AS (
             INSERT INTO stock_transactions (kind, product_id, warehouse_id, quantity, balance_after,
                 unit_cost, transfer_id, reason, reference, note, lot, expires_on, serial, count_id,
                 actor_user_id, actor_device_id)
             SELECT $4, $1, $2, $3, lvl.quantity, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15 FROM lvl
             RETURNING {TRANSACTION_COLUMNS}
         ),
         ev AS (
             INSERT INTO outbox (topic, aggregate_id, payload)
             SELECT 'stock.' || kind, product_id, jsonb_build_object(
                 'transaction_id', id, 'kind', kind, 'product_id', product_id,
                 'warehouse_id', warehouse_id, 'quantity', quantity, 'balance_after', balance_after,
                 'transfer_id', transfer_id)
             FROM tx
         )
         SELECT {TRANSACTION_COLUMNS} FROM tx"
    )
}

/// Writes one leg; None when its guard refused it (see [`why_refused`]).
pub async fn post_leg(
    conn: &mut PgConnection,
    leg: &Leg,
) -> Result<Option<StockTransaction>, sqlx::Error> {
    use std::sync::OnceLock;
    static ADD: OnceLock<String> = OnceLock::new();
    static TAKE: OnceLock<String> = OnceLock::new();
    let sql = if leg.delta > 0 {
        ADD.get_or_init(|| leg_sql(ADD_LEVEL))
    } else {
        TAKE.get_or_init(|| leg_sql(TAKE_LEVEL))
    };
    sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
        .bind(leg.product_id)
        .bind(leg.warehouse_id)
        .bind(leg.delta)
        .bind(leg.kind)
        .bind(leg.unit_cost)
        .bind(leg.transfer_id)
        .bind(leg.reason)
        .bind(&leg.reference)
        .bind(&leg.note)
        .bind(&leg.lot)
        .bind(leg.expires_on)
        .bind(&leg.serial)
        .bind(leg.count_id)
        .bind(leg.actor.user())
        .bind(leg.actor.device())
        .fetch_optional(&mut *conn)
        .await
}

/// Explains a refused leg: unknown or archived product, unknown or inactive
/// warehouse, or not enough stock.
pub async fn why_refused(conn: &mut PgConnection, leg: &Leg) -> Result<ApiError> {
    let (product, warehouse, available): (Option<bool>, Option<bool>, Option<i64>) =
        sqlx::query_as(
            "SELECT (SELECT active FROM products WHERE id = $1),
                (SELECT active FROM warehouses WHERE id = $2),
                (SELECT quantity FROM stock_levels WHERE product_id = $1 AND warehouse_id = $2)",
        )
        .bind(leg.product_id)
        .bind(leg.warehouse_id)
        .fetch_one(&mut *conn)
        .await?;
    Ok(match (product, warehouse) {
        (None, _) => ApiError::field("product_id", "no product with this id"),
        (_, None) => ApiError::field("warehouse_id", "no warehouse with this id"),
        (Some(false), _) => ApiError::conflict(
            "product-archived",
            "The product is archived and accepts no stock movements; restore it first.",
        ),
        (_, Some(false)) => ApiError::conflict(
            "warehouse-inactive",
            "The warehouse is inactive and accepts no stock movements.",
        ),
        _ => ApiError::InsufficientStock {
            available: available.unwrap_or(0),
            requested: -leg.delta,
        },
    })
}

/// Writes a leg or explains why not.
pub async fn post_leg_or_refuse(conn: &mut PgConnection, leg: &Leg) -> Result<StockTransaction> {
    match post_leg(conn, leg).await? {
        Some(row) => Ok(row),
        None => Err(why_refused(conn, leg).await?),
    }
}

/// Locks the level rows of `product` in `warehouses` (see [`lock_pairs`]);
/// returns `(warehouse, quantity)` in warehouse-id order.
pub async fn lock_levels(
    conn: &mut PgConnection,
    product: Uuid,
    warehouses: &[Uuid],
) -> Result<Vec<(Uuid, i64)>> {
    let pairs: Vec<(Uuid, Uuid)> = warehouses.iter().map(|w| (product, *w)).collect();
    let locked = lock_pairs(conn, &pairs).await?;
    Ok(locked.into_iter().map(|(_, w, q)| (w, q)).collect())
}

/// Locks the level rows of `pairs` of (product, warehouse), creating missing
/// ones at zero; returns `(product, warehouse, quantity)` sorted. Pairs whose
/// product or warehouse does not exist are skipped.
///
/// ONE statement visits the rows in (product, warehouse) order and either
/// inserts the row (holding it until commit) or locks the existing one
/// (`ON CONFLICT DO UPDATE` locks it): every transaction that touches levels
/// acquires them in that one order, first-time rows included, so transfers,
/// batches and count completions cannot deadlock one another. (Creating the
/// missing rows in one pass and locking in a second does not have that
/// property: the row a transaction has just inserted is held, out of order,
/// while it waits for the locks of the second pass.)
pub async fn lock_pairs(
    conn: &mut PgConnection,
    pairs: &[(Uuid, Uuid)],
) -> Result<Vec<(Uuid, Uuid, i64)>, sqlx::Error> {
    let mut sorted = pairs.to_vec();
    sorted.sort();
    sorted.dedup();
    if sorted.is_empty() {
        return Ok(Vec::new());
    }
    let (products, warehouses): (Vec<Uuid>, Vec<Uuid>) = sorted.into_iter().unzip();
    let mut rows: Vec<(Uuid, Uuid, i64)> = sqlx::query_as(
        "INSERT INTO stock_levels AS s (product_id, warehouse_id, quantity)
         SELECT t.p, t.w, 0 FROM unnest($1::uuid[], $2::uuid[]) AS t(p, w)
         WHERE EXISTS (SELECT 1 FROM products WHERE id = t.p)
           AND EXISTS (SELECT 1 FROM warehouses WHERE id = t.w)
         ORDER BY t.p, t.w
         ON CONFLICT (product_id, warehouse_id) DO UPDATE SET quantity = s.quantity
         RETURNING s.product_id, s.warehouse_id, s.quantity",
    )
    .bind(&products)
    .bind(&warehouses)
    .fetch_all(&mut *conn)
    .await?;
    rows.sort();
    Ok(rows)
}

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
