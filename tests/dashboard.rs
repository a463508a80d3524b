//! Dashboard aggregates, the live event feed and the background jobs.

mod common;

use std::time::Duration;

use common::{assert_problem, TestApp};
use serde_json::{json, Value};
use sqlx::PgPool;

async fn stocked(app: &TestApp, token: &str) -> (Value, uuid::Uuid) {
    let p: Value = app
        .post_ok(
            "/api/v1/products",
            token,
            &json!({"sku": "D-1", "name": "Dash", "unit_cost": "2", "reorder_point": 10}),
        )
        .await;
    let wh = app.create_warehouse_sql("DW").await;
    let body = json!({"product_id": p["id"], "warehouse_id": wh, "quantity": 4});
    assert_eq!(
        app.post_as("/api/v1/stock/receive", token, &body)
            .await
            .status(),
        201
    );
    (p, wh)
}

#[sqlx::test]
async fn the_summary_low_stock_and_movements_reflect_the_ledger(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let token = app.token("manager").await;
    let (p, _) = stocked(&app, &token).await;
    let s: Value = app.get_ok("/api/v1/dashboard/summary", &token).await;
    assert_eq!(s["active_products"], 1);
    assert_eq!(s["units_on_hand"], 4);
    assert_eq!(s["stock_value"], "8.00");
    assert_eq!(s["low_stock_products"], 1);
    assert_eq!(s["movements_today"], 1);
    let low: Value = app.get_ok("/api/v1/dashboard/low-stock", &token).await;
    assert_eq!(low["items"][0]["product_id"], p["id"]);
    assert_eq!(low["items"][0]["on_hand"], 4);
    let moves: Value = app
        .get_ok("/api/v1/dashboard/movements?days=3", &token)
        .await;
    assert_eq!(moves[0]["kind"], "receipt");
    assert_eq!(moves[0]["units"], 4);
    assert_problem(
        app.get_as("/api/v1/dashboard/movements?days=0", &token)
            .await,
        422,
        "validation",
    )
    .await;
}

/// Reads the SSE body until `needle` shows up (or fails after a few seconds).
async fn read_until(resp: &mut reqwest::Response, needle: &str) -> String {
    let mut seen = String::new();
    let found = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(chunk) = resp.chunk().await.unwrap() {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains(needle) {
                return;
            }
        }
    })
    .await;
    assert!(found.is_ok(), "{needle:?} not in the feed: {seen}");
    seen
}

