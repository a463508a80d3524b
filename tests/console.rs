//! The web console: its files as served (CSP, ETag, types), and scans posted
//! by signed-in users, which must follow the rules of device scans. The
//! browser tests (scripts/console-test.sh) drive the screens themselves.

mod common;

use common::{assert_problem, TestApp};
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

const EAN: &str = "4006381333931";

#[sqlx::test]
async fn console_files_are_served_with_a_strict_csp_and_revalidated_by_etag(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let index = app.get("/console/").await;
    assert_eq!(index.status(), 200);
    let csp = index.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("connect-src 'self'"));
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(index.headers()["cache-control"], "no-cache");
    assert!(index.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let etag = index.headers()["etag"].to_str().unwrap().to_owned();
    let html = index.text().await.unwrap();
    assert!(html.contains(r#"<script type="module" src="app.js"></script>"#));
    assert!(!html.contains("<script>"), "no inline script");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "nothing from another host"
    );

    let again = app
        .client
        .get(app.url("/console/"))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    // nginx's gzip weakens the ETag; revalidation still works.
    let weak = app
        .client
        .get(app.url("/console/"))
        .header("If-None-Match", format!("W/{etag}"))
        .send()
        .await
        .unwrap();
    assert_eq!(weak.status(), 304);

    let js = app.get("/console/scan.js").await;
    assert_eq!(js.status(), 200);
    assert!(js.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    assert_ne!(js.headers()["etag"].to_str().unwrap(), etag);
    assert_eq!(app.get("/console/missing.js").await.status(), 404);
    assert_eq!(app.get("/console/%2e%2e%2fCargo.toml").await.status(), 404);
}

struct Setup {
    app: TestApp,
    clerk: String,
    product: Uuid,
    warehouse: Uuid,
}

async fn setup(db: PgPool) -> Setup {
    let app = TestApp::spawn(db).await;
    let manager = app.token("manager").await;
    let p: Value = app
        .post_ok(
            "/api/v1/products",
            &manager,
            &json!({"sku": "C-1", "name": "Console", "barcodes": [
                {"barcode": EAN}, {"barcode": "C-CASE", "pack_quantity": 6}]}),
        )
        .await;
    let warehouse = app.create_warehouse_sql("FRONT").await;
    Setup {
        clerk: app.token("clerk").await,
        product: p["id"].as_str().unwrap().parse().unwrap(),
        app,
        warehouse,
    }
}

impl Setup {
    async fn scan(&self, events: Value) -> Vec<Value> {
        let resp = self
            .app
            .post_as(
                "/api/v1/scanner/console-events",
                &self.clerk,
                &json!({ "events": events }),
            )
            .await;
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        body["results"].as_array().unwrap().clone()
    }

    fn event(&self, id: Uuid, action: &str, barcode: &str) -> Value {
        json!({"event_id": id, "barcode": barcode, "action": action, "warehouse_id": self.warehouse})
    }
}

#[sqlx::test]
async fn user_scans_follow_the_device_rules_and_apply_once(db: PgPool) {
    let s = setup(db).await;
    let (a, b, c, d) = (
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
    );
    let first = s
        .scan(json!([
            s.event(a, "receive", "C-CASE"),
            s.event(b, "issue", &format!("]C101{:0>14}\u{1d}302", EAN)),
            s.event(c, "issue", "UNKNOWN-1"),
            s.event(d, "issue", EAN),
        ]))
        .await;
    let statuses: Vec<&str> = first
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["applied", "applied", "rejected", "applied"]);
    assert_eq!(first[0]["units"], 6, "pack quantity");
    assert_eq!(first[1]["units"], 2, "GS1 count with FNC1 as ASCII 29");
    assert_eq!(first[2]["reason"], "unknown barcode");
    assert_eq!(first[3]["level"], 3);

    // A resend (e.g. the offline queue after a lost answer) applies nothing again.
    let resent = s
        .scan(json!([
            s.event(a, "receive", "C-CASE"),
            s.event(d, "issue", EAN)
        ]))
        .await;
    assert!(resent.iter().all(|r| r["status"] == "duplicate"));
    assert_eq!(resent[1]["level"], 3);
    let level: i64 = sqlx::query_scalar(
        "SELECT quantity FROM stock_levels WHERE product_id = $1 AND warehouse_id = $2",
    )
    .bind(s.product)
    .bind(s.warehouse)
    .fetch_one(&s.app.db)
    .await
    .unwrap();
    assert_eq!(level, 3);

    // Insufficient stock is a rejection, as for devices; rejections are kept.
    let too_many = s
        .scan(
            json!([{"event_id": Uuid::new_v4(), "barcode": EAN, "action": "issue",
                      "quantity": 4, "warehouse_id": s.warehouse}]),
        )
        .await;
    assert_eq!(too_many[0]["status"], "rejected");
    assert_eq!(too_many[0]["reason"], "insufficient stock: 3 available");

    // All of it is stored under the user's one console device, and the ledger
    // rows name that device.
    let (devices, stored): (i64, i64) = sqlx::query_as(
        "SELECT count(DISTINCT d.id), count(*) FROM scan_events e JOIN devices d ON d.id = e.device_id
         WHERE d.console_user_id IS NOT NULL",
    )
    .fetch_one(&s.app.db)
    .await
    .unwrap();
    assert_eq!((devices, stored), (1, 5));
    let actors: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM stock_transactions t JOIN devices d ON d.id = t.actor_device_id
         WHERE d.console_user_id IS NOT NULL",
    )
    .fetch_one(&s.app.db)
    .await
    .unwrap();
    assert_eq!(actors, 3);
}

