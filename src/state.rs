//! The state every handler shares: pool, cache, configuration, auth state.
//! It sits at the bottom of the module graph: domains import it, and only
//! `app.rs` (which imports every domain) assembles routes on top of it.

use std::sync::Arc;

use sqlx::PgPool;

use crate::{auth::principal::AuthState, cache::Cache, config::Config};

/// Everything a handler may need; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The primary: every write, and every read that must see the caller's
    /// own writes (a movement's answer, GET by id, idempotency replays).
    pub db: PgPool,
    /// Heavy read-only work that may lag the primary by the replication delay:
    /// CSV export and transaction listing (future valuation and `as_of`
    /// reports belong here too). The primary pool itself unless
    /// `DATABASE_READ_URL` is set; see `with_read_pool`.
    pub read_db: PgPool,
    pub cache: Cache,
    pub config: Arc<Config>,
    pub auth: Arc<AuthState>,
    /// Barcode lookup answers (JSON) held in process for a few seconds in front
    /// of Redis: the hottest read of a scanner-driven warehouse.
    pub barcode_answers: Arc<crate::cache::LocalCache<String, Arc<str>>>,
    /// Flips to true when the server starts shutting down, so endless
    /// responses (the SSE feed) end instead of holding shutdown open.
    shutdown: Arc<tokio::sync::watch::Sender<bool>>,
}

impl AppState {
    pub fn new(db: PgPool, cache: Cache, config: Config) -> Self {
        Self {
            auth: Arc::new(AuthState::new(&config)),
            barcode_answers: Arc::new(crate::cache::LocalCache::new(
                config.cache_ttl.min(crate::catalog::LOCAL_LOOKUP_TTL),
            )),
            read_db: db.clone(),
            db,
            cache,
            config: Arc::new(config),
            shutdown: Arc::new(tokio::sync::watch::channel(false).0),
        }
    }

    /// Sends the heavy read-only work (`read_db`) to `pool`, e.g. a replica.
    pub fn with_read_pool(mut self, pool: PgPool) -> Self {
        self.read_db = pool;
        self
    }

    /// Tells long-lived responses to finish.
    pub fn begin_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// Resolves once shutdown has begun.
    pub fn shutting_down(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.shutdown.subscribe();
        async move {
            let _ = rx.wait_for(|down| *down).await;
        }
    }
}
