//! The foundation: ops endpoints, error rendering, spec, schema invariants.

mod common;

use common::{assert_problem, test_config, TestApp};
use inventory_api::{cache::Cache, db};
use serde_json::Value;
use sqlx::PgPool;

#[sqlx::test]
async fn health_answers_ok(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let resp = app.get("/health").await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "ok");
}

#[sqlx::test]
async fn ready_reports_database_and_redis(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let resp = app.get("/ready").await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["database"], "ok");
    let expected_redis = if app.cache.is_enabled() {
        "ok"
    } else {
        "disabled"
    };
    assert_eq!(body["redis"], expected_redis);
}

#[tokio::test]
async fn ready_is_503_when_the_database_is_unreachable() {
    // Port 1 on loopback refuses connections: a database that is down.
    let pool = db::pool_from_url(
        "postgres://postgres@127.0.0.1:1/none",
        2,
        db::SessionLimits::NONE,
    )
    .unwrap();
    let app = TestApp::spawn_with(pool, Cache::disabled(), test_config(&[])).await;
    let resp = app.get("/ready").await;
    assert_eq!(resp.status(), 503);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["database"], "down");
    assert_eq!(body["redis"], "disabled");
    // Liveness does not depend on the database.
    assert_eq!(app.get("/health").await.status(), 200);
}

#[tokio::test]
async fn ready_reports_redis_down_but_stays_ready_without_it() {
    let Ok(url) = std::env::var("DATABASE_URL") else {
        return;
    };
    let pool = db::pool_from_url(&url, 2, db::SessionLimits::NONE).unwrap();
    // Nothing listens on port 1: Redis is configured but down.
    let cache = Cache::connect("redis://127.0.0.1:1", "test:down:").unwrap();
    let app = TestApp::spawn_with(pool, cache, test_config(&[])).await;
    let resp = app.get("/ready").await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["redis"], "down");
}

#[sqlx::test]
async fn unknown_routes_get_a_problem_404(db: PgPool) {
    let app = TestApp::spawn(db).await;
    assert_problem(app.get("/api/v1/nothing-here").await, 404, "not-found").await;
}

#[sqlx::test]
async fn wrong_method_gets_a_problem_405(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let resp = app.client.delete(app.url("/health")).send().await.unwrap();
    assert_problem(resp, 405, "method-not-allowed").await;
}

#[sqlx::test]
async fn oversized_bodies_are_refused_with_413(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let big = "x".repeat(1_100_000); // test config allows 1 MiB
    let resp = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_problem(resp, 413, "payload-too-large").await;
}

