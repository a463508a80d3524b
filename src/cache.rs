//! Redis access for everything that can be rebuilt: cached reads, rate-limit
//! counters and the live event stream.
//!
//! Redis is optional and may die at any time. Every call here has a short
//! timeout and turns failure into "no answer" (a cache miss, no counter), so the
//! API keeps serving from PostgreSQL. Nothing that must not be lost is ever
//! written only to Redis. This module does not decide what to cache; domains do.

use std::{
    collections::HashMap,
    hash::Hash,
    sync::{Arc, Mutex, RwLock},
    time::{Duration, Instant},
};

use redis::{aio::ConnectionManager, AsyncCommands};
use serde::{de::DeserializeOwned, Serialize};

/// How long a Redis call may take before we carry on without it.
const CALL_TIMEOUT: Duration = Duration::from_millis(250);

/// How many times its freshness a value of [`Cache::computed_once`] is kept,
/// to be served while it is being recomputed.
const STALE_FOR: u32 = 6;

/// A value of [`Cache::computed_once`] and when it was computed.
#[derive(serde::Serialize, serde::Deserialize)]
struct Stamped<T> {
    at_ms: i64,
    value: T,
}

impl<T> Stamped<T> {
    fn younger_than(&self, age: Duration) -> bool {
        unix_ms() - self.at_ms < age.as_millis() as i64
    }
}

/// Wall-clock milliseconds: the age of a value computed by another replica.
fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisState {
    Ok,
    Down,
    Disabled,
}

impl RedisState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Down => "down",
            Self::Disabled => "disabled",
        }
    }
}

#[derive(Clone)]
pub struct Cache {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    /// Prepended to every key, so deployments (and parallel tests) sharing one
    /// Redis never read each other's entries.
    prefix: String,
    client: redis::Client,
    // Filled by the connector task once Redis answers; ConnectionManager then
    // reconnects by itself.
    conn: RwLock<Option<ConnectionManager>>,
}

impl Cache {
    /// A cache that never stores anything (REDIS_URL unset).
    pub fn disabled() -> Self {
        Self { inner: None }
    }

