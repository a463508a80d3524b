//! The PostgreSQL pool and the embedded migrations.
//!
//! Connections are opened lazily so the service starts, and `/ready` can say
//! "database down", even while PostgreSQL is still coming up. Acquiring a
//! connection gives up quickly so a request fails fast with 503 instead of
//! hanging when the database is gone.
//!
//! Every API connection carries `statement_timeout`, `lock_timeout` and
//! `idle_in_transaction_session_timeout` (see [`SessionLimits`]), all below the
//! HTTP request deadline: a lock held elsewhere or a runaway query ends in a
//! 503 and a rollback inside PostgreSQL, never in a commit after the client gave up.
//!
//! Dead connections (after a PostgreSQL restart or failover every idle one is
//! dead) are evicted without a ping per request: the first connection-level
//! error any request or background task sees is noted by [`note_if_lost`],
//! and `before_acquire` then discards every pooled connection opened before
//! that moment, with no round trip. So one failed request, not one per pooled
//! connection, pays for an outage, and none when work outside a request's
//! error path (the outbox sequencer and relay, the webhook worker, the
//! cleanups, the health refresh, the event feed and CSV export streams, the
//! scanner's last-seen update) meets the dead connection first.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        OnceLock,
    },
    time::{Duration, Instant},
};

use anyhow::Context;
use secrecy::ExposeSecret;
use sqlx::{
    pool::PoolConnection,
    postgres::{PgConnectOptions, PgPoolOptions},
    PgPool, Postgres, Transaction,
};

use crate::config::Config;

/// A transaction as [`begin`] returns it; also what a one-off statement
/// (`.persistent(false)`, planned afresh with its values) must run on.
/// sqlx parses such a statement in one exchange with the server and runs it
/// in the next; behind PgBouncer in transaction pooling, outside a
/// transaction the server connection goes back to PgBouncer in between, and
/// the run lands on another one, whose unnamed statement is another
/// client's or none ("unnamed prepared statement does not exist", a 500;
/// tests/pgbouncer.rs). Inside a transaction the server connection stays.
pub type InTransaction = Transaction<'static, Postgres>;

/// Begins a transaction: the one way this crate starts one.
///
/// The `BEGIN` runs on a task of its own. sqlx (0.9) counts a transaction
/// only once the server has answered `BEGIN`, and its rollback guard acts
/// only on a counted one: a request dropped in between (the client went
/// away, the request deadline fired) handed its connection back to the pool
/// *inside* a transaction nobody owned. The next request's autocommit writes
/// on that connection then stayed uncommitted, invisible to every other
/// connection (the browser test saw a console scan refused because the
/// device row created the moment before was not there), until some later
/// `COMMIT` on it or, had the connection closed, lost. On its own task the
/// `BEGIN` always completes; if nobody is waiting any more, the transaction
/// it returns is dropped there and sqlx rolls it back.
pub async fn begin(db: &PgPool) -> Result<InTransaction, sqlx::Error> {
    let db = db.clone();
    join(tokio::spawn(async move { db.begin().await })).await
}

/// Takes a connection from the pool: the one way this crate checks one out
/// (a transaction takes its own through [`begin`]).
///
/// Boxed: sqlx's acquire future holds connection establishment inline and
/// is some 14 KB. Awaited inline, it made a movement request's future 15 KB
/// (4 KB without it), moved whole at each layer of middleware: memmove was
/// 9.6 % of the API's CPU per movement, 8.3 % with this one allocation.
pub async fn acquire(db: &PgPool) -> Result<PoolConnection<Postgres>, sqlx::Error> {
    Box::pin(db.acquire()).await
}

/// [`begin`] with a statement of its own (`BEGIN ISOLATION LEVEL ...`, or
/// `BEGIN; SET LOCAL ...` to set a parameter in the same round trip).
pub async fn begin_with(
    db: &PgPool,
    statement: &'static str,
) -> Result<InTransaction, sqlx::Error> {
    let db = db.clone();
    join(tokio::spawn(async move { db.begin_with(statement).await })).await
}

async fn join(
    task: tokio::task::JoinHandle<Result<InTransaction, sqlx::Error>>,
) -> Result<InTransaction, sqlx::Error> {
    task.await.unwrap_or_else(|e| {
        Err(sqlx::Error::Protocol(format!(
            "the task beginning a transaction failed: {e}"
        )))
    })
}

