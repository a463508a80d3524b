//! Scanner devices: scan events alone and in batches, duplicates, GS1, pack
//! quantities, lookups and count sessions.

mod common;

use std::sync::Arc;

use common::{assert_problem, TestApp};
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

const EAN: &str = "4006381333931";

struct Scanner {
    app: TestApp,
    manager: String,
    key: String,
    product: Uuid,
    warehouse: Uuid,
    other_warehouse: Uuid,
}

async fn scanner(db: PgPool) -> Scanner {
    let app = TestApp::spawn(db).await;
    let manager = app.token("manager").await;
    let p: Value = app
        .post_ok(
            "/api/v1/products",
            &manager,
            &json!({"sku": "SCAN-1", "name": "Scannable", "barcodes": [
                {"barcode": EAN}, {"barcode": "CASE-1", "pack_quantity": 12}]}),
        )
        .await;
    let warehouse = app.create_warehouse_sql("DOCK").await;
    let other_warehouse = app.create_warehouse_sql("ELSEWHERE").await;
    let (_, key) = app.create_device(&manager, &[warehouse]).await;
    Scanner {
        product: p["id"].as_str().unwrap().parse().unwrap(),
        app,
        manager,
        key,
        warehouse,
        other_warehouse,
    }
}

impl Scanner {
    fn event(&self, action: &str, barcode: &str, quantity: i64) -> Value {
        json!({"event_id": Uuid::new_v4(), "barcode": barcode, "action": action, "quantity": quantity,
               "warehouse_id": self.warehouse, "scanned_at": "2026-11-23T08:00:00Z"})
    }

    async fn send(&self, event: &Value) -> Value {
        let resp = self
            .app
            .post_as("/api/v1/scanner/events", &self.key, event)
            .await;
        assert_eq!(resp.status(), 200);
        resp.json().await.unwrap()
    }

    async fn batch(&self, events: &[Value]) -> Vec<Value> {
        let resp = self
            .app
            .post_as(
                "/api/v1/scanner/events/batch",
                &self.key,
                &json!({"events": events}),
            )
            .await;
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        body["results"].as_array().unwrap().clone()
    }

    async fn level(&self) -> i64 {
        sqlx::query_scalar("SELECT COALESCE((SELECT quantity FROM stock_levels WHERE product_id = $1 AND warehouse_id = $2), 0)")
            .bind(self.product)
            .bind(self.warehouse)
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

    async fn ledger_sum(&self) -> i64 {
        sqlx::query_scalar("SELECT COALESCE(sum(quantity), 0)::bigint FROM stock_transactions WHERE warehouse_id = $1")
            .bind(self.warehouse)
            .fetch_one(&self.app.db)
            .await
            .unwrap()
    }
}

fn statuses(results: &[Value]) -> Vec<&str> {
    results
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect()
}

#[sqlx::test]
async fn a_resent_event_answers_duplicate_and_applies_once(db: PgPool) {
    let s = scanner(db).await;
    let event = s.event("receive", EAN, 3);
    let first = s.send(&event).await;
    assert_eq!(first["status"], "applied");
    assert_eq!(first["units"], 3);
    assert_eq!(first["level"], 3);
    assert_eq!(first["product"]["sku"], "SCAN-1");
    let again = s.send(&event).await;
    assert_eq!(again["status"], "duplicate");
    assert_eq!(again["transaction_id"], first["transaction_id"]);
    // The same event inside a later batch is a duplicate too.
    let results = s.batch(std::slice::from_ref(&event)).await;
    assert_eq!(statuses(&results), ["duplicate"]);
    assert_eq!(s.level().await, 3);
    assert_eq!(s.ledger_rows().await, 1);
    let actor: Option<Uuid> = sqlx::query_scalar("SELECT actor_device_id FROM stock_transactions")
        .fetch_one(&s.app.db)
        .await
        .unwrap();
    assert!(actor.is_some(), "the device is the author");
}

#[sqlx::test]
async fn a_batch_is_processed_in_order_and_answers_every_event(db: PgPool) {
    let s = scanner(db).await;
    let first = s.event("receive", EAN, 5);
    let mut wrong_warehouse = s.event("receive", EAN, 1);
    wrong_warehouse["warehouse_id"] = json!(s.other_warehouse);
    let events = vec![
        first.clone(),
        s.event("receive", "5901234123457", 1), // valid EAN, not in the catalog
        s.event("issue", EAN, 9),               // only 5 on hand
        wrong_warehouse,
        s.event("issue", EAN, 2), // fine: 5 -> 3
        first.clone(),            // the same event twice in one batch
        s.event("lookup", EAN, 1),
        s.event("receive", "4006381333932", 1), // bad check digit
        s.event("receive", "CASE-1", 2),        // 2 cases of 12
    ];
    let results = s.batch(&events).await;
    assert_eq!(
        statuses(&results),
        [
            "applied",
            "rejected",
            "rejected",
            "rejected",
            "applied",
            "duplicate",
            "applied",
            "rejected",
            "applied"
        ]
    );
    assert_eq!(results[1]["reason"], "unknown barcode");
    assert_eq!(results[2]["reason"], "insufficient stock: 5 available");
    assert!(results[3]["reason"]
        .as_str()
        .unwrap()
        .starts_with("wrong warehouse"));
    assert_eq!(results[4]["level"], 3);
    assert_eq!(results[5]["transaction_id"], results[0]["transaction_id"]);
    assert_eq!(
        results[6]["level"], 3,
        "lookup shows the level at that point"
    );
    assert!(results[7]["reason"]
        .as_str()
        .unwrap()
        .contains("check digit"));
    assert_eq!(results[8]["units"], 24);
    assert_eq!(results[8]["level"], 27);
    for (r, e) in results.iter().zip(&events) {
        assert_eq!(r["event_id"], e["event_id"], "same order");
    }
    assert_eq!(s.level().await, 27);
    assert_eq!(s.ledger_sum().await, 27);

    // Stored with time-ordered ids, rising in the order the rows are written
    // (event-id order), so a batch's keys go to the primary key's right edge.
    let ids: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM scan_events ORDER BY event_id")
        .fetch_all(&s.app.db)
        .await
        .unwrap();
    assert_eq!(ids.len(), 8, "every event but the in-batch copy is stored");
    assert!(ids.iter().all(|id| id.get_version_num() == 7), "{ids:?}");
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");

    // Rejected events are kept for a manager to review (devices cannot list them).
    let page: Value = s
        .app
        .get_ok("/api/v1/scanner/events?status=rejected", &s.manager)
        .await;
    let reasons: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons.len(), 4, "{reasons:?}");
    assert!(reasons.contains(&"unknown barcode"));
    assert_problem(
        s.app
            .get_as("/api/v1/scanner/events?status=rejected", &s.key)
            .await,
        403,
        "forbidden",
    )
    .await;

