//! Stock for the read tests (locations, positions, lots, serials), written by
//! direct SQL in the shape of the movement API: `receive`, `issue` and
//! `transfer` take the JSON bodies of `POST /api/v1/stock/receive|issue|transfer`
//! (`location_id`, `lot`, `expires_on`, `serials`, `from_location_id`,
//! `to_location_id`). Until the movement engine lands they write what it will
//! write: the level, the position, the lot, the ledger row (with
//! `location_id`, `lot_id`, `warehouse_balance_after`) and serial numbers.
//! Once it has, each body becomes `app.post_as("/api/v1/stock/...", token, body)`
//! and nothing else in the tests changes.
//!
//! Deliberately simple: no FEFO (an issue names its lot and location, or takes
//! the unlotted stock at DEFAULT), no refusals beyond the schema's CHECKs.
#![allow(dead_code)]

use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// The user the ledger rows are written as.
#[derive(Clone, Copy)]
pub struct Actor(pub Uuid);

fn uuid(body: &Value, field: &str) -> Option<Uuid> {
    body[field].as_str().map(|s| s.parse().expect("a UUID"))
}

fn text<'a>(body: &'a Value, field: &str) -> Option<&'a str> {
    body[field].as_str()
}

/// One signed change of one position and its ledger row; returns the ledger row id.
#[allow(clippy::too_many_arguments)]
async fn post_row(
    conn: &mut PgConnection,
    actor: Actor,
    kind: &str,
    product: Uuid,
    warehouse: Uuid,
    location: Option<Uuid>,
    lot: Option<(&str, Option<&str>)>,
    delta: i64,
    reference: Option<&str>,
    transfer_id: Option<Uuid>,
    serial: Option<&str>,
) -> Uuid {
    let location: Uuid = match location {
        Some(l) => l,
        None => sqlx::query_scalar(
            "SELECT id FROM locations WHERE warehouse_id = $1 AND code = 'DEFAULT'",
        )
        .bind(warehouse)
        .fetch_one(&mut *conn)
        .await
        .unwrap(),
    };
    let lot_id: Option<Uuid> = match lot {
        None => None,
        Some((code, expires_on)) => Some(
            sqlx::query_scalar(
                "INSERT INTO lots (product_id, code, expires_on) VALUES ($1, $2, $3::date)
                 ON CONFLICT (product_id, code) DO UPDATE SET code = EXCLUDED.code RETURNING id",
            )
            .bind(product)
            .bind(code)
            .bind(expires_on)
            .fetch_one(&mut *conn)
            .await
            .unwrap(),
        ),
    };
    // Create the level and the position at 0 if new, then change both.
    sqlx::query(
        "INSERT INTO stock_levels (product_id, warehouse_id, quantity) VALUES ($1, $2, 0)
         ON CONFLICT DO NOTHING",
    )
    .bind(product)
    .bind(warehouse)
    .execute(&mut *conn)
    .await
    .unwrap();
    let level: i64 = sqlx::query_scalar(
        "UPDATE stock_levels SET quantity = quantity + $3, updated_at = now()
         WHERE product_id = $1 AND warehouse_id = $2 RETURNING quantity",
    )
    .bind(product)
    .bind(warehouse)
    .bind(delta)
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO stock_positions (product_id, warehouse_id, location_id, lot_id, quantity)
         VALUES ($1, $2, $3, $4, 0) ON CONFLICT ON CONSTRAINT stock_positions_key DO NOTHING",
    )
    .bind(product)
    .bind(warehouse)
    .bind(location)
    .bind(lot_id)
    .execute(&mut *conn)
    .await
    .unwrap();
    let balance: i64 = sqlx::query_scalar(
        "UPDATE stock_positions SET quantity = quantity + $5, updated_at = now()
         WHERE product_id = $1 AND warehouse_id = $2 AND location_id = $3
           AND lot_id IS NOT DISTINCT FROM $4
         RETURNING quantity",
    )
    .bind(product)
    .bind(warehouse)
    .bind(location)
    .bind(lot_id)
    .bind(delta)
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    sqlx::query_scalar(
        "INSERT INTO stock_transactions (kind, product_id, warehouse_id, location_id, lot_id, lot,
             expires_on, serial, quantity, balance_after, warehouse_balance_after, reference,
             transfer_id, actor_user_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7::date, $8, $9, $10, $11, $12, $13, $14) RETURNING id",
    )
    .bind(kind)
    .bind(product)
    .bind(warehouse)
    .bind(location)
    .bind(lot_id)
    .bind(lot.map(|(code, _)| code))
    .bind(lot.and_then(|(_, e)| e))
    .bind(serial)
    .bind(delta)
    .bind(balance)
    .bind(level)
    .bind(reference)
    .bind(transfer_id)
    .bind(actor.0)
    .fetch_one(&mut *conn)
    .await
    .unwrap()
}

