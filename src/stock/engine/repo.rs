//! The engine's SQL: one statement per phase (see the module header of
//! [`super`] for the order and why it cannot deadlock).

use std::collections::{BTreeMap, HashMap};

use sqlx::PgConnection;
use time::Date;
use uuid::Uuid;

use super::{
    plan::{Catalog, LocationInfo, LotInfo, PosKey, ProductInfo, Row, State, WarehouseInfo},
    Movement,
};
use crate::{
    catalog::model::Tracking,
    error::Result,
    stock::{model::StockTransaction, repo::TRANSACTION_COLUMNS},
};

/// Advisory-lock class of "serial numbers of one product are changing".
const SERIAL_LOCK_CLASS: i32 = 0x5e71;

/// What [`load`] found.
pub struct Loaded {
    pub cat: Catalog,
    /// The locked levels: (product, warehouse) → quantity.
    pub levels: HashMap<(Uuid, Uuid), i64>,
    pub positions: BTreeMap<PosKey, i64>,
    /// Levels that changed between the statement's snapshot and taking
    /// their lock: their positions must be read again ([`positions`]).
    pub stale: Vec<(Uuid, Uuid)>,
}

/// One row of [`load`]'s answer; `kind` says which columns mean what.
#[derive(sqlx::FromRow)]
struct LoadRow {
    kind: String,
    a: Uuid,
    b: Option<Uuid>,
    c: Option<Uuid>,
    d: Option<Uuid>,
    n: Option<i64>,
    code: Option<String>,
    code2: Option<String>,
    flag: Option<bool>,
    day: Option<Date>,
}

