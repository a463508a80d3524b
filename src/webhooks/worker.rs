//! The delivery worker: outbox → deliveries → HTTP.
//!
//! [`fan_out`] reads the outbox in commit order (the rule in `crate::events`)
//! through the `webhooks` cursor and, in the same transaction that advances
//! the cursor, queues one delivery per matching active webhook: no event is
//! queued twice or skipped, and Redis plays no part.
//!
//! [`Worker::run`] then attempts due deliveries: each in its own transaction
//! holding the delivery's row lock (see `repo::claim_due`) during the request,
//! at most `WEBHOOK_CONCURRENCY` at once per replica and at most
//! [`PER_ENDPOINT`] of them for one webhook, so a slow endpoint cannot delay
//! the others. A failed attempt is retried after an exponentially growing,
//! jittered delay until the delivery's window (24 h) is over.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use opentelemetry::KeyValue;
use rand::Rng as _;
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{repo, sign, target};
use crate::{
    config::WebhookConfig,
    events::{self, Consumer},
    telemetry,
};

/// Deliveries one webhook may have in flight on one replica.
pub const PER_ENDPOINT: usize = 4;
/// Events one fan-out pass reads.
const FAN_OUT_BATCH: i64 = 500;
/// How long an idle worker waits before looking again.
const IDLE: Duration = Duration::from_millis(200);
/// Bytes of a response body read (the rest is never downloaded).
const BODY_LIMIT: usize = 1024;
/// Longest delay between two attempts.
const MAX_DELAY: Duration = Duration::from_secs(6 * 3600);

/// Queues the next batch of committed events for the webhooks that want them;
/// returns how many events were consumed (0 when another replica is at it).
pub async fn fan_out(db: &PgPool, retry_for: Duration) -> anyhow::Result<usize> {
    events::sequence(db).await?;
    let mut tx = crate::db::begin(db).await?;
    let Some(cursor) = events::claim_cursor(&mut tx, Consumer::Webhooks).await? else {
        return Ok(0);
    };
    let (read, last) = repo::fan_out(&mut tx, cursor, FAN_OUT_BATCH, retry_for).await?;
    let Some(last) = last else {
        return Ok(0);
    };
    events::advance_cursor(&mut tx, Consumer::Webhooks, last).await?;
    tx.commit().await?;
    Ok(read as usize)
}

/// The delay before retry number `attempt` (1 = first retry): base × 3^(n-1),
/// at most 6 hours, with jitter drawn from its upper half so replicas and
/// endpoints do not retry in lockstep. With the 5 s default the first retry
/// comes after 2.5-5 s.
pub fn retry_delay(base: Duration, attempt: i32) -> Duration {
    let exp = base
        .saturating_mul(3u32.saturating_pow(attempt.saturating_sub(1).clamp(0, 30) as u32))
        .min(MAX_DELAY);
    exp.mul_f64(rand::rng().random_range(0.5..=1.0))
}

/// What one HTTP attempt came to.
enum Outcome {
    Delivered(u16),
    Failed { status: Option<u16>, error: String },
}

/// Sends deliveries; cheap to clone.
#[derive(Clone)]
pub struct Worker {
    db: PgPool,
    config: Arc<WebhookConfig>,
    client: reqwest::Client,
    in_flight: Arc<Mutex<HashMap<Uuid, usize>>>,
}

