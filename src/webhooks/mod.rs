//! Webhooks: signed, retried, ordered delivery of outbox events to other
//! systems (the shop, the ERP, the label printer). Admins manage endpoints
//! here; `worker` delivers. The event order and the "never skipped" rule
//! come from `crate::events`; this module never reads Redis.

pub mod model;
pub mod problem;
pub mod repo;
pub mod sign;
pub mod target;
pub mod worker;

use poem::web::Data;
use poem_openapi::{
    param::{Path, Query},
    payload::Json,
    ApiResponse, OpenApi,
};
use uuid::Uuid;

use self::model::{CreateWebhook, CreatedWebhook, Delivery, UpdateWebhook, Webhook};
use crate::{
    auth::principal::AdminAuth,
    error::{ApiError, Validation},
    pagination::{Page, PageRequest},
    responses::NoContent,
    state::AppState,
    Tags,
};

/// Checks topic filters: 1-50 of them, each 1-100 characters of letters,
/// digits, `.`, `_` and `*`.
fn check_events(v: &mut Validation, events: &[String]) {
    v.check(
        (1..=50).contains(&events.len()),
        "events",
        "must list 1-50 topic filters, e.g. [\"stock.*\"]",
    );
    v.check(
        events.iter().all(|e| {
            (1..=100).contains(&e.len())
                && e.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '*'))
        }),
        "events",
        "each filter is 1-100 letters, digits, '.', '_' or '*' (any characters), e.g. stock.*",
    );
}

/// Checks a target URL against the SSRF rule: 422 on the `url` field.
async fn check_url(state: &AppState, v: &mut Validation, url: &str) {
    if url.len() > 2000 {
        v.check(false, "url", "must be at most 2000 characters");
        return;
    }
    if let Err(e) = target::check(url, state.config.webhooks.allow_private_targets).await {
        v.check(false, "url", e.to_string());
    }
}

/// Errors of an operation on a collection (no 404, no 409).
type ListResult<T> = std::result::Result<T, problem::Problem<false, false>>;
/// Errors of an operation on one webhook (404, no 409).
type OneResult<T> = std::result::Result<T, problem::Problem<true, false>>;

fn webhook_not_found(id: Uuid) -> ApiError {
    ApiError::not_found(format!("webhook {id}"))
}

/// 201 with the new webhook and its secret.
#[derive(ApiResponse)]
pub enum CreatedResponse {
    /// Created; `secret` is shown this once.
    #[oai(status = 201)]
    Created(Json<CreatedWebhook>),
}

/// 202: the delivery is queued again.
#[derive(ApiResponse)]
pub enum RetryResponse {
    /// Queued: due now, with a fresh retry window.
    #[oai(status = 202)]
    Accepted(Json<Delivery>),
}

pub struct WebhooksApi;

#[OpenApi(prefix_path = "/api/v1/webhooks", tag = "Tags::Webhooks")]
impl WebhooksApi {
    /// List webhooks (admin), oldest first.
    ///
    /// Errors: 401 no or bad credentials, 403 not an admin, 422 bad `limit` or `cursor`.
    #[oai(path = "/", method = "get", operation_id = "listWebhooks")]
    async fn list(
        &self,
        _auth: AdminAuth,
        state: Data<&AppState>,
        /// Page size, 1-500 (default 50).
        limit: Query<Option<u32>>,
        /// `next_cursor` from the previous page.
        cursor: Query<Option<String>>,
    ) -> ListResult<Json<Page<Webhook>>> {
        let page = PageRequest::new(limit.0, cursor.0.as_deref())?;
        let rows = repo::list(&state.db, page.after, page.fetch()).await?;
        Ok(Json(page.page(rows, |w| (w.created_at, w.id), |w| w)))
    }

    /// Create a webhook (admin); the answer holds its signing secret, shown once.
    ///
    /// Events matching `events` are POSTed to `url`, signed per Standard
    /// Webhooks. Errors: 401, 403 not an admin, 422 invalid field (a URL that
    /// is not http(s), does not resolve, or resolves to a private, loopback or
    /// link-local address while `WEBHOOK_ALLOW_PRIVATE_TARGETS` is off).
    #[oai(path = "/", method = "post", operation_id = "createWebhook")]
    async fn create(
        &self,
        _auth: AdminAuth,
        state: Data<&AppState>,
        body: Json<CreateWebhook>,
    ) -> ListResult<CreatedResponse> {
        let mut v = Validation::new();
        check_events(&mut v, &body.events);
        v.check(
            body.description.chars().count() <= 500,
            "description",
            "must be at most 500 characters",
        );
        check_url(&state, &mut v, &body.url).await;
        v.finish()?;
        let secret = sign::new_secret();
        let webhook = repo::insert(
            &state.db,
            &body.url,
            &body.events,
            body.description.trim(),
            &secret,
        )
        .await?;
        Ok(CreatedResponse::Created(Json(CreatedWebhook {
            webhook,
            secret,
        })))
    }

    /// One webhook (admin); the secret is not shown again.
    ///
    /// Errors: 401, 403 not an admin, 404 unknown webhook.
    #[oai(path = "/:id", method = "get", operation_id = "getWebhook")]
    async fn get(
        &self,
        _auth: AdminAuth,
        state: Data<&AppState>,
        /// The webhook's id.
        id: Path<Uuid>,
    ) -> OneResult<Json<Webhook>> {
        let w = repo::get(&state.db, id.0)
            .await?
            .ok_or_else(|| webhook_not_found(id.0))?;
        Ok(Json(w))
    }

