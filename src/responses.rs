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
