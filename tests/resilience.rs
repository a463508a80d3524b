//! The database misbehaving under the API: locks held elsewhere, requests
//! outliving their deadline, PostgreSQL restarting under load. Every such
//! answer is 503 + Retry-After, never 500, and nothing is committed late.

mod common;

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use common::{assert_problem, test_config, TestApp};
use inventory_api::{cache::Cache, db};
use serde_json::json;
use sqlx::{
    postgres::{PgConnectOptions, PgPoolOptions},
    PgPool,
};
use uuid::Uuid;

/// The app on a pool with `limits`, plus the app's config overrides.
async fn app_with_limits(
    opts: PgConnectOptions,
    limits: db::SessionLimits,
    overrides: &[(&str, &str)],
) -> TestApp {
    let pool = db::pool_with(opts, 5, limits);
    TestApp::spawn_with(pool, Cache::disabled(), test_config(overrides)).await
}

async fn product_and_warehouse(db: &PgPool) -> (Uuid, Uuid) {
    let product = sqlx::query_scalar(
        "INSERT INTO products (sku, name, unit_cost) VALUES ('P-1', 'Thing', 1) RETURNING id",
    )
    .fetch_one(db)
    .await
    .unwrap();
    let warehouse =
        sqlx::query_scalar("INSERT INTO warehouses (code, name) VALUES ('W', 'W') RETURNING id")
            .fetch_one(db)
            .await
            .unwrap();
    (product, warehouse)
}

async fn ledger_rows(db: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM stock_transactions")
        .fetch_one(db)
        .await
        .unwrap()
}

fn retry_after(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

#[sqlx::test]
async fn a_lock_held_elsewhere_ends_in_503_at_the_lock_timeout(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let limits = db::SessionLimits {
        lock_timeout: Some(Duration::from_millis(300)),
        ..db::SessionLimits::NONE
    };
    let app = app_with_limits(opts, limits, &[]).await;
    let (product, warehouse) = product_and_warehouse(&app.db).await;
    let token = app.token("clerk").await;
    let body = json!({"product_id": product, "warehouse_id": warehouse, "quantity": 5});
    assert_eq!(
        app.post_as("/api/v1/stock/receive", &token, &body)
            .await
            .status(),
        201
    );
    let before = ledger_rows(&app.db).await;

    let lock = common::hold_level_lock(&app.db, product, warehouse).await;
    let started = Instant::now();
    let resp = app.post_as("/api/v1/stock/receive", &token, &body).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "answered at the lock timeout"
    );
    assert_eq!(retry_after(&resp).as_deref(), Some("1"));
    assert_problem(resp, 503, "unavailable").await;
    lock.rollback().await.unwrap();

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        ledger_rows(&app.db).await,
        before,
        "the refused movement left nothing"
    );
    assert_eq!(
        app.post_as("/api/v1/stock/receive", &token, &body)
            .await
            .status(),
        201,
        "the same connection pool works again once the lock is gone"
    );
    app.db.close().await;
}

#[sqlx::test]
async fn a_statement_over_the_statement_timeout_is_503(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let limits = db::SessionLimits {
        statement_timeout: Some(Duration::from_millis(200)),
        ..db::SessionLimits::NONE
    };
    let pool = db::pool_with(opts, 2, limits);
    let err = sqlx::query("SELECT pg_sleep(2)")
        .execute(&pool)
        .await
        .unwrap_err();
    let api: inventory_api::error::ApiError = err.into();
    assert_eq!(api.status().as_u16(), 503, "{api}");
    pool.close().await;
}

#[sqlx::test]
async fn a_request_abandoned_at_its_deadline_is_rolled_back_not_committed_later(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    // No database timeouts: only the HTTP deadline can end the wait.
    let app = app_with_limits(
        opts,
        db::SessionLimits::NONE,
        &[
            ("REQUEST_TIMEOUT_SECONDS", "1"),
            ("DATABASE_STATEMENT_TIMEOUT_MS", "0"),
            ("DATABASE_LOCK_TIMEOUT_MS", "0"),
            ("DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS", "0"),
        ],
    )
    .await;
    let (product, warehouse) = product_and_warehouse(&app.db).await;
    let token = app.token("clerk").await;
    let body = json!({"product_id": product, "warehouse_id": warehouse, "quantity": 5});
    // A transfer takes the level locks inside a transaction before writing.
    let other: Uuid =
        sqlx::query_scalar("INSERT INTO warehouses (code, name) VALUES ('W2', 'W2') RETURNING id")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(
        app.post_as("/api/v1/stock/receive", &token, &body)
            .await
            .status(),
        201
    );
    let before = ledger_rows(&app.db).await;

    let lock = common::hold_level_lock(&app.db, product, warehouse).await;
    let transfer = json!({"product_id": product, "from_warehouse_id": warehouse,
        "to_warehouse_id": other, "quantity": 1});
    let resp = app
        .post_as("/api/v1/stock/transfer", &token, &transfer)
        .await;
    assert!(retry_after(&resp).is_some());
    assert_problem(resp, 503, "unavailable").await;
    // Release the lock: an abandoned-but-alive request would now commit.
    tokio::time::sleep(Duration::from_millis(500)).await;
    lock.rollback().await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        ledger_rows(&app.db).await,
        before,
        "nothing committed after the deadline"
    );
    app.db.close().await;
}

