//! The references of count_lines and scan_events, checked per statement by
//! triggers (migrations 20261203000001 and 20261204200001) instead of
//! row-by-row foreign keys: they refuse what the foreign keys refused, under
//! the same names, and a delete racing an insert of a reference still loses;
//! and the ledger's, which name a position instead of locking the rows every
//! movement shares (migration 20261204230001).

use std::time::Duration;

use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

struct Rows {
    product: Uuid,
    location: Uuid,
    count: Uuid,
}

async fn rows(db: &PgPool) -> Rows {
    let warehouse: Uuid =
        sqlx::query_scalar("INSERT INTO warehouses (code, name) VALUES ('W1', 'W1') RETURNING id")
            .fetch_one(db)
            .await
            .unwrap();
    let location: Uuid = sqlx::query_scalar(
        "INSERT INTO locations (warehouse_id, code, name) VALUES ($1, 'BIN-1', 'Bin 1') RETURNING id",
    )
    .bind(warehouse)
    .fetch_one(db)
    .await
    .unwrap();
    let product: Uuid =
        sqlx::query_scalar("INSERT INTO products (sku, name) VALUES ('P-1', 'Thing') RETURNING id")
            .fetch_one(db)
            .await
            .unwrap();
    let count: Uuid =
        sqlx::query_scalar("INSERT INTO count_sessions (warehouse_id) VALUES ($1) RETURNING id")
            .bind(warehouse)
            .fetch_one(db)
            .await
            .unwrap();
    Rows {
        product,
        location,
        count,
    }
}

/// Inserts count lines for these products at `location`, in one statement.
async fn insert_lines(
    tx: &mut Transaction<'_, Postgres>,
    count: Uuid,
    products: &[Uuid],
    location: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO count_lines (count_id, product_id, location_id, expected_quantity)
         SELECT $1, p, $3, 0 FROM unnest($2::uuid[]) AS p",
    )
    .bind(count)
    .bind(products)
    .bind(location)
    .execute(&mut **tx)
    .await
    .map(|_| ())
}

/// A scanner device, for scan events.
async fn device(db: &PgPool) -> Uuid {
    sqlx::query_scalar(
        "INSERT INTO devices (name, key_prefix, key_hash) VALUES ('D1', 'k', 'h') RETURNING id",
    )
    .fetch_one(db)
    .await
    .unwrap()
}

/// Inserts one scan event per product, in one statement.
async fn insert_scans(
    conn: &mut sqlx::PgConnection,
    device: Uuid,
    products: &[Uuid],
    location: Uuid,
    transaction: Option<Uuid>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO scan_events (device_id, event_id, barcode, action, quantity, status,
             product_id, location_id, transaction_id)
         SELECT $1, gen_random_uuid(), '123', 'receive', 1, 'applied', p, $3, $4
         FROM unnest($2::uuid[]) AS p",
    )
    .bind(device)
    .bind(products)
    .bind(location)
    .bind(transaction)
    .execute(conn)
    .await
    .map(|_| ())
}

/// The SQLSTATE and constraint with which `sql` (bound to `id`) is refused.
async fn refusal(db: &PgPool, sql: &'static str, id: Uuid) -> (String, Option<String>) {
    let err = sqlx::query(sql)
        .bind(id)
        .execute(db)
        .await
        .expect_err("refused");
    violation(err)
}

