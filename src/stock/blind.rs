//! Blind counts: what an open blind count hides, and from whom. The one
//! place that decides it; every read of stock asks here.
//!
//! **Who.** While a blind count is open, the levels it covers (its warehouse;
//! only its products when it lists some) are hidden from the people who
//! count: every device key, viewers and clerks ([`hides_blind_counts`]).
//! Managers and admins, who open, review and complete counts, see everything.
//!
//! **When.** Whether a level is covered is decided at the moment it is read
//! ([`under_open_blind_count`]), not when a row was written: a balance from
//! before the count opened is the count's expected quantity, so a level's
//! history is hidden with it, and everything shows again once the count is
//! completed or cancelled.
//!
//! **How**, two ways, each with one definition:
//! - *Lists of levels leave the level out*, with [`under_open_blind_count`] in
//!   their WHERE: `/stock` (so `below_reorder` too), `/products/{id}/stock`,
//!   positions and expiring stock, lots, valuation, the device lookup. Lists
//!   of products summed over levels (dashboard low stock, replenishment,
//!   `/products?below_reorder=true`) leave out a product when a level they
//!   would sum is covered ([`and_product_not_hidden`]), rather than show a
//!   misleading partial sum; the dashboard summary sums the other levels only.
//! - *Answers about movements keep the movement and blank the level's state*
//!   ([`Blind`]): a ledger row's [`LEVEL_FIGURES`] (the position and level
//!   balances, the level's value, and the unit cost, which is the level's
//!   moving average: with a receipt of known size and cost, the change of the
//!   average gives the quantity), the resulting `levels[].quantity` of a
//!   movement, a scan's `level`, the `available` of an insufficient-stock
//!   refusal, and the same fields of `stock.*` events on the SSE feed. A
//!   clerk still sees their own movements in the ledger, without balances.
//!   Setting a covered level to a quantity (`adjust` with `new_quantity`) is
//!   refused for them: the row's `quantity` would be `new - current`, and
//!   setting what is there is the count's job.
//!
//! **Deliberately not hidden**: webhooks and the Redis stream (endpoints and
//! consumers an admin configured, for other systems, not for the people
//! counting; the deliveries are readable by admins only), `/metrics`
//! (totals only, served by nginx to internal networks only), and the
//! movements' own `quantity`: the ledger is the audit trail, so someone
//! paging through a level's entire history can still add it up.

use std::collections::HashSet;

use serde_json::Value;
use sqlx::PgExecutor;
use uuid::Uuid;

use super::{
    engine::Refusal,
    model::{MovementResult, StockTransaction},
};
use crate::auth::{principal::Principal, Role};

/// SQL that is true when the level of (`product`, `warehouse`) (column or
/// parameter expressions) is under an open blind count: its warehouse, and its
/// product unless the count covers the whole warehouse. While the count is
/// open such levels are hidden from those [`hides_blind_counts`] names.
///
/// Columns must be qualified (`alias.column`): inside the subquery a bare
/// `warehouse_id` is `count_sessions`' own column, and the test compares the
/// count with itself (which hid every level whenever any blind count was open).
pub fn under_open_blind_count(product: &str, warehouse: &str) -> String {
    debug_assert!(
        [product, warehouse]
            .iter()
            .all(|e| e.contains('.') || e.starts_with('$')),
        "qualify the columns: {product}, {warehouse}"
    );
    format!(
        "EXISTS (SELECT 1 FROM count_sessions c
                 WHERE c.status = 'open' AND c.blind AND c.warehouse_id = {warehouse}
                   AND (c.product_ids IS NULL OR {product} = ANY(c.product_ids)))"
    )
}

/// SQL ` AND NOT <under an open blind count>` for the level or position
/// aliased `alias` when `hide`, else nothing.
pub fn and_not_hidden(hide: bool, alias: &str) -> String {
    if !hide {
        return String::new();
    }
    format!(
        " AND NOT {}",
        under_open_blind_count(
            &format!("{alias}.product_id"),
            &format!("{alias}.warehouse_id")
        )
    )
}

