//! DATABASE_READ_URL: which requests read from the read pool (a replica in
//! production) and which stay on the primary because they must see their own
//! writes.

mod common;

use common::{assert_problem, test_config, TestApp};
use inventory_api::{cache::Cache, db};
use serde_json::{json, Value};
use sqlx::{postgres::PgPoolOptions, PgPool};
use uuid::Uuid;

/// A product with stock received through the API; returns (token, product, ledger row id).
async fn one_receipt(app: &TestApp) -> (String, Uuid, String) {
    let token = app.token("clerk").await;
    let product: Uuid = sqlx::query_scalar(
        "INSERT INTO products (sku, name, unit_cost) VALUES ('RP-1', 'Replica read', 1) RETURNING id",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    let warehouse = app.create_warehouse_sql("MAIN").await;
    let resp = app
        .post_as(
            "/api/v1/stock/receive",
            &token,
            &json!({"product_id": product, "warehouse_id": warehouse, "quantity": 5}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let body: Value = resp.json().await.unwrap();
    let id = body["transactions"][0]["id"].as_str().unwrap().to_owned();
    (token, product, id)
}

#[sqlx::test]
async fn reports_work_on_a_read_only_session_like_a_hot_standby(db: PgPool) {
    // The same database, but every session read-only, as on a streaming
    // replica: anything routed to the read pool that tried to write would fail.
    let options = (*db.connect_options())
        .clone()
        .options([("default_transaction_read_only", "on")]);
    let read_db = PgPoolOptions::new()
        .max_connections(2)
        .connect_lazy_with(options);
    let app = TestApp::spawn_with_read_pool(db, read_db, Cache::disabled(), test_config(&[])).await;
    let (token, product, _) = one_receipt(&app).await;

    let resp = app
        .get_as(
            &format!("/api/v1/transactions?product_id={product}"),
            &token,
        )
        .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["items"].as_array().unwrap().len(), 1);
    assert_eq!(body["items"][0]["quantity"], 5);

    let resp = app.get_as("/api/v1/products/export.csv", &token).await;
    assert_eq!(resp.status(), 200);
    let csv = resp.text().await.unwrap();
    assert!(csv.lines().any(|l| l.starts_with("RP-1,")), "{csv}");
}

#[sqlx::test]
async fn a_dead_replica_fails_only_the_reports_and_with_503(db: PgPool) {
    // Nothing listens on port 1: the replica is down. Listing and export
    // answer 503; movements and reads of one's own writes (GET by id, stock)
    // go to the primary and keep working.
    let dead = db::pool_from_url(
        "postgres://postgres@127.0.0.1:1/none",
        2,
        db::SessionLimits::NONE,
    )
    .unwrap();
    let app = TestApp::spawn_with_read_pool(db, dead, Cache::disabled(), test_config(&[])).await;
    let (token, product, id) = one_receipt(&app).await;

    assert_eq!(
        app.get_as(&format!("/api/v1/transactions/{id}"), &token)
            .await
            .status(),
        200
    );
    assert_eq!(
        app.get_as(&format!("/api/v1/products/{product}/stock"), &token)
            .await
            .status(),
        200
    );
    assert_problem(
        app.get_as("/api/v1/transactions", &token).await,
        503,
        "unavailable",
    )
    .await;
    // The export streams: the failure shows as a cut-off body, not a 500 page.
    let resp = app.get_as("/api/v1/products/export.csv", &token).await;
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    assert!(
        status == 503 || !text.contains("RP-1"),
        "export answered {status} with the primary's rows: {text}"
    );
}

#[test]
fn database_read_url_must_be_a_postgres_url() {
    let err = inventory_api::config::Config::from_lookup(|name| match name {
        "DATABASE_URL" => Some("postgres://u@h/db".into()),
        "DATABASE_READ_URL" => Some("mysql://u@h/db".into()),
        "JWT_SECRET" => Some("x".repeat(32)),
        _ => None,
    })
    .unwrap_err();
    assert_eq!(err.name, "DATABASE_READ_URL");
}