impl Worker {
    pub fn new(db: PgPool, config: WebhookConfig) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            // A redirect could lead anywhere, including inside the network.
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(target::GuardedResolver {
                allow_private: config.allow_private_targets,
            }))
            .user_agent(concat!(
                "inventory-api-webhooks/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()?;
        Ok(Self {
            db,
            config: Arc::new(config),
            client,
            in_flight: Arc::default(),
        })
    }

    /// Fans out and delivers forever.
    pub async fn run(self) {
        let slots = Arc::new(tokio::sync::Semaphore::new(self.config.concurrency));
        loop {
            // A full batch means more are waiting: no idle pause after this
            // pass, so fan-out keeps up with any event rate.
            let backlog = match fan_out(&self.db, self.config.retry_for).await {
                Ok(n) => n as i64 == FAN_OUT_BATCH,
                Err(e) => {
                    crate::db::note_if_lost(e.as_ref());
                    tracing::warn!(error = format!("{e:#}"), "webhook fan-out failed");
                    false
                }
            };
            // Start attempts while slots are free and deliveries are due.
            loop {
                let Ok(permit) = slots.clone().acquire_owned().await else {
                    return;
                };
                match self.start_next().await {
                    Ok(Some(task)) => {
                        tokio::spawn(async move {
                            task.await;
                            drop(permit);
                        });
                    }
                    Ok(None) => break,
                    Err(e) => {
                        crate::db::note_if_lost(&e);
                        tracing::warn!(error = %e, "webhook claim failed");
                        tokio::time::sleep(Duration::from_secs(2)).await;
                        break;
                    }
                }
            }
            if !backlog {
                tokio::time::sleep(IDLE).await;
            }
        }
    }

    /// Claims the next due delivery and returns the attempt to run.
    async fn start_next(
        &self,
    ) -> Result<Option<impl std::future::Future<Output = ()> + Send + 'static>, sqlx::Error> {
        let busy: Vec<Uuid> = self
            .in_flight
            .lock()
            .expect("lock not poisoned")
            .iter()
            .filter(|(_, n)| **n >= PER_ENDPOINT)
            .map(|(id, _)| *id)
            .collect();
        let mut tx = crate::db::begin(&self.db).await?;
        let Some(delivery) = repo::claim_due(&mut tx, &busy).await? else {
            return Ok(None);
        };
        *self
            .in_flight
            .lock()
            .expect("lock not poisoned")
            .entry(delivery.webhook_id)
            .or_default() += 1;
        let worker = self.clone();
        Ok(Some(async move {
            let webhook = delivery.webhook_id;
            let id = delivery.id;
            let recorded = match worker.attempt(&mut tx, &delivery).await {
                Ok(()) => tx.commit().await,
                failed => failed,
            };
            if let Err(e) = recorded {
                crate::db::note_if_lost(&e);
                tracing::warn!(error = %e, delivery = %id, "webhook delivery not recorded; it will be retried");
            }
            let mut in_flight = worker.in_flight.lock().expect("lock not poisoned");
            if let Some(n) = in_flight.get_mut(&webhook) {
                *n -= 1;
                if *n == 0 {
                    in_flight.remove(&webhook);
                }
            }
        }))
    }

    /// Sends a locked delivery once and records the result in `conn`'s transaction.
    pub async fn attempt(
        &self,
        conn: &mut PgConnection,
        d: &repo::Claimed,
    ) -> Result<(), sqlx::Error> {
        let m = telemetry::metrics();
        match self.send(d).await {
            Outcome::Delivered(status) => {
                repo::record_success(conn, d, status).await?;
                m.webhook_deliveries
                    .add(1, &[KeyValue::new("outcome", "delivered")]);
            }
            Outcome::Failed { status, error } => {
                let delay = retry_delay(self.config.retry_base, d.attempts + 1);
                let retry_at = OffsetDateTime::now_utc() + delay;
                let failed = repo::record_failure(
                    conn,
                    d,
                    status,
                    &error,
                    retry_at,
                    self.config.disable_after,
                )
                .await?;
                let outcome = if failed { "failed" } else { "retry" };
                m.webhook_deliveries
                    .add(1, &[KeyValue::new("outcome", outcome)]);
                tracing::info!(delivery = %d.id, webhook = %d.webhook_id, error, outcome, "webhook attempt failed");
            }
        }
        Ok(())
    }

    /// One signed POST. The target is checked again here: an IP literal or a
    /// host whose DNS changed since the webhook was saved is refused.
    async fn send(&self, d: &repo::Claimed) -> Outcome {
        let failed = |status, error: String| Outcome::Failed { status, error };
        let url = match target::check(&d.url, self.config.allow_private_targets).await {
            Ok(url) => url,
            Err(e) => return failed(None, format!("target refused: {e}")),
        };
        let body = serde_json::json!({
            "type": d.topic,
            "timestamp": d.event_created_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
            "position": d.position,
            "aggregate_id": d.aggregate_id,
            "data": d.payload,
        })
        .to_string();
        let msg_id = format!("msg_{}", d.id.simple());
        let timestamp = OffsetDateTime::now_utc().unix_timestamp();
        let signature = sign::signature(&d.secret, &msg_id, timestamp, body.as_bytes());
        let response = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &msg_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await;
        let mut response = match response {
            Ok(r) => r,
            Err(e) => {
                let why = if e.is_timeout() {
                    "timed out"
                } else {
                    "request failed"
                };
                return failed(None, truncate(&format!("{why}: {e:#}")));
            }
        };
        let status = response.status();
        if status.is_success() {
            return Outcome::Delivered(status.as_u16());
        }
        // Read a little of the body for the operator, never all of it.
        let mut start = Vec::new();
        while start.len() < BODY_LIMIT {
            match tokio::time::timeout(Duration::from_secs(1), response.chunk()).await {
                Ok(Ok(Some(chunk))) => start.extend_from_slice(&chunk),
                _ => break,
            }
        }
        start.truncate(BODY_LIMIT);
        failed(
            Some(status.as_u16()),
            truncate(&format!(
                "HTTP {}: {}",
                status.as_u16(),
                String::from_utf8_lossy(&start)
            )),
        )
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(500).collect()
}