/// Takes the level locks and reads what planning needs, in ONE statement:
/// products, warehouses (with their DEFAULT location), the locations and lots
/// named, and the positions under the locked levels.
///
/// The locks: the INSERT visits the (product, warehouse) rows in that order
/// and either inserts the row (holding it until commit) or locks the existing
/// one (`ON CONFLICT DO UPDATE` locks it): every transaction that moves stock
/// acquires its levels in that one order, first-time rows included. (Creating
/// the missing rows in one pass and locking in a second does not have that
/// property: the row a transaction has just inserted is held, out of order,
/// while it waits for the locks of the second pass.)
///
/// The reads see the statement's snapshot, taken before any lock wait. Every
/// movement bumps the `version` of the levels whose positions it changes, so
/// a level whose locked version differs from the version in the snapshot is
/// reported `stale` and its positions are read again; otherwise they are
/// current. Unknown products and warehouses lock nothing.
#[tracing::instrument(skip_all, fields(movements = movements.len()))]
pub async fn load(conn: &mut PgConnection, movements: &[Movement]) -> Result<Loaded> {
    let mut pairs: Vec<(Uuid, Uuid)> = movements.iter().flat_map(Movement::pairs).collect();
    pairs.sort();
    pairs.dedup();
    let (pair_products, pair_warehouses): (Vec<Uuid>, Vec<Uuid>) = pairs.iter().copied().unzip();
    let mut products: Vec<Uuid> = movements.iter().map(|m| m.product_id).collect();
    let mut warehouses: Vec<Uuid> = movements
        .iter()
        .flat_map(|m| std::iter::once(m.warehouse_id).chain(m.to_warehouse_id))
        .collect();
    let mut locations: Vec<Uuid> = movements
        .iter()
        .flat_map(|m| m.location_id.into_iter().chain(m.to_location_id))
        .collect();
    let (lot_products, lot_codes): (Vec<Uuid>, Vec<String>) = movements
        .iter()
        .filter_map(|m| m.lot.clone().map(|l| (m.product_id, l)))
        .unzip();
    for v in [&mut products, &mut warehouses, &mut locations] {
        v.sort();
        v.dedup();
    }
    let rows: Vec<LoadRow> = sqlx::query_as(
        "WITH pairs AS (SELECT * FROM unnest($1::uuid[], $2::uuid[]) AS t(p, w)),
         locked AS (
             INSERT INTO stock_levels AS s (product_id, warehouse_id, quantity)
             SELECT t.p, t.w, 0 FROM pairs t
             WHERE EXISTS (SELECT 1 FROM products WHERE id = t.p)
               AND EXISTS (SELECT 1 FROM warehouses WHERE id = t.w)
             ORDER BY t.p, t.w
             ON CONFLICT (product_id, warehouse_id) DO UPDATE SET quantity = s.quantity
             RETURNING s.product_id, s.warehouse_id, s.quantity, s.version
         )
         SELECT 'L' AS kind, product_id AS a, warehouse_id AS b, NULL::uuid AS c, NULL::uuid AS d,
                quantity AS n, version::text AS code, NULL AS code2, NULL::bool AS flag, NULL::date AS day
         FROM locked
         UNION ALL
         SELECT 'V', s.product_id, s.warehouse_id, NULL, NULL, NULL, s.version::text, NULL, NULL, NULL
         FROM pairs t JOIN stock_levels s ON s.product_id = t.p AND s.warehouse_id = t.w
         UNION ALL
         SELECT 's', s.product_id, s.warehouse_id, s.location_id, s.lot_id, s.quantity,
                loc.code, lot.code, loc.active, lot.expires_on
         FROM pairs t JOIN stock_positions s ON s.product_id = t.p AND s.warehouse_id = t.w
         JOIN locations loc ON loc.id = s.location_id
         LEFT JOIN lots lot ON lot.id = s.lot_id
         UNION ALL
         SELECT 'p', id, NULL, NULL, NULL, NULL, tracking, NULL, active, NULL FROM products WHERE id = ANY($3)
         UNION ALL
         SELECT 'w', w.id, l.id, NULL, NULL, NULL, NULL, NULL, w.active, NULL FROM warehouses w
         JOIN locations l ON l.warehouse_id = w.id AND lower(l.code) = 'default'
         WHERE w.id = ANY($4)
         UNION ALL
         SELECT 'l', id, warehouse_id, NULL, NULL, NULL, code, NULL, active, NULL FROM locations
         WHERE id = ANY($5) OR (warehouse_id = ANY($4) AND lower(code) = 'default')
         UNION ALL
         SELECT 't', l.id, l.product_id, NULL, NULL, NULL, l.code, NULL, NULL, l.expires_on FROM lots l
         JOIN unnest($6::uuid[], $7::text[]) AS t(p, c) ON l.product_id = t.p AND l.code = t.c",
    )
    .bind(&pair_products)
    .bind(&pair_warehouses)
    .bind(&products)
    .bind(&warehouses)
    .bind(&locations)
    .bind(&lot_products)
    .bind(&lot_codes)
    .fetch_all(&mut *conn)
    .await?;
    let mut cat = Catalog::default();
    let mut levels = HashMap::new();
    let mut locked_versions: HashMap<(Uuid, Uuid), String> = HashMap::new();
    let mut seen_versions: HashMap<(Uuid, Uuid), String> = HashMap::new();
    let mut positions = BTreeMap::new();
    for r in rows {
        let b = r.b.unwrap_or_default();
        match r.kind.as_str() {
            "L" => {
                levels.insert((r.a, b), r.n.unwrap_or(0));
                locked_versions.insert((r.a, b), r.code.unwrap_or_default());
            }
            "V" => {
                seen_versions.insert((r.a, b), r.code.unwrap_or_default());
            }
            "s" => {
                let location = r.c.expect("not null");
                cat.locations.entry(location).or_insert(LocationInfo {
                    warehouse_id: b,
                    code: r.code.unwrap_or_default(),
                    active: r.flag.unwrap_or(false),
                });
                if let (Some(lot), Some(code)) = (r.d, r.code2) {
                    add_lot(&mut cat, r.a, lot, code, r.day);
                }
                positions.insert((r.a, b, location, r.d), r.n.unwrap_or(0));
            }
            "p" => {
                let tracking = match r.code.as_deref() {
                    Some("lot") => Tracking::Lot,
                    Some("serial") => Tracking::Serial,
                    _ => Tracking::None,
                };
                let active = r.flag.unwrap_or(false);
                cat.products.insert(r.a, ProductInfo { active, tracking });
            }
            "w" => {
                let active = r.flag.unwrap_or(false);
                cat.warehouses.insert(
                    r.a,
                    WarehouseInfo {
                        active,
                        default_location: b,
                    },
                );
            }
            "l" => {
                cat.locations.insert(
                    r.a,
                    LocationInfo {
                        warehouse_id: b,
                        code: r.code.unwrap_or_default(),
                        active: r.flag.unwrap_or(false),
                    },
                );
            }
            _ => add_lot(&mut cat, b, r.a, r.code.unwrap_or_default(), r.day),
        }
    }
    // A level created by this statement has version 0 and no positions; one
    // that another transaction created or changed meanwhile differs.
    let mut stale: Vec<(Uuid, Uuid)> = locked_versions
        .into_iter()
        .filter(|(pair, locked)| match seen_versions.get(pair) {
            Some(seen) => seen != locked,
            None => locked != "0",
        })
        .map(|(pair, _)| pair)
        .collect();
    stale.sort();
    Ok(Loaded {
        cat,
        levels,
        positions,
        stale,
    })
}

