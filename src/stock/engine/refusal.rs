//! Why the engine refused a movement: ONE enum. Each variant is at once the
//! problem+json answer of the movements API ([`From<Refusal> for ApiError`]),
//! the `reason` of a rejected scan ([`Refusal::reason`]) and the metric label
//! ([`Refusal::as_label`]); nothing matches on message strings.

use time::Date;

use crate::error::ApiError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No product with this id.
    UnknownProduct,
    /// No warehouse with this id; `field` names the request field.
    UnknownWarehouse {
        field: &'static str,
    },
    ProductArchived,
    WarehouseInactive,
    /// No location with this id in the warehouse; `field` names the request field.
    UnknownLocation {
        field: &'static str,
    },
    LocationInactive,
    /// The product is lot-tracked and no lot was given.
    LotRequired,
    /// No lot with this code for this product.
    UnknownLot {
        code: String,
    },
    /// The lot already has another expiry date.
    LotExpiryConflict {
        code: String,
        expires_on: Date,
    },
    /// The named lot has expired and `allow_expired` was not given.
    LotExpired {
        code: String,
        expires_on: Date,
    },
    /// A serial-tracked product needs exactly `quantity` distinct serial numbers.
    SerialsRequired {
        quantity: i64,
    },
    /// Several serial numbers for a product that is not serial-tracked.
    NotSerialTracked,
    SerialInStock {
        serial: String,
    },
    SerialNotInStock {
        serial: String,
    },
    InsufficientStock {
        /// What the level could give; None once [`Refusal::without_level`]
        /// hid it (a blind count covers the level: `stock::blind`).
        available: Option<i64>,
        requested: i64,
    },
    /// An adjustment to the quantity that is already there.
    NothingToAdjust {
        current: i64,
    },
    /// A transfer whose source and destination are the same place.
    SamePlace,
    /// No reservation with this id.
    UnknownReservation,
    /// The reservation is for another product or warehouse.
    ReservationMismatch,
    /// The reservation is fulfilled, cancelled or expired.
    ReservationClosed,
}

