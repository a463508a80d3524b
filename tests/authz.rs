//! The role matrix, walked over every operation of the OpenAPI document.
//!
//! Each operation must appear in `REQUIRED` (a new endpoint fails this test
//! until its access rule is written down here), and is then called with no
//! token, garbage, an expired token, a token signed with another secret, an
//! `alg: none` token, a device key and each role. Bad credentials must give
//! 401; a principal without the right 403 (whatever the body); a principal
//! with it exactly 2xx for a valid request built by `valid_request` (which
//! panics for an operation nobody wrote a valid request for).

mod common;

use std::collections::BTreeSet;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use common::{TestApp, TEST_JWT_SECRET};
use inventory_api::auth::{
    token::{Claims, Keys, AUDIENCE, ISSUER},
    Role,
};
use reqwest::Method;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Need {
    Public,
    User(Role),
    Device,
}

use Need::*;
use Role::*;

/// Who may call each operation (DESIGN.md, "Roles").
const REQUIRED: &[(&str, &str, Need)] = &[
    ("GET", "/health", Public),
    ("GET", "/ready", Public),
    ("POST", "/api/v1/auth/login", Public),
    ("POST", "/api/v1/auth/refresh", Public),
    ("POST", "/api/v1/auth/logout", User(Viewer)),
    ("GET", "/api/v1/auth/me", User(Viewer)),
    ("GET", "/api/v1/users", User(Admin)),
    ("POST", "/api/v1/users", User(Admin)),
    ("GET", "/api/v1/users/{id}", User(Admin)),
    ("PATCH", "/api/v1/users/{id}", User(Admin)),
    ("DELETE", "/api/v1/users/{id}", User(Admin)),
    ("GET", "/api/v1/categories", User(Viewer)),
    ("POST", "/api/v1/categories", User(Manager)),
    ("GET", "/api/v1/categories/{id}", User(Viewer)),
    ("PATCH", "/api/v1/categories/{id}", User(Manager)),
    ("DELETE", "/api/v1/categories/{id}", User(Manager)),
    ("GET", "/api/v1/products", User(Viewer)),
    ("POST", "/api/v1/products", User(Manager)),
    ("GET", "/api/v1/products/export.csv", User(Viewer)),
    ("POST", "/api/v1/products/import", User(Manager)),
    ("GET", "/api/v1/products/by-barcode/{barcode}", User(Viewer)),
    ("GET", "/api/v1/products/{id}", User(Viewer)),
    ("PATCH", "/api/v1/products/{id}", User(Manager)),
    ("DELETE", "/api/v1/products/{id}", User(Manager)),
    ("GET", "/api/v1/products/{id}/barcodes", User(Viewer)),
    ("POST", "/api/v1/products/{id}/barcodes", User(Manager)),
    (
        "DELETE",
        "/api/v1/products/{id}/barcodes/{barcode}",
        User(Manager),
    ),
    ("GET", "/api/v1/warehouses", User(Viewer)),
    ("POST", "/api/v1/warehouses", User(Manager)),
    ("GET", "/api/v1/warehouses/{id}", User(Viewer)),
    ("PATCH", "/api/v1/warehouses/{id}", User(Manager)),
    ("DELETE", "/api/v1/warehouses/{id}", User(Manager)),
    ("GET", "/api/v1/warehouses/{id}/locations", User(Viewer)),
    ("POST", "/api/v1/warehouses/{id}/locations", User(Manager)),
    (
        "GET",
        "/api/v1/locations/by-barcode/{barcode}",
        User(Viewer),
    ),
    ("GET", "/api/v1/locations/{id}", User(Viewer)),
    ("PATCH", "/api/v1/locations/{id}", User(Manager)),
    ("DELETE", "/api/v1/locations/{id}", User(Manager)),
    ("GET", "/api/v1/stock/positions", User(Viewer)),
    ("GET", "/api/v1/stock/expiring", User(Viewer)),
    ("GET", "/api/v1/products/{id}/lots", User(Viewer)),
    ("GET", "/api/v1/lots/{id}", User(Viewer)),
    ("GET", "/api/v1/lots/{id}/trace", User(Viewer)),
    (
        "GET",
        "/api/v1/products/{id}/serials/{serial}",
        User(Viewer),
    ),
    ("POST", "/api/v1/stock/receive", User(Clerk)),
    ("POST", "/api/v1/stock/issue", User(Clerk)),
    ("POST", "/api/v1/stock/adjust", User(Clerk)),
    ("POST", "/api/v1/stock/transfer", User(Clerk)),
    ("GET", "/api/v1/stock", User(Viewer)),
    ("GET", "/api/v1/products/{id}/stock", User(Viewer)),
    ("GET", "/api/v1/stock/valuation", User(Viewer)),
    ("GET", "/api/v1/replenishment", User(Viewer)),
    ("GET", "/api/v1/transactions", User(Viewer)),
    ("GET", "/api/v1/transactions/{id}", User(Viewer)),
    ("GET", "/api/v1/scanner/devices", User(Manager)),
    ("POST", "/api/v1/scanner/devices", User(Manager)),
    ("DELETE", "/api/v1/scanner/devices/{id}", User(Manager)),
    ("POST", "/api/v1/scanner/events", Device),
    ("POST", "/api/v1/scanner/events/batch", Device),
    ("GET", "/api/v1/scanner/events", User(Manager)),
    ("POST", "/api/v1/scanner/console-events", User(Clerk)),
    ("GET", "/api/v1/scanner/lookup/{barcode}", Device),
    ("GET", "/api/v1/dashboard/summary", User(Viewer)),
    ("GET", "/api/v1/dashboard/low-stock", User(Viewer)),
    ("GET", "/api/v1/dashboard/movements", User(Viewer)),
    ("GET", "/api/v1/events/stream", User(Viewer)),
    ("POST", "/api/v1/reservations", User(Clerk)),
    ("GET", "/api/v1/reservations", User(Viewer)),
    ("GET", "/api/v1/reservations/{id}", User(Viewer)),
    ("POST", "/api/v1/reservations/{id}/cancel", User(Clerk)),
    ("POST", "/api/v1/counts", User(Clerk)),
    ("GET", "/api/v1/counts", User(Viewer)),
    ("GET", "/api/v1/counts/{id}", User(Viewer)),
    ("GET", "/api/v1/counts/{id}/lines", User(Viewer)),
    ("POST", "/api/v1/counts/{id}/lines", User(Clerk)),
    ("POST", "/api/v1/counts/{id}/complete", User(Manager)),
    ("POST", "/api/v1/counts/{id}/cancel", User(Manager)),
    ("GET", "/api/v1/webhooks", User(Admin)),
    ("POST", "/api/v1/webhooks", User(Admin)),
    ("GET", "/api/v1/webhooks/{id}", User(Admin)),
    ("PATCH", "/api/v1/webhooks/{id}", User(Admin)),
    ("DELETE", "/api/v1/webhooks/{id}", User(Admin)),
    ("GET", "/api/v1/webhooks/{id}/deliveries", User(Admin)),
    (
        "POST",
        "/api/v1/webhooks/{id}/deliveries/{delivery_id}/retry",
        User(Admin),
    ),
    ("POST", "/api/v1/webhooks/{id}/ping", User(Admin)),
];

