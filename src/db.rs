//! The PostgreSQL pool and the embedded migrations.
//!
//! Connections are opened lazily so the service starts, and `/ready` can say
//! "database down", even while PostgreSQL is still coming up. Acquiring a
//! connection gives up quickly so a request fails fast with 503 instead of
//! hanging when the database is gone.

use std::time::Duration;

use anyhow::Context;
use secrecy::ExposeSecret;
use sqlx::{postgres::PgPoolOptions, PgPool};

use crate::config::Config;

/// The migrations in `migrations/`, compiled into the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

pub fn pool(config: &Config) -> anyhow::Result<PgPool> {
    pool_from_url(config.database_url(), config.database_max_connections)
}

pub fn pool_from_url(url: &str, max_connections: u32) -> anyhow::Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(3))
        .idle_timeout(Duration::from_secs(300))
        // sqlx pings every connection it hands out by default: a second round
        // trip per request, doubling the database work of a stock movement. A
        // connection that died meanwhile fails its one query instead (503 for
        // that request) and is dropped; /ready and the health job notice an
        // outage within seconds.
        .test_before_acquire(false)
        .connect_lazy(url)
        .context("DATABASE_URL is not a valid PostgreSQL URL")
}

/// Applies pending migrations. Safe to run from several replicas at once:
/// sqlx takes an advisory lock.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    MIGRATOR
        .run(pool)
        .await
        .context("Failed to apply database migrations")
}

/// The pool for heavy read-only work: a replica's when `DATABASE_READ_URL` is
/// set (same pool settings as the primary's), else the primary pool itself.
pub fn read_pool(config: &Config, primary: &PgPool) -> anyhow::Result<PgPool> {
    match &config.database_read_url {
        Some(url) => pool_from_url(url.expose_secret(), config.database_max_connections)
            .context("DATABASE_READ_URL is not a valid PostgreSQL URL"),
        None => Ok(primary.clone()),
    }
}
