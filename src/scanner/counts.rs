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
    auth::{
        principal::{ClerkAuth, ManagerAuth, ViewerAuth},
        Role,
    },
    error::{ApiError, Result, Validation},
    events,
    idempotency::{self, Idempotent, NO_BODY},
    pagination::{Page, PageRequest},
    responses::Created,
    state::AppState,
    stock::{
        batch::{apply_batch, LegOutcome},
        model::{StockTransaction, TransactionKind},
        repo::{Actor, Leg},
    },
    telemetry, Tags,
};

/// product_id, sku, expected, counted, counted_at.
type LineRow = (Uuid, String, i64, Option<i64>, Option<OffsetDateTime>);

const SESSION_COLUMNS: &str = "id, warehouse_id, status, blind, product_ids, opened_at, closed_at";

/// Records scanner `count` events (already resolved to products) in the
/// caller's transaction; returns the rejection reason of each refused event.
pub async fn record_scans(
    conn: &mut PgConnection,
    device: Uuid,
    counts: &[(usize, Uuid, Uuid, i64)],
    events: &[ScanEvent],
) -> Result<HashMap<usize, String>> {
    let mut rejected = HashMap::new();
    if counts.is_empty() {
        return Ok(rejected);
    }
    let mut ids: Vec<Uuid> = counts.iter().map(|c| c.1).collect();
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
    let mut totals: Vec<((Uuid, Uuid), i64)> = Vec::new();
    for &(i, count_id, product, units) in counts {
        let reason = match sessions.get(&count_id) {
            None => Some("unknown count session".to_owned()),
            Some(s) if s.status != "open" => Some(format!("count session is {}", s.status)),
            Some(s) if s.warehouse_id != events[i].warehouse_id => {
                Some("count session is for another warehouse".to_owned())
            }
            Some(s)
                if s.product_ids
                    .as_ref()
                    .is_some_and(|p| !p.contains(&product)) =>
            {
                Some("product is not part of this count".to_owned())
            }
            Some(_) => None,
        };
        match reason {
            Some(r) => {
                rejected.insert(i, r);
            }
            None => match totals.iter_mut().find(|(k, _)| *k == (count_id, product)) {
                Some((_, n)) => *n += units,
                None => totals.push(((count_id, product), units)),
            },
        }
    }
    if !totals.is_empty() {
        totals.sort_by_key(|(k, _)| *k);
        let (keys, units): (Vec<(Uuid, Uuid)>, Vec<i64>) = totals.into_iter().unzip();
        let (count_ids, products): (Vec<Uuid>, Vec<Uuid>) = keys.into_iter().unzip();
        // A product not in the snapshot had no stock here when the count opened.
        sqlx::query(
            "INSERT INTO count_lines (count_id, product_id, expected_quantity, counted_quantity, counted_at, counted_by_device)
             SELECT c, p, 0, n, now(), $4 FROM unnest($1::uuid[], $2::uuid[], $3::bigint[]) AS t(c, p, n)
             ON CONFLICT (count_id, product_id) DO UPDATE SET
                 counted_quantity = COALESCE(count_lines.counted_quantity, 0) + EXCLUDED.counted_quantity,
                 counted_at = now(), counted_by_device = EXCLUDED.counted_by_device, counted_by_user = NULL",
        )
        .bind(&count_ids)
        .bind(&products)
        .bind(&units)
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

async fn detail(conn: &mut PgConnection, id: Uuid, reveal: bool) -> Result<CountDetail> {
    let session = session(conn, id, false).await?;
    let hide = session.blind && session.status == "open" && !reveal;
    let rows: Vec<LineRow> = sqlx::query_as(
        "SELECT l.product_id, p.sku, l.expected_quantity, l.counted_quantity, l.counted_at
         FROM count_lines l JOIN products p ON p.id = l.product_id
         WHERE l.count_id = $1 ORDER BY lower(p.sku)",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    let lines = rows
        .into_iter()
        .map(
            |(product_id, sku, expected, counted, counted_at)| CountLine {
                product_id,
                sku,
                expected_quantity: (!hide).then_some(expected),
                counted_quantity: counted,
                variance: if hide {
                    None
                } else {
                    counted.map(|c| c - expected)
                },
                counted_at,
            },
        )
        .collect();
    Ok(CountDetail { session, lines })
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
        let mut v = Validation::new();
        v.check(
            products.len() <= 10_000,
            "product_ids",
            "at most 10000 products per count",
        );
        v.finish()?;
        let mut tx = state.db.begin().await?;
        if let Some(first) = idempotency::claim(&idem, &mut tx).await? {
            return Ok(Created::new(first));
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
        let id: Uuid = sqlx::query_scalar(
            "INSERT INTO count_sessions (warehouse_id, blind, product_ids, created_by)
             VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(body.warehouse_id)
        .bind(body.blind)
        .bind((!products.is_empty()).then_some(&products))
        .bind(auth.0.user_id())
        .fetch_one(&mut *tx)
        .await?;
        // The snapshot: the levels as this transaction sees them.
        if products.is_empty() {
            sqlx::query(
                "INSERT INTO count_lines (count_id, product_id, expected_quantity)
                 SELECT $1, product_id, quantity FROM stock_levels WHERE warehouse_id = $2",
            )
            .bind(id)
            .bind(body.warehouse_id)
            .execute(&mut *tx)
            .await?;
        } else {
            sqlx::query(
                "INSERT INTO count_lines (count_id, product_id, expected_quantity)
                 SELECT $1, p, COALESCE((SELECT quantity FROM stock_levels WHERE product_id = p AND warehouse_id = $2), 0)
                 FROM unnest($3::uuid[]) AS p",
            )
            .bind(id)
            .bind(body.warehouse_id)
            .bind(&products)
            .execute(&mut *tx)
            .await?;
        }
        events::emit(
            &mut tx,
            "count.opened",
            id,
            json!({"id": id, "warehouse_id": body.warehouse_id}),
        )
        .await?;
        let d = detail(&mut tx, id, true).await?;
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
        let reveal = auth.0.role().is_some_and(|r| r >= Role::Manager);
        let mut conn = state.db.acquire().await?;
        Ok(Json(detail(&mut conn, id.0, reveal).await?))
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
        let mut tx = state.db.begin().await?;
        if let Some(first) = idempotency::claim(&idem, &mut tx).await? {
            return Ok(Json(first));
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
        let products: Vec<Uuid> = body.lines.iter().map(|l| l.product_id).collect();
        let counted: Vec<i64> = body.lines.iter().map(|l| l.counted_quantity).collect();
        sqlx::query(
            "INSERT INTO count_lines (count_id, product_id, expected_quantity, counted_quantity, counted_at, counted_by_user)
             SELECT $1, p, 0, n, now(), $4 FROM unnest($2::uuid[], $3::bigint[]) AS t(p, n)
             ON CONFLICT (count_id, product_id) DO UPDATE SET counted_quantity = EXCLUDED.counted_quantity,
                 counted_at = now(), counted_by_user = EXCLUDED.counted_by_user, counted_by_device = NULL",
        )
        .bind(id.0)
        .bind(&products)
        .bind(&counted)
        .bind(auth.0.user_id())
        .execute(&mut *tx)
        .await?;
        let reveal = auth.0.role().is_some_and(|r| r >= Role::Manager);
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
        let mut tx = state.db.begin().await?;
        if let Some(first) = idempotency::claim(&idem, &mut tx).await? {
            return Ok(Json(first));
        }
        let s = session(&mut tx, id.0, true).await?;
        require_open(&s)?;
        let lines: Vec<(Uuid, String, i64)> = sqlx::query_as(
            "SELECT l.product_id, p.sku, l.counted_quantity - l.expected_quantity
             FROM count_lines l JOIN products p ON p.id = l.product_id
             WHERE l.count_id = $1 AND l.counted_quantity IS NOT NULL
               AND l.counted_quantity <> l.expected_quantity
             ORDER BY l.product_id",
        )
        .bind(id.0)
        .fetch_all(&mut *tx)
        .await?;
        let actor = Actor::User(auth.0.user_id().expect("ManagerAuth is a user"));
        let legs: Vec<Leg> = lines
            .iter()
            .map(|(product, _, delta)| {
                let mut leg = Leg::new(
                    TransactionKind::CountAdjustment,
                    *product,
                    s.warehouse_id,
                    *delta,
                    actor,
                );
                leg.count_id = Some(s.id);
                leg
            })
            .collect();
        let mut transactions = Vec::new();
        for ((_, sku, _), outcome) in lines.iter().zip(apply_batch(&mut tx, &legs).await?) {
            match outcome {
                LegOutcome::Applied(t) => transactions.push(*t),
                LegOutcome::Refused(ApiError::InsufficientStock { available, requested }) => {
                    return Err(ApiError::conflict(
                        "insufficient-stock",
                        format!(
                            "Completing would take {requested} of {sku} but only {available} are there now \
                             (issued during the count?); recount it."
                        ),
                    ))
                }
                LegOutcome::Refused(other) => return Err(other),
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
        let mut tx = state.db.begin().await?;
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
