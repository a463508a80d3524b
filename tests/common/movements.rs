//! Stock for the read tests (locations, positions, lots, serials), posted
//! through the movement engine itself (`stock::engine`, the one writer of
//! stock), from the JSON bodies of `POST /api/v1/stock/receive|issue|transfer`
//! (`location_id`, `lot`, `expires_on`, `serials`, `from_location_id`,
//! `to_location_id`). A refusal fails the test.
#![allow(dead_code)]

use inventory_api::stock::engine::{self, Amount, MoveKind, Movement};
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

/// The user the ledger rows are written as.
#[derive(Clone, Copy)]
pub struct Actor(pub Uuid);

fn uuid(body: &Value, field: &str) -> Option<Uuid> {
    body[field].as_str().map(|s| s.parse().expect("a UUID"))
}

fn text(body: &Value, field: &str) -> Option<String> {
    body[field].as_str().map(str::to_owned)
}

/// The movement a request body asks for.
fn movement(kind: MoveKind, actor: Actor, body: &Value) -> Movement {
    let quantity = body["quantity"].as_i64().expect("quantity");
    let warehouse = uuid(body, "warehouse_id")
        .or_else(|| uuid(body, "from_warehouse_id"))
        .expect("a warehouse");
    let amount = if kind == MoveKind::Receipt {
        Amount::Add(quantity)
    } else {
        Amount::Take(quantity)
    };
    let mut m = Movement::new(
        kind,
        uuid(body, "product_id").expect("product_id"),
        warehouse,
        amount,
        engine::Actor::User(actor.0),
    );
    m.location_id = uuid(body, "location_id").or_else(|| uuid(body, "from_location_id"));
    m.to_warehouse_id = uuid(body, "to_warehouse_id");
    m.to_location_id = uuid(body, "to_location_id");
    m.lot = text(body, "lot");
    m.expires_on = text(body, "expires_on").map(|d| {
        time::Date::parse(&d, &time::format_description::well_known::Iso8601::DATE).expect("a date")
    });
    m.serials = body["serials"]
        .as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default();
    m.reference = text(body, "reference");
    m.allow_expired = body["allow_expired"].as_bool().unwrap_or(false);
    m
}

async fn post(db: &PgPool, m: Movement) {
    let mut tx = db.begin().await.unwrap();
    engine::post_one(&mut tx, &m)
        .await
        .unwrap_or_else(|e| panic!("{:?} refused: {e:?}", m.kind));
    tx.commit().await.unwrap();
}

pub async fn receive(db: &PgPool, actor: Actor, body: Value) {
    post(db, movement(MoveKind::Receipt, actor, &body)).await;
}

pub async fn issue(db: &PgPool, actor: Actor, body: Value) {
    post(db, movement(MoveKind::Issue, actor, &body)).await;
}

pub async fn transfer(db: &PgPool, actor: Actor, body: Value) {
    post(db, movement(MoveKind::Transfer, actor, &body)).await;
}
