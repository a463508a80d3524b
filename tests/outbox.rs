//! The outbox is read in commit order: no committed event is skipped or
//! repeated by the SSE feed or the Redis relay, each product's events arrive
//! in order, the ledger lists in commit order, and a frozen Redis does not
//! multiply events.

mod common;

use std::{collections::HashMap, time::Duration};

use common::TestApp;
use inventory_api::{
    cache::Cache,
    events,
    stock::engine::{self, Actor, Amount, MoveKind, Movement},
};
use rand::Rng as _;
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

const WRITERS: usize = 32;
const MOVES_PER_WRITER: usize = 8;

/// One ledger movement as an event or a listing shows it.
#[derive(Debug, Clone)]
struct Move {
    transaction_id: String,
    level: (String, String),
    quantity: i64,
    balance_after: i64,
}

fn move_from(payload: &Value) -> Move {
    Move {
        transaction_id: payload["transaction_id"].as_str().unwrap().to_owned(),
        level: (
            payload["product_id"].as_str().unwrap().to_owned(),
            payload["warehouse_id"].as_str().unwrap().to_owned(),
        ),
        quantity: payload["quantity"].as_i64().unwrap(),
        balance_after: payload["balance_after"].as_i64().unwrap(),
    }
}

/// Every movement exactly once, and for each level balance_after[n] =
/// balance_after[n-1] + quantity[n] in the order received (levels start at 0).
fn assert_complete_and_in_order(who: &str, received: &[Move], committed: usize) {
    let mut seen = std::collections::HashSet::new();
    for m in received {
        assert!(
            seen.insert(m.transaction_id.clone()),
            "{who}: {} received twice",
            m.transaction_id
        );
    }
    assert_eq!(received.len(), committed, "{who}: every committed movement");
    let mut balance: HashMap<&(String, String), i64> = HashMap::new();
    for m in received {
        let b = balance.entry(&m.level).or_insert(0);
        assert_eq!(
            *b + m.quantity,
            m.balance_after,
            "{who}: {:?} out of order at {}",
            m.level,
            m.transaction_id
        );
        *b = m.balance_after;
    }
}

/// 32 writers, each movement in its own transaction with random pauses before
/// and after the write, so transactions commit in a different order than they
/// took their outbox ids.
async fn concurrent_writers(db: &PgPool, levels: &[(Uuid, Uuid)], actor: Uuid) -> usize {
    let writers = (0..WRITERS).map(|w| {
        let db = db.clone();
        let levels = levels.to_vec();
        tokio::spawn(async move {
            let mut committed = 0;
            for i in 0..MOVES_PER_WRITER {
                let (pause_before, pause_after, qty) = {
                    let mut rng = rand::rng();
                    (
                        rng.random_range(0..15u64),
                        rng.random_range(0..15u64),
                        rng.random_range(1..5i64),
                    )
                };
                let (product, warehouse) = levels[(w + i) % levels.len()];
                let mut tx = db.begin().await.unwrap();
                // Work before the movement (as a request does: idempotency
                // claim, lookups) fixes the transaction's start time.
                sqlx::query("SELECT 1").execute(&mut *tx).await.unwrap();
                tokio::time::sleep(Duration::from_millis(pause_before)).await;
                let receipt = Movement::new(
                    MoveKind::Receipt,
                    product,
                    warehouse,
                    Amount::Add(qty),
                    Actor::User(actor),
                );
                engine::post_one(&mut tx, &receipt)
                    .await
                    .expect("receipt applies");
                tokio::time::sleep(Duration::from_millis(pause_after)).await;
                tx.commit().await.unwrap();
                committed += 1;
            }
            committed
        })
    });
    // Spawn them all before waiting for any.
    let writers: Vec<_> = writers.collect();
    let mut total = 0;
    for w in writers {
        total += w.await.unwrap();
    }
    total
}