/// Runs `delete` (bound to `id`) while `inserting` is open, checks that it
/// waits for it, commits `inserting`, and answers the delete's error.
async fn delete_racing(
    db: &PgPool,
    inserting: Transaction<'_, Postgres>,
    delete: &'static str,
    id: Uuid,
) -> sqlx::Error {
    let deleter = {
        let db = db.clone();
        tokio::spawn(async move { sqlx::query(delete).bind(id).execute(&db).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !deleter.is_finished(),
        "the delete waits for the inserting transaction"
    );
    inserting.commit().await.unwrap();
    deleter
        .await
        .unwrap()
        .expect_err("the delete is refused once the insert is committed")
}

/// The SQLSTATE and constraint of a database error.
fn violation(e: sqlx::Error) -> (String, Option<String>) {
    let db = e.as_database_error().expect("a database error");
    (
        db.code().unwrap_or_default().into_owned(),
        db.constraint().map(str::to_owned),
    )
}

#[sqlx::test]
async fn a_line_or_scan_event_naming_a_missing_row_is_refused_under_the_old_constraint_name(
    db: PgPool,
) {
    let r = rows(&db).await;
    // One good line and one naming no product: the whole statement is refused.
    let mut tx = db.begin().await.unwrap();
    let err = insert_lines(&mut tx, r.count, &[r.product, Uuid::new_v4()], r.location)
        .await
        .unwrap_err();
    assert_eq!(
        violation(err),
        (
            "23503".to_owned(),
            Some("count_lines_product_id_fkey".into())
        )
    );
    drop(tx);
    let mut tx = db.begin().await.unwrap();
    let err = insert_lines(&mut tx, r.count, &[r.product], Uuid::new_v4())
        .await
        .unwrap_err();
    assert_eq!(
        violation(err).1.as_deref(),
        Some("count_lines_location_id_fkey")
    );
    drop(tx);
    let mut tx = db.begin().await.unwrap();
    let err = insert_lines(&mut tx, Uuid::new_v4(), &[r.product], r.location)
        .await
        .unwrap_err();
    assert_eq!(
        violation(err).1.as_deref(),
        Some("count_lines_count_id_fkey")
    );
    drop(tx);

    // An update that points a line at a missing device is refused too.
    let mut tx = db.begin().await.unwrap();
    insert_lines(&mut tx, r.count, &[r.product], r.location)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let refused = refusal(
        &db,
        "UPDATE count_lines SET counted_by_device = $1",
        Uuid::new_v4(),
    )
    .await;
    assert_eq!(
        refused.1.as_deref(),
        Some("count_lines_counted_by_device_fkey")
    );

    // A line's position is fixed, so updates need not re-check it.
    let refused = refusal(
        &db,
        "UPDATE count_lines SET location_id = $1",
        Uuid::new_v4(),
    )
    .await;
    assert_eq!(refused.0, "23000");

    let err = sqlx::query(
        "INSERT INTO scan_events (device_id, event_id, barcode, action, quantity, status)
         VALUES ($1, $2, '123', 'lookup', 1, 'rejected')",
    )
    .bind(Uuid::new_v4())
    .bind(Uuid::new_v4())
    .execute(&db)
    .await
    .unwrap_err();
    assert_eq!(
        violation(err),
        (
            "23503".to_owned(),
            Some("scan_events_device_id_fkey".into())
        )
    );
    let lines: i64 = sqlx::query_scalar("SELECT count(*) FROM count_lines")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(lines, 1, "only the committed good line is there");
}

#[sqlx::test]
async fn a_referenced_row_is_not_deleted_and_a_count_session_takes_its_lines_along(db: PgPool) {
    let r = rows(&db).await;
    let mut tx = db.begin().await.unwrap();
    insert_lines(&mut tx, r.count, &[r.product], r.location)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let refused = refusal(&db, "DELETE FROM locations WHERE id = $1", r.location).await;
    assert_eq!(
        refused,
        (
            "23503".to_owned(),
            Some("count_lines_location_id_fkey".into())
        )
    );
    let refused = refusal(&db, "DELETE FROM products WHERE id = $1", r.product).await;
    assert_eq!(refused.1.as_deref(), Some("count_lines_product_id_fkey"));
    let refused = refusal(
        &db,
        "UPDATE products SET id = gen_random_uuid() WHERE id = $1",
        r.product,
    )
    .await;
    assert_eq!(refused.0, "23503", "ids never change");

    // Under REPEATABLE READ a delete's check could miss a newer reference: refused outright.
    let mut tx = db.begin().await.unwrap();
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        .execute(&mut *tx)
        .await
        .unwrap();
    let err = sqlx::query("DELETE FROM count_sessions WHERE id = $1")
        .bind(r.count)
        .execute(&mut *tx)
        .await
        .unwrap_err();
    assert_eq!(violation(err).0, "55000");
    drop(tx);

    sqlx::query("DELETE FROM count_sessions WHERE id = $1")
        .bind(r.count)
        .execute(&db)
        .await
        .unwrap();
    let lines: i64 = sqlx::query_scalar("SELECT count(*) FROM count_lines")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(lines, 0, "the session's lines went with it");
    sqlx::query("DELETE FROM locations WHERE id = $1")
        .bind(r.location)
        .execute(&db)
        .await
        .expect("no longer referenced");
}

/// The lock the insert takes on the referenced row makes a concurrent delete
/// wait for it, and then see the new reference and fail; without the lock the
/// delete would go through and leave the line pointing nowhere.
#[sqlx::test]
async fn a_delete_racing_an_insert_of_a_reference_waits_for_it_and_is_refused(db: PgPool) {
    let r = rows(&db).await;
    let mut inserting = db.begin().await.unwrap();
    insert_lines(&mut inserting, r.count, &[r.product], r.location)
        .await
        .unwrap();

    let err = delete_racing(
        &db,
        inserting,
        "DELETE FROM locations WHERE id = $1",
        r.location,
    )
    .await;
    assert_eq!(
        violation(err).1.as_deref(),
        Some("count_lines_location_id_fkey")
    );
    let orphans: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM count_lines c WHERE NOT EXISTS (SELECT 1 FROM locations l WHERE l.id = c.location_id)",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(orphans, 0);
}

#[sqlx::test]
async fn a_scan_event_naming_a_missing_row_is_refused_and_a_named_row_is_not_deleted(db: PgPool) {
    let r = rows(&db).await;
    let device = device(&db).await;
    let mut conn = db.acquire().await.unwrap();
    // One good event and one bad one in the same statement: all refused.
    let missing = Uuid::new_v4();
    for (device, products, location, transaction, constraint) in [
        (
            missing,
            vec![r.product],
            r.location,
            None,
            "scan_events_device_id_fkey",
        ),
        (
            device,
            vec![r.product, missing],
            r.location,
            None,
            "scan_events_product_id_fkey",
        ),
        (
            device,
            vec![r.product],
            missing,
            None,
            "scan_events_location_id_fkey",
        ),
        (
            device,
            vec![r.product],
            r.location,
            Some(missing),
            "scan_events_transaction_id_fkey",
        ),
    ] {
        let err = insert_scans(&mut conn, device, &products, location, transaction)
            .await
            .unwrap_err();
        assert_eq!(
            violation(err),
            ("23503".to_owned(), Some(constraint.into())),
            "{constraint}"
        );
    }
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM scan_events")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(stored, 0, "nothing of a refused statement is kept");

    insert_scans(&mut conn, device, &[r.product], r.location, None)
        .await
        .unwrap();
    let refused = refusal(&db, "UPDATE scan_events SET product_id = $1", missing).await;
    assert_eq!(refused.1.as_deref(), Some("scan_events_product_id_fkey"));
    for (sql, id, constraint) in [
        (
            "DELETE FROM locations WHERE id = $1",
            r.location,
            "scan_events_location_id_fkey",
        ),
        (
            "DELETE FROM products WHERE id = $1",
            r.product,
            "scan_events_product_id_fkey",
        ),
        (
            "DELETE FROM devices WHERE id = $1",
            device,
            "scan_events_device_id_fkey",
        ),
    ] {
        let refused = refusal(&db, sql, id).await;
        assert_eq!(
            refused,
            ("23503".to_owned(), Some(constraint.into())),
            "{sql}"
        );
    }
}

/// As for count lines: the insert locks the rows its scan events name, so a
/// delete of one waits, then sees the new event and is refused.
#[sqlx::test]
async fn a_delete_racing_an_insert_of_a_scan_event_waits_for_it_and_is_refused(db: PgPool) {
    let r = rows(&db).await;
    let device = device(&db).await;
    let mut inserting = db.begin().await.unwrap();
    insert_scans(&mut inserting, device, &[r.product], r.location, None)
        .await
        .unwrap();
    let err = delete_racing(&db, inserting, "DELETE FROM devices WHERE id = $1", device).await;
    assert_eq!(
        violation(err).1.as_deref(),
        Some("scan_events_device_id_fkey")
    );
}

/// A ledger row as the engine writes one at `location` of the fixtures'
/// warehouse: one statement, one row per actor given.
async fn insert_ledger(
    conn: &mut sqlx::PgConnection,
    product: Uuid,
    location: Uuid,
    users: &[Uuid],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO stock_transactions (kind, product_id, warehouse_id, location_id, quantity,
             balance_after, warehouse_balance_after, actor_user_id)
         SELECT 'receipt', $1, l.warehouse_id, l.id, 1, 1, 1, u
         FROM locations l, unnest($3::uuid[]) AS u WHERE l.id = $2",
    )
    .bind(product)
    .bind(location)
    .bind(users)
    .execute(conn)
    .await
    .map(|_| ())
}

async fn user(db: &PgPool) -> Uuid {
    sqlx::query_scalar(
        "INSERT INTO users (email, display_name, role, password_hash, email_normalized)
         VALUES ('a@example.com', 'A', 'clerk', '!', 'a@example.com') RETURNING id",
    )
    .fetch_one(db)
    .await
    .unwrap()
}

/// The position `product` holds at `location` (no lot), at zero, with its level.
async fn position(db: &PgPool, product: Uuid, location: Uuid) -> Uuid {
    sqlx::query_scalar(
        "WITH lvl AS (
             INSERT INTO stock_levels (product_id, warehouse_id, quantity)
             SELECT $1, warehouse_id, 0 FROM locations WHERE id = $2
             ON CONFLICT DO NOTHING
         )
         INSERT INTO stock_positions (product_id, warehouse_id, location_id, quantity)
         SELECT $1, warehouse_id, id, 0 FROM locations WHERE id = $2 RETURNING id",
    )
    .bind(product)
    .bind(location)
    .fetch_one(db)
    .await
    .unwrap()
}

