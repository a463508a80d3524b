//! Domain events through a transactional outbox.
//!
//! A change writes its event into `outbox` inside its own transaction
//! ([`emit`]), so an event exists exactly when the change committed. Three
//! readers consume it: the SSE feed, the relay to the Redis stream `events`
//! and the webhook fan-out (`crate::webhooks`). When Redis is down events wait
//! in PostgreSQL, delayed but never lost.
//!
//! # Reading order (the one rule every consumer follows)
//!
//! An outbox `id` is taken when the row is inserted, i.e. BEFORE its
//! transaction commits, so ids do not become visible in order: a reader that
//! saw id 42 and remembers "everything up to 42" misses id 41 if that
//! transaction commits a moment later. Readers therefore never page on `id`.
//!
//! Instead every committed row gets a `position` AFTER commit, from one
//! sequencer at a time ([`sequence`]): it locks the `sequencer` row of
//! `outbox_consumers`, then (in a new statement, hence a fresh snapshot that
//! sees every commit before the lock was granted) numbers the visible rows
//! without a position in id order, continuing from the last number, and
//! commits. Sequencers are serialised by that row lock, and PostgreSQL makes a
//! transaction's rows visible before it releases its locks, so a reader that
//! sees position p also sees every position below p: positions only grow in
//! visibility order, and `position > last_seen` ([`read_after`]) never skips.
//! Rows of a transaction still in flight simply get a position later. A pass
//! looks only at ids from a floor below which every row has its position
//! (`Floor`: proven from transaction ids, not guessed from time).
//!
//! Per-aggregate order: a movement inserts its outbox row in the transaction
//! that holds the stock level's row lock, after taking it (the engine's write
//! in `stock/engine/repo.rs`, and `stock_move_default` of the one-statement
//! path), so two events of one level get ids in lock order, which
//! is commit order; the sequencer numbers rows that become visible together
//! by id and rows that become visible later after them, so positions keep
//! that order.
//!
//! Any reader may call [`sequence`] (it skips when another holds the lock), so
//! the feed does not wait for a background task; every replica also runs it.
//! Readers that must not miss or repeat across replicas (the Redis relay, the
//! webhook fan-out) keep their last position in `outbox_consumers` and take
//! that row with `FOR UPDATE SKIP LOCKED` ([`claim_cursor`]), so one replica
//! at a time advances each of them.
//!
//! Redis: each event is added with the stream entry id `<position>-0`, so
//! Redis itself refuses an event it already holds ([`Cache::xadd_at`]); a
//! batch re-sent after a timeout (a frozen Redis) cannot be added twice.

use std::time::Duration;

use serde_json::Value;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::{
    cache::Cache,
    stock::blind::{hides_blind_counts, Blind},
    telemetry,
};

/// The Redis stream events are relayed to.
pub const STREAM: &str = "events";

/// Records an event in the current transaction.
pub async fn emit(
    tx: &mut Transaction<'_, Postgres>,
    topic: &str,
    aggregate_id: Uuid,
    payload: Value,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO outbox (topic, aggregate_id, payload) VALUES ($1, $2, $3)")
        .bind(topic)
        .bind(aggregate_id)
        .bind(payload)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// How many rows one sequencer pass numbers.
const SEQUENCE_BATCH: i64 = 5000;

/// The sequencer's floor: every outbox row with a smaller id has a position
/// or never will (its transaction rolled back). Passes scan from it, not from
/// the lowest id: rows that got their position leave dead entries in
/// `outbox_unsequenced_idx` until VACUUM, and a scan from the left walked all
/// of them (migration 20261205040001).
///
/// Why a floor is safe: an outbox row's transaction id is assigned before its
/// id (`outbox_next_id()`). A pass reads the last id issued (`candidate`)
/// before its own transaction takes an id (`candidate_xid`, when it locks the
/// sequencer's row), so every id issued by then belongs to a smaller
/// transaction id. Once a later pass's snapshot has an xmin at or past
/// `candidate_xid`, every one of those transactions has ended and is visible
/// to it; if that pass numbered everything it saw (fewer rows than its
/// batch), no row up to `candidate` can lack a position any more. (Not the
/// snapshot's xmax: that is the last transaction to END plus one, and a
/// transaction that took its id earlier may still run above it.)
/// Kept in the sequencer's row of `outbox_consumers`, which every pass holds
/// locked, so replicas share it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Floor {
    floor: i64,
    candidate: Option<(i64, i64)>,
}

