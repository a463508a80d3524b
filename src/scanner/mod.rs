//! Scanner devices: scan events (single and batched), lookups, GS1 element
//! strings and count sessions. Devices authenticate with their key
//! (`DeviceAuth`) and act only in their own warehouses.

pub mod counts;
pub mod devices;
pub mod events;
pub mod gs1;
pub mod model;
mod repo;
pub mod user_scans;

use poem::web::Data;
use poem_openapi::{
    param::{Path, Query},
    payload::Json,
    OpenApi,
};
use time::OffsetDateTime;
use uuid::Uuid;

use self::model::{
    BatchResult, DeviceLookup, DeviceStock, ScanBatch, ScanEvent, ScanRecord, ScanResult,
};
use crate::{
    auth::principal::{ClerkAuth, DeviceAuth, ManagerAuth, Principal},
    catalog,
    error::{ApiError, Result},
    pagination::{Page, PageRequest},
    state::AppState,
    stock::blind::{hides_blind_counts, under_open_blind_count},
    Tags,
};

fn device_of(p: &Principal) -> (Uuid, &[Uuid]) {
    match p {
        Principal::Device { id, warehouse_ids } => (*id, warehouse_ids.as_slice()),
        Principal::User { .. } => unreachable!("DeviceAuth admits devices only"),
    }
}

pub struct ScannerApi;

#[OpenApi(prefix_path = "/api/v1/scanner", tag = "Tags::Scanner")]
impl ScannerApi {
    /// Post one scan (device key). The answer says `applied`, `duplicate` (sent
    /// before: the first answer, nothing applied again) or `rejected` (with the
    /// reason; kept for review).
    #[oai(path = "/events", method = "post", operation_id = "postScanEvent")]
    async fn event(
        &self,
        auth: DeviceAuth,
        state: Data<&AppState>,
        body: Json<ScanEvent>,
    ) -> Result<Json<ScanResult>> {
        let (device, warehouses) = device_of(&auth.0);
        let mut results = events::process(
            &state,
            device,
            warehouses,
            std::slice::from_ref(&body.0),
            hides_blind_counts(&auth.0),
        )
        .await?;
        Ok(Json(results.remove(0)))
    }

