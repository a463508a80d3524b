//! Reservations never over-promise: the lifecycle through the API, expiry,
//! and 48 tasks reserving, issuing, cancelling and receiving on one product.

mod common;

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use common::{assert_problem, TestApp};
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

struct Fixture {
    app: TestApp,
    token: String,
    product: Uuid,
    warehouse: Uuid,
}

async fn fixture(db: PgPool) -> Fixture {
    let app = TestApp::spawn(db).await;
    let token = app.token("clerk").await;
    let product = sqlx::query_scalar(
        "INSERT INTO products (sku, name) VALUES ('R-1', 'Reserved thing') RETURNING id",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    let warehouse = app.create_warehouse_sql("MAIN").await;
    Fixture {
        app,
        token,
        product,
        warehouse,
    }
}

impl Fixture {
    async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.app.post_as(path, &self.token, &body).await
    }

    fn movement(&self, q: i64) -> Value {
        json!({"product_id": self.product, "warehouse_id": self.warehouse, "quantity": q})
    }

    async fn reserve(&self, q: i64, extra: Value) -> reqwest::Response {
        let mut body = self.movement(q);
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        self.post("/api/v1/reservations", body).await
    }

    /// (quantity, reserved) of the level, and the sum of what open
    /// reservations hold.
    async fn books(&self) -> (i64, i64, i64) {
        sqlx::query_as(
            "SELECT l.quantity, l.reserved,
                    COALESCE((SELECT sum(quantity - fulfilled_quantity) FROM reservations
                              WHERE status = 'active'), 0)::bigint
             FROM stock_levels l",
        )
        .fetch_one(&self.app.db)
        .await
        .unwrap()
    }
}

async fn id_of(resp: reqwest::Response) -> Uuid {
    assert_eq!(resp.status(), 201);
    let body: Value = resp.json().await.unwrap();
    body["id"].as_str().unwrap().parse().unwrap()
}

