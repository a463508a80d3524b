//! Scan events: what a handheld sends, processed in order, each answered.
//!
//! Single events and batches share [`process`]: a single event is a batch of
//! one. A batch is one transaction: its event ids are claimed first (in id
//! order, so two resends of overlapping batches cannot deadlock; a resend that
//! arrives while the first copy is still running waits for it and then
//! answers `duplicate`), barcodes are resolved in one query, stock moves
//! through the ledger's set-based path (`stock::batch`), and every outcome,
//! rejections included, is stored with the event so a resend replays it.

use std::collections::{HashMap, HashSet};

use opentelemetry::KeyValue;
use poem_openapi::types::{ParseFromJSON, ToJSON};
use uuid::Uuid;

use super::{
    gs1,
    model::{ProductSummary, ScanAction, ScanEvent, ScanResult, ScanStatus},
};
use crate::{
    app::AppState,
    catalog::barcode,
    error::{ApiError, Result},
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
    let mut tx = state.db.begin().await?;

    // 1. Claim the event ids; the ones already known are duplicates.
    let mut order: Vec<usize> = (0..events.len()).collect();
    order.sort_by_key(|&i| events[i].event_id);
    let claimed: HashSet<Uuid> = sqlx::query_scalar(
        "INSERT INTO scan_events (device_id, event_id, barcode, action, quantity, warehouse_id, count_id,
                                  scanned_at, status, response)
         SELECT $1, e, b, a, q, w, c, s, 'rejected', '{}'::jsonb
         FROM unnest($2::uuid[], $3::text[], $4::text[], $5::int[], $6::uuid[], $7::uuid[], $8::timestamptz[])
              AS t(e, b, a, q, w, c, s)
         ORDER BY e
         ON CONFLICT (device_id, event_id) DO NOTHING
         RETURNING event_id",
    )
    .bind(device)
    .bind(order.iter().map(|&i| events[i].event_id).collect::<Vec<_>>())
    .bind(order.iter().map(|&i| truncate(&events[i].barcode, 512)).collect::<Vec<_>>())
    .bind(order.iter().map(|&i| events[i].action.as_str()).collect::<Vec<_>>())
    .bind(order.iter().map(|&i| events[i].quantity.unwrap_or(1)).collect::<Vec<_>>())
    .bind(order.iter().map(|&i| events[i].warehouse_id).collect::<Vec<_>>())
    .bind(order.iter().map(|&i| events[i].count_id).collect::<Vec<_>>())
    .bind(order.iter().map(|&i| events[i].scanned_at).collect::<Vec<_>>())
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .collect();

    // Earlier answers for ids claimed before this batch.
    let known: Vec<Uuid> = events
        .iter()
        .map(|e| e.event_id)
        .filter(|id| !claimed.contains(id))
        .collect();
    let mut earlier: HashMap<Uuid, ScanResult> = HashMap::new();
    if !known.is_empty() {
        let rows: Vec<(Uuid, serde_json::Value)> = sqlx::query_as(
            "SELECT event_id, response FROM scan_events WHERE device_id = $1 AND event_id = ANY($2)",
        )
        .bind(device)
        .bind(&known)
        .fetch_all(&mut *tx)
        .await?;
        for (id, response) in rows {
            let parsed = ScanResult::parse_from_json(Some(response)).map_err(|e| {
                anyhow::anyhow!("stored scan response does not parse: {}", e.into_message())
            })?;
            earlier.insert(id, parsed);
        }
    }

    // 2. Decide what each fresh event is (first occurrence in this batch only).
    let mut results: Vec<Option<ScanResult>> = vec![None; events.len()];
    let mut first_at: HashMap<Uuid, usize> = HashMap::new();
    let mut decoded: Vec<Option<Decoded>> = (0..events.len()).map(|_| None).collect();
    for (i, e) in events.iter().enumerate() {
        if !claimed.contains(&e.event_id) || first_at.contains_key(&e.event_id) {
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

    // 6. Store every fresh outcome with its event.
    let mut ids = Vec::new();
    let mut statuses = Vec::new();
    let mut reasons = Vec::new();
    let mut products = Vec::new();
    let mut transactions = Vec::new();
    let mut lots = Vec::new();
    let mut expiries = Vec::new();
    let mut serials = Vec::new();
    let mut responses = Vec::new();
    for (id, &i) in &first_at {
        let r = results[i].as_ref().expect("every fresh event has a result");
        ids.push(*id);
        statuses.push(if r.status == ScanStatus::Applied {
            "applied"
        } else {
            "rejected"
        });
        reasons.push(r.reason.clone());
        products.push(r.product.as_ref().map(|p| p.id));
        transactions.push(r.transaction_id);
        lots.push(r.lot.clone());
        expiries.push(r.expires_on);
        serials.push(r.serial.clone());
        responses.push(r.to_json().unwrap_or_default());
    }
    if !ids.is_empty() {
        sqlx::query(
            "UPDATE scan_events s SET status = t.status, reason = t.reason, product_id = t.product,
                    transaction_id = t.tx, lot = t.lot, expires_on = t.exp, serial = t.serial, response = t.response
             FROM unnest($2::uuid[], $3::text[], $4::text[], $5::uuid[], $6::uuid[], $7::text[], $8::date[],
                         $9::text[], $10::jsonb[]) AS t(id, status, reason, product, tx, lot, exp, serial, response)
             WHERE s.device_id = $1 AND s.event_id = t.id",
        )
        .bind(device)
        .bind(&ids)
        .bind(&statuses)
        .bind(&reasons)
        .bind(&products)
        .bind(&transactions)
        .bind(&lots)
        .bind(&expiries)
        .bind(&serials)
        .bind(&responses)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query("UPDATE devices SET last_seen_at = now() WHERE id = $1")
        .bind(device)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;

    // 7. Duplicates answer with the first outcome.
    let metrics = telemetry::metrics();
    let answers: Vec<ScanResult> = events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let answer = match &results[i] {
                Some(r) => r.clone(),
                None => {
                    let first = match first_at.get(&e.event_id) {
                        Some(&j) => results[j].clone(),
                        None => earlier.get(&e.event_id).cloned(),
                    };
                    let mut r = first
                        .unwrap_or_else(|| rejected(e.event_id, "duplicate of an unknown event"));
                    r.status = ScanStatus::Duplicate;
                    r
                }
            };
            let status = match answer.status {
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
            answer
        })
        .collect();
    Ok(answers)
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
