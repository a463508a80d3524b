//! Where and which, on the one movement engine: locations, lots picked
//! first-expiring-first, serial numbers; under real concurrency against
//! PostgreSQL; the batch path and the single path agree; the migration keeps
//! v1 data.

mod common;

use std::sync::Arc;

use common::{assert_problem, TestApp};
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

struct Fixture {
    app: Arc<TestApp>,
    token: String,
    product: Uuid,
    warehouse: Uuid,
}

/// A product with the given tracking, a warehouse, a clerk token.
async fn fixture(db: PgPool, tracking: &str) -> Fixture {
    let app = TestApp::spawn(db).await;
    let token = app.token("clerk").await;
    let product = sqlx::query_scalar(
        "INSERT INTO products (sku, name, tracking) VALUES ('MED-1', 'Medicine', $1) RETURNING id",
    )
    .bind(tracking)
    .fetch_one(&app.db)
    .await
    .unwrap();
    let warehouse = app.create_warehouse_sql("MAIN").await;
    Fixture {
        app: Arc::new(app),
        token,
        product,
        warehouse,
    }
}

impl Fixture {
    async fn location(&self, code: &str) -> Uuid {
        sqlx::query_scalar(
            "INSERT INTO locations (warehouse_id, code) VALUES ($1, $2) RETURNING id",
        )
        .bind(self.warehouse)
        .bind(code)
        .fetch_one(&self.app.db)
        .await
        .unwrap()
    }

    async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.app.post_as(path, &self.token, &body).await
    }

    async fn receive(&self, extra: Value) -> reqwest::Response {
        let mut body = json!({"product_id": self.product, "warehouse_id": self.warehouse});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        self.post("/api/v1/stock/receive", body).await
    }

    /// Every position's quantity equals the sum of its ledger rows, no
    /// position is negative, and each level is the sum of its positions.
    async fn assert_ledger_holds(&self) {
        let broken: Vec<(Uuid, Option<Uuid>, i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT s.location_id, s.lot_id, s.quantity, COALESCE(sum(t.quantity), 0)::bigint
             FROM {} s
             LEFT JOIN stock_transactions t ON t.product_id = s.product_id AND t.warehouse_id = s.warehouse_id
                  AND t.location_id = s.location_id AND t.lot_id IS NOT DISTINCT FROM s.lot_id
             GROUP BY s.id, s.location_id, s.lot_id, s.quantity
             HAVING s.quantity <> COALESCE(sum(t.quantity), 0) OR s.quantity < 0",
            common::positions_held()
        )))
        .fetch_all(&self.app.db)
        .await
        .unwrap();
        assert!(
            broken.is_empty(),
            "positions disagree with the ledger: {broken:?}"
        );
        let levels: Vec<(Uuid, i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT l.warehouse_id, l.quantity, COALESCE(sum(s.quantity), 0)::bigint
             FROM stock_levels l LEFT JOIN {} s
               ON s.product_id = l.product_id AND s.warehouse_id = l.warehouse_id
             GROUP BY l.product_id, l.warehouse_id HAVING l.quantity <> COALESCE(sum(s.quantity), 0)",
            common::positions_held()
        )))
        .fetch_all(&self.app.db)
        .await
        .unwrap();
        assert!(
            levels.is_empty(),
            "levels disagree with positions: {levels:?}"
        );
    }
}

