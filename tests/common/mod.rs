//! Test harness: each test gets a fresh migrated database (from `#[sqlx::test]`),
//! the real application on an ephemeral port, and the Redis of the test services
//! (`REDIS_URL`, started by scripts/test.sh) under a key prefix of its own.
#![allow(dead_code)]

use std::{collections::HashMap, net::SocketAddr, time::Duration};

use inventory_api::{app, cache::Cache, config::Config, state::AppState};
use poem::{listener::TcpAcceptor, Server};
use serde_json::Value;
use sqlx::PgPool;

pub const TEST_JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123";

pub fn test_config(overrides: &[(&str, &str)]) -> Config {
    let mut env: HashMap<String, String> = HashMap::from([
        (
            "DATABASE_URL".into(),
            "postgres://unused@127.0.0.1/unused".into(),
        ),
        ("JWT_SECRET".into(), TEST_JWT_SECRET.into()),
        ("LOG_FORMAT".into(), "pretty".into()),
        ("MAX_BODY_BYTES".into(), "1048576".into()),
    ]);
    for (k, v) in overrides {
        env.insert((*k).into(), (*v).into());
    }
    Config::from_lookup(|name| env.get(name).cloned()).expect("test config is valid")
}

/// The port of the PgBouncer the application's pool goes through, from
/// `TEST_APP_THROUGH_PGBOUNCER` (scripts/test.sh sets it for a subset of the
/// suite); None: straight to PostgreSQL.
/// Every position with what it holds, as a derived table for tests' SQL
/// (`FROM {} s`): the application's own fragments (`stock::held`).
pub fn positions_held() -> String {
    use inventory_api::stock::held;
    format!(
        "(SELECT sp.id, sp.product_id, sp.warehouse_id, sp.location_id, sp.lot_id,
                 {quantity} AS quantity, {updated_at} AS updated_at
          FROM stock_positions sp {join_level})",
        quantity = held::quantity("sp", "lv"),
        updated_at = held::updated_at("sp", "lv"),
        join_level = held::join_level("sp", "lv"),
    )
}

pub fn pgbouncer_port() -> Option<String> {
    std::env::var("TEST_APP_THROUGH_PGBOUNCER")
        .ok()
        .filter(|p| !p.is_empty())
}

/// With [`pgbouncer_port`], the application's pool reaches the test database
/// through that PgBouncer, built by the service's own `db::pool_from_url` with
/// the configured pool size and session limits (which PgBouncer drops: the
/// role it logs in as carries them, see scripts/test.sh); the harness and
/// the fixtures keep their direct connection (PgBouncer would hold the test
/// database open and the harness could not drop it).
fn through_pgbouncer(db: &PgPool, config: &Config) -> PgPool {
    let Some(port) = pgbouncer_port() else {
        return db.clone();
    };
    let options = db.connect_options();
    // Only a harness database; a pool a test points elsewhere on purpose stays.
    if !options
        .get_database()
        .is_some_and(|d| d.starts_with("_sqlx_test"))
    {
        return db.clone();
    }
    let url = format!(
        "postgres://{}@127.0.0.1:{port}/{}",
        options.get_username(),
        options
            .get_database()
            .expect("the test pool names its database")
    );
    inventory_api::db::pool_from_url(&url, config.database_max_connections, config.session_limits)
        .expect("a valid PgBouncer URL")
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    /// The fixtures' direct pool.
    pub db: PgPool,
    /// The application's pool: `db`, or a pool through PgBouncer.
    pub app_db: PgPool,
    pub cache: Cache,
}

impl TestApp {
    /// The app on `db`, with Redis when REDIS_URL is set.
    pub async fn spawn(db: PgPool) -> Self {
        let cache = match std::env::var("REDIS_URL") {
            Ok(url) if !url.is_empty() => {
                let prefix = format!("test:{}:", uuid::Uuid::new_v4());
                let cache = Cache::connect(&url, &prefix).expect("valid REDIS_URL");
                assert!(
                    cache.wait_connected(Duration::from_secs(5)).await,
                    "REDIS_URL is set but Redis does not answer"
                );
                cache
            }
            _ => Cache::disabled(),
        };
        Self::spawn_with(db, cache, test_config(&[])).await
    }

    pub async fn spawn_with(db: PgPool, cache: Cache, config: Config) -> Self {
        let app_db = through_pgbouncer(&db, &config);
        Self::start(db, app_db.clone(), app_db, cache, config).await
    }

    /// The app with heavy read-only work (`AppState::read_db`) sent to `read_db`.
    pub async fn spawn_with_read_pool(
        db: PgPool,
        read_db: PgPool,
        cache: Cache,
        config: Config,
    ) -> Self {
        let app_db = through_pgbouncer(&db, &config);
        Self::start(db, app_db, read_db, cache, config).await
    }

    /// `db` stays the fixtures' direct pool; the app uses `app_db`/`read_db`.
    async fn start(
        db: PgPool,
        app_db: PgPool,
        read_db: PgPool,
        cache: Cache,
        config: Config,
    ) -> Self {
        // Quiet by default; TEST_LOG=1 shows the service's logs.
        if std::env::var("TEST_LOG").is_ok() {
            inventory_api::telemetry::init_logging(config.log_format);
        }
        let state = AppState::new(app_db.clone(), cache.clone(), config).with_read_pool(read_db);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind an ephemeral port");
        let addr = listener.local_addr().expect("local addr");
        let acceptor = TcpAcceptor::from_tokio(listener).expect("acceptor");
        let endpoint = app::build(state);
        tokio::spawn(async move {
            let _ = Server::new_with_acceptor(acceptor).run(endpoint).await;
        });
        Self {
            addr,
            client: reqwest::Client::new(),
            db,
            app_db,
            cache,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request sent")
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request sent")
    }
}

/// The JSON body of an answer whose status `accept` takes; another status,
/// or a body that is not JSON, fails with the body shown.
async fn answer_json(
    resp: reqwest::Response,
    what: &str,
    accept: fn(reqwest::StatusCode) -> bool,
) -> Value {
    let status = resp.status();
    let body = resp.text().await.expect("a readable body");
    assert!(accept(status), "{what}: {status} {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{what}: {e}: {body}"))
}

