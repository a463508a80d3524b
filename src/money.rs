//! Money on the wire: a decimal string with a fixed scale per kind of amount.
//!
//! poem-openapi writes a `Decimal` normalised ("2.5"), so one price could read
//! "2.5" one day and "2.25" the next, and a client comparing strings or
//! aligning columns guesses. [`Money<SCALE>`] always writes `SCALE` decimals:
//! unit amounts ([`UnitAmount`]: `unit_cost`, `price`) keep the 4 decimals
//! numeric(14, 4) stores ("2.5000"); totals ([`Total`]: `value`, `stock_value`)
//! are rounded half-even to cents ("7.00"). Input stays plain `Decimal`:
//! "2.5", "2.50" and "2.5000" are the same amount.

use std::borrow::Cow;

use poem_openapi::{
    registry::{MetaSchema, MetaSchemaRef},
    types::{ParseError, ParseFromJSON, ParseResult, ToJSON, Type},
};
use rust_decimal::Decimal;
use serde_json::Value;
use sqlx::{postgres::PgValueRef, Postgres};

/// An amount written with exactly `SCALE` decimals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Money<const SCALE: u32>(Decimal);

/// A price or cost of one unit: 4 decimals.
pub type UnitAmount = Money<4>;
/// A quantity times a unit amount: 2 decimals.
pub type Total = Money<2>;

impl<const SCALE: u32> Money<SCALE> {
    pub fn new(value: Decimal) -> Self {
        let mut v = value.round_dp(SCALE);
        v.rescale(SCALE);
        Self(v)
    }

    pub fn amount(self) -> Decimal {
        self.0
    }
}

impl<const SCALE: u32> From<Decimal> for Money<SCALE> {
    fn from(value: Decimal) -> Self {
        Self::new(value)
    }
}

impl<const SCALE: u32> std::fmt::Display for Money<SCALE> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl<const SCALE: u32> Type for Money<SCALE> {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        format!("string_decimal_{SCALE}").into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            pattern: Some(format!(r"^[0-9]+\.[0-9]{{{SCALE}}}$")),
            ..MetaSchema::new_with_format("string", "decimal")
        }))
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(self)
    }

    fn raw_element_iter<'a>(
        &'a self,
    ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }
}

impl<const SCALE: u32> ToJSON for Money<SCALE> {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(self.0.to_string()))
    }
}

/// Parsing back is what an idempotent replay does with a stored answer.
impl<const SCALE: u32> ParseFromJSON for Money<SCALE> {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        Decimal::parse_from_json(value)
            .map(Self::new)
            .map_err(ParseError::propagate)
    }
}

impl<const SCALE: u32> serde::Serialize for Money<SCALE> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_string())
    }
}

impl<'de, const SCALE: u32> serde::Deserialize<'de> for Money<SCALE> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <Decimal as serde::Deserialize>::deserialize(d).map(Self::new)
    }
}

impl<const SCALE: u32> sqlx::Type<Postgres> for Money<SCALE> {
    fn type_info() -> sqlx::postgres::PgTypeInfo {
        <Decimal as sqlx::Type<Postgres>>::type_info()
    }

    fn compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool {
        <Decimal as sqlx::Type<Postgres>>::compatible(ty)
    }
}

impl<'r, const SCALE: u32> sqlx::Decode<'r, Postgres> for Money<SCALE> {
    fn decode(value: PgValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        <Decimal as sqlx::Decode<'r, Postgres>>::decode(value).map(Self::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn written_with_a_fixed_scale() {
        assert_eq!(UnitAmount::new(d("2.5")).to_json(), Some("2.5000".into()));
        assert_eq!(UnitAmount::new(d("2.50")).to_json(), Some("2.5000".into()));
        assert_eq!(UnitAmount::new(d("0")).to_json(), Some("0.0000".into()));
        assert_eq!(Total::new(d("12.345")).to_json(), Some("12.34".into()));
        assert_eq!(Total::new(d("7")).to_json(), Some("7.00".into()));
    }

    #[test]
    fn parses_back_what_it_writes() {
        let v = UnitAmount::new(d("1.25"));
        assert_eq!(UnitAmount::parse_from_json(v.to_json()).unwrap(), v);
    }
}