/// The ledger's references since migration 20261204230001: a row names an
/// existing position (whose own keys name the level, location and lot) and,
/// when a user acted, an existing user. Positions and users are never
/// deleted and a position's key never changes, so nothing a row names can
/// go away under it.
#[sqlx::test]
async fn a_ledger_row_names_an_existing_position_and_user_and_neither_goes_away(db: PgPool) {
    let r = rows(&db).await;
    let clerk = user(&db).await;
    let mut conn = db.acquire().await.unwrap();

    let err = insert_ledger(&mut conn, r.product, r.location, &[clerk])
        .await
        .unwrap_err();
    assert_eq!(
        violation(err),
        (
            "23503".to_owned(),
            Some("stock_transactions_position_fkey".into())
        ),
        "no position of the product at that location yet"
    );
    let held = position(&db, r.product, r.location).await;
    // One good row and one naming no user: the statement is refused whole.
    let err = insert_ledger(&mut conn, r.product, r.location, &[clerk, Uuid::new_v4()])
        .await
        .unwrap_err();
    assert_eq!(
        violation(err),
        (
            "23503".to_owned(),
            Some("stock_transactions_actor_user_id_fkey".into())
        )
    );
    insert_ledger(&mut conn, r.product, r.location, &[clerk])
        .await
        .unwrap();
    let rows_kept: i64 = sqlx::query_scalar("SELECT count(*) FROM stock_transactions")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(rows_kept, 1);

    let other_bin: Uuid = sqlx::query_scalar(
        "INSERT INTO locations (warehouse_id, code, name)
         SELECT warehouse_id, 'BIN-2', 'Bin 2' FROM locations WHERE id = $1 RETURNING id",
    )
    .bind(r.location)
    .fetch_one(&db)
    .await
    .unwrap();
    for (sql, id) in [
        ("DELETE FROM stock_positions WHERE id = $1", held),
        ("UPDATE stock_positions SET location_id = $1", other_bin),
        ("DELETE FROM users WHERE id = $1", clerk),
        ("DELETE FROM locations WHERE id = $1", r.location),
        ("DELETE FROM products WHERE id = $1", r.product),
    ] {
        assert_eq!(refusal(&db, sql, id).await.0, "23503", "{sql}");
    }
    // Moving stock in or out of a position still updates it.
    sqlx::query("UPDATE stock_positions SET quantity = 1 WHERE id = $1")
        .bind(held)
        .execute(&db)
        .await
        .unwrap();
}

