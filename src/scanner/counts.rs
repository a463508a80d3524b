//! Count sessions (stocktakes).
//!
//! Opening a session snapshots the expected quantity of every product in
//! scope. Counts arrive from scanners (`count` events add up) or by hand
//! (lines set a quantity). Completing posts one `count_adjustment` per counted
//! line whose count differs from the snapshot, by `counted - expected`, on top
//! of the level as it is then: stock received or issued during the count is
//! kept, not wiped out. Lines never counted are left alone.

use std::collections::HashMap;

use opentelemetry::KeyValue;
use poem::web::Data;
use poem_openapi::{
    param::{Header, Path, Query},
    payload::Json,
    Object, OpenApi,
};
use serde_json::json;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use super::model::{
    CountDetail, CountLine, CountLinesRequest, CountSession, CreateCount, ScanEvent,
};
use crate::{
    auth::principal::{ClerkAuth, ManagerAuth, ViewerAuth},
    db::InTransaction,
    error::{ApiError, Result, Validation},
    events,
    idempotency::{self, Idempotent, NO_BODY},
    pagination::{Page, PageRequest},
    responses::Created,
    state::AppState,
    stock::{
        blind::hides_blind_counts,
        engine::{self, Actor, Amount, MoveKind, Movement, Refusal},
        held,
        model::StockTransaction,
    },
    telemetry, Tags,
};

/// One row of [`LINES_SQL`].
#[derive(sqlx::FromRow)]
struct LineRow {
    product_id: Uuid,
    sku: String,
    sku_key: String,
    location_id: Uuid,
    location_code: String,
    location_path: String,
    lot: Option<String>,
    expected_quantity: i64,
    counted_quantity: Option<i64>,
    counted_at: Option<OffsetDateTime>,
}

const SESSION_COLUMNS: &str =
    "id, warehouse_id, status, blind, product_ids, location_ids, opened_at, closed_at";

/// A scanner `count` event resolved to a product.
pub struct CountScan {
    /// Position of the event in its batch.
    pub index: usize,
    pub count_id: Uuid,
    pub product_id: Uuid,
    /// The location the scan named; None: the warehouse's DEFAULT location.
    pub location_id: Option<Uuid>,
    /// GS1 lot; counted per lot for lot- and serial-tracked products.
    pub lot: Option<String>,
    pub units: i64,
}

/// The count line a counted quantity goes to: (location, lot), or why none.
struct Placement {
    defaults: HashMap<Uuid, Uuid>,
    /// (product, lot code) → (tracked, lot id if it exists).
    lots: HashMap<(Uuid, String), (bool, Option<Uuid>)>,
}

impl Placement {
    async fn load(
        conn: &mut PgConnection,
        warehouses: &[Uuid],
        lots: &[(Uuid, String)],
    ) -> Result<Self> {
        let defaults = sqlx::query_as::<_, (Uuid, Uuid)>(
            "SELECT warehouse_id, id FROM locations WHERE warehouse_id = ANY($1) AND lower(code) = 'default'",
        )
        .bind(warehouses)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .collect();
        let (products, codes): (Vec<Uuid>, Vec<String>) = lots.iter().cloned().unzip();
        let lots = sqlx::query_as::<_, (Uuid, String, bool, Option<Uuid>)>(
            "SELECT t.p, t.c, p.tracking <> 'none', l.id
             FROM unnest($1::uuid[], $2::text[]) AS t(p, c)
             JOIN products p ON p.id = t.p
             LEFT JOIN lots l ON l.product_id = t.p AND l.code = t.c",
        )
        .bind(&products)
        .bind(&codes)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|(p, c, tracked, id)| ((p, c), (tracked, id)))
        .collect();
        Ok(Self { defaults, lots })
    }

    /// The (location, lot) of a count of `product` in session `s`.
    fn place(
        &self,
        s: &CountSession,
        product: Uuid,
        location: Option<Uuid>,
        lot: Option<&String>,
    ) -> Result<(Uuid, Option<Uuid>), String> {
        let location = location
            .or_else(|| self.defaults.get(&s.warehouse_id).copied())
            .ok_or("the warehouse has no DEFAULT location")?;
        if s.location_ids
            .as_ref()
            .is_some_and(|l| !l.contains(&location))
        {
            return Err("location is not part of this count".into());
        }
        let lot_id = match lot.and_then(|code| self.lots.get(&(product, code.clone()))) {
            Some((true, Some(id))) => Some(*id),
            Some((true, None)) => {
                return Err(format!(
                    "unknown lot {}: receive it before counting it",
                    lot.expect("looked up")
                ))
            }
            _ => None,
        };
        Ok((location, lot_id))
    }
}

