//! Replenishment: which products to reorder, and how many. A read over the
//! levels and the catalog's reorder settings; it orders nothing itself.
//!
//! The rule: an active product with `reorder_point > 0` is listed when its
//! `available` (on hand minus reserved, in the warehouse asked for, else
//! over all warehouses) is at or below its reorder point, and
//! `suggested_quantity = max(reorder_quantity, reorder_point - available + 1)`:
//! the product's usual order, or, when that would not be enough, just
//! enough to get back above the point. A product whose sum would include a
//! level hidden by an open blind count is left out for those it hides from
//! (`stock::blind`).

pub mod repo;

use poem::web::Data;
use poem_openapi::{param::Query, payload::Json, Object, OpenApi};
use uuid::Uuid;

use crate::{
    auth::principal::ViewerAuth,
    error::{ApiError, Result},
    pagination::{Page, PageRequest},
    state::AppState,
    stock::blind::hides_blind_counts,
    Tags,
};

/// A product to reorder.
#[derive(Debug, Clone, Object, sqlx::FromRow)]
pub struct Replenishment {
    /// The product (UUID).
    pub product_id: Uuid,
    /// Stock keeping unit of the product.
    pub sku: String,
    /// Display name.
    pub name: String,
    /// The warehouse asked for (UUID); null when over all warehouses.
    pub warehouse_id: Option<Uuid>,
    /// Units on hand (in that warehouse, or over all).
    pub quantity: i64,
    /// Units promised to open reservations (those past `expires_at` count as released).
    pub reserved: i64,
    /// `quantity - reserved`: at or below `reorder_point` for every product listed.
    pub available: i64,
    /// The product's reorder point.
    pub reorder_point: i32,
    /// The product's usual reorder quantity.
    pub reorder_quantity: i32,
    /// `max(reorder_quantity, reorder_point - available + 1)`: the usual
    /// order, or enough to get back above the reorder point if that is more.
    pub suggested_quantity: i64,
}

pub struct ReplenishmentApi;

#[OpenApi(tag = "Tags::Replenishment")]
impl ReplenishmentApi {
    /// Products to reorder (viewer), by SKU: active products whose
    /// `available` is at or below their reorder point, in `warehouse_id` when
    /// given (422 on `warehouse_id` if there is no such warehouse), else over all warehouses;
    /// each with `suggested_quantity` = max(reorder_quantity, reorder_point -
    /// available + 1). Products with reorder point 0 are never listed. For
    /// device keys, viewers and clerks, a product with a level (in that
    /// warehouse, or anywhere) under an open blind count is left out.
    #[oai(
        path = "/api/v1/replenishment",
        method = "get",
        operation_id = "listReplenishment"
    )]
    async fn list(
        &self,
        auth: ViewerAuth,
        state: Data<&AppState>,
        /// Only this warehouse's stock counts (UUID); default: all warehouses.
        warehouse_id: Query<Option<Uuid>>,
        /// Page size, 1-500 (default 50).
        limit: Query<Option<u32>>,
        /// `next_cursor` from the previous page.
        cursor: Query<Option<String>>,
    ) -> Result<Json<Page<Replenishment>>> {
        let page = PageRequest::<(String, Uuid)>::new(limit.0, cursor.0.as_deref())?;
        if let Some(w) = warehouse_id.0 {
            if !repo::warehouse_exists(&state.db, w).await? {
                return Err(ApiError::field("warehouse_id", "no warehouse with this id"));
            }
        }
        let rows = repo::list(
            &state.db,
            warehouse_id.0,
            hides_blind_counts(&auth.0),
            page.after.clone(),
            page.fetch(),
        )
        .await?;
        Ok(Json(page.page(
            rows,
            |r| (r.sku.to_lowercase(), r.product_id),
            |r| r,
        )))
    }
}
