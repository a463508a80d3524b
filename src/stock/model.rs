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
    /// The location in the warehouse (UUID); its DEFAULT location unless one was named.
    pub location_id: Uuid,
    /// The lot (UUID) of a lot- or serial-tracked product; null otherwise.
    pub lot_id: Option<Uuid>,
    /// Signed: positive adds stock, negative removes it.
    pub quantity: i64,
    /// The quantity of this position (product, warehouse, location, lot)
    /// right after this row. Null for device keys, viewers and clerks while a
    /// blind count covers this (product, warehouse): they are the ones
    /// counting it, and a balance (even one from before the count) is the
    /// quantity they are to find.
    pub balance_after: Option<i64>,
    /// The level of this product in this warehouse right after this row.
    /// Null when a blind count hides the level, as `balance_after`.
    pub warehouse_balance_after: Option<i64>,
    /// Cost of one unit moved, 4 decimals: a receipt's own cost, otherwise
    /// the level's moving average at that moment. Null on rows from before
    /// valuation, and when a blind count hides the level, as `balance_after`
    /// (the average moves with the quantity, so it would give it away).
    pub unit_cost: Option<UnitAmount>,
    /// Value of the (product, warehouse) level right after this row, at its
    /// moving average cost. Null on rows from before valuation, and when a
    /// blind count hides the level, as `balance_after`.
    pub value_after: Option<Total>,
    /// The reservation this issue fulfilled (UUID), if any.
    pub reservation_id: Option<Uuid>,
    /// Shared by the two rows of a transfer.
    pub transfer_id: Option<Uuid>,
    /// Why (for adjustments and rejected scans).
    pub reason: Option<String>,
    /// Your document number (order, delivery note...), up to 200 characters.
    pub reference: Option<String>,
    /// Free text for people; may span several lines.
    pub note: Option<String>,
    /// The lot code (for untracked products: a lot given as a note, e.g. GS1 AI 10).
    pub lot: Option<String>,
    /// The lot's expiry date (GS1 AI 17).
    pub expires_on: Option<Date>,
    /// The serial number of the unit moved (GS1 AI 21).
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
    /// Quantity in the product's unit. Null for device keys, viewers and
    /// clerks while a blind count covers the level (they are counting it).
    pub quantity: Option<i64>,
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
    /// Where in the warehouse (UUID of one of its locations); default: its DEFAULT location.
    pub location_id: Option<Uuid>,
    /// Lot (batch) code, 1-20 printable characters; required for lot-tracked
    /// products (created on first receipt), a note on the ledger row for untracked ones.
    pub lot: Option<String>,
    /// Expiry date of the lot; once a lot has one, it cannot be contradicted.
    pub expires_on: Option<Date>,
    /// Serial numbers of the units: exactly `quantity` distinct ones for a
    /// serial-tracked product, none of them already in stock.
    pub serials: Option<Vec<String>>,
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
    /// Take only from this location (UUID); default: any, first-expiring-first.
    pub location_id: Option<Uuid>,
    /// Take only this lot; default: first-expiring-first over all lots.
    pub lot: Option<String>,
    /// For serial-tracked products: exactly `quantity` serial numbers in stock here.
    pub serials: Option<Vec<String>>,
    /// Also take from expired lots (skipped otherwise).
    #[oai(default)]
    pub allow_expired: bool,
    /// Fulfil this reservation (UUID): the issue may take the stock it holds
    /// (partial issues count towards it). Without one, an issue takes only
    /// what is available (on hand minus reserved).
    pub reservation_id: Option<Uuid>,
}

/// A correction: give exactly one of `new_quantity` and `delta`.
#[derive(Debug, Clone, Object)]
pub struct AdjustRequest {
    /// The product (UUID).
    pub product_id: Uuid,
    /// The warehouse (UUID).
    pub warehouse_id: Uuid,
    /// The quantity that is really there: of the position named by
    /// `location_id`/`lot`, or of the whole warehouse when neither is given.
    pub new_quantity: Option<i64>,
    /// The signed change, not zero.
    pub delta: Option<i64>,
    /// Why (for adjustments and rejected scans).
    pub reason: AdjustReason,
    /// Free text for people; may span several lines.
    pub note: Option<String>,
    /// The location (UUID); default: the DEFAULT location when adding,
    /// first-expiring-first over all locations when removing.
    pub location_id: Option<Uuid>,
    /// The lot code (required to add stock of a lot-tracked product).
    pub lot: Option<String>,
    /// Expiry date of a lot created by this adjustment.
    pub expires_on: Option<Date>,
    /// For serial-tracked products: the serial numbers found or lost.
    pub serials: Option<Vec<String>>,
}

