//! Reservations: stock promised to orders, never promised twice.
//!
//! A reservation's hold lives on its (product, warehouse) level as
//! `reserved`, changed by the movement engine under the level's lock in the
//! same transaction as the reservation row; the database CHECKs
//! `reserved <= quantity`, so no interleaving of reservations, issues and
//! transfers can over-promise. An issue naming `reservation_id` consumes it;
//! any other issue, transfer or negative adjustment takes only what is
//! available (on hand minus reserved). Expired reservations count as
//! released from their `expires_at` on, everywhere; a job marks them
//! `expired` every minute.

pub mod model;
pub mod repo;

use poem::web::Data;
use poem_openapi::{
    param::{Header, Path, Query},
    payload::Json,
    OpenApi,
};
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use self::model::{CreateReservation, Reservation, ReservationStatus};
use crate::{
    auth::principal::{ClerkAuth, ViewerAuth},
    error::{ApiError, Result, Validation},
    events,
    idempotency::{claim, store, Idempotent, NO_BODY},
    pagination::{Page, PageRequest},
    responses::Created,
    state::AppState,
    stock::{
        self,
        blind::{hides_blind_counts, Blind},
        engine::{self, Actor, Amount, MoveKind, Movement},
    },
    Tags,
};

/// Runs one reservation change through the engine; a refusal is the answer.
/// The refusal leaves out what `blind` hides of the level (`stock::blind`).
async fn post(conn: &mut sqlx::PgConnection, m: Movement, blind: &Blind) -> Result<()> {
    let outcome = engine::post(conn, std::slice::from_ref(&m))
        .await?
        .pop()
        .expect("one outcome per movement");
    outcome
        .map(|_| ())
        .map_err(|r| blind.refusal(m.product_id, m.warehouse_id, r).into())
}

/// Releases the reservations past their `expires_at`, a batch of levels at a
/// time (each level in its own short transaction, through the engine, which
/// marks them `expired` and emits `reservation.expired`). Returns how many
/// levels were released.
pub async fn release_expired(state: &AppState) -> Result<usize> {
    let mut released = 0;
    loop {
        let levels = repo::levels_with_expired(&state.db, 100).await?;
        if levels.is_empty() {
            return Ok(released);
        }
        let movements: Vec<Movement> = levels
            .iter()
            .map(|(p, w)| {
                Movement::new(
                    MoveKind::ReleaseExpired,
                    *p,
                    *w,
                    Amount::Delta(0),
                    Actor::User(Uuid::nil()),
                )
            })
            .collect();
        let mut tx = engine::begin(&state.db).await?;
        engine::post(&mut tx, &movements).await?;
        tx.commit().await?;
        released += levels.len();
        if levels.len() < 100 {
            return Ok(released);
        }
    }
}

pub struct ReservationsApi;