/// Records scanner `count` events (already resolved to products) in the
/// caller's transaction; returns the rejection reason of each refused event.
pub async fn record_scans(
    conn: &mut PgConnection,
    device: Uuid,
    counts: &[CountScan],
    events: &[ScanEvent],
) -> Result<HashMap<usize, String>> {
    let mut rejected = HashMap::new();
    if counts.is_empty() {
        return Ok(rejected);
    }
    let mut ids: Vec<Uuid> = counts.iter().map(|c| c.count_id).collect();
    ids.sort();
    ids.dedup();
    // FOR SHARE: a completion (FOR UPDATE) waits for counts in flight, and vice versa.
    let sessions: HashMap<Uuid, CountSession> =
        sqlx::query_as::<_, CountSession>(sqlx::AssertSqlSafe(format!(
            "SELECT {SESSION_COLUMNS} FROM count_sessions WHERE id = ANY($1) ORDER BY id FOR SHARE"
        )))
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|s| (s.id, s))
        .collect();
    let warehouses: Vec<Uuid> = sessions.values().map(|s| s.warehouse_id).collect();
    let lots: Vec<(Uuid, String)> = counts
        .iter()
        .filter_map(|c| c.lot.clone().map(|l| (c.product_id, l)))
        .collect();
    let placement = Placement::load(conn, &warehouses, &lots).await?;
    type LineKey = (Uuid, Uuid, Uuid, Option<Uuid>);
    let mut totals: Vec<(LineKey, i64)> = Vec::new();
    for c in counts {
        let placed = match sessions.get(&c.count_id) {
            None => Err("unknown count session".to_owned()),
            Some(s) if s.status != "open" => Err(format!("count session is {}", s.status)),
            Some(s) if s.warehouse_id != events[c.index].warehouse_id => {
                Err("count session is for another warehouse".to_owned())
            }
            Some(s)
                if s.product_ids
                    .as_ref()
                    .is_some_and(|p| !p.contains(&c.product_id)) =>
            {
                Err("product is not part of this count".to_owned())
            }
            Some(s) => placement.place(s, c.product_id, c.location_id, c.lot.as_ref()),
        };
        match placed {
            Err(r) => {
                rejected.insert(c.index, r);
            }
            Ok((location, lot)) => {
                let key = (c.count_id, c.product_id, location, lot);
                match totals.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, n)) => *n += c.units,
                    None => totals.push((key, c.units)),
                }
            }
        }
    }
    if !totals.is_empty() {
        totals.sort_by_key(|(k, _)| *k);
        let mut cols = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for ((count, product, location, lot), n) in totals {
            cols.0.push(count);
            cols.1.push(product);
            cols.2.push(location);
            cols.3.push(lot);
            cols.4.push(n);
        }
        // A position not in the snapshot had no stock when the count opened.
        sqlx::query(
            "INSERT INTO count_lines (count_id, product_id, location_id, lot_id, expected_quantity,
                 counted_quantity, counted_at, counted_by_device)
             SELECT c, p, l, t, 0, n, now(), $6
             FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::bigint[]) AS t(c, p, l, t, n)
             ON CONFLICT ON CONSTRAINT count_lines_position_key DO UPDATE SET
                 counted_quantity = COALESCE(count_lines.counted_quantity, 0) + EXCLUDED.counted_quantity,
                 counted_at = now(), counted_by_device = EXCLUDED.counted_by_device, counted_by_user = NULL",
        )
        .bind(&cols.0)
        .bind(&cols.1)
        .bind(&cols.2)
        .bind(&cols.3)
        .bind(&cols.4)
        .bind(device)
        .execute(&mut *conn)
        .await?;
    }
    Ok(rejected)
}

