//! Stock: levels, positions and the append-only ledger. Every change of
//! stock, whoever asks for it (clerks here, scanners, count sessions), posts
//! through the movement engine ([`engine`]); there is no second
//! implementation of a movement.

pub mod blind;
pub mod engine;
pub mod held;
pub mod model;
pub mod repo;

use opentelemetry::KeyValue;
use poem::web::Data;
use poem_openapi::{
    param::{Header, Path, Query},
    payload::Json,
    OpenApi,
};
use rust_decimal::Decimal;
use time::OffsetDateTime;
use uuid::Uuid;

use self::{
    blind::{hides_blind_counts, Blind},
    engine::{Actor, Amount, MoveKind, Movement, Refusal},
    model::{
        AdjustReason, AdjustRequest, IssueRequest, MovementResult, ProductStock, ReceiveRequest,
        StockDetail, StockLevel, StockTransaction, TransactionKind, TransferRequest, Valuation,
        ValuationLine, ValuationTotals, WarehouseStock,
    },
};
use crate::{
    auth::principal::{ClerkAuth, Principal, ViewerAuth},
    error::{ApiError, Result, Validation},
    idempotency::Idempotent,
    pagination::{Page, PageRequest},
    responses::Created,
    state::AppState,
    telemetry, Tags,
};

/// Largest quantity one movement may carry (keeps sums far from overflow).
pub const MAX_QUANTITY: i64 = 1_000_000_000;

/// Records a movement's outcome in `inventory_stock_movements` (and the units
/// moved); a refusal is labelled with its kind.
pub fn record(kind: MoveKind, outcome: &std::result::Result<&MovementResult, &Refusal>) {
    let m = telemetry::metrics();
    match outcome {
        Ok(r) => {
            m.stock_movements.add(
                1,
                &[
                    KeyValue::new("kind", kind.as_str()),
                    KeyValue::new("outcome", "applied"),
                ],
            );
            let units: u64 = r
                .transactions
                .iter()
                .filter(|t| t.quantity < 0 || kind != MoveKind::Transfer)
                .map(|t| t.quantity.unsigned_abs())
                .sum();
            if units > 0 {
                m.stock_units_moved
                    .add(units, &[KeyValue::new("kind", kind.as_str())]);
            }
        }
        Err(refusal) => m.stock_movements.add(
            1,
            &[
                KeyValue::new("kind", kind.as_str()),
                KeyValue::new("outcome", "refused"),
                KeyValue::new("refusal", refusal.as_label()),
            ],
        ),
    }
}

/// The author of a movement: the signed-in user or the device.
pub fn actor_of(p: &Principal) -> Actor {
    match p {
        Principal::User { id, .. } => Actor::User(*id),
        Principal::Device { id, .. } => Actor::Device(*id),
    }
}

/// Runs a movement for an HTTP request, with its Idempotency-Key if any, and
/// records the metrics. The answer (and the copy a retry replays) leaves out
/// what it would tell of levels a blind count hides from `principal`
/// ([`blind`]).
async fn perform<B: poem_openapi::types::ToJSON>(
    state: &AppState,
    principal: &Principal,
    key: Option<&str>,
    route: &str,
    body: &B,
    m: Movement,
) -> Result<Created<MovementResult>> {
    let idem = Idempotent::new(principal.id(), key, route, body)?;
    let hides = hides_blind_counts(principal);
    if idem.is_none() {
        // Without a key the one-statement path needs no transaction of our
        // own: one round trip in all, the blind-count check included (it
        // changes nothing when it declines).
        let mut conn = crate::db::acquire(&state.db).await?;
        if let Some(mut done) = engine::fast::try_post(&mut conn, &m).await? {
            record(m.kind, &Ok(&done.result));
            if hides && done.blind {
                Blind::covering([(m.product_id, m.warehouse_id)]).movement(&mut done.result);
            }
            return Ok(Created::new(done.result));
        }
    }
    let mut tx = engine::begin(&state.db).await?;
    if let Some(idem) = &idem {
        if let Some(replay) = idem.claim::<MovementResult>(&mut tx).await? {
            return Ok(Created::new(replay));
        }
    }
    let blind = Blind::of(&mut *tx, hides, m.pairs()).await?;
    if matches!(m.amount, Amount::SetTo(_)) && blind.covers(m.product_id, m.warehouse_id) {
        // The row would carry `new - current`: the quantity being counted.
        return Err(ApiError::conflict(
            "blind-count-open",
            "A blind count of this level is open: count it in the session, or adjust by `delta`.",
        ));
    }
    let movements = std::slice::from_ref(&m);
    let outcome = if idem.is_none() {
        // The one-statement path declined above.
        engine::post_general(&mut tx, movements).await?
    } else {
        engine::post(&mut tx, movements).await?
    }
    .pop()
    .expect("one outcome per movement");
    record(m.kind, &outcome.as_ref());
    let mut result =
        outcome.map_err(|r| ApiError::from(blind.refusal(m.product_id, m.warehouse_id, r)))?;
    blind.movement(&mut result);
    if let Some(idem) = &idem {
        idem.store(&mut tx, 201, &result).await?;
    }
    tx.commit().await?;
    Ok(Created::new(result))
}

