//! Planning: what a movement does to the positions it touches, computed in
//! memory against quantities read under the level locks. Pure: no I/O, so
//! the single movement, a scanner batch and a count completion (which all
//! call [`plan`], one movement after the other) give the same answers for the
//! same input, and the FEFO rules are unit-tested here.
//!
//! A refused movement changes nothing: every check happens before the first
//! change to [`State`].

use std::collections::{BTreeMap, HashMap, HashSet};

use rust_decimal::{Decimal, RoundingStrategy};
use time::Date;
use uuid::Uuid;

use super::{Amount, MoveKind, Movement, Refusal};
use crate::{catalog::model::Tracking, stock::model::TransactionKind};

/// (product, warehouse, location, lot).
pub type PosKey = (Uuid, Uuid, Uuid, Option<Uuid>);
pub type LevelKey = (Uuid, Uuid);

#[derive(Debug, Clone, Copy)]
pub struct ProductInfo {
    pub active: bool,
    pub tracking: Tracking,
    /// The catalog's unit cost: what a receipt without a cost into an empty
    /// level is valued at.
    pub unit_cost: Decimal,
}

/// A reservation a movement names (or cancels).
#[derive(Debug, Clone)]
pub struct ReservationInfo {
    pub product_id: Uuid,
    pub warehouse_id: Uuid,
    pub lot: Option<String>,
    pub quantity: i64,
    pub fulfilled: i64,
    /// Active and not past `expires_at`.
    pub open: bool,
}

/// A level under its lock, as planning changes it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LevelState {
    pub quantity: i64,
    /// Promised to open reservations (expired ones already released).
    pub reserved: i64,
    /// Stock value at the moving average cost.
    pub value: Decimal,
    /// The weighted moving average cost of one unit.
    pub cost: Decimal,
}

impl LevelState {
    pub fn available(&self) -> i64 {
        self.quantity - self.reserved
    }
}

/// Costs and values: exact decimals; the average is rounded half to even at
/// 4 decimals (what `numeric(14, 4)` holds).
pub fn round_cost(c: Decimal) -> Decimal {
    c.round_dp_with_strategy(4, RoundingStrategy::MidpointNearestEven)
}

#[derive(Debug, Clone, Copy)]
pub struct WarehouseInfo {
    pub active: bool,
    pub default_location: Uuid,
}

#[derive(Debug, Clone)]
pub struct LocationInfo {
    pub warehouse_id: Uuid,
    pub code: String,
    pub active: bool,
}

#[derive(Debug, Clone)]
pub struct LotInfo {
    pub id: Uuid,
    pub code: String,
    pub expires_on: Option<Date>,
}

/// What the movements refer to, as the database knows it.
#[derive(Debug, Default)]
pub struct Catalog {
    pub products: HashMap<Uuid, ProductInfo>,
    pub warehouses: HashMap<Uuid, WarehouseInfo>,
    pub locations: HashMap<Uuid, LocationInfo>,
    /// By (product, code).
    pub lots: HashMap<(Uuid, String), LotInfo>,
    pub reservations: HashMap<Uuid, ReservationInfo>,
}

impl Catalog {
    fn lot_by_id(&self, product: Uuid, id: Uuid) -> Option<&LotInfo> {
        self.lots
            .iter()
            .find(|((p, _), l)| *p == product && l.id == id)
            .map(|(_, l)| l)
    }
}

