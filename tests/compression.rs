//! Response compression in the binary: br and gzip when the client accepts
//! them, never for the event stream, never inflating request bodies.

mod common;

use std::time::Duration;

use async_compression::tokio::bufread::{BrotliDecoder, GzipDecoder};
use common::{assert_problem, TestApp};
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio::io::AsyncReadExt;

async fn decode(encoding: &str, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match encoding {
        "br" => BrotliDecoder::new(data).read_to_end(&mut out).await,
        "gzip" => GzipDecoder::new(data).read_to_end(&mut out).await,
        other => panic!("unexpected Content-Encoding {other}"),
    }
    .expect("the body decodes");
    out
}

/// GET `path` with `Accept-Encoding: accept`: (Content-Encoding, Vary, raw body).
async fn fetch(app: &TestApp, path: &str, token: &str, accept: &str) -> (String, String, Vec<u8>) {
    let mut req = app.client.get(app.url(path));
    if !token.is_empty() {
        req = req.bearer_auth(token);
    }
    if !accept.is_empty() {
        req = req.header("accept-encoding", accept);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 200, "{path}");
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    let (encoding, vary) = (header("content-encoding"), header("vary"));
    (encoding, vary, resp.bytes().await.unwrap().to_vec())
}

#[sqlx::test]
async fn swagger_ui_and_json_are_compressed_when_accepted(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let token = app.token("manager").await;
    let (plain_encoding, vary, plain) = fetch(&app, "/docs", "", "").await;
    assert_eq!(plain_encoding, "", "no Accept-Encoding, no compression");
    assert!(
        vary.to_ascii_lowercase().contains("accept-encoding"),
        "Vary: {vary}"
    );

    let (encoding, _, br) = fetch(&app, "/docs", "", "gzip, deflate, br").await;
    assert_eq!(encoding, "br");
    assert_eq!(decode("br", &br).await, plain);
    assert!(
        br.len() * 4 < plain.len(),
        "Swagger UI: {} bytes as br, {} plain",
        br.len(),
        plain.len()
    );
    let (encoding, _, gz) = fetch(&app, "/docs", "", "gzip").await;
    assert_eq!(encoding, "gzip");
    assert_eq!(decode("gzip", &gz).await, plain);
    let (encoding, _, _) = fetch(&app, "/docs", "", "br;q=0, gzip;q=0").await;
    assert_eq!(encoding, "", "q=0 refuses a coding");

    for i in 0..20 {
        let body =
            json!({"sku": format!("C-{i}"), "name": "Compressible widget", "unit_cost": "1.50"});
        assert_eq!(
            app.post_as("/api/v1/products", &token, &body)
                .await
                .status(),
            201
        );
    }
    let (_, _, plain) = fetch(&app, "/api/v1/products?limit=20", &token, "").await;
    let (encoding, _, gz) = fetch(&app, "/api/v1/products?limit=20", &token, "gzip").await;
    assert_eq!(encoding, "gzip");
    let list: Value = serde_json::from_slice(&decode("gzip", &gz).await).unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 20);
    assert_eq!(list, serde_json::from_slice::<Value>(&plain).unwrap());
    assert!(
        gz.len() < plain.len() / 2,
        "{} gzip vs {} plain",
        gz.len(),
        plain.len()
    );

    // Errors rendered as problem+json are compressed too, and stay problems.
    let resp = app
        .client
        .get(app.url("/api/v1/nowhere"))
        .header("accept-encoding", "br")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.headers()["content-encoding"], "br");
    let problem: Value =
        serde_json::from_slice(&decode("br", &resp.bytes().await.unwrap()).await).unwrap();
    assert_eq!(problem["type"], "/problems/not-found");

    // Metrics still count the compressed requests (and /metrics itself compresses).
    let (encoding, _, metrics) = fetch(&app, "/metrics", "", "gzip").await;
    assert_eq!(encoding, "gzip");
    let metrics = String::from_utf8(decode("gzip", &metrics).await).unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("http_server_requests") && l.contains("/api/v1/products")),
        "no request counter for /api/v1/products"
    );
}

#[sqlx::test]
async fn the_event_stream_is_never_compressed_or_held_back(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let token = app.token("manager").await;
    let body = json!({"sku": "SSE-1", "name": "Streamed", "unit_cost": "2.50"});
    assert_eq!(
        app.post_as("/api/v1/products", &token, &body)
            .await
            .status(),
        201
    );
    let mut feed = app
        .client
        .get(app.url("/api/v1/events/stream?after=0"))
        .bearer_auth(&token)
        .header("accept-encoding", "br, gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(feed.status(), 200);
    assert!(feed.headers().get("content-encoding").is_none());
    // The stream stays open: the event must arrive on its own, not at the end.
    let mut seen = String::new();
    let arrived = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(chunk) = feed.chunk().await.unwrap() {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains("event: product.created") {
                return;
            }
        }
    })
    .await;
    assert!(arrived.is_ok(), "the first event was held back: {seen:?}");
}

#[sqlx::test]
async fn request_bodies_are_not_inflated_and_the_size_limit_holds(db: PgPool) {
    let app = TestApp::spawn(db).await;
    // A gzip body is not decompressed: the JSON parser sees gzip bytes.
    let mut gz = Vec::new();
    async_compression::tokio::bufread::GzipEncoder::new(
        &br#"{"email":"a@b.c","password":"x"}"#[..],
    )
    .read_to_end(&mut gz)
    .await
    .unwrap();
    let resp = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(gz)
        .send()
        .await
        .unwrap();
    assert_problem(resp, 400, "bad-request").await;

    // Over MAX_BODY_BYTES (1 MiB in tests): still 413, compressed when asked.
    let resp = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("content-type", "application/json")
        .header("accept-encoding", "gzip")
        .body(vec![b' '; 2 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    assert_eq!(resp.headers()["content-encoding"], "gzip");
    let problem: Value =
        serde_json::from_slice(&decode("gzip", &resp.bytes().await.unwrap()).await).unwrap();
    assert_eq!(problem["type"], "/problems/payload-too-large");
}
