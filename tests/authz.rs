//! The role matrix, walked over every operation of the OpenAPI document.
//!
//! Each operation must appear in `REQUIRED` (a new endpoint fails this test
//! until its access rule is written down here), and is then called with no
//! token, garbage, an expired token, a token signed with another secret, an
//! `alg: none` token, a device key and each role. Bad credentials must give
//! 401; a principal without the right 403; a principal with it 2xx on reads
//! without parameters, and elsewhere anything but 401/403 (the dummy ids and
//! empty bodies earn a 400/404/422) and never a 5xx.

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
    ("POST", "/api/v1/stock/receive", User(Clerk)),
    ("POST", "/api/v1/stock/issue", User(Clerk)),
    ("POST", "/api/v1/stock/adjust", User(Clerk)),
    ("POST", "/api/v1/stock/transfer", User(Clerk)),
    ("GET", "/api/v1/stock", User(Viewer)),
    ("GET", "/api/v1/products/{id}/stock", User(Viewer)),
    ("GET", "/api/v1/transactions", User(Viewer)),
    ("GET", "/api/v1/transactions/{id}", User(Viewer)),
    ("GET", "/api/v1/scanner/devices", User(Manager)),
    ("POST", "/api/v1/scanner/devices", User(Manager)),
    ("DELETE", "/api/v1/scanner/devices/{id}", User(Manager)),
    ("POST", "/api/v1/scanner/events", Device),
    ("POST", "/api/v1/scanner/events/batch", Device),
    ("GET", "/api/v1/scanner/events", User(Manager)),
    ("GET", "/api/v1/scanner/lookup/{barcode}", Device),
    ("GET", "/api/v1/dashboard/summary", User(Viewer)),
    ("GET", "/api/v1/dashboard/low-stock", User(Viewer)),
    ("GET", "/api/v1/dashboard/movements", User(Viewer)),
    ("GET", "/api/v1/events/stream", User(Viewer)),
    ("POST", "/api/v1/counts", User(Clerk)),
    ("GET", "/api/v1/counts", User(Viewer)),
    ("GET", "/api/v1/counts/{id}", User(Viewer)),
    ("POST", "/api/v1/counts/{id}/lines", User(Clerk)),
    ("POST", "/api/v1/counts/{id}/complete", User(Manager)),
    ("POST", "/api/v1/counts/{id}/cancel", User(Manager)),
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
    let (_, device_key) = app.create_device(manager, &[wh]).await;

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
        let status = call(Some(&device_key)).await;
        if *need == Device {
            assert!(
                ![401, 403].contains(&status) && status < 500,
                "{method} {template} as device: {status}"
            );
        } else {
            assert_eq!(status, 403, "{method} {template} as device");
        }
        for (role, token) in &roles {
            let status = call(Some(token)).await;
            let allowed = matches!(need, User(min) if role >= min);
            if allowed && method == Method::GET && !template.contains('{') {
                // Reads without parameters need no fixture: exactly 2xx.
                assert!(
                    (200..300).contains(&status),
                    "{method} {template} as {role:?}: {status}"
                );
            } else if allowed {
                assert!(
                    ![401, 403].contains(&status) && status < 500,
                    "{method} {template} as {role:?}: {status}"
                );
            } else {
                assert_eq!(status, 403, "{method} {template} as {role:?}");
            }
        }
    }
}
