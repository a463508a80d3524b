//! What a position holds, in SQL: one definition for every reader.
//!
//! The DEFAULT location's unlotted position is counted on its level
//! (migration 20261205070001): its row in `stock_positions` keeps its id
//! and key with `quantity` NULL, and holds the level's `quantity -
//! elsewhere`. Every other position stores its own quantity; a lot position
//! always does (CHECK `stock_positions_quantity_kept`), so a read of lot
//! positions alone may use the column as it is.
//!
//! These are fragments, not a view: a view's `COALESCE` column under a
//! `> 0` filter has no statistics, and PostgreSQL then sorted every
//! remaining position of a 125,000-position warehouse for each page of
//! `/stock/positions` (bench/README.md, session 31). [`holds_stock`] is
//! written so the planner estimates it from the columns themselves.

/// `JOIN stock_levels {level}` on the level of the position `position`.
pub fn join_level(position: &str, level: &str) -> String {
    format!(
        "JOIN stock_levels {level} ON {level}.product_id = {position}.product_id
                                   AND {level}.warehouse_id = {position}.warehouse_id"
    )
}

/// The units the position aliased `position` holds; `level` is its level
/// (see [`join_level`]).
pub fn quantity(position: &str, level: &str) -> String {
    format!("COALESCE({position}.quantity, {level}.quantity - {level}.elsewhere)")
}

/// Whether the position holds any stock (`quantity(..) > 0`), for a WHERE
/// clause: an empty DEFAULT position gives NULL rather than false (negate
/// [`quantity`]` = 0` instead).
pub fn holds_stock(position: &str, level: &str) -> String {
    format!(
        "({position}.quantity > 0 OR ({position}.quantity IS NULL AND {level}.quantity > {level}.elsewhere))"
    )
}

/// When the position last changed.
pub fn updated_at(position: &str, level: &str) -> String {
    format!(
        "CASE WHEN {position}.quantity IS NULL THEN {level}.default_updated_at ELSE {position}.updated_at END"
    )
}
