//! Stock positions: what sits where, by (product, warehouse, location, lot),
//! and the stock whose lot expires soon. Read-only: the movement engine
//! (`src/stock/`) writes positions. Positions under an open blind count are
//! hidden from viewers and clerks exactly as `/stock` hides levels.

pub mod model;
pub mod repo;

use poem::web::Data;
use poem_openapi::{param::Query, payload::Json, OpenApi};
use time::Date;
use uuid::Uuid;

use self::{
    model::{ExpiringStock, StockPosition},
    repo::PositionFilter,
};
use crate::{
    auth::principal::ViewerAuth,
    error::{ApiError, Result},
    pagination::{Page, PageRequest},
    state::AppState,
    stock::blind::hides_blind_counts,
    Tags,
};

/// Default and largest window of `/stock/expiring`, in days.
const DEFAULT_WITHIN_DAYS: i32 = 30;
const MAX_WITHIN_DAYS: i32 = 3650;

pub struct PositionsApi;

#[OpenApi(tag = "Tags::Stock")]
impl PositionsApi {
    /// Stock positions (viewer): the quantity of each product per warehouse,
    /// location and lot, by product, warehouse, location, then lot. Empty positions are left
    /// out, and so (for viewers and clerks) are those under an open blind count.
    #[oai(
        path = "/api/v1/stock/positions",
        method = "get",
        operation_id = "listStockPositions"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        auth: ViewerAuth,
        state: Data<&AppState>,
        /// Only this product (UUID).
        product_id: Query<Option<Uuid>>,
        /// Only this warehouse (UUID).
        warehouse_id: Query<Option<Uuid>>,
        /// Only this location (UUID).
        location_id: Query<Option<Uuid>>,
        /// Only this lot (UUID).
        lot_id: Query<Option<Uuid>>,
        /// Only lots expiring before this date (`YYYY-MM-DD`); stock without expiry is left out.
        expiring_before: Query<Option<Date>>,
        /// Page size, 1-500 (default 50).
        limit: Query<Option<u32>>,
        /// `next_cursor` from the previous page.
        cursor: Query<Option<String>>,
    ) -> Result<Json<Page<StockPosition>>> {
        let page = PageRequest::<repo::PositionKey>::new(limit.0, cursor.0.as_deref())?;
        let filter = PositionFilter {
            product_id: product_id.0,
            warehouse_id: warehouse_id.0,
            location_id: location_id.0,
            lot_id: lot_id.0,
            expiring_before: expiring_before.0,
            hide_blind: hides_blind_counts(&auth.0),
        };
        let rows = repo::list(&state.db, &filter, page.after, Some(page.fetch())).await?;
        Ok(Json(page.page(rows, repo::key_of, |p| p)))
    }

    /// Stock whose lot expires within `within_days` days (viewer), soonest
    /// first; already expired stock comes first, flagged `expired: true`.
    #[oai(
        path = "/api/v1/stock/expiring",
        method = "get",
        operation_id = "listExpiringStock"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn expiring(
        &self,
        auth: ViewerAuth,
        state: Data<&AppState>,
        /// The window from today, 0-3650 days (default 30); 0 means expiring today or expired.
        within_days: Query<Option<i32>>,
        /// Only this product (UUID).
        product_id: Query<Option<Uuid>>,
        /// Only this warehouse (UUID).
        warehouse_id: Query<Option<Uuid>>,
        /// Page size, 1-500 (default 50).
        limit: Query<Option<u32>>,
        /// `next_cursor` from the previous page.
        cursor: Query<Option<String>>,
    ) -> Result<Json<Page<ExpiringStock>>> {
        let within = within_days.0.unwrap_or(DEFAULT_WITHIN_DAYS);
        if !(0..=MAX_WITHIN_DAYS).contains(&within) {
            return Err(ApiError::field(
                "within_days",
                format!("must be between 0 and {MAX_WITHIN_DAYS}"),
            ));
        }
        let page = PageRequest::<(Date, Uuid)>::new(limit.0, cursor.0.as_deref())?;
        let filter = PositionFilter {
            product_id: product_id.0,
            warehouse_id: warehouse_id.0,
            hide_blind: hides_blind_counts(&auth.0),
            ..PositionFilter::default()
        };
        let rows = repo::expiring(&state.db, &filter, within, page.after, page.fetch()).await?;
        Ok(Json(page.page(
            rows,
            // Every row has an expiry date: the query keeps only those.
            |e| (e.position.expires_on.unwrap_or(Date::MIN), e.position.id),
            |e| e,
        )))
    }
}
