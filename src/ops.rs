//! Operational endpoints: liveness and readiness. They need no credentials so
//! orchestrators and load balancers can call them.

use std::time::Duration;

use poem::web::Data;
use poem_openapi::{payload::Json, ApiResponse, Object, OpenApi};

use crate::{cache::RedisState, state::AppState, telemetry, Tags};

pub struct OpsApi;

/// Liveness answer.
#[derive(Debug, Object)]
pub struct Health {
    /// Always `ok` when the process can answer.
    pub status: String,
    /// The running version.
    pub version: String,
}

/// Readiness answer: the state of each dependency.
#[derive(Debug, Object)]
pub struct Readiness {
    /// `ok` when the service can serve requests, else `unavailable`.
    pub status: String,
    /// `ok` or `down`.
    pub database: String,
    /// `ok`, `down` or `disabled` (REDIS_URL unset). Redis being down does not
    /// make the service unready: it serves from PostgreSQL.
    pub redis: String,
}

#[derive(ApiResponse)]
pub enum ReadyResponse {
    /// PostgreSQL answers; the service can take traffic.
    #[oai(status = 200)]
    Ready(Json<Readiness>),
    /// PostgreSQL does not answer; take this replica out of rotation.
    #[oai(status = 503)]
    NotReady(Json<Readiness>),
}

/// How long readiness waits for PostgreSQL before calling it down.
const DB_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Checks PostgreSQL with a short timeout.
pub async fn database_ok(db: &sqlx::PgPool) -> bool {
    let check = sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(db);
    match tokio::time::timeout(DB_CHECK_TIMEOUT, check).await {
        Ok(Ok(one)) => one == 1,
        Ok(Err(e)) => {
            crate::db::note_if_lost(&e);
            false
        }
        Err(_) => false,
    }
}

#[OpenApi(tag = "Tags::Ops")]
impl OpsApi {
    /// Liveness: the process is up.
    #[oai(path = "/health", method = "get", operation_id = "getHealth")]
    async fn health(&self) -> Json<Health> {
        Json(Health {
            status: "ok".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        })
    }

    /// Readiness: PostgreSQL is reachable (503 otherwise); Redis state is reported.
    #[oai(path = "/ready", method = "get", operation_id = "getReadiness")]
    async fn ready(&self, state: Data<&AppState>) -> ReadyResponse {
        let (db_ok, redis) = tokio::join!(database_ok(&state.db), state.cache.state());
        let metrics = telemetry::metrics();
        metrics.db_up.record(i64::from(db_ok), &[]);
        metrics
            .redis_up
            .record(i64::from(redis == RedisState::Ok), &[]);
        let body = Readiness {
            status: if db_ok { "ok" } else { "unavailable" }.into(),
            database: if db_ok { "ok" } else { "down" }.into(),
            redis: redis.as_str().into(),
        };
        if db_ok {
            ReadyResponse::Ready(Json(body))
        } else {
            ReadyResponse::NotReady(Json(body))
        }
    }
}