/// SQL ` AND NOT <a level of product is under an open blind count>` when
/// `hide`, else nothing: a list that sums a product's levels (in the
/// warehouse `warehouse`, an expression that may be NULL for all of them)
/// leaves the product out rather than show a sum without the hidden level.
pub fn and_product_not_hidden(hide: bool, product: &str, warehouse: &str) -> String {
    if !hide {
        return String::new();
    }
    format!(
        " AND NOT EXISTS (SELECT 1 FROM stock_levels bl
                          WHERE bl.product_id = {product}
                            AND ({warehouse} IS NULL OR bl.warehouse_id = {warehouse})
                            AND {})",
        under_open_blind_count("bl.product_id", "bl.warehouse_id")
    )
}

/// Whether `principal` is one of those a blind count hides levels from:
/// device keys, viewers and clerks.
pub fn hides_blind_counts(principal: &Principal) -> bool {
    principal.role().is_none_or(|role| role < Role::Manager)
}

/// The fields of a ledger row (and of its `stock.*` event) that are the
/// level's state rather than the movement: blanked under a blind count.
pub const LEVEL_FIGURES: [&str; 4] = [
    "balance_after",
    "warehouse_balance_after",
    "value_after",
    "unit_cost",
];

/// The levels one principal may not see right now, among those an answer is
/// about. Empty for managers and admins (and then nothing was queried).
#[derive(Debug, Default)]
pub struct Blind {
    hidden: HashSet<(Uuid, Uuid)>,
}

