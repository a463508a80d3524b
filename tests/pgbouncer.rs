//! The API behind PgBouncer in transaction pooling. scripts/test.sh runs this
//! file (with stock, scanner and read_pool) with the application's pool going
//! through a PgBouncer (`TEST_APP_THROUGH_PGBOUNCER`) that has 4 server
//! connections per database and logs in as a role carrying the API's
//! timeouts; run plainly, the same requests go straight to PostgreSQL.
//!
//! What a misconfigured PgBouncer breaks, and the test that shows it:
//! - no `max_prepared_statements` (or a PgBouncer before 1.21): sqlx's named
//!   prepared statements meet other clients' on shared server connections
//!   ("prepared statement sqlx_s_1 already exists / does not exist"), and the
//!   burst below answers 500s;
//! - no timeouts on the role (PgBouncer drops the `options` the API sends
//!   them in): a movement waits on a lock until the request deadline.
//!
//! And what the API itself must do: run its one-off statements (planned
//! afresh, unnamed) inside a transaction (`db::InTransaction`); outside one,
//! reads of a count answered 500 "unnamed prepared statement does not exist"
//! (the last test; CI once saw it as a count read back empty).

mod common;

use std::time::{Duration, Instant};

use common::{assert_problem, pgbouncer_port, test_config, TestApp};
use inventory_api::{cache::Cache, db};
use serde_json::json;
use sqlx::{
    postgres::{PgConnectOptions, PgPoolOptions},
    PgPool,
};
use uuid::Uuid;

/// Requests in flight at once, and the application's pool size: both well
/// above PgBouncer's 4 server connections, so every server connection runs
/// the statements of many client connections.
const REQUESTS: usize = 64;
const APP_POOL: u32 = 16;
const PRODUCTS: usize = 4;

async fn product(db: &PgPool, sku: &str) -> Uuid {
    sqlx::query_scalar(
        "INSERT INTO products (sku, name, unit_cost) VALUES ($1, $1, 1) RETURNING id",
    )
    .bind(sku)
    .fetch_one(db)
    .await
    .unwrap()
}

async fn level(db: &PgPool, product: Uuid, warehouse: Uuid) -> i64 {
    sqlx::query_scalar(
        "SELECT COALESCE((SELECT quantity FROM stock_levels WHERE product_id = $1 AND warehouse_id = $2), 0)",
    )
    .bind(product)
    .bind(warehouse)
    .fetch_one(db)
    .await
    .unwrap()
}

#[sqlx::test]
async fn many_concurrent_requests_on_few_shared_server_connections_all_succeed(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let config = test_config(&[("DATABASE_MAX_CONNECTIONS", &APP_POOL.to_string())]);
    let pool = db::pool_with(opts, APP_POOL, config.session_limits);
    let app = TestApp::spawn_with(pool, Cache::disabled(), config).await;
    let token = app.token("clerk").await;
    let warehouse = app.create_warehouse_sql("MAIN").await;
    let mut products = Vec::new();
    for i in 0..PRODUCTS {
        products.push(product(&app.db, &format!("P-{i}")).await);
    }

    // Each request runs several statements (auth, idempotency, the movement
    // engine, the outbox, reads), each a named prepared statement of its
    // client connection.
    let failures: Vec<String> = futures_util::future::join_all((0..REQUESTS).map(|i| {
        let (app, token, product) = (&app, &token, products[i % PRODUCTS]);
        async move {
            let mut failures = Vec::new();
            let body = json!({"product_id": product, "warehouse_id": warehouse, "quantity": 1});
            let resp = app.post_as("/api/v1/stock/receive", token, &body).await;
            if resp.status() != 201 {
                failures.push(format!(
                    "receive {i}: {} {}",
                    resp.status(),
                    resp.text().await.unwrap_or_default()
                ));
            }
            for path in [
                format!("/api/v1/products/{product}/stock"),
                "/api/v1/transactions?limit=5".to_owned(),
            ] {
                let resp = app.get_as(&path, token).await;
                if resp.status() != 200 {
                    failures.push(format!(
                        "GET {path}: {} {}",
                        resp.status(),
                        resp.text().await.unwrap_or_default()
                    ));
                }
            }
            failures
        }
    }))
    .await
    .into_iter()
    .flatten()
    .collect();
    assert!(
        failures.is_empty(),
        "{} failed requests:\n{}",
        failures.len(),
        failures.join("\n")
    );
    for product in products {
        assert_eq!(
            level(&app.db, product, warehouse).await,
            (REQUESTS / PRODUCTS) as i64,
            "every receipt counted once"
        );
    }

    if pgbouncer_port().is_some() {
        // PgBouncer's server connections log in as their own role
        // (scripts/test.sh), the fixtures as the test user.
        let servers: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND usename <> current_user",
        )
        .fetch_one(&app.db)
        .await
        .unwrap();
        let clients = app.app_db.size();
        assert!(
            servers >= 1 && servers < i64::from(clients),
            "{clients} client connections should have shared fewer server connections, not {servers}"
        );
    }
}

