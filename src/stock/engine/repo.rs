//! The engine's SQL: one statement per phase (see the module header of
//! [`super`] for the order and why it cannot deadlock).

use std::collections::{BTreeMap, HashMap};

use rust_decimal::Decimal;
use sqlx::PgConnection;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use super::{
    plan::{
        Catalog, LevelState, LocationInfo, LotInfo, PosKey, ProductInfo, ReservationInfo, Row,
        State, WarehouseInfo,
    },
    Movement,
};
use crate::{
    catalog::model::Tracking,
    error::Result,
    stock::{held, model::StockTransaction, repo::TRANSACTION_COLUMNS},
};

/// Advisory-lock class of "serial numbers of one product are changing".
const SERIAL_LOCK_CLASS: i32 = 0x5e71;

/// What [`load`] locks and reads.
#[derive(Debug)]
pub struct LoadRequest {
    /// (product, warehouse) levels to lock, sorted.
    pub pairs: Vec<(Uuid, Uuid)>,
    pub products: Vec<Uuid>,
    pub warehouses: Vec<Uuid>,
    pub locations: Vec<Uuid>,
    /// (product, code) of lots named.
    pub lots: Vec<(Uuid, String)>,
    pub reservations: Vec<Uuid>,
    /// Reservations that expire at or before this instant are released.
    pub cutoff: OffsetDateTime,
}

impl LoadRequest {
    pub fn new(movements: &[Movement], cutoff: OffsetDateTime) -> Self {
        let mut r = Self {
            pairs: movements.iter().flat_map(Movement::pairs).collect(),
            products: movements.iter().map(|m| m.product_id).collect(),
            warehouses: movements
                .iter()
                .flat_map(|m| std::iter::once(m.warehouse_id).chain(m.to_warehouse_id))
                .collect(),
            locations: movements
                .iter()
                .flat_map(|m| m.location_id.into_iter().chain(m.to_location_id))
                .collect(),
            lots: movements
                .iter()
                .filter_map(|m| m.lot.clone().map(|l| (m.product_id, l)))
                .collect(),
            reservations: movements.iter().filter_map(|m| m.reservation_id).collect(),
            cutoff,
        };
        r.pairs.sort();
        r.pairs.dedup();
        for v in [
            &mut r.products,
            &mut r.warehouses,
            &mut r.locations,
            &mut r.reservations,
        ] {
            v.sort();
            v.dedup();
        }
        r
    }
}

/// What [`load`] found.
#[derive(Debug, Default)]
pub struct Loaded {
    pub cat: Catalog,
    /// The locked levels, with expired reservations already released.
    pub levels: HashMap<(Uuid, Uuid), LevelState>,
    pub positions: BTreeMap<PosKey, i64>,
    /// What expired reservations still held, per level: released when the
    /// level is written.
    pub expired: HashMap<(Uuid, Uuid), i64>,
    /// Levels that changed between the statement's snapshot and taking
    /// their lock: what was read under them must be read again.
    pub stale: Vec<(Uuid, Uuid)>,
}

impl Loaded {
    /// Replaces what was read under the levels `again` loaded.
    pub fn merge(&mut self, again: Loaded) {
        let pairs: Vec<(Uuid, Uuid)> = again.levels.keys().copied().collect();
        self.positions.retain(|k, _| !pairs.contains(&(k.0, k.1)));
        self.positions.extend(again.positions);
        for pair in &pairs {
            self.expired.remove(pair);
        }
        self.expired.extend(again.expired);
        self.levels.extend(again.levels);
        self.cat.locations.extend(again.cat.locations);
        self.cat.lots.extend(again.cat.lots);
        self.cat.reservations.extend(again.cat.reservations);
    }
}

/// One row of [`load`]'s answer; `kind` says which columns mean what.
struct LoadRow {
    kind: String,
    a: Uuid,
    b: Option<Uuid>,
    c: Option<Uuid>,
    d: Option<Uuid>,
    n: Option<i64>,
    m: Option<i64>,
    code: Option<String>,
    code2: Option<String>,
    flag: Option<bool>,
    day: Option<Date>,
    x: Option<Decimal>,
    y: Option<Decimal>,
}