impl Floor {
    /// The floor after a pass whose own transaction id was `xid` and whose
    /// snapshot's xmin was `xmin`, begun when `issued` was the last id
    /// issued; `complete` when the pass numbered every row it saw.
    fn after_pass(self, issued: i64, xid: i64, xmin: i64, complete: bool) -> Self {
        let mut next = self;
        if let Some((id, id_xid)) = next.candidate {
            if complete && id_xid <= xmin {
                next.floor = next.floor.max(id + 1);
                next.candidate = None;
            }
        }
        // One candidate at a time: replacing it every pass would keep it
        // ahead of xmin for as long as transactions overlap.
        if next.candidate.is_none() && issued >= next.floor {
            next.candidate = Some((issued, xid));
        }
        next
    }
}

/// The sequencer's row of `outbox_consumers`.
#[derive(sqlx::FromRow)]
struct SequencerRow {
    position: i64,
    floor: i64,
    floor_candidate: Option<i64>,
    floor_candidate_xid: Option<i64>,
}

/// Gives committed rows their position (see "Reading order"); returns how many
/// were numbered, 0 also when another session is sequencing right now.
pub async fn sequence(db: &PgPool) -> Result<u64, sqlx::Error> {
    let mut tx = crate::db::begin(db).await?;
    // First the last id issued, while this transaction has no id of its own;
    // locking the sequencer's row then gives it one (see `Floor`). Should it
    // have one already, the pass proposes no candidate (-1 is below any floor).
    let issued: i64 = sqlx::query_scalar(
        "SELECT CASE WHEN pg_current_xact_id_if_assigned() IS NULL
                     THEN COALESCE(pg_sequence_last_value('outbox_id_seq'), 0) ELSE -1 END",
    )
    .fetch_one(&mut *tx)
    .await?;
    let claimed: Option<SequencerRow> = sqlx::query_as(
        "SELECT position, floor, floor_candidate, floor_candidate_xid
         FROM outbox_consumers WHERE name = 'sequencer' FOR UPDATE SKIP LOCKED",
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = claimed else {
        return Ok(0);
    };
    let last = row.position;
    let before = Floor {
        floor: row.floor,
        candidate: row.floor_candidate.zip(row.floor_candidate_xid),
    };
    // A new statement after the lock: its snapshot sees every row committed
    // before this sequencer got the lock, including the previous one's numbers.
    let (numbered, xid, xmin): (i64, i64, i64) = sqlx::query_as(
        "WITH pending AS (
             SELECT id FROM outbox WHERE position IS NULL AND id >= $3 ORDER BY id LIMIT $2
         ), next AS (
             SELECT id, $1 + row_number() OVER (ORDER BY id) AS position FROM pending
         ), numbered AS (
             UPDATE outbox o SET position = next.position FROM next WHERE o.id = next.id
             RETURNING 1
         )
         SELECT (SELECT count(*) FROM numbered),
                pg_current_xact_id()::text::bigint,
                pg_snapshot_xmin(pg_current_snapshot())::text::bigint",
    )
    .bind(last)
    .bind(SEQUENCE_BATCH)
    .bind(before.floor)
    .fetch_one(&mut *tx)
    .await?;
    let after = before.after_pass(issued, xid, xmin, numbered < SEQUENCE_BATCH);
    if numbered > 0 || after != before {
        let (candidate, candidate_xid) = after.candidate.unzip();
        sqlx::query(
            "UPDATE outbox_consumers
             SET position = $1, floor = $2, floor_candidate = $3, floor_candidate_xid = $4
             WHERE name = 'sequencer'",
        )
        .bind(last + numbered)
        .bind(after.floor)
        .bind(candidate)
        .bind(candidate_xid)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(numbered as u64)
}

/// A reader of the outbox with a row in `outbox_consumers`.
#[derive(Debug, Clone, Copy)]
pub enum Consumer {
    /// The Redis stream relay.
    Redis,
    /// The webhook fan-out into `webhook_deliveries`.
    Webhooks,
}

impl Consumer {
    fn as_str(self) -> &'static str {
        match self {
            Consumer::Redis => "redis",
            Consumer::Webhooks => "webhooks",
        }
    }
}