fn add_lot(cat: &mut Catalog, product: Uuid, id: Uuid, code: String, expires_on: Option<Date>) {
    cat.lots.insert(
        (product, code.clone()),
        LotInfo {
            id,
            code,
            expires_on,
        },
    );
}

/// Creates the lots receipts name that do not exist yet, and sets the expiry
/// of lots that had none; adds them to `cat`. Runs after the level locks (see
/// the module header), in (product, code) order.
#[tracing::instrument(skip_all)]
pub async fn create_lots(
    conn: &mut PgConnection,
    cat: &mut Catalog,
    movements: &[Movement],
) -> Result<()> {
    // The first movement naming a lot decides its expiry; a later one that
    // contradicts it is refused by the plan.
    let mut wanted: BTreeMap<(Uuid, String), Option<Date>> = BTreeMap::new();
    for m in movements {
        let tracked = cat
            .products
            .get(&m.product_id)
            .is_some_and(|p| p.active && p.tracking != Tracking::None);
        let Some(code) = m.lot.clone().filter(|_| tracked && m.adds()) else {
            continue;
        };
        let known = cat.lots.get(&(m.product_id, code.clone()));
        let needs = match known {
            None => true,
            Some(l) => l.expires_on.is_none() && m.expires_on.is_some(),
        };
        if needs {
            wanted.entry((m.product_id, code)).or_insert(m.expires_on);
        }
    }
    if wanted.is_empty() {
        return Ok(());
    }
    let mut products = Vec::new();
    let mut codes = Vec::new();
    let mut dates = Vec::new();
    for ((p, c), d) in wanted {
        products.push(p);
        codes.push(c);
        dates.push(d);
    }
    let rows: Vec<(Uuid, Uuid, String, Option<Date>)> = sqlx::query_as(
        "INSERT INTO lots AS l (product_id, code, expires_on)
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::date[]) ORDER BY 1, 2
         ON CONFLICT (product_id, code) DO UPDATE SET expires_on = COALESCE(l.expires_on, EXCLUDED.expires_on)
         RETURNING l.id, l.product_id, l.code, l.expires_on",
    )
    .bind(&products)
    .bind(&codes)
    .bind(&dates)
    .fetch_all(&mut *conn)
    .await?;
    for (id, product, code, expires_on) in rows {
        add_lot(cat, product, id, code, expires_on);
    }
    Ok(())
}

