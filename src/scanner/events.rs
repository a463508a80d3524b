//! Scan events: what a handheld sends, processed in order, each answered.
//!
//! Single events and batches share [`process`]: a single event is a batch of
//! one. A batch is one transaction: events already stored are answered from
//! their stored outcome (`duplicate`), barcodes are resolved in one query,
//! stock moves through the ledger's set-based path (`stock::batch`), and every
//! new outcome, rejections included, is stored with its event in one INSERT.
//! `(device_id, event_id)` is unique, so if a concurrent copy of the batch
//! stored some of the same events first (its INSERT wins, ours skips them),
//! this attempt rolls back and runs again, now seeing them as duplicates:
//! nothing is ever applied twice. Level locks are taken before the INSERT in
//! one global order, so copies of a batch serialise instead of deadlocking.

use std::collections::HashMap;

use opentelemetry::KeyValue;
use uuid::Uuid;

use super::{
    gs1,
    model::{ProductSummary, ScanAction, ScanEvent, ScanResult, ScanStatus},
};
use crate::{
    catalog::barcode,
    error::{ApiError, Result},
    state::AppState,
    stock::{
        batch::{apply_batch, LegOutcome},
        model::TransactionKind,
        repo::{Actor, Leg},
    },
    telemetry,
};

pub const MAX_BATCH: usize = 500;
/// Most scans one event may stand for.
const MAX_SCAN_QUANTITY: i32 = 10_000;

/// A scan decoded into a catalog key and GS1 extras.
#[derive(Debug, Default)]
struct Decoded {
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

fn refusal_reason(e: &ApiError) -> String {
    match e {
        ApiError::InsufficientStock { available, .. } => {
            format!("insufficient stock: {available} available")
        }
        ApiError::Conflict {
            slug: "product-archived",
            ..
        } => "archived product".into(),
        ApiError::Conflict {
            slug: "warehouse-inactive",
            ..
        } => "inactive warehouse".into(),
        ApiError::Validation(errors) => errors
            .iter()
            .map(|f| format!("{}: {}", f.field, f.message))
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
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
    }
}

/// A product a barcode resolved to.
#[derive(Clone, sqlx::FromRow)]
struct Resolved {
    lookup_key: String,
    pack_quantity: i32,
    id: Uuid,
    sku: String,
    name: String,
    unit: String,
}

/// An outcome stored with its event, as a resend is answered.
#[derive(sqlx::FromRow)]
struct Stored {
    event_id: Uuid,
    status: String,
    reason: Option<String>,
    transaction_id: Option<Uuid>,
    units: Option<i64>,
    level: Option<i64>,
    lot: Option<String>,
    expires_on: Option<time::Date>,
    serial: Option<String>,
    product_id: Option<Uuid>,
    sku: Option<String>,
    name: Option<String>,
    unit: Option<String>,
}

impl Stored {
    fn into_result(self) -> ScanResult {
        ScanResult {
            event_id: self.event_id,
            status: if self.status == "applied" {
                ScanStatus::Applied
            } else {
                ScanStatus::Rejected
            },
            reason: self.reason,
            transaction_id: self.transaction_id,
            product: match (self.product_id, self.sku, self.name, self.unit) {
                (Some(id), Some(sku), Some(name), Some(unit)) => Some(ProductSummary {
                    id,
                    sku,
                    name,
                    unit,
                }),
                _ => None,
            },
            units: self.units,
            level: self.level,
            lot: self.lot,
            expires_on: self.expires_on,
            serial: self.serial,
        }
    }
}

/// How often a batch is retried after losing a race with a copy of itself.
const ATTEMPTS: usize = 3;

/// Processes scan events of `device` in order and answers each.
pub async fn process(
    state: &AppState,
    device: Uuid,
    warehouses: &[Uuid],
    events: &[ScanEvent],
) -> Result<Vec<ScanResult>> {
    if events.is_empty() || events.len() > MAX_BATCH {
        return Err(ApiError::field(
            "events",
            format!("must hold 1-{MAX_BATCH} events"),
        ));
    }
    for _ in 0..ATTEMPTS {
        if let Some(results) = attempt(state, device, warehouses, events).await? {
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
        let done = sqlx::query("UPDATE devices SET last_seen_at = now() WHERE id = $1")
            .bind(device)
            .execute(&state.db)
            .await;
        if let Err(e) = done {
            tracing::warn!(error = %e, "could not record last_seen_at");
        }
    }
}

/// One try at a batch; None when a concurrent copy stored some of its events first.
async fn attempt(
    state: &AppState,
    device: Uuid,
    warehouses: &[Uuid],
    events: &[ScanEvent],
) -> Result<Option<Vec<ScanResult>>> {
    let mut tx = state.db.begin().await?;

    // 1. Outcomes already stored: those events are duplicates.
    let ids: Vec<Uuid> = events.iter().map(|e| e.event_id).collect();
    let earlier: HashMap<Uuid, ScanResult> = sqlx::query_as::<_, Stored>(
        "SELECT s.event_id, s.status, s.reason, s.transaction_id, s.units, s.level, s.lot, s.expires_on,
                s.serial, p.id AS product_id, p.sku, p.name, p.unit
         FROM scan_events s LEFT JOIN products p ON p.id = s.product_id
         WHERE s.device_id = $1 AND s.event_id = ANY($2)",
    )
    .bind(device)
    .bind(&ids)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|s| (s.event_id, s.into_result()))
    .collect();

    // 2. Decide what each new event is (first occurrence in this batch only).
    let mut results: Vec<Option<ScanResult>> = vec![None; events.len()];
    let mut first_at: HashMap<Uuid, usize> = HashMap::new();
    let mut decoded: Vec<Option<Decoded>> = (0..events.len()).map(|_| None).collect();
    for (i, e) in events.iter().enumerate() {
        if earlier.contains_key(&e.event_id) || first_at.contains_key(&e.event_id) {
            continue;
        }
        first_at.insert(e.event_id, i);
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
            Ok(d) => decoded[i] = Some(d),
            Err(reason) => results[i] = Some(rejected(e.event_id, reason)),
        }
    }