/// The lot of a body: its code and expiry as given, or the expiry the lot
/// already has when the body names none.
async fn lot_of<'a>(
    conn: &mut PgConnection,
    product: Uuid,
    body: &'a Value,
) -> Option<(&'a str, Option<String>)> {
    let code = text(body, "lot")?;
    let expires = match text(body, "expires_on") {
        Some(e) => Some(e.to_owned()),
        None => sqlx::query_scalar::<_, Option<String>>(
            "SELECT expires_on::text FROM lots WHERE product_id = $1 AND code = $2",
        )
        .bind(product)
        .bind(code)
        .fetch_optional(&mut *conn)
        .await
        .unwrap()
        .flatten(),
    };
    Some((code, expires))
}

/// `POST /api/v1/stock/receive` `{product_id, warehouse_id, quantity,
/// location_id?, lot?, expires_on?, serials?, reference?}`. With serials, one
/// ledger row per serial number.
pub async fn receive(db: &PgPool, actor: Actor, body: Value) {
    let mut tx = db.begin().await.unwrap();
    let product = uuid(&body, "product_id").unwrap();
    let warehouse = uuid(&body, "warehouse_id").unwrap();
    let location = uuid(&body, "location_id");
    let lot = lot_of(&mut tx, product, &body).await;
    let lot = lot.as_ref().map(|(c, e)| (*c, e.as_deref()));
    let reference = text(&body, "reference");
    match body["serials"].as_array() {
        Some(serials) => {
            for s in serials {
                let s = s.as_str().unwrap();
                post_row(
                    &mut tx,
                    actor,
                    "receipt",
                    product,
                    warehouse,
                    location,
                    lot,
                    1,
                    reference,
                    None,
                    Some(s),
                )
                .await;
                sqlx::query(
                    "INSERT INTO serial_numbers (product_id, serial, warehouse_id, location_id, lot_id)
                     SELECT $1, $2, $3, COALESCE($4, (SELECT id FROM locations WHERE warehouse_id = $3 AND code = 'DEFAULT')),
                            (SELECT id FROM lots WHERE product_id = $1 AND code = $5)",
                )
                .bind(product)
                .bind(s)
                .bind(warehouse)
                .bind(location)
                .bind(lot.map(|(c, _)| c))
                .execute(&mut *tx)
                .await
                .unwrap();
            }
        }
        None => {
            let quantity = body["quantity"].as_i64().unwrap();
            post_row(
                &mut tx, actor, "receipt", product, warehouse, location, lot, quantity, reference,
                None, None,
            )
            .await;
        }
    }
    tx.commit().await.unwrap();
}

/// `POST /api/v1/stock/issue` `{product_id, warehouse_id, quantity,
/// location_id?, lot?, serials?, reference?}`.
pub async fn issue(db: &PgPool, actor: Actor, body: Value) {
    let mut tx = db.begin().await.unwrap();
    let product = uuid(&body, "product_id").unwrap();
    let warehouse = uuid(&body, "warehouse_id").unwrap();
    let location = uuid(&body, "location_id");
    let lot = lot_of(&mut tx, product, &body).await;
    let lot = lot.as_ref().map(|(c, e)| (*c, e.as_deref()));
    let reference = text(&body, "reference");
    match body["serials"].as_array() {
        Some(serials) => {
            for s in serials {
                let s = s.as_str().unwrap();
                post_row(
                    &mut tx,
                    actor,
                    "issue",
                    product,
                    warehouse,
                    location,
                    lot,
                    -1,
                    reference,
                    None,
                    Some(s),
                )
                .await;
                sqlx::query(
                    "UPDATE serial_numbers SET in_stock = false, left_at = now()
                     WHERE product_id = $1 AND serial = $2 AND in_stock",
                )
                .bind(product)
                .bind(s)
                .execute(&mut *tx)
                .await
                .unwrap();
            }
        }
        None => {
            let quantity = body["quantity"].as_i64().unwrap();
            post_row(
                &mut tx, actor, "issue", product, warehouse, location, lot, -quantity, reference,
                None, None,
            )
            .await;
        }
    }
    tx.commit().await.unwrap();
}

/// `POST /api/v1/stock/transfer` `{product_id, from_warehouse_id,
/// to_warehouse_id, quantity, from_location_id?, to_location_id?, lot?,
/// reference?}`: an out and an in row sharing a `transfer_id`.
pub async fn transfer(db: &PgPool, actor: Actor, body: Value) {
    let mut tx = db.begin().await.unwrap();
    let product = uuid(&body, "product_id").unwrap();
    let from = uuid(&body, "from_warehouse_id").unwrap();
    let to = uuid(&body, "to_warehouse_id").unwrap();
    let lot = lot_of(&mut tx, product, &body).await;
    let lot = lot.as_ref().map(|(c, e)| (*c, e.as_deref()));
    let quantity = body["quantity"].as_i64().unwrap();
    let reference = text(&body, "reference");
    let transfer_id = Uuid::new_v4();
    post_row(
        &mut tx,
        actor,
        "transfer_out",
        product,
        from,
        uuid(&body, "from_location_id"),
        lot,
        -quantity,
        reference,
        Some(transfer_id),
        None,
    )
    .await;
    post_row(
        &mut tx,
        actor,
        "transfer_in",
        product,
        to,
        uuid(&body, "to_location_id"),
        lot,
        quantity,
        reference,
        Some(transfer_id),
        None,
    )
    .await;
    tx.commit().await.unwrap();
}