/// Read by position, in the order of [`load`]'s select list: a scanner batch
/// of 500 events answers ~2,000 rows of 13 columns, and looking each column
/// up by name (a hash of its name per value) was ~13 % of the API's CPU in
/// the scanner benchmark (bench/README "The engine's load read by position").
impl<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> for LoadRow {
    fn from_row(r: &'r sqlx::postgres::PgRow) -> sqlx::Result<Self> {
        use sqlx::Row;
        Ok(Self {
            kind: r.try_get(0)?,
            a: r.try_get(1)?,
            b: r.try_get(2)?,
            c: r.try_get(3)?,
            d: r.try_get(4)?,
            n: r.try_get(5)?,
            m: r.try_get(6)?,
            code: r.try_get(7)?,
            code2: r.try_get(8)?,
            flag: r.try_get(9)?,
            day: r.try_get(10)?,
            x: r.try_get(11)?,
            y: r.try_get(12)?,
        })
    }
}

/// Takes the level locks and reads what planning needs, in ONE statement:
/// products, warehouses (with their DEFAULT location), the locations, lots
/// and reservations named, and the positions and expired reservations under
/// the locked levels.
///
/// The locks: every transaction that moves stock acquires its levels in
/// (product, warehouse) order, in ONE pass. When the snapshot holds every
/// level asked for (the usual case; levels are never deleted), that pass is
/// `SELECT ... ORDER BY ... FOR UPDATE`, which writes no new row version.
/// Otherwise the INSERT visits the pairs in that order and either inserts
/// the row (holding it until commit) or locks the existing one (`ON CONFLICT
/// DO UPDATE` locks it, at the price of a row version per level), first-time
/// rows included. (Creating the missing rows in one pass and locking in a
/// second does not have that property: the row a transaction has just
/// inserted is held, out of order, while it waits for the locks of the
/// second pass.)
///
/// The reads see the statement's snapshot, taken before any lock wait. Every
/// change under a level (positions, reservations) bumps its `version`, so a
/// level whose locked version differs from the version in the snapshot is
/// reported `stale` (the caller loads it again, now holding the lock);
/// otherwise what was read is current. Unknown products and warehouses lock
/// nothing.
#[tracing::instrument(skip_all, fields(levels = req.pairs.len()))]
pub async fn load(conn: &mut PgConnection, req: &LoadRequest) -> Result<Loaded> {
    let (pair_products, pair_warehouses): (Vec<Uuid>, Vec<Uuid>) =
        req.pairs.iter().copied().unzip();
    let (lot_products, lot_codes): (Vec<Uuid>, Vec<String>) = req.lots.iter().cloned().unzip();
    let rows: Vec<LoadRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH pairs AS (SELECT * FROM unnest($1::uuid[], $2::uuid[]) AS t(p, w)),
         seen AS (
             SELECT s.product_id, s.warehouse_id, s.version
             FROM pairs t JOIN stock_levels s ON s.product_id = t.p AND s.warehouse_id = t.w
         ),
         all_there AS (SELECT count(*) = (SELECT count(*) FROM pairs) AS yes FROM seen),
         locked_existing AS (
             SELECT s.product_id, s.warehouse_id, s.quantity, s.reserved, s.version, s.value, s.unit_cost
             FROM stock_levels s JOIN pairs t ON s.product_id = t.p AND s.warehouse_id = t.w
             WHERE (SELECT yes FROM all_there)
             ORDER BY s.product_id, s.warehouse_id
             FOR UPDATE OF s
         ),
         locked_created AS (
             INSERT INTO stock_levels AS s (product_id, warehouse_id, quantity)
             SELECT t.p, t.w, 0 FROM pairs t
             WHERE NOT (SELECT yes FROM all_there)
               AND EXISTS (SELECT 1 FROM products WHERE id = t.p)
               AND EXISTS (SELECT 1 FROM warehouses WHERE id = t.w)
             ORDER BY t.p, t.w
             ON CONFLICT (product_id, warehouse_id) DO UPDATE SET quantity = s.quantity
             RETURNING s.product_id, s.warehouse_id, s.quantity, s.reserved, s.version, s.value, s.unit_cost
         ),
         locked AS (SELECT * FROM locked_existing UNION ALL SELECT * FROM locked_created)
         SELECT 'L' AS kind, product_id AS a, warehouse_id AS b, NULL::uuid AS c, NULL::uuid AS d,
                quantity AS n, reserved AS m, version::text AS code, NULL AS code2, NULL::bool AS flag,
                NULL::date AS day, value AS x, unit_cost AS y
         FROM locked
         UNION ALL
         SELECT 'V', product_id, warehouse_id, NULL, NULL, NULL, NULL, version::text, NULL, NULL,
                NULL, NULL, NULL
         FROM seen
         UNION ALL
         SELECT 's', s.product_id, s.warehouse_id, s.location_id, s.lot_id, {quantity}, NULL,
                loc.code, lot.code, loc.active, lot.expires_on, NULL, NULL
         FROM pairs t JOIN stock_positions s ON s.product_id = t.p AND s.warehouse_id = t.w
         {join_level}
         JOIN locations loc ON loc.id = s.location_id
         LEFT JOIN lots lot ON lot.id = s.lot_id
         UNION ALL
         SELECT 'X', r.product_id, r.warehouse_id, NULL, NULL, sum(r.quantity - r.fulfilled_quantity)::bigint,
                NULL, NULL, NULL, NULL, NULL, NULL, NULL
         FROM pairs t JOIN reservations r ON r.product_id = t.p AND r.warehouse_id = t.w
         WHERE r.status = 'active' AND r.expires_at <= $9
         GROUP BY r.product_id, r.warehouse_id
         UNION ALL
         SELECT 'R', r.id, r.product_id, r.warehouse_id, r.lot_id, r.quantity, r.fulfilled_quantity,
                lot.code, r.status, r.status = 'active' AND (r.expires_at IS NULL OR r.expires_at > $9),
                lot.expires_on, NULL, NULL
         FROM reservations r LEFT JOIN lots lot ON lot.id = r.lot_id
         WHERE r.id = ANY($8)
         UNION ALL
         SELECT 'p', id, NULL, NULL, NULL, NULL, NULL, tracking, NULL, active, NULL, NULL, unit_cost
         FROM products WHERE id = ANY($3)
         UNION ALL
         SELECT 'w', w.id, l.id, NULL, NULL, NULL, NULL, NULL, NULL, w.active, NULL, NULL, NULL
         FROM warehouses w
         JOIN locations l ON l.warehouse_id = w.id AND lower(l.code) = 'default'
         WHERE w.id = ANY($4)
         UNION ALL
         SELECT 'l', id, warehouse_id, NULL, NULL, NULL, NULL, code, NULL, active, NULL, NULL, NULL
         FROM locations
         WHERE id = ANY($5) OR (warehouse_id = ANY($4) AND lower(code) = 'default')
         UNION ALL
         SELECT 't', l.id, l.product_id, NULL, NULL, NULL, NULL, l.code, NULL, NULL, l.expires_on, NULL, NULL
         FROM lots l
         JOIN unnest($6::uuid[], $7::text[]) AS t(p, c) ON l.product_id = t.p AND l.code = t.c",
        quantity = held::quantity("s", "lv"),
        join_level = held::join_level("s", "lv"),
    ))
    )
    .bind(&pair_products)
    .bind(&pair_warehouses)
    .bind(&req.products)
    .bind(&req.warehouses)
    .bind(&req.locations)
    .bind(&lot_products)
    .bind(&lot_codes)
    .bind(&req.reservations)
    .bind(req.cutoff)
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Loaded::default();
    let cat = &mut out.cat;
    let mut locked_versions: HashMap<(Uuid, Uuid), String> = HashMap::new();
    let mut seen_versions: HashMap<(Uuid, Uuid), String> = HashMap::new();
    for r in rows {
        let b = r.b.unwrap_or_default();
        match r.kind.as_str() {
            "L" => {
                out.levels.insert(
                    (r.a, b),
                    LevelState {
                        quantity: r.n.unwrap_or(0),
                        reserved: r.m.unwrap_or(0),
                        value: r.x.unwrap_or_default(),
                        cost: r.y.unwrap_or_default(),
                    },
                );
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
                    add_lot(cat, r.a, lot, code, r.day);
                }
                out.positions
                    .insert((r.a, b, location, r.d), r.n.unwrap_or(0));
            }
            "X" => {
                out.expired.insert((r.a, b), r.n.unwrap_or(0));
            }
            "R" => {
                if let (Some(lot), Some(code)) = (r.d, r.code.clone()) {
                    add_lot(cat, b, lot, code, r.day);
                }
                cat.reservations.insert(
                    r.a,
                    ReservationInfo {
                        product_id: b,
                        warehouse_id: r.c.unwrap_or_default(),
                        lot: r.code,
                        quantity: r.n.unwrap_or(0),
                        fulfilled: r.m.unwrap_or(0),
                        open: r.flag.unwrap_or(false),
                    },
                );
            }
            "p" => {
                let tracking = match r.code.as_deref() {
                    Some("lot") => Tracking::Lot,
                    Some("serial") => Tracking::Serial,
                    _ => Tracking::None,
                };
                cat.products.insert(
                    r.a,
                    ProductInfo {
                        active: r.flag.unwrap_or(false),
                        tracking,
                        unit_cost: r.y.unwrap_or_default(),
                    },
                );
            }
            "w" => {
                cat.warehouses.insert(
                    r.a,
                    WarehouseInfo {
                        active: r.flag.unwrap_or(false),
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
            _ => add_lot(cat, b, r.a, r.code.unwrap_or_default(), r.day),
        }
    }
    // Expired reservations are released for planning (and for real when
    // the level is written).
    for (pair, held) in &out.expired {
        if let Some(level) = out.levels.get_mut(pair) {
            level.reserved -= held;
        }
    }
    // A level created by this statement has version 0 and nothing under it;
    // one that another transaction created or changed meanwhile differs.
    out.stale = locked_versions
        .into_iter()
        .filter(|(pair, locked)| match seen_versions.get(pair) {
            Some(seen) => seen != locked,
            None => locked != "0",
        })
        .map(|(pair, _)| pair)
        .collect();
    out.stale.sort();
    Ok(out)
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
    cat: &Catalog,
    state: &State,
    expired: &HashMap<(Uuid, Uuid), i64>,
    cutoff: OffsetDateTime,
    rows: &[(&Movement, &Row)],
) -> Result<Vec<StockTransaction>> {
    if state.changed_levels.is_empty() {
        return Ok(Vec::new());
    }
    // The DEFAULT location's unlotted position is counted on its level
    // (migration 20261205070001): its row is never written here.
    let default_of = |warehouse: &Uuid| cat.warehouses[warehouse].default_location;
    let mut pos = PositionColumns::default();
    for key in &state.changed_positions {
        if key.3.is_none() && key.2 == default_of(&key.1) {
            continue;
        }
        pos.product.push(key.0);
        pos.warehouse.push(key.1);
        pos.location.push(key.2);
        pos.lot.push(key.3);
        pos.quantity.push(state.positions[key]);
    }
    let mut lvl = LevelColumns::default();
    for key in &state.changed_levels {
        let l = state.levels[key];
        lvl.product.push(key.0);
        lvl.warehouse.push(key.1);
        lvl.quantity.push(l.quantity);
        // Every existing level's DEFAULT position was loaded with it; a level
        // this transaction created has one only if planning put stock there.
        let default_key = (key.0, key.1, default_of(&key.1), None);
        let at_default = state.positions.get(&default_key).copied().unwrap_or(0);
        lvl.elsewhere.push(l.quantity - at_default);
        lvl.default_changed
            .push(state.changed_positions.contains(&default_key));
        lvl.reserved.push(l.reserved);
        lvl.value.push(l.value);
        lvl.cost.push(l.cost);
        lvl.release_expired
            .push(expired.get(key).is_some_and(|held| *held > 0));
    }
    let mut res = (Vec::new(), Vec::new(), Vec::new());
    for (id, (fulfilled, status)) in &state.reservation_changes {
        res.0.push(*id);
        res.1.push(*fulfilled);
        res.2.push(*status);
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
        tx.unit_cost.push(r.unit_cost);
        tx.value_after.push(r.value_after);
        tx.reservation.push(r.reservation_id);
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
             UPDATE stock_levels s SET quantity = t.q, elsewhere = t.e, reserved = t.r, value = t.v,
                 unit_cost = t.c, version = s.version + 1, updated_at = now(),
                 default_updated_at = CASE WHEN t.d THEN now() ELSE s.default_updated_at END
             FROM unnest($6::uuid[], $7::uuid[], $8::bigint[], $45::bigint[], $46::bool[],
                         $35::bigint[], $36::numeric[], $37::numeric[]) AS t(p, w, q, e, d, r, v, c)
             WHERE s.product_id = t.p AND s.warehouse_id = t.w
         ),
         -- Reservations past expires_at on the levels written are released
         -- here (planning already left them out of `reserved`).
         expired AS (
             UPDATE reservations r SET status = 'expired', closed_at = now()
             FROM unnest($6::uuid[], $7::uuid[], $38::bool[]) AS t(p, w, release)
             WHERE t.release AND r.product_id = t.p AND r.warehouse_id = t.w
               AND r.status = 'active' AND r.expires_at <= $39
             RETURNING r.*
         ),
         reserved AS (
             UPDATE reservations r SET fulfilled_quantity = t.f, status = t.s,
                 closed_at = CASE WHEN t.s <> 'active' THEN now() END
             FROM unnest($40::uuid[], $41::bigint[], $42::text[]) AS t(id, f, s)
             WHERE r.id = t.id
             RETURNING r.*
         ),
         reservation_events AS (
             INSERT INTO outbox (topic, aggregate_id, payload)
             SELECT 'reservation.' || r.status, r.product_id, jsonb_build_object(
                 'id', r.id, 'status', r.status, 'product_id', r.product_id,
                 'warehouse_id', r.warehouse_id, 'quantity', r.quantity,
                 'fulfilled_quantity', r.fulfilled_quantity, 'reference', r.reference)
             FROM (SELECT * FROM expired UNION ALL SELECT * FROM reserved WHERE status <> 'active') r
             ORDER BY r.id
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
                 reference, note, lot, expires_on, serial, count_id, actor_user_id, actor_device_id,
                 value_after, reservation_id)
             SELECT * FROM unnest($15::uuid[], $16::text[], $17::uuid[], $18::uuid[], $19::uuid[],
                 $20::uuid[], $21::bigint[], $22::bigint[], $23::bigint[], $24::numeric[], $25::uuid[],
                 $26::text[], $27::text[], $28::text[], $29::text[], $30::date[], $31::text[],
                 $32::uuid[], $33::uuid[], $34::uuid[], $43::numeric[], $44::uuid[])
             RETURNING *
         ),
         -- The payload is one SQL definition, shared with the one-statement
         -- path (migration 20261202220001).
         ev AS (
             INSERT INTO outbox (topic, aggregate_id, payload)
             SELECT 'stock.' || kind, product_id, stock_event_payload(tx::stock_transactions)
             FROM tx ORDER BY id
         )
         SELECT {TRANSACTION_COLUMNS} FROM tx"
    )))
    .bind(&pos.product)
    .bind(&pos.warehouse)
    .bind(&pos.location)
    .bind(&pos.lot)
    .bind(&pos.quantity)
    .bind(&lvl.product)
    .bind(&lvl.warehouse)
    .bind(&lvl.quantity)
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
    .bind(&lvl.reserved)
    .bind(&lvl.value)
    .bind(&lvl.cost)
    .bind(&lvl.release_expired)
    .bind(cutoff)
    .bind(&res.0)
    .bind(&res.1)
    .bind(&res.2)
    .bind(&tx.value_after)
    .bind(&tx.reservation)
    .bind(&lvl.elsewhere)
    .bind(&lvl.default_changed)
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
struct LevelColumns {
    product: Vec<Uuid>,
    warehouse: Vec<Uuid>,
    quantity: Vec<i64>,
    elsewhere: Vec<i64>,
    default_changed: Vec<bool>,
    reserved: Vec<i64>,
    value: Vec<Decimal>,
    cost: Vec<Decimal>,
    release_expired: Vec<bool>,
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
    unit_cost: Vec<Decimal>,
    value_after: Vec<Decimal>,
    reservation: Vec<Option<Uuid>>,
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
