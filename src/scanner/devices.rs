//! Scanner devices: creation (the key is shown once), listing and revocation.
//! Authentication of device keys lives in `auth::principal`.

use poem::web::Data;
use poem_openapi::{
    param::{Path, Query},
    payload::Json,
    OpenApi,
};
use time::OffsetDateTime;
use uuid::Uuid;

use super::model::{CreateDevice, CreatedDevice, Device};
use crate::{
    auth::{principal::ManagerAuth, token},
    error::{ApiError, Result, Validation},
    pagination::{Page, PageRequest},
    responses::{Created, NoContent},
    state::AppState,
    Tags,
};

/// Characters of the key kept in clear to tell keys apart ("invd_" + 6).
const KEY_PREFIX_CHARS: usize = 11;

const DEVICE_SELECT: &str = "
    SELECT d.id, d.name, d.key_prefix, d.created_at, d.last_seen_at, d.revoked_at,
           COALESCE(array_agg(dw.warehouse_id ORDER BY dw.warehouse_id)
                    FILTER (WHERE dw.warehouse_id IS NOT NULL), '{}') AS warehouse_ids
    FROM devices d LEFT JOIN device_warehouses dw ON dw.device_id = d.id";

pub struct DevicesApi;

#[OpenApi(prefix_path = "/api/v1/scanner/devices", tag = "Tags::Scanner")]
impl DevicesApi {
    /// Register a scanner device (manager). The answer holds its key, once.
    #[oai(path = "/", method = "post", operation_id = "createDevice")]
    async fn create(
        &self,
        auth: ManagerAuth,
        state: Data<&AppState>,
        body: Json<CreateDevice>,
    ) -> Result<Created<CreatedDevice>> {
        let mut warehouse_ids = body.warehouse_ids.clone();
        warehouse_ids.sort();
        warehouse_ids.dedup();
        let mut v = Validation::new();
        v.check(
            (1..=100).contains(&body.name.trim().chars().count()),
            "name",
            "must be 1-100 characters",
        );
        v.check(
            (1..=100).contains(&warehouse_ids.len()),
            "warehouse_ids",
            "must list 1-100 warehouses",
        );
        v.finish()?;

        let key = token::random_secret(token::DEVICE_KEY_PREFIX);
        let mut tx = crate::db::begin(&state.db).await?;
        let active: i64 =
            sqlx::query_scalar("SELECT count(*) FROM warehouses WHERE id = ANY($1) AND active")
                .bind(&warehouse_ids)
                .fetch_one(&mut *tx)
                .await?;
        if active != warehouse_ids.len() as i64 {
            return Err(ApiError::field(
                "warehouse_ids",
                "every warehouse must exist and be active",
            ));
        }
        let id: Uuid = sqlx::query_scalar(
            "INSERT INTO devices (name, key_prefix, key_hash, created_by)
             VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(body.name.trim())
        .bind(&key[..KEY_PREFIX_CHARS])
        .bind(token::sha256(&key))
        .bind(auth.0.user_id())
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO device_warehouses (device_id, warehouse_id) SELECT $1, unnest($2::uuid[])",
        )
        .bind(id)
        .bind(&warehouse_ids)
        .execute(&mut *tx)
        .await?;
        let device = fetch(&mut *tx, id)
            .await?
            .ok_or_else(|| ApiError::not_found("device"))?;
        tx.commit().await?;
        Ok(Created::new(CreatedDevice {
            device,
            api_key: key,
        }))
    }

    /// List scanner devices (manager), newest first.
    #[oai(path = "/", method = "get", operation_id = "listDevices")]
    async fn list(
        &self,
        _auth: ManagerAuth,
        state: Data<&AppState>,
        /// Page size, 1-500 (default 50).
        limit: Query<Option<u32>>,
        /// `next_cursor` from the previous page.
        cursor: Query<Option<String>>,
    ) -> Result<Json<Page<Device>>> {
        let page = PageRequest::<(OffsetDateTime, Uuid)>::new(limit.0, cursor.0.as_deref())?;
        let (at, id) = page.after.unzip();
        let sql = format!(
            "{DEVICE_SELECT}
             WHERE $1::timestamptz IS NULL OR (d.created_at, d.id) < ($1, $2)
             GROUP BY d.id ORDER BY d.created_at DESC, d.id DESC LIMIT $3"
        );
        let rows: Vec<Device> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(at)
            .bind(id)
            .bind(page.fetch())
            .fetch_all(&state.db)
            .await?;
        Ok(Json(page.page(rows, |d| (d.created_at, d.id), |d| d)))
    }

    /// Revoke a device's key (manager). Its events already posted stay in the ledger.
    #[oai(path = "/:id", method = "delete", operation_id = "revokeDevice")]
    async fn revoke(
        &self,
        _auth: ManagerAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
    ) -> Result<NoContent> {
        let found = sqlx::query(
            "UPDATE devices SET revoked_at = COALESCE(revoked_at, now()) WHERE id = $1",
        )
        .bind(id.0)
        .execute(&state.db)
        .await?;
        if found.rows_affected() == 0 {
            return Err(ApiError::not_found(format!("device {}", id.0)));
        }
        state.auth.forget_devices();
        Ok(NoContent::NoContent)
    }
}

async fn fetch(db: impl sqlx::PgExecutor<'_>, id: Uuid) -> Result<Option<Device>, sqlx::Error> {
    let sql = format!("{DEVICE_SELECT} WHERE d.id = $1 GROUP BY d.id");
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(db)
        .await
}