/// Quantities under the level locks; changed as movements are planned.
#[derive(Debug, Default, Clone)]
pub struct State {
    pub positions: BTreeMap<PosKey, i64>,
    pub levels: HashMap<LevelKey, LevelState>,
    /// Reservations changed: id → (fulfilled quantity, status).
    pub reservation_changes: BTreeMap<Uuid, (i64, &'static str)>,
    /// Where each serial number named by the movements is in stock, if it is.
    pub serials: HashMap<(Uuid, String), Option<PosKey>>,
    /// Positions and levels whose quantity changed (to be written).
    pub changed_positions: HashSet<PosKey>,
    pub changed_levels: HashSet<LevelKey>,
    /// Serial numbers whose place changed: None = left stock.
    pub serial_moves: Vec<SerialMove>,
}

#[derive(Debug, Clone)]
pub struct SerialMove {
    pub product_id: Uuid,
    pub serial: String,
    pub from: Option<PosKey>,
    pub to: Option<PosKey>,
}

/// One ledger row to write.
#[derive(Debug, Clone)]
pub struct Row {
    pub id: Uuid,
    pub kind: TransactionKind,
    pub key: PosKey,
    pub quantity: i64,
    pub balance_after: i64,
    pub warehouse_balance_after: i64,
    /// The lot's code (tracked) or the lot given as a note (untracked).
    pub lot: Option<String>,
    pub expires_on: Option<Date>,
    pub serial: Option<String>,
    pub transfer_id: Option<Uuid>,
    /// The cost one unit moved at, and the level's value after the row.
    pub unit_cost: Decimal,
    pub value_after: Decimal,
    pub reservation_id: Option<Uuid>,
}

/// A piece of stock to take: a position and how much (or which serial).
#[derive(Debug, Clone)]
struct Portion {
    key: PosKey,
    quantity: i64,
    serial: Option<String>,
}

/// Plans `m`; on success `state` holds the result and the rows are returned.
pub fn plan(
    cat: &Catalog,
    state: &mut State,
    m: &Movement,
    today: Date,
) -> Result<Vec<Row>, Refusal> {
    let transfer = m.kind == MoveKind::Transfer;
    let product = *cat
        .products
        .get(&m.product_id)
        .ok_or(Refusal::UnknownProduct)?;
    let from_field = if transfer {
        "from_warehouse_id"
    } else {
        "warehouse_id"
    };
    let warehouse = *cat
        .warehouses
        .get(&m.warehouse_id)
        .ok_or(Refusal::UnknownWarehouse { field: from_field })?;
    if !product.active {
        return Err(Refusal::ProductArchived);
    }
    if !warehouse.active {
        return Err(Refusal::WarehouseInactive);
    }
    let location_field = if transfer {
        "from_location_id"
    } else {
        "location_id"
    };
    let location = match m.location_id {
        Some(id) => Some(check_location(cat, id, m.warehouse_id, location_field)?),
        None => None,
    };
    // Where a transfer goes.
    let destination = if transfer {
        let to_w = m.to_warehouse_id.unwrap_or(m.warehouse_id);
        let to = cat.warehouses.get(&to_w).ok_or(Refusal::UnknownWarehouse {
            field: "to_warehouse_id",
        })?;
        if !to.active {
            return Err(Refusal::WarehouseInactive);
        }
        let to_location = match m.to_location_id {
            Some(id) => check_location(cat, id, to_w, "to_location_id")?,
            None => to.default_location,
        };
        Some((to_w, to_location))
    } else {
        None
    };

    // Which dimensions key this product's stock.
    let tracked_lot = product.tracking != Tracking::None;
    // An issue against a reservation of a lot takes that lot.
    let reservation = match m.reservation_id {
        Some(id) => Some(reservation_of(cat, state, m, id)?),
        None => None,
    };
    let lot_code = m
        .lot
        .clone()
        .or_else(|| reservation.as_ref().and_then(|r| r.lot.clone()));
    let lot = match (&lot_code, tracked_lot) {
        (Some(code), true) => Some(
            cat.lots
                .get(&(m.product_id, code.clone()))
                .ok_or_else(|| Refusal::UnknownLot { code: code.clone() })?,
        ),
        _ => None,
    };
    if let (Some(lot), Some(given)) = (lot, m.expires_on) {
        if let Some(known) = lot.expires_on {
            if known != given {
                return Err(Refusal::LotExpiryConflict {
                    code: lot.code.clone(),
                    expires_on: known,
                });
            }
        }
    }
    let level_key = (m.product_id, m.warehouse_id);
    let level = state.levels.get(&level_key).copied().unwrap_or_default();

    // Reservations change `reserved` only.
    match m.kind {
        MoveKind::Reserve => {
            let wanted = match m.amount {
                Amount::Take(q) | Amount::Add(q) => q,
                Amount::Delta(d) | Amount::SetTo(d) => d.abs(),
            };
            let mut available = level.available();
            if let Some(lot) = lot {
                let of_lot: i64 = state
                    .positions
                    .iter()
                    .filter(|(k, _)| {
                        k.0 == m.product_id && k.1 == m.warehouse_id && k.3 == Some(lot.id)
                    })
                    .map(|(_, q)| *q)
                    .sum();
                available = available.min(of_lot);
            }
            if wanted > available {
                return Err(Refusal::InsufficientStock {
                    available: Some(available.max(0)),
                    requested: wanted,
                });
            }
            let l = state.levels.entry(level_key).or_default();
            l.reserved += wanted;
            state.changed_levels.insert(level_key);
            return Ok(Vec::new());
        }
        MoveKind::ReleaseExpired => {
            // Nothing changes but the level is written: that releases its
            // expired reservations (see `repo::write`).
            state.levels.entry(level_key).or_default();
            state.changed_levels.insert(level_key);
            return Ok(Vec::new());
        }
        MoveKind::CancelReservation => {
            let (id, r) = m
                .reservation_id
                .zip(reservation)
                .ok_or(Refusal::UnknownReservation)?;
            let l = state.levels.entry(level_key).or_default();
            l.reserved -= r.quantity - r.fulfilled;
            state.changed_levels.insert(level_key);
            state
                .reservation_changes
                .insert(id, (r.fulfilled, "cancelled"));
            return Ok(Vec::new());
        }
        _ => {}
    }

    let serial_tracked = product.tracking == Tracking::Serial;
    if !serial_tracked && m.serials.len() > 1 {
        return Err(Refusal::NotSerialTracked);
    }

    // The signed change asked for.
    let delta = match m.amount {
        Amount::Add(q) => q,
        Amount::Take(q) => -q,
        Amount::Delta(d) => d,
        Amount::SetTo(n) => {
            let current = if m.location_id.is_some() || lot.is_some() {
                let loc = location.unwrap_or(warehouse.default_location);
                state
                    .positions
                    .get(&(m.product_id, m.warehouse_id, loc, lot.map(|l| l.id)))
                    .copied()
                    .unwrap_or(0)
            } else {
                level.quantity
            };
            if n == current {
                return Err(Refusal::NothingToAdjust { current });
            }
            n - current
        }
    };
    if serial_tracked {
        let distinct: HashSet<&String> = m.serials.iter().collect();
        if distinct.len() != m.serials.len() || m.serials.len() as i64 != delta.abs() {
            return Err(Refusal::SerialsRequired {
                quantity: delta.abs(),
            });
        }
    }
    // Notes carried by rows of untracked products (as v1 kept GS1 extras).
    let note_lot = if tracked_lot { None } else { lot_code.clone() };
    let note_serial = if serial_tracked {
        None
    } else {
        m.serials.first().cloned()
    };

    let kind_in = match m.kind {
        MoveKind::Receipt => TransactionKind::Receipt,
        MoveKind::Issue => TransactionKind::Issue,
        MoveKind::Adjustment => TransactionKind::Adjustment,
        MoveKind::CountAdjustment => TransactionKind::CountAdjustment,
        MoveKind::Transfer
        | MoveKind::Reserve
        | MoveKind::CancelReservation
        | MoveKind::ReleaseExpired => TransactionKind::TransferOut,
    };

    if delta > 0 && !transfer {
        // Adding: one place, known up front.
        if product.tracking == Tracking::Lot && lot.is_none() {
            return Err(Refusal::LotRequired);
        }
        let loc = location.unwrap_or(warehouse.default_location);
        if !cat.locations.get(&loc).is_some_and(|l| l.active) {
            return Err(Refusal::LocationInactive);
        }
        let key = (m.product_id, m.warehouse_id, loc, lot.map(|l| l.id));
        // A receipt at its cost; anything else at the current average (the
        // catalog's cost while the level is empty).
        let cost = m
            .unit_cost
            .map(round_cost)
            .unwrap_or(if level.quantity > 0 {
                level.cost
            } else {
                product.unit_cost
            });
        let meta = RowMeta {
            kind: kind_in,
            lot: lot.map(|l| l.code.clone()).or(note_lot),
            expires_on: lot.and_then(|l| l.expires_on).or(m.expires_on),
            serial: note_serial,
            transfer_id: None,
            reservation_id: None,
        };
        if serial_tracked {
            for s in &m.serials {
                if let Some(Some(_)) = state.serials.get(&(m.product_id, s.clone())) {
                    return Err(Refusal::SerialInStock { serial: s.clone() });
                }
            }
            let rows = m
                .serials
                .iter()
                .map(|s| {
                    state.serials.insert((m.product_id, s.clone()), Some(key));
                    state.serial_moves.push(SerialMove {
                        product_id: m.product_id,
                        serial: s.clone(),
                        from: None,
                        to: Some(key),
                    });
                    let meta = RowMeta {
                        serial: Some(s.clone()),
                        ..meta.clone()
                    };
                    apply(state, key, 1, cost, meta)
                })
                .collect();
            return Ok(rows);
        }
        return Ok(vec![apply(state, key, delta, cost, meta)]);
    }

    // Taking (issues, negative adjustments, count losses, transfers): only
    // what is not promised, plus what the named reservation holds.
    let wanted = delta.abs();
    let consumed = reservation
        .as_ref()
        .map_or(0, |r| (r.quantity - r.fulfilled).min(wanted));
    let allow_expired =
        m.allow_expired || matches!(m.kind, MoveKind::Adjustment | MoveKind::CountAdjustment);
    let exclude = destination
        .filter(|(w, _)| *w == m.warehouse_id)
        .map(|(_, l)| l);
    // Named serials first: "not here" says more than "not enough".
    let serial_portions = if serial_tracked {
        Some(pick_serials(
            state,
            m,
            location,
            lot.map(|l| l.id),
            exclude,
        )?)
    } else {
        None
    };
    let may_take = level.available() + consumed;
    if wanted > may_take {
        return Err(Refusal::InsufficientStock {
            available: Some(may_take.max(0)),
            requested: wanted,
        });
    }
    let portions = match serial_portions {
        Some(p) => p,
        None => pick_fefo(
            cat,
            state,
            m,
            location,
            lot,
            exclude,
            allow_expired,
            wanted,
            today,
        )?,
    };
    if let Some((to_w, to_loc)) = destination {
        if portions
            .iter()
            .any(|p| p.key.1 == to_w && p.key.2 == to_loc)
        {
            return Err(Refusal::SamePlace);
        }
    }
    if let (Some(id), Some(r)) = (m.reservation_id, &reservation) {
        let fulfilled = r.fulfilled + consumed;
        let status = if fulfilled == r.quantity {
            "fulfilled"
        } else {
            "active"
        };
        state.reservation_changes.insert(id, (fulfilled, status));
        let l = state.levels.entry(level_key).or_default();
        l.reserved -= consumed;
    }

    let mut rows = Vec::new();
    for p in portions {
        let lot_info = p.key.3.and_then(|id| cat.lot_by_id(m.product_id, id));
        let meta = RowMeta {
            kind: if transfer {
                TransactionKind::TransferOut
            } else {
                kind_in
            },
            lot: lot_info
                .map(|l| l.code.clone())
                .or_else(|| note_lot.clone()),
            expires_on: lot_info.and_then(|l| l.expires_on).or(m.expires_on),
            serial: p.serial.clone().or_else(|| note_serial.clone()),
            transfer_id: m.transfer_id,
            reservation_id: m.reservation_id,
        };
        // Units leave at the current average; a transfer arrives at that cost.
        let cost = state
            .levels
            .get(&level_key)
            .copied()
            .unwrap_or_default()
            .cost;
        rows.push(apply(state, p.key, -p.quantity, cost, meta.clone()));
        let arrival = destination.map(|(to_w, to_loc)| (m.product_id, to_w, to_loc, p.key.3));
        if let Some(to) = arrival {
            let meta = RowMeta {
                kind: TransactionKind::TransferIn,
                reservation_id: None,
                ..meta
            };
            rows.push(apply(state, to, p.quantity, cost, meta));
        }
        if let Some(s) = &p.serial {
            state.serials.insert((m.product_id, s.clone()), arrival);
            state.serial_moves.push(SerialMove {
                product_id: m.product_id,
                serial: s.clone(),
                from: Some(p.key),
                to: arrival,
            });
        }
    }
    Ok(rows)
}

/// The reservation `id` as planning left it: open, for this product and
/// warehouse.
fn reservation_of(
    cat: &Catalog,
    state: &State,
    m: &Movement,
    id: Uuid,
) -> Result<ReservationInfo, Refusal> {
    let r = cat
        .reservations
        .get(&id)
        .ok_or(Refusal::UnknownReservation)?;
    if r.product_id != m.product_id || r.warehouse_id != m.warehouse_id {
        return Err(Refusal::ReservationMismatch);
    }
    let mut r = r.clone();
    if let Some((fulfilled, status)) = state.reservation_changes.get(&id) {
        r.fulfilled = *fulfilled;
        r.open = *status == "active";
    }
    if !r.open {
        return Err(Refusal::ReservationClosed);
    }
    Ok(r)
}

fn check_location(
    cat: &Catalog,
    id: Uuid,
    warehouse: Uuid,
    field: &'static str,
) -> Result<Uuid, Refusal> {
    match cat.locations.get(&id) {
        Some(l) if l.warehouse_id == warehouse => {
            if l.active {
                Ok(id)
            } else {
                Err(Refusal::LocationInactive)
            }
        }
        _ => Err(Refusal::UnknownLocation { field }),
    }
}

/// The serials named, each from where it is in stock (in this warehouse, at
/// the location and lot if named).
fn pick_serials(
    state: &State,
    m: &Movement,
    location: Option<Uuid>,
    lot: Option<Uuid>,
    exclude: Option<Uuid>,
) -> Result<Vec<Portion>, Refusal> {
    m.serials
        .iter()
        .map(|s| {
            let here = state
                .serials
                .get(&(m.product_id, s.clone()))
                .copied()
                .flatten()
                .filter(|k| {
                    k.1 == m.warehouse_id
                        && location.is_none_or(|l| k.2 == l)
                        && lot.is_none_or(|l| k.3 == Some(l))
                        && exclude.is_none_or(|l| k.2 != l || location.is_some())
                });
            match here {
                Some(key) => Ok(Portion {
                    key,
                    quantity: 1,
                    serial: Some(s.clone()),
                }),
                None => Err(Refusal::SerialNotInStock { serial: s.clone() }),
            }
        })
        .collect()
}

/// First expiring, first out: the positions of (product, warehouse) that
/// match the named location and lot, earliest expiry first, lots without
/// expiry last, then by location code and lot code. Expired lots are skipped
/// unless allowed; naming an expired lot explicitly is refused instead.
#[allow(clippy::too_many_arguments)]
fn pick_fefo(
    cat: &Catalog,
    state: &State,
    m: &Movement,
    location: Option<Uuid>,
    lot: Option<&LotInfo>,
    exclude: Option<Uuid>,
    allow_expired: bool,
    wanted: i64,
    today: Date,
) -> Result<Vec<Portion>, Refusal> {
    if let Some(l) = lot {
        if let Some(e) = l.expires_on.filter(|e| *e < today) {
            if !allow_expired {
                return Err(Refusal::LotExpired {
                    code: l.code.clone(),
                    expires_on: e,
                });
            }
        }
    }
    let from = (m.product_id, m.warehouse_id, Uuid::nil(), None);
    let mut candidates: Vec<(PosKey, i64, Option<Date>, &str, &str)> = state
        .positions
        .range(from..)
        .take_while(|(k, _)| k.0 == m.product_id && k.1 == m.warehouse_id)
        .filter(|(k, q)| {
            **q > 0
                && location.is_none_or(|l| k.2 == l)
                && lot.is_none_or(|l| k.3 == Some(l.id))
                && (location.is_some() || exclude.is_none_or(|x| k.2 != x))
        })
        .filter_map(|(k, q)| {
            let lot_info = k.3.and_then(|id| cat.lot_by_id(m.product_id, id));
            let expires = lot_info.and_then(|l| l.expires_on);
            if !allow_expired && expires.is_some_and(|e| e < today) {
                return None;
            }
            let loc_code = cat.locations.get(&k.2).map_or("", |l| l.code.as_str());
            let lot_code = lot_info.map_or("", |l| l.code.as_str());
            Some((*k, *q, expires, loc_code, lot_code))
        })
        .collect();
    candidates.sort_by(|a, b| {
        (a.2.is_none(), a.2, a.3, a.4, a.0).cmp(&(b.2.is_none(), b.2, b.3, b.4, b.0))
    });
    let available: i64 = candidates.iter().map(|c| c.1).sum();
    if available < wanted {
        return Err(Refusal::InsufficientStock {
            available: Some(available),
            requested: wanted,
        });
    }
    let mut left = wanted;
    let mut portions = Vec::new();
    for (key, q, ..) in candidates {
        if left == 0 {
            break;
        }
        let take = q.min(left);
        left -= take;
        portions.push(Portion {
            key,
            quantity: take,
            serial: None,
        });
    }
    Ok(portions)
}

/// What a ledger row says besides its position and quantity.
#[derive(Debug, Clone)]
struct RowMeta {
    kind: TransactionKind,
    lot: Option<String>,
    expires_on: Option<Date>,
    serial: Option<String>,
    transfer_id: Option<Uuid>,
    reservation_id: Option<Uuid>,
}

/// Changes one position (and its level, quantity and value) by `delta`
/// units at `cost` each, and returns the ledger row. Units added re-average
/// the level's cost; an emptied level is worth nothing (the rounding residue
/// of the average is not carried).
fn apply(state: &mut State, key: PosKey, delta: i64, cost: Decimal, meta: RowMeta) -> Row {
    let position = state.positions.entry(key).or_insert(0);
    *position += delta;
    let balance_after = *position;
    let level = state.levels.entry((key.0, key.1)).or_default();
    level.quantity += delta;
    level.value += Decimal::from(delta) * cost;
    if level.quantity == 0 || level.value < Decimal::ZERO {
        level.value = Decimal::ZERO;
    }
    if delta > 0 {
        level.cost = round_cost(level.value / Decimal::from(level.quantity));
    }
    let (warehouse_balance_after, value_after) = (level.quantity, level.value);
    state.changed_positions.insert(key);
    state.changed_levels.insert((key.0, key.1));
    Row {
        id: Uuid::now_v7(),
        kind: meta.kind,
        key,
        quantity: delta,
        balance_after,
        warehouse_balance_after,
        lot: meta.lot,
        expires_on: meta.expires_on,
        serial: meta.serial,
        transfer_id: meta.transfer_id,
        unit_cost: cost,
        value_after,
        reservation_id: meta.reservation_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stock::engine::Actor;
    use time::macros::date;

    const TODAY: Date = date!(2026 - 12 - 02);

    struct World {
        cat: Catalog,
        state: State,
        p: Uuid,
        w: Uuid,
        a: Uuid,
        b: Uuid,
    }

    fn world(tracking: Tracking) -> World {
        let (p, w, def, a, b) = (
            Uuid::from_u128(1),
            Uuid::from_u128(2),
            Uuid::from_u128(3),
            Uuid::from_u128(4),
            Uuid::from_u128(5),
        );
        let mut cat = Catalog::default();
        cat.products.insert(
            p,
            ProductInfo {
                active: true,
                tracking,
                unit_cost: Decimal::ZERO,
            },
        );
        cat.warehouses.insert(
            w,
            WarehouseInfo {
                active: true,
                default_location: def,
            },
        );
        for (id, code) in [(def, "DEFAULT"), (a, "A-01"), (b, "B-01")] {
            cat.locations.insert(
                id,
                LocationInfo {
                    warehouse_id: w,
                    code: code.into(),
                    active: true,
                },
            );
        }
        World {
            cat,
            state: State::default(),
            p,
            w,
            a,
            b,
        }
    }

    fn lot(world: &mut World, n: u128, code: &str, expires_on: Option<Date>) -> Uuid {
        let id = Uuid::from_u128(100 + n);
        world.cat.lots.insert(
            (world.p, code.into()),
            LotInfo {
                id,
                code: code.into(),
                expires_on,
            },
        );
        id
    }

    fn movement(world: &World, kind: MoveKind, amount: Amount) -> Movement {
        Movement::new(kind, world.p, world.w, amount, Actor::User(Uuid::nil()))
    }

    fn stock(world: &mut World, loc: Uuid, lot: Option<Uuid>, q: i64) {
        world
            .state
            .positions
            .insert((world.p, world.w, loc, lot), q);
        world
            .state
            .levels
            .entry((world.p, world.w))
            .or_default()
            .quantity += q;
    }

    #[test]
    fn fefo_takes_earliest_expiry_first_skips_expired_and_no_expiry_last() {
        let mut w = world(Tracking::Lot);
        let expired = lot(&mut w, 1, "OLD", Some(date!(2026 - 11 - 30)));
        let late = lot(&mut w, 2, "LATE", Some(date!(2027 - 06 - 01)));
        let soon = lot(&mut w, 3, "SOON", Some(date!(2026 - 12 - 20)));
        let never = lot(&mut w, 4, "NONE", None);
        let (a, b) = (w.a, w.b);
        stock(&mut w, a, Some(expired), 5);
        stock(&mut w, b, Some(late), 5);
        stock(&mut w, b, Some(soon), 3);
        stock(&mut w, a, Some(never), 10);
        let m = movement(&w, MoveKind::Issue, Amount::Take(12));
        let rows = plan(&w.cat, &mut w.state, &m, TODAY).unwrap();
        let taken: Vec<(Option<Uuid>, i64)> = rows.iter().map(|r| (r.key.3, r.quantity)).collect();
        assert_eq!(
            taken,
            vec![(Some(soon), -3), (Some(late), -5), (Some(never), -4)]
        );
        assert_eq!(w.state.levels[&(w.p, w.w)].quantity, 23 - 12);
        assert_eq!(rows.last().unwrap().warehouse_balance_after, 11);
        assert_eq!(rows.last().unwrap().balance_after, 6);
        // The expired lot is not counted as available...
        let too_much = movement(&w, MoveKind::Issue, Amount::Take(7));
        assert_eq!(
            plan(&w.cat, &mut w.state, &too_much, TODAY).unwrap_err(),
            Refusal::InsufficientStock {
                available: Some(6),
                requested: 7
            }
        );
        // ...unless allowed, and then it goes first.
        let mut allowed = movement(&w, MoveKind::Issue, Amount::Take(7));
        allowed.allow_expired = true;
        let rows = plan(&w.cat, &mut w.state, &allowed, TODAY).unwrap();
        assert_eq!(rows[0].key.3, Some(expired));
        assert_eq!(rows[0].quantity, -5);
    }

    #[test]
    fn lot_tracked_receipt_needs_a_lot_and_one_expiry() {
        let mut w = world(Tracking::Lot);
        let m = movement(&w, MoveKind::Receipt, Amount::Add(1));
        assert_eq!(
            plan(&w.cat, &mut w.state, &m, TODAY).unwrap_err(),
            Refusal::LotRequired
        );
        lot(&mut w, 1, "L1", Some(date!(2027 - 01 - 01)));
        let mut m = movement(&w, MoveKind::Receipt, Amount::Add(1));
        m.lot = Some("L1".into());
        m.expires_on = Some(date!(2027 - 02 - 01));
        assert!(matches!(
            plan(&w.cat, &mut w.state, &m, TODAY),
            Err(Refusal::LotExpiryConflict { .. })
        ));
        assert!(
            w.state.changed_positions.is_empty(),
            "a refusal changes nothing"
        );
    }

    #[test]
    fn serials_are_in_stock_once_and_issued_by_name() {
        let mut w = world(Tracking::Serial);
        let mut m = movement(&w, MoveKind::Receipt, Amount::Add(2));
        m.serials = vec!["S1".into(), "S2".into()];
        let rows = plan(&w.cat, &mut w.state, &m, TODAY).unwrap();
        assert_eq!(rows.len(), 2);
        let again = plan(&w.cat, &mut w.state, &m, TODAY).unwrap_err();
        assert_eq!(
            again,
            Refusal::SerialInStock {
                serial: "S1".into()
            }
        );
        let mut out = movement(&w, MoveKind::Issue, Amount::Take(1));
        out.serials = vec!["S3".into()];
        assert_eq!(
            plan(&w.cat, &mut w.state, &out, TODAY).unwrap_err(),
            Refusal::SerialNotInStock {
                serial: "S3".into()
            }
        );
        out.serials = vec!["S2".into()];
        plan(&w.cat, &mut w.state, &out, TODAY).unwrap();
        assert_eq!(w.state.levels[&(w.p, w.w)].quantity, 1);
        let short = movement(&w, MoveKind::Issue, Amount::Take(1));
        assert_eq!(
            plan(&w.cat, &mut w.state, &short, TODAY).unwrap_err(),
            Refusal::SerialsRequired { quantity: 1 }
        );
    }

    #[test]
    fn transfer_between_locations_keeps_the_lot() {
        let mut w = world(Tracking::Lot);
        let l1 = lot(&mut w, 1, "L1", None);
        let (a, b) = (w.a, w.b);
        stock(&mut w, a, Some(l1), 4);
        let mut m = movement(&w, MoveKind::Transfer, Amount::Take(3));
        m.to_location_id = Some(b);
        m.transfer_id = Some(Uuid::from_u128(9));
        let rows = plan(&w.cat, &mut w.state, &m, TODAY).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].key.2, rows[0].quantity), (a, -3));
        assert_eq!(
            (rows[1].key.2, rows[1].key.3, rows[1].quantity),
            (b, Some(l1), 3)
        );
        assert_eq!(w.state.levels[&(w.p, w.w)].quantity, 4);
        // Nothing left to move to where it already is.
        let mut back = movement(&w, MoveKind::Transfer, Amount::Take(3));
        back.location_id = Some(b);
        back.to_location_id = Some(b);
        assert_eq!(
            plan(&w.cat, &mut w.state, &back, TODAY).unwrap_err(),
            Refusal::SamePlace
        );
    }

    #[test]
    fn set_to_without_a_place_sets_the_warehouse_level() {
        let mut w = world(Tracking::None);
        let (a, def) = (w.a, w.cat.warehouses[&w.w].default_location);
        stock(&mut w, a, None, 2);
        stock(&mut w, def, None, 5);
        let m = movement(&w, MoveKind::Adjustment, Amount::SetTo(4));
        let rows = plan(&w.cat, &mut w.state, &m, TODAY).unwrap();
        assert_eq!(rows.iter().map(|r| r.quantity).sum::<i64>(), -3);
        assert_eq!(w.state.levels[&(w.p, w.w)].quantity, 4);
        assert_eq!(
            plan(&w.cat, &mut w.state, &m, TODAY).unwrap_err(),
            Refusal::NothingToAdjust { current: 4 }
        );
    }

    #[test]
    fn moving_average_worked_example() {
        let mut w = world(Tracking::None);
        let at = |cost: &str| {
            let mut m = movement(&w, MoveKind::Receipt, Amount::Add(10));
            m.unit_cost = Some(cost.parse().unwrap());
            m
        };
        let (first, second) = (at("2.00"), at("4.00"));
        plan(&w.cat, &mut w.state, &first, TODAY).unwrap();
        plan(&w.cat, &mut w.state, &second, TODAY).unwrap();
        let issue = movement(&w, MoveKind::Issue, Amount::Take(5));
        let rows = plan(&w.cat, &mut w.state, &issue, TODAY).unwrap();
        assert_eq!(rows[0].unit_cost, Decimal::new(3, 0));
        assert_eq!(rows[0].value_after, Decimal::new(45, 0));
        let level = w.state.levels[&(w.p, w.w)];
        assert_eq!((level.quantity, level.cost), (15, Decimal::new(3, 0)));
        // Half to even at 4 decimals: 10 @ 1 + 1 @ 0.0005 → 10.0005 / 11.
        let mut odd = movement(&w, MoveKind::Receipt, Amount::Add(1));
        odd.unit_cost = Some("0.0005".parse().unwrap());
        plan(&w.cat, &mut w.state, &odd, TODAY).unwrap();
        assert_eq!(
            w.state.levels[&(w.p, w.w)].cost,
            round_cost(Decimal::new(450005, 4) / Decimal::from(16))
        );
        assert_eq!(round_cost("0.00005".parse().unwrap()), Decimal::ZERO);
        assert_eq!(
            round_cost("0.00015".parse().unwrap()),
            "0.0002".parse().unwrap()
        );
    }

    #[test]
    fn reserved_stock_is_only_taken_by_its_reservation() {
        let mut w = world(Tracking::None);
        let def = w.cat.warehouses[&w.w].default_location;
        stock(&mut w, def, None, 10);
        let mut reserve = movement(&w, MoveKind::Reserve, Amount::Take(8));
        plan(&w.cat, &mut w.state, &reserve, TODAY).unwrap();
        assert_eq!(w.state.levels[&(w.p, w.w)].reserved, 8);
        reserve.amount = Amount::Take(3);
        assert_eq!(
            plan(&w.cat, &mut w.state, &reserve, TODAY).unwrap_err(),
            Refusal::InsufficientStock {
                available: Some(2),
                requested: 3
            }
        );
        let issue = movement(&w, MoveKind::Issue, Amount::Take(3));
        assert_eq!(
            plan(&w.cat, &mut w.state, &issue, TODAY).unwrap_err(),
            Refusal::InsufficientStock {
                available: Some(2),
                requested: 3
            }
        );
        let id = Uuid::from_u128(77);
        w.cat.reservations.insert(
            id,
            ReservationInfo {
                product_id: w.p,
                warehouse_id: w.w,
                lot: None,
                quantity: 8,
                fulfilled: 0,
                open: true,
            },
        );
        let mut against = movement(&w, MoveKind::Issue, Amount::Take(5));
        against.reservation_id = Some(id);
        plan(&w.cat, &mut w.state, &against, TODAY).unwrap();
        assert_eq!(w.state.reservation_changes[&id], (5, "active"));
        assert_eq!(w.state.levels[&(w.p, w.w)].reserved, 3);
        against.amount = Amount::Take(4);
        plan(&w.cat, &mut w.state, &against, TODAY).unwrap();
        assert_eq!(w.state.reservation_changes[&id], (8, "fulfilled"));
        assert_eq!(
            w.state.levels[&(w.p, w.w)],
            LevelState {
                quantity: 1,
                reserved: 0,
                ..w.state.levels[&(w.p, w.w)]
            }
        );
        assert_eq!(
            plan(&w.cat, &mut w.state, &against, TODAY).unwrap_err(),
            Refusal::ReservationClosed
        );
    }
}