#[sqlx::test]
async fn every_response_carries_a_request_id(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let resp = app.get("/health").await;
    let id = resp
        .headers()
        .get("x-request-id")
        .expect("x-request-id set");
    assert!(!id.is_empty());
    // A sane id from the caller is kept, so logs can be joined across services.
    let resp = app
        .client
        .get(app.url("/nowhere"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "abc-123");
    // An insane one is replaced.
    let resp = app
        .client
        .get(app.url("/health"))
        .header("x-request-id", "bad id with spaces")
        .send()
        .await
        .unwrap();
    assert_ne!(resp.headers()["x-request-id"], "bad id with spaces");
}

#[sqlx::test]
async fn spec_endpoints_and_swagger_ui_are_served(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let json: Value = app.get("/openapi.json").await.json().await.unwrap();
    assert!(json["openapi"].as_str().unwrap().starts_with("3."));
    assert!(json["paths"]["/ready"]["get"].is_object());

    let yaml = app.get("/openapi.yaml").await.text().await.unwrap();
    let parsed: Value = serde_yaml::from_str(&yaml).unwrap();
    assert_eq!(parsed, json, "YAML and JSON specs describe the same API");

    let docs = app.get("/docs").await;
    assert_eq!(docs.status(), 200);
    assert!(docs.text().await.unwrap().contains("swagger"));
}

#[test]
fn committed_openapi_yaml_matches_the_code() {
    let generated = inventory_api::app::spec_yaml();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.yaml");
    if std::env::var("UPDATE_OPENAPI").is_ok() {
        std::fs::write(path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed.trim_end() == generated.trim_end(),
        "openapi/openapi.yaml is stale: run `cargo run -- openapi > openapi/openapi.yaml` \
         (or UPDATE_OPENAPI=1 cargo test --test ops) and commit it"
    );
}

/// Inserts one ledger row through SQL, returning its id.
async fn insert_ledger_row(db: &PgPool) -> uuid::Uuid {
    let user: uuid::Uuid = sqlx::query_scalar(
        "INSERT INTO users (email, display_name, role, password_hash)
         VALUES ('a@example.com', 'A', 'admin', 'x') RETURNING id",
    )
    .fetch_one(db)
    .await
    .unwrap();
    let product: uuid::Uuid = sqlx::query_scalar(
        "INSERT INTO products (sku, name) VALUES ('SKU-1', 'Thing') RETURNING id",
    )
    .fetch_one(db)
    .await
    .unwrap();
    let warehouse: uuid::Uuid = sqlx::query_scalar(
        "INSERT INTO warehouses (code, name) VALUES ('WH1', 'Main') RETURNING id",
    )
    .fetch_one(db)
    .await
    .unwrap();
    // A level with stock is held at the warehouse's DEFAULT position, which
    // the ledger row names.
    sqlx::query("INSERT INTO stock_levels (product_id, warehouse_id, quantity) VALUES ($1, $2, 5)")
        .bind(product)
        .bind(warehouse)
        .execute(db)
        .await
        .unwrap();
    sqlx::query_scalar(
        "INSERT INTO stock_transactions (kind, product_id, warehouse_id, quantity, balance_after, actor_user_id)
         VALUES ('receipt', $1, $2, 5, 5, $3) RETURNING id",
    )
    .bind(product)
    .bind(warehouse)
    .bind(user)
    .fetch_one(db)
    .await
    .unwrap()
}

#[sqlx::test]
async fn the_ledger_refuses_update_delete_and_truncate_even_in_sql(db: PgPool) {
    let id = insert_ledger_row(&db).await;
    let update = sqlx::query("UPDATE stock_transactions SET quantity = 500 WHERE id = $1")
        .bind(id)
        .execute(&db)
        .await;
    assert!(update.unwrap_err().to_string().contains("append-only"));
    let delete = sqlx::query("DELETE FROM stock_transactions WHERE id = $1")
        .bind(id)
        .execute(&db)
        .await;
    assert!(delete.unwrap_err().to_string().contains("append-only"));
    let truncate = sqlx::query("TRUNCATE stock_transactions CASCADE")
        .execute(&db)
        .await;
    assert!(truncate.unwrap_err().to_string().contains("append-only"));
    let quantity: i64 = sqlx::query_scalar("SELECT quantity FROM stock_transactions WHERE id = $1")
        .bind(id)
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(quantity, 5);
}

#[sqlx::test]
async fn the_ledger_refuses_rows_breaking_its_kind_sign_and_reason_rules(db: PgPool) {
    insert_ledger_row(&db).await;
    let insert =
        |kind: &'static str, quantity: i64, reason: Option<&'static str>, transfer: bool| {
            let db = db.clone();
            async move {
                sqlx::query(
                    "INSERT INTO stock_transactions
                     (kind, product_id, warehouse_id, quantity, balance_after, reason, transfer_id,
                      actor_user_id)
                 SELECT $1, p.id, w.id, $2, 10, $3, CASE WHEN $4 THEN gen_random_uuid() END, u.id
                 FROM products p, warehouses w, users u",
                )
                .bind(kind)
                .bind(quantity)
                .bind(reason)
                .bind(transfer)
                .execute(&db)
                .await
                .map(|_| ())
                .map_err(|e| {
                    e.as_database_error()
                        .unwrap()
                        .constraint()
                        .map(str::to_owned)
                })
            }
        };
    let refused = Err(Some("stock_transactions_kind_rules".to_owned()));
    for (kind, quantity, reason, transfer) in [
        ("stolen", 1, None, false),
        ("receipt", -1, None, false),
        ("issue", 1, None, false),
        ("transfer_in", -1, None, true),
        ("transfer_out", 1, None, true),
        ("transfer_in", 1, None, false),
        ("receipt", 1, None, true),
        ("adjustment", 1, None, true),
        ("adjustment", -1, Some("stolen"), false),
    ] {
        assert_eq!(
            insert(kind, quantity, reason, transfer).await,
            refused,
            "{kind} {quantity} {reason:?} transfer: {transfer}"
        );
    }
    for (kind, quantity, reason, transfer) in [
        ("receipt", 1, None, false),
        ("issue", -1, None, false),
        ("adjustment", -1, Some("damaged"), false),
        ("adjustment", 2, Some("found"), false),
        ("count_adjustment", -2, None, false),
        ("transfer_out", -1, None, true),
        ("transfer_in", 1, None, true),
    ] {
        assert_eq!(
            insert(kind, quantity, reason, transfer).await,
            Ok(()),
            "{kind} {quantity} {reason:?} transfer: {transfer}"
        );
    }
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM stock_transactions")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(rows, 8);
}

#[sqlx::test]
async fn each_ledger_and_level_rule_refuses_under_its_own_name(db: PgPool) {
    insert_ledger_row(&db).await;
    // One CHECK per table calls a function naming the rule a row breaks
    // (migration 20261205100001): the names are those of the separate CHECKs
    // it replaced, which the API maps and operators know, reported in their
    // old order (by name) when a row breaks two.
    let constraint = |r: Result<sqlx::postgres::PgQueryResult, sqlx::Error>| {
        r.map(|_| ()).map_err(|e| {
            let e = e.as_database_error().unwrap();
            assert_eq!(e.code().as_deref(), Some("23514"), "{e}");
            e.constraint().map(str::to_owned)
        })
    };
    let ledger = |changes: &'static [(&'static str, &'static str)]| {
        let db = db.clone();
        async move {
            let mut row = vec![
                ("kind", "'receipt'"),
                ("quantity", "1"),
                ("balance_after", "6"),
                ("warehouse_balance_after", "6"),
                ("unit_cost", "NULL"),
                ("reference", "NULL"),
                ("note", "NULL"),
                ("lot", "NULL"),
                ("serial", "NULL"),
                ("actor_user_id", "u.id"),
            ];
            for (column, value) in changes {
                row.iter_mut().find(|(c, _)| c == column).unwrap().1 = value;
            }
            let (columns, values): (Vec<_>, Vec<_>) = row.into_iter().unzip();
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO stock_transactions (product_id, warehouse_id, {})
                 SELECT p.id, w.id, {} FROM products p, warehouses w, users u",
                columns.join(", "),
                values.join(", ")
            )))
            .execute(&db)
            .await
        }
    };
    let long = |n: usize| -> &'static str { format!("'{}'", "x".repeat(n)).leak() };
    for (changes, broken) in [
        (
            vec![("balance_after", "-1")],
            "stock_transactions_balance_after_check",
        ),
        (vec![("kind", "'stolen'")], "stock_transactions_kind_rules"),
        (vec![("lot", long(21))], "stock_transactions_lot_check"),
        (vec![("note", long(2001))], "stock_transactions_note_check"),
        (
            vec![("actor_user_id", "NULL")],
            "stock_transactions_one_actor",
        ),
        (
            vec![("kind", "'adjustment'"), ("quantity", "0")],
            "stock_transactions_quantity_check",
        ),
        (
            vec![("reference", long(201))],
            "stock_transactions_reference_check",
        ),
        (
            vec![("serial", long(21))],
            "stock_transactions_serial_check",
        ),
        (
            vec![("unit_cost", "-1")],
            "stock_transactions_unit_cost_check",
        ),
        (
            vec![("warehouse_balance_after", "-1")],
            "stock_transactions_warehouse_balance_non_negative",
        ),
        // Two rules broken: the first by name, as before.
        (
            vec![("kind", "'stolen'"), ("balance_after", "-1")],
            "stock_transactions_balance_after_check",
        ),
        (
            vec![("unit_cost", "-1"), ("lot", long(21))],
            "stock_transactions_lot_check",
        ),
    ] {
        let changes: &'static [_] = changes.leak();
        assert_eq!(
            constraint(ledger(changes).await),
            Err(Some(broken.to_owned())),
            "breaking {broken}"
        );
    }
    // At the limits, and with every optional value absent, a row is taken.
    for changes in [
        vec![],
        vec![
            ("lot", long(20)),
            ("serial", long(20)),
            ("reference", long(200)),
            ("note", long(2000)),
        ],
        vec![
            ("unit_cost", "0"),
            ("balance_after", "0"),
            ("warehouse_balance_after", "0"),
        ],
    ] {
        let changes: &'static [_] = changes.leak();
        let columns: Vec<_> = changes.iter().map(|(c, _)| c).collect();
        assert_eq!(constraint(ledger(changes).await), Ok(()), "{columns:?}");
    }

    let level = |set: &'static str| {
        let db = db.clone();
        async move {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE stock_levels SET {set}"
            )))
            .execute(&db)
            .await
        }
    };
    for (set, broken) in [
        // Also outside `elsewhere <= quantity`: the level's stock rule comes
        // first, and the API answers it as insufficient stock.
        ("quantity = -1", "stock_levels_quantity_non_negative"),
        ("reserved = quantity + 1", "stock_levels_reserved_range"),
        ("reserved = -1", "stock_levels_reserved_range"),
        (
            "elsewhere = quantity + 1",
            "stock_levels_sum_covers_elsewhere",
        ),
        ("value = -1", "stock_levels_value_non_negative"),
        ("unit_cost = -1", "stock_levels_value_non_negative"),
    ] {
        assert_eq!(
            constraint(level(set).await),
            Err(Some(broken.to_owned())),
            "{set}"
        );
    }
    assert_eq!(
        constraint(level("reserved = quantity, value = 0").await),
        Ok(())
    );
    let (quantity, rows): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT quantity FROM stock_levels), (SELECT count(*) FROM stock_transactions)",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!((quantity, rows), (5, 4));
}