/// Stock moving between two warehouses, or between two locations of one, as
/// one atomic set of ledger rows (a `transfer_out` and a `transfer_in` per
/// position moved). Lots and serial numbers travel with the goods.
#[derive(Debug, Clone, Object)]
pub struct TransferRequest {
    /// The product (UUID).
    pub product_id: Uuid,
    /// The warehouse the goods leave (UUID).
    pub from_warehouse_id: Uuid,
    /// The warehouse they arrive in; may equal `from_warehouse_id` when the
    /// locations differ.
    pub to_warehouse_id: Uuid,
    /// Units moved, at least 1.
    pub quantity: i64,
    /// Your document number (order, delivery note...), up to 200 characters.
    pub reference: Option<String>,
    /// Free text for people; may span several lines.
    pub note: Option<String>,
    /// Take only from this location of the source warehouse; default: first-expiring-first.
    pub from_location_id: Option<Uuid>,
    /// Put at this location of the destination warehouse; default: its DEFAULT location.
    pub to_location_id: Option<Uuid>,
    /// Move only this lot.
    pub lot: Option<String>,
    /// For serial-tracked products: exactly `quantity` serial numbers.
    pub serials: Option<Vec<String>>,
    /// Also move expired lots (skipped otherwise).
    #[oai(default)]
    pub allow_expired: bool,
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
    /// Quantity in the product's unit (on hand).
    pub quantity: i64,
    /// Units promised to open reservations (those past `expires_at` count as released).
    pub reserved: i64,
    /// `quantity - reserved`: what an issue without a reservation may take.
    pub available: i64,
    /// Low-stock threshold of the product.
    pub reorder_point: i32,
    /// When this stock level last changed (RFC 3339).
    pub updated_at: OffsetDateTime,
    /// Only with `detail=positions` (omitted otherwise, so the answer is the
    /// v1 one): where in the warehouse the units are and of which lot; the
    /// quantities add up to `quantity`.
    #[oai(skip_serializing_if_is_none)]
    #[sqlx(skip)]
    pub positions: Option<Vec<LevelPosition>>,
}

/// What `/stock` and `/products/{id}/stock` add to each level when asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum StockDetail {
    /// Each level's positions (`positions`): location, lot and quantity.
    Positions,
}

/// The part of a level at one location, of one lot (or of no lot).
/// Reservations promise units of a warehouse, not of a location, so a
/// position has no `reserved` of its own: the level beside it has.
#[derive(Debug, Clone, Object, sqlx::FromRow)]
pub struct LevelPosition {
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
    /// Units on hand here; always positive (empty positions are left out).
    pub quantity: i64,
}

/// A product's stock in one warehouse, with its value.
#[derive(Debug, Clone, Object)]
pub struct WarehouseStock {
    /// The warehouse (UUID).
    pub warehouse_id: Uuid,
    /// Code of the warehouse.
    pub warehouse_code: String,
    /// Quantity in the product's unit (on hand).
    pub quantity: i64,
    /// Units promised to open reservations; null for a past instant
    /// (`as_of`): the ledger is a history of stock, not of promises.
    pub reserved: Option<i64>,
    /// `quantity - reserved`; null for a past instant (`as_of`).
    pub available: Option<i64>,
    /// The weighted moving-average cost of one unit here (4 decimals).
    pub unit_cost: UnitAmount,
    /// The stock's value at that average cost, to the cent.
    pub value: Total,
    /// Only with `detail=positions` (omitted otherwise, so the answer is the
    /// v1 one): where in the warehouse the units are and of which lot; the
    /// quantities add up to `quantity`.
    #[oai(skip_serializing_if_is_none)]
    pub positions: Option<Vec<LevelPosition>>,
}

/// A product's stock everywhere.
#[derive(Debug, Clone, Object)]
pub struct ProductStock {
    /// The product (UUID).
    pub product_id: Uuid,
    /// The instant these figures are for: `as_of` if given, otherwise now (RFC 3339).
    pub as_of: OffsetDateTime,
    /// Units on hand over all warehouses.
    pub total: i64,
    /// Units promised over all warehouses; null for a past instant (`as_of`).
    pub reserved: Option<i64>,
    /// `total - reserved`; null for a past instant (`as_of`).
    pub available: Option<i64>,
    /// Sum of the warehouses' values (each at its own moving-average cost), to the cent.
    pub value: Total,
    /// Stock per warehouse.
    pub warehouses: Vec<WarehouseStock>,
}

/// A product's stock and value in one warehouse at an instant.
#[derive(Debug, Clone, Object)]
pub struct ValuationLine {
    /// The product (UUID).
    pub product_id: Uuid,
    /// Stock keeping unit of the product.
    pub sku: String,
    /// The warehouse (UUID).
    pub warehouse_id: Uuid,
    /// Code of the warehouse.
    pub warehouse_code: String,
    /// Units on hand at that instant.
    pub quantity: i64,
    /// The weighted moving-average cost of one unit at that instant (4 decimals).
    pub unit_cost: UnitAmount,
    /// The value at that instant, to the cent.
    pub value: Total,
}

/// Sums over every line of a valuation (all pages).
#[derive(Debug, Clone, Object)]
pub struct ValuationTotals {
    /// Units on hand.
    pub quantity: i64,
    /// Value, the exact line values summed, then rounded to the cent.
    pub value: Total,
}

/// Stock value per product and warehouse at an instant, one page of it.
#[derive(Debug, Clone, Object)]
pub struct Valuation {
    /// The instant valued (RFC 3339). Later pages keep the first page's instant.
    pub as_of: OffsetDateTime,
    /// Totals over all pages; on the first page only (null when a `cursor` was given).
    pub totals: Option<ValuationTotals>,
    /// Lines with stock, by product then warehouse (UUID order).
    pub items: Vec<ValuationLine>,
    /// Pass as `cursor` to get the next page; null when there is none.
    pub next_cursor: Option<String>,
}
