//! SQL of scan event processing (the phases are in [`super::events`]).

use std::collections::HashMap;

use sqlx::PgConnection;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use super::model::{ProductSummary, ScanResult, ScanStatus};
use crate::{db::InTransaction, error::Result};

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
    expires_on: Option<Date>,
    serial: Option<String>,
    location_id: Option<Uuid>,
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
            location_id: self.location_id,
        }
    }
}

/// Outcomes already stored for these events of `device`: they are duplicates.
///
/// Planned afresh for every batch (`persistent(false)`): the batch runs with
/// `force_generic_plan` ([`crate::stock::engine::begin`]), and a generic plan
/// cached on a connection while `scan_events` was small seq-scans it on every
/// batch after (11 ms per batch at 10,000 events, ~100 ms at 100,000) until
/// autovacuum's next ANALYZE; planning sees the table's current size. Hence
/// in a transaction ([`InTransaction`]).
pub async fn earlier_outcomes(
    conn: &mut InTransaction,
    device: Uuid,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, ScanResult>> {
    Ok(sqlx::query_as::<_, Stored>(
        "SELECT s.event_id, s.status, s.reason, s.transaction_id, s.units, s.level, s.lot, s.expires_on,
                s.serial, s.location_id, p.id AS product_id, p.sku, p.name, p.unit
         FROM scan_events s LEFT JOIN products p ON p.id = s.product_id
         WHERE s.device_id = $1 AND s.event_id = ANY($2)",
    )
    .persistent(false)
    .bind(device)
    .bind(ids)
    .fetch_all(&mut **conn)
    .await?
    .into_iter()
    .map(|s| (s.event_id, s.into_result()))
    .collect())
}

/// A product a barcode resolved to.
#[derive(Clone, sqlx::FromRow)]
pub struct Resolved {
    pub lookup_key: String,
    pub pack_quantity: i32,
    pub id: Uuid,
    pub sku: String,
    pub name: String,
    pub unit: String,
}

/// Products of the catalog keys, in one query.
pub async fn products_by_key(
    conn: &mut PgConnection,
    keys: &[String],
) -> Result<HashMap<String, Resolved>> {
    Ok(sqlx::query_as::<_, Resolved>(
        "SELECT b.lookup_key, b.pack_quantity, p.id, p.sku, p.name, p.unit
         FROM product_barcodes b JOIN products p ON p.id = b.product_id
         WHERE b.lookup_key = ANY($1)",
    )
    .bind(keys)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|r| (r.lookup_key.clone(), r))
    .collect())
}

/// Locations named by scans, per (warehouse, label): a label is a location's
/// barcode or its code (case-insensitive) in that warehouse.
pub async fn locations_by_label(
    conn: &mut PgConnection,
    wanted: &[(Uuid, String)],
) -> Result<HashMap<(Uuid, String), Uuid>> {
    // A batch names few distinct locations (one per bin scanned), each many times.
    let wanted: std::collections::BTreeSet<&(Uuid, String)> = wanted.iter().collect();
    if wanted.is_empty() {
        return Ok(HashMap::new());
    }
    let (warehouses, labels): (Vec<Uuid>, Vec<String>) = wanted.into_iter().cloned().unzip();
    // Two index probes per label (barcode, then code), not one OR that no
    // index serves; a barcode match wins over a code match.
    let rows: Vec<(Uuid, String, Uuid)> = sqlx::query_as(
        "SELECT DISTINCT ON (t.w, t.label) t.w, t.label, l.id
         FROM unnest($1::uuid[], $2::text[]) AS t(w, label)
         CROSS JOIN LATERAL (
             SELECT id, 0 AS rank FROM locations WHERE barcode = t.label AND warehouse_id = t.w
             UNION ALL
             SELECT id, 1 FROM locations WHERE warehouse_id = t.w AND lower(code) = lower(t.label)
         ) l
         ORDER BY t.w, t.label, l.rank",
    )
    .bind(&warehouses)
    .bind(&labels)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(|(w, l, id)| ((w, l), id)).collect())
}

/// Current levels of (product, warehouse) pairs.
pub async fn levels(
    conn: &mut PgConnection,
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

/// One new event with its outcome, as stored.
pub struct NewOutcome<'a> {
    pub event_id: Uuid,
    pub barcode: String,
    pub action: &'static str,
    pub quantity: i32,
    pub warehouse_id: Uuid,
    pub count_id: Option<Uuid>,
    pub scanned_at: Option<OffsetDateTime>,
    pub result: &'a ScanResult,
}

/// Stores new events with their outcomes in event-id order (a global order,
/// as for the level locks); returns how many were stored. Fewer than given
/// means a concurrent copy of the batch stored some first.
pub async fn store_outcomes(
    conn: &mut PgConnection,
    device: Uuid,
    outcomes: &[NewOutcome<'_>],
) -> Result<usize> {
    if outcomes.is_empty() {
        return Ok(0);
    }
    let mut c = OutcomeColumns::default();
    for o in outcomes {
        let r = o.result;
        // Time-ordered ids (the column's default, gen_random_uuid(), is
        // random): a batch's 500 keys land on the primary key's right edge
        // instead of ~500 scattered leaf pages; batches +6.6 % over seven
        // paired runs (bench/README.md, "Time-ordered scan event ids").
        c.id.push(Uuid::now_v7());
        c.event_id.push(o.event_id);
        c.barcode.push(o.barcode.clone());
        c.action.push(o.action);
        c.quantity.push(o.quantity);
        c.warehouse.push(o.warehouse_id);
        c.count.push(o.count_id);
        c.scanned_at.push(o.scanned_at);
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
        c.location.push(r.location_id);
    }
    let stored: Vec<Uuid> = sqlx::query_scalar(
        "INSERT INTO scan_events (device_id, id, event_id, barcode, action, quantity, warehouse_id, count_id,
             scanned_at, status, reason, product_id, transaction_id, units, level, lot, expires_on, serial,
             location_id)
         SELECT $1, * FROM unnest($19::uuid[], $2::uuid[], $3::text[], $4::text[], $5::int[], $6::uuid[],
             $7::uuid[], $8::timestamptz[], $9::text[], $10::text[], $11::uuid[], $12::uuid[], $13::bigint[],
             $14::bigint[], $15::text[], $16::date[], $17::text[], $18::uuid[])
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
    .bind(&c.location)
    .bind(&c.id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(stored.len())
}

/// Column arrays for the scan_events insert.
#[derive(Default)]
struct OutcomeColumns {
    id: Vec<Uuid>,
    event_id: Vec<Uuid>,
    barcode: Vec<String>,
    action: Vec<&'static str>,
    quantity: Vec<i32>,
    warehouse: Vec<Uuid>,
    count: Vec<Option<Uuid>>,
    scanned_at: Vec<Option<OffsetDateTime>>,
    status: Vec<&'static str>,
    reason: Vec<Option<String>>,
    product: Vec<Option<Uuid>>,
    transaction: Vec<Option<Uuid>>,
    units: Vec<Option<i64>>,
    level: Vec<Option<i64>>,
    lot: Vec<Option<String>>,
    expires: Vec<Option<Date>>,
    serial: Vec<Option<String>>,
    location: Vec<Option<Uuid>>,
}

/// Records that a device was seen.
pub async fn touch_device(db: &sqlx::PgPool, device: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE devices SET last_seen_at = now() WHERE id = $1")
        .bind(device)
        .execute(db)
        .await
        .map(|_| ())
}