#[OpenApi(prefix_path = "/api/v1/reservations", tag = "Tags::Reservations")]
impl ReservationsApi {
    /// Reserve stock for an order (clerk). 409 `insufficient-stock` with
    /// `available` when more is asked than is available (on hand minus
    /// reserved); `available` is null for clerks while a blind count covers
    /// the level.
    #[oai(path = "/", method = "post", operation_id = "createReservation")]
    async fn create(
        &self,
        auth: ClerkAuth,
        state: Data<&AppState>,
        /// Any unique string (a UUID); a retry with it returns the first answer.
        #[oai(name = "Idempotency-Key")]
        key: Header<Option<String>>,
        body: Json<CreateReservation>,
    ) -> Result<Created<Reservation>> {
        let idem = Idempotent::new(
            auth.0.id(),
            key.0.as_deref(),
            "POST /api/v1/reservations",
            &body.0,
        )?;
        let reference = body
            .reference
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty());
        let mut v = Validation::new();
        v.check(
            (1..=stock::MAX_QUANTITY).contains(&body.quantity),
            "quantity",
            "must be between 1 and 1000000000",
        );
        v.check(
            reference.is_none_or(|r| r.chars().count() <= 200),
            "reference",
            "must be at most 200 characters",
        );
        if let Some(lot) = &body.lot {
            v.check(
                stock::is_code(lot),
                "lot",
                "must be 1-20 printable characters without spaces",
            );
        }
        if let Some(at) = body.expires_at {
            v.check(
                at > OffsetDateTime::now_utc(),
                "expires_at",
                "must be in the future",
            );
        }
        v.finish()?;
        let mut tx = engine::begin(&state.db).await?;
        if let Some(first) = claim::<Reservation>(&idem, &mut tx).await? {
            return Ok(Created::new(first));
        }
        let mut m = Movement::new(
            MoveKind::Reserve,
            body.product_id,
            body.warehouse_id,
            Amount::Take(body.quantity),
            stock::actor_of(&auth.0),
        );
        m.lot = body.lot.as_deref().map(str::trim).map(str::to_owned);
        let blind = Blind::of(&mut *tx, hides_blind_counts(&auth.0), m.pairs()).await?;
        post(&mut tx, m, &blind).await?;
        let id = repo::insert(&mut tx, &body.0, reference, auth.0.user_id()).await?;
        let r = repo::get(&mut tx, id).await?.expect("just inserted");
        events::emit(
            &mut tx,
            "reservation.created",
            r.product_id,
            json!({"id": r.id, "status": "active", "product_id": r.product_id,
                   "warehouse_id": r.warehouse_id, "quantity": r.quantity, "reference": r.reference}),
        )
        .await?;
        store(&idem, &mut tx, 201, &r).await?;
        tx.commit().await?;
        Ok(Created::new(r))
    }

    /// Reservations (viewer), newest first.
    #[oai(path = "/", method = "get", operation_id = "listReservations")]
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        _auth: ViewerAuth,
        state: Data<&AppState>,
        status: Query<Option<ReservationStatus>>,
        product_id: Query<Option<Uuid>>,
        warehouse_id: Query<Option<Uuid>>,
        /// Exact match of the reservation's reference.
        reference: Query<Option<String>>,
        /// Page size, 1-500 (default 50).
        limit: Query<Option<u32>>,
        /// `next_cursor` from the previous page.
        cursor: Query<Option<String>>,
    ) -> Result<Json<Page<Reservation>>> {
        let page = PageRequest::<(OffsetDateTime, Uuid)>::new(limit.0, cursor.0.as_deref())?;
        let filter = repo::Filter {
            status: status.0,
            product_id: product_id.0,
            warehouse_id: warehouse_id.0,
            reference: reference.0,
        };
        let rows = repo::list(&state.db, &filter, page.after, page.fetch()).await?;
        Ok(Json(page.page(rows, |r| (r.created_at, r.id), |r| r)))
    }

    /// One reservation (viewer).
    #[oai(path = "/:id", method = "get", operation_id = "getReservation")]
    async fn get(
        &self,
        _auth: ViewerAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
    ) -> Result<Json<Reservation>> {
        let mut conn = crate::db::acquire(&state.db).await?;
        repo::get(&mut conn, id.0)
            .await?
            .map(Json)
            .ok_or_else(|| ApiError::not_found(format!("reservation {}", id.0)))
    }

    /// Cancel a reservation (clerk): what it still holds becomes available.
    /// 409 `reservation-closed` when it is fulfilled, cancelled or expired.
    #[oai(
        path = "/:id/cancel",
        method = "post",
        operation_id = "cancelReservation"
    )]
    async fn cancel(
        &self,
        auth: ClerkAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
        /// Any unique string (a UUID); a retry with it returns the first answer.
        #[oai(name = "Idempotency-Key")]
        key: Header<Option<String>>,
    ) -> Result<Json<Reservation>> {
        let route = format!("POST /api/v1/reservations/{}/cancel", id.0);
        let idem = Idempotent::new(auth.0.id(), key.0.as_deref(), &route, &NO_BODY)?;
        let mut tx = engine::begin(&state.db).await?;
        if let Some(first) = claim::<Reservation>(&idem, &mut tx).await? {
            return Ok(Json(first));
        }
        let current = repo::get(&mut tx, id.0)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("reservation {}", id.0)))?;
        let mut m = Movement::new(
            MoveKind::CancelReservation,
            current.product_id,
            current.warehouse_id,
            Amount::Delta(0),
            stock::actor_of(&auth.0),
        );
        m.reservation_id = Some(id.0);
        post(&mut tx, m, &Blind::default()).await?;
        let r = repo::get(&mut tx, id.0).await?.expect("still there");
        store(&idem, &mut tx, 200, &r).await?;
        tx.commit().await?;
        Ok(Json(r))
    }
}