#[sqlx::test]
async fn a_lock_held_elsewhere_ends_in_503_at_the_lock_timeout_not_at_the_request_deadline(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    // The defaults: lock_timeout 5 s, request deadline 30 s. Straight to
    // PostgreSQL the API's pool sets the lock timeout on its connections;
    // through PgBouncer only the role's setting can (scripts/test.sh sets the
    // same).
    let config = test_config(&[]);
    let pool = db::pool_with(opts, 5, config.session_limits);
    let app = TestApp::spawn_with(pool, Cache::disabled(), config).await;
    let token = app.token("clerk").await;
    let warehouse = app.create_warehouse_sql("MAIN").await;
    let product = product(&app.db, "P-1").await;
    let body = json!({"product_id": product, "warehouse_id": warehouse, "quantity": 5});
    assert_eq!(
        app.post_as("/api/v1/stock/receive", &token, &body)
            .await
            .status(),
        201
    );

    let lock = common::hold_level_lock(&app.db, product, warehouse).await;
    let started = Instant::now();
    let resp = app.post_as("/api/v1/stock/receive", &token, &body).await;
    let waited = started.elapsed();
    assert_problem(resp, 503, "unavailable").await;
    assert!(
        waited >= Duration::from_secs(4) && waited < Duration::from_secs(9),
        "answered after {waited:?}, not at the 5 s lock timeout"
    );
    lock.rollback().await.unwrap();
    assert_eq!(
        level(&app.db, product, warehouse).await,
        5,
        "the refused receipt left nothing"
    );
}

#[sqlx::test]
async fn migrations_keep_no_timeout_when_the_role_has_one_for_pgbouncer(db: PgPool) {
    // A database default stands in for the role's (the test user is shared):
    // both apply to every new connection that does not say otherwise.
    sqlx::query(
        "DO $$ BEGIN
           EXECUTE format('ALTER DATABASE %I SET statement_timeout = %L', current_database(), '100ms');
         END $$",
    )
    .execute(&db)
    .await
    .unwrap();
    let options = (*db.connect_options()).clone();

    let plain = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options.clone())
        .await
        .unwrap();
    let err = sqlx::query("SELECT pg_sleep(0.3)")
        .execute(&plain)
        .await
        .expect_err("a plain connection has the database's 100 ms limit");
    assert!(db::is_timeout(&err), "{err}");

    // What `db::migrate_url` and the admin subcommands open.
    let migrations = db::pool_with(options, 1, db::SessionLimits::NONE);
    sqlx::query("SELECT pg_sleep(0.3)")
        .execute(&migrations)
        .await
        .expect("the migration pool has no statement timeout");
    plain.close().await;
    migrations.close().await;
}

