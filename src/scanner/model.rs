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
    /// Identifier (UUID) of this device.
    pub id: Uuid,
    /// Display name.
    pub name: String,
    /// Warehouses (UUIDs) the device may act in.
    pub warehouse_ids: Vec<Uuid>,
    /// The first characters of the key, to tell keys apart.
    pub key_prefix: String,
    /// When this device was created (RFC 3339).
    pub created_at: OffsetDateTime,
    /// Last time the device authenticated; null if never.
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
    /// What the scan asks for.
    pub action: ScanAction,
    /// Scans of this barcode, 1-10000 (default 1); multiplied by its pack
    /// quantity. Out of range, the event's outcome is `rejected`.
    pub quantity: Option<i32>,
    /// One of the device's warehouses.
    pub warehouse_id: Uuid,
    /// The open count session, for `count`.
    pub count_id: Option<Uuid>,
    /// When the device scanned it (device clock).
    pub scanned_at: Option<OffsetDateTime>,
    /// Where in the warehouse: a location's barcode or code. Default: the
    /// DEFAULT location for receipts and counts, first-expiring-first for issues.
    pub location: Option<String>,
}

/// Up to 500 scans, processed in order.
#[derive(Debug, Object)]
pub struct ScanBatch {
    /// The events, applied in order.
    pub events: Vec<ScanEvent>,
}

/// The product a scan identified.
#[derive(Debug, Clone, Object)]
pub struct ProductSummary {
    /// Identifier (UUID) of this product summary.
    pub id: Uuid,
    /// Stock keeping unit of the product.
    pub sku: String,
    /// Display name.
    pub name: String,
    /// Unit of measure stock is counted in.
    pub unit: String,
}

/// What became of one scan event.
#[derive(Debug, Clone, Object)]
pub struct ScanResult {
    /// The device's id for this event; unique per device.
    pub event_id: Uuid,
    pub status: ScanStatus,
    /// Why it was rejected (unknown barcode, insufficient stock, archived product, wrong warehouse, ...).
    pub reason: Option<String>,
    /// The ledger row written, for receive/issue.
    pub transaction_id: Option<Uuid>,
    /// The product the barcode belongs to; null when unknown.
    pub product: Option<ProductSummary>,
    /// Units moved or counted (scans × pack quantity × GS1 count).
    pub units: Option<i64>,
    /// The level in the event's warehouse afterwards (receive, issue,
    /// lookup). Null for count scans, and while an open blind count covers
    /// the level: devices and clerks are the ones counting it (an
    /// insufficient-stock `reason` then carries no figure either).
    pub level: Option<i64>,
    /// GS1 batch/lot (AI 10).
    pub lot: Option<String>,
    /// GS1 expiry (AI 17).
    pub expires_on: Option<time::Date>,
    /// GS1 serial (AI 21).
    pub serial: Option<String>,
    /// The location the stock went to or came from (the first one, when an
    /// issue took from several).
    pub location_id: Option<Uuid>,
}

/// Outcomes of a batch, in the order of the events.
#[derive(Debug, Object)]
pub struct BatchResult {
    /// One result per event, in the order sent.
    pub results: Vec<ScanResult>,
}

/// A stored scan event (for review of rejected ones).
#[derive(Debug, Clone, Object, sqlx::FromRow)]
pub struct ScanRecord {
    /// Identifier (UUID) of this scan record.
    pub id: Uuid,
    /// The device that sent it (UUID).
    pub device_id: Uuid,
    /// The device's id for this event; unique per device.
    pub event_id: Uuid,
    /// The barcode as scanned.
    pub barcode: String,
    /// What the scan asks for.
    pub action: String,
    /// Quantity in the product's unit.
    pub quantity: i32,
    /// The warehouse (UUID).
    pub warehouse_id: Option<Uuid>,
    /// The count session (UUID), for count scans and count adjustments.
    pub count_id: Option<Uuid>,
    /// When the device scanned it; null if not sent.
    pub scanned_at: Option<OffsetDateTime>,
    /// When the server received it.
    pub received_at: OffsetDateTime,
    /// `applied` or `rejected`.
    pub status: String,
    /// Why (for adjustments and rejected scans).
    pub reason: Option<String>,
    /// The product (UUID).
    pub product_id: Option<Uuid>,
    /// The ledger row written (UUID); null when none.
    pub transaction_id: Option<Uuid>,
}