fn check_quantity(v: &mut Validation, field: &str, q: i64) {
    v.check(
        (1..=MAX_QUANTITY).contains(&q),
        field,
        "must be between 1 and 1000000000",
    );
}

fn check_text(v: &mut Validation, field: &str, value: &Option<String>, max: usize) {
    if let Some(s) = value {
        v.check(
            s.chars().count() <= max,
            field,
            format!("must be at most {max} characters"),
        );
    }
}

/// The free-text fields every movement may carry.
fn check_reference_and_note(v: &mut Validation, reference: &Option<String>, note: &Option<String>) {
    check_text(v, "reference", reference, 200);
    check_text(v, "note", note, 2000);
}

/// Lot codes and serial numbers: 1-20 printable ASCII characters without
/// spaces (what GS1 AI 10 and 21 carry, and what fits the ledger).
pub fn is_code(s: &str) -> bool {
    (1..=20).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_graphic())
}

fn check_dimensions(
    v: &mut Validation,
    lot: &Option<String>,
    serials: &Option<Vec<String>>,
    quantity: i64,
) {
    if let Some(lot) = lot {
        v.check(
            is_code(lot),
            "lot",
            "must be 1-20 printable characters without spaces",
        );
    }
    if let Some(serials) = serials {
        v.check(
            serials.len() as i64 <= quantity.abs() && serials.len() <= 10_000,
            "serials",
            "give at most `quantity` serial numbers",
        );
        for (i, s) in serials.iter().enumerate() {
            v.check(
                is_code(s),
                &format!("serials[{i}]"),
                "must be 1-20 printable characters without spaces",
            );
        }
    }
}