#[sqlx::test]
async fn a_ledger_row_cannot_name_a_missing_warehouse(db: PgPool) {
    insert_ledger_row(&db).await;
    // The warehouse is held by the position key: (product, warehouse,
    // location, lot) must be a position, and a position's location is one of
    // its warehouse's.
    let err = sqlx::query(
        "INSERT INTO stock_transactions
             (kind, product_id, warehouse_id, location_id, quantity, balance_after, actor_user_id)
         SELECT 'receipt', p.id, gen_random_uuid(), l.id, 1, 1, u.id
         FROM products p, locations l, users u",
    )
    .execute(&db)
    .await
    .unwrap_err();
    assert_eq!(
        err.as_database_error().unwrap().constraint(),
        Some("stock_transactions_position_fkey")
    );
    // And a warehouse with history cannot be deleted.
    let err = sqlx::query("DELETE FROM warehouses")
        .execute(&db)
        .await
        .unwrap_err();
    assert!(err.as_database_error().unwrap().constraint().is_some());
    let warehouses: i64 = sqlx::query_scalar("SELECT count(*) FROM warehouses")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(warehouses, 1);
}

#[sqlx::test]
async fn schema_constraints_hold_the_invariants(db: PgPool) {
    insert_ledger_row(&db).await;
    // SKU unique regardless of case.
    let dup = sqlx::query("INSERT INTO products (sku, name) VALUES ('sku-1', 'Other')")
        .execute(&db)
        .await
        .unwrap_err();
    assert_eq!(
        dup.as_database_error().unwrap().constraint(),
        Some("products_sku_key")
    );
    // Stock never negative.
    let product: uuid::Uuid = sqlx::query_scalar("SELECT id FROM products")
        .fetch_one(&db)
        .await
        .unwrap();
    let warehouse: uuid::Uuid = sqlx::query_scalar("SELECT id FROM warehouses")
        .fetch_one(&db)
        .await
        .unwrap();
    let neg = sqlx::query(
        "INSERT INTO stock_levels (product_id, warehouse_id, quantity) VALUES ($1, $2, -1)",
    )
    .bind(product)
    .bind(warehouse)
    .execute(&db)
    .await
    .unwrap_err();
    assert_eq!(
        neg.as_database_error().unwrap().constraint(),
        Some("stock_levels_quantity_non_negative")
    );
    // Pack quantity positive.
    let pack = sqlx::query(
        "INSERT INTO product_barcodes (lookup_key, barcode, symbology, product_id, pack_quantity)
         VALUES ('X', 'X', 'other', $1, 0)",
    )
    .bind(product)
    .execute(&db)
    .await
    .unwrap_err();
    assert_eq!(
        pack.as_database_error().unwrap().constraint(),
        Some("product_barcodes_pack_quantity_positive")
    );
    // Categories cannot form a cycle.
    let a: uuid::Uuid =
        sqlx::query_scalar("INSERT INTO categories (name) VALUES ('A') RETURNING id")
            .fetch_one(&db)
            .await
            .unwrap();
    let b: uuid::Uuid = sqlx::query_scalar(
        "INSERT INTO categories (name, parent_id) VALUES ('B', $1) RETURNING id",
    )
    .bind(a)
    .fetch_one(&db)
    .await
    .unwrap();
    let cycle = sqlx::query("UPDATE categories SET parent_id = $1 WHERE id = $2")
        .bind(b)
        .bind(a)
        .execute(&db)
        .await
        .unwrap_err();
    assert_eq!(
        cycle.as_database_error().unwrap().constraint(),
        Some("categories_no_cycle")
    );
}

