//! Many movements in one go: the set-based form of [`super::apply`], for
//! scanner batches (hundreds of events a call) and count completions.
//!
//! One commit per movement cannot reach scanner rates (a commit costs ~2 ms
//! here), so a batch takes the row locks of every level it touches through
//! [`lock_pairs`] (the one lock order every movement uses, first-time rows
//! included), applies the legs in the order given against the
//! locked quantities, and writes all levels, ledger rows and outbox events with
//! a handful of array statements. The rules are the single movement's rules:
//! a leg that would make stock negative is refused and changes nothing;
//! archived products and inactive warehouses take no movements; the database
//! CHECKs still stand behind every row.

use std::collections::{BTreeMap, HashMap};

use sqlx::PgConnection;
use uuid::Uuid;

use super::{
    model::StockTransaction,
    repo::{lock_pairs, Leg, TRANSACTION_COLUMNS},
};
use crate::error::{ApiError, Result};

/// What happened to one leg of a batch.
#[derive(Debug)]
pub enum LegOutcome {
    Applied(Box<StockTransaction>),
    /// Refused with the same error the single movement would give.
    Refused(ApiError),
}

type Pair = (Uuid, Uuid);

/// Applies `legs` in order inside the caller's transaction.
pub async fn apply_batch(conn: &mut PgConnection, legs: &[Leg]) -> Result<Vec<LegOutcome>> {
    if legs.is_empty() {
        return Ok(Vec::new());
    }
    let mut pairs: Vec<Pair> = legs
        .iter()
        .map(|l| (l.product_id, l.warehouse_id))
        .collect();
    pairs.sort();
    pairs.dedup();
    let product_ids: Vec<Uuid> = pairs.iter().map(|p| p.0).collect();
    let warehouse_ids: Vec<Uuid> = pairs.iter().map(|p| p.1).collect();

    // Products and warehouses in one round trip.
    let flags: Vec<(bool, Uuid, bool)> = sqlx::query_as(
        "SELECT true, id, active FROM products WHERE id = ANY($1)
         UNION ALL
         SELECT false, id, active FROM warehouses WHERE id = ANY($2)",
    )
    .bind(&product_ids)
    .bind(&warehouse_ids)
    .fetch_all(&mut *conn)
    .await?;
    let products: HashMap<Uuid, bool> = flags.iter().filter(|f| f.0).map(|f| (f.1, f.2)).collect();
    let warehouses: HashMap<Uuid, bool> =
        flags.iter().filter(|f| !f.0).map(|f| (f.1, f.2)).collect();

    // Lock every level (creating missing ones) in the one global order.
    let valid: Vec<Pair> = pairs
        .iter()
        .filter(|(p, w)| products.contains_key(p) && warehouses.contains_key(w))
        .copied()
        .collect();
    let locked = lock_pairs(conn, &valid).await?;
    let mut levels: BTreeMap<Pair, i64> = locked.into_iter().map(|(p, w, q)| ((p, w), q)).collect();

    // Apply in order against the locked quantities.
    let mut planned: Vec<Option<(Uuid, i64)>> = Vec::with_capacity(legs.len());
    let mut outcomes: Vec<Option<ApiError>> = Vec::with_capacity(legs.len());
    let mut changed: BTreeMap<Pair, i64> = BTreeMap::new();
    for leg in legs {
        let refusal = match (
            products.get(&leg.product_id),
            warehouses.get(&leg.warehouse_id),
        ) {
            (None, _) => Some(ApiError::field("product_id", "no product with this id")),
            (_, None) => Some(ApiError::field("warehouse_id", "no warehouse with this id")),
            (Some(false), _) => Some(ApiError::conflict(
                "product-archived",
                "The product is archived and accepts no stock movements; restore it first.",
            )),
            (_, Some(false)) => Some(ApiError::conflict(
                "warehouse-inactive",
                "The warehouse is inactive and accepts no stock movements.",
            )),
            _ => None,
        };
        if let Some(r) = refusal {
            planned.push(None);
            outcomes.push(Some(r));
            continue;
        }
        let key = (leg.product_id, leg.warehouse_id);
        let level = levels.get_mut(&key).expect("every valid pair was locked");
        if *level + leg.delta < 0 {
            planned.push(None);
            outcomes.push(Some(ApiError::InsufficientStock {
                available: *level,
                requested: -leg.delta,
            }));
            continue;
        }
        *level += leg.delta;
        changed.insert(key, *level);
        planned.push(Some((Uuid::now_v7(), *level)));
        outcomes.push(None);
    }

    if !changed.is_empty() {
        let (cp, (cw, cq)): (Vec<Uuid>, (Vec<Uuid>, Vec<i64>)) =
            changed.iter().map(|((p, w), q)| (*p, (*w, *q))).unzip();
        sqlx::query(
            "UPDATE stock_levels s SET quantity = t.q, updated_at = now()
             FROM unnest($1::uuid[], $2::uuid[], $3::bigint[]) AS t(p, w, q)
             WHERE s.product_id = t.p AND s.warehouse_id = t.w",
        )
        .bind(&cp)
        .bind(&cw)
        .bind(&cq)
        .execute(&mut *conn)
        .await?;
    }

    let written = insert_rows(conn, legs, &planned).await?;
    let mut by_id: HashMap<Uuid, StockTransaction> =
        written.into_iter().map(|t| (t.id, t)).collect();
    Ok(planned
        .into_iter()
        .zip(outcomes)
        .map(|(plan, refusal)| match (plan, refusal) {
            (Some((id, _)), _) => {
                LegOutcome::Applied(Box::new(by_id.remove(&id).expect("row written")))
            }
            (None, Some(r)) => LegOutcome::Refused(r),
            (None, None) => unreachable!("a leg is either planned or refused"),
        })
        .collect())
}