impl Refusal {
    /// The metric label (`inventory_stock_movements{refusal=...}`).
    pub fn as_label(&self) -> &'static str {
        match self {
            Self::UnknownProduct => "unknown_product",
            Self::UnknownWarehouse { .. } => "unknown_warehouse",
            Self::ProductArchived => "product_archived",
            Self::WarehouseInactive => "warehouse_inactive",
            Self::UnknownLocation { .. } => "unknown_location",
            Self::LocationInactive => "location_inactive",
            Self::LotRequired => "lot_required",
            Self::UnknownLot { .. } => "unknown_lot",
            Self::LotExpiryConflict { .. } => "lot_expiry_conflict",
            Self::LotExpired { .. } => "lot_expired",
            Self::SerialsRequired { .. } => "serials_required",
            Self::NotSerialTracked => "not_serial_tracked",
            Self::SerialInStock { .. } => "serial_in_stock",
            Self::SerialNotInStock { .. } => "serial_not_in_stock",
            Self::InsufficientStock { .. } => "insufficient_stock",
            Self::NothingToAdjust { .. } => "nothing_to_adjust",
            Self::SamePlace => "same_place",
            Self::UnknownReservation => "unknown_reservation",
            Self::ReservationMismatch => "reservation_mismatch",
            Self::ReservationClosed => "reservation_closed",
        }
    }

    /// Whether a client could succeed by sending something else (422), as
    /// opposed to a refusal because of the state of stock (409).
    pub fn is_input_error(&self) -> bool {
        matches!(ApiError::from(self.clone()), ApiError::Validation(_))
    }

    /// The refusal without what it tells of the level's quantity, for
    /// someone a blind count hides the level from (`stock::blind`).
    pub fn without_level(self) -> Self {
        match self {
            Self::InsufficientStock { requested, .. } => Self::InsufficientStock {
                available: None,
                requested,
            },
            other => other,
        }
    }

    /// The `reason` of a rejected scan: short, for a handheld's screen.
    pub fn reason(&self) -> String {
        match self {
            Self::InsufficientStock {
                available: Some(available),
                ..
            } => {
                format!("insufficient stock: {available} available")
            }
            Self::InsufficientStock {
                available: None, ..
            } => "insufficient stock".into(),
            Self::ProductArchived => "archived product".into(),
            Self::WarehouseInactive => "inactive warehouse".into(),
            Self::LocationInactive => "inactive location".into(),
            Self::SerialInStock { serial } => format!("serial {serial} is already in stock"),
            Self::SerialNotInStock { serial } => format!("serial {serial} is not in stock here"),
            Self::LotExpired { code, expires_on } => format!("lot {code} expired on {expires_on}"),
            other => match ApiError::from(other.clone()) {
                ApiError::Validation(errors) => errors
                    .iter()
                    .map(|f| format!("{}: {}", f.field, f.message))
                    .collect::<Vec<_>>()
                    .join("; "),
                e => e.to_string(),
            },
        }
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::UnknownProduct => ApiError::field("product_id", "no product with this id"),
            Refusal::UnknownWarehouse { field } => {
                ApiError::field(field, "no warehouse with this id")
            }
            Refusal::ProductArchived => ApiError::conflict(
                "product-archived",
                "The product is archived and accepts no stock movements; restore it first.",
            ),
            Refusal::WarehouseInactive => ApiError::conflict(
                "warehouse-inactive",
                "The warehouse is inactive and accepts no stock movements.",
            ),
            Refusal::UnknownLocation { field } => {
                ApiError::field(field, "no location with this id in this warehouse")
            }
            Refusal::LocationInactive => ApiError::conflict(
                "location-inactive",
                "The location is inactive and accepts no stock movements.",
            ),
            Refusal::LotRequired => ApiError::field(
                "lot",
                "this product is lot-tracked: give the lot (batch) code",
            ),
            Refusal::UnknownLot { code } => {
                ApiError::field("lot", format!("this product has no lot {code:?}"))
            }
            Refusal::LotExpiryConflict { code, expires_on } => ApiError::field(
                "expires_on",
                format!("lot {code} expires on {expires_on}; a lot has one expiry date"),
            ),
            Refusal::LotExpired { code, expires_on } => ApiError::conflict(
                "lot-expired",
                format!(
                    "Lot {code} expired on {expires_on}; send allow_expired: true to move it anyway."
                ),
            ),
            Refusal::SerialsRequired { quantity } => ApiError::field(
                "serials",
                format!("this product is serial-tracked: give exactly {quantity} distinct serial numbers"),
            ),
            Refusal::NotSerialTracked => ApiError::field(
                "serials",
                "this product is not serial-tracked: give at most one serial number, kept as a note",
            ),
            Refusal::SerialInStock { serial } => ApiError::conflict(
                "serial-in-stock",
                format!("Serial number {serial} of this product is already in stock."),
            ),
            Refusal::SerialNotInStock { serial } => ApiError::conflict(
                "serial-not-in-stock",
                format!("Serial number {serial} of this product is not in stock at this place."),
            ),
            Refusal::InsufficientStock {
                available,
                requested,
            } => ApiError::InsufficientStock {
                available,
                requested,
            },
            Refusal::NothingToAdjust { current } => ApiError::field(
                "new_quantity",
                format!("the level is already {current}; nothing to adjust"),
            ),
            Refusal::SamePlace => ApiError::field(
                "to_location_id",
                "source and destination are the same place; name another warehouse or location",
            ),
            Refusal::UnknownReservation => {
                ApiError::field("reservation_id", "no reservation with this id")
            }
            Refusal::ReservationMismatch => ApiError::field(
                "reservation_id",
                "the reservation is for another product or warehouse",
            ),
            Refusal::ReservationClosed => ApiError::conflict(
                "reservation-closed",
                "The reservation is fulfilled, cancelled or expired; it holds no stock any more.",
            ),
        }
    }
}