fn token_with(secret: &str, exp_offset: i64) -> String {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let keys = Keys::new(&secrecy::SecretString::from(secret.to_owned()));
    keys.sign(&Claims {
        sub: Uuid::new_v4(),
        role: Admin,
        jti: Uuid::new_v4(),
        iss: ISSUER.into(),
        aud: AUDIENCE.into(),
        iat: now,
        exp: now + exp_offset,
        gen: 0,
    })
    .unwrap()
}

fn alg_none_token(sub: Uuid) -> String {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(
        serde_json::json!({"sub": sub, "role": "admin", "jti": Uuid::new_v4(),
            "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 600})
        .to_string(),
    );
    format!("{header}.{payload}.")
}

/// Objects a valid request can refer to.
struct Fixture {
    product: Uuid,
    barcode: String,
    warehouse: Uuid,
    other_warehouse: Uuid,
    transaction: Uuid,
}

/// A request body of a valid call.
enum Body {
    None,
    Json(Value),
    Csv(&'static str),
}

fn unique(prefix: &str) -> String {
    format!("{prefix}{}", &Uuid::new_v4().simple().to_string()[..10])
}

async fn fresh_id(db: &PgPool, sql: &str) -> Uuid {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(db)
        .await
        .unwrap()
}

async fn fixture(db: &PgPool) -> Fixture {
    let product = fresh_id(
        db,
        "INSERT INTO products (sku, name) VALUES ('FIX-1', 'Fixture') RETURNING id",
    )
    .await;
    sqlx::query("INSERT INTO product_barcodes (lookup_key, barcode, symbology, product_id) VALUES ('FIXCODE', 'FIXCODE', 'other', $1)")
        .bind(product)
        .execute(db)
        .await
        .unwrap();
    let warehouse = fresh_id(
        db,
        "INSERT INTO warehouses (code, name) VALUES ('FIXW', 'Fixture') RETURNING id",
    )
    .await;
    let other_warehouse = fresh_id(
        db,
        "INSERT INTO warehouses (code, name) VALUES ('FIXW2', 'Fixture 2') RETURNING id",
    )
    .await;
    let user = fresh_id(db, "INSERT INTO users (email, display_name, role, password_hash) VALUES ('fix@example.com', 'Fix', 'admin', '!') RETURNING id").await;
    sqlx::query(
        "INSERT INTO stock_levels (product_id, warehouse_id, quantity) VALUES ($1, $2, 1000000)",
    )
    .bind(product)
    .bind(warehouse)
    .execute(db)
    .await
    .unwrap();
    let transaction = sqlx::query_scalar(
        "INSERT INTO stock_transactions (kind, product_id, warehouse_id, location_id, quantity,
             balance_after, warehouse_balance_after, actor_user_id)
         SELECT 'receipt', $1, $2, l.id, 1000000, 1000000, 1000000, $3
         FROM locations l WHERE l.warehouse_id = $2 AND l.code = 'DEFAULT' RETURNING id",
    )
    .bind(product)
    .bind(warehouse)
    .bind(user)
    .fetch_one(db)
    .await
    .unwrap();
    Fixture {
        product,
        barcode: "FIXCODE".into(),
        warehouse,
        other_warehouse,
        transaction,
    }
}

/// A request to `method template` that a principal with the right must see
/// succeed (2xx), creating whatever it needs first.
async fn valid_request(db: &PgPool, f: &Fixture, method: &str, template: &str) -> (String, Body) {
    use serde_json::json;
    let (p, w) = (f.product, f.warehouse);
    let open_count = || async {
        sqlx::query_scalar::<_, Uuid>(
            "INSERT INTO count_sessions (warehouse_id) VALUES ($1) RETURNING id",
        )
        .bind(w)
        .fetch_one(db)
        .await
        .unwrap()
    };
    match (method, template) {
        ("POST", "/api/v1/auth/logout") => (
            template.into(),
            Body::Json(json!({"refresh_token": "invr_unknown"})),
        ),
        ("POST", "/api/v1/users") => (
            template.into(),
            Body::Json(
                json!({"email": format!("{}@example.com", unique("u")), "password": "long enough password", "role": "viewer"}),
            ),
        ),
        ("GET" | "PATCH" | "DELETE", "/api/v1/users/{id}") => {
            let id = fresh_id(db, &format!(
                "INSERT INTO users (email, display_name, role, password_hash) VALUES ('{}@example.com', 'U', 'clerk', '!') RETURNING id",
                unique("u")
            ))
            .await;
            (
                format!("/api/v1/users/{id}"),
                Body::Json(json!({"display_name": "Renamed"})),
            )
        }
        ("POST", "/api/v1/categories") => {
            (template.into(), Body::Json(json!({"name": unique("cat")})))
        }
        (_, "/api/v1/categories/{id}") => {
            let id = fresh_id(
                db,
                &format!(
                    "INSERT INTO categories (name) VALUES ('{}') RETURNING id",
                    unique("cat")
                ),
            )
            .await;
            (
                format!("/api/v1/categories/{id}"),
                Body::Json(json!({"name": unique("cat")})),
            )
        }
        ("POST", "/api/v1/products") => (
            template.into(),
            Body::Json(json!({"sku": unique("SKU-"), "name": "New"})),
        ),
        ("POST", "/api/v1/products/import") => (
            template.into(),
            Body::Csv("sku,name\nIMPORTED-1,Imported\n"),
        ),
        ("GET", "/api/v1/products/by-barcode/{barcode}") => (
            format!("/api/v1/products/by-barcode/{}", f.barcode),
            Body::None,
        ),
        (_, "/api/v1/products/{id}") | ("GET" | "POST", "/api/v1/products/{id}/barcodes") => {
            let id = fresh_id(
                db,
                &format!(
                    "INSERT INTO products (sku, name) VALUES ('{}', 'P') RETURNING id",
                    unique("SKU-")
                ),
            )
            .await;
            let body = if template.ends_with("barcodes") {
                json!({"barcode": unique("CODE-")})
            } else {
                json!({"name": "Renamed"})
            };
            (template.replace("{id}", &id.to_string()), Body::Json(body))
        }
        ("DELETE", "/api/v1/products/{id}/barcodes/{barcode}") => {
            let code = unique("CODE-");
            sqlx::query("INSERT INTO product_barcodes (lookup_key, barcode, symbology, product_id) VALUES ($1, $1, 'other', $2)")
                .bind(&code)
                .bind(p)
                .execute(db)
                .await
                .unwrap();
            (format!("/api/v1/products/{p}/barcodes/{code}"), Body::None)
        }
        ("GET", "/api/v1/products/{id}/stock") => {
            (format!("/api/v1/products/{p}/stock"), Body::None)
        }
        ("POST", "/api/v1/warehouses") => (
            template.into(),
            Body::Json(json!({"code": unique("W"), "name": "W"})),
        ),
        (_, "/api/v1/warehouses/{id}") => {
            let id = fresh_id(
                db,
                &format!(
                    "INSERT INTO warehouses (code, name) VALUES ('{}', 'W') RETURNING id",
                    unique("W")
                ),
            )
            .await;
            (
                format!("/api/v1/warehouses/{id}"),
                Body::Json(json!({"name": "Renamed"})),
            )
        }
        ("GET" | "POST", "/api/v1/warehouses/{id}/locations") => (
            format!("/api/v1/warehouses/{w}/locations"),
            Body::Json(json!({"code": unique("L")})),
        ),
        (_, "/api/v1/locations/{id}" | "/api/v1/locations/by-barcode/{barcode}") => {
            let code = unique("L");
            let id = fresh_id(
                db,
                &format!(
                    "INSERT INTO locations (warehouse_id, code, barcode) VALUES ('{w}', '{code}', '{code}') RETURNING id"
                ),
            )
            .await;
            (
                template
                    .replace("{id}", &id.to_string())
                    .replace("{barcode}", &code),
                Body::Json(json!({"name": "Renamed"})),
            )
        }
        ("GET", "/api/v1/products/{id}/lots") => (format!("/api/v1/products/{p}/lots"), Body::None),
        ("GET", "/api/v1/lots/{id}" | "/api/v1/lots/{id}/trace") => {
            let lot = fresh_id(
                db,
                &format!(
                    "INSERT INTO lots (product_id, code) VALUES ('{p}', '{}') RETURNING id",
                    unique("LOT")
                ),
            )
            .await;
            (template.replace("{id}", &lot.to_string()), Body::None)
        }
        ("GET", "/api/v1/products/{id}/serials/{serial}") => {
            let serial = unique("SN");
            sqlx::query(
                "INSERT INTO serial_numbers (product_id, serial, warehouse_id, location_id)
                 SELECT $1, $2, $3, id FROM locations WHERE warehouse_id = $3 AND code = 'DEFAULT'",
            )
            .bind(p)
            .bind(&serial)
            .bind(w)
            .execute(db)
            .await
            .unwrap();
            (format!("/api/v1/products/{p}/serials/{serial}"), Body::None)
        }
        ("GET" | "POST", "/api/v1/reservations") => (
            template.into(),
            Body::Json(json!({"product_id": p, "warehouse_id": w, "quantity": 1})),
        ),
        (_, "/api/v1/reservations/{id}" | "/api/v1/reservations/{id}/cancel") => {
            // A reservation of one unit, its hold on the level included.
            let id = fresh_id(
                db,
                &format!(
                    "WITH hold AS (UPDATE stock_levels SET reserved = reserved + 1, version = version + 1
                                   WHERE product_id = '{p}' AND warehouse_id = '{w}')
                     INSERT INTO reservations (product_id, warehouse_id, quantity)
                     VALUES ('{p}', '{w}', 1) RETURNING id"
                ),
            )
            .await;
            (template.replace("{id}", &id.to_string()), Body::None)
        }
        ("POST", "/api/v1/stock/receive" | "/api/v1/stock/issue") => (
            template.into(),
            Body::Json(json!({"product_id": p, "warehouse_id": w, "quantity": 1})),
        ),
        ("POST", "/api/v1/stock/adjust") => (
            template.into(),
            Body::Json(json!({"product_id": p, "warehouse_id": w, "delta": 1, "reason": "found"})),
        ),
        ("POST", "/api/v1/stock/transfer") => (
            template.into(),
            Body::Json(
                json!({"product_id": p, "from_warehouse_id": w, "to_warehouse_id": f.other_warehouse, "quantity": 1}),
            ),
        ),
        ("GET", "/api/v1/transactions/{id}") => (
            format!("/api/v1/transactions/{}", f.transaction),
            Body::None,
        ),
        ("POST", "/api/v1/scanner/devices") => (
            template.into(),
            Body::Json(json!({"name": "d", "warehouse_ids": [w]})),
        ),
        ("DELETE", "/api/v1/scanner/devices/{id}") => {
            let id = fresh_id(db, &format!(
                "INSERT INTO devices (name, key_prefix, key_hash) VALUES ('d', 'invd_x', '\\x{}') RETURNING id",
                Uuid::new_v4().simple()
            ))
            .await;
            (format!("/api/v1/scanner/devices/{id}"), Body::None)
        }
        ("POST", "/api/v1/scanner/events") => (
            template.into(),
            Body::Json(
                json!({"event_id": Uuid::new_v4(), "barcode": f.barcode, "action": "lookup", "warehouse_id": w}),
            ),
        ),
        ("POST", "/api/v1/scanner/events/batch") => (
            template.into(),
            Body::Json(
                json!({"events": [{"event_id": Uuid::new_v4(), "barcode": f.barcode, "action": "lookup", "warehouse_id": w}]}),
            ),
        ),
        ("POST", "/api/v1/scanner/console-events") => (
            template.into(),
            Body::Json(
                json!({"events": [{"event_id": Uuid::new_v4(), "barcode": f.barcode, "action": "lookup", "warehouse_id": w}]}),
            ),
        ),
        ("GET", "/api/v1/scanner/lookup/{barcode}") => {
            (format!("/api/v1/scanner/lookup/{}", f.barcode), Body::None)
        }
        ("POST", "/api/v1/counts") => (template.into(), Body::Json(json!({"warehouse_id": w}))),
        ("GET", "/api/v1/counts/{id}" | "/api/v1/counts/{id}/lines")
        | ("POST", "/api/v1/counts/{id}/complete" | "/api/v1/counts/{id}/cancel") => (
            template.replace("{id}", &open_count().await.to_string()),
            Body::Json(json!({})),
        ),
        ("POST", "/api/v1/counts/{id}/lines") => (
            template.replace("{id}", &open_count().await.to_string()),
            Body::Json(json!({"lines": [{"product_id": p, "counted_quantity": 3}]})),
        ),
        ("POST", "/api/v1/webhooks") => (
            template.into(),
            // A public IP literal: valid without DNS, and nothing is sent on creation.
            Body::Json(json!({"url": "https://93.184.216.34/hook", "events": ["stock.*"]})),
        ),
        (_, t) if t.starts_with("/api/v1/webhooks/{id}") => {
            // A private target: a ping is refused by the SSRF check at once
            // (answered 200 with the failed delivery) instead of waiting on a network.
            let hook = fresh_id(
                db,
                "INSERT INTO webhooks (url, events, secret) VALUES ('http://127.0.0.1:9/hook', '{*}', 'whsec_x') RETURNING id",
            )
            .await;
            let delivery = fresh_id(db, &format!(
                "INSERT INTO webhook_deliveries (webhook_id, topic, payload, give_up_at, event_created_at)
                 VALUES ('{hook}', 'stock.receipt', '{{}}', now(), now()) RETURNING id"
            ))
            .await;
            (
                t.replace("{id}", &hook.to_string())
                    .replace("{delivery_id}", &delivery.to_string()),
                Body::Json(json!({"description": "renamed"})),
            )
        }
        ("GET", t) if !t.contains('{') => (t.into(), Body::None),
        _ => panic!("no valid request written for {method} {template}: add one to valid_request"),
    }
}

/// Sends the valid request for an operation; returns its status and path.
async fn send_valid(
    app: &TestApp,
    f: &Fixture,
    method: &Method,
    template: &str,
    token: &str,
) -> (u16, String) {
    let (path, body) = valid_request(&app.db, f, method.as_str(), template).await;
    let mut req = app
        .client
        .request(method.clone(), app.url(&path))
        .bearer_auth(token);
    req = match body {
        Body::None => req,
        Body::Json(v) => req.json(&v),
        Body::Csv(text) => req.header("content-type", "text/csv").body(text),
    };
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), path)
}