#[sqlx::test]
async fn issue_picks_first_expiring_first_and_skips_expired_lots(db: PgPool) {
    let f = fixture(db, "lot").await;
    let (a, b) = (f.location("A-01").await, f.location("B-01").await);
    let today = time::OffsetDateTime::now_utc().date();
    let day = |n: i64| (today + time::Duration::days(n)).to_string();
    for (lot, expires, loc, q) in [
        ("OLD", day(-1), a, 5),
        ("LATE", day(200), a, 5),
        ("SOON", day(10), b, 3),
        ("SOON2", day(10), a, 2),
    ] {
        let r = f
            .receive(json!({"quantity": q, "lot": lot, "expires_on": expires, "location_id": loc}))
            .await;
        assert_eq!(r.status(), 201, "{:?}", r.text().await);
    }
    // A lot without expiry goes last.
    let r = f.receive(json!({"quantity": 4, "lot": "NOEXP"})).await;
    assert_eq!(r.status(), 201);
    // The dashboard counts the lots expiring within 30 days (or expired).
    let summary: Value = f.app.get_ok("/api/v1/dashboard/summary", &f.token).await;
    assert_eq!(
        summary["expiring_soon_lots"], 3,
        "OLD, SOON and SOON2: {summary}"
    );
    // Lot-tracked: a receipt without its lot is refused.
    assert_problem(f.receive(json!({"quantity": 1})).await, 422, "validation").await;
    // One expiry per lot.
    assert_problem(
        f.receive(json!({"quantity": 1, "lot": "SOON", "expires_on": day(11)}))
            .await,
        422,
        "validation",
    )
    .await;

    let issue = |q: i64| json!({"product_id": f.product, "warehouse_id": f.warehouse, "quantity": q, "reference": "SO-1"});
    let r = f.post("/api/v1/stock/issue", issue(9)).await;
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.unwrap();
    let taken: Vec<(String, i64)> = body["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["lot"].as_str().unwrap().to_owned(),
                t["quantity"].as_i64().unwrap(),
            )
        })
        .collect();
    // Same expiry: location code order (A-01 before B-01); expired OLD skipped.
    assert_eq!(
        taken,
        [
            ("SOON2".into(), -2),
            ("SOON".into(), -3),
            ("LATE".into(), -4)
        ]
    );
    assert_eq!(body["levels"][0]["quantity"], 19 - 9);
    // What is left that may be issued: 1 LATE + 4 NOEXP (OLD has expired).
    let refused = assert_problem(
        f.post("/api/v1/stock/issue", issue(6)).await,
        409,
        "insufficient-stock",
    )
    .await;
    assert_eq!(refused["available"], 5);
    // Naming the expired lot is refused unless allowed.
    let mut old = issue(1);
    old["lot"] = json!("OLD");
    assert_problem(
        f.post("/api/v1/stock/issue", old.clone()).await,
        409,
        "lot-expired",
    )
    .await;
    old["allow_expired"] = json!(true);
    assert_eq!(f.post("/api/v1/stock/issue", old).await.status(), 201);
    f.assert_ledger_holds().await;
}

#[sqlx::test]
async fn fefo_issues_racing_lot_receipts_keep_every_position_equal_to_its_ledger(db: PgPool) {
    let f = Arc::new(fixture(db, "lot").await);
    let today = time::OffsetDateTime::now_utc().date();
    let (a, b) = (f.location("A").await, f.location("B").await);
    for (i, loc) in [a, b, a].iter().enumerate() {
        let expires = (today + time::Duration::days(30 + i as i64)).to_string();
        f.receive(json!({"quantity": 40, "lot": format!("START{i}"), "expires_on": expires, "location_id": loc}))
            .await;
    }
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let f = f.clone();
            tokio::spawn(async move {
                if i % 4 == 3 {
                    // 16 receivers, each a new lot at one of the locations.
                    let expires = (today + time::Duration::days(i % 7)).to_string();
                    let loc = if i % 8 == 3 { a } else { b };
                    f.receive(json!({"quantity": 3, "lot": format!("NEW{i}"), "expires_on": expires, "location_id": loc}))
                        .await
                        .status()
                        .as_u16()
                } else {
                    // 48 issuers, first-expiring-first.
                    f.post(
                        "/api/v1/stock/issue",
                        json!({"product_id": f.product, "warehouse_id": f.warehouse, "quantity": 4}),
                    )
                    .await
                    .status()
                    .as_u16()
                }
            })
        })
        .collect();
    let statuses = applied_or_refused(tasks).await;
    let issued = statuses
        .iter()
        .enumerate()
        .filter(|(i, s)| i % 4 != 3 && **s == 201)
        .count() as i64;
    let level: i64 = sqlx::query_scalar("SELECT quantity FROM stock_levels")
        .fetch_one(&f.app.db)
        .await
        .unwrap();
    assert_eq!(level, 120 + 16 * 3 - issued * 4);
    f.assert_ledger_holds().await;
}

