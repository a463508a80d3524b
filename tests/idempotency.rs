//! `Idempotency-Key` on every operation that documents it, from one table: the
//! same key and request replays the first answer and changes nothing; the same
//! key with another request is a 422. The table must cover every operation the
//! spec marks with the header, so one added later cannot be forgotten here.

mod common;

use common::{assert_problem, TestApp};
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

/// The tables a request could change. A digest of their rows (minus the
/// idempotency keys themselves) shows whether a replay changed anything.
const TABLES: &[&str] = &[
    "categories",
    "users",
    "products",
    "product_barcodes",
    "warehouses",
    "stock_levels",
    "stock_transactions",
    "count_sessions",
    "count_lines",
    "outbox",
];

async fn digest(db: &PgPool) -> Vec<String> {
    let mut out = Vec::new();
    for table in TABLES {
        let d: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {table} t"
        )))
        .fetch_one(db)
        .await
        .unwrap();
        out.push(format!("{table}:{d}"));
    }
    out
}

#[derive(Clone)]
enum Body {
    None,
    Json(Value),
    Csv(&'static str),
}

/// One request of a case.
#[derive(Clone)]
struct Call {
    path: String,
    body: Body,
}

struct Case {
    /// The operation as the spec names it.
    template: &'static str,
    token: String,
    first: Call,
    /// Another request (another body, or for bodyless operations another
    /// target) sent with the same key.
    other: Call,
}

fn call(path: impl Into<String>, body: Body) -> Call {
    Call {
        path: path.into(),
        body,
    }
}

async fn send(app: &TestApp, token: &str, key: &str, c: &Call) -> reqwest::Response {
    let req = app
        .with_token(Method::POST, &c.path, token)
        .header("Idempotency-Key", key);
    let req = match &c.body {
        Body::None => req,
        Body::Json(v) => req.json(v),
        Body::Csv(text) => req.header("content-type", "text/csv").body(*text),
    };
    req.send().await.unwrap()
}

async fn created(app: &TestApp, token: &str, path: &str, body: Value) -> Uuid {
    let resp = app.post_as(path, token, &body).await;
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
    let v: Value = resp.json().await.unwrap();
    v["id"].as_str().unwrap().parse().unwrap()
}

fn keyed_operations() -> Vec<String> {
    let spec: Value = serde_json::from_str(&inventory_api::app::spec_json()).unwrap();
    let mut out = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let keyed = op["parameters"].as_array().is_some_and(|ps| {
                ps.iter()
                    .any(|p| p["in"] == "header" && p["name"] == "Idempotency-Key")
            });
            if keyed {
                out.push(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    out.sort();
    out
}

#[sqlx::test]
async fn a_repeated_key_replays_the_first_answer_and_another_request_is_refused(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let admin = app.token("admin").await;
    let manager = app.token("manager").await;
    let clerk = app.token("clerk").await;

    let w1 = app.create_warehouse_sql("IDEM-W1").await;
    let w2 = app.create_warehouse_sql("IDEM-W2").await;
    let p = created(
        &app,
        &manager,
        "/api/v1/products",
        json!({"sku": "IDEM-P", "name": "Keyed"}),
    )
    .await;
    let stocked = |q: i64| json!({"product_id": p, "warehouse_id": w1, "quantity": q});
    assert_eq!(
        app.post_as("/api/v1/stock/receive", &manager, &stocked(50))
            .await
            .status(),
        201
    );
    let counts: Vec<Uuid> = {
        let mut ids = Vec::new();
        for _ in 0..4 {
            ids.push(
                created(
                    &app,
                    &clerk,
                    "/api/v1/counts",
                    json!({"warehouse_id": w1, "product_ids": [p]}),
                )
                .await,
            );
        }
        ids
    };
    // The count to complete has a difference, so completing it moves stock.
    assert!(app
        .post_as(
            &format!("/api/v1/counts/{}/lines", counts[1]),
            &clerk,
            &json!({"lines": [{"product_id": p, "counted_quantity": 48}]}),
        )
        .await
        .status()
        .is_success());

    let reservations: Vec<Uuid> = {
        let mut ids = Vec::new();
        for _ in 0..2 {
            ids.push(
                created(
                    &app,
                    &clerk,
                    "/api/v1/reservations",
                    json!({"product_id": p, "warehouse_id": w1, "quantity": 1}),
                )
                .await,
            );
        }
        ids
    };

    let j = |v: Value| Body::Json(v);
    let cases = vec![
        Case {
            template: "POST /api/v1/categories",
            token: manager.clone(),
            first: call("/api/v1/categories", j(json!({"name": "Tools"}))),
            other: call("/api/v1/categories", j(json!({"name": "Toys"}))),
        },
        Case {
            template: "POST /api/v1/users",
            token: admin.clone(),
            first: call(
                "/api/v1/users",
                j(
                    json!({"email": "keyed@example.test", "password": "a long enough secret", "role": "clerk"}),
                ),
            ),
            other: call(
                "/api/v1/users",
                j(
                    json!({"email": "other@example.test", "password": "a long enough secret", "role": "clerk"}),
                ),
            ),
        },
        Case {
            template: "POST /api/v1/products",
            token: manager.clone(),
            first: call("/api/v1/products", j(json!({"sku": "IDEM-A", "name": "A"}))),
            other: call("/api/v1/products", j(json!({"sku": "IDEM-B", "name": "B"}))),
        },
        Case {
            template: "POST /api/v1/products/{id}/barcodes",
            token: manager.clone(),
            first: call(
                format!("/api/v1/products/{p}/barcodes"),
                j(json!({"barcode": "4006381333931"})),
            ),
            other: call(
                format!("/api/v1/products/{p}/barcodes"),
                j(json!({"barcode": "96385074"})),
            ),
        },
        Case {
            template: "POST /api/v1/products/import",
            token: manager.clone(),
            first: call(
                "/api/v1/products/import",
                Body::Csv("sku,name\nIDEM-CSV-1,From CSV\n"),
            ),
            other: call(
                "/api/v1/products/import",
                Body::Csv("sku,name\nIDEM-CSV-2,From CSV\n"),
            ),
        },
        Case {
            template: "POST /api/v1/warehouses",
            token: manager.clone(),
            first: call(
                "/api/v1/warehouses",
                j(json!({"code": "IDEM-W3", "name": "3"})),
            ),
            other: call(
                "/api/v1/warehouses",
                j(json!({"code": "IDEM-W4", "name": "4"})),
            ),
        },
        Case {
            template: "POST /api/v1/warehouses/{id}/locations",
            token: manager.clone(),
            first: call(
                format!("/api/v1/warehouses/{w1}/locations"),
                j(json!({"code": "BIN-1"})),
            ),
            other: call(
                format!("/api/v1/warehouses/{w1}/locations"),
                j(json!({"code": "BIN-2"})),
            ),
        },
        Case {
            template: "POST /api/v1/stock/receive",
            token: manager.clone(),
            first: call("/api/v1/stock/receive", j(stocked(5))),
            other: call("/api/v1/stock/receive", j(stocked(6))),
        },
        Case {
            template: "POST /api/v1/stock/issue",
            token: manager.clone(),
            first: call("/api/v1/stock/issue", j(stocked(1))),
            other: call("/api/v1/stock/issue", j(stocked(2))),
        },
        Case {
            template: "POST /api/v1/stock/adjust",
            token: manager.clone(),
            first: call(
                "/api/v1/stock/adjust",
                j(json!({"product_id": p, "warehouse_id": w1, "reason": "found", "delta": 1})),
            ),
            other: call(
                "/api/v1/stock/adjust",
                j(json!({"product_id": p, "warehouse_id": w1, "reason": "lost", "delta": -1})),
            ),
        },
        Case {
            template: "POST /api/v1/stock/transfer",
            token: manager.clone(),
            first: call(
                "/api/v1/stock/transfer",
                j(
                    json!({"product_id": p, "from_warehouse_id": w1, "to_warehouse_id": w2, "quantity": 1}),
                ),
            ),
            other: call(
                "/api/v1/stock/transfer",
                j(
                    json!({"product_id": p, "from_warehouse_id": w1, "to_warehouse_id": w2, "quantity": 2}),
                ),
            ),
        },
        Case {
            template: "POST /api/v1/counts",
            token: clerk.clone(),
            first: call("/api/v1/counts", j(json!({"warehouse_id": w1}))),
            other: call("/api/v1/counts", j(json!({"warehouse_id": w2}))),
        },
        Case {
            template: "POST /api/v1/counts/{id}/lines",
            token: clerk.clone(),
            first: call(
                format!("/api/v1/counts/{}/lines", counts[0]),
                j(json!({"lines": [{"product_id": p, "counted_quantity": 7}]})),
            ),
            other: call(
                format!("/api/v1/counts/{}/lines", counts[0]),
                j(json!({"lines": [{"product_id": p, "counted_quantity": 8}]})),
            ),
        },
        // Bodyless: the same key on another count, or another action, is
        // another request.
        Case {
            template: "POST /api/v1/counts/{id}/complete",
            token: manager.clone(),
            first: call(format!("/api/v1/counts/{}/complete", counts[1]), Body::None),
            other: call(format!("/api/v1/counts/{}/cancel", counts[1]), Body::None),
        },
        Case {
            template: "POST /api/v1/reservations",
            token: clerk.clone(),
            first: call(
                "/api/v1/reservations",
                j(json!({"product_id": p, "warehouse_id": w1, "quantity": 1, "reference": "SO-1"})),
            ),
            other: call(
                "/api/v1/reservations",
                j(json!({"product_id": p, "warehouse_id": w1, "quantity": 2, "reference": "SO-2"})),
            ),
        },
        Case {
            template: "POST /api/v1/reservations/{id}/cancel",
            token: clerk.clone(),
            first: call(
                format!("/api/v1/reservations/{}/cancel", reservations[0]),
                Body::None,
            ),
            other: call(
                format!("/api/v1/reservations/{}/cancel", reservations[1]),
                Body::None,
            ),
        },
        Case {
            template: "POST /api/v1/counts/{id}/cancel",
            token: manager.clone(),
            first: call(format!("/api/v1/counts/{}/cancel", counts[2]), Body::None),
            other: call(format!("/api/v1/counts/{}/cancel", counts[3]), Body::None),
        },
    ];

    let mut covered: Vec<String> = cases.iter().map(|c| c.template.to_owned()).collect();
    covered.sort();
    assert_eq!(
        covered,
        keyed_operations(),
        "every operation documenting Idempotency-Key has a case here"
    );

    for (i, case) in cases.iter().enumerate() {
        let key = format!("case-{i}");
        let name = case.template;
        let first = send(&app, &case.token, &key, &case.first).await;
        let status = first.status();
        assert!(status.is_success(), "{name}: first answer {status}");
        let body: Value = first.json().await.unwrap();
        let before = digest(&app.db).await;

        let again = send(&app, &case.token, &key, &case.first).await;
        assert_eq!(again.status(), status, "{name}: replay status");
        assert_eq!(
            again.json::<Value>().await.unwrap(),
            body,
            "{name}: replay body"
        );
        assert_eq!(
            digest(&app.db).await,
            before,
            "{name}: a replay changed data"
        );

        let other = send(&app, &case.token, &key, &case.other).await;
        assert_problem(other, 422, "idempotency-key-reused").await;
        assert_eq!(
            digest(&app.db).await,
            before,
            "{name}: a refused reuse changed data"
        );

        // The key is the caller's own: another user's same key is a new request.
        if case.template == "POST /api/v1/categories" {
            let fresh = send(&app, &admin, &key, &case.other).await;
            assert_eq!(fresh.status(), 201, "{name}: another caller's key");
        }
    }
}