    /// Starts connecting in the background; until Redis answers every call is a miss.
    pub fn connect(url: &str, prefix: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url)?;
        let inner = Arc::new(Inner {
            prefix: prefix.to_owned(),
            client,
            conn: RwLock::new(None),
        });
        let weak = Arc::downgrade(&inner);
        tokio::spawn(async move {
            loop {
                let Some(inner) = weak.upgrade() else { return };
                let config = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(Duration::from_secs(2)))
                    .set_response_timeout(Some(Duration::from_secs(1)))
                    .set_number_of_retries(2);
                match ConnectionManager::new_with_config(inner.client.clone(), config).await {
                    Ok(conn) => {
                        *inner.conn.write().expect("lock not poisoned") = Some(conn);
                        tracing::info!("connected to Redis");
                        return;
                    }
                    Err(e) => tracing::warn!(error = %e, "Redis unavailable; retrying in 5 s"),
                }
                drop(inner);
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        });
        Ok(Self { inner: Some(inner) })
    }

    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    fn key(&self, key: &str) -> String {
        match &self.inner {
            Some(inner) => format!("{}{key}", inner.prefix),
            None => key.to_owned(),
        }
    }

    /// Waits up to `timeout` for the first connection (tests, start-up logs).
    pub async fn wait_connected(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while tokio::time::Instant::now() < deadline {
            if self.conn().is_some() || self.inner.is_none() {
                return self.inner.is_some();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    fn conn(&self) -> Option<ConnectionManager> {
        self.inner
            .as_ref()?
            .conn
            .read()
            .expect("lock not poisoned")
            .clone()
    }

    /// Runs one Redis call with the timeout; any failure is logged and becomes None.
    async fn call<T, F, Fut>(&self, what: &'static str, f: F) -> Option<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let conn = self.conn()?;
        match tokio::time::timeout(CALL_TIMEOUT, f(conn)).await {
            Ok(Ok(v)) => Some(v),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, op = what, "Redis call failed");
                None
            }
            Err(_) => {
                tracing::warn!(op = what, "Redis call timed out");
                None
            }
        }
    }

    pub async fn state(&self) -> RedisState {
        if self.inner.is_none() {
            return RedisState::Disabled;
        }
        let pong: Option<String> = self
            .call("ping", |mut c| async move {
                redis::cmd("PING").query_async(&mut c).await
            })
            .await;
        match pong {
            Some(_) => RedisState::Ok,
            None => RedisState::Down,
        }
    }

    /// A cached value as stored, recording hit/miss under `cache` for the metrics.
    pub async fn get_raw(&self, cache: &'static str, key: &str) -> Option<String> {
        if !self.is_enabled() {
            return None;
        }
        let key = self.key(key);
        let raw: Option<Option<String>> = self
            .call("get", |mut c| async move { c.get(key).await })
            .await;
        let value = raw.flatten();
        record_lookup(cache, value.is_some());
        value
    }

    /// A cached JSON value (see [`Cache::get_raw`]).
    pub async fn get_json<T: DeserializeOwned>(&self, cache: &'static str, key: &str) -> Option<T> {
        self.get_raw(cache, key)
            .await
            .and_then(|raw| serde_json::from_str(&raw).ok())
    }

    pub async fn set_raw(&self, key: &str, value: &str, ttl: Duration) {
        if !self.is_enabled() {
            return;
        }
        let secs = ttl.as_secs().max(1);
        let key = self.key(key);
        let _: Option<()> = self
            .call(
                "set",
                |mut c| async move { c.set_ex(key, value, secs).await },
            )
            .await;
    }

    pub async fn set_json<T: Serialize>(&self, key: &str, value: &T, ttl: Duration) {
        if !self.is_enabled() {
            return;
        }
        let Ok(bytes) = serde_json::to_vec(value) else {
            return;
        };
        let secs = ttl.as_secs().max(1);
        let key = self.key(key);
        let _: Option<()> = self
            .call(
                "set",
                |mut c| async move { c.set_ex(key, bytes, secs).await },
            )
            .await;
    }

    /// The value cached under `key` while younger than `fresh`, or else
    /// computed by `compute` once for every replica: under a
    /// transaction-level advisory lock on the key, cached before the lock is
    /// released. For aggregates of whole tables (the business gauges, the
    /// dashboard summary: seconds at a million products), which must not run
    /// once per replica or per concurrent request. `compute` runs in that
    /// transaction.
    ///
    /// An older value is kept for [`STALE_FOR`] × `fresh` so that nobody waits
    /// for a recompute already under way: whoever finds the value old and the
    /// lock free recomputes; whoever finds the lock taken gets the old value
    /// at once. Only a missing value (first use, Redis down or flushed) makes
    /// callers wait for the one computing it (with Redis down each computes
    /// in turn).
    pub async fn computed_once<T>(
        &self,
        db: &sqlx::PgPool,
        cache: &'static str,
        key: &str,
        fresh: Duration,
        compute: impl AsyncFnOnce(&mut sqlx::PgConnection) -> Result<T, sqlx::Error>,
    ) -> Result<T, sqlx::Error>
    where
        T: Serialize + DeserializeOwned,
    {
        let cached = self.get_json::<Stamped<T>>(cache, key).await;
        let cached = match cached {
            Some(c) if c.younger_than(fresh) => return Ok(c.value),
            other => other,
        };
        let mut tx = crate::db::begin(db).await?;
        let lock = "hashtext('inventory-api:cache:' || $1)";
        match cached {
            Some(old) => {
                let locked: bool = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT pg_try_advisory_xact_lock({lock})"
                )))
                .bind(key)
                .fetch_one(&mut *tx)
                .await?;
                if !locked {
                    return Ok(old.value);
                }
            }
            None => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT pg_advisory_xact_lock({lock})"
                )))
                .bind(key)
                .execute(&mut *tx)
                .await?;
            }
        }
        // Another caller may have finished while this one took the lock.
        if let Some(hit) = self.get_json::<Stamped<T>>(cache, key).await {
            if hit.younger_than(fresh) {
                return Ok(hit.value);
            }
        }
        let stamped = Stamped {
            at_ms: unix_ms(),
            value: compute(&mut tx).await?,
        };
        self.set_json(key, &stamped, fresh * STALE_FOR).await;
        tx.commit().await?;
        Ok(stamped.value)
    }

    pub async fn delete(&self, keys: &[String]) {
        if !self.is_enabled() || keys.is_empty() {
            return;
        }
        let keys: Vec<String> = keys.iter().map(|k| self.key(k)).collect();
        let _: Option<()> = self
            .call("del", |mut c| async move { c.del(&keys).await })
            .await;
    }

    /// Increments a fixed-window counter, setting its expiry on first use.
    /// Returns the new count and the seconds left in the window, or None without Redis.
    pub async fn incr_window(&self, key: &str, window: Duration) -> Option<(u64, u64)> {
        let secs = window.as_secs().max(1);
        let key = self.key(key);
        let key = key.as_str();
        self.call("incr", |mut c| async move {
            let (count, ttl): (u64, i64) = redis::pipe()
                .atomic()
                .incr(key, 1u64)
                .cmd("EXPIRE")
                .arg(key)
                .arg(secs)
                .arg("NX")
                .ignore()
                .ttl(key)
                .query_async(&mut c)
                .await?;
            Ok((count, ttl.max(1) as u64))
        })
        .await
    }

    /// Takes one back from a counter set by [`Cache::incr_window`], unless it
    /// expired meanwhile (a plain DECR would then create a -1 that never
    /// expires). True when Redis answered.
    pub async fn decr_window(&self, key: &str) -> bool {
        let key = self.key(key);
        let key = key.as_str();
        self.call("decr", |mut c| async move {
            let _: i64 = redis::Script::new(
                "if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('DECR', KEYS[1]) end return 0",
            )
            .key(key)
            .invoke_async(&mut c)
            .await?;
            Ok(())
        })
        .await
        .is_some()
    }

    /// The value and remaining seconds of a counter set by [`Cache::incr_window`]:
    /// `(0, 0)` when absent, None when Redis cannot answer.
    pub async fn counter(&self, key: &str) -> Option<(u64, u64)> {
        let key = self.key(key);
        let key = key.as_str();
        self.call("counter", |mut c| async move {
            let (count, ttl): (Option<u64>, i64) =
                redis::pipe().get(key).ttl(key).query_async(&mut c).await?;
            Ok((count.unwrap_or(0), ttl.max(0) as u64))
        })
        .await
    }

    /// A batch of entries for the stream `stream`, to fill and hand to
    /// [`Cache::xadd_at`].
    pub fn stream_entries(&self, stream: &str) -> StreamEntries {
        let key = self.key(stream);
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(XADD_AT.get_hash())
            .arg(2)
            .arg(&key)
            .arg(format!("{key}.v1"))
            .arg(STREAM_MAX_LEN);
        StreamEntries { cmd, len: 0 }
    }

    /// Appends the entries (capped, approximately) with their explicit entry
    /// ids `<position>-0`, in one atomic script: Redis refuses an id not above
    /// the stream's last one, so an entry offered again (after a timeout, a
    /// crash, another replica) is never added twice. Returns how many were
    /// new; None when Redis did not answer.
    pub async fn xadd_at(&self, entries: StreamEntries) -> Option<u64> {
        if entries.len == 0 {
            return Some(0);
        }
        let cmd = entries.cmd;
        self.call("xadd", |mut c| async move {
            match cmd.query_async(&mut c).await {
                // A Redis that restarted (or was flushed) has forgotten the script.
                Err(e)
                    if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) =>
                {
                    XADD_AT.prepare_invoke().load_async(&mut c).await?;
                    cmd.query_async(&mut c).await
                }
                answer => answer,
            }
        })
        .await
    }
}