#[sqlx::test]
async fn a_serial_number_is_in_stock_once_even_when_received_twice_at_once(db: PgPool) {
    let f = Arc::new(fixture(db, "serial").await);
    let other = f.app.create_warehouse_sql("OTHER").await;
    let (w1, w2) = (f.warehouse, other);
    for round in 0..5 {
        let serial = format!("SN-{round}");
        let tasks: Vec<_> = [w1, w2]
            .into_iter()
            .map(|w| {
                let f = f.clone();
                let serial = serial.clone();
                tokio::spawn(async move {
                    f.post(
                        "/api/v1/stock/receive",
                        json!({"product_id": f.product, "warehouse_id": w, "quantity": 1, "serials": [serial]}),
                    )
                    .await
                })
            })
            .collect();
        let mut codes = Vec::new();
        for t in tasks {
            let r = t.await.unwrap();
            let status = r.status().as_u16();
            if status == 409 {
                assert_problem(r, 409, "serial-in-stock").await;
            }
            codes.push(status);
        }
        codes.sort();
        assert_eq!(codes, [201, 409], "exactly one receipt of {serial} wins");
    }
    // Serial-tracked: exactly `quantity` serials.
    assert_problem(
        f.receive(json!({"quantity": 2, "serials": ["X1"]})).await,
        422,
        "validation",
    )
    .await;
    // Issued by name: then it may come back.
    let in_stock_at: Uuid = sqlx::query_scalar(
        "SELECT warehouse_id FROM serial_numbers WHERE serial = 'SN-0' AND in_stock",
    )
    .fetch_one(&f.app.db)
    .await
    .unwrap();
    let issue = json!({"product_id": f.product, "warehouse_id": in_stock_at, "quantity": 1, "serials": ["SN-0"]});
    assert_eq!(
        f.post("/api/v1/stock/issue", issue.clone()).await.status(),
        201
    );
    assert_problem(
        f.post("/api/v1/stock/issue", issue).await,
        409,
        "serial-not-in-stock",
    )
    .await;
    let back =
        json!({"product_id": f.product, "warehouse_id": w1, "quantity": 1, "serials": ["SN-0"]});
    assert_eq!(f.post("/api/v1/stock/receive", back).await.status(), 201);
    let stints: i64 =
        sqlx::query_scalar("SELECT count(*) FROM serial_numbers WHERE serial = 'SN-0'")
            .fetch_one(&f.app.db)
            .await
            .unwrap();
    assert_eq!(stints, 2);
    f.assert_ledger_holds().await;
}

#[sqlx::test]
async fn transfers_between_locations_keep_lot_and_balance(db: PgPool) {
    let f = fixture(db, "lot").await;
    let (a, b) = (f.location("A").await, f.location("B").await);
    f.receive(json!({"quantity": 10, "lot": "L1", "location_id": a}))
        .await;
    let moved = f
        .post(
            "/api/v1/stock/transfer",
            json!({"product_id": f.product, "from_warehouse_id": f.warehouse, "to_warehouse_id": f.warehouse,
                   "from_location_id": a, "to_location_id": b, "quantity": 4}),
        )
        .await;
    assert_eq!(moved.status(), 201);
    let body: Value = moved.json().await.unwrap();
    let rows = body["transactions"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["balance_after"], 6);
    assert_eq!(rows[1]["balance_after"], 4);
    assert_eq!(rows[1]["lot"], "L1");
    assert_eq!(rows[1]["warehouse_balance_after"], 10);
    // Same place: refused.
    assert_problem(
        f.post(
            "/api/v1/stock/transfer",
            json!({"product_id": f.product, "from_warehouse_id": f.warehouse, "to_warehouse_id": f.warehouse,
                   "quantity": 1}),
        )
        .await,
        422,
        "validation",
    )
    .await;
    f.assert_ledger_holds().await;
}

