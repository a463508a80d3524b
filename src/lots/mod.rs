//! Lots of a product, recall traces and serial numbers: the read side of
//! "which". The movement engine (`src/stock/`) creates lots and serial
//! numbers; this module only answers where they are and where they have been.
//! Quantities under an open blind count are left out for viewers and clerks,
//! as `/stock` does; the ledger rows of a trace are shown to all readers.

pub mod model;
pub mod repo;

use poem::web::Data;
use poem_openapi::{
    param::{Path, Query},
    payload::Json,
    OpenApi,
};
use uuid::Uuid;

use self::model::{Lot, LotTrace, SerialReport};
use crate::{
    auth::principal::ViewerAuth,
    error::{ApiError, Result},
    pagination::{Page, PageRequest},
    positions::{self, repo::PositionFilter},
    state::AppState,
    stock::blind::hides_blind_counts,
    Tags,
};

fn lot_not_found(id: Uuid) -> ApiError {
    ApiError::not_found(format!("lot {id}"))
}

pub struct LotsApi;

#[OpenApi(tag = "Tags::Lots")]
impl LotsApi {
    /// A product's lots (viewer), by code, each with its quantity on hand.
    #[oai(
        path = "/api/v1/products/:id/lots",
        method = "get",
        operation_id = "listProductLots"
    )]
    async fn of_product(
        &self,
        auth: ViewerAuth,
        state: Data<&AppState>,
        /// The product (UUID).
        id: Path<Uuid>,
        /// Only lots with stock on hand (true) or only used-up ones (false).
        in_stock: Query<Option<bool>>,
        /// Page size, 1-500 (default 50).
        limit: Query<Option<u32>>,
        /// `next_cursor` from the previous page.
        cursor: Query<Option<String>>,
    ) -> Result<Json<Page<Lot>>> {
        let page = PageRequest::<String>::new(limit.0, cursor.0.as_deref())?;
        if repo::sku(&state.db, id.0).await?.is_none() {
            return Err(ApiError::not_found(format!("product {}", id.0)));
        }
        let rows = repo::of_product(
            &state.db,
            id.0,
            hides_blind_counts(&auth.0),
            in_stock.0,
            page.after.clone(),
            page.fetch(),
        )
        .await?;
        Ok(Json(page.page(rows, |l| l.code.clone(), |l| l)))
    }

    /// One lot (viewer), with its quantity on hand.
    #[oai(path = "/api/v1/lots/:id", method = "get", operation_id = "getLot")]
    async fn get(
        &self,
        auth: ViewerAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
    ) -> Result<Json<Lot>> {
        let lot = repo::get(&state.db, id.0, hides_blind_counts(&auth.0))
            .await?
            .ok_or_else(|| lot_not_found(id.0))?;
        Ok(Json(lot))
    }

    /// A recall report of a lot (viewer): every receipt, transfer, adjustment
    /// and issue of it, oldest first, with their references, and the positions
    /// that hold what is left of it now.
    #[oai(
        path = "/api/v1/lots/:id/trace",
        method = "get",
        operation_id = "traceLot"
    )]
    async fn trace(
        &self,
        auth: ViewerAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
    ) -> Result<Json<LotTrace>> {
        let hide_blind = hides_blind_counts(&auth.0);
        let lot = repo::get(&state.db, id.0, hide_blind)
            .await?
            .ok_or_else(|| lot_not_found(id.0))?;
        let sku = repo::sku(&state.db, lot.product_id)
            .await?
            .ok_or_else(|| lot_not_found(id.0))?;
        let movements = repo::lot_movements(&state.db, id.0).await?;
        let filter = PositionFilter {
            product_id: Some(lot.product_id),
            lot_id: Some(id.0),
            hide_blind,
            ..PositionFilter::default()
        };
        let remaining = positions::repo::list(&state.db, &filter, None, None).await?;
        Ok(Json(LotTrace {
            lot,
            sku,
            movements,
            remaining,
        }))
    }

    /// Where a serial number of a product is now, and its history (viewer).
    /// 404 when the serial number was never received.
    #[oai(
        path = "/api/v1/products/:id/serials/:serial",
        method = "get",
        operation_id = "getSerial"
    )]
    async fn serial(
        &self,
        _auth: ViewerAuth,
        state: Data<&AppState>,
        /// The product (UUID).
        id: Path<Uuid>,
        /// The serial number (GS1 AI 21).
        serial: Path<String>,
    ) -> Result<Json<SerialReport>> {
        let serial = serial.0.trim().to_owned();
        let history = repo::serial_movements(&state.db, id.0, &serial).await?;
        let now = repo::serial_in_stock(&state.db, id.0, &serial).await?;
        if history.is_empty()
            && now.is_none()
            && !repo::serial_known(&state.db, id.0, &serial).await?
        {
            return Err(ApiError::not_found(format!(
                "serial number {serial:?} of product {}",
                id.0
            )));
        }
        Ok(Json(SerialReport {
            product_id: id.0,
            serial,
            in_stock: now.is_some(),
            warehouse_id: now.as_ref().map(|n| n.warehouse_id),
            warehouse_code: now.as_ref().map(|n| n.warehouse_code.clone()),
            location_id: now.as_ref().map(|n| n.location_id),
            location_path: now.as_ref().map(|n| n.location_path.clone()),
            lot_id: now.as_ref().and_then(|n| n.lot_id),
            lot: now.and_then(|n| n.lot),
            history,
        }))
    }
}
