//! Request and response bodies of the reservations API.

use poem_openapi::{Enum, Object};
use time::OffsetDateTime;
use uuid::Uuid;

/// Where a reservation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, sqlx::Type)]
#[oai(rename_all = "lowercase")]
#[sqlx(type_name = "text", rename_all = "lowercase")]
pub enum ReservationStatus {
    /// Holds stock: `quantity - fulfilled_quantity` is promised.
    Active,
    /// Issued in full.
    Fulfilled,
    /// Released by a person.
    Cancelled,
    /// Released because `expires_at` passed (reads say so at once, before the
    /// expiry job has run).
    Expired,
}

impl ReservationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Fulfilled => "fulfilled",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
        }
    }
}

/// Stock promised to an order.
#[derive(Debug, Clone, Object, sqlx::FromRow)]
pub struct Reservation {
    /// Identifier (UUID) of this reservation.
    pub id: Uuid,
    /// The product (UUID).
    pub product_id: Uuid,
    /// The warehouse (UUID).
    pub warehouse_id: Uuid,
    /// The lot reserved (lot-tracked products); null: any lot.
    pub lot: Option<String>,
    /// Units promised.
    pub quantity: i64,
    /// Units issued against it so far.
    pub fulfilled_quantity: i64,
    /// Units it still holds: `quantity - fulfilled_quantity` while active, else 0.
    pub open_quantity: i64,
    pub status: ReservationStatus,
    /// Your order number, up to 200 characters.
    pub reference: Option<String>,
    /// When it releases itself; null: never.
    pub expires_at: Option<OffsetDateTime>,
    /// When this reservation was created (RFC 3339).
    pub created_at: OffsetDateTime,
    /// When it last changed (RFC 3339).
    pub updated_at: OffsetDateTime,
    /// When it was fulfilled, cancelled or expired; null while active.
    pub closed_at: Option<OffsetDateTime>,
}

/// A new reservation.
#[derive(Debug, Clone, Object)]
pub struct CreateReservation {
    /// The product (UUID).
    pub product_id: Uuid,
    /// The warehouse (UUID).
    pub warehouse_id: Uuid,
    /// Units to promise, 1-1000000000; at most what is available (on hand
    /// minus already reserved), else 409 `insufficient-stock` with `available`.
    pub quantity: i64,
    /// Your order number, up to 200 characters.
    pub reference: Option<String>,
    /// Reserve from this lot only (lot-tracked products).
    pub lot: Option<String>,
    /// Release automatically at this instant (must be in the future).
    pub expires_at: Option<OffsetDateTime>,
}
