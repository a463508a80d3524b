//! Stock: levels and the append-only ledger. Every change of stock, whoever
//! asks for it (clerks here, scanners, count sessions), goes through
//! [`apply`]; there is no second implementation of a movement.

pub mod batch;
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
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use self::{
    model::{
        AdjustReason, AdjustRequest, IssueRequest, Level, MovementResult, ProductStock,
        ReceiveRequest, StockLevel, StockTransaction, TransactionKind, TransferRequest,
        WarehouseStock,
    },
    repo::{Actor, Leg},
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

/// A stock movement, validated.
#[derive(Debug, Clone)]
pub enum Movement {
    /// One leg, any kind (receipt, issue, adjustment by delta, count adjustment).
    Single(Leg),
    /// Set a level to an exact quantity (adjustment by new quantity).
    SetTo { leg: Leg, new_quantity: i64 },
    /// Two legs sharing a transfer id.
    Transfer { out: Box<Leg>, into: Box<Leg> },
}

impl Movement {
    /// Whether the movement is one SQL statement (atomic without BEGIN/COMMIT).
    fn single_statement(&self) -> bool {
        matches!(self, Self::Single(_))
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::Single(leg) | Self::SetTo { leg, .. } => leg.kind.as_str(),
            Self::Transfer { .. } => "transfer",
        }
    }
}

fn level_of(t: &StockTransaction) -> Level {
    Level {
        product_id: t.product_id,
        warehouse_id: t.warehouse_id,
        quantity: t.balance_after,
    }
}

/// Applies a movement on `conn`. Multi-statement movements must run inside a
/// transaction; the caller provides it.
pub async fn apply(conn: &mut PgConnection, m: &Movement) -> Result<MovementResult> {
    let transactions = match m {
        Movement::Single(leg) => vec![repo::post_leg_or_refuse(conn, leg).await?],
        Movement::SetTo { leg, new_quantity } => {
            let locked = repo::lock_levels(conn, leg.product_id, &[leg.warehouse_id]).await?;
            let current = locked.first().map(|(_, q)| *q).unwrap_or(0);
            let delta = new_quantity - current;
            if delta == 0 {
                return Err(ApiError::field(
                    "new_quantity",
                    format!("the level is already {current}; nothing to adjust"),
                ));
            }
            let leg = Leg {
                delta,
                ..leg.clone()
            };
            vec![repo::post_leg_or_refuse(conn, &leg).await?]
        }
        Movement::Transfer { out, into } => {
            repo::lock_levels(conn, out.product_id, &[out.warehouse_id, into.warehouse_id]).await?;
            let first = repo::post_leg_or_refuse(conn, out).await?;
            let second = match repo::post_leg(conn, into).await? {
                Some(t) => t,
                None => {
                    let err = repo::why_refused(conn, into).await?;
                    // Name the destination field, not the generic one.
                    return Err(match err {
                        ApiError::Validation(_) => {
                            ApiError::field("to_warehouse_id", "no warehouse with this id")
                        }
                        other => other,
                    });
                }
            };
            vec![first, second]
        }
    };
    let levels = transactions.iter().map(level_of).collect();
    Ok(MovementResult {
        transactions,
        levels,
    })
}

fn record(kind: &'static str, outcome: &'static str, units: u64) {
    let m = telemetry::metrics();
    m.stock_movements.add(
        1,
        &[
            KeyValue::new("kind", kind),
            KeyValue::new("outcome", outcome),
        ],
    );
    if units > 0 {
        m.stock_units_moved
            .add(units, &[KeyValue::new("kind", kind)]);
    }
}

fn actor_of(p: &Principal) -> Actor {
    match p {
        Principal::User { id, .. } => Actor::User(*id),
        Principal::Device { id, .. } => Actor::Device(*id),
    }
}

