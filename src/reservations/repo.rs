//! SQL of reservations. Their effect on stock (`reserved` on the level) is
//! the movement engine's (`stock::engine`): every change of a reservation's
//! hold happens there, under the level's lock.

use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use super::model::{Reservation, ReservationStatus};

/// An active reservation past its `expires_at` reads as expired, before the
/// job has released it (the engine already treats it as released).
const SELECT: &str = "
    SELECT r.id, r.product_id, r.warehouse_id, l.code AS lot, r.quantity, r.fulfilled_quantity,
           CASE WHEN s.status = 'active' THEN r.quantity - r.fulfilled_quantity ELSE 0 END AS open_quantity,
           s.status, r.reference, r.expires_at, r.created_at, r.updated_at,
           COALESCE(r.closed_at, CASE WHEN s.status = 'expired' THEN r.expires_at END) AS closed_at
    FROM reservations r
    LEFT JOIN lots l ON l.id = r.lot_id
    CROSS JOIN LATERAL (SELECT CASE WHEN r.status = 'active' AND r.expires_at <= now()
                                    THEN 'expired' ELSE r.status END AS status) s";

pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Option<Reservation>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} WHERE r.id = $1")))
        .bind(id)
        .fetch_optional(conn)
        .await
}

pub async fn insert(
    conn: &mut PgConnection,
    r: &super::model::CreateReservation,
    reference: Option<&str>,
    created_by: Option<Uuid>,
) -> Result<Uuid, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO reservations (product_id, warehouse_id, lot_id, quantity, reference, expires_at, created_by)
         VALUES ($1, $2, (SELECT l.id FROM lots l JOIN products p ON p.id = l.product_id
                          WHERE l.product_id = $1 AND l.code = $3 AND p.tracking <> 'none'),
                 $4, $5, $6, $7)
         RETURNING id",
    )
    .bind(r.product_id)
    .bind(r.warehouse_id)
    .bind(r.lot.as_deref().map(str::trim))
    .bind(r.quantity)
    .bind(reference)
    .bind(r.expires_at)
    .bind(created_by)
    .fetch_one(conn)
    .await
}

/// Filters of the list.
#[derive(Debug, Default)]
pub struct Filter {
    pub status: Option<ReservationStatus>,
    pub product_id: Option<Uuid>,
    pub warehouse_id: Option<Uuid>,
    pub reference: Option<String>,
}

/// Newest first, keyset-paginated on (created_at, id).
pub async fn list(
    db: &PgPool,
    f: &Filter,
    after: Option<(OffsetDateTime, Uuid)>,
    fetch: i64,
) -> Result<Vec<Reservation>, sqlx::Error> {
    let (at, id) = after.unzip();
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT}
         WHERE ($1::text IS NULL OR s.status = $1)
           AND ($2::uuid IS NULL OR r.product_id = $2)
           AND ($3::uuid IS NULL OR r.warehouse_id = $3)
           AND ($4::text IS NULL OR r.reference = $4)
           AND ($5::timestamptz IS NULL OR (r.created_at, r.id) < ($5, $6))
         ORDER BY r.created_at DESC, r.id DESC LIMIT $7"
    )))
    .bind(f.status.map(ReservationStatus::as_str))
    .bind(f.product_id)
    .bind(f.warehouse_id)
    .bind(&f.reference)
    .bind(at)
    .bind(id)
    .bind(fetch)
    .fetch_all(db)
    .await
}

/// Levels holding active reservations past their `expires_at` (a batch).
pub async fn levels_with_expired(
    db: &PgPool,
    limit: i64,
) -> Result<Vec<(Uuid, Uuid)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT DISTINCT product_id, warehouse_id FROM reservations
         WHERE status = 'active' AND expires_at <= now()
         ORDER BY 1, 2 LIMIT $1",
    )
    .bind(limit)
    .fetch_all(db)
    .await
}