/// Writes the ledger rows and their outbox events in one statement.
async fn insert_rows(
    conn: &mut PgConnection,
    legs: &[Leg],
    planned: &[Option<(Uuid, i64)>],
) -> Result<Vec<StockTransaction>, sqlx::Error> {
    let mut c = Columns::default();
    for (leg, plan) in legs.iter().zip(planned) {
        let Some((id, balance)) = plan else { continue };
        c.id.push(*id);
        c.kind.push(leg.kind.as_str());
        c.product.push(leg.product_id);
        c.warehouse.push(leg.warehouse_id);
        c.quantity.push(leg.delta);
        c.balance.push(*balance);
        c.unit_cost.push(leg.unit_cost);
        c.transfer.push(leg.transfer_id);
        c.reason.push(leg.reason);
        c.reference.push(leg.reference.clone());
        c.note.push(leg.note.clone());
        c.lot.push(leg.lot.clone());
        c.expires.push(leg.expires_on);
        c.serial.push(leg.serial.clone());
        c.count.push(leg.count_id);
        let (user, device) = match leg.actor {
            super::repo::Actor::User(u) => (Some(u), None),
            super::repo::Actor::Device(d) => (None, Some(d)),
        };
        c.user.push(user);
        c.device.push(device);
    }
    if c.id.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH tx AS (
             INSERT INTO stock_transactions (id, kind, product_id, warehouse_id, quantity, balance_after,
                 unit_cost, transfer_id, reason, reference, note, lot, expires_on, serial, count_id,
                 actor_user_id, actor_device_id)
             SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::uuid[], $5::bigint[], $6::bigint[],
                 $7::numeric[], $8::uuid[], $9::text[], $10::text[], $11::text[], $12::text[], $13::date[],
                 $14::text[], $15::uuid[], $16::uuid[], $17::uuid[])
             RETURNING {TRANSACTION_COLUMNS}
         ),
         ev AS (
             INSERT INTO outbox (topic, aggregate_id, payload)
             SELECT 'stock.' || kind, product_id, jsonb_build_object(
                 'transaction_id', id, 'kind', kind, 'product_id', product_id,
                 'warehouse_id', warehouse_id, 'quantity', quantity, 'balance_after', balance_after,
                 'transfer_id', transfer_id)
             FROM tx ORDER BY id
         )
         SELECT {TRANSACTION_COLUMNS} FROM tx"
    )))
    .bind(&c.id)
    .bind(&c.kind)
    .bind(&c.product)
    .bind(&c.warehouse)
    .bind(&c.quantity)
    .bind(&c.balance)
    .bind(&c.unit_cost)
    .bind(&c.transfer)
    .bind(&c.reason)
    .bind(&c.reference)
    .bind(&c.note)
    .bind(&c.lot)
    .bind(&c.expires)
    .bind(&c.serial)
    .bind(&c.count)
    .bind(&c.user)
    .bind(&c.device)
    .fetch_all(&mut *conn)
    .await
}

/// Column arrays for the unnest insert.
#[derive(Default)]
struct Columns {
    id: Vec<Uuid>,
    kind: Vec<&'static str>,
    product: Vec<Uuid>,
    warehouse: Vec<Uuid>,
    quantity: Vec<i64>,
    balance: Vec<i64>,
    unit_cost: Vec<Option<rust_decimal::Decimal>>,
    transfer: Vec<Option<Uuid>>,
    reason: Vec<Option<&'static str>>,
    reference: Vec<Option<String>>,
    note: Vec<Option<String>>,
    lot: Vec<Option<String>>,
    expires: Vec<Option<time::Date>>,
    serial: Vec<Option<String>>,
    count: Vec<Option<Uuid>>,
    user: Vec<Option<Uuid>>,
    device: Vec<Option<Uuid>>,
}
