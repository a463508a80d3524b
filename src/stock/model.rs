//! Request and response bodies of the stock and transactions APIs.

use poem_openapi::{Enum, Object};
use rust_decimal::Decimal;
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
    pub id: Uuid,
    pub kind: TransactionKind,
    pub product_id: Uuid,
    pub warehouse_id: Uuid,
    /// Signed: positive adds stock, negative removes it.
    pub quantity: i64,
    /// The level of this product in this warehouse right after this row.
    pub balance_after: i64,
    pub unit_cost: Option<Decimal>,
    /// Shared by the two rows of a transfer.
    pub transfer_id: Option<Uuid>,
    pub reason: Option<String>,
    pub reference: Option<String>,
    pub note: Option<String>,
    /// Batch/lot from a GS1 scan (AI 10).
    pub lot: Option<String>,
    /// Expiry from a GS1 scan (AI 17).
    pub expires_on: Option<Date>,
    /// Serial number from a GS1 scan (AI 21).
    pub serial: Option<String>,
    pub count_id: Option<Uuid>,
    /// The user who posted it (or null when a device did).
    pub actor_user_id: Option<Uuid>,
    /// The scanner device that posted it (or null when a user did).
    pub actor_device_id: Option<Uuid>,
    pub created_at: OffsetDateTime,
}

/// A stock level after a movement.
#[derive(Debug, Clone, Object)]
pub struct Level {
    pub product_id: Uuid,
    pub warehouse_id: Uuid,
    pub quantity: i64,
}

/// What a movement wrote: its ledger row(s) and the resulting level(s).
#[derive(Debug, Clone, Object)]
pub struct MovementResult {
    pub transactions: Vec<StockTransaction>,
    pub levels: Vec<Level>,
}

/// Goods arriving in a warehouse.
#[derive(Debug, Clone, Object)]
pub struct ReceiveRequest {
    pub product_id: Uuid,
    pub warehouse_id: Uuid,
    /// Units received, at least 1.
    pub quantity: i64,
    /// Cost per unit of this receipt (a decimal string).
    pub unit_cost: Option<Decimal>,
    /// e.g. a purchase order or delivery note number.
    pub reference: Option<String>,
    pub note: Option<String>,
}

/// Goods leaving a warehouse.
#[derive(Debug, Clone, Object)]
pub struct IssueRequest {
    pub product_id: Uuid,
    pub warehouse_id: Uuid,
    /// Units issued, at least 1; refused (409) beyond what is on hand.
    pub quantity: i64,
    /// e.g. a sales order or work order number.
    pub reference: Option<String>,
    pub note: Option<String>,
}

/// A correction: give exactly one of `new_quantity` and `delta`.
#[derive(Debug, Clone, Object)]
pub struct AdjustRequest {
    pub product_id: Uuid,
    pub warehouse_id: Uuid,
    /// The quantity that is really there.
    pub new_quantity: Option<i64>,
    /// The signed change.
    pub delta: Option<i64>,
    pub reason: AdjustReason,
    pub note: Option<String>,
}

/// Stock moving between two warehouses, as one atomic pair of ledger rows.
#[derive(Debug, Clone, Object)]
pub struct TransferRequest {
    pub product_id: Uuid,
    pub from_warehouse_id: Uuid,
    /// Must differ from `from_warehouse_id`.
    pub to_warehouse_id: Uuid,
    /// Units moved, at least 1.
    pub quantity: i64,
    pub reference: Option<String>,
    pub note: Option<String>,
}

/// A product's stock in one warehouse.
#[derive(Debug, Clone, Object, sqlx::FromRow)]
pub struct StockLevel {
    pub product_id: Uuid,
    pub sku: String,
    pub warehouse_id: Uuid,
    pub warehouse_code: String,
    pub quantity: i64,
    pub reorder_point: i32,
    pub updated_at: OffsetDateTime,
}

/// A product's stock in one warehouse, with its value.
#[derive(Debug, Clone, Object)]
pub struct WarehouseStock {
    pub warehouse_id: Uuid,
    pub warehouse_code: String,
    pub quantity: i64,
    /// quantity × the product's unit cost.
    pub value: Decimal,
}

/// A product's stock everywhere.
#[derive(Debug, Clone, Object)]
pub struct ProductStock {
    pub product_id: Uuid,
    pub total: i64,
    /// total × the product's unit cost.
    pub value: Decimal,
    pub warehouses: Vec<WarehouseStock>,
}