impl Blind {
    /// Which of the (product, warehouse) `levels` are hidden from a principal
    /// for whom `hides` is [`hides_blind_counts`]: one query, none when it is
    /// false or there is nothing to ask about.
    pub async fn of<'e>(
        db: impl PgExecutor<'e>,
        hides: bool,
        levels: impl IntoIterator<Item = (Uuid, Uuid)>,
    ) -> Result<Self, sqlx::Error> {
        if !hides {
            return Ok(Self::default());
        }
        let (products, warehouses): (Vec<Uuid>, Vec<Uuid>) = levels
            .into_iter()
            .collect::<HashSet<_>>()
            .into_iter()
            .unzip();
        if products.is_empty() {
            return Ok(Self::default());
        }
        let hidden: Vec<(Uuid, Uuid)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT t.p, t.w FROM unnest($1::uuid[], $2::uuid[]) AS t(p, w) WHERE {}",
            under_open_blind_count("t.p", "t.w")
        )))
        .bind(&products)
        .bind(&warehouses)
        .fetch_all(db)
        .await?;
        Ok(Self {
            hidden: hidden.into_iter().collect(),
        })
    }

    /// These (product, warehouse) levels hidden (known from a statement
    /// that asked [`under_open_blind_count`] itself).
    pub fn covering(levels: impl IntoIterator<Item = (Uuid, Uuid)>) -> Self {
        Self {
            hidden: levels.into_iter().collect(),
        }
    }

    /// Whether the level of `product` in `warehouse` is hidden.
    pub fn covers(&self, product: Uuid, warehouse: Uuid) -> bool {
        self.hidden.contains(&(product, warehouse))
    }

    /// Blanks a ledger row's [`LEVEL_FIGURES`] when its level is hidden.
    pub fn transaction(&self, t: &mut StockTransaction) {
        if self.covers(t.product_id, t.warehouse_id) {
            t.balance_after = None;
            t.warehouse_balance_after = None;
            t.value_after = None;
            t.unit_cost = None;
        }
    }

    /// Blanks what a movement's answer tells of hidden levels.
    pub fn movement(&self, r: &mut MovementResult) {
        for t in &mut r.transactions {
            self.transaction(t);
        }
        for l in &mut r.levels {
            if self.covers(l.product_id, l.warehouse_id) {
                l.quantity = None;
            }
        }
    }

    /// A refusal of a movement of `product` out of `warehouse`, without the
    /// figures it carries of that level when the level is hidden.
    pub fn refusal(&self, product: Uuid, warehouse: Uuid, r: Refusal) -> Refusal {
        if self.covers(product, warehouse) {
            r.without_level()
        } else {
            r
        }
    }

    /// The (product, warehouse) a `stock.*` event's payload is about.
    pub fn event_level(topic: &str, payload: &Value) -> Option<(Uuid, Uuid)> {
        if !topic.starts_with("stock.") {
            return None;
        }
        let id = |field: &str| payload.get(field)?.as_str()?.parse().ok();
        Some((id("product_id")?, id("warehouse_id")?))
    }

    /// Sets an event's [`LEVEL_FIGURES`] to null when its level is hidden.
    pub fn event(&self, topic: &str, payload: &mut Value) {
        let Some((p, w)) = Self::event_level(topic, payload) else {
            return;
        };
        if !self.covers(p, w) {
            return;
        }
        if let Some(fields) = payload.as_object_mut() {
            for name in LEVEL_FIGURES {
                if let Some(v) = fields.get_mut(name) {
                    *v = Value::Null;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use poem_openapi::types::ToJSON;
    use serde_json::json;
    use time::OffsetDateTime;

    use super::*;
    use crate::stock::model::TransactionKind;

    fn row(product: Uuid, warehouse: Uuid) -> StockTransaction {
        StockTransaction {
            id: Uuid::nil(),
            kind: TransactionKind::Receipt,
            product_id: product,
            warehouse_id: warehouse,
            location_id: Uuid::nil(),
            lot_id: None,
            quantity: 3,
            balance_after: Some(10),
            warehouse_balance_after: Some(12),
            unit_cost: Some(rust_decimal::Decimal::ONE.into()),
            value_after: Some(rust_decimal::Decimal::TEN.into()),
            reservation_id: None,
            transfer_id: None,
            reason: None,
            reference: None,
            note: None,
            lot: None,
            expires_on: None,
            serial: None,
            count_id: None,
            actor_user_id: None,
            actor_device_id: None,
            created_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    /// The row and its event blank the same fields, and nothing else.
    #[test]
    fn a_ledger_row_and_its_event_blank_the_same_level_figures() {
        let (p, w) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let blind = Blind {
            hidden: HashSet::from([(p, w)]),
        };
        let mut t = row(p, w);
        blind.transaction(&mut t);
        let blanked = t.to_json().unwrap();
        let shown = row(p, w).to_json().unwrap();
        let mut event = shown.clone();
        blind.event("stock.receipt", &mut event);
        for (name, value) in shown.as_object().unwrap() {
            let hidden = LEVEL_FIGURES.contains(&name.as_str());
            assert_eq!(blanked[name].is_null(), hidden || value.is_null(), "{name}");
            assert_eq!(event[name], blanked[name], "{name}");
        }
        assert_eq!(blanked["quantity"], 3);

        let mut other = row(p, Uuid::from_u128(3));
        blind.transaction(&mut other);
        assert_eq!(other.balance_after, Some(10));
        let mut not_stock = json!({"product_id": p, "warehouse_id": w, "balance_after": 1});
        blind.event("count.opened", &mut not_stock);
        assert_eq!(not_stock["balance_after"], 1);
    }

    #[test]
    fn devices_viewers_and_clerks_are_hidden_from_managers_and_admins_are_not() {
        let user = |role| Principal::User {
            id: Uuid::nil(),
            role,
        };
        assert!(hides_blind_counts(&Principal::Device {
            id: Uuid::nil(),
            warehouse_ids: Default::default(),
        }));
        assert!(hides_blind_counts(&user(Role::Viewer)));
        assert!(hides_blind_counts(&user(Role::Clerk)));
        assert!(!hides_blind_counts(&user(Role::Manager)));
        assert!(!hides_blind_counts(&user(Role::Admin)));
    }
}