async fn session(conn: &mut PgConnection, id: Uuid, lock: bool) -> Result<CountSession> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {SESSION_COLUMNS} FROM count_sessions WHERE id = $1{lock}"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| ApiError::not_found(format!("count session {id}")))
}

/// The lines of a count as listed (by GET and in the opening answer), in
/// list order. The order's key (SKU, location path, lot code with '' for
/// none, location id) is unique within a count, so it is also the keyset of
/// the paged listing. Its first part alone is repeated as `lower(p.sku) >=`
/// so that the walk of `products_sku_key` a large count is listed by starts
/// at the cursor: the row comparison spans three tables and cannot bound an
/// index scan, so a page deep in a 100,000-line count walked every product
/// before it (2.0 s at 50,000 lines in, 1.2 ms now; EXPLAIN ANALYZE, bench
/// catalog of 1,000,000 products).
const LINES_SQL: &str =
    "SELECT l.product_id, p.sku, lower(p.sku) AS sku_key, l.location_id, loc.code AS location_code,
            loc.path AS location_path, lot.code AS lot, l.expected_quantity,
            l.counted_quantity, l.counted_at
     FROM count_lines l JOIN products p ON p.id = l.product_id
     JOIN locations loc ON loc.id = l.location_id
     LEFT JOIN lots lot ON lot.id = l.lot_id
     WHERE l.count_id = $1
       AND lower(p.sku) >= COALESCE($2, '')
       AND ($2::text IS NULL
            OR (lower(p.sku), loc.path, coalesce(lot.code, ''), l.location_id) > ($2, $3, $4, $5))
     ORDER BY lower(p.sku), loc.path, coalesce(lot.code, ''), l.location_id
     LIMIT $6";

/// The keyset of [`LINES_SQL`]: lower(sku), location path, lot code or '', location id.
type LineKey = (String, String, String, Uuid);

/// Up to `limit` lines of count `id` after `after`, in list order, each with
/// its key; expected quantities and variances left out when `hide`.
async fn lines_page(
    conn: &mut InTransaction,
    id: Uuid,
    after: Option<LineKey>,
    limit: i64,
    hide: bool,
) -> Result<Vec<(LineKey, CountLine)>> {
    let (sku, path, lot, location) = match after {
        Some((a, b, c, d)) => (Some(a), Some(b), Some(c), Some(d)),
        None => (None, None, None, None),
    };
    // Not a prepared statement kept on the connection: PostgreSQL plans it
    // afresh with this count's id and cursor every time. A kept one may
    // switch to a generic plan after five runs, and the generic plan for
    // "some count" walks `products_sku_key` from the start: right for a
    // 100,000-line count, 3.5 s for a 3-line one over 1,000,000 products
    // (measured with `force_generic_plan`); its custom plan takes 0.1 ms.
    // Planning costs 1.5-2.2 ms (EXPLAIN SUMMARY), little for a page of a count.
    // Hence in a transaction ([`InTransaction`]).
    let rows: Vec<LineRow> = sqlx::query_as(LINES_SQL)
        .persistent(false)
        .bind(id)
        .bind(sku)
        .bind(path)
        .bind(lot)
        .bind(location)
        .bind(limit)
        .fetch_all(&mut **conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let key = (
                r.sku_key,
                r.location_path,
                r.lot.clone().unwrap_or_default(),
                r.location_id,
            );
            let line = CountLine {
                product_id: r.product_id,
                sku: r.sku,
                location_id: r.location_id,
                location_code: r.location_code,
                lot: r.lot,
                expected_quantity: (!hide).then_some(r.expected_quantity),
                counted_quantity: r.counted_quantity,
                variance: if hide {
                    None
                } else {
                    r.counted_quantity.map(|c| c - r.expected_quantity)
                },
                counted_at: r.counted_at,
            };
            (key, line)
        })
        .collect())
}

