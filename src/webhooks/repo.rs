//! SQL for webhooks and their deliveries.

use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use super::model::{Delivery, Webhook};
use crate::events;

const WEBHOOK_COLUMNS: &str = "id, url, events, description, active, disabled_reason, \
    failing_since, created_at, updated_at";

const DELIVERY_COLUMNS: &str = "id, webhook_id, position, topic, aggregate_id, status, attempts, \
    next_attempt_at, last_attempt_at, last_status_code, last_error, delivered_at, created_at";

pub async fn insert(
    db: &PgPool,
    url: &str,
    events: &[String],
    description: &str,
    secret: &str,
) -> Result<Webhook, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO webhooks (url, events, description, secret) VALUES ($1, $2, $3, $4)
         RETURNING {WEBHOOK_COLUMNS}"
    )))
    .bind(url)
    .bind(events)
    .bind(description)
    .bind(secret)
    .fetch_one(db)
    .await
}

pub async fn get(db: &PgPool, id: Uuid) -> Result<Option<Webhook>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(db)
    .await
}

/// Webhooks ordered by (created_at, id), after the cursor.
pub async fn list(
    db: &PgPool,
    after: Option<(OffsetDateTime, Uuid)>,
    fetch: i64,
) -> Result<Vec<Webhook>, sqlx::Error> {
    let (at, id) = after.unzip();
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {WEBHOOK_COLUMNS} FROM webhooks
         WHERE $1::timestamptz IS NULL OR (created_at, id) > ($1, $2)
         ORDER BY created_at, id LIMIT $3"
    )))
    .bind(at)
    .bind(id)
    .bind(fetch)
    .fetch_all(db)
    .await
}

/// Applies the given changes; enabling clears the service's disable marks.
pub async fn update(
    db: &PgPool,
    id: Uuid,
    url: Option<&str>,
    events: Option<&[String]>,
    description: Option<&str>,
    active: Option<bool>,
) -> Result<Option<Webhook>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE webhooks SET url = COALESCE($2, url), events = COALESCE($3, events),
             description = COALESCE($4, description), active = COALESCE($5, active),
             disabled_reason = CASE WHEN $5 THEN NULL ELSE disabled_reason END,
             failing_since = CASE WHEN $5 THEN NULL ELSE failing_since END
         WHERE id = $1 RETURNING {WEBHOOK_COLUMNS}"
    )))
    .bind(id)
    .bind(url)
    .bind(events)
    .bind(description)
    .bind(active)
    .fetch_optional(db)
    .await
}

/// Deletes a webhook and its deliveries (waiting for one in flight to end).
pub async fn delete(db: &PgPool, id: Uuid) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM webhooks WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// A webhook's deliveries, newest first, keyset-paginated on (created_at, id).
pub async fn deliveries(
    db: &PgPool,
    webhook: Uuid,
    after: Option<(OffsetDateTime, Uuid)>,
    fetch: i64,
) -> Result<Vec<Delivery>, sqlx::Error> {
    let (at, id) = after.unzip();
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries
         WHERE webhook_id = $1 AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))
         ORDER BY created_at DESC, id DESC LIMIT $4"
    )))
    .bind(webhook)
    .bind(at)
    .bind(id)
    .bind(fetch)
    .fetch_all(db)
    .await
}

/// Makes a delivery due now with a fresh retry window. Err(lock_not_available)
/// while a worker is attempting it (NOWAIT: the caller answers 409).
pub async fn retry(
    db: &PgPool,
    webhook: Uuid,
    delivery: Uuid,
    retry_for: std::time::Duration,
) -> Result<Option<Delivery>, sqlx::Error> {
    let mut tx = crate::db::begin(db).await?;
    let found: Option<Uuid> = sqlx::query_scalar(
        "SELECT id FROM webhook_deliveries WHERE id = $1 AND webhook_id = $2 FOR UPDATE NOWAIT",
    )
    .bind(delivery)
    .bind(webhook)
    .fetch_optional(&mut *tx)
    .await?;
    if found.is_none() {
        return Ok(None);
    }
    let d = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = now(),
             give_up_at = now() + $2
         WHERE id = $1 RETURNING {DELIVERY_COLUMNS}"
    )))
    .bind(delivery)
    .bind(retry_for)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some(d))
}

/// Queues one ping for `webhook` (position and aggregate null) and returns its id.
pub async fn insert_ping(conn: &mut PgConnection, webhook: Uuid) -> Result<Uuid, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO webhook_deliveries (webhook_id, topic, payload, give_up_at, event_created_at)
         VALUES ($1, 'webhook.ping', jsonb_build_object('webhook_id', $1::text), now(), now())
         RETURNING id",
    )
    .bind(webhook)
    .fetch_one(conn)
    .await
}

pub async fn delivery(db: &PgPool, id: Uuid) -> Result<Delivery, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE id = $1"
    )))
    .bind(id)
    .fetch_one(db)
    .await
}