/// One untracked level under both paths at once: v1-shaped receipts and
/// issues (the one-statement path while all the stock is at DEFAULT, the
/// general path otherwise) racing transfers between DEFAULT and a bin. The
/// DEFAULT position is counted on the level (`quantity - elsewhere`): after
/// the race every position still equals its ledger, `elsewhere` equals what
/// the bin holds, and nothing deadlocked.
#[sqlx::test]
async fn default_movements_racing_bin_transfers_keep_the_level_and_its_positions(db: PgPool) {
    let f = Arc::new(fixture(db, "none").await);
    let bin = f.location("A-01").await;
    let default: Uuid =
        sqlx::query_scalar("SELECT id FROM locations WHERE warehouse_id = $1 AND code = 'DEFAULT'")
            .bind(f.warehouse)
            .fetch_one(&f.app.db)
            .await
            .unwrap();
    assert_eq!(f.receive(json!({"quantity": 100})).await.status(), 201);
    let tasks: Vec<_> = (0..48)
        .map(|i| {
            let f = f.clone();
            tokio::spawn(async move {
                let (path, body) = match i % 4 {
                    0 => ("/api/v1/stock/receive", json!({"quantity": 2})),
                    1 => ("/api/v1/stock/issue", json!({"quantity": 3})),
                    2 => (
                        "/api/v1/stock/transfer",
                        json!({"from_location_id": default, "to_location_id": bin, "quantity": 2}),
                    ),
                    _ => (
                        "/api/v1/stock/transfer",
                        json!({"from_location_id": bin, "to_location_id": default, "quantity": 1}),
                    ),
                };
                let mut body = body;
                let ids = if path.ends_with("transfer") {
                    json!({"product_id": f.product, "from_warehouse_id": f.warehouse,
                           "to_warehouse_id": f.warehouse})
                } else {
                    json!({"product_id": f.product, "warehouse_id": f.warehouse})
                };
                body.as_object_mut()
                    .unwrap()
                    .extend(ids.as_object().unwrap().clone());
                f.post(path, body).await.status().as_u16()
            })
        })
        .collect();
    let statuses = applied_or_refused(tasks).await;
    assert!(
        statuses.iter().skip(2).step_by(4).any(|s| *s == 201),
        "some stock went to the bin: {statuses:?}"
    );
    let (quantity, elsewhere, at_bin): (i64, i64, i64) =
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT s.quantity, s.elsewhere, (SELECT quantity FROM {} p WHERE location_id = $1)
         FROM stock_levels s",
            common::positions_held()
        )))
        .bind(bin)
        .fetch_one(&f.app.db)
        .await
        .unwrap();
    let applied = |k: usize| {
        statuses
            .iter()
            .skip(k)
            .step_by(4)
            .filter(|s| **s == 201)
            .count() as i64
    };
    assert_eq!(quantity, 100 + 2 * applied(0) - 3 * applied(1));
    assert_eq!(elsewhere, at_bin);
    f.assert_ledger_holds().await;
}