/// Reads SSE events until `count` movements arrived (or the deadline).
async fn read_feed(mut feed: reqwest::Response, count: usize) -> Vec<Move> {
    let mut buf = String::new();
    let mut moves = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while moves.len() < count {
        // Missing events show up as a short count in the caller's assertion.
        let Ok(chunk) = tokio::time::timeout_at(deadline, feed.chunk()).await else {
            break;
        };
        let chunk = chunk.unwrap().expect("feed open");
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let frame: String = buf.drain(..end + 2).collect();
            if let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data: ")) {
                let event: Value = serde_json::from_str(data).unwrap();
                if event["topic"].as_str().unwrap().starts_with("stock.") {
                    moves.push(move_from(&event["payload"]));
                }
            }
        }
    }
    moves
}

/// A Redis stream consumer: XREAD from the start until `count` entries.
async fn read_stream(url: &str, key: &str, count: usize) -> Vec<Move> {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let mut last = "0-0".to_owned();
    let mut moves = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while moves.len() < count && tokio::time::Instant::now() < deadline {
        let reply: redis::streams::StreamReadReply = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(100)
            .arg("STREAMS")
            .arg(key)
            .arg(&last)
            .query_async(&mut conn)
            .await
            .unwrap();
        let entries: Vec<_> = reply.keys.into_iter().flat_map(|k| k.ids).collect();
        if entries.is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for entry in entries {
            last = entry.id.clone();
            if entry.get::<String>("topic").unwrap().starts_with("stock.") {
                let payload: String = entry.get("payload").unwrap();
                moves.push(move_from(&serde_json::from_str(&payload).unwrap()));
            }
        }
    }
    moves
}

/// A cache under a key prefix of its own, a plain connection to read what it
/// wrote, and the prefix.
async fn own_redis() -> (Cache, redis::aio::MultiplexedConnection, String) {
    let redis_url = std::env::var("REDIS_URL").expect("scripts/test.sh sets REDIS_URL");
    let prefix = format!("test:{}:", Uuid::new_v4());
    let cache = Cache::connect(&redis_url, &prefix).unwrap();
    assert!(cache.wait_connected(Duration::from_secs(5)).await);
    let client = redis::Client::open(redis_url.as_str()).unwrap();
    let conn = client.get_multiplexed_async_connection().await.unwrap();
    (cache, conn, prefix)
}

/// A pool on the test's database large enough for every writer at once.
async fn wide_pool(db: &PgPool) -> PgPool {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(WRITERS as u32 + 8)
        .connect_with(db.connect_options().as_ref().clone())
        .await
        .unwrap()
}

async fn levels(app: &TestApp, token: &str) -> Vec<(Uuid, Uuid)> {
    let mut levels = Vec::new();
    let warehouses = [
        app.create_warehouse_sql("OW1").await,
        app.create_warehouse_sql("OW2").await,
    ];
    for n in 0..3 {
        let p: Value = app
            .post_ok(
                "/api/v1/products",
                token,
                &json!({"sku": format!("OB-{n}"), "name": "Ordered"}),
            )
            .await;
        let p: Uuid = p["id"].as_str().unwrap().parse().unwrap();
        levels.extend(warehouses.iter().map(|w| (p, *w)));
    }
    levels
}