/// Asserts a problem+json answer with `status` and a `type` ending in `slug`; returns the body.
pub async fn assert_problem(resp: reqwest::Response, status: u16, slug: &str) -> Value {
    let got = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body: Value = resp.json().await.expect("problem body is JSON");
    assert_eq!(got, status, "unexpected status; body: {body}");
    assert_eq!(content_type, "application/problem+json", "body: {body}");
    assert_eq!(body["status"], status, "body: {body}");
    let kind = body["type"].as_str().unwrap_or_default();
    assert!(
        kind.ends_with(&format!("/{slug}")),
        "type {kind:?} is not {slug}; body: {body}"
    );
    assert!(
        body["title"].is_string() && body["detail"].is_string(),
        "body: {body}"
    );
    body
}

/// A user created for a test, with the password in clear.
pub struct TestUser {
    pub id: uuid::Uuid,
    pub email: String,
    pub password: String,
}

pub const TEST_PASSWORD: &str = "correct horse battery staple";

impl TestApp {
    /// Inserts a user with `role` directly (hashing as the service does).
    pub async fn create_user(&self, role: &str) -> TestUser {
        let email = format!(
            "{role}-{}@example.com",
            &uuid::Uuid::new_v4().to_string()[..8]
        );
        let hash = inventory_api::auth::password::hash(TEST_PASSWORD.to_owned())
            .await
            .unwrap();
        let id = sqlx::query_scalar(
            "INSERT INTO users (email, display_name, role, password_hash) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(&email)
        .bind(role)
        .bind(role)
        .bind(hash)
        .fetch_one(&self.db)
        .await
        .unwrap();
        TestUser {
            id,
            email,
            password: TEST_PASSWORD.to_owned(),
        }
    }

    pub async fn login(&self, email: &str, password: &str) -> reqwest::Response {
        self.post_json(
            "/api/v1/auth/login",
            &serde_json::json!({"email": email, "password": password}),
        )
        .await
    }

    /// Creates a user with `role`, signs in, returns the access token.
    pub async fn token(&self, role: &str) -> String {
        let user = self.create_user(role).await;
        let resp = self.login(&user.email, &user.password).await;
        assert_eq!(resp.status(), 200, "login as {role}");
        let body: Value = resp.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    pub fn with_token(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
    ) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(token)
    }

    pub async fn get_as(&self, path: &str, token: &str) -> reqwest::Response {
        self.with_token(reqwest::Method::GET, path, token)
            .send()
            .await
            .unwrap()
    }

    /// GET as `token`, asserting 200; the body as JSON. A failure shows the
    /// answer (a problem body read as data would only show up as nulls).
    pub async fn get_ok(&self, path: &str, token: &str) -> Value {
        let resp = self.get_as(path, token).await;
        answer_json(resp, &format!("GET {path}"), |s| s == 200).await
    }

    /// POST as `token`, asserting a 2xx answer; its body as JSON (a failure
    /// shows the answer, as [`Self::get_ok`] does).
    pub async fn post_ok(&self, path: &str, token: &str, body: &Value) -> Value {
        let resp = self.post_as(path, token, body).await;
        answer_json(resp, &format!("POST {path}"), |s| s.is_success()).await
    }

    pub async fn post_as(&self, path: &str, token: &str, body: &Value) -> reqwest::Response {
        self.with_token(reqwest::Method::POST, path, token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn patch_as(&self, path: &str, token: &str, body: &Value) -> reqwest::Response {
        self.with_token(reqwest::Method::PATCH, path, token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn delete_as(&self, path: &str, token: &str) -> reqwest::Response {
        self.with_token(reqwest::Method::DELETE, path, token)
            .send()
            .await
            .unwrap()
    }

    /// Inserts an active warehouse directly.
    pub async fn create_warehouse_sql(&self, code: &str) -> uuid::Uuid {
        sqlx::query_scalar("INSERT INTO warehouses (code, name) VALUES ($1, $1) RETURNING id")
            .bind(code)
            .bind(code)
            .fetch_one(&self.db)
            .await
            .unwrap()
    }

    /// Registers a scanner device through the API; returns (id, key).
    pub async fn create_device(
        &self,
        manager_token: &str,
        warehouse_ids: &[uuid::Uuid],
    ) -> (uuid::Uuid, String) {
        let resp = self
            .post_as(
                "/api/v1/scanner/devices",
                manager_token,
                &serde_json::json!({"name": "handheld", "warehouse_ids": warehouse_ids}),
            )
            .await;
        assert_eq!(resp.status(), 201);
        let body: Value = resp.json().await.unwrap();
        (
            body["id"].as_str().unwrap().parse().unwrap(),
            body["api_key"].as_str().unwrap().to_owned(),
        )
    }
}

/// Holds the row lock of the (product, warehouse) level in another session.
pub async fn hold_level_lock(
    db: &PgPool,
    product: uuid::Uuid,
    warehouse: uuid::Uuid,
) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let mut tx = db.begin().await.unwrap();
    sqlx::query(
        "SELECT 1 FROM stock_levels WHERE product_id = $1 AND warehouse_id = $2 FOR UPDATE",
    )
    .bind(product)
    .bind(warehouse)
    .execute(&mut *tx)
    .await
    .unwrap();
    tx
}
