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

/// One outbox row.
#[derive(sqlx::FromRow)]
struct OutboxRow {
    id: i64,
    topic: String,
    aggregate_id: Option<Uuid>,
    payload: Value,
    created_at: time::OffsetDateTime,
}

/// Publishes up to one batch of pending events; returns how many were published.
///
/// `FOR UPDATE SKIP LOCKED` lets several replicas relay at once without
/// publishing the same row twice (in the absence of crashes).
pub async fn relay_once(db: &PgPool, cache: &Cache) -> anyhow::Result<usize> {
    if !cache.is_enabled() {
        return Ok(0);
    }
    let mut tx = db.begin().await?;
    let rows: Vec<OutboxRow> = sqlx::query_as(
        "SELECT id, topic, aggregate_id, payload, created_at FROM outbox
         WHERE published_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
    )
    .bind(RELAY_BATCH)
    .fetch_all(&mut *tx)
    .await?;
    // One pipelined round trip for the whole batch; if Redis fails midway the
    // batch is retried later (consumers de-duplicate by the outbox id).
    let entries: Vec<Vec<(&str, String)>> = rows
        .iter()
        .map(|row| {
            vec![
                ("id", row.id.to_string()),
                ("topic", row.topic.clone()),
                (
                    "aggregate_id",
                    row.aggregate_id.map(|a| a.to_string()).unwrap_or_default(),
                ),
                ("payload", row.payload.to_string()),
                ("created_at", row.created_at.to_string()),
            ]
        })
        .collect();
    let published: Vec<i64> = if cache.xadd_many(STREAM, &entries).await {
        rows.iter().map(|r| r.id).collect()
    } else {
        if !rows.is_empty() {
            telemetry::metrics().outbox_publish_failures.add(1, &[]);
        }
        Vec::new()
    };
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

/// Forgets events older than a day: published ones (Redis has them), or all
/// of them when no Redis is configured (only the SSE feed reads them then).
/// A day of history is what the SSE feed can resume from.
pub async fn delete_old(db: &PgPool, relayed: bool) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM outbox WHERE created_at < now() - interval '24 hours'
         AND (published_at IS NOT NULL OR NOT $1)",
    )
    .bind(relayed)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
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

/// One event of the live feed.
#[derive(Debug, Clone, poem_openapi::Object)]
pub struct FeedEvent {
    /// The outbox id: increasing; send it back as `Last-Event-ID` to resume.
    pub id: i64,
    /// e.g. `stock.receipt`, `product.updated`, `count.completed`.
    pub topic: String,
    /// The id of the changed record; null when none.
    pub aggregate_id: Option<Uuid>,
    /// The event's data (JSON).
    pub payload: Value,
    /// When this feed event was created (RFC 3339).
    pub created_at: time::OffsetDateTime,
}

/// How often the feed looks for new events.
const FEED_POLL: Duration = Duration::from_millis(500);

/// The live feed: committed events after `after`, read from the outbox (not
/// from Redis), so it works while Redis is down and a client resumes exactly
/// where it stopped.
fn feed(db: PgPool, after: i64) -> impl futures_util::Stream<Item = FeedEvent> + Send + 'static {
    futures_util::stream::unfold(
        (db, after, std::collections::VecDeque::new()),
        |(db, mut last, mut queue)| async move {
            loop {
                if let Some(e) = queue.pop_front() {
                    return Some((e, (db, last, queue)));
                }
                let rows: Result<Vec<OutboxRow>, _> = sqlx::query_as(
                "SELECT id, topic, aggregate_id, payload, created_at FROM outbox WHERE id > $1 ORDER BY id LIMIT 200",
            )
            .bind(last)
            .fetch_all(&db)
            .await;
                match rows {
                    Ok(rows) if !rows.is_empty() => {
                        last = rows.last().map_or(last, |r| r.id);
                        queue.extend(rows.into_iter().map(|r| FeedEvent {
                            id: r.id,
                            topic: r.topic,
                            aggregate_id: r.aggregate_id,
                            payload: r.payload,
                            created_at: r.created_at,
                        }));
                    }
                    Ok(_) => tokio::time::sleep(FEED_POLL).await,
                    Err(e) => {
                        tracing::warn!(error = %e, "event feed query failed");
                        tokio::time::sleep(Duration::from_secs(2)).await;
                    }
                }
            }
        },
    )
}

pub struct EventsApi;

#[poem_openapi::OpenApi(prefix_path = "/api/v1/events", tag = "crate::Tags::Events")]
impl EventsApi {
    /// Live feed of committed changes (viewer), as Server-Sent Events.
    ///
    /// Starts with events after `Last-Event-ID` (or `after`), else with new ones only.
    #[oai(path = "/stream", method = "get", operation_id = "streamEvents")]
    async fn stream(
        &self,
        _auth: crate::auth::principal::ViewerAuth,
        state: poem::web::Data<&crate::state::AppState>,
        #[oai(name = "Last-Event-ID")] last_event_id: poem_openapi::param::Header<Option<i64>>,
        /// Resume after this event id (alternative to `Last-Event-ID`).
        after: poem_openapi::param::Query<Option<i64>>,
    ) -> crate::error::Result<
        poem_openapi::payload::EventStream<futures_util::stream::BoxStream<'static, FeedEvent>>,
    > {
        use futures_util::StreamExt as _;
        let start = match last_event_id.0.or(after.0) {
            Some(id) => id,
            None => {
                sqlx::query_scalar("SELECT COALESCE(max(id), 0) FROM outbox")
                    .fetch_one(&state.db)
                    .await?
            }
        };
        // The feed never ends by itself; it ends when the server shuts down.
        let stream = feed(state.db.clone(), start)
            .take_until(state.shutting_down())
            .boxed();
        Ok(poem_openapi::payload::EventStream::new(stream)
            .keep_alive(Duration::from_secs(15))
            .to_event(|e| {
                let data = poem_openapi::types::ToJSON::to_json(&e)
                    .map(|v| v.to_string())
                    .unwrap_or_default();
                poem::web::sse::Event::message(data)
                    .id(e.id.to_string())
                    .event_type(e.topic.clone())
            }))
    }
}
