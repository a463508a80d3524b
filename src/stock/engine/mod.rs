//! The movement engine. Every change of stock posts through [`post`]: the
//! movements API (receive, issue, adjust, transfer), scanner events and
//! batches, count completions. There is no second implementation of the
//! rules; there are two executors of them: the general path below, and for
//! the common v1-shaped movement the one-statement path ([`fast`]), which
//! acts only where its outcome is certain and is tested to agree.
//!
//! A call takes movements in order and answers each (applied rows or a
//! [`Refusal`]); it runs inside the caller's transaction:
//!
//! 1. **load**: lock the (product, warehouse) levels touched, in one global
//!    order (creating missing ones), and read products, warehouses,
//!    locations, lots and the positions under those levels, all in one
//!    statement (positions that changed while it waited for a lock are read
//!    again). The level row is the lock of all positions under it, so
//!    positions need no order of their own and no interleaving of movements
//!    can deadlock;
//! 2. **lots and serials**: create the lots receipts name, take the serial
//!    lock of serial-tracked products and read where those serials are
//!    (only when a movement names lots or serials);
//! 3. **plan** each movement in memory ([`plan`]: FEFO, serials, the guards);
//! 4. **write** positions, levels, ledger rows and outbox events in one
//!    statement.
//!
//! The database stands behind the plan: positions and levels are CHECKed
//! non-negative, a serial number is in stock at most once (a partial unique
//! index), positions name a location of their warehouse and a lot of their
//! product (composite foreign keys).

pub mod fast;
pub mod plan;
mod refusal;
mod repo;

use std::collections::{BTreeMap, HashMap};

use sqlx::PgConnection;
use time::Date;
use uuid::Uuid;

use self::plan::{Row, State};
pub use self::refusal::Refusal;
use super::model::{Level, MovementResult};
use crate::error::{ApiError, Result};

/// Begins a transaction for the engine, in the same round trip as `BEGIN`:
/// its two statements take arrays and are the same text every time, and
/// PostgreSQL would otherwise plan them afresh on every execution (custom
/// plans cost ~0.7 ms of planning for ~0.2 ms of execution here; the generic
/// plan is made once per connection). Every index they need is one their
/// generic plan picks whatever the array sizes.
pub async fn begin(db: &sqlx::PgPool) -> Result<crate::db::InTransaction> {
    Ok(crate::db::begin_with(db, "BEGIN; SET LOCAL plan_cache_mode = force_generic_plan").await?)
}

/// Who posts a movement.
#[derive(Debug, Clone, Copy)]
pub enum Actor {
    User(Uuid),
    Device(Uuid),
}

impl Actor {
    pub fn user(self) -> Option<Uuid> {
        match self {
            Self::User(id) => Some(id),
            Self::Device(_) => None,
        }
    }

    pub fn device(self) -> Option<Uuid> {
        match self {
            Self::Device(id) => Some(id),
            Self::User(_) => None,
        }
    }
}

/// What kind of movement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoveKind {
    Receipt,
    Issue,
    Adjustment,
    Transfer,
    CountAdjustment,
    /// Promise stock to an order (`reserved` += quantity; no ledger row).
    Reserve,
    /// Release what a reservation still holds (no ledger row).
    CancelReservation,
    /// Touch the level so that its expired reservations are released.
    ReleaseExpired,
}

impl MoveKind {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Receipt => "receipt",
            Self::Issue => "issue",
            Self::Adjustment => "adjustment",
            Self::Transfer => "transfer",
            Self::CountAdjustment => "count_adjustment",
            Self::Reserve => "reserve",
            Self::CancelReservation => "cancel_reservation",
            Self::ReleaseExpired => "release_expired",
        }
    }
}

/// How much.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Amount {
    Add(i64),
    Take(i64),
    /// Signed, not zero.
    Delta(i64),
    /// Set the position named (or, naming none, the warehouse level) to this.
    SetTo(i64),
}

/// One movement as asked for, validated for shape (ranges, lengths) by its API.
#[derive(Debug, Clone)]
pub struct Movement {
    pub kind: MoveKind,
    pub product_id: Uuid,
    /// For transfers: where the goods leave.
    pub warehouse_id: Uuid,
    pub amount: Amount,
    /// Where to put (receipts) or take from; None: the DEFAULT location when
    /// adding, first-expiring-first over all locations when taking.
    pub location_id: Option<Uuid>,
    /// Lot code; for untracked products a note on the ledger row.
    pub lot: Option<String>,
    pub expires_on: Option<Date>,
    /// Serial numbers; for untracked products one serial is a note.
    pub serials: Vec<String>,
    pub allow_expired: bool,
    /// Transfers: destination warehouse (None: the same one) and location.
    pub to_warehouse_id: Option<Uuid>,
    pub to_location_id: Option<Uuid>,
    pub transfer_id: Option<Uuid>,
    pub unit_cost: Option<rust_decimal::Decimal>,
    pub reason: Option<&'static str>,
    pub reference: Option<String>,
    pub note: Option<String>,
    pub count_id: Option<Uuid>,
    /// An issue (or cancellation) of this reservation.
    pub reservation_id: Option<Uuid>,
    pub actor: Actor,
}

