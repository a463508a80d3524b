//! Response bodies of the positions API.

use poem_openapi::Object;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

/// What sits where: the quantity of one product at one location of a
/// warehouse, of one lot (or of no lot).
#[derive(Debug, Clone, Object, sqlx::FromRow)]
pub struct StockPosition {
    /// Identifier (UUID) of this position.
    pub id: Uuid,
    /// The product (UUID).
    pub product_id: Uuid,
    /// The product's SKU.
    pub sku: String,
    /// The warehouse (UUID).
    pub warehouse_id: Uuid,
    /// The warehouse's code.
    pub warehouse_code: String,
    /// The location inside the warehouse (UUID).
    pub location_id: Uuid,
    /// The location's code.
    pub location_code: String,
    /// The location's path from the top of its warehouse's tree, e.g. `A/A-01/A-01-3`.
    pub location_path: String,
    /// The lot (UUID); null for stock without a lot.
    pub lot_id: Option<Uuid>,
    /// The lot's code; null for stock without a lot.
    pub lot: Option<String>,
    /// The lot's expiry date; null when the lot does not expire or there is no lot.
    pub expires_on: Option<Date>,
    /// Units on hand here; always positive in these lists.
    pub quantity: i64,
    /// Units promised to open reservations, of the whole (product, warehouse)
    /// level this position belongs to: a reservation promises units of a
    /// warehouse, not of a location, so a position has no reserved of its own.
    pub level_reserved: i64,
    /// `quantity - reserved` of the whole (product, warehouse) level.
    pub level_available: i64,
    /// When this position last changed (RFC 3339).
    pub updated_at: OffsetDateTime,
}

/// A position whose lot expires within the window asked for.
#[derive(Debug, Clone, Object, sqlx::FromRow)]
pub struct ExpiringStock {
    /// The position.
    #[oai(flatten)]
    #[sqlx(flatten)]
    pub position: StockPosition,
    /// true when the lot's expiry date has passed (it is before today).
    pub expired: bool,
    /// Days from today to the expiry date; negative once expired, 0 on the day itself.
    pub days_left: i32,
}
