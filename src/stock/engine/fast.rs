//! The one-statement path: a v1-shaped movement (receipt, issue or
//! adjustment of an untracked product naming no location, lot, serial,
//! count or reservation) in ONE round trip, by the database function
//! `stock_move_default` (migration 20261202220001, which says when it acts;
//! since 20261205070001 it writes the level alone, which counts the DEFAULT
//! location's unlotted position).
//!
//! It is the general path's rules run by PostgreSQL where their outcome is
//! certain: all stock at the DEFAULT position, nothing reserved. Anything
//! else (a refusal included) it leaves alone, and [`super::post`] runs the
//! general path. `tests/fast_path.rs` checks that both give the same rows,
//! levels and values for the same movements.

use sqlx::PgConnection;

use super::{plan::round_cost, Amount, MoveKind, Movement};
use crate::{
    error::Result,
    stock::{
        blind::under_open_blind_count,
        model::{Level, MovementResult, StockTransaction},
        repo::TRANSACTION_COLUMNS,
    },
};

/// The signed change `m` asks for, when it has the shape this path takes.
fn delta(m: &Movement) -> Option<i64> {
    let named = m.location_id.is_some()
        || m.lot.is_some()
        || m.expires_on.is_some()
        || !m.serials.is_empty()
        || m.reservation_id.is_some()
        || m.count_id.is_some()
        || m.to_warehouse_id.is_some()
        || m.to_location_id.is_some();
    if named {
        return None;
    }
    match (m.kind, m.amount) {
        (MoveKind::Receipt, Amount::Add(q)) => Some(q),
        (MoveKind::Issue, Amount::Take(q)) => Some(-q),
        (MoveKind::Adjustment, Amount::Delta(d)) => Some(d),
        _ => None,
    }
    .filter(|d| *d != 0)
}

/// A movement posted in one statement.
#[derive(Debug)]
pub struct Posted {
    pub result: MovementResult,
    /// Whether an open blind count covers the level (asked in the same
    /// statement, so callers that hide such levels need no second query).
    pub blind: bool,
}

/// Posts `m` in one statement; None when it is not of that shape or its
/// outcome needs the general path (nothing was changed then).
#[tracing::instrument(skip_all)]
pub async fn try_post(conn: &mut PgConnection, m: &Movement) -> Result<Option<Posted>> {
    let Some(delta) = delta(m) else {
        return Ok(None);
    };
    let kind = match m.kind {
        MoveKind::Receipt => "receipt",
        MoveKind::Issue => "issue",
        _ => "adjustment",
    };
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {TRANSACTION_COLUMNS}, {blind} AS blind
         FROM stock_move_default($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) AS m",
        blind = under_open_blind_count("m.product_id", "m.warehouse_id")
    )))
    .bind(uuid::Uuid::now_v7())
    .bind(kind)
    .bind(m.product_id)
    .bind(m.warehouse_id)
    .bind(delta)
    .bind(m.unit_cost.map(round_cost))
    .bind(m.reason)
    .bind(&m.reference)
    .bind(&m.note)
    .bind(m.actor.user())
    .bind(m.actor.device())
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|Row { t, blind }| Posted {
        result: MovementResult {
            levels: vec![Level {
                product_id: t.product_id,
                warehouse_id: t.warehouse_id,
                quantity: t.warehouse_balance_after,
            }],
            transactions: vec![t],
        },
        blind,
    }))
}

#[derive(sqlx::FromRow)]
struct Row {
    #[sqlx(flatten)]
    t: StockTransaction,
    blind: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stock::engine::Actor;
    use uuid::Uuid;

    fn movement(kind: MoveKind, amount: Amount) -> Movement {
        Movement::new(
            kind,
            Uuid::nil(),
            Uuid::nil(),
            amount,
            Actor::User(Uuid::nil()),
        )
    }

    #[test]
    fn only_unnamed_receipts_issues_and_adjustments_take_this_path() {
        assert_eq!(delta(&movement(MoveKind::Receipt, Amount::Add(3))), Some(3));
        assert_eq!(delta(&movement(MoveKind::Issue, Amount::Take(3))), Some(-3));
        assert_eq!(
            delta(&movement(MoveKind::Adjustment, Amount::Delta(-2))),
            Some(-2)
        );
        assert_eq!(
            delta(&movement(MoveKind::Adjustment, Amount::SetTo(5))),
            None
        );
        assert_eq!(delta(&movement(MoveKind::Transfer, Amount::Take(1))), None);
        assert_eq!(delta(&movement(MoveKind::Reserve, Amount::Take(1))), None);
        let mut lot = movement(MoveKind::Receipt, Amount::Add(1));
        lot.lot = Some("L1".into());
        assert_eq!(delta(&lot), None);
        let mut placed = movement(MoveKind::Issue, Amount::Take(1));
        placed.location_id = Some(Uuid::nil());
        assert_eq!(delta(&placed), None);
        let mut reserved = movement(MoveKind::Issue, Amount::Take(1));
        reserved.reservation_id = Some(Uuid::nil());
        assert_eq!(delta(&reserved), None);
    }
}
