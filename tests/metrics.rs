//! /metrics: exported through OpenTelemetry in Prometheus format, with route
//! templates as labels, and every metric that alerts and dashboards query
//! actually exported (so no panel shows "No data" because of a typo).

mod common;

use std::collections::BTreeSet;

use common::TestApp;
use inventory_api::{events, jobs, state::AppState};
use serde_json::{json, Value};
use sqlx::PgPool;

/// Our own metric names in a PromQL expression.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut token = String::new();
    for c in expr.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            token.push(c);
        } else {
            if token.starts_with("inventory_") || token.starts_with("http_server_") {
                names.insert(token.clone());
            }
            token.clear();
        }
    }
    names
}

fn exprs_in_json(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "expr" {
                    if let Some(s) = v.as_str() {
                        out.push(s.to_owned());
                    }
                } else {
                    exprs_in_json(v, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| exprs_in_json(i, out)),
        _ => {}
    }
}

/// Every expression in the alert rules and Grafana dashboards.
fn monitoring_exprs() -> Vec<(String, String)> {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut exprs = Vec::new();
    let alerts =
        std::fs::read_to_string(format!("{root}/monitoring/prometheus/alerts.yml")).unwrap();
    let alerts: serde_yaml::Value = serde_yaml::from_str(&alerts).unwrap();
    for group in alerts["groups"].as_sequence().unwrap() {
        for rule in group["rules"].as_sequence().unwrap() {
            let name = rule["alert"]
                .as_str()
                .or(rule["record"].as_str())
                .unwrap_or("?");
            exprs.push((
                format!("alerts.yml {name}"),
                rule["expr"].as_str().unwrap().to_owned(),
            ));
        }
    }
    let dir = format!("{root}/monitoring/grafana/dashboards");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let json: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let mut found = Vec::new();
        exprs_in_json(&json, &mut found);
        assert!(!found.is_empty(), "{} has no queries", path.display());
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        exprs.extend(found.into_iter().map(|e| (file.clone(), e)));
    }
    exprs
}

/// Names exposed by a scrape, with the _bucket/_sum/_count series of histograms.
fn exported(scrape: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in scrape.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            let (name, kind) = (parts.next().unwrap(), parts.next().unwrap_or(""));
            names.insert(name.to_owned());
            if kind == "histogram" {
                for suffix in ["_bucket", "_sum", "_count"] {
                    names.insert(format!("{name}{suffix}"));
                }
            }
        }
    }
    names
}