fn concrete_path(template: &str) -> String {
    template
        .split('/')
        .map(|seg| {
            if seg.starts_with('{') {
                if seg.contains("barcode") {
                    "4006381333931".to_owned()
                } else {
                    Uuid::new_v4().to_string()
                }
            } else {
                seg.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[sqlx::test]
async fn every_operation_enforces_the_role_matrix(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let spec: Value = app.get("/openapi.json").await.json().await.unwrap();

    // The spec and the table list the same operations.
    let mut in_spec = BTreeSet::new();
    for (path, ops) in spec["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            in_spec.insert((method.to_uppercase(), path.clone()));
        }
    }
    let in_table: BTreeSet<_> = REQUIRED
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(
        in_spec, in_table,
        "every operation needs an access rule in REQUIRED (and every rule an operation)"
    );

    let admin_user = app.create_user("admin").await;
    let mut roles = Vec::new();
    for role in [Viewer, Clerk, Manager, Admin] {
        roles.push((role, app.token(role.as_str()).await));
    }
    let manager = &roles[2].1;
    let wh = app.create_warehouse_sql("MATRIX").await;
    let fixture = fixture(&app.db).await;
    let (_, device_key) = app.create_device(manager, &[wh, fixture.warehouse]).await;

    let bad_credentials: Vec<(&str, Option<String>)> = vec![
        ("no token", None),
        ("garbage", Some("not-a-token".into())),
        ("expired", Some(token_with(TEST_JWT_SECRET, -3600))),
        (
            "other secret",
            Some(token_with("another-secret-another-secret-another", 600)),
        ),
        ("alg none", Some(alg_none_token(admin_user.id))),
        (
            "unknown device key",
            Some(format!("invd_{}", "A".repeat(43))),
        ),
    ];

    for (method, template, need) in REQUIRED {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let path = concrete_path(template);
        let call = |token: Option<&str>| {
            let mut req = app.client.request(method.clone(), app.url(&path));
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            if method == Method::POST || method == Method::PATCH {
                req = req.json(&serde_json::json!({}));
            }
            async move { req.send().await.unwrap().status().as_u16() }
        };
        if *need == Public {
            continue;
        }
        for (what, token) in &bad_credentials {
            let status = call(token.as_deref()).await;
            assert_eq!(status, 401, "{method} {template} with {what}");
        }
        // A principal with the right gets exactly 2xx for a valid request.
        if *need == Device {
            let (status, path) = send_valid(&app, &fixture, &method, template, &device_key).await;
            assert!(
                (200..300).contains(&status),
                "{method} {path} as device: {status}"
            );
        } else {
            let status = call(Some(&device_key)).await;
            assert_eq!(status, 403, "{method} {template} as device");
        }
        for (role, token) in &roles {
            let allowed = matches!(need, User(min) if role >= min);
            if allowed {
                let (status, path) = send_valid(&app, &fixture, &method, template, token).await;
                assert!(
                    (200..300).contains(&status),
                    "{method} {path} as {role:?}: {status}"
                );
            } else {
                let status = call(Some(token)).await;
                assert_eq!(status, 403, "{method} {template} as {role:?}");
            }
        }
    }
}