    /// Post up to 500 scans at once (device key), e.g. after working offline.
    /// Processed in the order given; a rejected event does not stop the others;
    /// the answer lists every outcome in the same order.
    #[oai(
        path = "/events/batch",
        method = "post",
        operation_id = "postScanBatch"
    )]
    async fn batch(
        &self,
        auth: DeviceAuth,
        state: Data<&AppState>,
        body: Json<ScanBatch>,
    ) -> Result<Json<BatchResult>> {
        let (device, warehouses) = device_of(&auth.0);
        let results = events::process(
            &state,
            device,
            warehouses,
            &body.events,
            hides_blind_counts(&auth.0),
        )
        .await?;
        Ok(Json(BatchResult { results }))
    }

    /// Post 1-500 scans as the signed-in user (clerk), e.g. from the web console.
    ///
    /// The same engine and rules as device scans (GS1, pack quantities,
    /// duplicates by `event_id`, rejections kept), through a device row of the
    /// user's own that holds no usable key; every warehouse is allowed. Answers
    /// 200 with one outcome per event in order; 401 without a valid token; 403
    /// for viewers, device keys and users whose console device was revoked; 422
    /// for an empty or oversized batch.
    #[oai(
        path = "/console-events",
        method = "post",
        operation_id = "postUserScanEvents"
    )]
    async fn user_events(
        &self,
        auth: ClerkAuth,
        state: Data<&AppState>,
        body: Json<ScanBatch>,
    ) -> Result<Json<BatchResult>> {
        let user = auth.0.user_id().expect("ClerkAuth admits users only");
        let (device, warehouses) = user_scans::console_device(&state, user).await?;
        let results = events::process(
            &state,
            device,
            &warehouses,
            &body.events,
            hides_blind_counts(&auth.0),
        )
        .await?;
        Ok(Json(BatchResult { results }))
    }

    /// Stored scan events (manager), newest first: `status=rejected` lists what
    /// needs fixing.
    #[oai(path = "/events", method = "get", operation_id = "listScanEvents")]
    async fn list(
        &self,
        _auth: ManagerAuth,
        state: Data<&AppState>,
        /// `applied` or `rejected`.
        status: Query<Option<String>>,
        device_id: Query<Option<Uuid>>,
        /// Page size, 1-500 (default 50).
        limit: Query<Option<u32>>,
        /// `next_cursor` from the previous page.
        cursor: Query<Option<String>>,
    ) -> Result<Json<Page<ScanRecord>>> {
        let page = PageRequest::<(OffsetDateTime, Uuid)>::new(limit.0, cursor.0.as_deref())?;
        if let Some(s) = status.0.as_deref() {
            if s != "applied" && s != "rejected" {
                return Err(ApiError::field("status", "must be applied or rejected"));
            }
        }
        let (at, id) = page.after.unzip();
        let rows: Vec<ScanRecord> = sqlx::query_as(
            "SELECT id, device_id, event_id, barcode, action, quantity, warehouse_id, count_id, scanned_at,
                    received_at, status, reason, product_id, transaction_id
             FROM scan_events
             WHERE ($1::text IS NULL OR status = $1) AND ($2::uuid IS NULL OR device_id = $2)
               AND ($3::timestamptz IS NULL OR (received_at, id) < ($3, $4))
             ORDER BY received_at DESC, id DESC LIMIT $5",
        )
        .bind(status.0)
        .bind(device_id.0)
        .bind(at)
        .bind(id)
        .bind(page.fetch())
        .fetch_all(&state.db)
        .await?;
        Ok(Json(page.page(rows, |r| (r.received_at, r.id), |r| r)))
    }

    /// What a barcode is (device key): the product, its pack quantity and the
    /// stock in the device's warehouses. Accepts GS1 element strings too.
    #[oai(
        path = "/lookup/:barcode",
        method = "get",
        operation_id = "lookupBarcode"
    )]
    async fn lookup(
        &self,
        auth: DeviceAuth,
        state: Data<&AppState>,
        barcode: Path<String>,
    ) -> Result<Json<DeviceLookup>> {
        let (_, warehouses) = device_of(&auth.0);
        let scanned = match gs1::parse(&barcode.0) {
            Ok(Some(data)) => data.gtin.ok_or_else(|| {
                ApiError::field("barcode", "GS1 scan without a GTIN (AI 01 or 02)")
            })?,
            Ok(None) => barcode.0.clone(),
            Err(e) => return Err(ApiError::field("barcode", e.to_string())),
        };
        let found = catalog::lookup_barcode(&state, &scanned).await?;
        // Warehouses where the product is under an open blind count are left
        // out: the device may be the one counting it.
        let (levels, hidden): (Vec<(Uuid, i64)>, Vec<Uuid>) = {
            let rows: Vec<(Uuid, i64, bool)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT t.w, COALESCE(s.quantity, 0), {hidden}
                 FROM unnest($2::uuid[]) AS t(w)
                 LEFT JOIN stock_levels s ON s.product_id = $1 AND s.warehouse_id = t.w",
                hidden = under_open_blind_count("$1", "t.w")
            )))
            .bind(found.product.id)
            .bind(warehouses)
            .fetch_all(&state.db)
            .await?;
            (
                rows.iter().map(|(w, q, _)| (*w, *q)).collect(),
                rows.iter().filter(|r| r.2).map(|r| r.0).collect(),
            )
        };
        let stock = warehouses
            .iter()
            .filter(|w| !hidden.contains(w))
            .map(|w| DeviceStock {
                warehouse_id: *w,
                quantity: levels.iter().find(|(id, _)| id == w).map_or(0, |(_, q)| *q),
            })
            .collect();
        Ok(Json(DeviceLookup {
            barcode: found.barcode,
            pack_quantity: found.pack_quantity,
            product: found.product,
            stock,
        }))
    }
}