#[sqlx::test]
async fn every_metric_queried_by_alerts_and_dashboards_is_exported(db: PgPool) {
    let app = TestApp::spawn(db.clone()).await;
    // Exercise the service: logins, a product with a cached lookup, movements.
    let user = app.create_user("manager").await;
    assert_eq!(
        app.login(&user.email, "wrong password!!").await.status(),
        401
    );
    let token = app.token("manager").await;
    let product: Value = app
        .post_ok(
            "/api/v1/products",
            &token,
            &json!({"sku": "M-1", "name": "Metered", "barcodes": [{"barcode": "MET-1"}]}),
        )
        .await;
    let warehouse = app.create_warehouse_sql("MW").await;
    for _ in 0..2 {
        app.get_as("/api/v1/products/by-barcode/MET-1", &token)
            .await;
    }
    let receive = json!({"product_id": product["id"], "warehouse_id": warehouse, "quantity": 3});
    assert_eq!(
        app.post_as("/api/v1/stock/receive", &token, &receive)
            .await
            .status(),
        201
    );
    let too_many = json!({"product_id": product["id"], "warehouse_id": warehouse, "quantity": 30});
    assert_eq!(
        app.post_as("/api/v1/stock/issue", &token, &too_many)
            .await
            .status(),
        409
    );
    app.get_as(
        &format!("/api/v1/products/{}", product["id"].as_str().unwrap()),
        &token,
    )
    .await;

    // The background jobs' work, run once.
    let state = AppState::new(db.clone(), app.cache.clone(), common::test_config(&[]));
    jobs::refresh_health(&state).await;
    jobs::refresh_business(&state).await.unwrap();
    events::relay_once(&db, &app.cache).await.unwrap();

    let resp = app.get("/metrics").await;
    assert_eq!(resp.status(), 200);
    let scrape = resp.text().await.unwrap();
    let names = exported(&scrape);

    let mut missing = Vec::new();
    for (source, expr) in monitoring_exprs() {
        for name in metric_names(&expr) {
            if !names.contains(&name) {
                missing.push(format!("{source}: {name}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "queried but not exported:\n{}",
        missing.join("\n")
    );

    // Route templates, never raw ids, label the HTTP metrics.
    assert!(
        scrape.contains(r#"route="/api/v1/products/{id}""#),
        "{scrape}"
    );
    assert!(
        !scrape.contains(product["id"].as_str().unwrap()),
        "a raw id leaked into a label"
    );
    // The exercise above shows up in the domain counters.
    assert!(scrape.contains(r#"inventory_stock_movements_total{kind="receipt",outcome="applied"}"#));
    assert!(scrape.contains(r#"inventory_logins_total{outcome="failure"}"#));
    assert!(scrape.contains(r#"inventory_cache_requests_total{cache="barcode",result="hit"}"#));
    assert!(scrape.contains("inventory_build_info{"));
    assert!(scrape.contains("# HELP http_server_request_duration_seconds"));
}

#[test]
fn metric_names_are_found_in_promql() {
    let names = metric_names(
        r#"sum(rate(http_server_requests_total{status_class="5xx"}[5m])) / inventory_db_pool_max > 0.9"#,
    );
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["http_server_requests_total", "inventory_db_pool_max"]
    );
}

/// The business gauges aggregate every level, so one replica computes them
/// per interval and the others take its figures from the cache: a second
/// replica (its own state on the same database and cache) reports the cached
/// figures, not a fresh aggregate, until they expire.
#[sqlx::test]
async fn business_figures_are_computed_once_and_shared_through_the_cache(db: PgPool) {
    let app = TestApp::spawn(db.clone()).await;
    let token = app.token("manager").await;
    let product: Value = app
        .post_ok(
            "/api/v1/products",
            &token,
            &json!({"sku": "G-1", "name": "Gauged", "reorder_point": 5}),
        )
        .await;
    let warehouse = app.create_warehouse_sql("GW").await;
    let replica = || AppState::new(db.clone(), app.cache.clone(), common::test_config(&[]));
    let cached = || async {
        app.cache
            .get_json::<Value>("gauges", "gauges:business")
            .await
            .expect("the figures are cached")["value"]
            .clone()
    };

    jobs::refresh_business(&replica()).await.unwrap();
    assert_eq!(cached().await["low"], 1, "no stock: at its reorder point");

    let receive = json!({"product_id": product["id"], "warehouse_id": warehouse, "quantity": 10});
    assert_eq!(
        app.post_as("/api/v1/stock/receive", &token, &receive)
            .await
            .status(),
        201
    );
    jobs::refresh_business(&replica()).await.unwrap();
    assert_eq!(
        cached().await["low"],
        1,
        "a second replica within the interval takes the cached figures"
    );

    app.cache.delete(&["gauges:business".to_owned()]).await;
    jobs::refresh_business(&replica()).await.unwrap();
    assert_eq!(cached().await["low"], 0, "expired: computed again");
}

/// A whole-table aggregate past its freshness is served as it was while
/// another replica recomputes it (holding the key's lock), instead of making
/// every request wait seconds; once the lock is free the next caller
/// recomputes. Only a missing value waits.
#[sqlx::test]
async fn an_old_aggregate_is_served_while_another_replica_recomputes_it(db: PgPool) {
    let app = TestApp::spawn(db.clone()).await;
    if !app.cache.is_enabled() {
        return; // nothing is shared without Redis
    }
    let fresh = std::time::Duration::from_secs(1);
    let key = "test:aggregate";
    let once = |n: i64| {
        app.cache.computed_once(
            &db,
            "test",
            key,
            fresh,
            async move |_: &mut sqlx::PgConnection| Ok(n),
        )
    };
    assert_eq!(once(1).await.unwrap(), 1, "missing: computed");
    assert_eq!(once(2).await.unwrap(), 1, "fresh: cached");
    tokio::time::sleep(fresh + std::time::Duration::from_millis(100)).await;

    // Another replica is recomputing: it holds the key's lock.
    let mut other = db.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('inventory-api:cache:' || $1))")
        .bind(key)
        .execute(&mut *other)
        .await
        .unwrap();
    let served = tokio::time::timeout(std::time::Duration::from_secs(3), once(3))
        .await
        .expect("an old value does not wait for the recompute");
    assert_eq!(served.unwrap(), 1, "old, while being recomputed");
    other.rollback().await.unwrap();

    assert_eq!(
        once(4).await.unwrap(),
        4,
        "old and the lock free: recomputed"
    );
    assert_eq!(once(5).await.unwrap(), 4, "fresh again");
}
