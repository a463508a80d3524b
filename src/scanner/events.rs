//! Scan events: what a handheld sends, processed in order, each answered.
//!
//! Single events and batches share [`process`]: a single event is a batch of
//! one. A batch is one transaction, in named phases (each traced):
//! [`parse_scans`] → [`resolve`] (barcodes and location labels, one query
//! each) → [`apply_movements`] (the movement engine, `stock::engine`, posts
//! receive/issue scans; count scans go to their session) → [`answer`] →
//! [`record_outcomes`] (every new outcome, rejections included, stored with
//! its event in one INSERT).
//!
//! `(device_id, event_id)` is unique, so if a concurrent copy of the batch
//! stored some of the same events first (its INSERT wins, ours skips them),
//! this attempt rolls back and runs again, now seeing them as duplicates:
//! nothing is ever applied twice. Level locks are taken before the INSERT in
//! one global order, so copies of a batch serialise instead of deadlocking.

use std::collections::HashMap;

use opentelemetry::KeyValue;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{
    gs1,
    model::{ProductSummary, ScanAction, ScanEvent, ScanResult, ScanStatus},
    repo::{self, NewOutcome, Resolved},
};
use crate::{
    catalog::barcode,
    error::{ApiError, Result},
    state::AppState,
    stock::{
        self,
        blind::Blind,
        engine::{self, Actor, Amount, MoveKind, Movement, Outcome},
    },
    telemetry,
};

pub const MAX_BATCH: usize = 500;
/// Most scans one event may stand for.
const MAX_SCAN_QUANTITY: i32 = 10_000;
/// How often a batch is retried after losing a race with a copy of itself.
const ATTEMPTS: usize = 3;

/// A scan decoded into a catalog key and GS1 extras.
#[derive(Debug, Default, Clone)]
pub struct Decoded {
    key: String,
    lot: Option<String>,
    expires_on: Option<time::Date>,
    serial: Option<String>,
    count: Option<u32>,
}

fn decode(raw: &str) -> Result<Decoded, String> {
    match gs1::parse(raw) {
        Ok(Some(data)) => {
            let gtin = data
                .gtin
                .ok_or_else(|| "GS1 scan without a GTIN (AI 01 or 02)".to_owned())?;
            let key = barcode::parse(&gtin)
                .map_err(|e| format!("invalid GTIN: {e}"))?
                .key;
            if let Some(code) = data
                .lot
                .iter()
                .chain(&data.serial)
                .find(|c| !stock::is_code(c))
            {
                return Err(format!(
                    "GS1 lot or serial {code:?} holds characters stock cannot keep"
                ));
            }
            Ok(Decoded {
                key,
                lot: data.lot,
                expires_on: data.expiry,
                serial: data.serial,
                count: data.count,
            })
        }
        Ok(None) => barcode::parse(raw)
            .map(|b| Decoded {
                key: b.key,
                ..Decoded::default()
            })
            .map_err(|e| format!("invalid barcode: {e}")),
        Err(e) => Err(format!("invalid GS1 scan: {e}")),
    }
}

fn rejected(event_id: Uuid, reason: impl Into<String>) -> ScanResult {
    ScanResult {
        event_id,
        status: ScanStatus::Rejected,
        reason: Some(reason.into()),
        transaction_id: None,
        product: None,
        units: None,
        level: None,
        lot: None,
        expires_on: None,
        serial: None,
        location_id: None,
    }
}

/// Processes scan events of `device` in order and answers each. With
/// `hide_blind` ([`stock::blind::hides_blind_counts`] of whoever posts), the
/// answers leave out the levels an open blind count covers.
pub async fn process(
    state: &AppState,
    device: Uuid,
    warehouses: &[Uuid],
    events: &[ScanEvent],
    hide_blind: bool,
) -> Result<Vec<ScanResult>> {
    if events.is_empty() || events.len() > MAX_BATCH {
        return Err(ApiError::field(
            "events",
            format!("must hold 1-{MAX_BATCH} events"),
        ));
    }
    for _ in 0..ATTEMPTS {
        if let Some(results) = attempt(state, device, warehouses, events, hide_blind).await? {
            touch_device(state, device).await;
            let metrics = telemetry::metrics();
            for (r, e) in results.iter().zip(events) {
                let status = match r.status {
                    ScanStatus::Applied => "applied",
                    ScanStatus::Duplicate => "duplicate",
                    ScanStatus::Rejected => "rejected",
                };
                metrics.scan_events.add(
                    1,
                    &[
                        KeyValue::new("action", e.action.as_str()),
                        KeyValue::new("status", status),
                    ],
                );
            }
            return Ok(results);
        }
    }
    Err(ApiError::Internal(anyhow::anyhow!(
        "scan batch lost {ATTEMPTS} races with copies of itself"
    )))
}