/// Takes `consumer`'s cursor for the rest of `tx`; None while another session
/// holds it (that replica is doing this work now).
pub async fn claim_cursor(
    tx: &mut PgConnection,
    consumer: Consumer,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT position FROM outbox_consumers WHERE name = $1 FOR UPDATE SKIP LOCKED",
    )
    .bind(consumer.as_str())
    .fetch_optional(&mut *tx)
    .await
}

/// Moves a claimed cursor forward to `position`.
pub async fn advance_cursor(
    tx: &mut PgConnection,
    consumer: Consumer,
    position: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE outbox_consumers SET position = $2 WHERE name = $1")
        .bind(consumer.as_str())
        .bind(position)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// One outbox row, as consumers see it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboxRow {
    pub id: i64,
    /// Its place in commit order (see "Reading order").
    pub position: i64,
    pub topic: String,
    pub aggregate_id: Option<Uuid>,
    /// The event's data as JSON text: the relay passes it on as it is, and
    /// only the feed, which may null a blind count's figures, parses it.
    pub payload: String,
    pub created_at: time::OffsetDateTime,
}

/// The committed events after `$1`, at most `$2`, in position order: the
/// only way any consumer reads the outbox, through [`read_after`] or, where
/// the rows never need to leave PostgreSQL (the webhook fan-out), as a
/// `SELECT <columns> {AFTER}` of its own.
pub const AFTER: &str = "FROM outbox WHERE position > $1 ORDER BY position LIMIT $2";

/// The committed events after `after`, in position order.
pub async fn read_after(
    conn: &mut PgConnection,
    after: i64,
    limit: i64,
) -> Result<Vec<OutboxRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT id, position, topic, aggregate_id, payload::text AS payload, created_at {AFTER}"
    )))
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// The last position handed out: where a reader starting "from now" begins.
pub async fn head(db: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT position FROM outbox_consumers WHERE name = 'sequencer'")
        .fetch_one(db)
        .await
}

/// How many events one relay pass moves.
const RELAY_BATCH: i64 = 500;

/// Publishes the next batch of events to the Redis stream, in position order;
/// returns how many were published (0 when another replica is relaying).
/// An error means Redis did not confirm: the cursor stays, and the same
/// entries are offered again later (Redis refuses the ones it already has).
pub async fn relay_once(db: &PgPool, cache: &Cache) -> anyhow::Result<usize> {
    if !cache.is_enabled() {
        return Ok(0);
    }
    sequence(db).await?;
    let mut tx = crate::db::begin(db).await?;
    let Some(cursor) = claim_cursor(&mut tx, Consumer::Redis).await? else {
        return Ok(0);
    };
    let rows = read_after(&mut tx, cursor, RELAY_BATCH).await?;
    let Some(last) = rows.last().map(|r| r.position) else {
        return Ok(0);
    };
    let count = rows.len();
    let mut entries = cache.stream_entries(STREAM);
    // Per row the text fields are formatted into buffers reused row to row
    // and copied once, into the command.
    let [mut id, mut position, mut aggregate, mut created]: [String; 4] = Default::default();
    let mut uuid = Uuid::encode_buffer();
    for row in &rows {
        use std::fmt::Write;
        for buffer in [&mut id, &mut position, &mut aggregate, &mut created] {
            buffer.clear();
        }
        // Writing into a String cannot fail.
        let _ = write!(id, "{}", row.id);
        let _ = write!(position, "{}", row.position);
        if let Some(a) = row.aggregate_id {
            aggregate.push_str(a.hyphenated().encode_lower(&mut uuid));
        }
        let _ = write!(created, "{}", row.created_at);
        entries.push(
            row.position,
            &[
                ("id", &id),
                ("position", &position),
                ("topic", &row.topic),
                ("aggregate_id", &aggregate),
                ("payload", &row.payload),
                ("created_at", &created),
            ],
        );
    }
    if cache.xadd_at(entries).await.is_none() {
        telemetry::metrics().outbox_publish_failures.add(1, &[]);
        // Released now: a dropped transaction's ROLLBACK waits for its
        // connection's next use, and until then the cursor stays locked and
        // every relay (this replica's next pass, the others') skips it.
        tx.rollback().await?;
        anyhow::bail!("Redis did not confirm {count} events");
    }
    advance_cursor(&mut tx, Consumer::Redis, last).await?;
    tx.commit().await?;
    telemetry::metrics().outbox_published.add(count as u64, &[]);
    Ok(count)
}