#[sqlx::test]
async fn every_committed_event_reaches_the_feed_and_redis_once_in_order(db: PgPool) {
    // The test pool holds 5 connections; 32 writers need their own.
    let db = wide_pool(&db).await;
    let redis_url = std::env::var("REDIS_URL").expect("scripts/test.sh sets REDIS_URL");
    let prefix = format!("test:{}:", Uuid::new_v4());
    let cache = Cache::connect(&redis_url, &prefix).unwrap();
    assert!(cache.wait_connected(Duration::from_secs(5)).await);
    let app = TestApp::spawn_with(db.clone(), cache.clone(), common::test_config(&[])).await;
    let manager = app.create_user("manager").await;
    let token = app.token("manager").await;
    let levels = levels(&app, &token).await;
    // The feed starts "from now"; then write.
    let feed = app.get_as("/api/v1/events/stream", &token).await;
    assert_eq!(feed.status(), 200);
    let relay = tokio::spawn(events::run_relay(db.clone(), cache.clone()));

    let committed = concurrent_writers(&db, &levels, manager.id).await;
    assert_eq!(committed, WRITERS * MOVES_PER_WRITER);

    let sse = read_feed(feed, committed).await;
    assert_complete_and_in_order("SSE", &sse, committed);
    let stream = read_stream(&redis_url, &format!("{prefix}events"), committed).await;
    assert_complete_and_in_order("Redis stream", &stream, committed);
    relay.abort();

    // The ledger of each level, listed newest first through the cursor chain,
    // reads in commit order.
    for (product, warehouse) in &levels {
        let mut rows: Vec<Move> = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!(
                "/api/v1/transactions?product_id={product}&warehouse_id={warehouse}&limit=7"
            );
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let page: Value = app.get_ok(&path, &token).await;
            rows.extend(page["items"].as_array().unwrap().iter().map(|t| {
                move_from(
                    &json!({"transaction_id": t["id"], "product_id": t["product_id"],
                    "warehouse_id": t["warehouse_id"], "quantity": t["quantity"],
                    "balance_after": t["balance_after"]}),
                )
            }));
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        rows.reverse();
        let expected: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM stock_transactions WHERE product_id = $1 AND warehouse_id = $2",
        )
        .bind(product)
        .bind(warehouse)
        .fetch_one(&db)
        .await
        .unwrap();
        assert_complete_and_in_order("ledger listing", &rows, expected as usize);
    }
}

/// A private redis-server on a unix socket, so the test can freeze it.
struct OwnRedis {
    child: std::process::Child,
    url: String,
    _dir: std::path::PathBuf,
}

impl OwnRedis {
    fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("outbox-redis-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("redis.sock");
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                "0",
                "--save",
                "",
                "--appendonly",
                "no",
                "--unixsocket",
            ])
            .arg(&socket)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server on PATH");
        // The server creates its socket a moment after it starts; a cache that
        // connected before then would wait out its 5 s retry, so the test waits here.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::os::unix::net::UnixStream::connect(&socket).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server listening on {}",
                socket.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            child,
            url: format!("redis+unix://{}", socket.display()),
            _dir: dir,
        }
    }

    fn signal(&self, sig: &str) {
        let ok = std::process::Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig}");
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.signal("-CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self._dir);
    }
}