/// Records that a device was seen, at most once a minute per device and
/// outside the batch's transaction: every event of a device touching its row
/// inside the transaction would serialise all of them on that row lock.
async fn touch_device(state: &AppState, device: Uuid) {
    use std::{
        sync::{Mutex, OnceLock},
        time::{Duration, Instant},
    };
    static SEEN: OnceLock<Mutex<HashMap<Uuid, Instant>>> = OnceLock::new();
    let due = {
        let mut seen = SEEN
            .get_or_init(Default::default)
            .lock()
            .expect("lock not poisoned");
        let due = seen
            .get(&device)
            .is_none_or(|at| at.elapsed() > Duration::from_secs(60));
        if due {
            if seen.len() > 10_000 {
                seen.clear();
            }
            seen.insert(device, Instant::now());
        }
        due
    };
    if due {
        if let Err(e) = repo::touch_device(&state.db, device).await {
            crate::db::note_if_lost(&e);
            tracing::warn!(error = %e, "could not record last_seen_at");
        }
    }
}

/// What the batch holds, phase by phase; index = position in the batch.
struct Batch<'a> {
    events: &'a [ScanEvent],
    /// Outcomes stored by earlier calls: those events are duplicates.
    earlier: HashMap<Uuid, ScanResult>,
    /// The first position of each new event id.
    first_at: HashMap<Uuid, usize>,
    decoded: Vec<Option<Decoded>>,
    /// Decided outcomes (rejections before the engine, then everything).
    results: Vec<Option<ScanResult>>,
    /// Product and units of each event that resolved.
    product_of: HashMap<usize, (Resolved, i64)>,
    /// The location a scan named (resolved), if any.
    location_of: HashMap<usize, Uuid>,
    /// Whether answers leave out levels under an open blind count.
    hide_blind: bool,
}

/// One try at a batch; None when a concurrent copy stored some of its events first.
#[tracing::instrument(skip_all, fields(device = %device, events = events.len()))]
async fn attempt(
    state: &AppState,
    device: Uuid,
    warehouses: &[Uuid],
    events: &[ScanEvent],
    hide_blind: bool,
) -> Result<Option<Vec<ScanResult>>> {
    let mut tx = engine::begin(&state.db).await?;
    let ids: Vec<Uuid> = events.iter().map(|e| e.event_id).collect();
    let mut batch = Batch {
        events,
        earlier: repo::earlier_outcomes(&mut tx, device, &ids).await?,
        first_at: HashMap::new(),
        decoded: vec![None; events.len()],
        results: vec![None; events.len()],
        product_of: HashMap::new(),
        location_of: HashMap::new(),
        hide_blind,
    };
    parse_scans(&mut batch, warehouses);
    resolve(&mut tx, &mut batch).await?;
    let applied = apply_movements(&mut tx, &mut batch, device).await?;
    answer(&mut tx, &mut batch, &applied).await?;
    if !record_outcomes(&mut tx, &batch, device).await? {
        tracing::info!(device = %device, "a copy of this scan batch won the race; retrying");
        return Ok(None); // dropping tx rolls everything back
    }
    tx.commit().await?;
    Ok(Some(duplicates_answered(batch)))
}

/// Decides what each new event is (first occurrence in this batch only):
/// checks the warehouse, the quantity and the count id, and decodes the scan.
#[tracing::instrument(skip_all)]
fn parse_scans(batch: &mut Batch<'_>, warehouses: &[Uuid]) {
    for (i, e) in batch.events.iter().enumerate() {
        if batch.earlier.contains_key(&e.event_id) || batch.first_at.contains_key(&e.event_id) {
            continue;
        }
        batch.first_at.insert(e.event_id, i);
        let quantity = e.quantity.unwrap_or(1);
        let check = if !warehouses.contains(&e.warehouse_id) {
            Err("wrong warehouse: this device may not post for it".to_owned())
        } else if !(1..=MAX_SCAN_QUANTITY).contains(&quantity) {
            Err(format!(
                "quantity must be between 1 and {MAX_SCAN_QUANTITY}"
            ))
        } else if e.action == ScanAction::Count && e.count_id.is_none() {
            Err("count events need a count_id".to_owned())
        } else {
            decode(&e.barcode)
        };
        match check {
            Ok(d) => batch.decoded[i] = Some(d),
            Err(reason) => batch.results[i] = Some(rejected(e.event_id, reason)),
        }
    }
}

