//! Request and response types of the webhook API.

use poem_openapi::{Enum, Object};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// A webhook endpoint.
#[derive(Debug, Clone, Object, sqlx::FromRow, Serialize, Deserialize)]
pub struct Webhook {
    /// Identifier.
    pub id: Uuid,
    /// Where events are POSTed.
    pub url: String,
    /// Topic filters; `*` matches any characters (`stock.*`, `product.updated`, `*`).
    pub events: Vec<String>,
    /// What this endpoint is for.
    pub description: String,
    /// False when disabled by an admin or by the service (see `disabled_reason`).
    pub active: bool,
    /// Set when the service disabled the endpoint (for example after failing for 3 days).
    pub disabled_reason: Option<String>,
    /// Start of the current run of failed attempts; null when the last attempt succeeded.
    pub failing_since: Option<OffsetDateTime>,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// When it was last changed.
    pub updated_at: OffsetDateTime,
}

/// A webhook just created, with its signing secret (shown this once).
#[derive(Debug, Object)]
pub struct CreatedWebhook {
    /// The webhook.
    #[oai(flatten)]
    pub webhook: Webhook,
    /// `whsec_` + base64 of 32 random bytes: the HMAC-SHA256 key of the
    /// `webhook-signature` header. Store it now; it is never shown again.
    pub secret: String,
}

/// A new webhook.
#[derive(Debug, Object, Serialize)]
pub struct CreateWebhook {
    /// An http(s) URL on a public address (private ones only with
    /// `WEBHOOK_ALLOW_PRIVATE_TARGETS=true`).
    pub url: String,
    /// 1-50 topic filters of letters, digits, `.`, `_` and `*` (any characters).
    pub events: Vec<String>,
    /// What this endpoint is for (at most 500 characters).
    #[oai(default)]
    pub description: String,
}

/// Changes to a webhook; absent fields stay as they are.
#[derive(Debug, Object)]
pub struct UpdateWebhook {
    /// New target URL (checked like on creation).
    pub url: Option<String>,
    /// New topic filters (replace the old ones).
    pub events: Option<Vec<String>>,
    /// New description.
    pub description: Option<String>,
    /// Enable or disable; enabling clears `disabled_reason` and `failing_since`.
    pub active: Option<bool>,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, sqlx::Type, Serialize, Deserialize)]
#[sqlx(type_name = "text", rename_all = "lowercase")]
#[oai(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Waiting for its first attempt or a retry.
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// Retries ran out (24 hours by default); `retry` sends it again.
    Failed,
}

/// One event for one webhook, with its delivery state.
#[derive(Debug, Clone, Object, sqlx::FromRow)]
pub struct Delivery {
    /// Identifier; also the `webhook-id` header (stable across retries).
    pub id: Uuid,
    /// The webhook it goes to.
    pub webhook_id: Uuid,
    /// The event's position in commit order (null for a test ping).
    pub position: Option<i64>,
    /// The event topic, e.g. `stock.receipt`.
    pub topic: String,
    /// The product (or other record) the event is about.
    pub aggregate_id: Option<Uuid>,
    /// pending, delivered or failed.
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: i32,
    /// When the next attempt is due (while pending).
    pub next_attempt_at: OffsetDateTime,
    /// When the last attempt was made.
    pub last_attempt_at: Option<OffsetDateTime>,
    /// HTTP status of the last answer (null when none came).
    pub last_status_code: Option<i32>,
    /// Why the last attempt failed (timeout, refused address, status and body start).
    pub last_error: Option<String>,
    /// When it was delivered.
    pub delivered_at: Option<OffsetDateTime>,
    /// When the delivery was queued.
    pub created_at: OffsetDateTime,
}
