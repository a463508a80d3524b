//! Request and response bodies of the locations API.

use poem_openapi::{types::MaybeUndefined, Object};
use time::OffsetDateTime;
use uuid::Uuid;

/// The code every warehouse's default location has: movements that name no
/// location use it.
pub const DEFAULT_CODE: &str = "DEFAULT";

/// A place inside a warehouse (zone, aisle, shelf, bin); locations form a tree
/// per warehouse.
#[derive(Debug, Clone, Object, sqlx::FromRow)]
pub struct Location {
    /// Identifier (UUID) of this location.
    pub id: Uuid,
    /// The warehouse it belongs to (UUID).
    pub warehouse_id: Uuid,
    /// Unique within its warehouse (case-insensitive), e.g. `A-01-3`.
    pub code: String,
    /// Display name; may be empty.
    pub name: String,
    /// The enclosing location (UUID); null at the top of the tree.
    pub parent_id: Option<Uuid>,
    /// The label a scanner reads; unique across locations and product barcodes.
    pub barcode: Option<String>,
    /// Inactive locations accept no stock.
    pub active: bool,
    /// The codes from the root down to this location, joined by `/`, e.g. `A/A-01/A-01-3`.
    pub path: String,
    /// When this location was created (RFC 3339).
    pub created_at: OffsetDateTime,
    /// When this location last changed (RFC 3339).
    pub updated_at: OffsetDateTime,
}

impl Location {
    /// The warehouse's default location, which every movement without a
    /// location uses: it cannot be deleted, recoded or deactivated.
    pub fn is_default(&self) -> bool {
        self.code == DEFAULT_CODE
    }
}

/// A new location.
#[derive(Debug, Object)]
pub struct CreateLocation {
    /// 1-32 characters: letters, digits, `.`, `_`, `-`; unique in the warehouse.
    pub code: String,
    /// Display name, up to 200 characters.
    #[oai(default)]
    pub name: String,
    /// The enclosing location, in the same warehouse (UUID); null for the top level.
    pub parent_id: Option<Uuid>,
    /// The label a scanner reads (1-128 printable ASCII characters).
    pub barcode: Option<String>,
}

/// Changes to a location; absent fields stay as they are.
#[derive(Debug, Object)]
pub struct UpdateLocation {
    /// Unique in the warehouse (case-insensitive); the paths below it follow.
    pub code: Option<String>,
    /// Display name, up to 200 characters.
    pub name: Option<String>,
    /// Moves the location (and everything under it); null moves it to the top level.
    pub parent_id: MaybeUndefined<Uuid>,
    /// The label a scanner reads; null removes it.
    pub barcode: MaybeUndefined<String>,
    /// false deactivates: refused (409) while the location holds stock.
    pub active: Option<bool>,
}
