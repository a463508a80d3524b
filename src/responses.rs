//! Response shapes shared by every domain.

use std::{marker::PhantomData, sync::Arc};

use poem_openapi::{
    payload::{Json, Payload},
    registry::{MetaMediaType, MetaResponse, MetaResponses, MetaSchemaRef, Registry},
    types::{ToJSON, Type},
    ApiResponse,
};

/// 201 with the created resource.
#[derive(ApiResponse)]
pub enum Created<T: ToJSON + Send + Sync> {
    /// Created.
    #[oai(status = 201)]
    Created(Json<T>),
}

impl<T: ToJSON + Send + Sync> Created<T> {
    pub fn new(value: T) -> Self {
        Self::Created(Json(value))
    }
}

/// 204: done, nothing to return.
#[derive(ApiResponse)]
pub enum NoContent {
    /// Done.
    #[oai(status = 204)]
    NoContent,
}

/// The `ETag` of a versioned resource: its version, quoted.
pub fn etag(version: i32) -> String {
    format!("\"{version}\"")
}

/// The version an `If-Match` header demands: None for no header or `*`.
/// A value that names no version of ours can never match: 412.
pub fn if_match_version(header: Option<&str>) -> crate::error::Result<Option<i32>> {
    let Some(raw) = header.map(str::trim) else {
        return Ok(None);
    };
    if raw == "*" {
        return Ok(None);
    }
    raw.trim_start_matches("W/")
        .trim_matches('"')
        .parse()
        .map(Some)
        .map_err(|_| {
            crate::error::ApiError::PreconditionFailed(format!(
                "If-Match {raw:?} is not an ETag of this resource; GET it again for the current ETag."
            ))
        })
}

/// Money as the API writes it: a fixed scale per kind of amount, so a client
/// sees `"2.5000"` for every unit amount and never `"2.5"` one day and
/// `"2.50"` the next. Unit amounts (`unit_cost`, `price`) keep the 4 decimals
/// numeric(14, 4) stores; totals (`value`, `stock_value`) are rounded to cents.
pub fn money(value: rust_decimal::Decimal) -> rust_decimal::Decimal {
    with_scale(value, UNIT_AMOUNT_SCALE)
}

/// A total (quantity × unit cost), rounded half-even to cents.
pub fn money_total(value: rust_decimal::Decimal) -> rust_decimal::Decimal {
    with_scale(value, TOTAL_SCALE)
}

pub const UNIT_AMOUNT_SCALE: u32 = 4;
pub const TOTAL_SCALE: u32 = 2;

fn with_scale(value: rust_decimal::Decimal, scale: u32) -> rust_decimal::Decimal {
    let mut v = value.round_dp(scale);
    v.rescale(scale);
    v
}

/// A JSON answer already serialised (e.g. from a cache), sent as is, and
/// documented with the schema of `T`.
pub struct RawJson<T> {
    body: Arc<str>,
    _schema: PhantomData<fn() -> T>,
}

impl<T> RawJson<T> {
    pub fn new(body: Arc<str>) -> Self {
        Self {
            body,
            _schema: PhantomData,
        }
    }
}

impl<T: Type> Payload for RawJson<T> {
    const CONTENT_TYPE: &'static str = "application/json; charset=utf-8";

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: Type> poem::IntoResponse for RawJson<T> {
    fn into_response(self) -> poem::Response {
        poem::Response::builder()
            .content_type(Self::CONTENT_TYPE)
            .body(self.body.as_bytes().to_vec())
    }
}

impl<T: Type> ApiResponse for RawJson<T> {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: vec![MetaResponse {
                description: "",
                status: Some(200),
                status_range: None,
                content: vec![MetaMediaType {
                    content_type: Self::CONTENT_TYPE,
                    schema: Self::schema_ref(),
                }],
                headers: vec![],
            }],
        }
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;

    #[test]
    fn money_has_a_fixed_scale() {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        assert_eq!(money(d("2.5")).to_string(), "2.5000");
        assert_eq!(money(d("2.50")).to_string(), "2.5000");
        assert_eq!(money(d("0")).to_string(), "0.0000");
        assert_eq!(money_total(d("12.345")).to_string(), "12.34");
        assert_eq!(money_total(d("7")).to_string(), "7.00");
    }
}
