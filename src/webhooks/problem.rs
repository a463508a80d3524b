//! The error answers of the webhook operations, each status documented on its
//! own in the spec (with the problem+json schema), instead of one `default`.
//! The body is exactly the shared `ApiError` problem; only the spec differs.
//! `NOT_FOUND` and `CONFLICT` say whether an operation can answer 404 / 409.

use poem::Response;
use poem_openapi::{
    registry::{MetaMediaType, MetaResponse, MetaResponses, Registry},
    ApiResponse,
};

use crate::error::{ApiError, ProblemDoc};

pub struct Problem<const NOT_FOUND: bool, const CONFLICT: bool>(pub ApiError);

impl<const N: bool, const C: bool> From<ApiError> for Problem<N, C> {
    fn from(e: ApiError) -> Self {
        Self(e)
    }
}

impl<const N: bool, const C: bool> From<sqlx::Error> for Problem<N, C> {
    fn from(e: sqlx::Error) -> Self {
        Self(e.into())
    }
}

impl<const N: bool, const C: bool> From<anyhow::Error> for Problem<N, C> {
    fn from(e: anyhow::Error) -> Self {
        Self(e.into())
    }
}

impl<const N: bool, const C: bool> From<Problem<N, C>> for poem::Error {
    fn from(p: Problem<N, C>) -> Self {
        poem::Error::from(p.0)
    }
}

impl<const N: bool, const C: bool> poem::IntoResponse for Problem<N, C> {
    fn into_response(self) -> Response {
        self.0.into_response()
    }
}

impl<const N: bool, const C: bool> ApiResponse for Problem<N, C> {
    fn meta() -> MetaResponses {
        let mut statuses = vec![
            (400, "Malformed JSON, path or query parameter."),
            (401, "Missing, expired or invalid credentials."),
            (403, "Only admins manage webhooks."),
        ];
        if N {
            statuses.push((404, "The webhook (or delivery) does not exist."));
        }
        if C {
            statuses.push((409, "The delivery is being attempted right now."));
        }
        statuses.push((422, "A field failed validation; see `errors`."));
        statuses.push((
            503,
            "The database is unavailable; retry after `Retry-After`.",
        ));
        MetaResponses {
            responses: statuses
                .into_iter()
                .map(|(status, description)| MetaResponse {
                    description,
                    status: Some(status),
                    status_range: None,
                    content: vec![MetaMediaType {
                        content_type: "application/problem+json",
                        schema: <ProblemDoc as poem_openapi::types::Type>::schema_ref(),
                    }],
                    headers: vec![],
                })
                .collect(),
        }
    }

    fn register(registry: &mut Registry) {
        <ProblemDoc as poem_openapi::types::Type>::register(registry);
    }
}
