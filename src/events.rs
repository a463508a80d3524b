//! Domain events through a transactional outbox.
//!
//! A change writes its event into `outbox` inside its own transaction
//! ([`emit`]), so an event exists exactly when the change committed. The relay
//! ([`run_relay`]) later copies unpublished rows to the Redis stream
//! `events` and marks them published; when Redis is down events wait in
//! PostgreSQL, delayed but never lost. Consumers must tolerate duplicates (a
//! crash between XADD and the UPDATE republishes a batch): the outbox id is in
//! every message for de-duplication.

use std::time::Duration;

use serde_json::Value;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::{cache::Cache, telemetry};

/// The Redis stream events are relayed to.
pub const STREAM: &str = "events";

/// Records an event in the current transaction.
pub async fn emit(
    tx: &mut Transaction<'_, Postgres>,
    topic: &str,
    aggregate_id: Uuid,
    payload: Value,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO outbox (topic, aggregate_id, payload) VALUES ($1, $2, $3)")
        .bind(topic)
        .bind(aggregate_id)
        .bind(payload)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// How many events one relay pass moves.
const RELAY_BATCH: i64 = 500;

/// Publishes up to one batch of pending events; returns how many were published.
///
/// `FOR UPDATE SKIP LOCKED` lets several replicas relay at once without
/// publishing the same row twice (in the absence of crashes).
pub async fn relay_once(db: &PgPool, cache: &Cache) -> anyhow::Result<usize> {
    if !cache.is_enabled() {
        return Ok(0);
    }
    let mut tx = db.begin().await?;
    let rows: Vec<(i64, String, Option<Uuid>, Value, time::OffsetDateTime)> = sqlx::query_as(
        "SELECT id, topic, aggregate_id, payload, created_at FROM outbox
         WHERE published_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
    )
    .bind(RELAY_BATCH)
    .fetch_all(&mut *tx)
    .await?;
    let mut published = Vec::with_capacity(rows.len());
    for (id, topic, aggregate_id, payload, created_at) in &rows {
        let ok = cache
            .xadd(
                STREAM,
                &[
                    ("id", id.to_string()),
                    ("topic", topic.clone()),
                    (
                        "aggregate_id",
                        aggregate_id.map(|a| a.to_string()).unwrap_or_default(),
                    ),
                    ("payload", payload.to_string()),
                    ("created_at", created_at.to_string()),
                ],
            )
            .await;
        if !ok {
            telemetry::metrics().outbox_publish_failures.add(1, &[]);
            break; // keep order: stop at the first failure and retry later
        }
        published.push(*id);
    }
    if !published.is_empty() {
        sqlx::query("UPDATE outbox SET published_at = now() WHERE id = ANY($1)")
            .bind(&published)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    telemetry::metrics()
        .outbox_published
        .add(published.len() as u64, &[]);
    Ok(published.len())
}

/// Number of events waiting to be published.
pub async fn backlog(db: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        .fetch_one(db)
        .await
}

/// Relays forever: immediately while there is a backlog, else every second.
pub async fn run_relay(db: PgPool, cache: Cache) {
    loop {
        let pause = match relay_once(&db, &cache).await {
            Ok(n) if n as i64 == RELAY_BATCH => Duration::ZERO,
            Ok(_) => Duration::from_secs(1),
            Err(e) => {
                tracing::warn!(error = format!("{e:#}"), "outbox relay failed");
                Duration::from_secs(5)
            }
        };
        tokio::time::sleep(pause).await;
    }
}
