//! Log lines: every line logged while serving a request, at every level,
//! carries the request id, method and route, and the access line its status
//! and latency. This binary installs the global subscriber (JSON, filtered at
//! WARN as in production, plus the access lines) into a buffer, so it holds
//! this one test only.

mod common;

use std::sync::{Arc, Mutex};

use common::{test_config, TestApp};
use inventory_api::{config::LogFormat, telemetry};
use serde_json::{json, Value};
use sqlx::PgPool;

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[sqlx::test]
async fn warn_lines_inside_a_handler_carry_request_id_method_and_route(db: PgPool) {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    telemetry::init_logging_to(
        LogFormat::Json,
        tracing_subscriber::EnvFilter::new("warn,inventory_api::telemetry=info"),
        move || writer.clone(),
    );
    let plain = TestApp::spawn(db.clone()).await;
    let app = TestApp::spawn_with(db, plain.cache.clone(), test_config(&[])).await;
    let user = app.create_user("clerk").await;
    let pair: Value = app
        .login(&user.email, &user.password)
        .await
        .json()
        .await
        .unwrap();
    let refresh = json!({"refresh_token": pair["refresh_token"]});
    assert_eq!(
        app.post_json("/api/v1/auth/refresh", &refresh)
            .await
            .status(),
        200
    );
    // Reusing a refresh token is logged at WARN by the handler.
    let resp = app
        .client
        .post(app.url("/api/v1/auth/refresh"))
        .header("x-request-id", "log-test-42")
        .json(&refresh)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let resp = app
        .with_token(
            reqwest::Method::GET,
            "/api/v1/warehouses",
            pair["access_token"].as_str().unwrap(),
        )
        .header("x-request-id", "log-test-43")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let line = lines
        .iter()
        .find(|l| {
            l["level"] == "WARN"
                && l["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("refresh token reused"))
        })
        .unwrap_or_else(|| panic!("no warn line for the reuse in:\n{text}"));
    assert_eq!(line["span"]["request_id"], "log-test-42", "{line}");
    assert_eq!(line["span"]["method"], "POST", "{line}");
    assert_eq!(line["span"]["route"], "/api/v1/auth/refresh", "{line}");
    // The access line of that request says how it ended.
    let access_line = |request_id: &str| {
        lines
            .iter()
            .find(|l| l["message"] == "request completed" && l["span"]["request_id"] == request_id)
            .unwrap_or_else(|| panic!("no access line for {request_id} in:\n{text}"))
    };
    let access = access_line("log-test-42");
    assert_eq!(access["status"], 401, "{access}");
    assert!(
        access["latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0),
        "{access}"
    );
    assert_eq!(access["span"]["route"], "/api/v1/auth/refresh", "{access}");
    // The access line of an authenticated request names who made it.
    let access = access_line("log-test-43");
    assert_eq!(access["principal"], format!("user:{}", user.id), "{access}");
    // And every line logged inside a request has them.
    for l in lines.iter().filter(|l| l.get("span").is_some()) {
        for field in ["request_id", "method", "route"] {
            assert!(l["span"][field].is_string(), "{field} missing: {l}");
        }
    }
}