/// Serializes movements of serial numbers of one product across warehouses
/// (the level locks cover one warehouse each), in product order. The partial
/// unique index stays the rule; this lock turns losing a race into a clean
/// refusal instead of a constraint error.
#[tracing::instrument(skip_all)]
pub async fn lock_serial_products(
    conn: &mut PgConnection,
    cat: &Catalog,
    movements: &[Movement],
) -> Result<()> {
    let mut products: Vec<Uuid> = movements
        .iter()
        .filter(|m| !m.serials.is_empty())
        .filter(|m| {
            cat.products
                .get(&m.product_id)
                .is_some_and(|p| p.tracking == Tracking::Serial)
        })
        .map(|m| m.product_id)
        .collect();
    products.sort();
    products.dedup();
    if products.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "SELECT pg_advisory_xact_lock($1, hashtext(p::text))
         FROM (SELECT p FROM unnest($2::uuid[]) AS p ORDER BY p) s",
    )
    .bind(SERIAL_LOCK_CLASS)
    .bind(&products)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The positions under locked levels, with their locations and lots (for
/// the levels [`load`] found stale).
#[tracing::instrument(skip_all, fields(levels = pairs.len()))]
pub async fn positions(
    conn: &mut PgConnection,
    cat: &mut Catalog,
    pairs: &[(Uuid, Uuid)],
) -> Result<BTreeMap<PosKey, i64>> {
    let (products, warehouses): (Vec<Uuid>, Vec<Uuid>) = pairs.iter().copied().unzip();
    type PositionRow = (
        Uuid,
        Uuid,
        Uuid,
        Option<Uuid>,
        i64,
        String,
        bool,
        Option<String>,
        Option<Date>,
    );
    let rows: Vec<PositionRow> = sqlx::query_as(
        "SELECT s.product_id, s.warehouse_id, s.location_id, s.lot_id, s.quantity,
                loc.code, loc.active, lot.code, lot.expires_on
         FROM unnest($1::uuid[], $2::uuid[]) AS t(p, w)
         JOIN stock_positions s ON s.product_id = t.p AND s.warehouse_id = t.w
         JOIN locations loc ON loc.id = s.location_id
         LEFT JOIN lots lot ON lot.id = s.lot_id",
    )
    .bind(&products)
    .bind(&warehouses)
    .fetch_all(&mut *conn)
    .await?;
    let mut positions = BTreeMap::new();
    for (p, w, loc, lot, q, loc_code, loc_active, lot_code, expires_on) in rows {
        cat.locations.entry(loc).or_insert(LocationInfo {
            warehouse_id: w,
            code: loc_code,
            active: loc_active,
        });
        if let (Some(id), Some(code)) = (lot, lot_code) {
            add_lot(cat, p, id, code, expires_on);
        }
        positions.insert((p, w, loc, lot), q);
    }
    Ok(positions)
}

/// Where the serial numbers the movements name are in stock now.
#[tracing::instrument(skip_all)]
pub async fn serials(
    conn: &mut PgConnection,
    movements: &[Movement],
) -> Result<HashMap<(Uuid, String), Option<PosKey>>> {
    let (products, serials): (Vec<Uuid>, Vec<String>) = movements
        .iter()
        .flat_map(|m| m.serials.iter().map(move |s| (m.product_id, s.clone())))
        .unzip();
    let mut known: HashMap<(Uuid, String), Option<PosKey>> = products
        .iter()
        .copied()
        .zip(serials.iter().cloned())
        .map(|k| (k, None))
        .collect();
    if known.is_empty() {
        return Ok(known);
    }
    let rows: Vec<(Uuid, String, Uuid, Uuid, Option<Uuid>)> = sqlx::query_as(
        "SELECT s.product_id, s.serial, s.warehouse_id, s.location_id, s.lot_id
         FROM serial_numbers s JOIN unnest($1::uuid[], $2::text[]) AS t(p, n)
           ON s.product_id = t.p AND s.serial = t.n
         WHERE s.in_stock",
    )
    .bind(&products)
    .bind(&serials)
    .fetch_all(&mut *conn)
    .await?;
    for (p, s, w, loc, lot) in rows {
        known.insert((p, s), Some((p, w, loc, lot)));
    }
    Ok(known)
}

/// Writes the changed positions and levels, the serial numbers' new places,
/// the ledger rows and their outbox events: one statement.
#[tracing::instrument(skip_all, fields(rows = rows.len()))]
pub async fn write(
    conn: &mut PgConnection,
    state: &State,
    rows: &[(&Movement, &Row)],
) -> Result<Vec<StockTransaction>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let mut pos = PositionColumns::default();
    for key in &state.changed_positions {
        pos.product.push(key.0);
        pos.warehouse.push(key.1);
        pos.location.push(key.2);
        pos.lot.push(key.3);
        pos.quantity.push(state.positions[key]);
    }
    let mut lvl = (Vec::new(), Vec::new(), Vec::new());
    for key in &state.changed_levels {
        lvl.0.push(key.0);
        lvl.1.push(key.1);
        lvl.2.push(state.levels[key]);
    }
    // Net effect per serial number: where it was before, where it is now.
    type Places = (Option<PosKey>, Option<PosKey>);
    let mut net: BTreeMap<(Uuid, &str), Places> = BTreeMap::new();
    for mv in &state.serial_moves {
        net.entry((mv.product_id, mv.serial.as_str()))
            .and_modify(|e| e.1 = mv.to)
            .or_insert((mv.from, mv.to));
    }
    let mut ser = SerialColumns::default();
    for ((p, s), (from, to)) in net {
        if from == to {
            continue;
        }
        ser.product.push(p);
        ser.serial.push(s.to_owned());
        ser.was_in_stock.push(from.is_some());
        ser.warehouse.push(to.map(|k| k.1));
        ser.location.push(to.map(|k| k.2));
        ser.lot.push(to.and_then(|k| k.3));
    }
    let mut tx = LedgerColumns::default();
    for (m, r) in rows {
        tx.id.push(r.id);
        tx.kind.push(r.kind.as_str());
        tx.product.push(r.key.0);
        tx.warehouse.push(r.key.1);
        tx.location.push(r.key.2);
        tx.lot_id.push(r.key.3);
        tx.quantity.push(r.quantity);
        tx.balance.push(r.balance_after);
        tx.warehouse_balance.push(r.warehouse_balance_after);
        tx.unit_cost
            .push(if r.quantity > 0 { m.unit_cost } else { None });
        tx.transfer.push(r.transfer_id);
        tx.reason.push(m.reason);
        tx.reference.push(m.reference.clone());
        tx.note.push(m.note.clone());
        tx.lot.push(r.lot.clone());
        tx.expires.push(r.expires_on);
        tx.serial.push(r.serial.clone());
        tx.count.push(m.count_id);
        tx.user.push(m.actor.user());
        tx.device.push(m.actor.device());
    }
    let written = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH pos AS (
             INSERT INTO stock_positions AS s (product_id, warehouse_id, location_id, lot_id, quantity)
             SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::bigint[])
             ON CONFLICT ON CONSTRAINT stock_positions_key
             DO UPDATE SET quantity = EXCLUDED.quantity, updated_at = now()
         ),
         lvl AS (
             UPDATE stock_levels s SET quantity = t.q, version = s.version + 1, updated_at = now()
             FROM unnest($6::uuid[], $7::uuid[], $8::bigint[]) AS t(p, w, q)
             WHERE s.product_id = t.p AND s.warehouse_id = t.w
         ),
         ser AS (SELECT * FROM unnest($9::uuid[], $10::text[], $11::bool[], $12::uuid[], $13::uuid[], $14::uuid[])
                 AS t(p, n, was, w, loc, lot)),
         ser_new AS (
             INSERT INTO serial_numbers (product_id, serial, warehouse_id, location_id, lot_id)
             SELECT p, n, w, loc, lot FROM ser WHERE NOT was
         ),
         ser_moved AS (
             UPDATE serial_numbers s
             SET warehouse_id = COALESCE(ser.w, s.warehouse_id),
                 location_id = COALESCE(ser.loc, s.location_id),
                 lot_id = CASE WHEN ser.w IS NULL THEN s.lot_id ELSE ser.lot END,
                 in_stock = ser.w IS NOT NULL,
                 left_at = CASE WHEN ser.w IS NULL THEN now() END
             FROM ser WHERE ser.was AND s.product_id = ser.p AND s.serial = ser.n AND s.in_stock
         ),
         tx AS (
             INSERT INTO stock_transactions (id, kind, product_id, warehouse_id, location_id, lot_id,
                 quantity, balance_after, warehouse_balance_after, unit_cost, transfer_id, reason,
                 reference, note, lot, expires_on, serial, count_id, actor_user_id, actor_device_id)
             SELECT * FROM unnest($15::uuid[], $16::text[], $17::uuid[], $18::uuid[], $19::uuid[],
                 $20::uuid[], $21::bigint[], $22::bigint[], $23::bigint[], $24::numeric[], $25::uuid[],
                 $26::text[], $27::text[], $28::text[], $29::text[], $30::date[], $31::text[],
                 $32::uuid[], $33::uuid[], $34::uuid[])
             RETURNING {TRANSACTION_COLUMNS}
         ),
         ev AS (
             INSERT INTO outbox (topic, aggregate_id, payload)
             SELECT 'stock.' || kind, product_id, jsonb_build_object(
                 'transaction_id', id, 'kind', kind, 'product_id', product_id,
                 'warehouse_id', warehouse_id, 'location_id', location_id, 'lot_id', lot_id,
                 'lot', lot, 'expires_on', expires_on, 'serial', serial, 'quantity', quantity,
                 'balance_after', balance_after, 'warehouse_balance_after', warehouse_balance_after,
                 'transfer_id', transfer_id)
             FROM tx ORDER BY id
         )
         SELECT {TRANSACTION_COLUMNS} FROM tx"
    )))
    .bind(&pos.product)
    .bind(&pos.warehouse)
    .bind(&pos.location)
    .bind(&pos.lot)
    .bind(&pos.quantity)
    .bind(&lvl.0)
    .bind(&lvl.1)
    .bind(&lvl.2)
    .bind(&ser.product)
    .bind(&ser.serial)
    .bind(&ser.was_in_stock)
    .bind(&ser.warehouse)
    .bind(&ser.location)
    .bind(&ser.lot)
    .bind(&tx.id)
    .bind(&tx.kind)
    .bind(&tx.product)
    .bind(&tx.warehouse)
    .bind(&tx.location)
    .bind(&tx.lot_id)
    .bind(&tx.quantity)
    .bind(&tx.balance)
    .bind(&tx.warehouse_balance)
    .bind(&tx.unit_cost)
    .bind(&tx.transfer)
    .bind(&tx.reason)
    .bind(&tx.reference)
    .bind(&tx.note)
    .bind(&tx.lot)
    .bind(&tx.expires)
    .bind(&tx.serial)
    .bind(&tx.count)
    .bind(&tx.user)
    .bind(&tx.device)
    .fetch_all(&mut *conn)
    .await?;
    Ok(written)
}