/// At most this many rows per statement of a periodic cleanup.
pub const CLEANUP_BATCH: i64 = 5_000;

/// Runs `pass(limit)`, a statement deleting at most `limit` rows, until one
/// deletes fewer; returns how many were deleted in all. A backlog (the first
/// cleanup after days without one, a day of events at thousands per second)
/// is then many short transactions instead of one holding millions of row
/// locks and writing its WAL in one burst that replicas must replay at once;
/// and a cleanup cut short keeps what it did.
pub async fn delete_in_batches<F, Fut>(limit: i64, mut pass: F) -> Result<u64, sqlx::Error>
where
    F: FnMut(i64) -> Fut,
    Fut: std::future::Future<Output = Result<u64, sqlx::Error>>,
{
    let mut total = 0;
    loop {
        let deleted = pass(limit).await?;
        total += deleted;
        if deleted < limit.max(1) as u64 {
            return Ok(total);
        }
    }
}

/// Begins a read-only transaction on one snapshot: what its statements read
/// adds up (a write committing between two of them is in both or in neither).
pub async fn snapshot(db: &PgPool) -> Result<InTransaction, sqlx::Error> {
    begin_with(db, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").await
}

/// The migrations in `migrations/`, compiled into the binary.
///
/// Migrations newer than the binary are tolerated (`ignore_missing`): a release
/// runs its migrations once (`inventory-api migrate`) before its replicas start,
/// and `scripts/deploy.sh rollback` must be able to start the previous release
/// against that schema. Migrations stay backwards compatible for one release
/// (README, "Releases") so that this is safe.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate::Migrator {
    ignore_missing: true,
    ..sqlx::migrate!("./migrations")
};

/// Server-side limits set on every connection of a pool. None is no limit,
/// sent as 0 so that a limit set on the role or the database (which is where
/// they belong behind PgBouncer) does not cut a migration short either.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionLimits {
    pub statement_timeout: Option<Duration>,
    pub lock_timeout: Option<Duration>,
    pub idle_in_transaction_timeout: Option<Duration>,
}

impl SessionLimits {
    /// For migrations and admin subcommands: a migration may rightly run for minutes.
    pub const NONE: Self = Self {
        statement_timeout: None,
        lock_timeout: None,
        idle_in_transaction_timeout: None,
    };

    /// `(setting, value)` pairs for the connection's startup packet.
    fn settings(&self) -> Vec<(&'static str, String)> {
        [
            ("statement_timeout", self.statement_timeout),
            ("lock_timeout", self.lock_timeout),
            (
                "idle_in_transaction_session_timeout",
                self.idle_in_transaction_timeout,
            ),
        ]
        .into_iter()
        .map(|(name, limit)| (name, format!("{}ms", limit.map_or(0, |d| d.as_millis()))))
        .collect()
    }
}

/// Plans the rest of the transaction on `conn` for statements that aggregate
/// whole tables (the dashboard summary, the business gauges): one process,
/// sequential scans and hashing. Left to itself, with every level cached, the
/// planner walked the levels by index in each of three parallel processes
/// for the same sums: at 1,000,000 products (2,000,000 levels) the business
/// gauges took 7.6 s of three processes' time and 2.7 s of one with this, the
/// dashboard summary 12.0 s (past the 10 s statement timeout) and 3.6-4.0 s.
pub async fn plan_for_whole_tables(conn: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(
        "SET LOCAL max_parallel_workers_per_gather = 0;
         SET LOCAL enable_indexscan = off;
         SET LOCAL enable_bitmapscan = off",
    )
    .execute(conn)
    .await
    .map(drop)
}

/// The API's pool, with the configured session limits.
pub fn pool(config: &Config) -> anyhow::Result<PgPool> {
    pool_from_url(
        config.database_url(),
        config.database_max_connections,
        config.session_limits,
    )
}

pub fn pool_from_url(
    url: &str,
    max_connections: u32,
    limits: SessionLimits,
) -> anyhow::Result<PgPool> {
    let options: PgConnectOptions = url
        .parse()
        .context("DATABASE_URL is not a valid PostgreSQL URL")?;
    Ok(pool_with(options, max_connections, limits))
}

