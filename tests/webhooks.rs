//! Webhooks against real local HTTP receivers: admin API, signatures, retries,
//! per-product order, a replica dying mid-delivery, a slow endpoint, SSRF.

mod common;

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use base64::{engine::general_purpose::STANDARD, Engine as _};
use common::{assert_problem, TestApp};
use hmac::{Hmac, Mac};
use inventory_api::{
    cache::Cache,
    config::Config,
    events,
    webhooks::worker::{self, Worker},
};
use poem::{handler, http::StatusCode, web::Data, EndpointExt, Request, Route};
use serde_json::{json, Value};
use sha2::Sha256;
use sqlx::PgPool;
use uuid::Uuid;

/// What a receiver does with a request.
#[derive(Clone, Copy)]
enum Behaviour {
    Ok,
    /// Answers 500 to the first `n` attempts of each message, then 200.
    FailEachTimes(usize),
    /// Answers 500 always.
    Fail,
    /// Waits this long, then 200.
    Slow(Duration),
    /// The very first request hangs for a minute; every later one is 200.
    HangFirst,
}

#[derive(Debug, Clone)]
struct Received {
    msg_id: String,
    timestamp: String,
    signature: String,
    body: String,
    answered: u16,
}

struct Rx {
    behaviour: Mutex<Behaviour>,
    seen: Mutex<Vec<Received>>,
    attempts: Mutex<HashMap<String, usize>>,
}