    // The whole batch again: every event is a duplicate with its first answer; stock unchanged.
    let again = s.batch(&events).await;
    assert!(statuses(&again).iter().all(|st| *st == "duplicate"));
    assert_eq!(again[2]["reason"], "insufficient stock: 5 available");
    assert_eq!(s.level().await, 27);
}

#[sqlx::test]
async fn concurrent_copies_of_events_and_batches_apply_once(db: PgPool) {
    let s = Arc::new(scanner(db).await);
    let event = s.event("receive", EAN, 1);
    let batch: Vec<Value> = (0..50).map(|_| s.event("receive", EAN, 1)).collect();
    let mut tasks = Vec::new();
    for i in 0..12 {
        let (s, event, batch) = (s.clone(), event.clone(), batch.clone());
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                vec![s.send(&event).await]
            } else {
                s.batch(&batch).await
            }
        }));
    }
    let mut single_applied = 0;
    let mut batch_applied = 0;
    for (i, t) in tasks.into_iter().enumerate() {
        let results = t.await.unwrap();
        let applied = statuses(&results)
            .iter()
            .filter(|st| **st == "applied")
            .count();
        assert!(statuses(&results)
            .iter()
            .all(|st| *st == "applied" || *st == "duplicate"));
        if i % 2 == 0 {
            single_applied += applied;
        } else {
            batch_applied += applied;
        }
    }
    assert_eq!(single_applied, 1);
    assert_eq!(batch_applied, 50);
    assert_eq!(s.level().await, 51);
    assert_eq!(s.ledger_rows().await, 51);
}

#[sqlx::test]
async fn gs1_scans_carry_lot_expiry_serial_and_counts(db: PgPool) {
    let s = scanner(db).await;
    // GS1 DataMatrix with FNC1 as <GS>: GTIN, expiry with day 00 (end of month), lot, serial.
    let r = s
        .send(&s.event(
            "receive",
            "]d201040063813339311726020010LOT-7<GS>21SN123",
            1,
        ))
        .await;
    assert_eq!(r["status"], "applied", "{r}");
    assert_eq!(r["lot"], "LOT-7");
    assert_eq!(r["expires_on"], "2026-02-28");
    assert_eq!(r["serial"], "SN123");
    let row: (Option<String>, Option<time::Date>, Option<String>) =
        sqlx::query_as("SELECT lot, expires_on, serial FROM stock_transactions")
            .fetch_one(&s.app.db)
            .await
            .unwrap();
    assert_eq!(row.0.as_deref(), Some("LOT-7"));
    assert_eq!(row.2.as_deref(), Some("SN123"));
    let stored: (Option<String>, Option<String>) =
        sqlx::query_as("SELECT lot, serial FROM scan_events")
            .fetch_one(&s.app.db)
            .await
            .unwrap();
    assert_eq!(stored, (Some("LOT-7".into()), Some("SN123".into())));
    // Human-readable form with AI 37: a case holding 10 units.
    let r = s
        .send(&s.event("receive", "(02)04006381333931(37)10", 1))
        .await;
    assert_eq!(r["units"], 10);
    // ASCII 29 as FNC1 and a GS1-128 prefix.
    let r = s
        .send(&s.event("issue", "]C1010400638133393110B1\u{1d}17261231", 1))
        .await;
    assert_eq!(r["status"], "applied");
    assert_eq!(r["lot"], "B1");
    // A GS1 string with a bad check digit is rejected with the reason.
    let r = s.send(&s.event("receive", "(01)04006381333932", 1)).await;
    assert_eq!(r["status"], "rejected");
    assert!(r["reason"].as_str().unwrap().contains("check digit"), "{r}");
    assert_eq!(s.level().await, 10);
}