/// Forgets events older than a day that every reader has consumed (the Redis
/// relay only when Redis is in use; webhooks keep their own copy in each
/// delivery), oldest first, at most `batch` per statement
/// ([`crate::db::delete_in_batches`]). A day of history is what the SSE feed
/// can resume from.
///
/// Each statement reads at most `batch` rows along `outbox_position_key`
/// (positions follow commit order), from just after the last one it deleted:
/// the entries of rows just deleted stay in the index until VACUUM, so
/// starting from the front every time read them again, statement after
/// statement. It deletes those of the rows read that are a day old and
/// ends at the first that is younger: what lies beyond is the day kept, and
/// is not read through.
pub async fn delete_old(db: &PgPool, relayed: bool, batch: i64) -> Result<u64, sqlx::Error> {
    // The last position deleted; each statement reads on from there (one
    // statement at a time: an atomic only because the future must be Send).
    let after = std::sync::atomic::AtomicI64::new(0);
    let after = &after;
    crate::db::delete_in_batches(batch, |limit| async move {
        // A statement that deletes all `limit` rows it read goes on; one that
        // read fewer, or stopped at a younger event, deletes fewer and ends.
        let (deleted, last): (i64, Option<i64>) = sqlx::query_as(
            "WITH oldest AS (
                 SELECT position, created_at FROM outbox
                 WHERE position > $3
                   AND position <= (SELECT min(position) FROM outbox_consumers
                                    WHERE name = 'webhooks' OR (name = 'redis' AND $1))
                 ORDER BY position LIMIT $2
             ), gone AS (
                 DELETE FROM outbox WHERE position = ANY(ARRAY(
                     SELECT position FROM oldest
                     WHERE position < COALESCE(
                         (SELECT min(position) FROM oldest
                          WHERE created_at >= now() - interval '24 hours'),
                         (SELECT max(position) + 1 FROM oldest))))
                 RETURNING position
             )
             SELECT (SELECT count(*) FROM gone), (SELECT max(position) FROM gone)",
        )
        .bind(relayed)
        .bind(limit)
        .bind(after.load(std::sync::atomic::Ordering::Relaxed))
        .fetch_one(db)
        .await?;
        if let Some(last) = last {
            after.store(last, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(deleted as u64)
    })
    .await
}

/// Number of events not yet in the Redis stream (or, without Redis, not yet
/// sequenced).
pub async fn backlog(db: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM outbox WHERE position IS NULL
                     AND id >= (SELECT floor FROM outbox_consumers WHERE name = 'sequencer'))
              + (SELECT count(*) FROM outbox WHERE position >
                    (SELECT position FROM outbox_consumers WHERE name = 'redis'))",
    )
    .fetch_one(db)
    .await
}

/// How often an idle sequencer looks for newly committed events.
const SEQUENCE_EVERY: Duration = Duration::from_millis(100);

/// Numbers committed events forever (every replica runs one; one works at a time).
pub async fn run_sequencer(db: PgPool) {
    loop {
        let pause = sequencer_pass(&db).await;
        tokio::time::sleep(pause).await;
    }
}