fn trimmed(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

pub struct StockApi;

#[OpenApi(tag = "Tags::Stock")]
impl StockApi {
    /// Receive goods into a warehouse (clerk). 201 with the ledger row(s) and new level.
    ///
    /// Without `location_id` the goods go to the warehouse's DEFAULT location.
    /// A lot-tracked product needs `lot` (the lot is created on its first
    /// receipt); a serial-tracked one needs `quantity` distinct `serials`
    /// (409 `serial-in-stock` if one already is). Send an `Idempotency-Key`
    /// to make retries safe: a repeat returns the first answer and changes nothing.
    #[oai(
        path = "/api/v1/stock/receive",
        method = "post",
        operation_id = "receiveStock"
    )]
    async fn receive(
        &self,
        auth: ClerkAuth,
        state: Data<&AppState>,
        /// Any unique string (a UUID); repeats of the same request return the first answer.
        #[oai(name = "Idempotency-Key")]
        key: Header<Option<String>>,
        body: Json<ReceiveRequest>,
    ) -> Result<Created<MovementResult>> {
        let mut v = Validation::new();
        check_quantity(&mut v, "quantity", body.quantity);
        if let Some(cost) = body.unit_cost {
            crate::catalog::model::check_money(&mut v, "unit_cost", cost);
        }
        check_reference_and_note(&mut v, &body.reference, &body.note);
        check_dimensions(&mut v, &body.lot, &body.serials, body.quantity);
        v.finish()?;
        let mut m = Movement::new(
            MoveKind::Receipt,
            body.product_id,
            body.warehouse_id,
            Amount::Add(body.quantity),
            actor_of(&auth.0),
        );
        m.unit_cost = body.unit_cost;
        m.reference = trimmed(&body.reference);
        m.note = trimmed(&body.note);
        m.location_id = body.location_id;
        m.lot = trimmed(&body.lot);
        m.expires_on = body.expires_on;
        m.serials = body.serials.clone().unwrap_or_default();
        perform(
            &state,
            &auth.0,
            key.0.as_deref(),
            "POST /api/v1/stock/receive",
            &body.0,
            m,
        )
        .await
    }

    /// Issue goods from a warehouse (clerk). 409 `insufficient-stock` (with
    /// `available`) when fewer units are on hand.
    ///
    /// Naming no lot or location picks first-expiring-first (FEFO): earliest
    /// expiry first, lots without expiry last, then by location code; expired
    /// lots are skipped unless `allow_expired`. The answer has one ledger row
    /// per position taken from.
    #[oai(
        path = "/api/v1/stock/issue",
        method = "post",
        operation_id = "issueStock"
    )]
    async fn issue(
        &self,
        auth: ClerkAuth,
        state: Data<&AppState>,
        /// Any unique string (a UUID); repeats of the same request return the first answer.
        #[oai(name = "Idempotency-Key")]
        key: Header<Option<String>>,
        body: Json<IssueRequest>,
    ) -> Result<Created<MovementResult>> {
        let mut v = Validation::new();
        check_quantity(&mut v, "quantity", body.quantity);
        check_reference_and_note(&mut v, &body.reference, &body.note);
        check_dimensions(&mut v, &body.lot, &body.serials, body.quantity);
        v.finish()?;
        let mut m = Movement::new(
            MoveKind::Issue,
            body.product_id,
            body.warehouse_id,
            Amount::Take(body.quantity),
            actor_of(&auth.0),
        );
        m.reference = trimmed(&body.reference);
        m.note = trimmed(&body.note);
        m.location_id = body.location_id;
        m.lot = trimmed(&body.lot);
        m.serials = body.serials.clone().unwrap_or_default();
        m.allow_expired = body.allow_expired;
        m.reservation_id = body.reservation_id;
        perform(
            &state,
            &auth.0,
            key.0.as_deref(),
            "POST /api/v1/stock/issue",
            &body.0,
            m,
        )
        .await
    }

    /// Correct stock (clerk): give `new_quantity` (what is really there) or a
    /// signed `delta`, and a reason.
    ///
    /// Naming no location or lot, `new_quantity` is the warehouse's level (as
    /// in v1); naming them, it is that position's. While a blind count covers
    /// the level, a clerk's `new_quantity` is refused (409
    /// `blind-count-open`): the row would tell the quantity being counted;
    /// `delta` is accepted.
    #[oai(
        path = "/api/v1/stock/adjust",
        method = "post",
        operation_id = "adjustStock"
    )]
    async fn adjust(
        &self,
        auth: ClerkAuth,
        state: Data<&AppState>,
        /// Any unique string (a UUID); repeats of the same request return the first answer.
        #[oai(name = "Idempotency-Key")]
        key: Header<Option<String>>,
        body: Json<AdjustRequest>,
    ) -> Result<Created<MovementResult>> {
        let mut v = Validation::new();
        match (body.new_quantity, body.delta) {
            (Some(_), Some(_)) | (None, None) => {
                v.push("new_quantity", "give exactly one of new_quantity and delta");
            }
            (Some(n), None) => {
                v.check(
                    (0..=MAX_QUANTITY).contains(&n),
                    "new_quantity",
                    "must be between 0 and 1000000000",
                );
            }
            (None, Some(d)) => {
                v.check(
                    d != 0 && d.abs() <= MAX_QUANTITY,
                    "delta",
                    "must be non-zero, at most 1000000000 either way",
                );
            }
        }
        check_text(&mut v, "note", &body.note, 2000);
        let most = body
            .delta
            .or(body.new_quantity)
            .unwrap_or(0)
            .max(MAX_QUANTITY);
        check_dimensions(&mut v, &body.lot, &body.serials, most);
        v.finish()?;
        let reason = match body.reason {
            AdjustReason::Damaged => "damaged",
            AdjustReason::Lost => "lost",
            AdjustReason::Found => "found",
            AdjustReason::Correction => "correction",
            AdjustReason::Expired => "expired",
            AdjustReason::Other => "other",
        };
        let amount = match body.new_quantity {
            Some(n) => Amount::SetTo(n),
            None => Amount::Delta(body.delta.unwrap_or(0)),
        };
        let mut m = Movement::new(
            MoveKind::Adjustment,
            body.product_id,
            body.warehouse_id,
            amount,
            actor_of(&auth.0),
        );
        m.reason = Some(reason);
        m.note = trimmed(&body.note);
        m.location_id = body.location_id;
        m.lot = trimmed(&body.lot);
        m.expires_on = body.expires_on;
        m.serials = body.serials.clone().unwrap_or_default();
        perform(
            &state,
            &auth.0,
            key.0.as_deref(),
            "POST /api/v1/stock/adjust",
            &body.0,
            m,
        )
        .await
    }

    /// Move stock between two warehouses, or between two locations of one
    /// (clerk): one atomic set of ledger rows, lots and serials kept.
    #[oai(
        path = "/api/v1/stock/transfer",
        method = "post",
        operation_id = "transferStock"
    )]
    async fn transfer(
        &self,
        auth: ClerkAuth,
        state: Data<&AppState>,
        /// Any unique string (a UUID); repeats of the same request return the first answer.
        #[oai(name = "Idempotency-Key")]
        key: Header<Option<String>>,
        body: Json<TransferRequest>,
    ) -> Result<Created<MovementResult>> {
        let mut v = Validation::new();
        check_quantity(&mut v, "quantity", body.quantity);
        v.check(
            body.from_warehouse_id != body.to_warehouse_id
                || body.to_location_id.is_some_and(|to| Some(to) != body.from_location_id),
            "to_warehouse_id",
            "must differ from from_warehouse_id (or name a to_location_id other than from_location_id)",
        );
        check_reference_and_note(&mut v, &body.reference, &body.note);
        check_dimensions(&mut v, &body.lot, &body.serials, body.quantity);
        v.finish()?;
        let mut m = Movement::new(
            MoveKind::Transfer,
            body.product_id,
            body.from_warehouse_id,
            Amount::Take(body.quantity),
            actor_of(&auth.0),
        );
        m.to_warehouse_id = Some(body.to_warehouse_id);
        m.location_id = body.from_location_id;
        m.to_location_id = body.to_location_id;
        m.lot = trimmed(&body.lot);
        m.serials = body.serials.clone().unwrap_or_default();
        m.allow_expired = body.allow_expired;
        m.reference = trimmed(&body.reference);
        m.note = trimmed(&body.note);
        perform(
            &state,
            &auth.0,
            key.0.as_deref(),
            "POST /api/v1/stock/transfer",
            &body.0,
            m,
        )
        .await
    }

    /// Stock levels (viewer), by product then warehouse.
    ///
    /// Levels under an open blind count are left out for viewers and clerks
    /// (managers see them). `detail=positions` adds each level's positions
    /// (location, lot, quantity; they add up to the level's `quantity`);
    /// without it the answer is exactly the v1 one.
    #[oai(
        path = "/api/v1/stock",
        method = "get",
        operation_id = "listStockLevels"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn levels(
        &self,
        auth: ViewerAuth,
        state: Data<&AppState>,
        product_id: Query<Option<Uuid>>,
        warehouse_id: Query<Option<Uuid>>,
        /// Only levels at or below their product's reorder point.
        #[oai(default)]
        below_reorder: Query<bool>,
        /// `positions`: add each level's `positions`. Default: the sums only.
        detail: Query<Option<StockDetail>>,
        /// Page size, 1-500 (default 50).
        limit: Query<Option<u32>>,
        /// `next_cursor` from the previous page.
        cursor: Query<Option<String>>,
    ) -> Result<Json<Page<StockLevel>>> {
        let page = PageRequest::<(Uuid, Uuid)>::new(limit.0, cursor.0.as_deref())?;
        let hide = hides_blind_counts(&auth.0);
        let (p, w, low) = (product_id.0, warehouse_id.0, below_reorder.0);
        let rows = match detail.0 {
            None => repo::levels(&state.db, p, w, low, hide, page.after, page.fetch()).await?,
            Some(StockDetail::Positions) => {
                // ONE more query per page, on the levels' snapshot.
                let mut tx = crate::db::snapshot(&state.db).await?;
                let mut rows =
                    repo::levels(&mut *tx, p, w, low, hide, page.after, page.fetch()).await?;
                let mut positions = repo::level_positions(
                    &mut *tx,
                    rows.iter().map(|l| (l.product_id, l.warehouse_id)),
                )
                .await?;
                tx.commit().await?;
                for l in &mut rows {
                    l.positions = Some(
                        positions
                            .remove(&(l.product_id, l.warehouse_id))
                            .unwrap_or_default(),
                    );
                }
                rows
            }
        };
        Ok(Json(page.page(
            rows,
            |l| (l.product_id, l.warehouse_id),
            |l| l,
        )))
    }

    /// A product's stock per warehouse and in total, with its value at the
    /// moving-average cost (viewer), now or at a past instant (`as_of`).
    ///
    /// Now, the figures are the levels' own (`reserved` and `available`
    /// included). At a past instant they come from the ledger: per
    /// warehouse, the last ledger row at or before `as_of` gives the
    /// quantity and the value (`reserved` and `available` are then null).
    /// Warehouses where the product is under an open blind count are left
    /// out for viewers and clerks. `detail=positions` adds each warehouse's
    /// positions (now only: with `as_of` it is 422 on `detail`).
    #[oai(
        path = "/api/v1/products/:id/stock",
        method = "get",
        operation_id = "getProductStock"
    )]
    async fn product_stock(
        &self,
        auth: ViewerAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
        /// An instant (RFC 3339, e.g. `2026-11-30T23:59:59Z`), not in the future; default: now.
        as_of: Query<Option<String>>,
        /// `positions`: add each warehouse's `positions` (not with `as_of`).
        /// Default: the sums only.
        detail: Query<Option<StockDetail>>,
    ) -> Result<Json<ProductStock>> {
        let at = parse_as_of(as_of.0.as_deref())?;
        let with_positions = detail.0 == Some(StockDetail::Positions);
        if with_positions && at.is_some() {
            // The ledger has each position's balance_after, but finding the
            // last row per position before an instant needs an index per
            // position that every movement would pay for.
            return Err(ApiError::field(
                "detail",
                "positions are available for now only: leave out as_of or detail",
            ));
        }
        if !repo::product_exists(&state.db, id.0).await? {
            return Err(ApiError::not_found(format!("product {}", id.0)));
        }
        let filter = repo::ValuationFilter {
            product_id: Some(id.0),
            hide_blind: hides_blind_counts(&auth.0),
            include_empty: true,
            ..repo::ValuationFilter::default()
        };
        // A past instant is a report (the read pool may serve it); now is
        // what a client reads right after a movement (the primary).
        let (mut rows, mut positions) = if at.is_some() {
            let rows = repo::valued_levels(&state.read_db, at, &filter, None, None).await?;
            (rows, None)
        } else if with_positions {
            let mut tx = crate::db::snapshot(&state.db).await?;
            let rows = repo::valued_levels(&mut *tx, None, &filter, None, None).await?;
            let positions = repo::level_positions(
                &mut *tx,
                rows.iter().map(|l| (l.product_id, l.warehouse_id)),
            )
            .await?;
            tx.commit().await?;
            (rows, Some(positions))
        } else {
            let rows = repo::valued_levels(&state.db, None, &filter, None, None).await?;
            (rows, None)
        };
        rows.sort_by(|a, b| a.warehouse_code.cmp(&b.warehouse_code));
        let total: i64 = rows.iter().map(|l| l.quantity).sum();
        let value: Decimal = rows.iter().map(|l| l.value).sum();
        let reserved: Option<i64> = at
            .is_none()
            .then(|| rows.iter().filter_map(|l| l.reserved).sum());
        let warehouses = rows
            .into_iter()
            .map(|l| WarehouseStock {
                unit_cost: l.average().into(),
                positions: positions.as_mut().map(|found| {
                    found
                        .remove(&(l.product_id, l.warehouse_id))
                        .unwrap_or_default()
                }),
                warehouse_id: l.warehouse_id,
                warehouse_code: l.warehouse_code,
                quantity: l.quantity,
                reserved: l.reserved,
                available: l.reserved.map(|r| l.quantity - r),
                value: l.value.into(),
            })
            .collect();
        Ok(Json(ProductStock {
            product_id: id.0,
            as_of: at.unwrap_or_else(OffsetDateTime::now_utc),
            total,
            reserved,
            available: reserved.map(|r| total - r),
            value: value.into(),
            warehouses,
        }))
    }

    /// Stock value per product and warehouse (viewer), now or at a past
    /// instant (`as_of`), with totals.
    ///
    /// Each line is a (product, warehouse) holding stock at that instant:
    /// its quantity, moving-average unit cost and value. A past instant is
    /// answered from the ledger (the last row of each level at or before
    /// it); now, from the levels themselves. `totals` (every page summed)
    /// come with the first page; later pages keep the first page's instant.
    /// Levels under an open blind count are left out for viewers and clerks.
    #[oai(
        path = "/api/v1/stock/valuation",
        method = "get",
        operation_id = "getStockValuation"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn valuation(
        &self,
        auth: ViewerAuth,
        state: Data<&AppState>,
        /// An instant (RFC 3339, e.g. `2026-11-30T23:59:59Z`), not in the future; default: now.
        as_of: Query<Option<String>>,
        /// Only this warehouse (UUID).
        warehouse_id: Query<Option<Uuid>>,
        /// Only products of this category (UUID).
        category_id: Query<Option<Uuid>>,
        /// Page size, 1-500 (default 50).
        limit: Query<Option<u32>>,
        /// `next_cursor` from the previous page.
        cursor: Query<Option<String>>,
    ) -> Result<Json<Valuation>> {
        let at = parse_as_of(as_of.0.as_deref())?;
        // The cursor carries the instant of the first page (None: the live
        // levels), so a walk through the pages is one valuation.
        let page =
            PageRequest::<(Option<OffsetDateTime>, Uuid, Uuid)>::new(limit.0, cursor.0.as_deref())?;
        let first = page.after.is_none();
        let read_at = match page.after {
            Some((t, _, _)) => t,
            None => at,
        };
        let instant = read_at.unwrap_or_else(OffsetDateTime::now_utc);
        let filter = repo::ValuationFilter {
            warehouse_id: warehouse_id.0,
            category_id: category_id.0,
            hide_blind: hides_blind_counts(&auth.0),
            ..repo::ValuationFilter::default()
        };
        let rows = repo::valued_levels(
            &state.read_db,
            read_at,
            &filter,
            page.after.map(|(_, p, w)| (p, w)),
            Some(page.fetch()),
        )
        .await?;
        let totals = if first {
            let (quantity, value) =
                repo::valuation_totals(&state.read_db, read_at, &filter).await?;
            Some(ValuationTotals {
                quantity,
                value: value.into(),
            })
        } else {
            None
        };
        let Page { items, next_cursor } = page.page(
            rows,
            |l| (read_at, l.product_id, l.warehouse_id),
            |l| ValuationLine {
                unit_cost: l.average().into(),
                product_id: l.product_id,
                sku: l.sku,
                warehouse_id: l.warehouse_id,
                warehouse_code: l.warehouse_code,
                quantity: l.quantity,
                value: l.value.into(),
            },
        );
        Ok(Json(Valuation {
            as_of: instant,
            totals,
            items,
            next_cursor,
        }))
    }
}

