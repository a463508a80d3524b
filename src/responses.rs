//! Response shapes shared by every domain.

use poem_openapi::{payload::Json, types::ToJSON, ApiResponse};

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

/// Money as the API writes it: exact, without the trailing zeros numeric(14, 4)
/// pads with ("12.5", not "12.5000"), as poem-openapi renders decimals.
pub fn money(value: rust_decimal::Decimal) -> rust_decimal::Decimal {
    value.normalize()
}