/// One pass of [`run_sequencer`]; answers how long to wait before the next.
pub async fn sequencer_pass(db: &PgPool) -> Duration {
    match sequence(db).await {
        Ok(n) if n as i64 == SEQUENCE_BATCH => Duration::ZERO,
        Ok(_) => SEQUENCE_EVERY,
        Err(e) => {
            crate::db::note_if_lost(&e);
            tracing::warn!(error = %e, "outbox sequencer failed");
            Duration::from_secs(2)
        }
    }
}

/// Relays forever: immediately while there is a backlog, else every 250 ms;
/// while Redis does not answer, waits 1 s, 2 s, 4 s ... up to 30 s between
/// attempts instead of hammering (and re-filling) a frozen server.
pub async fn run_relay(db: PgPool, cache: Cache) {
    let mut backoff = Duration::ZERO;
    loop {
        let pause = match relay_once(&db, &cache).await {
            Ok(n) if n as i64 == RELAY_BATCH => Duration::ZERO,
            Ok(_) => Duration::from_millis(250),
            Err(e) => {
                crate::db::note_if_lost(e.as_ref());
                backoff = (backoff * 2).clamp(Duration::from_secs(1), Duration::from_secs(30));
                tracing::warn!(error = format!("{e:#}"), retry_in = ?backoff, "outbox relay failed");
                tokio::time::sleep(backoff).await;
                continue;
            }
        };
        backoff = Duration::ZERO;
        tokio::time::sleep(pause).await;
    }
}

/// One event of the live feed.
#[derive(Debug, Clone, poem_openapi::Object)]
pub struct FeedEvent {
    /// The event's position in commit order: increasing without gaps in what
    /// a reader can miss; send it back as `Last-Event-ID` to resume.
    pub id: i64,
    /// e.g. `stock.receipt`, `product.updated`, `count.completed`.
    pub topic: String,
    /// The product (or other record) the event is about; events of one
    /// aggregate arrive in the order they happened.
    pub aggregate_id: Option<Uuid>,
    /// The event's data; its shape depends on `topic`.
    pub payload: Value,
    /// When the change was written.
    pub created_at: time::OffsetDateTime,
}

impl TryFrom<OutboxRow> for FeedEvent {
    type Error = serde_json::Error;

    fn try_from(r: OutboxRow) -> Result<Self, Self::Error> {
        Ok(Self {
            id: r.position,
            topic: r.topic,
            aggregate_id: r.aggregate_id,
            payload: serde_json::from_str(&r.payload)?,
            created_at: r.created_at,
        })
    }
}

/// How often the feed looks for new events.
const FEED_POLL: Duration = Duration::from_millis(250);

/// Sequences what has committed (unless another session is at it), then reads
/// the events after `after`. With `hide_blind` (the reader is one a blind
/// count hides levels from), `stock.*` events of levels under an open blind
/// count come without their balances, value and cost
/// ([`crate::stock::blind`]); they still come, so a reader's positions stay
/// gapless and it still sees that stock moved.
async fn poll(
    db: &PgPool,
    after: i64,
    limit: i64,
    hide_blind: bool,
) -> Result<Vec<FeedEvent>, sqlx::Error> {
    sequence(db).await?;
    let mut conn = crate::db::acquire(db).await?;
    let mut events = read_after(&mut conn, after, limit)
        .await?
        .into_iter()
        .map(FeedEvent::try_from)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    let blind = Blind::of(
        &mut *conn,
        hide_blind,
        events
            .iter()
            .filter_map(|e| Blind::event_level(&e.topic, &e.payload)),
    )
    .await?;
    for e in &mut events {
        blind.event(&e.topic, &mut e.payload);
    }
    Ok(events)
}