#[sqlx::test]
async fn the_event_feed_streams_committed_changes_and_resumes(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let token = app.token("clerk").await;
    let manager = app.token("manager").await;
    let mut feed = app.get_as("/api/v1/events/stream", &token).await;
    assert_eq!(feed.status(), 200);
    assert!(feed.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    stocked(&app, &manager).await;
    let seen = read_until(&mut feed, "event: stock.receipt").await;
    assert!(seen.contains("event: product.created"), "{seen}");
    let receipt_id: i64 =
        sqlx::query_scalar("SELECT position FROM outbox WHERE topic = 'stock.receipt'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    // Resuming after the product event replays the receipt only.
    let mut resumed = app
        .with_token(reqwest::Method::GET, "/api/v1/events/stream", &token)
        .header("last-event-id", (receipt_id - 1).to_string())
        .send()
        .await
        .unwrap();
    let seen = read_until(&mut resumed, &format!("id: {receipt_id}")).await;
    assert!(!seen.contains("product.created"), "{seen}");
}

#[sqlx::test]
async fn the_outbox_relay_publishes_to_redis_and_waits_when_redis_is_down(db: PgPool) {
    let app = TestApp::spawn(db.clone()).await;
    let token = app.token("manager").await;
    stocked(&app, &token).await;
    let pending = inventory_api::events::backlog(&db).await.unwrap();
    assert_eq!(pending, 2);
    // Redis down: nothing is published and nothing is lost.
    let down = inventory_api::cache::Cache::connect("redis://127.0.0.1:1", "test:down:").unwrap();
    assert!(
        inventory_api::events::relay_once(&db, &down).await.is_err(),
        "a relay pass Redis did not confirm is an error (the relay backs off)"
    );
    assert_eq!(inventory_api::events::backlog(&db).await.unwrap(), 2);
    if app.cache.is_enabled() {
        assert_eq!(
            inventory_api::events::relay_once(&db, &app.cache)
                .await
                .unwrap(),
            2
        );
        assert_eq!(inventory_api::events::backlog(&db).await.unwrap(), 0);
    }
}

#[sqlx::test]
async fn idempotency_keys_expire_after_a_day(db: PgPool) {
    sqlx::query(
        "INSERT INTO idempotency_keys (principal_id, key, request_hash, response_status, response_body, created_at)
         VALUES (gen_random_uuid(), 'old', '\\x00', 201, '{}', now() - interval '25 hours'),
                (gen_random_uuid(), 'older', '\\x00', 201, '{}', now() - interval '30 hours'),
                (gen_random_uuid(), 'oldest', '\\x00', 201, '{}', now() - interval '40 hours'),
                (gen_random_uuid(), 'new', '\\x00', 201, '{}', now() - interval '23 hours')",
    )
    .execute(&db)
    .await
    .unwrap();
    assert_eq!(
        inventory_api::idempotency::delete_expired(&db, 2)
            .await
            .unwrap(),
        3,
        "two at a time: a full pass, then one that finds fewer and ends it"
    );
    let left: Vec<String> = sqlx::query_scalar("SELECT key FROM idempotency_keys")
        .fetch_all(&db)
        .await
        .unwrap();
    assert_eq!(left, ["new"]);
}

/// The topics of the events the outbox still holds, in feed order.
async fn outbox_topics(db: &PgPool) -> Vec<String> {
    sqlx::query_scalar("SELECT topic FROM outbox ORDER BY position")
        .fetch_all(db)
        .await
        .unwrap()
}

#[sqlx::test]
async fn day_old_outbox_events_are_removed_once_relayed(db: PgPool) {
    sqlx::query(
        "INSERT INTO outbox (topic, payload, created_at) VALUES
            ('older.published', '{}', now() - interval '26 hours'),
            ('older.published', '{}', now() - interval '26 hours'),
            ('old.published', '{}', now() - interval '25 hours'),
            ('old.pending', '{}', now() - interval '25 hours'),
            ('new.published', '{}', now())",
    )
    .execute(&db)
    .await
    .unwrap();
    inventory_api::events::sequence(&db).await.unwrap();
    // Redis and webhooks have consumed the first; the second is still waiting for Redis.
    sqlx::raw_sql(
        "UPDATE outbox_consumers SET position = (SELECT position FROM outbox WHERE topic = 'old.published')
         WHERE name = 'redis';
         UPDATE outbox_consumers SET position = (SELECT max(position) FROM outbox) WHERE name = 'webhooks'",
    )
    .execute(&db)
    .await
    .unwrap();
    // Two at a time: a full pass, then one that finds fewer and ends it.
    assert_eq!(
        inventory_api::events::delete_old(&db, true, 2)
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        outbox_topics(&db).await,
        ["old.pending", "new.published"],
        "an unpublished event is never dropped while Redis is in use"
    );
    // Without Redis nothing relays them; only the feed's day of history is kept.
    assert_eq!(
        inventory_api::events::delete_old(&db, false, 2)
            .await
            .unwrap(),
        1
    );
}

/// The cleanup forgets the oldest events up to the first one younger than a
/// day, and goes on from where its last statement stopped.
#[sqlx::test]
async fn outbox_cleanup_stops_at_the_first_event_younger_than_a_day(db: PgPool) {
    sqlx::query(
        "INSERT INTO outbox (topic, payload, created_at)
         SELECT 'old', '{}', now() - interval '25 hours' FROM generate_series(1, 5)",
    )
    .execute(&db)
    .await
    .unwrap();
    // A young event, then one that began earlier but committed after it.
    sqlx::raw_sql(
        "INSERT INTO outbox (topic, payload, created_at) VALUES ('young', '{}', now());
         INSERT INTO outbox (topic, payload, created_at) VALUES ('late', '{}', now() - interval '25 hours');",
    )
    .execute(&db)
    .await
    .unwrap();
    inventory_api::events::sequence(&db).await.unwrap();
    sqlx::query("UPDATE outbox_consumers SET position = (SELECT max(position) FROM outbox)")
        .execute(&db)
        .await
        .unwrap();
    // Two at a time: 2 + 2 + 1, and the third statement ends at 'young'.
    assert_eq!(
        inventory_api::events::delete_old(&db, true, 2)
            .await
            .unwrap(),
        5
    );
    assert_eq!(
        outbox_topics(&db).await,
        ["young", "late"],
        "what follows a younger event waits for it"
    );
}