/// Stock of a product in one of the device's warehouses.
#[derive(Debug, Clone, Object)]
pub struct DeviceStock {
    /// The warehouse (UUID).
    pub warehouse_id: Uuid,
    /// Quantity in the product's unit.
    pub quantity: i64,
}

/// What a handheld shows for a scanned barcode.
#[derive(Debug, Object)]
pub struct DeviceLookup {
    /// The barcode as scanned.
    pub barcode: String,
    /// Units one scan of this barcode stands for.
    pub pack_quantity: i32,
    /// The product the barcode belongs to; null when unknown.
    pub product: crate::catalog::model::Product,
    /// Levels in the device's warehouses (0 where there is none).
    pub stock: Vec<DeviceStock>,
}

/// A count session (stocktake).
#[derive(Debug, Clone, Object, sqlx::FromRow)]
pub struct CountSession {
    /// Identifier (UUID) of this count session.
    pub id: Uuid,
    /// The warehouse (UUID).
    pub warehouse_id: Uuid,
    /// `open`, `completed` or `cancelled`.
    pub status: String,
    /// Expected quantities are hidden from clerks while the count is open.
    pub blind: bool,
    /// The products counted; null means the whole warehouse.
    pub product_ids: Option<Vec<Uuid>>,
    /// The locations counted; null means the whole warehouse.
    pub location_ids: Option<Vec<Uuid>>,
    /// When the count was opened.
    pub opened_at: OffsetDateTime,
    /// When the count was completed or cancelled; null while open.
    pub closed_at: Option<OffsetDateTime>,
}

/// A new count session.
#[derive(Debug, Object)]
pub struct CreateCount {
    /// The warehouse (UUID).
    pub warehouse_id: Uuid,
    /// Products to count; empty or absent means every product stocked in the warehouse.
    #[oai(default)]
    pub product_ids: Vec<Uuid>,
    /// Hide expected quantities from clerks while the count is open.
    #[oai(default)]
    pub blind: bool,
    /// Locations (UUIDs, of this warehouse) to count; empty or absent means all.
    #[oai(default)]
    pub location_ids: Vec<Uuid>,
    /// Whether the answer lists every line (the default, as v1 answered). A
    /// count of a whole warehouse can have hundreds of thousands of lines:
    /// with false the answer carries `line_count` and an empty `lines`, and
    /// `GET /api/v1/counts/{id}/lines` pages them.
    #[oai(default = "yes")]
    pub include_lines: bool,
}

fn yes() -> bool {
    true
}

/// One position of a count: a product at a location, of a lot.
#[derive(Debug, Clone, Object)]
pub struct CountLine {
    /// The product (UUID).
    pub product_id: Uuid,
    /// Stock keeping unit of the product.
    pub sku: String,
    /// The location (UUID).
    pub location_id: Uuid,
    /// Code of the location.
    pub location_code: String,
    /// The lot's code; null for untracked products.
    pub lot: Option<String>,
    /// The level when the session opened (hidden from clerks in blind counts).
    pub expected_quantity: Option<i64>,
    /// null until counted.
    pub counted_quantity: Option<i64>,
    /// counted - expected (hidden like expected).
    pub variance: Option<i64>,
    /// When this line was last counted; null if never.
    pub counted_at: Option<OffsetDateTime>,
}

/// A count session with its lines.
#[derive(Debug, Object)]
pub struct CountDetail {
    #[oai(flatten)]
    pub session: CountSession,
    /// How many lines the count has.
    #[oai(default)]
    pub line_count: i64,
    /// The lines of the count (empty when it was opened with
    /// `include_lines: false`; that answer only).
    pub lines: Vec<CountLine>,
}

/// Counted quantities entered by hand.
#[derive(Debug, Object)]
pub struct CountLinesRequest {
    /// The lines of the count.
    pub lines: Vec<CountedLine>,
}

/// The quantity counted of one product at one location and lot (replaces
/// any earlier count of that position).
#[derive(Debug, Object)]
pub struct CountedLine {
    /// The product (UUID).
    pub product_id: Uuid,
    /// The quantity counted.
    pub counted_quantity: i64,
    /// The location (UUID); default: the warehouse's DEFAULT location.
    pub location_id: Option<Uuid>,
    /// The lot's code, for lot-tracked products (the lot must exist).
    pub lot: Option<String>,
}