/// The live feed: committed events after `after`, read from the outbox (not
/// from Redis), so it works while Redis is down and a client resumes exactly
/// where it stopped.
fn feed(
    db: PgPool,
    after: i64,
    hide_blind: bool,
) -> impl futures_util::Stream<Item = FeedEvent> + Send + 'static {
    futures_util::stream::unfold(
        (db, after, std::collections::VecDeque::new()),
        move |(db, mut last, mut queue)| async move {
            loop {
                if let Some(e) = queue.pop_front() {
                    return Some((e, (db, last, queue)));
                }
                match poll(&db, last, 200, hide_blind).await {
                    Ok(events) if !events.is_empty() => {
                        last = events.last().map_or(last, |e| e.id);
                        queue.extend(events);
                    }
                    Ok(_) => tokio::time::sleep(FEED_POLL).await,
                    Err(e) => {
                        crate::db::note_if_lost(&e);
                        tracing::warn!(error = %e, "event feed query failed");
                        tokio::time::sleep(Duration::from_secs(2)).await;
                    }
                }
            }
        },
    )
}

pub struct EventsApi;

#[poem_openapi::OpenApi(prefix_path = "/api/v1/events", tag = "crate::Tags::Events")]
impl EventsApi {
    /// Live feed of committed changes (viewer), as Server-Sent Events.
    ///
    /// Starts with events after `Last-Event-ID` (or `after`), else with new ones only.
    /// For device keys, viewers and clerks, `stock.*` events of a level under
    /// an open blind count have `balance_after`, `warehouse_balance_after`,
    /// `unit_cost` and `value_after` null (decided when the event is sent).
    /// Webhooks are not filtered: an admin configures them for other systems.
    #[oai(path = "/stream", method = "get", operation_id = "streamEvents")]
    async fn stream(
        &self,
        auth: crate::auth::principal::ViewerAuth,
        state: poem::web::Data<&crate::state::AppState>,
        #[oai(name = "Last-Event-ID")] last_event_id: poem_openapi::param::Header<Option<i64>>,
        /// Resume after this event position (alternative to `Last-Event-ID`).
        after: poem_openapi::param::Query<Option<i64>>,
    ) -> crate::error::Result<
        poem_openapi::payload::EventStream<futures_util::stream::BoxStream<'static, FeedEvent>>,
    > {
        use futures_util::StreamExt as _;
        let start = match last_event_id.0.or(after.0) {
            Some(id) => id,
            None => {
                sequence(&state.db).await?;
                head(&state.db).await?
            }
        };
        // The feed never ends by itself; it ends when the server shuts down.
        let stream = feed(state.db.clone(), start, hides_blind_counts(&auth.0))
            .take_until(state.shutting_down())
            .boxed();
        Ok(poem_openapi::payload::EventStream::new(stream)
            .keep_alive(Duration::from_secs(15))
            .to_event(|e| {
                let data = poem_openapi::types::ToJSON::to_json(&e)
                    .map(|v| v.to_string())
                    .unwrap_or_default();
                poem::web::sse::Event::message(data)
                    .id(e.id.to_string())
                    .event_type(e.topic.clone())
            }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_moves_only_past_a_candidate_every_transaction_of_has_ended() {
        let start = Floor::default();
        // Ids up to 10 issued; then this pass took transaction id 105.
        let one = start.after_pass(10, 105, 100, true);
        let first = Floor {
            floor: 0,
            candidate: Some((10, 105)),
        };
        assert_eq!(one, first);
        // A transaction below 105 still runs (xmin 103): the floor waits, and
        // the candidate is not replaced by a newer one.
        let two = one.after_pass(20, 110, 103, true);
        assert_eq!(two, first);
        // They have all ended (xmin 105), but this pass stopped at its batch
        // size: rows up to 10 may still be waiting for a number.
        assert_eq!(two.after_pass(20, 111, 105, false), first);
        // A complete pass: the floor passes 10, and 20 becomes the candidate.
        let three = two.after_pass(20, 112, 105, true);
        let second = Floor {
            floor: 11,
            candidate: Some((20, 112)),
        };
        assert_eq!(three, second);
        // Nothing issued since the floor: no candidate.
        let idle = Floor {
            floor: 21,
            candidate: None,
        };
        assert_eq!(idle.after_pass(20, 200, 199, true), idle);
    }
}