/// The `as_of` of the history reads: an RFC 3339 instant not in the future
/// (422 on field `as_of` otherwise); None when not given (now).
pub fn parse_as_of(raw: Option<&str>) -> Result<Option<OffsetDateTime>> {
    let Some(raw) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let at = OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339).map_err(
        |_| {
            ApiError::field(
                "as_of",
                "must be an RFC 3339 instant, e.g. 2026-11-30T23:59:59Z",
            )
        },
    )?;
    if at > OffsetDateTime::now_utc() {
        return Err(ApiError::field("as_of", "must not be in the future"));
    }
    Ok(Some(at))
}

pub struct TransactionsApi;

#[OpenApi(prefix_path = "/api/v1/transactions", tag = "Tags::Transactions")]
impl TransactionsApi {
    /// The ledger (viewer), newest first.
    ///
    /// Rows of a (product, warehouse) under an open blind count are listed
    /// to viewers, clerks and devices only when they posted them (the sum of
    /// everybody's would be the quantity being counted), with
    /// `balance_after`, `warehouse_balance_after`, `unit_cost` and
    /// `value_after` null.
    #[oai(path = "/", method = "get", operation_id = "listTransactions")]
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        auth: ViewerAuth,
        state: Data<&AppState>,
        product_id: Query<Option<Uuid>>,
        warehouse_id: Query<Option<Uuid>>,
        kind: Query<Option<TransactionKind>>,
        /// A user or device id.
        actor: Query<Option<Uuid>>,
        /// Rows at or after this time (RFC 3339).
        since: Query<Option<OffsetDateTime>>,
        /// Rows before this time (RFC 3339).
        until: Query<Option<OffsetDateTime>>,
        /// Rows whose `reference` is exactly this text (case-sensitive, at most
        /// 200 characters), e.g. every line of one purchase order.
        reference: Query<Option<String>>,
        /// Page size, 1-500 (default 50).
        limit: Query<Option<u32>>,
        /// `next_cursor` from the previous page.
        cursor: Query<Option<String>>,
    ) -> Result<Json<Page<StockTransaction>>> {
        let page = PageRequest::<(OffsetDateTime, Uuid)>::new(limit.0, cursor.0.as_deref())?;
        if reference
            .0
            .as_ref()
            .is_some_and(|r| r.chars().count() > 200)
        {
            return Err(ApiError::field(
                "reference",
                "must be at most 200 characters",
            ));
        }
        let filter = repo::TransactionFilter {
            product_id: product_id.0,
            warehouse_id: warehouse_id.0,
            kind: kind.0,
            actor: actor.0,
            since: since.0,
            until: until.0,
            reference: reference.0,
            blind_viewer: hides_blind_counts(&auth.0).then(|| auth.0.id()),
        };
        let mut rows =
            repo::transactions(&state.read_db, &filter, page.after, page.fetch()).await?;
        let blind = Blind::of(
            &state.read_db,
            hides_blind_counts(&auth.0),
            rows.iter().map(|t| (t.product_id, t.warehouse_id)),
        )
        .await?;
        rows.iter_mut().for_each(|t| blind.transaction(t));
        Ok(Json(page.page(rows, |t| (t.created_at, t.id), |t| t)))
    }

    /// One ledger row (viewer); its balances are null as in the list while a
    /// blind count hides its level.
    #[oai(path = "/:id", method = "get", operation_id = "getTransaction")]
    async fn get(
        &self,
        auth: ViewerAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
    ) -> Result<Json<StockTransaction>> {
        let mut t = repo::transaction(&state.db, id.0)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("transaction {}", id.0)))?;
        Blind::of(
            &state.db,
            hides_blind_counts(&auth.0),
            [(t.product_id, t.warehouse_id)],
        )
        .await?
        .transaction(&mut t);
        Ok(Json(t))
    }
}
