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