/// Queues the committed events after `after` (at most `limit`, the
/// [`events::AFTER`] read) for every active webhook whose filters match their
/// topic, in position order; `*` in a filter matches any characters, `_` is
/// literal. The events stay in PostgreSQL: nothing is read into the API when
/// no webhook wants them. Returns how many events were read and the last
/// one's position (None when there were none).
pub async fn fan_out(
    conn: &mut PgConnection,
    after: i64,
    limit: i64,
    retry_for: std::time::Duration,
) -> Result<(i64, Option<i64>), sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH batch AS (
             SELECT position, topic, aggregate_id, payload, created_at {after_sql}
         ), queued AS (
             INSERT INTO webhook_deliveries
                 (webhook_id, position, topic, aggregate_id, payload, give_up_at, event_created_at)
             SELECT w.id, e.position, e.topic, e.aggregate_id, e.payload, now() + $3, e.created_at
             FROM batch e
             JOIN webhooks w ON w.active AND EXISTS (
                 SELECT 1 FROM unnest(w.events) AS f(filter)
                 WHERE e.topic LIKE replace(replace(f.filter, '_', '\\_'), '*', '%'))
             ORDER BY e.position, w.id
             ON CONFLICT (webhook_id, position) DO NOTHING
         )
         SELECT count(*), max(position) FROM batch",
        after_sql = events::AFTER
    )))
    .bind(after)
    .bind(limit)
    .bind(retry_for)
    .fetch_one(conn)
    .await
}

/// A delivery claimed for an attempt, with what sending it needs.
#[derive(Debug, sqlx::FromRow)]
pub struct Claimed {
    pub id: Uuid,
    pub webhook_id: Uuid,
    pub position: Option<i64>,
    pub topic: String,
    pub aggregate_id: Option<Uuid>,
    pub payload: serde_json::Value,
    pub attempts: i32,
    pub give_up_at: OffsetDateTime,
    pub event_created_at: OffsetDateTime,
    pub url: String,
    pub secret: String,
}

const CLAIMED_COLUMNS: &str =
    "d.id, d.webhook_id, d.position, d.topic, d.aggregate_id, d.payload, \
    d.attempts, d.give_up_at, d.event_created_at, w.url, w.secret";

/// Locks the next due delivery for the rest of `conn`'s transaction.
///
/// `FOR UPDATE OF d SKIP LOCKED`: a delivery is attempted by one replica at a
/// time, and the lock is held during the HTTP request, so a replica that dies
/// mid-delivery releases it with its connection and another one retries it.
/// Per-aggregate order: a delivery waits while an earlier one of the same
/// webhook and aggregate is pending (being attempted, or waiting for a retry).
/// Webhooks in `busy` (at their per-endpoint limit here) are skipped so one
/// slow endpoint cannot take every slot.
pub async fn claim_due(
    conn: &mut PgConnection,
    busy: &[Uuid],
) -> Result<Option<Claimed>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {CLAIMED_COLUMNS}
         FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
         WHERE d.status = 'pending' AND d.next_attempt_at <= now() AND w.active
           AND d.webhook_id <> ALL($1)
           AND NOT EXISTS (
               SELECT 1 FROM webhook_deliveries e
               WHERE e.webhook_id = d.webhook_id AND e.aggregate_id = d.aggregate_id
                 AND e.status = 'pending' AND e.position < d.position)
         ORDER BY d.next_attempt_at, d.position
         LIMIT 1
         FOR UPDATE OF d SKIP LOCKED"
    )))
    .bind(busy)
    .fetch_optional(conn)
    .await
}

/// Locks one delivery of `webhook` by id (pings are attempted right away).
pub async fn claim_one(conn: &mut PgConnection, id: Uuid) -> Result<Claimed, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {CLAIMED_COLUMNS}
         FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
         WHERE d.id = $1 FOR UPDATE OF d"
    )))
    .bind(id)
    .fetch_one(conn)
    .await
}

/// Records a 2xx answer; the endpoint is healthy again.
pub async fn record_success(
    conn: &mut PgConnection,
    d: &Claimed,
    status: u16,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE webhook_deliveries SET status = 'delivered', attempts = attempts + 1,
             last_attempt_at = now(), delivered_at = now(), last_status_code = $2, last_error = NULL
         WHERE id = $1",
    )
    .bind(d.id)
    .bind(i32::from(status))
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE webhooks SET failing_since = NULL WHERE id = $1 AND failing_since IS NOT NULL",
    )
    .bind(d.webhook_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records a failed attempt: retry at `retry_at`, or failed when that is past
/// the delivery's window. Disables the webhook once it has been failing for
/// `disable_after`. Returns whether the delivery is now failed for good.
pub async fn record_failure(
    conn: &mut PgConnection,
    d: &Claimed,
    status: Option<u16>,
    error: &str,
    retry_at: OffsetDateTime,
    disable_after: std::time::Duration,
) -> Result<bool, sqlx::Error> {
    let failed = retry_at > d.give_up_at;
    sqlx::query(
        "UPDATE webhook_deliveries SET attempts = attempts + 1, last_attempt_at = now(),
             last_status_code = $2, last_error = $3, next_attempt_at = $4,
             status = CASE WHEN $5 THEN 'failed' ELSE 'pending' END
         WHERE id = $1",
    )
    .bind(d.id)
    .bind(status.map(i32::from))
    .bind(error)
    .bind(retry_at)
    .bind(failed)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE webhooks SET failing_since = COALESCE(failing_since, now()),
             active = active AND NOT COALESCE(failing_since < now() - $2, false),
             disabled_reason = CASE WHEN failing_since < now() - $2 AND active
                 THEN 'disabled automatically: every delivery has failed since '
                      || to_char(failing_since AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')
                 ELSE disabled_reason END
         WHERE id = $1",
    )
    .bind(d.webhook_id)
    .bind(disable_after)
    .execute(conn)
    .await?;
    Ok(failed)
}

/// Pending deliveries of active webhooks and the age of the oldest, in seconds.
pub async fn queue_stats(db: &PgPool) -> Result<(i64, i64), sqlx::Error> {
    sqlx::query_as(
        "SELECT count(*), COALESCE(extract(epoch FROM now() - min(d.created_at))::bigint, 0)
         FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
         WHERE d.status = 'pending' AND w.active",
    )
    .fetch_one(db)
    .await
}