/// Resolves every barcode and every location label, one query each.
#[tracing::instrument(skip_all)]
async fn resolve(conn: &mut PgConnection, batch: &mut Batch<'_>) -> Result<()> {
    let keys: Vec<String> = batch
        .decoded
        .iter()
        .flatten()
        .map(|d| d.key.clone())
        .collect();
    let products = repo::products_by_key(conn, &keys).await?;
    let labels: Vec<(Uuid, String)> = batch
        .events
        .iter()
        .enumerate()
        .filter(|(i, _)| batch.decoded[*i].is_some())
        .filter_map(|(_, e)| e.location.clone().map(|l| (e.warehouse_id, l)))
        .collect();
    let locations = repo::locations_by_label(conn, &labels).await?;
    for (i, e) in batch.events.iter().enumerate() {
        let Some(d) = &batch.decoded[i] else { continue };
        let Some(product) = products.get(&d.key) else {
            batch.results[i] = Some(rejected(e.event_id, "unknown barcode"));
            continue;
        };
        if let Some(label) = &e.location {
            match locations.get(&(e.warehouse_id, label.clone())) {
                Some(id) => {
                    batch.location_of.insert(i, *id);
                }
                None => {
                    batch.results[i] = Some(rejected(
                        e.event_id,
                        "unknown location: no location with this barcode or code in the warehouse",
                    ));
                    continue;
                }
            }
        }
        let units = i64::from(e.quantity.unwrap_or(1))
            * i64::from(product.pack_quantity)
            * i64::from(d.count.unwrap_or(1).max(1));
        batch.product_of.insert(i, (product.clone(), units));
    }
    Ok(())
}

/// What the engine and the count sessions made of the events.
struct Applied {
    /// Engine outcome of each receive/issue event.
    movements: HashMap<usize, Outcome>,
    /// Rejection reason of each refused count event.
    counts_refused: HashMap<usize, String>,
}

/// Receive and issue scans post through the movement engine, in event order;
/// GS1 lot, expiry and serial are the movement's. Count scans add to their session.
#[tracing::instrument(skip_all)]
async fn apply_movements(
    conn: &mut PgConnection,
    batch: &mut Batch<'_>,
    device: Uuid,
) -> Result<Applied> {
    let mut movements = Vec::new();
    let mut movement_of = Vec::new();
    let mut counts = Vec::new();
    for (i, e) in batch.events.iter().enumerate() {
        if batch.results[i].is_some() {
            continue;
        }
        let (Some((product, units)), Some(d)) = (batch.product_of.get(&i), &batch.decoded[i])
        else {
            continue;
        };
        let location = batch.location_of.get(&i).copied();
        match e.action {
            ScanAction::Receive | ScanAction::Issue => {
                let (kind, amount) = if e.action == ScanAction::Receive {
                    (MoveKind::Receipt, Amount::Add(*units))
                } else {
                    (MoveKind::Issue, Amount::Take(*units))
                };
                let mut m = Movement::new(
                    kind,
                    product.id,
                    e.warehouse_id,
                    amount,
                    Actor::Device(device),
                );
                m.location_id = location;
                m.lot = d.lot.clone();
                m.expires_on = d.expires_on;
                m.serials = d.serial.iter().cloned().collect();
                movement_of.push(i);
                movements.push(m);
            }
            ScanAction::Count => counts.push(super::counts::CountScan {
                index: i,
                count_id: e.count_id.expect("checked in parse_scans"),
                product_id: product.id,
                location_id: location,
                lot: d.lot.clone(),
                units: *units,
            }),
            ScanAction::Lookup => {}
        }
    }
    let outcomes = engine::post(conn, &movements).await?;
    for (m, outcome) in movements.iter().zip(&outcomes) {
        stock::record(m.kind, &outcome.as_ref());
    }
    let counts_refused = super::counts::record_scans(conn, device, &counts, batch.events).await?;
    Ok(Applied {
        movements: movement_of.into_iter().zip(outcomes).collect(),
        counts_refused,
    })
}