    // 3. Resolve every barcode in one query.
    let keys: Vec<String> = decoded.iter().flatten().map(|d| d.key.clone()).collect();
    let resolved: HashMap<String, Resolved> = sqlx::query_as::<_, Resolved>(
        "SELECT b.lookup_key, b.pack_quantity, p.id, p.sku, p.name, p.unit
         FROM product_barcodes b JOIN products p ON p.id = b.product_id
         WHERE b.lookup_key = ANY($1)",
    )
    .bind(&keys)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|r| (r.lookup_key.clone(), r))
    .collect();

    // 4. Build the movements, counts and lookups.
    let mut legs: Vec<Leg> = Vec::new();
    let mut leg_of: HashMap<usize, usize> = HashMap::new();
    let mut counts: Vec<(usize, Uuid, Uuid, i64)> = Vec::new();
    let mut lookups: Vec<usize> = Vec::new();
    let mut product_of: HashMap<usize, (Resolved, i64)> = HashMap::new();
    for (i, e) in events.iter().enumerate() {
        let Some(d) = &decoded[i] else { continue };
        let Some(product) = resolved.get(&d.key) else {
            results[i] = Some(rejected(e.event_id, "unknown barcode"));
            continue;
        };
        let units = i64::from(e.quantity.unwrap_or(1))
            * i64::from(product.pack_quantity)
            * i64::from(d.count.unwrap_or(1).max(1));
        product_of.insert(i, (product.clone(), units));
        match e.action {
            ScanAction::Receive | ScanAction::Issue => {
                let (kind, delta) = if e.action == ScanAction::Receive {
                    (TransactionKind::Receipt, units)
                } else {
                    (TransactionKind::Issue, -units)
                };
                let mut leg = Leg::new(
                    kind,
                    product.id,
                    e.warehouse_id,
                    delta,
                    Actor::Device(device),
                );
                leg.lot = d.lot.clone();
                leg.expires_on = d.expires_on;
                leg.serial = d.serial.clone();
                leg_of.insert(i, legs.len());
                legs.push(leg);
            }
            ScanAction::Count => {
                counts.push((i, e.count_id.expect("checked above"), product.id, units))
            }
            ScanAction::Lookup => lookups.push(i),
        }
    }

    // 5. Stock moves through the ledger, in event order.
    let outcomes = apply_batch(&mut tx, &legs).await?;
    let counted = super::counts::record_scans(&mut tx, device, &counts, events).await?;

    // A lookup reports the level at its place in the sequence: the level after
    // the batch minus what later events of the batch moved.
    let lookup_pairs: Vec<(Uuid, Uuid)> = lookups
        .iter()
        .map(|&i| (product_of[&i].0.id, events[i].warehouse_id))
        .collect();
    let final_levels = level_of_pairs(&mut tx, &lookup_pairs).await?;
    let mut lookup_levels: HashMap<usize, i64> = HashMap::new();
    for (&i, pair) in lookups.iter().zip(&lookup_pairs) {
        let later: i64 = leg_of
            .iter()
            .filter(|(&j, _)| j > i)
            .filter_map(|(_, &l)| match &outcomes[l] {
                LegOutcome::Applied(t) if (t.product_id, t.warehouse_id) == *pair => {
                    Some(t.quantity)
                }
                _ => None,
            })
            .sum();
        lookup_levels.insert(i, final_levels.get(pair).copied().unwrap_or(0) - later);
    }

    for (i, e) in events.iter().enumerate() {
        if results[i].is_some() {
            continue;
        }
        let Some((product, units)) = product_of.get(&i) else {
            continue;
        };
        let d = decoded[i].as_ref().expect("decoded");
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
        };
        if let Some(&l) = leg_of.get(&i) {
            match &outcomes[l] {
                LegOutcome::Applied(t) => {
                    r.transaction_id = Some(t.id);
                    r.level = Some(t.balance_after);
                }
                LegOutcome::Refused(err) => {
                    r.status = ScanStatus::Rejected;
                    r.reason = Some(refusal_reason(err));
                }
            }
        } else if e.action == ScanAction::Count {
            if let Some(reason) = counted.get(&i) {
                r.status = ScanStatus::Rejected;
                r.reason = Some(reason.clone());
            }
        } else {
            r.level = lookup_levels.get(&i).copied();
        }
        results[i] = Some(r);
    }

    // 6. Store every new event with its outcome, in event-id order (a global
    //    order, as for the level locks). A skipped row means a concurrent copy
    //    stored that event first: roll back and try again.
    let mut fresh: Vec<(Uuid, usize)> = first_at.iter().map(|(id, i)| (*id, *i)).collect();
    fresh.sort();
    let mut c = OutcomeColumns::default();
    for &(id, i) in &fresh {
        let e = &events[i];
        let r = results[i].as_ref().expect("every new event has a result");
        c.event_id.push(id);
        c.barcode.push(truncate(&e.barcode, 512));
        c.action.push(e.action.as_str());
        c.quantity.push(e.quantity.unwrap_or(1));
        c.warehouse.push(e.warehouse_id);
        c.count.push(e.count_id);
        c.scanned_at.push(e.scanned_at);
        c.status.push(if r.status == ScanStatus::Applied {
            "applied"
        } else {
            "rejected"
        });
        c.reason.push(r.reason.clone());
        c.product.push(r.product.as_ref().map(|p| p.id));
        c.transaction.push(r.transaction_id);
        c.units.push(r.units);
        c.level.push(r.level);
        c.lot.push(r.lot.clone());
        c.expires.push(r.expires_on);
        c.serial.push(r.serial.clone());
    }
    if !fresh.is_empty() {
        let stored: Vec<Uuid> = sqlx::query_scalar(
            "INSERT INTO scan_events (device_id, event_id, barcode, action, quantity, warehouse_id, count_id,
                 scanned_at, status, reason, product_id, transaction_id, units, level, lot, expires_on, serial)
             SELECT $1, * FROM unnest($2::uuid[], $3::text[], $4::text[], $5::int[], $6::uuid[], $7::uuid[],
                 $8::timestamptz[], $9::text[], $10::text[], $11::uuid[], $12::uuid[], $13::bigint[],
                 $14::bigint[], $15::text[], $16::date[], $17::text[])
             ON CONFLICT (device_id, event_id) DO NOTHING
             RETURNING event_id",
        )
        .bind(device)
        .bind(&c.event_id)
        .bind(&c.barcode)
        .bind(&c.action)
        .bind(&c.quantity)
        .bind(&c.warehouse)
        .bind(&c.count)
        .bind(&c.scanned_at)
        .bind(&c.status)
        .bind(&c.reason)
        .bind(&c.product)
        .bind(&c.transaction)
        .bind(&c.units)
        .bind(&c.level)
        .bind(&c.lot)
        .bind(&c.expires)
        .bind(&c.serial)
        .fetch_all(&mut *tx)
        .await?;
        if stored.len() != fresh.len() {
            tracing::info!(device = %device, "a copy of this scan batch won the race; retrying");
            return Ok(None); // dropping tx rolls everything back
        }
    }
    tx.commit().await?;

    // 7. Duplicates answer with the first outcome.
    let answers = events
        .iter()
        .enumerate()
        .map(|(i, e)| match &results[i] {
            Some(r) => r.clone(),
            None => {
                let first = match first_at.get(&e.event_id) {
                    Some(&j) => results[j].clone(),
                    None => earlier.get(&e.event_id).cloned(),
                };
                let mut r =
                    first.unwrap_or_else(|| rejected(e.event_id, "duplicate of an unknown event"));
                r.status = ScanStatus::Duplicate;
                r
            }
        })
        .collect();
    Ok(Some(answers))
}