/// The same movements through the scanner's set-based batch and one by one
/// through the movements API give the same answers and the same stock.
#[sqlx::test]
async fn the_batch_path_and_the_single_path_agree(db: PgPool) {
    let f = fixture(db, "lot").await;
    let manager = f.app.token("manager").await;
    let twin = f.app.create_warehouse_sql("TWIN").await;
    sqlx::query("INSERT INTO product_barcodes (lookup_key, barcode, symbology, product_id) VALUES ('04006381333931', '4006381333931', 'gtin13', $1)")
        .bind(f.product)
        .execute(&f.app.db)
        .await
        .unwrap();
    let (_, key) = f.app.create_device(&manager, &[twin]).await;
    // (receive?, lot, quantity): receipts of two lots, issues that cross lots,
    // one that is refused, one lot-less receipt that is refused.
    let script: [(bool, Option<&str>, i64); 8] = [
        (true, Some("A"), 5),
        (true, Some("B"), 3),
        (false, None, 6),
        (false, Some("B"), 3),
        (false, None, 1),
        (true, None, 1),
        (false, None, 1),
        (true, Some("A"), 2),
    ];
    let gs1 = |lot: Option<&str>| match lot {
        Some(l) => format!("(01)04006381333931(10){l}"),
        None => "4006381333931".to_owned(),
    };
    let events: Vec<Value> = script
        .iter()
        .map(|(receive, lot, q)| {
            json!({"event_id": Uuid::new_v4(), "barcode": gs1(*lot), "quantity": q,
                   "action": if *receive { "receive" } else { "issue" }, "warehouse_id": twin})
        })
        .collect();
    let batch = f
        .app
        .client
        .post(f.app.url("/api/v1/scanner/events/batch"))
        .bearer_auth(&key)
        .json(&json!({"events": events}))
        .send()
        .await
        .unwrap();
    assert_eq!(batch.status(), 200);
    let batch: Value = batch.json().await.unwrap();
    let mut single = Vec::new();
    for (receive, lot, q) in script {
        let mut body = json!({"product_id": f.product, "warehouse_id": f.warehouse, "quantity": q});
        if let Some(l) = lot {
            body["lot"] = json!(l);
        }
        let path = if receive {
            "/api/v1/stock/receive"
        } else {
            "/api/v1/stock/issue"
        };
        let r = f.post(path, body).await;
        let status = r.status().as_u16();
        let v: Value = r.json().await.unwrap();
        single.push((status, v));
    }
    for (i, (r, (status, body))) in batch["results"]
        .as_array()
        .unwrap()
        .iter()
        .zip(&single)
        .enumerate()
    {
        let applied = r["status"] == "applied";
        assert_eq!(applied, *status == 201, "event {i}: {r} vs {body}");
        if applied {
            assert_eq!(r["level"], body["levels"][0]["quantity"], "event {i}");
        } else {
            // The refusal is the same rule: its reason names what the problem says.
            let detail = body["errors"][0]["message"]
                .as_str()
                .map(str::to_owned)
                .or_else(|| body["available"].as_i64().map(|a| format!("{a} available")))
                .unwrap();
            assert!(
                r["reason"].as_str().unwrap().contains(&detail),
                "event {i}: {r} vs {body}"
            );
        }
    }
    let positions = |w: Uuid| {
        let db = f.app.db.clone();
        async move {
            sqlx::query_as::<_, (Option<String>, i64)>(sqlx::AssertSqlSafe(format!(
                "SELECT l.code, s.quantity FROM {} s LEFT JOIN lots l ON l.id = s.lot_id
                 WHERE s.warehouse_id = $1 ORDER BY 1",
                common::positions_held()
            )))
            .bind(w)
            .fetch_all(&db)
            .await
            .unwrap()
        }
    };
    assert_eq!(positions(twin).await, positions(f.warehouse).await);
    f.assert_ledger_holds().await;
}

/// Down and up again on a database holding v1 data keeps every level (and
/// the first up put each level at its warehouse's DEFAULT location).
#[sqlx::test(migrations = false)]
async fn the_migration_keeps_v1_levels_down_and_up(db: PgPool) {
    let migrator = sqlx::migrate!("./migrations");
    let v2 = 20261202180001_i64;
    let mut conn = db.acquire().await.unwrap();
    // Up to the last v1 migration, then v1 data.
    for m in migrator
        .iter()
        .filter(|m| m.version < v2 && m.migration_type.is_up_migration())
    {
        sqlx::raw_sql(m.sql.clone())
            .execute(&mut *conn)
            .await
            .unwrap();
    }
    sqlx::raw_sql(
        "INSERT INTO users (email, display_name, role, password_hash, email_normalized)
             VALUES ('a@example.com', 'A', 'admin', '!', 'a@example.com');
         INSERT INTO warehouses (code, name) VALUES ('W1', 'W1'), ('W2', 'W2');
         INSERT INTO products (sku, name) SELECT 'P' || i, 'P' || i FROM generate_series(1, 20) i;
         INSERT INTO stock_levels (product_id, warehouse_id, quantity)
             SELECT p.id, w.id, (abs(hashtext(p.sku || w.code)) % 50) + 1 FROM products p, warehouses w;
         INSERT INTO stock_transactions (kind, product_id, warehouse_id, quantity, balance_after, actor_user_id)
             SELECT 'receipt', product_id, warehouse_id, quantity, quantity, (SELECT id FROM users)
             FROM stock_levels;",
    )
    .execute(&mut *conn)
    .await
    .unwrap();
    let levels = || async {
        sqlx::query_as::<_, (Uuid, Uuid, i64)>(
            "SELECT product_id, warehouse_id, quantity FROM stock_levels ORDER BY 1, 2",
        )
        .fetch_all(&db)
        .await
        .unwrap()
    };
    let before = levels().await;
    let v2_up = migrator
        .iter()
        .find(|m| m.version == v2 && m.migration_type.is_up_migration())
        .unwrap();
    let v2_down = migrator
        .iter()
        .find(|m| m.version == v2 && !m.migration_type.is_up_migration())
        .unwrap();
    for step in [v2_up, v2_down, v2_up] {
        sqlx::raw_sql(step.sql.clone())
            .execute(&mut *conn)
            .await
            .unwrap();
        assert_eq!(levels().await, before);
    }
    let at_default: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM stock_positions s JOIN locations l ON l.id = s.location_id
         JOIN stock_levels v ON v.product_id = s.product_id AND v.warehouse_id = s.warehouse_id
         WHERE l.code = 'DEFAULT' AND s.quantity = v.quantity AND s.lot_id IS NULL",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(at_default, before.len() as i64);
}