/// Whether a principal that may not see blind counts' levels gets them hidden here.
fn hides_expected(session: &CountSession, reveal: bool) -> bool {
    session.blind && session.status == "open" && !reveal
}

async fn detail(conn: &mut InTransaction, id: Uuid, reveal: bool) -> Result<CountDetail> {
    let session = session(conn, id, false).await?;
    let hide = hides_expected(&session, reveal);
    let lines: Vec<CountLine> = lines_page(conn, id, None, i64::MAX, hide)
        .await?
        .into_iter()
        .map(|(_, line)| line)
        .collect();
    Ok(CountDetail {
        session,
        line_count: lines.len() as i64,
        lines,
    })
}

/// An answer stored for an Idempotency-Key before `line_count` existed
/// reads back with 0 for it; such answers listed every line.
fn replayed(mut first: CountDetail) -> CountDetail {
    first.line_count = first.line_count.max(first.lines.len() as i64);
    first
}

fn require_open(s: &CountSession) -> Result<()> {
    if s.status != "open" {
        return Err(ApiError::conflict(
            "count-closed",
            format!("Count session {} is {}.", s.id, s.status),
        ));
    }
    Ok(())
}

/// The adjustments a completed count posted.
#[derive(Debug, Object)]
pub struct CountCompletion {
    /// The count session (UUID), for count scans and count adjustments.
    pub count_id: Uuid,
    /// One `count_adjustment` per counted line that differed.
    pub transactions: Vec<StockTransaction>,
}

pub struct CountsApi;