#[sqlx::test]
async fn a_frozen_redis_gets_each_event_once(db: PgPool) {
    let db = wide_pool(&db).await;
    let redis = OwnRedis::start();
    let cache = Cache::connect(&redis.url, "frozen:").unwrap();
    // Past one 5 s reconnect pause, for a loaded CI machine.
    assert!(cache.wait_connected(Duration::from_secs(15)).await);
    let app = TestApp::spawn_with(db.clone(), cache.clone(), common::test_config(&[])).await;
    let manager = app.create_user("manager").await;
    let token = app.token("manager").await;
    let levels = levels(&app, &token).await;
    let relay = tokio::spawn(events::run_relay(db.clone(), cache.clone()));

    // Freeze Redis while events keep being written and the relay keeps trying.
    redis.signal("-STOP");
    let committed = concurrent_writers(&db, &levels, manager.id).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        events::backlog(&db).await.unwrap() > 0,
        "nothing confirmed while frozen"
    );
    redis.signal("-CONT");

    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while events::backlog(&db).await.unwrap() > 0 {
        assert!(tokio::time::Instant::now() < deadline, "relay caught up");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    relay.abort();
    // A relay that lost its confirmation offers everything again: Redis
    // refuses every entry it already holds.
    sqlx::query("UPDATE outbox_consumers SET position = 0 WHERE name = 'redis'")
        .execute(&db)
        .await
        .unwrap();
    while events::relay_once(&db, &cache).await.unwrap() > 0 {}
    let client = redis::Client::open(redis.url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let all: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg("frozen:events")
        .arg("-")
        .arg("+")
        .query_async(&mut conn)
        .await
        .unwrap();
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(&db)
        .await
        .unwrap();
    let mut positions: Vec<String> = all
        .ids
        .iter()
        .map(|e| e.get::<String>("position").unwrap())
        .collect();
    assert_eq!(
        positions.len() as i64,
        total,
        "each event in the stream once"
    );
    positions.dedup();
    assert_eq!(positions.len() as i64, total);
    let moves: Vec<Move> = all
        .ids
        .iter()
        .filter(|e| e.get::<String>("topic").unwrap().starts_with("stock."))
        .map(|e| move_from(&serde_json::from_str(&e.get::<String>("payload").unwrap()).unwrap()))
        .collect();
    assert_complete_and_in_order("frozen Redis stream", &moves, committed);
}

#[sqlx::test]
async fn a_stream_written_by_v1_is_moved_aside_before_positions_are_used(db: PgPool) {
    let (cache, mut conn, prefix) = own_redis().await;
    let key = format!("{prefix}events");
    // v1 added entries with time-based ids, far above any position.
    let _: String = redis::cmd("XADD")
        .arg(&key)
        .arg("*")
        .arg("id")
        .arg("1")
        .arg("topic")
        .arg("old.event")
        .query_async(&mut conn)
        .await
        .unwrap();
    let app = TestApp::spawn_with(db.clone(), cache.clone(), common::test_config(&[])).await;
    let token = app.token("manager").await;
    levels(&app, &token).await;
    assert!(events::relay_once(&db, &cache).await.unwrap() > 0);
    let new: usize = redis::cmd("XLEN")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    let old: usize = redis::cmd("XLEN")
        .arg(format!("{key}.v1"))
        .query_async(&mut conn)
        .await
        .unwrap();
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(
        (new as i64, old),
        (total, 1),
        "v1 entries kept aside, new ones all added"
    );
}

#[sqlx::test]
async fn a_stream_entry_carries_its_outbox_row_even_after_redis_forgot_the_script(db: PgPool) {
    let (cache, mut conn, prefix) = own_redis().await;
    let app = TestApp::spawn_with(db.clone(), cache.clone(), common::test_config(&[])).await;
    let token = app.token("manager").await;
    levels(&app, &token).await;
    // A Redis that restarted has no scripts: the relay loads its own again.
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut conn)
        .await
        .unwrap();
    while events::relay_once(&db, &cache).await.unwrap() > 0 {}

    let rows: Vec<(i64, i64, String, Option<Uuid>, String, time::OffsetDateTime)> = sqlx::query_as(
        "SELECT id, position, topic, aggregate_id, payload::text, created_at
             FROM outbox ORDER BY position",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    let entries: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
        .arg(format!("{prefix}events"))
        .arg("-")
        .arg("+")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(rows.len() > 1, "the set-up wrote events");
    assert_eq!(entries.len(), rows.len());
    for ((entry_id, fields), (id, position, topic, aggregate, payload, created)) in
        entries.iter().zip(&rows)
    {
        assert_eq!(entry_id, &format!("{position}-0"));
        let expected = [
            ("id", id.to_string()),
            ("position", position.to_string()),
            ("topic", topic.clone()),
            (
                "aggregate_id",
                aggregate.map(|a| a.to_string()).unwrap_or_default(),
            ),
            ("payload", payload.clone()),
            ("created_at", created.to_string()),
        ]
        .into_iter()
        .flat_map(|(name, value)| [name.to_owned(), value])
        .collect::<Vec<_>>();
        assert_eq!(fields, &expected, "entry {entry_id}");
    }
}

/// The sequencer's floor (`events::Floor`) never passes a row whose
/// transaction is still in flight, and passes everything once nothing is.
#[sqlx::test]
async fn the_sequencer_floor_waits_for_a_transaction_still_in_flight(db: PgPool) {
    async fn add(conn: &mut sqlx::PgConnection, topic: &str) -> i64 {
        sqlx::query_scalar("INSERT INTO outbox (topic, payload) VALUES ($1, '{}') RETURNING id")
            .bind(topic)
            .fetch_one(conn)
            .await
            .unwrap()
    }
    async fn floor(db: &PgPool) -> i64 {
        sqlx::query_scalar("SELECT floor FROM outbox_consumers WHERE name = 'sequencer'")
            .fetch_one(db)
            .await
            .unwrap()
    }
    async fn position(db: &PgPool, id: i64) -> Option<i64> {
        sqlx::query_scalar("SELECT position FROM outbox WHERE id = $1")
            .bind(id)
            .fetch_one(db)
            .await
            .unwrap()
    }
    while events::sequence(&db).await.unwrap() > 0 {}

    // Its outbox id is taken as the transaction's first write, and passes
    // run at once, before anything after it has committed (a snapshot's xmax
    // is then at or below its transaction id: no bound on it); it commits
    // only after later rows did and more passes numbered them.
    let mut late = db.begin().await.unwrap();
    let straggler = add(&mut late, "test.late").await;
    for _ in 0..3 {
        events::sequence(&db).await.unwrap();
    }
    assert!(
        floor(&db).await <= straggler,
        "the floor stays at or below a row of a transaction in flight"
    );
    let mut later = Vec::new();
    for _ in 0..3 {
        let mut conn = db.acquire().await.unwrap();
        later.push(add(&mut conn, "test.early").await);
        for _ in 0..3 {
            events::sequence(&db).await.unwrap();
        }
    }
    for id in &later {
        assert!(
            position(&db, *id).await.is_some(),
            "a committed row is numbered"
        );
    }
    assert!(
        floor(&db).await <= straggler,
        "the floor stays at or below a row of a transaction in flight"
    );
    late.commit().await.unwrap();
    events::sequence(&db).await.unwrap();
    let numbered = position(&db, straggler).await;
    assert!(
        numbered.is_some(),
        "the late row is numbered once it commits"
    );
    assert!(
        numbered > position(&db, later[2]).await,
        "after what became visible before it"
    );

    // Nothing of ours in flight: passes move the floor past every id issued
    // (one takes the candidate, a later one sees it pass). Transaction ids
    // are the cluster's, so a transaction of a test running beside this one
    // can hold it back for a moment: waited for, up to 30 s.
    let top = straggler.max(later[2]);
    let mut passes = 0;
    while floor(&db).await <= top && passes < 600 {
        events::sequence(&db).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        passes += 1;
    }
    assert!(floor(&db).await > top, "the floor passes what has ended");
    // ... and rows after it are still found.
    let mut conn = db.acquire().await.unwrap();
    let next = add(&mut conn, "test.next").await;
    events::sequence(&db).await.unwrap();
    assert!(position(&db, next).await.is_some());
}

/// What the floor's proof rests on: taking an outbox id gives the
/// transaction its id first.
#[sqlx::test]
async fn an_outbox_id_is_taken_after_the_transaction_id(db: PgPool) {
    let mut tx = db.begin().await.unwrap();
    let before: Option<String> =
        sqlx::query_scalar("SELECT pg_current_xact_id_if_assigned()::text")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    assert_eq!(before, None, "a fresh transaction has no id yet");
    let _: i64 = sqlx::query_scalar("SELECT outbox_next_id()")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    let after: Option<String> = sqlx::query_scalar("SELECT pg_current_xact_id_if_assigned()::text")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert!(
        after.is_some(),
        "outbox_next_id() assigns the transaction id"
    );
    let default: String = sqlx::query_scalar(
        "SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef
         WHERE adrelid = 'outbox'::regclass
           AND adnum = (SELECT attnum FROM pg_attribute WHERE attrelid = 'outbox'::regclass AND attname = 'id')",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    assert_eq!(
        default, "outbox_next_id()",
        "every row takes its id that way"
    );
}