/// Migration 20261205070001 counts the DEFAULT location's unlotted stock on
/// its level: the position's row keeps its id with quantity NULL, the view
/// shows what it holds; down stores the quantity in the row again, up moves
/// it back, and neither changes what any position holds.
#[sqlx::test]
async fn the_default_position_is_counted_on_its_level_down_and_up(db: PgPool) {
    let f = fixture(db, "none").await;
    let bin = f.location("A-01").await;
    assert_eq!(f.receive(json!({"quantity": 10})).await.status(), 201);
    assert_eq!(
        f.receive(json!({"quantity": 4, "location_id": bin}))
            .await
            .status(),
        201
    );
    let db = f.app.db.clone();
    let held = || async {
        sqlx::query_as::<_, (Uuid, i64, time::OffsetDateTime)>(sqlx::AssertSqlSafe(format!(
            "SELECT id, quantity, updated_at FROM {} s WHERE product_id = $1 ORDER BY id",
            common::positions_held()
        )))
        .bind(f.product)
        .fetch_all(&db)
        .await
        .unwrap()
    };
    let default_changed_at = || async {
        let at: Vec<_> = held().await.into_iter().filter(|p| p.1 >= 10).collect();
        at[0].2
    };
    let received_at = default_changed_at().await;
    // First-expiring-first over untracked stock goes by location code: the
    // bin before DEFAULT, which does not change.
    let issue = json!({"product_id": f.product, "warehouse_id": f.warehouse, "quantity": 3});
    assert_eq!(f.post("/api/v1/stock/issue", issue).await.status(), 201);
    assert_eq!(default_changed_at().await, received_at);
    let stored = || async {
        sqlx::query_as::<_, (Uuid, Option<i64>, time::OffsetDateTime)>(
            "SELECT id, quantity, updated_at FROM stock_positions WHERE product_id = $1 ORDER BY id",
        )
        .bind(f.product)
        .fetch_all(&db)
        .await
        .unwrap()
    };
    let elsewhere = || async {
        sqlx::query_scalar::<_, i64>("SELECT elsewhere FROM stock_levels WHERE product_id = $1")
            .bind(f.product)
            .fetch_one(&db)
            .await
            .unwrap()
    };
    let before = held().await;
    let mut quantities: Vec<i64> = before.iter().map(|p| p.1).collect();
    quantities.sort();
    assert_eq!(quantities, [1, 10]);
    assert_eq!(elsewhere().await, 1);
    assert_eq!(
        stored().await.iter().filter(|p| p.1.is_none()).count(),
        1,
        "only the DEFAULT position is kept on its level"
    );

    // Migrations after it are reverted first, in reverse order, and applied
    // again afterwards: its down expects the schema it left.
    let migrator = sqlx::migrate!("./migrations");
    let version = 20261205070001;
    let step = |version: i64, up: bool| {
        migrator
            .iter()
            .find(|m| m.version == version && m.migration_type.is_up_migration() == up)
            .unwrap()
            .sql
            .clone()
    };
    let later: Vec<i64> = migrator
        .iter()
        .filter(|m| m.version > version && m.migration_type.is_up_migration())
        .map(|m| m.version)
        .collect();
    let mut conn = db.acquire().await.unwrap();
    for v in later.iter().rev() {
        sqlx::raw_sql(step(*v, false))
            .execute(&mut *conn)
            .await
            .unwrap();
    }
    sqlx::raw_sql(step(version, false))
        .execute(&mut *conn)
        .await
        .unwrap();
    let down: Vec<_> = stored()
        .await
        .into_iter()
        .map(|(id, q, at)| (id, q.expect("down stores every quantity"), at))
        .collect();
    assert_eq!(down, before);
    sqlx::raw_sql(step(version, true))
        .execute(&mut *conn)
        .await
        .unwrap();
    assert_eq!(held().await, before);
    assert_eq!(elsewhere().await, 1);
    for v in &later {
        sqlx::raw_sql(step(*v, true))
            .execute(&mut *conn)
            .await
            .unwrap();
    }

    // The level's own rule: what is elsewhere is part of its quantity.
    let err = sqlx::query("UPDATE stock_levels SET elsewhere = quantity + 1 WHERE product_id = $1")
        .bind(f.product)
        .execute(&db)
        .await
        .unwrap_err();
    assert_eq!(
        err.as_database_error().and_then(|e| e.constraint()),
        Some("stock_levels_sum_covers_elsewhere")
    );
    // An unlotted position is kept on its level exactly at DEFAULT.
    for (sql, case) in [
        ("UPDATE stock_positions SET quantity = 5 WHERE quantity IS NULL AND product_id = $1", "DEFAULT stored"),
        ("UPDATE stock_positions SET quantity = NULL WHERE quantity IS NOT NULL AND product_id = $1", "a bin on the level"),
    ] {
        let err = sqlx::query(sql).bind(f.product).execute(&db).await.unwrap_err();
        assert_eq!(
            err.as_database_error().and_then(|e| e.constraint()),
            Some("stock_positions_kept_on_level"),
            "{case}"
        );
    }
    // Movements after it: a v1-shaped receipt, and an issue taking the bin's
    // last unit and then DEFAULT's.
    assert_eq!(f.receive(json!({"quantity": 2})).await.status(), 201);
    let issue = json!({"product_id": f.product, "warehouse_id": f.warehouse, "quantity": 5});
    assert_eq!(f.post("/api/v1/stock/issue", issue).await.status(), 201);
    assert_eq!(elsewhere().await, 0);
    f.assert_ledger_holds().await;
}

