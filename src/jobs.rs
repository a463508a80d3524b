//! Background work of a replica: the outbox sequencer and relay, expiry of idempotency
//! keys, of day-old outbox events and of reservations, and the gauges Prometheus reads (pool, dependencies, business
//! figures). Gauges are refreshed on a timer, never computed per scrape, so a
//! scrape costs nothing however big the catalog is.

use std::time::Duration;

use rust_decimal::prelude::ToPrimitive;
use tokio::task::JoinHandle;

use crate::{cache::RedisState, events, idempotency, ops, state::AppState, telemetry, webhooks};

/// How often pool and dependency gauges are refreshed.
const HEALTH_EVERY: Duration = Duration::from_secs(15);
/// How often business gauges (which aggregate the stock table) are refreshed.
const BUSINESS_EVERY: Duration = Duration::from_secs(60);
const KEY_CLEANUP_EVERY: Duration = Duration::from_secs(3600);
/// How often reservations past their `expires_at` are marked expired (reads
/// and movements treat them as released from that instant anyway).
const RESERVATION_EXPIRY_EVERY: Duration = Duration::from_secs(60);

/// Starts every background task of this replica.
pub fn spawn(state: &AppState) -> Vec<JoinHandle<()>> {
    let sequencer = tokio::spawn(events::run_sequencer(state.db.clone()));
    let relay = tokio::spawn(events::run_relay(state.db.clone(), state.cache.clone()));
    let webhooks =
        match webhooks::worker::Worker::new(state.db.clone(), state.config.webhooks.clone()) {
            Ok(worker) => tokio::spawn(worker.run()),
            Err(e) => {
                tracing::error!(error = format!("{e:#}"), "webhook worker not started");
                tokio::spawn(async {})
            }
        };
    let s = state.clone();
    let health = tokio::spawn(async move {
        loop {
            refresh_health(&s).await;
            tokio::time::sleep(HEALTH_EVERY).await;
        }
    });
    let s = state.clone();
    let business = tokio::spawn(async move {
        loop {
            if let Err(e) = refresh_business(&s).await {
                tracing::warn!(error = %e, "business gauges not refreshed");
            }
            tokio::time::sleep(BUSINESS_EVERY).await;
        }
    });
    let s = state.clone();
    let cleanup = tokio::spawn(async move {
        loop {
            match idempotency::delete_expired(&s.db, crate::db::CLEANUP_BATCH).await {
                Ok(n) if n > 0 => tracing::info!(deleted = n, "expired idempotency keys removed"),
                Ok(_) => {}
                Err(e) => {
                    crate::db::note_if_lost(&e);
                    tracing::warn!(error = %e, "idempotency key cleanup failed");
                }
            }
            match events::delete_old(&s.db, s.cache.is_enabled(), crate::db::CLEANUP_BATCH).await {
                Ok(n) if n > 0 => tracing::info!(deleted = n, "old outbox events removed"),
                Ok(_) => {}
                Err(e) => {
                    crate::db::note_if_lost(&e);
                    tracing::warn!(error = %e, "outbox cleanup failed");
                }
            }
            tokio::time::sleep(KEY_CLEANUP_EVERY).await;
        }
    });
    let s = state.clone();
    let reservations = tokio::spawn(async move {
        loop {
            match crate::reservations::release_expired(&s).await {
                Ok(n) if n > 0 => tracing::info!(levels = n, "expired reservations released"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "expired reservations not released"),
            }
            tokio::time::sleep(RESERVATION_EXPIRY_EVERY).await;
        }
    });
    vec![
        sequencer,
        relay,
        webhooks,
        health,
        business,
        cleanup,
        reservations,
    ]
}

/// Pool, PostgreSQL, Redis and outbox gauges.
pub async fn refresh_health(state: &AppState) {
    let m = telemetry::metrics();
    m.db_pool_size.record(i64::from(state.db.size()), &[]);
    m.db_pool_idle.record(state.db.num_idle() as i64, &[]);
    m.db_pool_max
        .record(i64::from(state.db.options().get_max_connections()), &[]);
    let (db_ok, redis) = tokio::join!(ops::database_ok(&state.db), state.cache.state());
    m.db_up.record(i64::from(db_ok), &[]);
    m.redis_up.record(i64::from(redis == RedisState::Ok), &[]);
    if db_ok {
        if let Ok(backlog) = events::backlog(&state.db).await {
            m.outbox_backlog.record(backlog, &[]);
        }
        if let Ok((depth, oldest)) = webhooks::repo::queue_stats(&state.db).await {
            m.webhook_queue_depth.record(depth, &[]);
            m.webhook_oldest_pending.record(oldest, &[]);
        }
    }
}

/// The business gauges' figures: computed by one replica per
/// [`BUSINESS_EVERY`] and shared with the others through the cache.
#[derive(Debug, serde::Serialize, serde::Deserialize, sqlx::FromRow)]
struct BusinessFigures {
    products: i64,
    warehouses: i64,
    low: i64,
    value: rust_decimal::Decimal,
    expiring: i64,
}

const BUSINESS_KEY: &str = "gauges:business";

/// Products, warehouses, low-stock products, stock value and expiring lots.
///
/// The low-stock count sums every level per product: at 1,000,000 products
/// (2,000,000 levels) that is seconds of database time, so it is computed
/// once per [`BUSINESS_EVERY`] for all replicas ([`Cache::computed_once`])
/// and planned with [`crate::db::plan_for_whole_tables`].
///
/// [`Cache::computed_once`]: crate::cache::Cache::computed_once
pub async fn refresh_business(state: &AppState) -> Result<(), sqlx::Error> {
    let figures: BusinessFigures = state
        .cache
        .computed_once(
            &state.db,
            "gauges",
            BUSINESS_KEY,
            BUSINESS_EVERY,
            async |conn| {
                crate::db::plan_for_whole_tables(conn).await?;
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "WITH totals AS (
                         SELECT product_id, sum(quantity) AS q FROM stock_levels GROUP BY product_id
                     )
                     SELECT (SELECT count(*) FROM products WHERE active) AS products,
                            (SELECT count(*) FROM warehouses WHERE active) AS warehouses,
                            (SELECT count(*) FROM products p LEFT JOIN totals t ON t.product_id = p.id
                              WHERE p.active AND p.reorder_point > 0
                                AND COALESCE(t.q, 0) <= p.reorder_point) AS low,
                            {stock_value} AS value,
                            {expiring} AS expiring",
                    expiring = crate::stock::repo::expiring_soon_lots(false),
                    stock_value = crate::stock::repo::stock_value(false)
                )))
                .fetch_one(conn)
                .await
            },
        )
        .await?;
    let m = telemetry::metrics();
    m.products.record(figures.products, &[]);
    m.warehouses.record(figures.warehouses, &[]);
    m.low_stock_products.record(figures.low, &[]);
    m.expiring_lots.record(figures.expiring, &[]);
    m.stock_value
        .record(figures.value.to_f64().unwrap_or(0.0), &[]);
    Ok(())
}
