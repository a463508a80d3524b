//! Request and response bodies of the warehouses API.

use poem_openapi::{payload::Json, ApiResponse, Object};
use time::OffsetDateTime;
use uuid::Uuid;

/// A place that holds stock.
#[derive(Debug, Clone, Object, sqlx::FromRow)]
pub struct Warehouse {
    /// Identifier (UUID) of this warehouse.
    pub id: Uuid,
    /// Short unique code (case-insensitive), e.g. `WH-01`.
    pub code: String,
    /// Display name.
    pub name: String,
    /// Postal address; may span several lines.
    pub address: String,
    /// Inactive warehouses accept no stock movements.
    pub active: bool,
    /// Bumped by every change; also the `ETag`.
    pub version: i32,
    /// When this warehouse was created (RFC 3339).
    pub created_at: OffsetDateTime,
    /// When this warehouse last changed (RFC 3339).
    pub updated_at: OffsetDateTime,
}

/// A new warehouse.
#[derive(Debug, Object)]
pub struct CreateWarehouse {
    /// 1-32 characters: letters, digits, `.`, `_`, `-`.
    pub code: String,
    /// Display name.
    pub name: String,
    /// Postal address; may span several lines.
    #[oai(default)]
    pub address: String,
}

/// Changes to a warehouse; absent fields stay as they are.
#[derive(Debug, Object)]
pub struct UpdateWarehouse {
    /// Short unique code (case-insensitive).
    pub code: Option<String>,
    /// Display name.
    pub name: Option<String>,
    /// Postal address; may span several lines.
    pub address: Option<String>,
    /// false deactivates: refused (409) while the warehouse holds stock.
    pub active: Option<bool>,
}

/// A warehouse with its `ETag`.
#[derive(ApiResponse)]
pub enum WarehouseResponse {
    /// The warehouse.
    #[oai(status = 200)]
    Ok(Json<Warehouse>, #[oai(header = "ETag")] String),
    /// Created.
    #[oai(status = 201)]
    Created(Json<Warehouse>, #[oai(header = "ETag")] String),
}