#[derive(Default)]
struct PositionColumns {
    product: Vec<Uuid>,
    warehouse: Vec<Uuid>,
    location: Vec<Uuid>,
    lot: Vec<Option<Uuid>>,
    quantity: Vec<i64>,
}

#[derive(Default)]
struct SerialColumns {
    product: Vec<Uuid>,
    serial: Vec<String>,
    was_in_stock: Vec<bool>,
    warehouse: Vec<Option<Uuid>>,
    location: Vec<Option<Uuid>>,
    lot: Vec<Option<Uuid>>,
}

#[derive(Default)]
struct LedgerColumns {
    id: Vec<Uuid>,
    kind: Vec<&'static str>,
    product: Vec<Uuid>,
    warehouse: Vec<Uuid>,
    location: Vec<Uuid>,
    lot_id: Vec<Option<Uuid>>,
    quantity: Vec<i64>,
    balance: Vec<i64>,
    warehouse_balance: Vec<i64>,
    unit_cost: Vec<Option<rust_decimal::Decimal>>,
    transfer: Vec<Option<Uuid>>,
    reason: Vec<Option<&'static str>>,
    reference: Vec<Option<String>>,
    note: Vec<Option<String>>,
    lot: Vec<Option<String>>,
    expires: Vec<Option<Date>>,
    serial: Vec<Option<String>>,
    count: Vec<Option<Uuid>>,
    user: Vec<Option<Uuid>>,
    device: Vec<Option<Uuid>>,
}