/// Column arrays for the scan_events insert.
#[derive(Default)]
struct OutcomeColumns {
    event_id: Vec<Uuid>,
    barcode: Vec<String>,
    action: Vec<&'static str>,
    quantity: Vec<i32>,
    warehouse: Vec<Uuid>,
    count: Vec<Option<Uuid>>,
    scanned_at: Vec<Option<time::OffsetDateTime>>,
    status: Vec<&'static str>,
    reason: Vec<Option<String>>,
    product: Vec<Option<Uuid>>,
    transaction: Vec<Option<Uuid>>,
    units: Vec<Option<i64>>,
    level: Vec<Option<i64>>,
    lot: Vec<Option<String>>,
    expires: Vec<Option<time::Date>>,
    serial: Vec<Option<String>>,
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Current levels of (product, warehouse) pairs.
async fn level_of_pairs(
    conn: &mut sqlx::PgConnection,
    pairs: &[(Uuid, Uuid)],
) -> Result<HashMap<(Uuid, Uuid), i64>> {
    if pairs.is_empty() {
        return Ok(HashMap::new());
    }
    let (p, w): (Vec<Uuid>, Vec<Uuid>) = pairs.iter().copied().unzip();
    let rows: Vec<(Uuid, Uuid, i64)> = sqlx::query_as(
        "SELECT s.product_id, s.warehouse_id, s.quantity FROM stock_levels s
         JOIN unnest($1::uuid[], $2::uuid[]) AS t(p, w) ON s.product_id = t.p AND s.warehouse_id = t.w",
    )
    .bind(&p)
    .bind(&w)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(|(p, w, q)| ((p, w), q)).collect())
}