impl Movement {
    pub fn new(
        kind: MoveKind,
        product_id: Uuid,
        warehouse_id: Uuid,
        amount: Amount,
        actor: Actor,
    ) -> Self {
        Self {
            kind,
            product_id,
            warehouse_id,
            amount,
            location_id: None,
            lot: None,
            expires_on: None,
            serials: Vec::new(),
            allow_expired: false,
            to_warehouse_id: None,
            to_location_id: None,
            transfer_id: (kind == MoveKind::Transfer).then(Uuid::now_v7),
            unit_cost: None,
            reason: None,
            reference: None,
            note: None,
            count_id: None,
            reservation_id: None,
            actor,
        }
    }

    /// Whether the movement may add stock (and so create its lot).
    fn adds(&self) -> bool {
        !matches!(
            self.kind,
            MoveKind::Transfer
                | MoveKind::Reserve
                | MoveKind::CancelReservation
                | MoveKind::ReleaseExpired
        ) && match self.amount {
            Amount::Add(_) | Amount::SetTo(_) => true,
            Amount::Delta(d) => d > 0,
            Amount::Take(_) => false,
        }
    }

    /// The (product, warehouse) levels the movement touches.
    pub fn pairs(&self) -> impl Iterator<Item = (Uuid, Uuid)> + '_ {
        std::iter::once((self.product_id, self.warehouse_id)).chain(
            self.to_warehouse_id
                .filter(|w| *w != self.warehouse_id)
                .map(|w| (self.product_id, w)),
        )
    }
}

/// What became of one movement.
pub type Outcome = std::result::Result<MovementResult, Refusal>;

/// Posts `movements` in order inside the caller's transaction: one
/// v1-shaped movement by the one-statement path when it can ([`fast`]),
/// anything else by the general path.
pub async fn post(conn: &mut PgConnection, movements: &[Movement]) -> Result<Vec<Outcome>> {
    if let [m] = movements {
        if let Some(done) = fast::try_post(conn, m).await? {
            return Ok(vec![Ok(done.result)]);
        }
    }
    post_general(conn, movements).await
}

/// The general path: load, plan, write (see the module header).
#[tracing::instrument(skip_all, fields(movements = movements.len()))]
pub async fn post_general(conn: &mut PgConnection, movements: &[Movement]) -> Result<Vec<Outcome>> {
    if movements.is_empty() {
        return Ok(Vec::new());
    }
    // Reservations past their expires_at count as released from this instant.
    let cutoff = time::OffsetDateTime::now_utc();
    let req = repo::LoadRequest::new(movements, cutoff);
    let mut loaded = repo::load(conn, &req).await?;
    if !loaded.stale.is_empty() {
        // Changed while we waited for their locks: load them again, now
        // holding the locks (nothing can change them any more).
        let again = repo::load(
            conn,
            &repo::LoadRequest {
                pairs: std::mem::take(&mut loaded.stale),
                products: Vec::new(),
                warehouses: Vec::new(),
                locations: Vec::new(),
                lots: Vec::new(),
                reservations: req.reservations.clone(),
                cutoff,
            },
        )
        .await?;
        loaded.merge(again);
    }
    let repo::Loaded {
        mut cat,
        levels,
        positions,
        expired,
        ..
    } = loaded;
    repo::create_lots(conn, &mut cat, movements).await?;
    repo::lock_serial_products(conn, &cat, movements).await?;
    let mut state = State {
        levels,
        positions,
        serials: repo::serials(conn, movements).await?,
        ..State::default()
    };
    // Expiry dates are calendar dates in UTC.
    let today = cutoff.date();

    let mut planned: Vec<std::result::Result<Vec<Row>, Refusal>> =
        Vec::with_capacity(movements.len());
    for m in movements {
        planned.push(plan::plan(&cat, &mut state, m, today));
    }
    let rows: Vec<(&Movement, &Row)> = movements
        .iter()
        .zip(&planned)
        .filter_map(|(m, p)| p.as_ref().ok().map(|rows| rows.iter().map(move |r| (m, r))))
        .flatten()
        .collect();
    let written = repo::write(conn, &cat, &state, &expired, cutoff, &rows).await?;
    let mut by_id: HashMap<Uuid, _> = written.into_iter().map(|t| (t.id, t)).collect();
    Ok(planned
        .into_iter()
        .map(|p| {
            p.map(|rows| {
                let transactions: Vec<_> = rows
                    .iter()
                    .map(|r| by_id.remove(&r.id).expect("every planned row is written"))
                    .collect();
                // The resulting level of each (product, warehouse), in the
                // order first touched (source before destination).
                let mut levels: BTreeMap<usize, Level> = BTreeMap::new();
                let mut seen: HashMap<(Uuid, Uuid), usize> = HashMap::new();
                for t in &transactions {
                    let next = seen.len();
                    let at = *seen.entry((t.product_id, t.warehouse_id)).or_insert(next);
                    levels.insert(
                        at,
                        Level {
                            product_id: t.product_id,
                            warehouse_id: t.warehouse_id,
                            quantity: t.warehouse_balance_after,
                        },
                    );
                }
                MovementResult {
                    transactions,
                    levels: levels.into_values().collect(),
                }
            })
        })
        .collect())
}

/// Posts one movement; a refusal becomes its problem answer.
pub async fn post_one(conn: &mut PgConnection, m: &Movement) -> Result<MovementResult> {
    let outcome = post(conn, std::slice::from_ref(m))
        .await?
        .pop()
        .expect("one outcome per movement");
    outcome.map_err(ApiError::from)
}
