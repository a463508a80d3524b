//! A dead connection met by a background task first. The API's pool hands
//! connections back without a ping (vendor/README.md), so a connection that
//! died under the outbox sequencer would go back to the pool as it is; the
//! task notes the outage (`db::note_if_lost`) and the pool then discards every
//! connection opened before it, so no request is handed one.
//!
//! In a file of its own: the note is process-wide, and another test's outage
//! noted meanwhile would hide a missing one here.

use std::time::{Duration, Instant};

use inventory_api::{db, events};
use sqlx::PgPool;

#[sqlx::test]
async fn a_connection_that_died_under_a_background_task_is_not_handed_to_a_request(db: PgPool) {
    let pool = db::pool_with((*db.connect_options()).clone(), 3, db::SessionLimits::NONE);
    // Three pooled connections, idle, and their server processes.
    let mut held = Vec::new();
    let mut pids: Vec<i32> = Vec::new();
    for _ in 0..3 {
        let mut conn = pool.acquire().await.unwrap();
        pids.push(
            sqlx::query_scalar("SELECT pg_backend_pid()")
                .fetch_one(&mut *conn)
                .await
                .unwrap(),
        );
        held.push(conn);
    }
    drop(held);
    let start = Instant::now();
    while pool.num_idle() < 3 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "connections never came back"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // PostgreSQL ends them, as a restart or a failover does.
    sqlx::query("SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid")
        .bind(&pids)
        .execute(&db)
        .await
        .unwrap();
    let start = Instant::now();
    loop {
        let alive: i64 =
            sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1)")
                .bind(&pids)
                .fetch_one(&db)
                .await
                .unwrap();
        if alive == 0 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "backends still alive"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // The sequencer takes one of them first, and fails (it retries in 2 s).
    assert_eq!(
        events::sequencer_pass(&pool).await,
        Duration::from_secs(2),
        "the sequencer's pass should have failed on a dead connection"
    );
    // A request's statement after it gets a live connection.
    let one: Result<i32, _> = sqlx::query_scalar("SELECT 1").fetch_one(&pool).await;
    assert_eq!(
        one.ok(),
        Some(1),
        "a dead connection was handed out after the sequencer had met one"
    );
}
