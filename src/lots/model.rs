//! Response bodies of the lots API: lots, recall traces, serial numbers.

use poem_openapi::Object;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use crate::{positions::model::StockPosition, stock::model::TransactionKind};

/// A lot (batch) of a product, with what is on hand of it.
#[derive(Debug, Clone, Object, sqlx::FromRow)]
pub struct Lot {
    /// Identifier (UUID) of this lot.
    pub id: Uuid,
    /// The product (UUID).
    pub product_id: Uuid,
    /// The lot code, unique per product (GS1 AI 10).
    pub code: String,
    /// The expiry date (GS1 AI 17); null when the lot does not expire.
    pub expires_on: Option<Date>,
    /// Units of this lot on hand, over every warehouse and location.
    pub quantity: i64,
    /// When the lot was first received (RFC 3339).
    pub created_at: OffsetDateTime,
}

/// One ledger row in a trace: a receipt, a movement or an issue.
#[derive(Debug, Clone, Object, sqlx::FromRow)]
pub struct TracedMovement {
    /// Identifier (UUID) of the ledger row (`GET /api/v1/transactions/{id}`).
    pub id: Uuid,
    /// The kind of movement.
    pub kind: TransactionKind,
    /// The warehouse (UUID).
    pub warehouse_id: Uuid,
    /// The warehouse's code.
    pub warehouse_code: String,
    /// The location (UUID).
    pub location_id: Uuid,
    /// The location's path, e.g. `A/A-01/A-01-3`.
    pub location_path: String,
    /// Signed: positive arrived, negative left.
    pub quantity: i64,
    /// The lot's code; null for stock without a lot.
    pub lot: Option<String>,
    /// The serial number moved; null when the row is not about one serial.
    pub serial: Option<String>,
    /// The document (order, delivery note...) given with the movement.
    pub reference: Option<String>,
    /// Shared by the two rows of a transfer.
    pub transfer_id: Option<Uuid>,
    /// When the movement was recorded (RFC 3339).
    pub created_at: OffsetDateTime,
}

/// A recall report: everything that happened to a lot, and where what is
/// left of it sits now.
#[derive(Debug, Object)]
pub struct LotTrace {
    /// The lot, with its quantity on hand.
    pub lot: Lot,
    /// The product's SKU.
    pub sku: String,
    /// Every ledger row of the lot, oldest first.
    pub movements: Vec<TracedMovement>,
    /// The positions holding the lot now.
    pub remaining: Vec<StockPosition>,
}

/// Where one serial number is, and where it has been.
#[derive(Debug, Object)]
pub struct SerialReport {
    /// The product (UUID).
    pub product_id: Uuid,
    /// The serial number.
    pub serial: String,
    /// true while the unit is in stock.
    pub in_stock: bool,
    /// The warehouse holding it now (UUID); null when it is not in stock.
    pub warehouse_id: Option<Uuid>,
    /// The code of the warehouse holding it now; null when it is not in stock.
    pub warehouse_code: Option<String>,
    /// The location holding it now (UUID); null when it is not in stock.
    pub location_id: Option<Uuid>,
    /// The path of the location holding it now; null when it is not in stock.
    pub location_path: Option<String>,
    /// Its lot (UUID); null when it has none or is not in stock.
    pub lot_id: Option<Uuid>,
    /// Its lot's code; null when it has none or is not in stock.
    pub lot: Option<String>,
    /// Every ledger row of this serial number, oldest first.
    pub history: Vec<TracedMovement>,
}

/// Where a serial number is now (a `serial_numbers` row in stock).
#[derive(Debug, sqlx::FromRow)]
pub struct SerialWhereabouts {
    pub warehouse_id: Uuid,
    pub warehouse_code: String,
    pub location_id: Uuid,
    pub location_path: String,
    pub lot_id: Option<Uuid>,
    pub lot: Option<String>,
}
