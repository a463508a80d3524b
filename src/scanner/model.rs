//! Request and response bodies of the scanner APIs.

use poem_openapi::Object;
use time::OffsetDateTime;
use uuid::Uuid;

/// A new scanner device.
#[derive(Debug, Object)]
pub struct CreateDevice {
    /// A name people recognise, e.g. "Dock 3 handheld".
    pub name: String,
    /// The warehouses the device may post events for (at least one).
    pub warehouse_ids: Vec<Uuid>,
}

/// A scanner device.
#[derive(Debug, Clone, Object, sqlx::FromRow)]
pub struct Device {
    pub id: Uuid,
    pub name: String,
    pub warehouse_ids: Vec<Uuid>,
    /// The first characters of the key, to tell keys apart.
    pub key_prefix: String,
    pub created_at: OffsetDateTime,
    pub last_seen_at: Option<OffsetDateTime>,
    /// Set when the key was revoked; a revoked key is refused.
    pub revoked_at: Option<OffsetDateTime>,
}

/// A device just created, with its key. The key is shown only here, once.
#[derive(Debug, Object)]
pub struct CreatedDevice {
    #[oai(flatten)]
    pub device: Device,
    /// Send as `Authorization: Bearer <api_key>`. Store it now: it cannot be shown again.
    pub api_key: String,
}

/// What a scan asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, poem_openapi::Enum)]
#[oai(rename_all = "lowercase")]
pub enum ScanAction {
    /// Goods arrived: a receipt.
    Receive,
    /// Goods left: an issue.
    Issue,
    /// Counted during a stocktake (needs `count_id`).
    Count,
    /// Identify the product; moves nothing.
    Lookup,
}

impl ScanAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Receive => "receive",
            Self::Issue => "issue",
            Self::Count => "count",
            Self::Lookup => "lookup",
        }
    }
}

/// The outcome of a scan event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, poem_openapi::Enum)]
#[oai(rename_all = "lowercase")]
pub enum ScanStatus {
    /// Done now.
    Applied,
    /// Already received earlier (alone or in a batch): this is the first answer; nothing was applied again.
    Duplicate,
    /// Not applied; `reason` says why. Kept for a manager to review.
    Rejected,
}

/// One scan from a handheld.
#[derive(Debug, Clone, Object)]
pub struct ScanEvent {
    /// Made by the device (a UUID), unique per device: a resend with the same id is recognised.
    pub event_id: Uuid,
    /// The raw scan: EAN/UPC/GTIN, any Code 128/QR text, or a GS1 element string
    /// (`]C1`/`]d2`/`]Q3` prefix optional; FNC1 as ASCII 29 or `<GS>`; or `(01)...(10)...`).
    pub barcode: String,
    pub action: ScanAction,
    /// Scans of this barcode (default 1); multiplied by its pack quantity.
    pub quantity: Option<i32>,
    /// One of the device's warehouses.
    pub warehouse_id: Uuid,
    /// The open count session, for `count`.
    pub count_id: Option<Uuid>,
    /// When the device scanned it (device clock).
    pub scanned_at: Option<OffsetDateTime>,
}

/// Up to 500 scans, processed in order.
#[derive(Debug, Object)]
pub struct ScanBatch {
    pub events: Vec<ScanEvent>,
}

/// The product a scan identified.
#[derive(Debug, Clone, Object)]
pub struct ProductSummary {
    pub id: Uuid,
    pub sku: String,
    pub name: String,
    pub unit: String,
}

/// What became of one scan event.
#[derive(Debug, Clone, Object)]
pub struct ScanResult {
    pub event_id: Uuid,
    pub status: ScanStatus,
    /// Why it was rejected (unknown barcode, insufficient stock, archived product, wrong warehouse, ...).
    pub reason: Option<String>,
    /// The ledger row written, for receive/issue.
    pub transaction_id: Option<Uuid>,
    pub product: Option<ProductSummary>,
    /// Units moved or counted (scans × pack quantity × GS1 count).
    pub units: Option<i64>,
    /// The level in the event's warehouse afterwards (receive, issue, lookup).
    pub level: Option<i64>,
    /// GS1 batch/lot (AI 10).
    pub lot: Option<String>,
    /// GS1 expiry (AI 17).
    pub expires_on: Option<time::Date>,
    /// GS1 serial (AI 21).
    pub serial: Option<String>,
}

/// Outcomes of a batch, in the order of the events.
#[derive(Debug, Object)]
pub struct BatchResult {
    pub results: Vec<ScanResult>,
}

/// A stored scan event (for review of rejected ones).
#[derive(Debug, Clone, Object, sqlx::FromRow)]
pub struct ScanRecord {
    pub id: Uuid,
    pub device_id: Uuid,
    pub event_id: Uuid,
    pub barcode: String,
    pub action: String,
    pub quantity: i32,
    pub warehouse_id: Option<Uuid>,
    pub count_id: Option<Uuid>,
    pub scanned_at: Option<OffsetDateTime>,
    pub received_at: OffsetDateTime,
    /// `applied` or `rejected`.
    pub status: String,
    pub reason: Option<String>,
    pub product_id: Option<Uuid>,
    pub transaction_id: Option<Uuid>,
}

/// Stock of a product in one of the device's warehouses.
#[derive(Debug, Clone, Object)]
pub struct DeviceStock {
    pub warehouse_id: Uuid,
    pub quantity: i64,
}

/// What a handheld shows for a scanned barcode.
#[derive(Debug, Object)]
pub struct DeviceLookup {
    pub barcode: String,
    pub pack_quantity: i32,
    pub product: crate::catalog::model::Product,
    /// Levels in the device's warehouses (0 where there is none).
    pub stock: Vec<DeviceStock>,
}

/// A count session (stocktake).
#[derive(Debug, Clone, Object, sqlx::FromRow)]
pub struct CountSession {
    pub id: Uuid,
    pub warehouse_id: Uuid,
    /// `open`, `completed` or `cancelled`.
    pub status: String,
    /// Expected quantities are hidden from clerks while the count is open.
    pub blind: bool,
    /// The products counted; null means the whole warehouse.
    pub product_ids: Option<Vec<Uuid>>,
    pub opened_at: OffsetDateTime,
    pub closed_at: Option<OffsetDateTime>,
}

/// A new count session.
#[derive(Debug, Object)]
pub struct CreateCount {
    pub warehouse_id: Uuid,
    /// Products to count; empty or absent means every product stocked in the warehouse.
    #[oai(default)]
    pub product_ids: Vec<Uuid>,
    #[oai(default)]
    pub blind: bool,
}

/// One product of a count.
#[derive(Debug, Clone, Object)]
pub struct CountLine {
    pub product_id: Uuid,
    pub sku: String,
    /// The level when the session opened (hidden from clerks in blind counts).
    pub expected_quantity: Option<i64>,
    /// null until counted.
    pub counted_quantity: Option<i64>,
    /// counted - expected (hidden like expected).
    pub variance: Option<i64>,
    pub counted_at: Option<OffsetDateTime>,
}

/// A count session with its lines.
#[derive(Debug, Object)]
pub struct CountDetail {
    #[oai(flatten)]
    pub session: CountSession,
    pub lines: Vec<CountLine>,
}

/// Counted quantities entered by hand.
#[derive(Debug, Object)]
pub struct CountLinesRequest {
    pub lines: Vec<CountedLine>,
}

/// The quantity counted of one product (replaces any earlier count of it).
#[derive(Debug, Object)]
pub struct CountedLine {
    pub product_id: Uuid,
    pub counted_quantity: i64,
}