#[handler]
async fn receive(req: &Request, body: String, rx: Data<&Arc<Rx>>) -> StatusCode {
    let header = |n: &str| {
        req.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let msg_id = header("webhook-id");
    let attempt = {
        let mut a = rx.attempts.lock().unwrap();
        let n = a.entry(msg_id.clone()).or_default();
        *n += 1;
        *n
    };
    let first_request = attempt == 1 && rx.seen.lock().unwrap().is_empty();
    let behaviour = *rx.behaviour.lock().unwrap();
    let status = match behaviour {
        Behaviour::Ok => StatusCode::OK,
        Behaviour::FailEachTimes(n) if attempt <= n => StatusCode::INTERNAL_SERVER_ERROR,
        Behaviour::FailEachTimes(_) => StatusCode::NO_CONTENT,
        Behaviour::Fail => StatusCode::INTERNAL_SERVER_ERROR,
        Behaviour::Slow(d) => {
            tokio::time::sleep(d).await;
            StatusCode::OK
        }
        Behaviour::HangFirst if first_request => {
            rx.seen.lock().unwrap().push(Received {
                msg_id: msg_id.clone(),
                timestamp: String::new(),
                signature: String::new(),
                body: body.clone(),
                answered: 0,
            });
            tokio::time::sleep(Duration::from_secs(60)).await;
            StatusCode::OK
        }
        Behaviour::HangFirst => StatusCode::OK,
    };
    rx.seen.lock().unwrap().push(Received {
        msg_id,
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        body,
        answered: status.as_u16(),
    });
    status
}

/// A local HTTP receiver on an ephemeral port.
struct Receiver {
    url: String,
    rx: Arc<Rx>,
}

impl Receiver {
    async fn start(behaviour: Behaviour) -> Self {
        let rx = Arc::new(Rx {
            behaviour: Mutex::new(behaviour),
            seen: Mutex::default(),
            attempts: Mutex::default(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Route::new()
            .at("/hook", poem::post(receive))
            .data(rx.clone());
        let acceptor = poem::listener::TcpAcceptor::from_tokio(listener).unwrap();
        tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(app));
        Self {
            url: format!("http://{addr}/hook"),
            rx,
        }
    }

    fn set(&self, behaviour: Behaviour) {
        *self.rx.behaviour.lock().unwrap() = behaviour;
    }

    /// Requests answered 2xx, in arrival order.
    fn accepted(&self) -> Vec<Received> {
        self.rx
            .seen
            .lock()
            .unwrap()
            .iter()
            .filter(|r| (200..300).contains(&r.answered))
            .cloned()
            .collect()
    }

    fn requests(&self) -> usize {
        self.rx.seen.lock().unwrap().len()
    }
}

fn config(extra: &[(&str, &str)]) -> Config {
    let mut all = vec![
        ("WEBHOOK_ALLOW_PRIVATE_TARGETS", "true"),
        ("WEBHOOK_RETRY_BASE_MS", "50"),
    ];
    all.extend_from_slice(extra);
    common::test_config(&all)
}

/// The app (allowing local receivers) and an admin token.
async fn app_with(db: PgPool, cfg: Config) -> (TestApp, String) {
    let app = TestApp::spawn_with(db, Cache::disabled(), cfg).await;
    let token = app.token("admin").await;
    (app, token)
}

fn start_worker(db: &PgPool, cfg: &Config) -> tokio::task::JoinHandle<()> {
    tokio::spawn(Worker::new(db.clone(), cfg.webhooks.clone()).unwrap().run())
}

async fn create_webhook(app: &TestApp, token: &str, url: &str, events: &[&str]) -> (Uuid, String) {
    let resp = app
        .post_as(
            "/api/v1/webhooks",
            token,
            &json!({"url": url, "events": events, "description": "test"}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let body: Value = resp.json().await.unwrap();
    (
        body["id"].as_str().unwrap().parse().unwrap(),
        body["secret"].as_str().unwrap().to_owned(),
    )
}

/// Products with a few receipts each, through the API: 3 × 4 stock events.
async fn movements(app: &TestApp, token: &str, products: usize, receipts: usize) -> Vec<Uuid> {
    let wh = app.create_warehouse_sql("WH-HOOK").await;
    let mut ids = Vec::new();
    for n in 0..products {
        let p: Value = app
            .post_ok(
                "/api/v1/products",
                token,
                &json!({"sku": format!("HOOK-{n}"), "name": "Hooked"}),
            )
            .await;
        ids.push(p["id"].as_str().unwrap().parse().unwrap());
    }
    for r in 0..receipts {
        for p in &ids {
            let body = json!({"product_id": p, "warehouse_id": wh, "quantity": r + 1});
            let resp = app.post_as("/api/v1/stock/receive", token, &body).await;
            assert_eq!(resp.status(), 201);
        }
    }
    ids
}

/// Verifies a Standard Webhooks signature independently of the service's code.
fn verify(secret: &str, r: &Received) -> bool {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.{}", r.msg_id, r.timestamp, r.body).as_bytes());
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    r.signature.split(' ').any(|s| s == expected)
}

async fn eventually(what: &str, secs: u64, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} within {secs} s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// balance_after per product must grow by each event's quantity, in arrival order.
fn assert_per_product_order(accepted: &[Received]) {
    let mut balance: HashMap<String, i64> = HashMap::new();
    for r in accepted {
        let body: Value = serde_json::from_str(&r.body).unwrap();
        let data = &body["data"];
        let b = balance
            .entry(data["product_id"].as_str().unwrap().to_owned())
            .or_insert(0);
        assert_eq!(
            *b + data["quantity"].as_i64().unwrap(),
            data["balance_after"].as_i64().unwrap(),
            "events of one product arrive in order"
        );
        *b = data["balance_after"].as_i64().unwrap();
    }
}

#[sqlx::test]
async fn admins_manage_webhooks_and_the_secret_is_shown_once(db: PgPool) {
    let (app, token) = app_with(db, config(&[])).await;
    let rx = Receiver::start(Behaviour::Ok).await;
    let (id, secret) = create_webhook(&app, &token, &rx.url, &["stock.*"]).await;
    assert!(secret.starts_with("whsec_"));
    assert_eq!(STANDARD.decode(&secret[6..]).unwrap().len(), 32);

    let got: Value = app.get_ok(&format!("/api/v1/webhooks/{id}"), &token).await;
    assert_eq!(got["events"], json!(["stock.*"]));
    assert!(got.get("secret").is_none(), "the secret is shown only once");
    let list: Value = app.get_ok("/api/v1/webhooks", &token).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert!(list["items"][0].get("secret").is_none());

    let patched: Value = app
        .patch_as(
            &format!("/api/v1/webhooks/{id}"),
            &token,
            &json!({"events": ["product.*", "count.completed"], "active": false}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(patched["events"], json!(["product.*", "count.completed"]));
    assert_eq!(patched["active"], false);

    let bad = app
        .post_as(
            "/api/v1/webhooks",
            &token,
            &json!({"url": rx.url, "events": ["stock.%"]}),
        )
        .await;
    assert_problem(bad, 422, "validation").await;
    let bad = app
        .post_as(
            "/api/v1/webhooks",
            &token,
            &json!({"url": "ftp://example.com/x", "events": ["*"]}),
        )
        .await;
    assert_problem(bad, 422, "validation").await;

    let clerk = app.token("manager").await;
    assert_eq!(app.get_as("/api/v1/webhooks", &clerk).await.status(), 403);

    assert_eq!(
        app.delete_as(&format!("/api/v1/webhooks/{id}"), &token)
            .await
            .status(),
        204
    );
    let gone = app.get_as(&format!("/api/v1/webhooks/{id}"), &token).await;
    assert_problem(gone, 404, "not-found").await;
}

#[sqlx::test]
async fn private_targets_are_refused_by_default_on_save_and_at_delivery(db: PgPool) {
    let strict = common::test_config(&[]);
    let (app, token) = app_with(db.clone(), strict.clone()).await;
    for url in [
        "http://127.0.0.1:9/hook",
        "http://localhost:9/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://10.0.0.7/hook",
    ] {
        let resp = app
            .post_as(
                "/api/v1/webhooks",
                &token,
                &json!({"url": url, "events": ["*"]}),
            )
            .await;
        let problem = assert_problem(resp, 422, "validation").await;
        assert!(problem.to_string().contains("private"), "{url}: {problem}");
    }

    // Saved while private targets were allowed, delivered by a worker that
    // does not allow them: refused at delivery time, nothing is sent.
    let rx = Receiver::start(Behaviour::Ok).await;
    let lax = TestApp::spawn_with(db.clone(), Cache::disabled(), config(&[])).await;
    let (id, _) = create_webhook(&lax, &token, &rx.url, &["*"]).await;
    let worker = start_worker(&db, &strict);
    movements(&app, &token, 1, 1).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let page: Value = app
            .get_ok(&format!("/api/v1/webhooks/{id}/deliveries"), &token)
            .await;
        // The product's first event was attempted (its later ones wait for it).
        let tried = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["attempts"].as_i64() >= Some(1));
        if let Some(d) = tried {
            assert!(
                d["last_error"].as_str().unwrap().contains("target refused"),
                "{d}"
            );
            assert_eq!(d["status"], "pending", "refusals are retried like failures");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "attempted: {page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(rx.requests(), 0, "no request reached the private target");
    worker.abort();
}

#[sqlx::test]
async fn a_flaky_receiver_gets_every_event_once_signed_and_in_order_per_product(db: PgPool) {
    let cfg = config(&[]);
    let (app, token) = app_with(db.clone(), cfg.clone()).await;
    let rx = Receiver::start(Behaviour::FailEachTimes(2)).await;
    let (id, secret) = create_webhook(&app, &token, &rx.url, &["stock.*"]).await;
    let worker = start_worker(&db, &cfg);
    movements(&app, &token, 3, 4).await;

    eventually("12 stock events accepted", 30, || rx.accepted().len() >= 12).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let accepted = rx.accepted();
    assert_eq!(accepted.len(), 12, "product.* events are filtered out");
    let ids: HashSet<_> = accepted.iter().map(|r| r.msg_id.clone()).collect();
    assert_eq!(ids.len(), 12, "each event accepted exactly once");
    for r in &accepted {
        assert!(verify(&secret, r), "signature verifies: {r:?}");
        let body: Value = serde_json::from_str(&r.body).unwrap();
        assert!(body["type"].as_str().unwrap().starts_with("stock."));
    }
    assert_per_product_order(&accepted);

    let page: Value = app
        .get_ok(&format!("/api/v1/webhooks/{id}/deliveries"), &token)
        .await;
    for d in page["items"].as_array().unwrap() {
        assert_eq!(d["status"], "delivered");
        assert_eq!(d["attempts"], 3, "two failures, then success");
        assert_eq!(d["last_status_code"], 204);
    }
    worker.abort();
}

#[sqlx::test]
async fn a_slow_receiver_does_not_delay_the_others(db: PgPool) {
    let cfg = config(&[("WEBHOOK_TIMEOUT_SECONDS", "30")]);
    let (app, token) = app_with(db.clone(), cfg.clone()).await;
    let slow = Receiver::start(Behaviour::Slow(Duration::from_secs(20))).await;
    let fast = Receiver::start(Behaviour::Ok).await;
    create_webhook(&app, &token, &slow.url, &["stock.*"]).await;
    create_webhook(&app, &token, &fast.url, &["stock.*"]).await;
    let worker = start_worker(&db, &cfg);
    movements(&app, &token, 10, 1).await;
    // The slow endpoint holds PER_ENDPOINT requests for 20 s; the fast one
    // still gets all 10 events long before.
    eventually("the fast receiver got every event", 8, || {
        fast.accepted().len() == 10
    })
    .await;
    assert!(slow.accepted().is_empty());
    worker.abort();
}

#[sqlx::test]
async fn a_replica_dying_mid_delivery_loses_nothing(db: PgPool) {
    let cfg = config(&[]);
    let (app, token) = app_with(db.clone(), cfg.clone()).await;
    let rx = Receiver::start(Behaviour::HangFirst).await;
    create_webhook(&app, &token, &rx.url, &["stock.*"]).await;
    movements(&app, &token, 2, 3).await;

    // Replica A: its own connections, marked so they can be killed.
    let options = db
        .connect_options()
        .as_ref()
        .clone()
        .application_name("replica-a");
    let pool_a = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await
        .unwrap();
    let replica_a = start_worker(&pool_a, &cfg);
    eventually("replica A is mid-delivery", 10, || rx.requests() >= 1).await;
    // The process dies: its task stops and PostgreSQL loses its sessions
    // (and with them the delivery's row lock), as on kill -9.
    replica_a.abort();
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'replica-a'",
    )
    .execute(&db)
    .await
    .unwrap();

    let replica_b = start_worker(&db, &cfg);
    eventually("replica B delivered all 6 events", 20, || {
        rx.accepted()
            .iter()
            .map(|r| r.msg_id.clone())
            .collect::<HashSet<_>>()
            .len()
            == 6
    })
    .await;
    let mut first: Vec<Received> = Vec::new();
    for r in rx.accepted() {
        if !first.iter().any(|f| f.msg_id == r.msg_id) {
            first.push(r);
        }
    }
    assert_per_product_order(&first);
    // The receiver has answered; the worker records each answer right after,
    // so on a busy machine the last one may still be on its way.
    let mut pending: i64 = -1;
    for _ in 0..100 {
        pending = sqlx::query_scalar(
            "SELECT count(*) FROM webhook_deliveries WHERE status <> 'delivered'",
        )
        .fetch_one(&db)
        .await
        .unwrap();
        if pending == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(pending, 0, "every delivery is recorded as delivered");
    replica_b.abort();
}

#[sqlx::test]
async fn an_endpoint_failing_for_three_days_is_disabled_and_says_so(db: PgPool) {
    let cfg = config(&[]);
    let (app, token) = app_with(db.clone(), cfg.clone()).await;
    let rx = Receiver::start(Behaviour::Fail).await;
    let (id, _) = create_webhook(&app, &token, &rx.url, &["stock.*"]).await;
    sqlx::query(
        "UPDATE webhooks SET failing_since = now() - interval '3 days 1 minute' WHERE id = $1",
    )
    .bind(id)
    .execute(&db)
    .await
    .unwrap();
    let worker = start_worker(&db, &cfg);
    movements(&app, &token, 1, 1).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let w = loop {
        let w: Value = app.get_ok(&format!("/api/v1/webhooks/{id}"), &token).await;
        if w["active"] == false {
            break w;
        }
        assert!(tokio::time::Instant::now() < deadline, "disabled: {w}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(w["disabled_reason"]
        .as_str()
        .unwrap()
        .contains("disabled automatically"));
    // Re-enabling clears the marks.
    let w: Value = app
        .patch_as(
            &format!("/api/v1/webhooks/{id}"),
            &token,
            &json!({"active": true}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(w["active"], true);
    assert!(w["disabled_reason"].is_null() && w["failing_since"].is_null());
    worker.abort();
}

#[sqlx::test]
async fn failed_deliveries_are_listed_and_can_be_retried_and_pinged(db: PgPool) {
    // Retries run out at once: the first failure marks the delivery failed.
    let cfg = config(&[("WEBHOOK_RETRY_FOR_SECONDS", "0")]);
    let (app, token) = app_with(db.clone(), cfg.clone()).await;
    let rx = Receiver::start(Behaviour::Fail).await;
    let (id, secret) = create_webhook(&app, &token, &rx.url, &["stock.receipt"]).await;
    let worker = start_worker(&db, &cfg);
    movements(&app, &token, 1, 1).await;
    let path = format!("/api/v1/webhooks/{id}/deliveries");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let failed = loop {
        let page: Value = app.get_ok(&path, &token).await;
        if page["items"][0]["status"] == "failed" {
            break page["items"][0].clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "failed: {page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(failed["attempts"], 1);
    assert_eq!(failed["last_status_code"], 500);
    assert!(failed["last_attempt_at"].is_string());

    rx.set(Behaviour::Ok);
    let retry = app
        .post_as(
            &format!("{path}/{}/retry", failed["id"].as_str().unwrap()),
            &token,
            &json!({}),
        )
        .await;
    assert_eq!(retry.status(), 202);
    eventually("the retried delivery arrives", 10, || {
        rx.accepted().len() == 1
    })
    .await;
    let unknown = app
        .post_as(
            &format!("{path}/{}/retry", Uuid::new_v4()),
            &token,
            &json!({}),
        )
        .await;
    assert_problem(unknown, 404, "not-found").await;

    let ping = app
        .post_as(&format!("/api/v1/webhooks/{id}/ping"), &token, &json!({}))
        .await;
    assert_eq!(ping.status(), 200);
    let ping: Value = ping.json().await.unwrap();
    assert_eq!(ping["topic"], "webhook.ping");
    assert_eq!(ping["status"], "delivered");
    let got = rx.accepted();
    assert!(verify(&secret, got.last().unwrap()));
    worker.abort();
}

/// The fan-out passes over 1,100 events in batches of 500, consuming every
/// event but queueing only those a webhook's filters match (an inactive
/// webhook gets nothing), each once and in position order.
#[sqlx::test]
async fn the_fan_out_queues_exactly_the_matching_events_batch_by_batch(db: PgPool) {
    let (app, token) = app_with(db.clone(), config(&[])).await;
    let rx = Receiver::start(Behaviour::Ok).await;
    let (receipts, _) = create_webhook(&app, &token, &rx.url, &["stock.receipt"]).await;
    let (products, _) = create_webhook(&app, &token, &rx.url, &["product.*"]).await;
    let (off, _) = create_webhook(&app, &token, &rx.url, &["*"]).await;
    sqlx::query("UPDATE webhooks SET active = false WHERE id = $1")
        .bind(off)
        .execute(&db)
        .await
        .unwrap();
    let retry_for = Duration::from_secs(60);
    // Whatever the setup itself emitted goes first.
    while events::sequence(&db).await.unwrap() > 0 {}
    while worker::fan_out(&db, retry_for).await.unwrap() > 0 {}
    let before: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook_deliveries")
        .fetch_one(&db)
        .await
        .unwrap();

    sqlx::query(
        "INSERT INTO outbox (topic, aggregate_id, payload)
         SELECT CASE WHEN g % 2 = 0 THEN 'stock.receipt' ELSE 'stock.issue' END,
                gen_random_uuid(), jsonb_build_object('n', g)
         FROM generate_series(1, 1100) g ORDER BY g",
    )
    .execute(&db)
    .await
    .unwrap();
    while events::sequence(&db).await.unwrap() > 0 {}
    let mut passes = Vec::new();
    loop {
        let n = worker::fan_out(&db, retry_for).await.unwrap();
        passes.push(n);
        if n == 0 {
            break;
        }
    }
    assert_eq!(passes, [500, 500, 100, 0]);

    let queued: Vec<(Uuid, String, i64)> = sqlx::query_as(
        "SELECT webhook_id, topic, (payload->>'n')::bigint FROM webhook_deliveries
         ORDER BY position OFFSET $1",
    )
    .bind(before)
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(
        queued.len(),
        550,
        "one delivery per receipt, none for issues"
    );
    assert!(queued
        .iter()
        .all(|(w, t, _)| *w == receipts && t == "stock.receipt"));
    assert!(!queued.iter().any(|(w, ..)| *w == products || *w == off));
    let ns: Vec<i64> = queued.iter().map(|q| q.2).collect();
    assert_eq!(ns, (1..=1100).filter(|g| g % 2 == 0).collect::<Vec<i64>>());
}