#[sqlx::test]
async fn user_scans_need_a_clerk_and_a_live_console_device(db: PgPool) {
    let s = setup(db).await;
    let body = json!({"events": [s.event(Uuid::new_v4(), "lookup", EAN)]});
    let viewer = s.app.token("viewer").await;
    let resp = s
        .app
        .post_as("/api/v1/scanner/console-events", &viewer, &body)
        .await;
    assert_problem(resp, 403, "forbidden").await;

    let manager = s.app.token("manager").await;
    let (_, key) = s.app.create_device(&manager, &[s.warehouse]).await;
    let resp = s
        .app
        .post_as("/api/v1/scanner/console-events", &key, &body)
        .await;
    assert_problem(resp, 403, "forbidden").await;

    let resp = s
        .app
        .post_as(
            "/api/v1/scanner/console-events",
            &s.clerk,
            &json!({"events": []}),
        )
        .await;
    assert_problem(resp, 422, "validation").await;

    // Concurrent first scans of one user share one console device.
    let bodies: Vec<Value> = (0..4)
        .map(|_| json!({"events": [s.event(Uuid::new_v4(), "lookup", EAN)]}))
        .collect();
    let sends = bodies
        .iter()
        .map(|b| s.app.post_as("/api/v1/scanner/console-events", &s.clerk, b));
    for resp in futures_util::future::join_all(sends).await {
        assert_eq!(resp.status(), 200);
    }
    let console_devices: i64 =
        sqlx::query_scalar("SELECT count(*) FROM devices WHERE console_user_id IS NOT NULL")
            .fetch_one(&s.app.db)
            .await
            .unwrap();
    assert_eq!(console_devices, 1);

    // A manager can stop a user's console scanning by revoking that device.
    let id: Uuid = sqlx::query_scalar("SELECT id FROM devices WHERE console_user_id IS NOT NULL")
        .fetch_one(&s.app.db)
        .await
        .unwrap();
    let resp = s
        .app
        .delete_as(&format!("/api/v1/scanner/devices/{id}"), &manager)
        .await;
    assert_eq!(resp.status(), 204);
    let resp = s
        .app
        .post_as("/api/v1/scanner/console-events", &s.clerk, &body)
        .await;
    assert_problem(resp, 403, "forbidden").await;
}
