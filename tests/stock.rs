//! The stock ledger: movements, refusals, idempotency, and invariants under
//! real concurrency against PostgreSQL.

mod common;

use std::{
    sync::{
        atomic::{AtomicI64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
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
        "INSERT INTO products (sku, name, unit_cost) VALUES ('P-1', 'Thing', 2.5) RETURNING id",
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

    async fn receive(&self, quantity: i64) -> reqwest::Response {
        self.post("/api/v1/stock/receive", json!({"product_id": self.product, "warehouse_id": self.warehouse, "quantity": quantity}))
            .await
    }

    async fn issue(&self, quantity: i64) -> reqwest::Response {
        self.post("/api/v1/stock/issue", json!({"product_id": self.product, "warehouse_id": self.warehouse, "quantity": quantity}))
            .await
    }

    async fn level(&self, warehouse: Uuid) -> i64 {
        sqlx::query_scalar("SELECT COALESCE((SELECT quantity FROM stock_levels WHERE product_id = $1 AND warehouse_id = $2), 0)")
            .bind(self.product)
            .bind(warehouse)
            .fetch_one(&self.app.db)
            .await
            .unwrap()
    }

    async fn ledger_sum(&self, warehouse: Uuid) -> i64 {
        sqlx::query_scalar("SELECT COALESCE(sum(quantity), 0)::bigint FROM stock_transactions WHERE product_id = $1 AND warehouse_id = $2")
            .bind(self.product)
            .bind(warehouse)
            .fetch_one(&self.app.db)
            .await
            .unwrap()
    }

    async fn ledger_rows(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM stock_transactions")
            .fetch_one(&self.app.db)
            .await
            .unwrap()
    }
}

#[sqlx::test]
async fn receiving_and_issuing_move_the_level_and_write_the_ledger(db: PgPool) {
    let f = fixture(db).await;
    let resp = f
        .post(
            "/api/v1/stock/receive",
            json!({"product_id": f.product, "warehouse_id": f.warehouse, "quantity": 10,
            "unit_cost": "2.75", "reference": "PO-1"}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["transactions"][0]["kind"], "receipt");
    assert_eq!(body["transactions"][0]["quantity"], 10);
    assert_eq!(body["transactions"][0]["balance_after"], 10);
    assert_eq!(body["transactions"][0]["reference"], "PO-1");
    assert_eq!(body["levels"][0]["quantity"], 10);
    let body: Value = f.issue(4).await.json().await.unwrap();
    assert_eq!(body["transactions"][0]["quantity"], -4);
    assert_eq!(body["levels"][0]["quantity"], 6);
    assert_eq!(f.level(f.warehouse).await, 6);
    assert_eq!(f.ledger_sum(f.warehouse).await, 6);
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE topic LIKE 'stock.%'")
        .fetch_one(&f.app.db)
        .await
        .unwrap();
    assert_eq!(
        events, 2,
        "one outbox event per movement, in the same transaction"
    );

    let stock: Value = f
        .app
        .get_ok(&format!("/api/v1/products/{}/stock", f.product), &f.token)
        .await;
    assert_eq!(stock["total"], 6);
    // Valued at the moving average (the receipt's 2.75), not the product's 2.5.
    assert_eq!(stock["value"], "16.50", "6 units at 2.75");
    assert_eq!(stock["warehouses"][0]["unit_cost"], "2.7500");
    assert_eq!(stock["warehouses"][0]["warehouse_code"], "MAIN");
}

#[sqlx::test]
async fn issuing_more_than_on_hand_is_refused_with_409_and_changes_nothing(db: PgPool) {
    let f = fixture(db).await;
    f.receive(3).await;
    let body = assert_problem(f.issue(5).await, 409, "insufficient-stock").await;
    assert_eq!(body["available"], 3);
    // Nothing in stock at all: still a 409, not a 500.
    let other = f.app.create_warehouse_sql("EMPTY").await;
    let resp = f
        .post(
            "/api/v1/stock/issue",
            json!({"product_id": f.product, "warehouse_id": other, "quantity": 1}),
        )
        .await;
    let body = assert_problem(resp, 409, "insufficient-stock").await;
    assert_eq!(body["available"], 0);
    assert_eq!(f.level(f.warehouse).await, 3);
    assert_eq!(f.ledger_rows().await, 1);
}

#[sqlx::test]
async fn archived_products_inactive_warehouses_and_unknown_ids_are_refused(db: PgPool) {
    let f = fixture(db).await;
    let resp = f
        .post(
            "/api/v1/stock/receive",
            json!({"product_id": Uuid::new_v4(), "warehouse_id": f.warehouse, "quantity": 1}),
        )
        .await;
    let body = assert_problem(resp, 422, "validation").await;
    assert_eq!(body["errors"][0]["field"], "product_id");
    let resp = f
        .post(
            "/api/v1/stock/receive",
            json!({"product_id": f.product, "warehouse_id": Uuid::new_v4(), "quantity": 1}),
        )
        .await;
    assert_problem(resp, 422, "validation").await;

    sqlx::query("UPDATE warehouses SET active = false")
        .execute(&f.app.db)
        .await
        .unwrap();
    assert_problem(f.receive(1).await, 409, "warehouse-inactive").await;
    sqlx::query("UPDATE warehouses SET active = true")
        .execute(&f.app.db)
        .await
        .unwrap();
    sqlx::query("UPDATE products SET active = false")
        .execute(&f.app.db)
        .await
        .unwrap();
    assert_problem(f.receive(1).await, 409, "product-archived").await;
    assert_eq!(f.ledger_rows().await, 0);
}

#[sqlx::test]
async fn movement_input_is_validated_per_field(db: PgPool) {
    let f = fixture(db).await;
    let body = assert_problem(f.receive(0).await, 422, "validation").await;
    assert_eq!(body["errors"][0]["field"], "quantity");
    let resp = f
        .post(
            "/api/v1/stock/transfer",
            json!({"product_id": f.product, "from_warehouse_id": f.warehouse,
        "to_warehouse_id": f.warehouse, "quantity": 1}),
        )
        .await;
    let body = assert_problem(resp, 422, "validation").await;
    assert_eq!(body["errors"][0]["field"], "to_warehouse_id");
    let resp = f
        .post(
            "/api/v1/stock/adjust",
            json!({"product_id": f.product, "warehouse_id": f.warehouse,
        "new_quantity": 3, "delta": 2, "reason": "found"}),
        )
        .await;
    assert_problem(resp, 422, "validation").await;
    let resp = f
        .post(
            "/api/v1/stock/adjust",
            json!({"product_id": f.product, "warehouse_id": f.warehouse,
        "delta": 2, "reason": "because"}),
        )
        .await;
    assert_problem(resp, 400, "bad-request").await;
    let resp = f
        .post(
            "/api/v1/stock/receive",
            json!({"product_id": f.product, "warehouse_id": f.warehouse,
        "quantity": 1, "unit_cost": "-1"}),
        )
        .await;
    assert_problem(resp, 422, "validation").await;
    assert_eq!(f.ledger_rows().await, 0);
}

#[sqlx::test]
async fn adjustments_set_or_shift_the_level_with_a_reason(db: PgPool) {
    let f = fixture(db).await;
    f.receive(10).await;
    let resp = f
        .post(
            "/api/v1/stock/adjust",
            json!({"product_id": f.product, "warehouse_id": f.warehouse,
        "new_quantity": 7, "reason": "damaged", "note": "dropped a box"}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["transactions"][0]["quantity"], -3);
    assert_eq!(body["transactions"][0]["reason"], "damaged");
    let resp = f
        .post(
            "/api/v1/stock/adjust",
            json!({"product_id": f.product, "warehouse_id": f.warehouse,
        "delta": 2, "reason": "found"}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    assert_eq!(f.level(f.warehouse).await, 9);
    let resp = f
        .post(
            "/api/v1/stock/adjust",
            json!({"product_id": f.product, "warehouse_id": f.warehouse,
        "delta": -10, "reason": "lost"}),
        )
        .await;
    assert_problem(resp, 409, "insufficient-stock").await;
    let resp = f
        .post(
            "/api/v1/stock/adjust",
            json!({"product_id": f.product, "warehouse_id": f.warehouse,
        "new_quantity": 9, "reason": "correction"}),
        )
        .await;
    assert_problem(resp, 422, "validation").await;
    assert_eq!(f.ledger_sum(f.warehouse).await, 9);
}

#[sqlx::test]
async fn a_transfer_writes_two_rows_sharing_a_transfer_id(db: PgPool) {
    let f = fixture(db).await;
    let other = f.app.create_warehouse_sql("SECOND").await;
    f.receive(10).await;
    let resp = f
        .post(
            "/api/v1/stock/transfer",
            json!({"product_id": f.product, "from_warehouse_id": f.warehouse,
        "to_warehouse_id": other, "quantity": 4}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let body: Value = resp.json().await.unwrap();
    let rows = body["transactions"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["kind"], "transfer_out");
    assert_eq!(rows[1]["kind"], "transfer_in");
    assert_eq!(rows[0]["transfer_id"], rows[1]["transfer_id"]);
    assert_eq!((f.level(f.warehouse).await, f.level(other).await), (6, 4));
    let resp = f
        .post(
            "/api/v1/stock/transfer",
            json!({"product_id": f.product, "from_warehouse_id": f.warehouse,
        "to_warehouse_id": other, "quantity": 7}),
        )
        .await;
    assert_problem(resp, 409, "insufficient-stock").await;
    let resp = f
        .post(
            "/api/v1/stock/transfer",
            json!({"product_id": f.product, "from_warehouse_id": f.warehouse,
        "to_warehouse_id": Uuid::new_v4(), "quantity": 1}),
        )
        .await;
    assert_problem(resp, 422, "validation").await;
    assert_eq!(
        (f.level(f.warehouse).await, f.level(other).await),
        (6, 4),
        "refused transfers change nothing"
    );
}

#[sqlx::test]
async fn sixty_four_tasks_hammering_one_level_keep_every_invariant(db: PgPool) {
    let f = Arc::new(fixture(db).await);
    f.receive(50).await;
    let received = Arc::new(AtomicI64::new(50));
    let issued = Arc::new(AtomicI64::new(0));
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut tasks = Vec::new();
    for seed in 0..64u64 {
        let (f, received, issued) = (f.clone(), received.clone(), issued.clone());
        tasks.push(tokio::spawn(async move {
            let mut x = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let mut refusals = 0;
            while Instant::now() < deadline {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let quantity = (x >> 33) as i64 % 5 + 1;
                if (x >> 13) % 2 == 0 {
                    let status = f.receive(quantity).await.status().as_u16();
                    assert_eq!(status, 201);
                    received.fetch_add(quantity, Ordering::SeqCst);
                } else {
                    match f.issue(quantity).await.status().as_u16() {
                        201 => {
                            issued.fetch_add(quantity, Ordering::SeqCst);
                        }
                        409 => refusals += 1,
                        other => panic!("an issue answered {other}; only 201 and 409 are allowed"),
                    }
                }
            }
            refusals
        }));
    }
    let mut refusals = 0;
    for t in tasks {
        refusals += t.await.unwrap();
    }
    let expected = received.load(Ordering::SeqCst) - issued.load(Ordering::SeqCst);
    assert_eq!(
        f.level(f.warehouse).await,
        expected,
        "level = start + accepted receives - accepted issues"
    );
    assert_eq!(
        f.ledger_sum(f.warehouse).await,
        expected,
        "level = sum of the ledger"
    );
    let negative: i64 =
        sqlx::query_scalar("SELECT count(*) FROM stock_transactions WHERE balance_after < 0")
            .fetch_one(&f.app.db)
            .await
            .unwrap();
    assert_eq!(negative, 0);
    // Every row continues the balance another row left (or the empty start):
    // the multiset of balances before each row is {0} plus every balance
    // after, minus the final one. A lost or doubled update breaks the chain.
    let rows: Vec<(i64, i64)> =
        sqlx::query_as("SELECT quantity, balance_after FROM stock_transactions")
            .fetch_all(&f.app.db)
            .await
            .unwrap();
    let movements = rows.len();
    let mut before: Vec<i64> = rows.iter().map(|(q, b)| b - q).collect();
    let mut chain: Vec<i64> = rows.iter().map(|(_, b)| *b).collect();
    chain.push(0);
    let last = chain
        .iter()
        .position(|b| *b == expected)
        .expect("the final level is some row's balance");
    chain.swap_remove(last);
    before.sort_unstable();
    chain.sort_unstable();
    assert_eq!(before, chain, "balances form one unbroken chain");
    assert!(
        movements > 100,
        "the hammer ran ({movements} movements, {refusals} refusals)"
    );
}

#[sqlx::test]
async fn fifty_concurrent_issues_of_the_last_ten_units_succeed_exactly_ten_times(db: PgPool) {
    let f = Arc::new(fixture(db).await);
    f.receive(10).await;
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let f = f.clone();
            tokio::spawn(async move { f.issue(1).await.status().as_u16() })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 10);
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 40);
    assert_eq!(f.level(f.warehouse).await, 0);
}

#[sqlx::test]
async fn opposite_concurrent_transfers_neither_deadlock_nor_lose_stock(db: PgPool) {
    let f = Arc::new(fixture(db).await);
    let other = f.app.create_warehouse_sql("OTHER").await;
    f.receive(100).await;
    f.post(
        "/api/v1/stock/receive",
        json!({"product_id": f.product, "warehouse_id": other, "quantity": 100}),
    )
    .await;
    let mut tasks = Vec::new();
    for i in 0..40 {
        let f = f.clone();
        let (from, to) = if i % 2 == 0 {
            (f.warehouse, other)
        } else {
            (other, f.warehouse)
        };
        tasks.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            for _ in 0..10 {
                let resp = f
                    .post(
                        "/api/v1/stock/transfer",
                        json!({"product_id": f.product, "from_warehouse_id": from,
                        "to_warehouse_id": to, "quantity": 7}),
                    )
                    .await;
                statuses.push(resp.status().as_u16());
            }
            statuses
        }));
    }
    for t in tasks {
        for status in t.await.unwrap() {
            assert!(status == 201 || status == 409, "transfer answered {status}");
        }
    }
    assert_eq!(
        f.level(f.warehouse).await + f.level(other).await,
        200,
        "totals conserved"
    );
    assert_eq!(f.level(f.warehouse).await, f.ledger_sum(f.warehouse).await);
    assert_eq!(f.level(other).await, f.ledger_sum(other).await);
}

#[sqlx::test]
async fn an_idempotent_retry_returns_the_first_answer_and_applies_once(db: PgPool) {
    let f = fixture(db).await;
    let body = json!({"product_id": f.product, "warehouse_id": f.warehouse, "quantity": 5});
    let send = |key: &str, body: &Value| {
        f.app
            .with_token(reqwest::Method::POST, "/api/v1/stock/receive", &f.token)
            .header("idempotency-key", key)
            .json(body)
            .send()
    };
    let first = send("key-1", &body).await.unwrap();
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    // Same key, same body, even formatted differently: the same answer.
    let again = send(
        "key-1",
        &json!({"quantity": 5, "warehouse_id": f.warehouse, "product_id": f.product}),
    )
    .await
    .unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    assert_eq!(f.level(f.warehouse).await, 5);
    assert_eq!(f.ledger_rows().await, 1);
    // Same key, another body: refused.
    let other = json!({"product_id": f.product, "warehouse_id": f.warehouse, "quantity": 6});
    assert_problem(
        send("key-1", &other).await.unwrap(),
        422,
        "idempotency-key-reused",
    )
    .await;
    // A refused first attempt stores nothing: the key can be used again.
    let issue = |key: &'static str| {
        f.app
            .with_token(reqwest::Method::POST, "/api/v1/stock/issue", &f.token)
            .header("idempotency-key", key)
            .json(&json!({"product_id": f.product, "warehouse_id": f.warehouse, "quantity": 8}))
            .send()
    };
    assert_eq!(issue("key-2").await.unwrap().status(), 409);
    f.receive(3).await;
    assert_eq!(issue("key-2").await.unwrap().status(), 201);
    assert_eq!(f.level(f.warehouse).await, 0);
    // Keys belong to a principal: another user's identical key is independent.
    let other_clerk = f.app.token("clerk").await;
    let resp = f
        .app
        .with_token(reqwest::Method::POST, "/api/v1/stock/receive", &other_clerk)
        .header("idempotency-key", "key-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(f.level(f.warehouse).await, 5);
}

#[sqlx::test]
async fn concurrent_duplicates_with_one_key_apply_once(db: PgPool) {
    let f = Arc::new(fixture(db).await);
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let f = f.clone();
            tokio::spawn(async move {
                let resp = f
                    .app
                    .with_token(reqwest::Method::POST, "/api/v1/stock/receive", &f.token)
                    .header("idempotency-key", "same-key")
                    .json(&json!({"product_id": f.product, "warehouse_id": f.warehouse, "quantity": 2}))
                    .send()
                    .await
                    .unwrap();
                (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
            })
        })
        .collect();
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    assert!(answers.iter().all(|(s, _)| *s == 201));
    assert!(
        answers.iter().all(|(_, b)| *b == answers[0].1),
        "every duplicate got the first answer"
    );
    assert_eq!(f.level(f.warehouse).await, 2);
    assert_eq!(f.ledger_rows().await, 1);
}

#[sqlx::test]
async fn the_ledger_lists_newest_first_with_filters(db: PgPool) {
    let f = fixture(db).await;
    for q in 1..=5 {
        f.receive(q).await;
    }
    f.issue(2).await;
    let page: Value = f.app.get_ok("/api/v1/transactions?limit=4", &f.token).await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 4);
    assert_eq!(items[0]["kind"], "issue", "newest first");
    let next = page["next_cursor"].as_str().unwrap();
    let page2: Value = f
        .app
        .get_ok(
            &format!("/api/v1/transactions?limit=4&cursor={next}"),
            &f.token,
        )
        .await;
    assert_eq!(page2["items"].as_array().unwrap().len(), 2);
    assert!(page2["next_cursor"].is_null());
    let issues: Value = f
        .app
        .get_ok("/api/v1/transactions?kind=issue", &f.token)
        .await;
    assert_eq!(issues["items"].as_array().unwrap().len(), 1);
    let id = issues["items"][0]["id"].as_str().unwrap();
    let one: Value = f
        .app
        .get_ok(&format!("/api/v1/transactions/{id}"), &f.token)
        .await;
    assert_eq!(one["quantity"], -2);
    let future: Value = f
        .app
        .get_ok("/api/v1/transactions?since=2999-01-01T00:00:00Z", &f.token)
        .await;
    assert!(future["items"].as_array().unwrap().is_empty());
    let levels: Value = f
        .app
        .get_ok(
            &format!("/api/v1/stock?warehouse_id={}", f.warehouse),
            &f.token,
        )
        .await;
    assert_eq!(levels["items"][0]["quantity"], 13);
}

#[sqlx::test]
async fn viewers_read_stock_but_cannot_move_it(db: PgPool) {
    let f = fixture(db).await;
    let viewer = f.app.token("viewer").await;
    let resp = f
        .app
        .post_as(
            "/api/v1/stock/receive",
            &viewer,
            &json!({"product_id": f.product, "warehouse_id": f.warehouse, "quantity": 1}),
        )
        .await;
    assert_problem(resp, 403, "forbidden").await;
    assert_eq!(f.app.get_as("/api/v1/stock", &viewer).await.status(), 200);
}

#[sqlx::test]
async fn the_ledger_filters_by_exact_reference(db: PgPool) {
    let f = fixture(db).await;
    for (quantity, reference) in [(1, "PO-7"), (2, "PO-7"), (3, "PO-70"), (4, "po-7")] {
        let resp = f
            .post(
                "/api/v1/stock/receive",
                json!({"product_id": f.product, "warehouse_id": f.warehouse,
                       "quantity": quantity, "reference": reference}),
            )
            .await;
        assert_eq!(resp.status(), 201);
    }
    f.receive(5).await;
    let page: Value = f
        .app
        .get_ok("/api/v1/transactions?reference=PO-7&limit=1", &f.token)
        .await;
    assert_eq!(page["items"][0]["quantity"], 2, "newest first");
    let next = page["next_cursor"].as_str().unwrap();
    let page2: Value = f
        .app
        .get_ok(
            &format!("/api/v1/transactions?reference=PO-7&limit=1&cursor={next}"),
            &f.token,
        )
        .await;
    assert_eq!(page2["items"][0]["quantity"], 1);
    assert!(
        page2["next_cursor"].is_null(),
        "PO-70 and po-7 are other references"
    );
    let resp = f
        .app
        .get_as(
            &format!("/api/v1/transactions?reference={}", "x".repeat(201)),
            &f.token,
        )
        .await;
    assert_eq!(resp.status(), 422);
}