/// A one-off (unnamed) statement is parsed in one exchange with the server
/// and run in the next. Outside a transaction PgBouncer may hand the server
/// connection to another client in between, and the run lands wherever the
/// next server connection is: one whose unnamed statement is another
/// client's, or none ("unnamed prepared statement does not exist"). A count's
/// lines are read by such a statement; here many reads of a count meet
/// scanner batches (whose duplicate probe is one too) on 4 server connections.
#[sqlx::test]
async fn one_off_statements_run_on_the_server_connection_that_parsed_them(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    const READS: usize = 96;
    const BATCHES: usize = 24;
    let config = test_config(&[("DATABASE_MAX_CONNECTIONS", &APP_POOL.to_string())]);
    let pool = db::pool_with(opts, APP_POOL, config.session_limits);
    let app = TestApp::spawn_with(pool, Cache::disabled(), config).await;
    let manager = app.token("manager").await;
    let warehouse = app.create_warehouse_sql("MAIN").await;
    let resp = app
        .post_as(
            "/api/v1/products",
            &manager,
            &json!({"sku": "P-1", "name": "P-1", "barcodes": [{"barcode": "4006381333931"}]}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let (_, key) = app.create_device(&manager, &[warehouse]).await;
    let batch = || {
        let events: Vec<_> = (0..20)
            .map(|_| json!({"event_id": Uuid::new_v4(), "barcode": "4006381333931", "action": "receive",
                            "quantity": 1, "warehouse_id": warehouse, "scanned_at": "2026-12-04T08:00:00Z"}))
            .collect();
        json!({"events": events})
    };
    let resp = app
        .post_as("/api/v1/scanner/events/batch", &key, &batch())
        .await;
    assert_eq!(resp.status(), 200);
    let resp = app
        .post_as(
            "/api/v1/counts",
            &manager,
            &json!({"warehouse_id": warehouse}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let count: serde_json::Value = resp.json().await.unwrap();
    let count = count["id"].as_str().unwrap().to_owned();

    let reads = (0..READS).map(|i| {
        let (app, manager, count) = (&app, &manager, &count);
        async move {
            let path = if i % 2 == 0 {
                format!("/api/v1/counts/{count}")
            } else {
                format!("/api/v1/counts/{count}/lines")
            };
            let resp = app.get_as(&path, manager).await;
            let status = resp.status();
            let body = resp.text().await.unwrap_or_default();
            (status != 200 || !body.contains("\"expected_quantity\":20"))
                .then(|| format!("GET {path}: {status} {body}"))
        }
    });
    let batches = (0..BATCHES).map(|i| {
        let (app, key, body) = (&app, &key, batch());
        async move {
            let resp = app
                .post_as("/api/v1/scanner/events/batch", key, &body)
                .await;
            let status = resp.status();
            let body = resp.text().await.unwrap_or_default();
            (status != 200).then(|| format!("batch {i}: {status} {body}"))
        }
    });
    let (reads, batches) = futures_util::future::join(
        futures_util::future::join_all(reads),
        futures_util::future::join_all(batches),
    )
    .await;
    let failures: Vec<String> = reads.into_iter().chain(batches).flatten().collect();
    assert!(
        failures.is_empty(),
        "{} failed requests:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The rule the test above checks at run time, checked for every one-off
/// statement in the source: the function that runs it takes an
/// `InTransaction`, so no caller can hand it a bare pool connection.
#[test]
fn every_one_off_statement_runs_in_a_function_that_takes_a_transaction() {
    fn sources(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("readable source directory") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    sources(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    let (mut seen, mut outside) = (0, Vec::new());
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable source file");
        for (at, _) in text.match_indices(".persistent(false)") {
            let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
            if text[line_start..at].trim_start().starts_with("//") {
                continue; // a comment about one
            }
            seen += 1;
            let start = text[..at].rfind("fn ").expect("inside a function");
            let signature = &text[start..start + text[start..].find('{').expect("a body")];
            if !signature.contains("InTransaction") {
                let line = text[..at].lines().count();
                outside.push(format!("{}:{line}: {signature}", file.display()));
            }
        }
    }
    assert!(
        seen > 0,
        "no one-off statement found: is the search still right?"
    );
    assert!(
        outside.is_empty(),
        "one-off statements in functions that do not take a transaction:\n{}",
        outside.join("\n")
    );
}