/// Stream entries written straight into the one script call that carries
/// them ([`Cache::stream_entries`]). A relay batch is 500 events of ~1 KB;
/// built as strings, then as the script's arguments, then as its command,
/// each was copied three times, and the relay was 16 % of the API's CPU in
/// the movement benchmark (bench/README "Where the database's time goes under the API").
pub struct StreamEntries {
    cmd: redis::Cmd,
    len: usize,
}

impl StreamEntries {
    /// Adds the entry `<position>-0` with `fields` (name, value) in order.
    pub fn push(&mut self, position: i64, fields: &[(&str, &str)]) {
        self.cmd.arg(format!("{position}-0")).arg(fields.len() * 2);
        for (name, value) in fields {
            self.cmd.arg(*name).arg(*value);
        }
        self.len += 1;
    }
}

/// How many entries the event stream keeps (approximately).
const STREAM_MAX_LEN: u64 = 100_000;

/// KEYS[1] the stream, KEYS[2] where a stream written by v1 (auto ids, no
/// `position` field) is moved aside once, since its time-based ids would be
/// above every position. ARGV: max length, then per entry: id, field count,
/// fields. An id Redis refuses as "equal or smaller" is already there.
static XADD_AT: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
local top = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if #top > 0 then
  local fields, v2 = top[1][2], false
  for i = 1, #fields, 2 do if fields[i] == 'position' then v2 = true end end
  if not v2 then redis.call('RENAME', KEYS[1], KEYS[2]) end