    /// Change a webhook's url, events, description or active flag (admin).
    ///
    /// Re-enabling (`active: true`) clears `disabled_reason` and
    /// `failing_since`. Errors: 401, 403 not an admin, 404 unknown webhook,
    /// 422 invalid field (the URL is checked as on creation).
    #[oai(path = "/:id", method = "patch", operation_id = "updateWebhook")]
    async fn update(
        &self,
        _auth: AdminAuth,
        state: Data<&AppState>,
        /// The webhook's id.
        id: Path<Uuid>,
        body: Json<UpdateWebhook>,
    ) -> OneResult<Json<Webhook>> {
        let mut v = Validation::new();
        if let Some(events) = &body.events {
            check_events(&mut v, events);
        }
        if let Some(d) = &body.description {
            v.check(
                d.chars().count() <= 500,
                "description",
                "must be at most 500 characters",
            );
        }
        if let Some(url) = &body.url {
            check_url(&state, &mut v, url).await;
        }
        v.finish()?;
        let w = repo::update(
            &state.db,
            id.0,
            body.url.as_deref(),
            body.events.as_deref(),
            body.description.as_deref().map(str::trim),
            body.active,
        )
        .await?
        .ok_or_else(|| webhook_not_found(id.0))?;
        Ok(Json(w))
    }

    /// Delete a webhook and its delivery history (admin).
    ///
    /// A delivery in flight finishes first. Errors: 401, 403 not an admin, 404 unknown webhook.
    #[oai(path = "/:id", method = "delete", operation_id = "deleteWebhook")]
    async fn delete(
        &self,
        _auth: AdminAuth,
        state: Data<&AppState>,
        /// The webhook's id.
        id: Path<Uuid>,
    ) -> OneResult<NoContent> {
        if !repo::delete(&state.db, id.0).await? {
            return Err(webhook_not_found(id.0).into());
        }
        Ok(NoContent::NoContent)
    }

    /// A webhook's deliveries (admin), newest first: status, attempts, last
    /// response code and time.
    ///
    /// Errors: 401, 403 not an admin, 404 unknown webhook, 422 bad `limit` or `cursor`.
    #[oai(
        path = "/:id/deliveries",
        method = "get",
        operation_id = "listWebhookDeliveries"
    )]
    async fn deliveries(
        &self,
        _auth: AdminAuth,
        state: Data<&AppState>,
        /// The webhook's id.
        id: Path<Uuid>,
        /// Page size, 1-500 (default 50).
        limit: Query<Option<u32>>,
        /// `next_cursor` from the previous page.
        cursor: Query<Option<String>>,
    ) -> OneResult<Json<Page<Delivery>>> {
        let page = PageRequest::new(limit.0, cursor.0.as_deref())?;
        if repo::get(&state.db, id.0).await?.is_none() {
            return Err(webhook_not_found(id.0).into());
        }
        let rows = repo::deliveries(&state.db, id.0, page.after, page.fetch()).await?;
        Ok(Json(page.page(rows, |d| (d.created_at, d.id), |d| d)))
    }

    /// Send a delivery again (admin): due now, with a fresh 24-hour retry window.
    ///
    /// Works for failed, delivered and pending deliveries. Errors: 401, 403
    /// not an admin, 404 unknown webhook or delivery, 409 the delivery is
    /// being attempted right now (retry in a few seconds).
    #[oai(
        path = "/:id/deliveries/:delivery_id/retry",
        method = "post",
        operation_id = "retryWebhookDelivery"
    )]
    async fn retry(
        &self,
        _auth: AdminAuth,
        state: Data<&AppState>,
        /// The webhook's id.
        id: Path<Uuid>,
        /// The delivery's id.
        delivery_id: Path<Uuid>,
    ) -> std::result::Result<RetryResponse, problem::Problem<true, true>> {
        match repo::retry(
            &state.db,
            id.0,
            delivery_id.0,
            state.config.webhooks.retry_for,
        )
        .await
        {
            Ok(Some(d)) => Ok(RetryResponse::Accepted(Json(d))),
            Ok(None) => Err(ApiError::not_found(format!(
                "delivery {} of webhook {}",
                delivery_id.0, id.0
            ))
            .into()),
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("55P03") => {
                Err(ApiError::conflict(
                    "delivery-in-progress",
                    "The delivery is being attempted right now; look at it again in a few seconds.",
                )
                .into())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Send a signed `webhook.ping` event to the endpoint now (admin) and
    /// answer with the recorded delivery (status, response code, error).
    ///
    /// The ping is attempted once, not retried, even while the webhook is
    /// disabled. Errors: 401, 403 not an admin, 404 unknown webhook.
    #[oai(path = "/:id/ping", method = "post", operation_id = "pingWebhook")]
    async fn ping(
        &self,
        _auth: AdminAuth,
        state: Data<&AppState>,
        /// The webhook's id.
        id: Path<Uuid>,
    ) -> OneResult<Json<Delivery>> {
        if repo::get(&state.db, id.0).await?.is_none() {
            return Err(webhook_not_found(id.0).into());
        }
        let worker = worker::Worker::new(state.db.clone(), state.config.webhooks.clone())?;
        let mut tx = crate::db::begin(&state.db).await?;
        let delivery = repo::insert_ping(&mut tx, id.0).await?;
        let claimed = repo::claim_one(&mut tx, delivery).await?;
        worker.attempt(&mut tx, &claimed).await?;
        tx.commit().await?;
        Ok(Json(repo::delivery(&state.db, delivery).await?))
    }
}