/// The fields of a v1 `/stock` item, exactly.
const V1_LEVEL_FIELDS: [&str; 9] = [
    "available",
    "product_id",
    "quantity",
    "reorder_point",
    "reserved",
    "sku",
    "updated_at",
    "warehouse_code",
    "warehouse_id",
];

/// The statuses of racing requests, in task order; each one applied (201)
/// or refused (409), never a deadlock or a 500.
async fn applied_or_refused(tasks: Vec<tokio::task::JoinHandle<u16>>) -> Vec<u16> {
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 409),
        "only applied or refused, never a deadlock or 500: {statuses:?}"
    );
    statuses
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

fn sum_of(positions: &Value) -> i64 {
    positions
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["quantity"].as_i64().unwrap())
        .sum()
}

#[sqlx::test]
async fn stock_keeps_its_v1_shape_and_adds_positions_that_sum_to_the_level_when_asked(db: PgPool) {
    let f = fixture(db, "lot").await;
    let (a, b) = (f.location("A-01").await, f.location("B-01").await);
    let other = f.app.create_warehouse_sql("SECOND").await;
    let today = time::OffsetDateTime::now_utc().date();
    let soon = (today + time::Duration::days(10)).to_string();
    for (lot, loc, q) in [("L1", a, 5), ("L2", b, 3), ("L1", b, 2)] {
        let resp = f
            .receive(
                json!({"lot": lot, "expires_on": (lot == "L1").then_some(&soon),
                            "location_id": loc, "quantity": q}),
            )
            .await;
        assert_eq!(resp.status(), 201);
    }
    let resp = f
        .post(
            "/api/v1/stock/receive",
            json!({"product_id": f.product, "warehouse_id": other, "lot": "L2", "quantity": 4}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let get = |path: String| {
        let app = f.app.clone();
        let token = f.token.clone();
        async move {
            let resp = app.get_as(&path, &token).await;
            assert_eq!(resp.status(), 200);
            resp.json::<Value>().await.unwrap()
        }
    };

    // Without `detail`: the v1 item, field for field.
    let plain = get(format!("/api/v1/stock?product_id={}", f.product)).await;
    let items = plain["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{plain}");
    for item in items {
        assert_eq!(keys(item), V1_LEVEL_FIELDS, "{item}");
    }

    // With it: the same items, each with positions that add up to it.
    let detailed = get(format!(
        "/api/v1/stock?product_id={}&detail=positions",
        f.product
    ))
    .await;
    let with = detailed["items"].as_array().unwrap();
    assert_eq!(with.len(), 2, "{detailed}");
    for (item, plain) in with.iter().zip(items) {
        let mut without = item.clone();
        let positions = without
            .as_object_mut()
            .unwrap()
            .remove("positions")
            .unwrap();
        assert_eq!(&without, plain);
        assert_eq!(
            sum_of(&positions),
            item["quantity"].as_i64().unwrap(),
            "{item}"
        );
    }
    let main = with
        .iter()
        .find(|i| i["warehouse_id"] == f.warehouse.to_string().as_str())
        .unwrap();
    assert_eq!(main["quantity"], 10);
    let positions = main["positions"].as_array().unwrap();
    // By location path, then the lot expiring first.
    let seen: Vec<(&str, &str, i64)> = positions
        .iter()
        .map(|p| {
            (
                p["location_code"].as_str().unwrap(),
                p["lot"].as_str().unwrap(),
                p["quantity"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [("A-01", "L1", 5), ("B-01", "L1", 2), ("B-01", "L2", 3)]
    );
    assert_eq!(positions[0]["location_id"], a.to_string().as_str());
    assert_eq!(positions[0]["location_path"], "A-01");
    assert_eq!(positions[0]["expires_on"], soon.as_str());
    assert!(positions[2]["expires_on"].is_null());
    assert!(positions[0]["lot_id"].is_string());

    // Paged: each page carries its own levels' positions.
    let first = get(format!(
        "/api/v1/stock?product_id={}&detail=positions&limit=1",
        f.product
    ))
    .await;
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = get(format!(
        "/api/v1/stock?product_id={}&detail=positions&limit=1&cursor={cursor}",
        f.product
    ))
    .await;
    assert_eq!(first["items"][0], with[0]);
    assert_eq!(second["items"][0], with[1]);

    // /products/{id}/stock: the same, per warehouse.
    let path = format!("/api/v1/products/{}/stock", f.product);
    let plain = get(path.clone()).await;
    for w in plain["warehouses"].as_array().unwrap() {
        assert!(w.get("positions").is_none(), "{w}");
    }
    let detailed = get(format!("{path}?detail=positions")).await;
    assert_eq!(detailed["total"], 14);
    for w in detailed["warehouses"].as_array().unwrap() {
        assert_eq!(
            sum_of(&w["positions"]),
            w["quantity"].as_i64().unwrap(),
            "{w}"
        );
    }

    // A past instant has no positions to give; an unknown detail is refused.
    let at = (time::OffsetDateTime::now_utc() - time::Duration::minutes(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let resp = f
        .app
        .get_as(&format!("{path}?as_of={at}&detail=positions"), &f.token)
        .await;
    let problem = assert_problem(resp, 422, "validation").await;
    assert_eq!(problem["errors"][0]["field"], "detail", "{problem}");
    let resp = f.app.get_as("/api/v1/stock?detail=bins", &f.token).await;
    assert_problem(resp, 400, "bad-request").await;

    // A level under an open blind count is left out, positions and all.
    sqlx::query("INSERT INTO count_sessions (warehouse_id, blind) VALUES ($1, true)")
        .bind(f.warehouse)
        .execute(&f.app.db)
        .await
        .unwrap();
    let hidden = get(format!(
        "/api/v1/stock?product_id={}&detail=positions",
        f.product
    ))
    .await;
    assert_eq!(hidden["items"].as_array().unwrap().len(), 1, "{hidden}");
    assert_eq!(
        hidden["items"][0]["warehouse_id"],
        other.to_string().as_str()
    );
    let hidden = get(format!("{path}?detail=positions")).await;
    assert_eq!(hidden["total"], 4, "{hidden}");
    let manager = f.app.token("manager").await;
    let resp = f
        .app
        .get_as(&format!("{path}?detail=positions"), &manager)
        .await;
    let shown: Value = resp.json().await.unwrap();
    assert_eq!(shown["total"], 14, "{shown}");
    assert_eq!(
        sum_of(&shown["warehouses"][0]["positions"]) + sum_of(&shown["warehouses"][1]["positions"]),
        14
    );
}