#[sqlx::test]
async fn device_lookup_shows_product_pack_and_stock_in_its_warehouses(db: PgPool) {
    let s = scanner(db).await;
    s.send(&s.event("receive", "CASE-1", 1)).await;
    let resp = s.app.get_as("/api/v1/scanner/lookup/CASE-1", &s.key).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["pack_quantity"], 12);
    assert_eq!(body["product"]["sku"], "SCAN-1");
    assert_eq!(
        body["stock"],
        json!([{"warehouse_id": s.warehouse, "quantity": 12}])
    );
    let body: Value = s
        .app
        .get_ok("/api/v1/scanner/lookup/(01)04006381333931(10)X", &s.key)
        .await;
    assert_eq!(body["pack_quantity"], 1);
    assert_problem(
        s.app
            .get_as("/api/v1/scanner/lookup/5901234123457", &s.key)
            .await,
        404,
        "not-found",
    )
    .await;
}

#[sqlx::test]
async fn device_keys_reach_scanner_endpoints_only_and_users_cannot_post_scans(db: PgPool) {
    let s = scanner(db).await;
    let body = json!({"product_id": s.product, "warehouse_id": s.warehouse, "quantity": 1});
    assert_problem(
        s.app.post_as("/api/v1/stock/receive", &s.key, &body).await,
        403,
        "forbidden",
    )
    .await;
    assert_problem(
        s.app.get_as("/api/v1/products", &s.key).await,
        403,
        "forbidden",
    )
    .await;
    let resp = s
        .app
        .post_as(
            "/api/v1/scanner/events",
            &s.manager,
            &s.event("receive", EAN, 1),
        )
        .await;
    assert_problem(resp, 403, "forbidden").await;
    let too_many: Vec<Value> = (0..501).map(|_| s.event("lookup", EAN, 1)).collect();
    let resp = s
        .app
        .post_as(
            "/api/v1/scanner/events/batch",
            &s.key,
            &json!({"events": too_many}),
        )
        .await;
    assert_problem(resp, 422, "validation").await;
}

#[sqlx::test]
async fn a_count_completing_while_receipts_happen_keeps_the_receipts(db: PgPool) {
    let s = scanner(db).await;
    s.send(&s.event("receive", EAN, 10)).await;
    let clerk = s.app.token("clerk").await;
    let resp = s
        .app
        .post_as(
            "/api/v1/counts",
            &clerk,
            &json!({"warehouse_id": s.warehouse, "blind": true}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let count: Value = resp.json().await.unwrap();
    let count_id = count["id"].as_str().unwrap().to_owned();
    assert_eq!(count["lines"][0]["expected_quantity"], 10);

    // Counters scan 8 units; meanwhile 5 more are received.
    let mut scans: Vec<Value> = Vec::new();
    for _ in 0..8 {
        let mut e = s.event("count", EAN, 1);
        e["count_id"] = json!(count_id);
        scans.push(e);
    }
    let results = s.batch(&scans).await;
    assert!(statuses(&results).iter().all(|st| *st == "applied"));
    let receipt = json!({"product_id": s.product, "warehouse_id": s.warehouse, "quantity": 5});
    assert_eq!(
        s.app
            .post_as("/api/v1/stock/receive", &clerk, &receipt)
            .await
            .status(),
        201
    );

    // Blind: the clerk sees counts but not expectations; the manager sees both.
    let as_clerk: Value = s
        .app
        .get_ok(&format!("/api/v1/counts/{count_id}"), &clerk)
        .await;
    assert_eq!(as_clerk["lines"][0]["counted_quantity"], 8);
    assert!(as_clerk["lines"][0]["expected_quantity"].is_null());
    assert!(as_clerk["lines"][0]["variance"].is_null());
    let as_manager: Value = s
        .app
        .get_ok(&format!("/api/v1/counts/{count_id}"), &s.manager)
        .await;
    assert_eq!(as_manager["lines"][0]["variance"], -2);

    // Clerks cannot complete; managers can.
    let path = format!("/api/v1/counts/{count_id}/complete");
    assert_problem(
        s.app.post_as(&path, &clerk, &json!({})).await,
        403,
        "forbidden",
    )
    .await;
    let resp = s.app.post_as(&path, &s.manager, &json!({})).await;
    assert_eq!(resp.status(), 200);
    let done: Value = resp.json().await.unwrap();
    assert_eq!(done["transactions"][0]["kind"], "count_adjustment");
    assert_eq!(done["transactions"][0]["quantity"], -2);
    assert_eq!(
        s.level().await,
        13,
        "8 counted + 5 received during the count"
    );
    assert_eq!(s.ledger_sum().await, 13);
    // A closed count takes no more scans or completions.
    let mut late = s.event("count", EAN, 1);
    late["count_id"] = json!(count_id);
    let r = s.send(&late).await;
    assert_eq!(r["status"], "rejected");
    assert_problem(
        s.app.post_as(&path, &s.manager, &json!({})).await,
        409,
        "count-closed",
    )
    .await;
}

#[sqlx::test]
async fn a_count_opened_without_its_lines_answers_how_many_and_get_lists_them(db: PgPool) {
    let s = scanner(db).await;
    s.send(&s.event("receive", EAN, 4)).await;
    let clerk = s.app.token("clerk").await;
    let open = |body: Value, key: &'static str| {
        s.app
            .with_token(reqwest::Method::POST, "/api/v1/counts", &clerk)
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
    };
    let short = json!({"warehouse_id": s.warehouse, "include_lines": false});
    let resp = open(short.clone(), "count-short").await.unwrap();
    assert_eq!(resp.status(), 201);
    let first: Value = resp.json().await.unwrap();
    assert_eq!(first["line_count"], 1, "{first}");
    assert_eq!(first["lines"], json!([]), "{first}");
    // A retry replays the same short answer.
    let again: Value = open(short, "count-short")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again, first);
    // The lines are there, listed by GET.
    let id = first["id"].as_str().unwrap();
    let detail: Value = s.app.get_ok(&format!("/api/v1/counts/{id}"), &clerk).await;
    assert_eq!(detail["line_count"], 1);
    assert_eq!(detail["lines"].as_array().unwrap().len(), 1, "{detail}");
    assert_eq!(detail["lines"][0]["expected_quantity"], 4);
    let paged: Value = s
        .app
        .get_ok(&format!("/api/v1/counts/{id}/lines?limit=1"), &clerk)
        .await;
    assert_eq!(paged["items"], detail["lines"], "{paged}");
    assert_eq!(paged["next_cursor"], Value::Null);
    // Without the field the answer lists every line, as in v1.
    let full: Value = open(json!({"warehouse_id": s.warehouse}), "count-full")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(full["line_count"], 1);
    assert_eq!(full["lines"].as_array().unwrap().len(), 1, "{full}");
}