#[OpenApi(prefix_path = "/api/v1/counts", tag = "Tags::Counts")]
impl CountsApi {
    /// Open a count session (clerk): snapshots the expected quantities.
    #[oai(path = "/", method = "post", operation_id = "createCount")]
    async fn create(
        &self,
        auth: ClerkAuth,
        state: Data<&AppState>,
        /// Any unique string (a UUID); a retry with it returns the first answer.
        #[oai(name = "Idempotency-Key")]
        key: Header<Option<String>>,
        body: Json<CreateCount>,
    ) -> Result<Created<CountDetail>> {
        let idem = Idempotent::new(
            auth.0.id(),
            key.0.as_deref(),
            "POST /api/v1/counts",
            &body.0,
        )?;
        let mut products = body.product_ids.clone();
        products.sort();
        products.dedup();
        let mut locations = body.location_ids.clone();
        locations.sort();
        locations.dedup();
        let mut v = Validation::new();
        v.check(
            products.len() <= 10_000,
            "product_ids",
            "at most 10000 products per count",
        );
        v.check(
            locations.len() <= 10_000,
            "location_ids",
            "at most 10000 locations per count",
        );
        v.finish()?;
        let mut tx = crate::db::begin(&state.db).await?;
        if let Some(first) = idempotency::claim(&idem, &mut tx).await? {
            return Ok(Created::new(replayed(first)));
        }
        let active: Option<bool> =
            sqlx::query_scalar("SELECT active FROM warehouses WHERE id = $1")
                .bind(body.warehouse_id)
                .fetch_optional(&mut *tx)
                .await?;
        match active {
            None => return Err(ApiError::field("warehouse_id", "no warehouse with this id")),
            Some(false) => {
                return Err(ApiError::conflict(
                    "warehouse-inactive",
                    "The warehouse is inactive.",
                ))
            }
            Some(true) => {}
        }
        if !products.is_empty() {
            let known: i64 = sqlx::query_scalar("SELECT count(*) FROM products WHERE id = ANY($1)")
                .bind(&products)
                .fetch_one(&mut *tx)
                .await?;
            if known != products.len() as i64 {
                return Err(ApiError::field("product_ids", "every product must exist"));
            }
        }
        if !locations.is_empty() {
            let known: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM locations WHERE id = ANY($1) AND warehouse_id = $2",
            )
            .bind(&locations)
            .bind(body.warehouse_id)
            .fetch_one(&mut *tx)
            .await?;
            if known != locations.len() as i64 {
                return Err(ApiError::field(
                    "location_ids",
                    "every location must be one of this warehouse's",
                ));
            }
        }
        let products = (!products.is_empty()).then_some(products);
        let locations = (!locations.is_empty()).then_some(locations);
        let id: Uuid = sqlx::query_scalar(
            "INSERT INTO count_sessions (warehouse_id, blind, product_ids, location_ids, created_by)
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(body.warehouse_id)
        .bind(body.blind)
        .bind(&products)
        .bind(&locations)
        .bind(auth.0.user_id())
        .fetch_one(&mut *tx)
        .await?;
        // The snapshot: the positions in scope as this transaction sees them
        // (but the empty DEFAULT unlotted position every level has, for a
        // lot-tracked product: it never holds stock); a product named that
        // has none here gets a line at DEFAULT.
        let line_count = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO count_lines (count_id, product_id, location_id, lot_id, expected_quantity)
             SELECT $1, s.product_id, s.location_id, s.lot_id, {quantity} FROM stock_positions s
             {join_level}
             WHERE s.warehouse_id = $2
               AND ($3::uuid[] IS NULL OR s.product_id = ANY($3))
               AND ($4::uuid[] IS NULL OR s.location_id = ANY($4))
               AND NOT (s.lot_id IS NULL AND {quantity} = 0
                        AND EXISTS (SELECT 1 FROM products p WHERE p.id = s.product_id AND p.tracking = 'lot'))
             UNION ALL
             SELECT $1, p, d.id, NULL, 0
             FROM unnest($3::uuid[]) AS p,
                  (SELECT id FROM locations WHERE warehouse_id = $2 AND lower(code) = 'default') d
             WHERE ($4::uuid[] IS NULL OR d.id = ANY($4))
               AND NOT EXISTS (SELECT 1 FROM stock_positions s
                               WHERE s.product_id = p AND s.warehouse_id = $2 AND s.location_id = d.id
                                 AND s.lot_id IS NULL)",
            quantity = held::quantity("s", "v"),
            join_level = held::join_level("s", "v"),
        )))
        .bind(id)
        .bind(body.warehouse_id)
        .bind(&products)
        .bind(&locations)
        .execute(&mut *tx)
        .await?
        .rows_affected() as i64;
        events::emit(
            &mut tx,
            "count.opened",
            id,
            json!({"id": id, "warehouse_id": body.warehouse_id}),
        )
        .await?;
        let d = if body.include_lines {
            detail(&mut tx, id, true).await?
        } else {
            // Neither read back nor held in memory (nor in the idempotency
            // record): the answer stays small however large the count.
            CountDetail {
                session: session(&mut tx, id, false).await?,
                line_count,
                lines: Vec::new(),
            }
        };
        idempotency::store(&idem, &mut tx, 201, &d).await?;
        tx.commit().await?;
        Ok(Created::new(d))
    }

    /// Count sessions (viewer), newest first.
    #[oai(path = "/", method = "get", operation_id = "listCounts")]
    async fn list(
        &self,
        _auth: ViewerAuth,
        state: Data<&AppState>,
        warehouse_id: Query<Option<Uuid>>,
        /// `open`, `completed` or `cancelled`.
        status: Query<Option<String>>,
        /// Page size, 1-500 (default 50).
        limit: Query<Option<u32>>,
        /// `next_cursor` from the previous page.
        cursor: Query<Option<String>>,
    ) -> Result<Json<Page<CountSession>>> {
        let page = PageRequest::<(OffsetDateTime, Uuid)>::new(limit.0, cursor.0.as_deref())?;
        let (at, id) = page.after.unzip();
        let rows: Vec<CountSession> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {SESSION_COLUMNS} FROM count_sessions
             WHERE ($1::uuid IS NULL OR warehouse_id = $1) AND ($2::text IS NULL OR status = $2)
               AND ($3::timestamptz IS NULL OR (opened_at, id) < ($3, $4))
             ORDER BY opened_at DESC, id DESC LIMIT $5"
        )))
        .bind(warehouse_id.0)
        .bind(status.0)
        .bind(at)
        .bind(id)
        .bind(page.fetch())
        .fetch_all(&state.db)
        .await?;
        Ok(Json(page.page(rows, |s| (s.opened_at, s.id), |s| s)))
    }

    /// A count session with its lines and variances (viewer). In a blind count
    /// that is still open, expected quantities and variances are shown to
    /// managers only.
    #[oai(path = "/:id", method = "get", operation_id = "getCount")]
    async fn get(
        &self,
        auth: ViewerAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
    ) -> Result<Json<CountDetail>> {
        let reveal = !hides_blind_counts(&auth.0);
        // One snapshot: the session's state (blind, open) and its lines agree.
        let mut tx = crate::db::snapshot(&state.db).await?;
        let d = detail(&mut tx, id.0, reveal).await?;
        tx.commit().await?;
        Ok(Json(d))
    }

    /// The lines of a count a page at a time (viewer), in the order of
    /// `GET /api/v1/counts/{id}`: for counts too large to read in one answer.
    /// In a blind count that is still open, expected quantities and variances
    /// are shown to managers only.
    #[oai(path = "/:id/lines", method = "get", operation_id = "listCountLines")]
    async fn list_lines(
        &self,
        auth: ViewerAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
        /// Page size, 1-500 (default 50).
        limit: Query<Option<u32>>,
        /// `next_cursor` from the previous page.
        cursor: Query<Option<String>>,
    ) -> Result<Json<Page<CountLine>>> {
        let page = PageRequest::<LineKey>::new(limit.0, cursor.0.as_deref())?;
        let reveal = !hides_blind_counts(&auth.0);
        let mut tx = crate::db::snapshot(&state.db).await?;
        let s = session(&mut tx, id.0, false).await?;
        let rows = lines_page(
            &mut tx,
            id.0,
            page.after.clone(),
            page.fetch(),
            hides_expected(&s, reveal),
        )
        .await?;
        tx.commit().await?;
        Ok(Json(page.page(
            rows,
            |(key, _)| key.clone(),
            |(_, line)| line,
        )))
    }

    /// Enter counted quantities by hand (clerk); each replaces the earlier count of its product.
    #[oai(
        path = "/:id/lines",
        method = "post",
        operation_id = "recordCountLines"
    )]
    async fn lines(
        &self,
        auth: ClerkAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
        /// Any unique string (a UUID); a retry with it returns the first answer.
        #[oai(name = "Idempotency-Key")]
        key: Header<Option<String>>,
        body: Json<CountLinesRequest>,
    ) -> Result<Json<CountDetail>> {
        let route = format!("POST /api/v1/counts/{}/lines", id.0);
        let idem = Idempotent::new(auth.0.id(), key.0.as_deref(), &route, &body.0)?;
        let mut v = Validation::new();
        v.check(
            (1..=1000).contains(&body.lines.len()),
            "lines",
            "give 1-1000 lines",
        );
        for (i, l) in body.lines.iter().enumerate() {
            v.check(
                (0..=1_000_000_000).contains(&l.counted_quantity),
                &format!("lines[{i}].counted_quantity"),
                "must be between 0 and 1000000000",
            );
        }
        v.finish()?;
        let mut tx = crate::db::begin(&state.db).await?;
        if let Some(first) = idempotency::claim(&idem, &mut tx).await? {
            return Ok(Json(replayed(first)));
        }
        let s = sqlx::query_as::<_, CountSession>(sqlx::AssertSqlSafe(format!(
            "SELECT {SESSION_COLUMNS} FROM count_sessions WHERE id = $1 FOR SHARE"
        )))
        .bind(id.0)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("count session {}", id.0)))?;
        require_open(&s)?;
        let mut v = Validation::new();
        for (i, l) in body.lines.iter().enumerate() {
            if let Some(scope) = &s.product_ids {
                v.check(
                    scope.contains(&l.product_id),
                    &format!("lines[{i}].product_id"),
                    "is not part of this count",
                );
            }
        }
        v.finish()?;
        let lots: Vec<(Uuid, String)> = body
            .lines
            .iter()
            .filter_map(|l| l.lot.clone().map(|c| (l.product_id, c)))
            .collect();
        let placement = Placement::load(&mut tx, &[s.warehouse_id], &lots).await?;
        let mut cols = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut v = Validation::new();
        for (i, l) in body.lines.iter().enumerate() {
            match placement.place(&s, l.product_id, l.location_id, l.lot.as_ref()) {
                Ok((location, lot)) => {
                    cols.0.push(l.product_id);
                    cols.1.push(location);
                    cols.2.push(lot);
                    cols.3.push(l.counted_quantity);
                }
                Err(reason) => {
                    v.push(&format!("lines[{i}]"), reason);
                }
            }
        }
        v.finish()?;
        sqlx::query(
            "INSERT INTO count_lines (count_id, product_id, location_id, lot_id, expected_quantity,
                 counted_quantity, counted_at, counted_by_user)
             SELECT $1, p, l, t, 0, n, now(), $6
             FROM unnest($2::uuid[], $3::uuid[], $4::uuid[], $5::bigint[]) AS t(p, l, t, n)
             ON CONFLICT ON CONSTRAINT count_lines_position_key DO UPDATE SET
                 counted_quantity = EXCLUDED.counted_quantity,
                 counted_at = now(), counted_by_user = EXCLUDED.counted_by_user, counted_by_device = NULL",
        )
        .bind(id.0)
        .bind(&cols.0)
        .bind(&cols.1)
        .bind(&cols.2)
        .bind(&cols.3)
        .bind(auth.0.user_id())
        .execute(&mut *tx)
        .await?;
        let reveal = !hides_blind_counts(&auth.0);
        let d = detail(&mut tx, id.0, reveal).await?;
        idempotency::store(&idem, &mut tx, 200, &d).await?;
        tx.commit().await?;
        Ok(Json(d))
    }

    /// Complete a count (manager): one `count_adjustment` per counted line that
    /// differs, all in one transaction, on top of movements made meanwhile.
    #[oai(
        path = "/:id/complete",
        method = "post",
        operation_id = "completeCount"
    )]
    async fn complete(
        &self,
        auth: ManagerAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
        /// Any unique string (a UUID); a retry with it returns the first answer.
        #[oai(name = "Idempotency-Key")]
        key: Header<Option<String>>,
    ) -> Result<Json<CountCompletion>> {
        let route = format!("POST /api/v1/counts/{}/complete", id.0);
        let idem = Idempotent::new(auth.0.id(), key.0.as_deref(), &route, &NO_BODY)?;
        let mut tx = crate::db::begin(&state.db).await?;
        if let Some(first) = idempotency::claim(&idem, &mut tx).await? {
            return Ok(Json(first));
        }
        let s = session(&mut tx, id.0, true).await?;
        require_open(&s)?;
        let lines: Vec<(Uuid, String, Uuid, Option<String>, i64)> = sqlx::query_as(
            "SELECT l.product_id, p.sku, l.location_id, lot.code, l.counted_quantity - l.expected_quantity
             FROM count_lines l JOIN products p ON p.id = l.product_id
             LEFT JOIN lots lot ON lot.id = l.lot_id
             WHERE l.count_id = $1 AND l.counted_quantity IS NOT NULL
               AND l.counted_quantity <> l.expected_quantity
             ORDER BY l.product_id, l.location_id, lot.code",
        )
        .bind(id.0)
        .fetch_all(&mut *tx)
        .await?;
        let actor = Actor::User(auth.0.user_id().expect("ManagerAuth is a user"));
        let movements: Vec<Movement> = lines
            .iter()
            .map(|(product, _, location, lot, delta)| {
                let mut m = Movement::new(
                    MoveKind::CountAdjustment,
                    *product,
                    s.warehouse_id,
                    Amount::Delta(*delta),
                    actor,
                );
                m.count_id = Some(s.id);
                m.location_id = Some(*location);
                m.lot = lot.clone();
                m
            })
            .collect();
        let mut transactions = Vec::new();
        for ((_, sku, ..), outcome) in lines.iter().zip(engine::post(&mut tx, &movements).await?) {
            match outcome {
                Ok(done) => transactions.extend(done.transactions),
                Err(Refusal::InsufficientStock { available: Some(available), requested }) => {
                    return Err(ApiError::conflict(
                        "insufficient-stock",
                        format!(
                            "Completing would take {requested} of {sku} but only {available} are there now \
                             (issued during the count?); recount it."
                        ),
                    ))
                }
                Err(other) => return Err(other.into()),
            }
        }
        sqlx::query(
            "UPDATE count_sessions SET status = 'completed', closed_at = now(), closed_by = $2 WHERE id = $1",
        )
        .bind(id.0)
        .bind(auth.0.user_id())
        .execute(&mut *tx)
        .await?;
        events::emit(
            &mut tx,
            "count.completed",
            id.0,
            json!({"id": id.0, "adjustments": transactions.len()}),
        )
        .await?;
        let completion = CountCompletion {
            count_id: id.0,
            transactions,
        };
        idempotency::store(&idem, &mut tx, 200, &completion).await?;
        tx.commit().await?;
        let m = telemetry::metrics();
        m.count_sessions_completed.add(1, &[]);
        for t in &completion.transactions {
            m.stock_movements.add(
                1,
                &[
                    KeyValue::new("kind", "count_adjustment"),
                    KeyValue::new("outcome", "applied"),
                ],
            );
            m.stock_units_moved.add(
                t.quantity.unsigned_abs(),
                &[KeyValue::new("kind", "count_adjustment")],
            );
        }
        Ok(Json(completion))
    }

    /// Cancel a count (manager): closes it without changing stock.
    #[oai(path = "/:id/cancel", method = "post", operation_id = "cancelCount")]
    async fn cancel(
        &self,
        auth: ManagerAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
        /// Any unique string (a UUID); a retry with it returns the first answer.
        #[oai(name = "Idempotency-Key")]
        key: Header<Option<String>>,
    ) -> Result<Json<CountSession>> {
        let route = format!("POST /api/v1/counts/{}/cancel", id.0);
        let idem = Idempotent::new(auth.0.id(), key.0.as_deref(), &route, &NO_BODY)?;
        let mut tx = crate::db::begin(&state.db).await?;
        if let Some(first) = idempotency::claim(&idem, &mut tx).await? {
            return Ok(Json(first));
        }
        let s = session(&mut tx, id.0, true).await?;
        require_open(&s)?;
        let s: CountSession = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE count_sessions SET status = 'cancelled', closed_at = now(), closed_by = $2
             WHERE id = $1 RETURNING {SESSION_COLUMNS}"
        )))
        .bind(id.0)
        .bind(auth.0.user_id())
        .fetch_one(&mut *tx)
        .await?;
        events::emit(&mut tx, "count.cancelled", id.0, json!({"id": id.0})).await?;
        idempotency::store(&idem, &mut tx, 200, &s).await?;
        tx.commit().await?;
        Ok(Json(s))
    }
}