/// Builds the answer of every new event that got this far. A level an open
/// blind count hides from the poster is left out of it (`level`, and the
/// figure of an insufficient-stock reason); the outcome is stored as
/// answered, so a resend replays no more than the first answer told.
#[tracing::instrument(skip_all)]
async fn answer(conn: &mut PgConnection, batch: &mut Batch<'_>, applied: &Applied) -> Result<()> {
    let blind = Blind::of(
        &mut *conn,
        batch.hide_blind,
        batch
            .product_of
            .iter()
            .map(|(&i, (product, _))| (product.id, batch.events[i].warehouse_id)),
    )
    .await?;
    // A lookup reports the level at its place in the sequence: the level after
    // the batch minus what later events of the batch moved.
    let lookups: Vec<usize> = (0..batch.events.len())
        .filter(|i| batch.results[*i].is_none() && batch.events[*i].action == ScanAction::Lookup)
        .filter(|i| batch.product_of.contains_key(i))
        .collect();
    let pairs: Vec<(Uuid, Uuid)> = lookups
        .iter()
        .map(|&i| (batch.product_of[&i].0.id, batch.events[i].warehouse_id))
        .collect();
    let final_levels = repo::levels(conn, &pairs).await?;
    let mut lookup_levels: HashMap<usize, i64> = HashMap::new();
    for (&i, pair) in lookups.iter().zip(&pairs) {
        let later: i64 = applied
            .movements
            .iter()
            .filter(|(&j, _)| j > i)
            .filter_map(|(_, o)| o.as_ref().ok())
            .flat_map(|r| &r.transactions)
            .filter(|t| (t.product_id, t.warehouse_id) == *pair)
            .map(|t| t.quantity)
            .sum();
        lookup_levels.insert(i, final_levels.get(pair).copied().unwrap_or(0) - later);
    }

    for (i, e) in batch.events.iter().enumerate() {
        if batch.results[i].is_some() {
            continue;
        }
        let Some((product, units)) = batch.product_of.get(&i) else {
            continue;
        };
        let d = batch.decoded[i].as_ref().expect("decoded");
        let mut r = ScanResult {
            event_id: e.event_id,
            status: ScanStatus::Applied,
            reason: None,
            transaction_id: None,
            product: Some(ProductSummary {
                id: product.id,
                sku: product.sku.clone(),
                name: product.name.clone(),
                unit: product.unit.clone(),
            }),
            units: Some(*units),
            level: None,
            lot: d.lot.clone(),
            expires_on: d.expires_on,
            serial: d.serial.clone(),
            location_id: batch.location_of.get(&i).copied(),
        };
        if let Some(outcome) = applied.movements.get(&i) {
            match outcome {
                Ok(done) => {
                    let first = done.transactions.first();
                    let last = done.transactions.last();
                    r.transaction_id = first.map(|t| t.id);
                    r.level = last.and_then(|t| t.warehouse_balance_after);
                    r.location_id = r.location_id.or(first.map(|t| t.location_id));
                    r.expires_on = r.expires_on.or(first.and_then(|t| t.expires_on));
                }
                Err(refusal) => {
                    r.status = ScanStatus::Rejected;
                    r.reason = Some(
                        blind
                            .refusal(product.id, e.warehouse_id, refusal.clone())
                            .reason(),
                    );
                }
            }
        } else if e.action == ScanAction::Count {
            if let Some(reason) = applied.counts_refused.get(&i) {
                r.status = ScanStatus::Rejected;
                r.reason = Some(reason.clone());
            }
        } else {
            r.level = lookup_levels.get(&i).copied();
        }
        if blind.covers(product.id, e.warehouse_id) {
            r.level = None;
        }
        batch.results[i] = Some(r);
    }
    Ok(())
}

/// Stores every new event with its outcome; false when a concurrent copy of
/// the batch stored some of them first (the caller rolls back and retries).
#[tracing::instrument(skip_all)]
async fn record_outcomes(conn: &mut PgConnection, batch: &Batch<'_>, device: Uuid) -> Result<bool> {
    let mut fresh: Vec<(Uuid, usize)> = batch.first_at.iter().map(|(id, i)| (*id, *i)).collect();
    fresh.sort();
    let outcomes: Vec<NewOutcome<'_>> = fresh
        .iter()
        .map(|&(id, i)| {
            let e = &batch.events[i];
            NewOutcome {
                event_id: id,
                barcode: e.barcode.chars().take(512).collect(),
                action: e.action.as_str(),
                quantity: e.quantity.unwrap_or(1),
                warehouse_id: e.warehouse_id,
                count_id: e.count_id,
                scanned_at: e.scanned_at,
                result: batch.results[i]
                    .as_ref()
                    .expect("every new event has a result"),
            }
        })
        .collect();
    Ok(repo::store_outcomes(conn, device, &outcomes).await? == outcomes.len())
}

/// Duplicates answer with the first outcome.
fn duplicates_answered(batch: Batch<'_>) -> Vec<ScanResult> {
    batch
        .events
        .iter()
        .enumerate()
        .map(|(i, e)| match &batch.results[i] {
            Some(r) => r.clone(),
            None => {
                let first = match batch.first_at.get(&e.event_id) {
                    Some(&j) => batch.results[j].clone(),
                    None => batch.earlier.get(&e.event_id).cloned(),
                };
                let mut r =
                    first.unwrap_or_else(|| rejected(e.event_id, "duplicate of an unknown event"));
                r.status = ScanStatus::Duplicate;
                r
            }
        })
        .collect()
}