end
local added, i = 0, 2
while i <= #ARGV do
  local n = tonumber(ARGV[i + 1])
  local args = {'XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], ARGV[i]}
  for j = 1, n do args[#args + 1] = ARGV[i + 1 + j] end
  local res = redis.pcall(unpack(args))
  if type(res) == 'table' and res.err then
    if not string.find(res.err, 'equal or smaller') then return redis.error_reply(res.err) end
  else
    added = added + 1
  end
  i = i + 2 + n
end
return added
",
    )
});

/// Counts a cache lookup for the hit-ratio metrics.
pub fn record_lookup(cache: &'static str, hit: bool) {
    crate::telemetry::metrics().cache_requests.add(
        1,
        &[
            opentelemetry::KeyValue::new("cache", cache),
            opentelemetry::KeyValue::new("result", if hit { "hit" } else { "miss" }),
        ],
    );
}

/// A small per-process memo with a time-to-live, in front of PostgreSQL or
/// Redis for the hottest reads. Bounded: cleared when it grows past
/// `MAX_LOCAL_ENTRIES`, which only costs a few extra lookups. Entries are not
/// shared between replicas, so keep the TTL short where other replicas'
/// writes matter.
pub struct LocalCache<K, V> {
    ttl: Duration,
    map: Mutex<HashMap<K, (Instant, V)>>,
}

const MAX_LOCAL_ENTRIES: usize = 10_000;

impl<K: Eq + Hash, V: Clone> LocalCache<K, V> {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            map: Mutex::new(HashMap::new()),
        }
    }

    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let map = self.map.lock().expect("lock not poisoned");
        map.get(key)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, v)| v.clone())
    }

    pub fn put(&self, key: K, value: V) {
        let mut map = self.map.lock().expect("lock not poisoned");
        if map.len() >= MAX_LOCAL_ENTRIES {
            map.clear();
        }
        map.insert(key, (Instant::now(), value));
    }

    pub fn forget(&self, key: &K) {
        self.map.lock().expect("lock not poisoned").remove(key);
    }

    pub fn clear(&self) {
        self.map.lock().expect("lock not poisoned").clear();
    }
}