/// A lazily connecting pool on `options`, with `limits` on every connection.
pub fn pool_with(options: PgConnectOptions, max_connections: u32, limits: SessionLimits) -> PgPool {
    let options = options.options(limits.settings());
    epoch();
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(3))
        .idle_timeout(Duration::from_secs(300))
        // sqlx pings every connection it hands out and every one returned to
        // it: each a second round trip per request, beside the one-statement
        // movement's one. Neither is done. A connection opened before the
        // last connection-level error is dropped here unseen (no round trip);
        // one released with a transaction open or writes queued (a dropped
        // transaction's ROLLBACK) is still pinged, so it never idles holding
        // locks. `ping_on_release` is our patch to sqlx-core (vendor/README.md).
        .test_before_acquire(false)
        .ping_on_release(false)
        .before_acquire(|_conn, meta| {
            Box::pin(async move { Ok(!opened_before_last_loss(meta.age)) })
        })
        .connect_lazy_with(options)
}

/// Applies pending migrations. Safe to run from several replicas at once:
/// sqlx takes an advisory lock.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    MIGRATOR
        .run(pool)
        .await
        .context("Failed to apply database migrations")
}

/// Undoes the applied migrations newer than `version`, newest first.
pub async fn revert(pool: &PgPool, version: i64) -> anyhow::Result<()> {
    MIGRATOR
        .undo(pool, version)
        .await
        .with_context(|| format!("Failed to revert database migrations to {version}"))
}

/// The pool for heavy read-only work: a replica's when `DATABASE_READ_URL` is
/// set (same pool settings and session limits as the primary's), else the
/// primary pool itself.
pub fn read_pool(config: &Config, primary: &PgPool) -> anyhow::Result<PgPool> {
    match &config.database_read_url {
        Some(url) => pool_from_url(
            url.expose_secret(),
            config.database_max_connections,
            config.session_limits,
        )
        .context("DATABASE_READ_URL is not a valid PostgreSQL URL"),
        None => Ok(primary.clone()),
    }
}

/// Applies migrations on a short-lived pool of their own, free of the API's
/// statement timeout (a migration on a large table may rightly take minutes).
pub async fn migrate_url(url: &str) -> anyhow::Result<()> {
    let pool = pool_from_url(url, 1, SessionLimits::NONE)?;
    let result = migrate(&pool).await;
    pool.close().await;
    result
}

/// True for errors that mean the connection or the server is gone (or not
/// accepting work), as opposed to an error in the statement: I/O, TLS and
/// protocol failures, SQLSTATE class 08 (connection
/// exception), 57P01-57P03 (admin/crash shutdown, cannot connect now) and
/// 53300 (too many connections).
pub fn is_connection_lost(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => matches!(
            db.code().as_deref(),
            Some(code) if code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300")
        ),
        _ => false,
    }
}

/// True for PostgreSQL cancelling a statement under the session limits:
/// `statement_timeout` (57014), `lock_timeout` (55P03) and
/// `idle_in_transaction_session_timeout` (25P03). The transaction is rolled back.
pub fn is_timeout(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db)
        if matches!(db.code().as_deref(), Some("57014" | "55P03" | "25P03")))
}

/// Process start, the zero of [`LAST_LOSS_MS`].
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Milliseconds after [`epoch`] of the last connection-level error; 0 = none yet.
static LAST_LOSS_MS: AtomicU64 = AtomicU64::new(0);

/// Notes the outage when `err`, or an error it was caused by, says the
/// connection is gone ([`is_connection_lost`]); true then. Every place that
/// meets a database error and carries on calls it: the dead connection goes
/// back to the pool unpinged (see [`pool_with`]), and without the note the
/// next request to take one like it would fail instead.
pub fn note_if_lost(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(e) = next {
        if e.downcast_ref::<sqlx::Error>()
            .is_some_and(is_connection_lost)
        {
            note_connection_lost();
            return true;
        }
        next = e.source();
    }
    false
}

/// Records that a connection turned out dead: every pooled connection opened
/// before now is discarded when next acquired (see [`pool_from_url`]).
fn note_connection_lost() {
    let now = epoch().elapsed().as_millis() as u64;
    LAST_LOSS_MS.fetch_max(now.max(1), Ordering::Relaxed);
}

fn opened_before_last_loss(age: Duration) -> bool {
    let loss = LAST_LOSS_MS.load(Ordering::Relaxed);
    if loss == 0 {
        return false;
    }
    let opened_at = epoch().elapsed().saturating_sub(age);
    opened_at <= Duration::from_millis(loss)
}