#[sqlx::test]
async fn counts_by_hand_and_cancellation_change_nothing_until_completed(db: PgPool) {
    let s = scanner(db).await;
    s.send(&s.event("receive", EAN, 4)).await;
    let clerk = s.app.token("clerk").await;
    let count: Value = s
        .app
        .post_ok(
            "/api/v1/counts",
            &clerk,
            &json!({"warehouse_id": s.warehouse, "product_ids": [s.product]}),
        )
        .await;
    let id = count["id"].as_str().unwrap();
    let resp = s
        .app
        .post_as(
            &format!("/api/v1/counts/{id}/lines"),
            &clerk,
            &json!({"lines": [{"product_id": s.product, "counted_quantity": 6}]}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["lines"][0]["variance"], 2,
        "not blind: variance visible"
    );
    let other = Uuid::new_v4();
    let resp = s
        .app
        .post_as(
            &format!("/api/v1/counts/{id}/lines"),
            &clerk,
            &json!({"lines": [{"product_id": other, "counted_quantity": 1}]}),
        )
        .await;
    assert_problem(resp, 422, "validation").await;
    let resp = s
        .app
        .post_as(
            &format!("/api/v1/counts/{id}/cancel"),
            &s.manager,
            &json!({}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(s.level().await, 4);
    let list: Value = s
        .app
        .get_ok("/api/v1/counts?status=cancelled", &clerk)
        .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
}

#[sqlx::test]
async fn first_movements_of_new_levels_from_batches_and_transfers_never_deadlock(db: PgPool) {
    // A batch and a transfer touching the same two levels, one of which does
    // not exist yet: both must create and lock them in the same order.
    let app = std::sync::Arc::new(TestApp::spawn(db).await);
    let manager = app.token("manager").await;
    let clerk = app.token("clerk").await;
    let mut warehouses = [
        app.create_warehouse_sql("W-A").await,
        app.create_warehouse_sql("W-B").await,
    ];
    warehouses.sort();
    let [lo, hi] = warehouses;
    let (_, key) = app.create_device(&manager, &warehouses).await;
    let mut statuses = Vec::new();
    for round in 0..25 {
        let barcode = format!("FRESH-{round}");
        let p: Value = app
            .post_ok(
                "/api/v1/products",
                &manager,
                &json!({"sku": format!("FRESH-{round}"), "name": "Fresh", "barcodes": [{"barcode": barcode}]}),
            )
        .await;
        let product = p["id"].as_str().unwrap().to_owned();
        // The higher level exists, the lower one is created by whoever comes first.
        let resp = app
            .post_as(
                "/api/v1/stock/receive",
                &clerk,
                &json!({"product_id": product, "warehouse_id": hi, "quantity": 50}),
            )
            .await;
        assert_eq!(resp.status(), 201);
        let mut tasks = Vec::new();
        for i in 0..4 {
            let (app, key, clerk, product, barcode) = (
                app.clone(),
                key.clone(),
                clerk.clone(),
                product.clone(),
                barcode.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let resp = if i % 2 == 0 {
                    let event = |w: Uuid| {
                        json!({"event_id": Uuid::new_v4(), "barcode": barcode, "action": "receive",
                               "quantity": 1, "warehouse_id": w, "scanned_at": "2026-11-23T08:00:00Z"})
                    };
                    app.post_as(
                        "/api/v1/scanner/events/batch",
                        &key,
                        &json!({"events": [event(hi), event(lo)]}),
                    )
                    .await
                } else {
                    app.post_as(
                        "/api/v1/stock/transfer",
                        &clerk,
                        &json!({"product_id": product, "from_warehouse_id": hi,
                                "to_warehouse_id": lo, "quantity": 1}),
                    )
                    .await
                };
                let status = resp.status().as_u16();
                (status, resp.text().await.unwrap())
            }));
        }
        for t in tasks {
            statuses.push(t.await.unwrap());
        }
    }
    for (status, body) in &statuses {
        assert!(
            *status == 200 || *status == 201,
            "answered {status}: {body}"
        );
    }
}

#[sqlx::test]
async fn an_open_blind_count_hides_its_levels_from_devices_viewers_and_clerks(db: PgPool) {
    let s = scanner(db).await;
    let clerk = s.app.token("clerk").await;
    let viewer = s.app.token("viewer").await;
    s.send(&s.event("receive", EAN, 7)).await;
    let levels_path = format!("/api/v1/stock?product_id={}", s.product);
    let product_path = format!("/api/v1/products/{}/stock", s.product);
    let lookup_path = format!("/api/v1/scanner/lookup/{EAN}");
    let visible = |body: &Value| body.to_string().contains(&s.warehouse.to_string());
    async fn body(resp: reqwest::Response) -> Value {
        assert_eq!(resp.status(), 200);
        resp.json().await.unwrap()
    }

    let resp = s
        .app
        .post_as(
            "/api/v1/counts",
            &s.manager,
            &json!({"warehouse_id": s.warehouse, "blind": true}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let created: Value = resp.json().await.unwrap();
    let count_id = created["id"].as_str().unwrap().to_owned();

    for token in [&clerk, &viewer] {
        let levels = body(s.app.get_as(&levels_path, token).await).await;
        assert_eq!(levels["items"], json!([]), "{levels}");
        let product = body(s.app.get_as(&product_path, token).await).await;
        assert!(!visible(&product["warehouses"]), "{product}");
        assert_eq!(product["total"], 0, "{product}");
    }
    let lookup = body(s.app.get_as(&lookup_path, &s.key).await).await;
    assert_eq!(lookup["stock"], json!([]), "{lookup}");
    // Managers run the count: they still see the level.
    let levels = body(s.app.get_as(&levels_path, &s.manager).await).await;
    assert_eq!(levels["items"][0]["quantity"], 7, "{levels}");
    let product = body(s.app.get_as(&product_path, &s.manager).await).await;
    assert_eq!(product["total"], 7, "{product}");

    // Once the count is over, everyone sees it again.
    let resp = s
        .app
        .post_as(
            &format!("/api/v1/counts/{count_id}/cancel"),
            &s.manager,
            &json!({}),
        )
        .await;
    assert!(resp.status().is_success(), "{}", resp.status());
    let levels = body(s.app.get_as(&levels_path, &clerk).await).await;
    assert_eq!(levels["items"][0]["quantity"], 7, "{levels}");
    let lookup = body(s.app.get_as(&lookup_path, &s.key).await).await;
    assert_eq!(lookup["stock"][0]["quantity"], 7, "{lookup}");
}

/// Opens a blind count of the scanner's warehouse (every product); returns its id.
async fn open_blind_count(s: &Scanner) -> String {
    let resp = s
        .app
        .post_as(
            "/api/v1/counts",
            &s.manager,
            &json!({"warehouse_id": s.warehouse, "blind": true}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let created: Value = resp.json().await.unwrap();
    created["id"].as_str().unwrap().to_owned()
}

async fn cancel_count(s: &Scanner, count_id: &str) {
    let resp = s
        .app
        .post_as(
            &format!("/api/v1/counts/{count_id}/cancel"),
            &s.manager,
            &json!({}),
        )
        .await;
    assert!(resp.status().is_success(), "{}", resp.status());
}

async fn json_of(resp: reqwest::Response, status: u16) -> Value {
    let got = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(got, status, "{body}");
    body
}

/// The figures of a ledger row (or of its event) that are the level's state.
const LEVEL_FIGURES: [&str; 4] = [
    "balance_after",
    "warehouse_balance_after",
    "value_after",
    "unit_cost",
];

fn assert_figures_hidden(row: &Value) {
    for f in LEVEL_FIGURES {
        assert!(row[f].is_null(), "{f} shown: {row}");
    }
}

#[sqlx::test]
async fn a_clerk_moving_stock_during_a_blind_count_gets_no_balance_back(db: PgPool) {
    let s = scanner(db).await;
    let clerk = s.app.token("clerk").await;
    s.send(&s.event("receive", EAN, 7)).await;
    let count_id = open_blind_count(&s).await;
    let receipt =
        |w: Uuid, q: i64| json!({"product_id": s.product, "warehouse_id": w, "quantity": q});

    let done = json_of(
        s.app
            .post_as("/api/v1/stock/receive", &clerk, &receipt(s.warehouse, 5))
            .await,
        201,
    )
    .await;
    let row = &done["transactions"][0];
    assert_eq!(row["quantity"], 5, "{done}");
    assert_figures_hidden(row);
    assert!(done["levels"][0]["quantity"].is_null(), "{done}");

    // Issuing too much says so, without how much there is.
    let issue = json!({"product_id": s.product, "warehouse_id": s.warehouse, "quantity": 100});
    let refused = common::assert_problem(
        s.app.post_as("/api/v1/stock/issue", &clerk, &issue).await,
        409,
        "insufficient-stock",
    )
    .await;
    assert!(refused["available"].is_null(), "{refused}");
    assert!(
        !refused["detail"].as_str().unwrap().contains("12"),
        "{refused}"
    );
    let reserve = json!({"product_id": s.product, "warehouse_id": s.warehouse, "quantity": 100});
    let refused = common::assert_problem(
        s.app
            .post_as("/api/v1/reservations", &clerk, &reserve)
            .await,
        409,
        "insufficient-stock",
    )
    .await;
    assert!(refused["available"].is_null(), "{refused}");
    // Setting the level to a quantity would tell it (new - current): refused;
    // a delta is fine.
    let set = json!({"product_id": s.product, "warehouse_id": s.warehouse,
                     "new_quantity": 3, "reason": "correction"});
    common::assert_problem(
        s.app.post_as("/api/v1/stock/adjust", &clerk, &set).await,
        409,
        "blind-count-open",
    )
    .await;
    let delta = json!({"product_id": s.product, "warehouse_id": s.warehouse,
                       "delta": -1, "reason": "damaged"});
    let adjusted = json_of(
        s.app.post_as("/api/v1/stock/adjust", &clerk, &delta).await,
        201,
    )
    .await;
    assert_figures_hidden(&adjusted["transactions"][0]);
    // A transfer out of the counted warehouse: only its side is hidden.
    let transfer = json!({"product_id": s.product, "from_warehouse_id": s.warehouse,
                          "to_warehouse_id": s.other_warehouse, "quantity": 2});
    let moved = json_of(
        s.app
            .post_as("/api/v1/stock/transfer", &clerk, &transfer)
            .await,
        201,
    )
    .await;
    let rows = moved["transactions"].as_array().unwrap();
    let out = rows.iter().find(|t| t["kind"] == "transfer_out").unwrap();
    let into = rows.iter().find(|t| t["kind"] == "transfer_in").unwrap();
    assert_figures_hidden(out);
    assert_eq!(into["warehouse_balance_after"], 2, "{moved}");
    // A retry with the same Idempotency-Key replays the hidden answer.
    let keyed = || {
        s.app
            .with_token(reqwest::Method::POST, "/api/v1/stock/receive", &clerk)
            .header("Idempotency-Key", "blind-receipt-1")
            .json(&receipt(s.warehouse, 1))
    };
    let first = json_of(keyed().send().await.unwrap(), 201).await;
    let again = json_of(keyed().send().await.unwrap(), 201).await;
    assert_eq!(first, again);
    assert_figures_hidden(&again["transactions"][0]);

    // The manager running the count sees everything: 7 + 5 - 1 - 2 + 1 + 1.
    let done = json_of(
        s.app
            .post_as(
                "/api/v1/stock/receive",
                &s.manager,
                &receipt(s.warehouse, 1),
            )
            .await,
        201,
    )
    .await;
    assert_eq!(
        done["transactions"][0]["warehouse_balance_after"], 11,
        "{done}"
    );
    assert_eq!(done["levels"][0]["quantity"], 11, "{done}");
    let refused = common::assert_problem(
        s.app
            .post_as("/api/v1/stock/issue", &s.manager, &issue)
            .await,
        409,
        "insufficient-stock",
    )
    .await;
    assert_eq!(refused["available"], 11, "{refused}");

    // Once the count is over, the clerk gets balances again.
    cancel_count(&s, &count_id).await;
    let done = json_of(
        s.app
            .post_as("/api/v1/stock/receive", &clerk, &receipt(s.warehouse, 1))
            .await,
        201,
    )
    .await;
    assert_eq!(done["transactions"][0]["balance_after"], 12, "{done}");
    assert_eq!(done["levels"][0]["quantity"], 12, "{done}");
}

#[sqlx::test]
async fn the_ledger_hides_balances_under_a_blind_count_from_clerks_but_not_managers(db: PgPool) {
    let s = scanner(db).await;
    let clerk = s.app.token("clerk").await;
    s.send(&s.event("receive", EAN, 7)).await;
    let count_id = open_blind_count(&s).await;
    let mine = json_of(
        s.app
            .post_as(
                "/api/v1/stock/receive",
                &clerk,
                &json!({"product_id": s.product, "warehouse_id": s.warehouse, "quantity": 5}),
            )
            .await,
        201,
    )
    .await;
    let mine_id = mine["transactions"][0]["id"].as_str().unwrap().to_owned();
    let list = format!("/api/v1/transactions?product_id={}", s.product);
    let one = format!("/api/v1/transactions/{mine_id}");

    // Rows of the covered level are listed only to whoever posted them
    // (everybody's quantities would add up to the level), without balances:
    // the clerk sees their own receipt, not the device's from before.
    let viewer = s.app.token("viewer").await;
    let page = json_of(s.app.get_as(&list, &clerk).await, 200).await;
    let rows = page["items"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{page}");
    assert_eq!(rows[0]["id"], mine_id.as_str(), "{page}");
    assert_eq!(rows[0]["quantity"], 5, "{page}");
    rows.iter().for_each(assert_figures_hidden);
    let page = json_of(s.app.get_as(&list, &viewer).await, 200).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 0, "{page}");
    for token in [&clerk, &viewer] {
        assert_figures_hidden(&json_of(s.app.get_as(&one, token).await, 200).await);
    }
    let page = json_of(s.app.get_as(&list, &s.manager).await, 200).await;
    assert_eq!(page["items"][0]["balance_after"], 12, "{page}");
    assert_eq!(page["items"][0]["warehouse_balance_after"], 12, "{page}");
    assert_eq!(page["items"][1]["balance_after"], 7, "{page}");
    let row = json_of(s.app.get_as(&one, &s.manager).await, 200).await;
    assert_eq!(row["balance_after"], 12, "{row}");

    cancel_count(&s, &count_id).await;
    let page = json_of(s.app.get_as(&list, &clerk).await, 200).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2, "{page}");
    assert_eq!(page["items"][0]["balance_after"], 12, "{page}");
}

#[sqlx::test]
async fn scan_answers_leave_out_a_level_under_a_blind_count(db: PgPool) {
    let s = scanner(db).await;
    s.send(&s.event("receive", EAN, 7)).await;
    let count_id = open_blind_count(&s).await;

    let received = s.event("receive", EAN, 2);
    let answer = s.send(&received).await;
    assert_eq!(answer["status"], "applied", "{answer}");
    assert_eq!(answer["units"], 2, "{answer}");
    assert!(answer["level"].is_null(), "{answer}");
    // A resend replays the first answer: still no level.
    let again = s.send(&received).await;
    assert_eq!(again["status"], "duplicate", "{again}");
    assert!(again["level"].is_null(), "{again}");

    let results = s
        .batch(&[
            s.event("lookup", EAN, 1),
            s.event("issue", EAN, 1),
            s.event("issue", EAN, 100),
        ])
        .await;
    assert_eq!(statuses(&results), ["applied", "applied", "rejected"]);
    for r in &results {
        assert!(r["level"].is_null(), "{r}");
    }
    assert_eq!(results[2]["reason"], "insufficient stock", "{}", results[2]);

    // A manager scanning from the console sees the level.
    let console = json_of(
        s.app
            .post_as(
                "/api/v1/scanner/console-events",
                &s.manager,
                &json!({"events": [s.event("lookup", EAN, 1), s.event("issue", EAN, 100)]}),
            )
            .await,
        200,
    )
    .await;
    assert_eq!(console["results"][0]["level"], 8, "{console}");
    assert_eq!(
        console["results"][1]["reason"], "insufficient stock: 8 available",
        "{console}"
    );

    cancel_count(&s, &count_id).await;
    let answer = s.send(&s.event("lookup", EAN, 1)).await;
    assert_eq!(answer["level"], 8, "{answer}");
}

#[sqlx::test]
async fn low_stock_lists_leave_out_levels_under_a_blind_count(db: PgPool) {
    let s = scanner(db).await;
    let clerk = s.app.token("clerk").await;
    // 2 on hand, reorder point 5: low stock, in the counted warehouse only.
    s.send(&s.event("receive", EAN, 2)).await;
    sqlx::query("UPDATE products SET reorder_point = 5, reorder_quantity = 10 WHERE id = $1")
        .bind(s.product)
        .execute(&s.app.db)
        .await
        .unwrap();
    let listed = |page: &Value| {
        page["items"].as_array().unwrap().iter().any(|i| {
            let id = s.product.to_string();
            i["product_id"] == id.as_str() || i["id"] == id.as_str()
        })
    };
    let paths = [
        "/api/v1/stock?below_reorder=true".to_owned(),
        "/api/v1/products?below_reorder=true".to_owned(),
        "/api/v1/dashboard/low-stock".to_owned(),
        "/api/v1/replenishment".to_owned(),
        format!("/api/v1/replenishment?warehouse_id={}", s.warehouse),
    ];
    for path in &paths {
        let page = json_of(s.app.get_as(path, &clerk).await, 200).await;
        assert!(listed(&page), "{path}: {page}");
    }
    let summary = json_of(s.app.get_as("/api/v1/dashboard/summary", &clerk).await, 200).await;
    assert_eq!(summary["low_stock_products"], 1, "{summary}");
    assert_eq!(summary["units_on_hand"], 2, "{summary}");

    let count_id = open_blind_count(&s).await;
    for path in &paths {
        let page = json_of(s.app.get_as(path, &clerk).await, 200).await;
        assert!(!listed(&page), "{path}: {page}");
        let page = json_of(s.app.get_as(path, &s.manager).await, 200).await;
        assert!(listed(&page), "{path} (manager): {page}");
    }
    // The other warehouse is not counted: its replenishment still lists it.
    let page = json_of(
        s.app
            .get_as(
                &format!("/api/v1/replenishment?warehouse_id={}", s.other_warehouse),
                &clerk,
            )
            .await,
        200,
    )
    .await;
    assert!(listed(&page), "{page}");
    // The summary (cached a few seconds) sums only what the clerk may see.
    let summary = json_of(s.app.get_as("/api/v1/dashboard/summary", &clerk).await, 200).await;
    assert_eq!(summary["low_stock_products"], 0, "{summary}");
    assert_eq!(summary["units_on_hand"], 0, "{summary}");
    assert_eq!(summary["stock_value"], "0.00", "{summary}");
    let summary = json_of(
        s.app.get_as("/api/v1/dashboard/summary", &s.manager).await,
        200,
    )
    .await;
    assert_eq!(summary["units_on_hand"], 2, "{summary}");

    cancel_count(&s, &count_id).await;
    let summary = json_of(s.app.get_as("/api/v1/dashboard/summary", &clerk).await, 200).await;
    assert_eq!(summary["units_on_hand"], 2, "{summary}");
}

/// Reads `count` `stock.*` events from an SSE feed (20 s at most).
async fn stock_events(mut feed: reqwest::Response, count: usize) -> Vec<Value> {
    assert_eq!(feed.status(), 200);
    let mut buf = String::new();
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while events.len() < count {
        let Ok(chunk) = tokio::time::timeout_at(deadline, feed.chunk()).await else {
            break;
        };
        buf.push_str(&String::from_utf8_lossy(
            &chunk.unwrap().expect("feed open"),
        ));
        while let Some(end) = buf.find("\n\n") {
            let frame: String = buf.drain(..end + 2).collect();
            if let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data: ")) {
                let event: Value = serde_json::from_str(data).unwrap();
                if event["topic"].as_str().unwrap().starts_with("stock.") {
                    events.push(event["payload"].clone());
                }
            }
        }
    }
    events
}

#[sqlx::test]
async fn the_event_stream_hides_balances_under_a_blind_count_from_clerks_not_managers(db: PgPool) {
    let s = scanner(db).await;
    let clerk = s.app.token("clerk").await;
    s.send(&s.event("receive", EAN, 7)).await;
    s.app
        .post_as(
            "/api/v1/stock/receive",
            &s.manager,
            &json!({"product_id": s.product, "warehouse_id": s.other_warehouse, "quantity": 3}),
        )
        .await;
    let count_id = open_blind_count(&s).await;
    s.send(&s.event("receive", EAN, 2)).await;

    // From the start, so events from before the count are read now too.
    let feed = "/api/v1/events/stream?after=0";
    let seen = stock_events(s.app.get_as(feed, &clerk).await, 3).await;
    assert_eq!(seen.len(), 3, "{seen:?}");
    for e in &seen {
        if e["warehouse_id"] == s.warehouse.to_string().as_str() {
            assert!(e["quantity"].is_i64(), "{e}");
            assert_figures_hidden(e);
        } else {
            assert_eq!(e["warehouse_balance_after"], 3, "{e}");
        }
    }
    let seen = stock_events(s.app.get_as(feed, &s.manager).await, 3).await;
    assert_eq!(seen[2]["warehouse_balance_after"], 9, "{seen:?}");

    cancel_count(&s, &count_id).await;
    let seen = stock_events(s.app.get_as(feed, &clerk).await, 3).await;
    assert_eq!(seen[2]["warehouse_balance_after"], 9, "{seen:?}");
}

#[sqlx::test]
async fn a_blind_count_of_one_warehouse_hides_nothing_of_another(db: PgPool) {
    let s = scanner(db).await;
    let clerk = s.app.token("clerk").await;
    let receipt =
        |w: Uuid, q: i64| json!({"product_id": s.product, "warehouse_id": w, "quantity": q});
    s.app
        .post_ok(
            "/api/v1/stock/receive",
            &s.manager,
            &receipt(s.other_warehouse, 4),
        )
        .await;
    let _count_id = open_blind_count(&s).await;

    // The one-statement path answers the clerk in full for the other warehouse.
    let done = json_of(
        s.app
            .post_as(
                "/api/v1/stock/receive",
                &clerk,
                &receipt(s.other_warehouse, 3),
            )
            .await,
        201,
    )
    .await;
    assert_eq!(
        done["transactions"][0]["warehouse_balance_after"], 7,
        "{done}"
    );
    assert_eq!(done["levels"][0]["quantity"], 7, "{done}");

    // And the ledger lists the manager's row there too, with its balance.
    let list = format!(
        "/api/v1/transactions?product_id={}&warehouse_id={}",
        s.product, s.other_warehouse
    );
    let page = json_of(s.app.get_as(&list, &clerk).await, 200).await;
    let rows = page["items"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{page}");
    assert_eq!(rows[1]["balance_after"], 4, "{page}");
}
