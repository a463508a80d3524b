//! Request and response bodies of the stock and transactions APIs.

use poem_openapi::{Enum, Object};
use rust_decimal::Decimal;

use crate::money::{Total, UnitAmount};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

/// What a ledger row records.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Enum, sqlx::Type, serde::Serialize, serde::Deserialize,
)]
#[oai(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum TransactionKind {
    /// Goods received (positive).
    Receipt,
    /// Goods issued (negative).
    Issue,
    /// A correction with a reason (either sign).
    Adjustment,
    /// The leaving half of a transfer (negative).
    TransferOut,
    /// The arriving half of a transfer (positive).
    TransferIn,
    /// Posted when a count session completes (either sign).
    CountAdjustment,
}

impl TransactionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Receipt => "receipt",
            Self::Issue => "issue",
            Self::Adjustment => "adjustment",
            Self::TransferOut => "transfer_out",
            Self::TransferIn => "transfer_in",
            Self::CountAdjustment => "count_adjustment",
        }
    }
}

/// Why stock was adjusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, sqlx::Type)]
#[oai(rename_all = "lowercase")]
#[sqlx(type_name = "text", rename_all = "lowercase")]
pub enum AdjustReason {
    Damaged,
    Lost,
    Found,
    Correction,
    Expired,
    Other,
}

/// One row of the append-only ledger.
#[derive(Debug, Clone, Object, sqlx::FromRow)]
pub struct StockTransaction {
    /// Identifier (UUID) of this stock transaction.
    pub id: Uuid,
    /// The kind of movement.
    pub kind: TransactionKind,
    /// The product (UUID).
    pub product_id: Uuid,
    /// The warehouse (UUID).
    pub warehouse_id: Uuid,
    /// Signed: positive adds stock, negative removes it.
    pub quantity: i64,
    /// The level of this product in this warehouse right after this row.
    pub balance_after: i64,
    /// Cost of one unit moved (receipts), 4 decimals; null when not given.
    pub unit_cost: Option<UnitAmount>,
    /// Shared by the two rows of a transfer.
    pub transfer_id: Option<Uuid>,
    /// Why (for adjustments and rejected scans).
    pub reason: Option<String>,
    /// Your document number (order, delivery note...), up to 200 characters.
    pub reference: Option<String>,
    /// Free text for people; may span several lines.
    pub note: Option<String>,
    /// Batch/lot from a GS1 scan (AI 10).
    pub lot: Option<String>,
    /// Expiry from a GS1 scan (AI 17).
    pub expires_on: Option<Date>,
    /// Serial number from a GS1 scan (AI 21).
    pub serial: Option<String>,
    /// The count session (UUID), for count scans and count adjustments.
    pub count_id: Option<Uuid>,
    /// The user who posted it (or null when a device did).
    pub actor_user_id: Option<Uuid>,
    /// The scanner device that posted it (or null when a user did).
    pub actor_device_id: Option<Uuid>,
    /// When this stock transaction was created (RFC 3339).
    pub created_at: OffsetDateTime,
}

/// A stock level after a movement.
#[derive(Debug, Clone, Object)]
pub struct Level {
    /// The product (UUID).
    pub product_id: Uuid,
    /// The warehouse (UUID).
    pub warehouse_id: Uuid,
    /// Quantity in the product's unit.
    pub quantity: i64,
}

/// What a movement wrote: its ledger row(s) and the resulting level(s).
#[derive(Debug, Clone, Object)]
pub struct MovementResult {
    /// The ledger rows written.
    pub transactions: Vec<StockTransaction>,
    /// The resulting stock levels.
    pub levels: Vec<Level>,
}

/// Goods arriving in a warehouse.
#[derive(Debug, Clone, Object)]
pub struct ReceiveRequest {
    /// The product (UUID).
    pub product_id: Uuid,
    /// The warehouse (UUID).
    pub warehouse_id: Uuid,
    /// Units received, at least 1.
    pub quantity: i64,
    /// Cost per unit of this receipt (a decimal string).
    pub unit_cost: Option<Decimal>,
    /// e.g. a purchase order or delivery note number.
    pub reference: Option<String>,
    /// Free text for people; may span several lines.
    pub note: Option<String>,
}

/// Goods leaving a warehouse.
#[derive(Debug, Clone, Object)]
pub struct IssueRequest {
    /// The product (UUID).
    pub product_id: Uuid,
    /// The warehouse (UUID).
    pub warehouse_id: Uuid,
    /// Units issued, at least 1; refused (409) beyond what is on hand.
    pub quantity: i64,
    /// e.g. a sales order or work order number.
    pub reference: Option<String>,
    /// Free text for people; may span several lines.
    pub note: Option<String>,
}

/// A correction: give exactly one of `new_quantity` and `delta`.
#[derive(Debug, Clone, Object)]
pub struct AdjustRequest {
    /// The product (UUID).
    pub product_id: Uuid,
    /// The warehouse (UUID).
    pub warehouse_id: Uuid,
    /// The quantity that is really there.
    pub new_quantity: Option<i64>,
    /// The signed change.
    pub delta: Option<i64>,
    /// Why (for adjustments and rejected scans).
    pub reason: AdjustReason,
    /// Free text for people; may span several lines.
    pub note: Option<String>,
}

/// Stock moving between two warehouses, as one atomic pair of ledger rows.
#[derive(Debug, Clone, Object)]
pub struct TransferRequest {
    /// The product (UUID).
    pub product_id: Uuid,
    /// The warehouse the goods leave (UUID).
    pub from_warehouse_id: Uuid,
    /// Must differ from `from_warehouse_id`.
    pub to_warehouse_id: Uuid,
    /// Units moved, at least 1.
    pub quantity: i64,
    /// Your document number (order, delivery note...), up to 200 characters.
    pub reference: Option<String>,
    /// Free text for people; may span several lines.
    pub note: Option<String>,
}

/// A product's stock in one warehouse.
#[derive(Debug, Clone, Object, sqlx::FromRow)]
pub struct StockLevel {
    /// The product (UUID).
    pub product_id: Uuid,
    /// Stock keeping unit of the product.
    pub sku: String,
    /// The warehouse (UUID).
    pub warehouse_id: Uuid,
    /// Code of the warehouse.
    pub warehouse_code: String,
    /// Quantity in the product's unit.
    pub quantity: i64,
    /// Low-stock threshold of the product.
    pub reorder_point: i32,
    /// When this stock level last changed (RFC 3339).
    pub updated_at: OffsetDateTime,
}

/// A product's stock in one warehouse, with its value.
#[derive(Debug, Clone, Object)]
pub struct WarehouseStock {
    /// The warehouse (UUID).
    pub warehouse_id: Uuid,
    /// Code of the warehouse.
    pub warehouse_code: String,
    /// Quantity in the product's unit.
    pub quantity: i64,
    /// quantity × the product's unit cost, to the cent.
    pub value: Total,
}

/// A product's stock everywhere.
#[derive(Debug, Clone, Object)]
pub struct ProductStock {
    /// The product (UUID).
    pub product_id: Uuid,
    /// Units on hand over all warehouses.
    pub total: i64,
    /// total × the product's unit cost, to the cent.
    pub value: Total,
    /// Stock per warehouse.
    pub warehouses: Vec<WarehouseStock>,
}