#[sqlx::test]
async fn sigterm_ends_event_streams_and_stops_the_server_cleanly(db: PgPool) {
    let base = std::env::var("DATABASE_URL").unwrap();
    let name: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&db)
        .await
        .unwrap();
    let url = format!("{}/{}", base.rsplit_once('/').unwrap().0, name);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_inventory-api"))
        .arg("serve")
        .env("DATABASE_URL", &url)
        .env("JWT_SECRET", common::TEST_JWT_SECRET)
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        .env("BOOTSTRAP_ADMIN_EMAIL", "boot@example.com")
        .env("BOOTSTRAP_ADMIN_PASSWORD", "bootstrap password")
        .env("RUST_LOG", "warn")
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let base_url = format!("http://127.0.0.1:{port}");
    let mut up = false;
    for _ in 0..100 {
        if client
            .get(format!("{base_url}/health"))
            .send()
            .await
            .is_ok()
        {
            up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(up, "the server came up");
    let login: Value = client
        .post(format!("{base_url}/api/v1/auth/login"))
        .json(&serde_json::json!({"email": "boot@example.com", "password": "bootstrap password"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut feed = client
        .get(format!("{base_url}/api/v1/events/stream"))
        .bearer_auth(login["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(feed.status(), 200);

    let started = std::time::Instant::now();
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    // The open stream ends instead of holding shutdown for the 30 s grace period.
    let ended = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while let Ok(Some(_)) = feed.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the event stream ended on shutdown");
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "clean exit: {status:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}