/// Runs a movement for an HTTP request, with its Idempotency-Key if any, and
/// records the metrics.
async fn perform<B: poem_openapi::types::ToJSON>(
    state: &AppState,
    principal: &Principal,
    key: Option<&str>,
    route: &str,
    body: &B,
    m: Movement,
) -> Result<Created<MovementResult>> {
    let idem = Idempotent::new(principal.id(), key, route, body)?;
    let outcome = async {
        match &idem {
            None if m.single_statement() => {
                let mut conn = state.db.acquire().await?;
                apply(&mut conn, &m).await
            }
            None => {
                let mut tx = state.db.begin().await?;
                let r = apply(&mut tx, &m).await?;
                tx.commit().await?;
                Ok(r)
            }
            Some(idem) => {
                let mut tx = state.db.begin().await?;
                if let Some(replay) = idem.claim::<MovementResult>(&mut tx).await? {
                    return Ok(replay);
                }
                let r = apply(&mut tx, &m).await?;
                idem.store(&mut tx, 201, &r).await?;
                tx.commit().await?;
                Ok(r)
            }
        }
    }
    .await;
    match &outcome {
        Ok(r) => record(
            m.kind(),
            "applied",
            r.transactions
                .first()
                .map_or(0, |t| t.quantity.unsigned_abs()),
        ),
        Err(ApiError::InsufficientStock { .. } | ApiError::Conflict { .. }) => {
            record(m.kind(), "refused", 0)
        }
        Err(_) => {}
    }
    outcome.map(Created::new)
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

fn trimmed(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

pub struct StockApi;

#[OpenApi(tag = "Tags::Stock")]
impl StockApi {
    /// Receive goods into a warehouse (clerk). 201 with the ledger row and new level.
    ///
    /// Send an `Idempotency-Key` to make retries safe: a repeat returns the first
    /// answer and changes nothing.
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
        v.finish()?;
        let mut leg = Leg::new(
            TransactionKind::Receipt,
            body.product_id,
            body.warehouse_id,
            body.quantity,
            actor_of(&auth.0),
        );
        leg.unit_cost = body.unit_cost;
        leg.reference = trimmed(&body.reference);
        leg.note = trimmed(&body.note);
        perform(
            &state,
            &auth.0,
            key.0.as_deref(),
            "POST /api/v1/stock/receive",
            &body.0,
            Movement::Single(leg),
        )
        .await
    }

    /// Issue goods from a warehouse (clerk). 409 `insufficient-stock` (with
    /// `available`) when fewer units are on hand.
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
        v.finish()?;
        let mut leg = Leg::new(
            TransactionKind::Issue,
            body.product_id,
            body.warehouse_id,
            -body.quantity,
            actor_of(&auth.0),
        );
        leg.reference = trimmed(&body.reference);
        leg.note = trimmed(&body.note);
        perform(
            &state,
            &auth.0,
            key.0.as_deref(),
            "POST /api/v1/stock/issue",
            &body.0,
            Movement::Single(leg),
        )
        .await
    }

    /// Correct a level (clerk): give `new_quantity` (what is really there) or a
    /// signed `delta`, and a reason.
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
        v.finish()?;
        let reason = match body.reason {
            AdjustReason::Damaged => "damaged",
            AdjustReason::Lost => "lost",
            AdjustReason::Found => "found",
            AdjustReason::Correction => "correction",
            AdjustReason::Expired => "expired",
            AdjustReason::Other => "other",
        };
        let mut leg = Leg::new(
            TransactionKind::Adjustment,
            body.product_id,
            body.warehouse_id,
            body.delta.unwrap_or(0),
            actor_of(&auth.0),
        );
        leg.reason = Some(reason);
        leg.note = trimmed(&body.note);
        let m = match body.new_quantity {
            Some(new_quantity) => Movement::SetTo { leg, new_quantity },
            None => Movement::Single(leg),
        };
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

    /// Move stock between two warehouses (clerk): one atomic pair of ledger rows.
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
            body.from_warehouse_id != body.to_warehouse_id,
            "to_warehouse_id",
            "must differ from from_warehouse_id",
        );
        check_reference_and_note(&mut v, &body.reference, &body.note);
        v.finish()?;
        let actor = actor_of(&auth.0);
        let transfer_id = Some(Uuid::now_v7());
        let mut out = Leg::new(
            TransactionKind::TransferOut,
            body.product_id,
            body.from_warehouse_id,
            -body.quantity,
            actor,
        );
        out.transfer_id = transfer_id;
        out.reference = trimmed(&body.reference);
        out.note = trimmed(&body.note);
        let into = Leg {
            kind: TransactionKind::TransferIn,
            warehouse_id: body.to_warehouse_id,
            delta: body.quantity,
            ..out.clone()
        };
        perform(
            &state,
            &auth.0,
            key.0.as_deref(),
            "POST /api/v1/stock/transfer",
            &body.0,
            Movement::Transfer {
                out: Box::new(out),
                into: Box::new(into),
            },
        )
        .await
    }

    /// Stock levels (viewer), by product then warehouse.
    ///
    /// Levels under an open blind count are left out for viewers and clerks
    /// (managers see them).
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
        /// Page size, 1-500 (default 50).
        limit: Query<Option<u32>>,
        /// `next_cursor` from the previous page.
        cursor: Query<Option<String>>,
    ) -> Result<Json<Page<StockLevel>>> {
        let page = PageRequest::<(Uuid, Uuid)>::new(limit.0, cursor.0.as_deref())?;
        let rows = repo::levels(
            &state.db,
            product_id.0,
            warehouse_id.0,
            below_reorder.0,
            repo::hides_blind_counts(&auth.0),
            page.after,
            page.fetch(),
        )
        .await?;
        Ok(Json(page.page(
            rows,
            |l| (l.product_id, l.warehouse_id),
            |l| l,
        )))
    }

    /// A product's stock per warehouse and in total, valued at its unit cost (viewer).
    ///
    /// Warehouses where the product is under an open blind count are left out
    /// for viewers and clerks.
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
    ) -> Result<Json<ProductStock>> {
        let (cost, rows) = repo::product_levels(&state.db, id.0, repo::hides_blind_counts(&auth.0))
            .await?
            .ok_or_else(|| ApiError::not_found(format!("product {}", id.0)))?;
        let warehouses: Vec<WarehouseStock> = rows
            .into_iter()
            .map(|(warehouse_id, warehouse_code, quantity)| WarehouseStock {
                warehouse_id,
                warehouse_code,
                quantity,
                value: (cost * Decimal::from(quantity)).into(),
            })
            .collect();
        let total: i64 = warehouses.iter().map(|w| w.quantity).sum();
        Ok(Json(ProductStock {
            product_id: id.0,
            total,
            value: (cost * Decimal::from(total)).into(),
            warehouses,
        }))
    }
}

pub struct TransactionsApi;

#[OpenApi(prefix_path = "/api/v1/transactions", tag = "Tags::Transactions")]
impl TransactionsApi {
    /// The ledger (viewer), newest first.
    #[oai(path = "/", method = "get", operation_id = "listTransactions")]
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        _auth: ViewerAuth,
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
        };
        let rows = repo::transactions(&state.read_db, &filter, page.after, page.fetch()).await?;
        Ok(Json(page.page(rows, |t| (t.created_at, t.id), |t| t)))
    }

    /// One ledger row (viewer).
    #[oai(path = "/:id", method = "get", operation_id = "getTransaction")]
    async fn get(
        &self,
        _auth: ViewerAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
    ) -> Result<Json<StockTransaction>> {
        let t = repo::transaction(&state.db, id.0)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("transaction {}", id.0)))?;
        Ok(Json(t))
    }
}