/// Why the keys above are not foreign keys: a foreign key locks the row it
/// names, and every movement of a warehouse names its DEFAULT location and
/// every movement of a clerk the clerk's row, so concurrent movements queued
/// on those two rows (bench/README.md, "The ledger names its position").
/// Here a transaction holds both rows locked: a ledger row naming them is
/// written without waiting (with the foreign keys it waited, and the
/// lock_timeout refused it).
#[sqlx::test]
async fn writing_a_ledger_row_locks_neither_its_location_nor_its_user(db: PgPool) {
    let r = rows(&db).await;
    let clerk = user(&db).await;
    position(&db, r.product, r.location).await;
    let mut holder = db.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM locations WHERE id = $1 FOR UPDATE")
        .bind(r.location)
        .execute(&mut *holder)
        .await
        .unwrap();
    sqlx::query("SELECT 1 FROM users WHERE id = $1 FOR UPDATE")
        .bind(clerk)
        .execute(&mut *holder)
        .await
        .unwrap();

    let mut writer = db.begin().await.unwrap();
    sqlx::query("SET LOCAL lock_timeout = '2s'")
        .execute(&mut *writer)
        .await
        .unwrap();
    insert_ledger(&mut writer, r.product, r.location, &[clerk])
        .await
        .expect("written while the location and user rows are locked elsewhere");
    writer.commit().await.unwrap();
    holder.rollback().await.unwrap();
}