#[sqlx::test]
async fn a_reservation_holds_stock_until_issued_cancelled_or_expired(db: PgPool) {
    let f = fixture(db).await;
    assert_eq!(
        f.post("/api/v1/stock/receive", f.movement(10))
            .await
            .status(),
        201
    );

    let r = f.reserve(6, json!({"reference": "SO-1"})).await;
    assert_eq!(r.status(), 201);
    let first: Value = r.json().await.unwrap();
    assert_eq!(first["status"], "active");
    assert_eq!(first["open_quantity"], 6);
    let so1: Uuid = first["id"].as_str().unwrap().parse().unwrap();

    // More than is available: 409 with what is.
    let over = assert_problem(f.reserve(5, json!({})).await, 409, "insufficient-stock").await;
    assert_eq!(over["available"], 4);
    // An issue without the reservation takes only the available 4.
    let refused = assert_problem(
        f.post("/api/v1/stock/issue", f.movement(5)).await,
        409,
        "insufficient-stock",
    )
    .await;
    assert_eq!(refused["available"], 4);

    // Issued against it: partly, then the rest.
    let mut against = f.movement(4);
    against["reservation_id"] = json!(so1);
    let issued: Value = f
        .post("/api/v1/stock/issue", against.clone())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(issued["transactions"][0]["reservation_id"], json!(so1));
    let now: Value = f
        .app
        .get_ok(&format!("/api/v1/reservations/{so1}"), &f.token)
        .await;
    assert_eq!(
        (now["fulfilled_quantity"].as_i64(), now["status"].as_str()),
        (Some(4), Some("active"))
    );
    against["quantity"] = json!(2);
    assert_eq!(
        f.post("/api/v1/stock/issue", against.clone())
            .await
            .status(),
        201
    );
    assert_eq!(f.books().await, (4, 0, 0));
    let done: Value = f
        .app
        .get_ok(&format!("/api/v1/reservations/{so1}"), &f.token)
        .await;
    assert_eq!(done["status"], "fulfilled");
    assert_problem(
        f.post("/api/v1/stock/issue", against).await,
        409,
        "reservation-closed",
    )
    .await;

    // Cancelled: what it held is available again; twice is refused.
    let so2 = id_of(f.reserve(3, json!({"reference": "SO-2"})).await).await;
    assert_eq!(f.books().await, (4, 3, 3));
    let cancel = format!("/api/v1/reservations/{so2}/cancel");
    let cancelled = f.app.post_as(&cancel, &f.token, &json!({})).await;
    assert_eq!(cancelled.status(), 200);
    assert_eq!(
        cancelled.json::<Value>().await.unwrap()["status"],
        "cancelled"
    );
    assert_eq!(f.books().await, (4, 0, 0));
    assert_problem(
        f.app.post_as(&cancel, &f.token, &json!({})).await,
        409,
        "reservation-closed",
    )
    .await;

    // Expiring: released from its expires_at on, before the job runs.
    let soon = (time::OffsetDateTime::now_utc() + time::Duration::seconds(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let so3 = id_of(f.reserve(4, json!({"expires_at": soon})).await).await;
    assert_problem(
        f.post("/api/v1/stock/issue", f.movement(1)).await,
        409,
        "insufficient-stock",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let listed: Value = f
        .app
        .get_ok("/api/v1/reservations?status=expired", &f.token)
        .await;
    assert_eq!(listed["items"][0]["id"], json!(so3), "{listed}");
    assert_eq!(
        f.post("/api/v1/stock/issue", f.movement(1)).await.status(),
        201
    );
    // That issue wrote the level, which released the reservation for good.
    let status: String = sqlx::query_scalar("SELECT status FROM reservations WHERE id = $1")
        .bind(so3)
        .fetch_one(&f.app.db)
        .await
        .unwrap();
    assert_eq!(status, "expired");
    assert_eq!(f.books().await, (3, 0, 0));
    // In the past: refused.
    assert_problem(
        f.reserve(1, json!({"expires_at": "2020-01-01T00:00:00Z"}))
            .await,
        422,
        "validation",
    )
    .await;
    // Every change is an event.
    let topics: Vec<String> =
        sqlx::query_scalar("SELECT topic FROM outbox WHERE topic LIKE 'reservation.%' ORDER BY id")
            .fetch_all(&f.app.db)
            .await
            .unwrap();
    assert_eq!(
        topics,
        [
            "reservation.created",
            "reservation.fulfilled",
            "reservation.created",
            "reservation.cancelled",
            "reservation.created",
            "reservation.expired"
        ]
    );
}

#[sqlx::test]
async fn the_expiry_job_releases_what_expired_reservations_hold(db: PgPool) {
    let f = fixture(db).await;
    f.post("/api/v1/stock/receive", f.movement(5)).await;
    let soon = (time::OffsetDateTime::now_utc() + time::Duration::seconds(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    id_of(f.reserve(5, json!({"expires_at": soon})).await).await;
    assert_eq!(f.books().await, (5, 5, 5));
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let state = inventory_api::state::AppState::new(
        f.app.db.clone(),
        inventory_api::cache::Cache::disabled(),
        common::test_config(&[]),
    );
    assert_eq!(
        inventory_api::reservations::release_expired(&state)
            .await
            .unwrap(),
        1
    );
    assert_eq!(f.books().await, (5, 0, 0));
    assert_eq!(
        inventory_api::reservations::release_expired(&state)
            .await
            .unwrap(),
        0
    );
}

/// 48 tasks on ONE product: reserving, issuing with and without their
/// reservations, cancelling, receiving. `reserved <= quantity` is watched
/// throughout; afterwards `reserved` is what the open reservations hold, and
/// every refusal was a 409.
#[sqlx::test]
async fn concurrent_reservations_issues_and_receipts_never_over_promise(db: PgPool) {
    let f = Arc::new(fixture(db).await);
    f.post("/api/v1/stock/receive", f.movement(40)).await;
    let watching = Arc::new(AtomicBool::new(true));
    let watcher = {
        let (db, watching) = (f.app.db.clone(), watching.clone());
        tokio::spawn(async move {
            let mut seen = 0;
            while watching.load(Ordering::Relaxed) {
                let (q, r): (i64, i64) =
                    sqlx::query_as("SELECT quantity, reserved FROM stock_levels")
                        .fetch_one(&db)
                        .await
                        .unwrap();
                assert!(r <= q && r >= 0, "reserved {r} of {q}");
                seen += 1;
            }
            seen
        })
    };
    let tasks: Vec<_> = (0..48)
        .map(|i| {
            let f = f.clone();
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                for round in 0..4 {
                    let status = match (i + round) % 4 {
                        // Reserve, then issue part of it or cancel it.
                        0 => {
                            let r = f
                                .reserve(3, json!({"reference": format!("T{i}-{round}")}))
                                .await;
                            let status = r.status().as_u16();
                            if status == 201 {
                                let id: Value = r.json().await.unwrap();
                                let id = id["id"].as_str().unwrap().to_owned();
                                if i % 2 == 0 {
                                    let mut issue = f.movement(2);
                                    issue["reservation_id"] = json!(id);
                                    let s = f
                                        .post("/api/v1/stock/issue", issue)
                                        .await
                                        .status()
                                        .as_u16();
                                    assert_eq!(
                                        s, 201,
                                        "an issue of its own reservation always goes"
                                    );
                                } else {
                                    let cancel = format!("/api/v1/reservations/{id}/cancel");
                                    let s =
                                        f.app.post_as(&cancel, &f.token, &json!({})).await.status();
                                    assert_eq!(s, 200);
                                }
                            }
                            status
                        }
                        1 | 2 => f
                            .post("/api/v1/stock/issue", f.movement(2))
                            .await
                            .status()
                            .as_u16(),
                        _ => f
                            .post("/api/v1/stock/receive", f.movement(3))
                            .await
                            .status()
                            .as_u16(),
                    };
                    statuses.push(status);
                }
                statuses
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.extend(t.await.unwrap());
    }
    watching.store(false, Ordering::Relaxed);
    assert!(watcher.await.unwrap() > 0);
    assert!(
        statuses.iter().all(|s| [201, 409].contains(s)),
        "applied or 409, never anything else: {statuses:?}"
    );
    assert!(statuses.contains(&409), "the contention was real");
    let (quantity, reserved, open) = f.books().await;
    assert_eq!(
        reserved, open,
        "reserved is what the open reservations hold"
    );
    assert!(reserved <= quantity);
    // The ledger adds up: quantity = receipts - issues.
    let ledger: i64 = sqlx::query_scalar("SELECT sum(quantity)::bigint FROM stock_transactions")
        .fetch_one(&f.app.db)
        .await
        .unwrap();
    assert_eq!(ledger, quantity);
}