/// A PostgreSQL server of this test's own, so restarting it disturbs no other test.
struct PrivatePostgres {
    dir: std::path::PathBuf,
    port: u16,
}

impl PrivatePostgres {
    fn services(script: &str) {
        let status = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!("set -e; . scripts/lib/services.sh; {script}"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdout(std::process::Stdio::null())
            .status()
            .expect("bash runs");
        assert!(status.success(), "{script} failed");
    }

    fn start(&self) {
        Self::services(&format!(
            "start_postgres {} {} -c fsync=off",
            self.dir.display(),
            self.port
        ));
    }

    fn stop(&self) {
        Self::services(&format!("stop_postgres {}", self.dir.display()));
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_recover_within_two_seconds_of_a_postgres_restart_and_never_answer_500() {
    let pg = PrivatePostgres {
        dir: std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("target/test-services")
            .join(format!("pg-restart-{}", Uuid::new_v4().simple())),
        port: free_port(),
    };
    pg.start();
    db::migrate_url(&pg.url()).await.unwrap();
    let config = test_config(&[("DATABASE_URL", &pg.url())]);
    let pool = db::pool_from_url(&pg.url(), 8, config.session_limits).unwrap();
    let app = Arc::new(TestApp::spawn_with(pool, Cache::disabled(), config).await);
    let (product, warehouse) = product_and_warehouse(&app.db).await;
    let token = app.token("clerk").await;

    // Eight writers keep every pooled connection busy through the restart.
    let running = Arc::new(AtomicBool::new(true));
    let mut writers = Vec::new();
    for _ in 0..8 {
        let (app, token, running) = (app.clone(), token.clone(), running.clone());
        writers.push(tokio::spawn(async move {
            let body = json!({"product_id": product, "warehouse_id": warehouse, "quantity": 1});
            let mut answers = Vec::new();
            while running.load(Ordering::Relaxed) {
                let resp = app.post_as("/api/v1/stock/receive", &token, &body).await;
                let status = resp.status().as_u16();
                if status == 503 {
                    assert!(retry_after(&resp).is_some(), "503 without Retry-After");
                }
                answers.push((Instant::now(), status));
                if status != 201 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            answers
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    pg.stop();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        app.get("/ready").await.status(),
        503,
        "/ready says down while PostgreSQL is"
    );
    pg.start();
    let accepting = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    running.store(false, Ordering::Relaxed);

    let mut first_success_after = None;
    let mut late_failures = 0;
    for writer in writers {
        for (at, status) in writer.await.unwrap() {
            assert!(status == 201 || status == 503, "a write answered {status}");
            if at > accepting {
                if status == 201 {
                    first_success_after =
                        Some(first_success_after.map_or(at, |f: Instant| f.min(at)));
                } else if at > accepting + Duration::from_secs(2) {
                    late_failures += 1;
                }
            }
        }
    }
    let recovered = first_success_after.expect("writes succeed after the restart") - accepting;
    eprintln!(
        "writes recovered {} ms after PostgreSQL accepted connections",
        recovered.as_millis()
    );
    assert!(
        recovered < Duration::from_secs(2),
        "recovered after {recovered:?}"
    );
    assert_eq!(
        late_failures, 0,
        "every write succeeds 2 s after the restart"
    );
    assert_eq!(
        app.get("/ready").await.status(),
        200,
        "/ready follows the database"
    );
}

/// A request dropped while its `BEGIN` is in flight (the client went away,
/// the deadline fired) must not hand the connection back to the pool inside
/// a transaction: the next request's autocommit write would stay invisible.
#[sqlx::test]
async fn a_request_dropped_during_begin_leaves_no_transaction_behind(db: PgPool) {
    // The API's pool settings (no ping on acquire or release), one connection.
    let one = db::pool_with((*db.connect_options()).clone(), 1, db::SessionLimits::NONE);
    // The BEGIN is answered only after the sleep: the caller gives up first.
    let dropped = tokio::time::timeout(
        Duration::from_millis(50),
        db::begin_with(&one, "BEGIN; SELECT pg_sleep(0.3)"),
    )
    .await;
    assert!(dropped.is_err(), "the BEGIN should still have been running");
    // The pool's only connection, in autocommit.
    sqlx::query("INSERT INTO warehouses (code, name) VALUES ('AFTER', 'After the drop')")
        .execute(&one)
        .await
        .unwrap();
    let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM warehouses WHERE code = 'AFTER'")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(
        seen, 1,
        "the write is committed and visible to other connections"
    );
}

/// A TCP relay to `db`'s server on a port of its own, counting the bytes
/// clients send through it.
async fn counting_relay(db: &PgPool) -> (u16, Arc<AtomicU64>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let upstream = (
        db.connect_options().get_host().to_owned(),
        db.connect_options().get_port(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let sent = Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    tokio::spawn(async move {
        loop {
            let (client, _) = listener.accept().await.unwrap();
            let server = tokio::net::TcpStream::connect(upstream.clone())
                .await
                .unwrap();
            let (mut from_client, mut to_client) = client.into_split();
            let (mut from_server, mut to_server) = server.into_split();
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                while let Ok(n @ 1..) = from_client.read(&mut buf).await {
                    counter.fetch_add(n as u64, Ordering::SeqCst);
                    if to_server.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
            tokio::spawn(async move { tokio::io::copy(&mut from_server, &mut to_client).await });
        }
    });
    (port, sent)
}

/// Waits until `pool` holds `n` idle connections (a released one is back).
async fn idle(pool: &PgPool, n: usize) {
    let start = Instant::now();
    while pool.num_idle() < n {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the connection never came back to the pool"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// sqlx pings every connection returned to its pool: one more round trip to
/// the server per request, beside a movement's one statement. The API's pool
/// does not (`ping_on_release(false)`, our patch to sqlx-core,
/// vendor/README.md): a statement run through the pool sends the server
/// exactly what the same statement sends on a connection held throughout.
#[sqlx::test]
async fn a_connection_returned_to_the_pool_sends_the_server_nothing_more(db: PgPool) {
    let (port, sent) = counting_relay(&db).await;
    let opts = (*db.connect_options()).clone().port(port);
    let pool = db::pool_with(opts, 1, db::SessionLimits::NONE);
    let settled = || async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        sent.load(Ordering::SeqCst)
    };
    // Connect and prepare the statement, then run it on the held connection.
    let held = {
        let mut conn = pool.acquire().await.unwrap();
        sqlx::query("SELECT 1").execute(&mut *conn).await.unwrap();
        let before = settled().await;
        sqlx::query("SELECT 1").execute(&mut *conn).await.unwrap();
        settled().await - before
    };
    idle(&pool, 1).await;
    let before = settled().await;
    sqlx::query("SELECT 1").execute(&pool).await.unwrap();
    idle(&pool, 1).await;
    let through_pool = settled().await - before;
    assert!(held > 0, "the relay counted the statement");
    assert_eq!(
        through_pool, held,
        "a statement through the pool sent {through_pool} bytes, {held} on a held connection"
    );
}

/// A transaction dropped without COMMIT (a handler that returned early on an
/// error, a request dropped at its deadline) leaves its ROLLBACK queued on the
/// connection. Released without a ping, the connection would idle in the pool
/// holding the transaction's locks until its next use; it is still pinged,
/// which sends the ROLLBACK.
#[sqlx::test]
async fn a_transaction_dropped_uncommitted_releases_its_locks_when_its_connection_returns(
    db: PgPool,
) {
    let (product, _) = product_and_warehouse(&db).await;
    let pool = db::pool_with((*db.connect_options()).clone(), 1, db::SessionLimits::NONE);
    {
        let mut tx = db::begin(&pool).await.unwrap();
        sqlx::query("SELECT 1 FROM products WHERE id = $1 FOR UPDATE")
            .bind(product)
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    idle(&pool, 1).await;
    let locked = sqlx::query("SELECT 1 FROM products WHERE id = $1 FOR UPDATE NOWAIT")
        .bind(product)
        .execute(&db)
        .await;
    assert!(
        locked.is_ok(),
        "the dropped transaction still holds its row lock: {locked:?}"
    );
}
