//! One error type for the whole API, rendered as RFC 9457 problem+json.
//!
//! Handlers return [`Result<T>`]; database and Redis failures become a fixed
//! message here and their text goes only to the log. Constraint violations are
//! turned into 409/422 answers by name (see [`constraint_problem`]), so the
//! database stays the judge of uniqueness and ranges while the client still
//! gets a message it can act on. Errors poem raises before a handler runs
//! (unknown route, malformed JSON, missing credentials) pass through
//! [`render_any`] and come out in the same shape.

use poem::{http::StatusCode, Response};
use poem_openapi::{
    registry::{MetaMediaType, MetaResponse, MetaResponses, Registry},
    types::ToJSON,
    ApiResponse, Object,
};

pub type Result<T, E = ApiError> = std::result::Result<T, E>;

/// Problem types are relative URI references: stable identifiers clients may
/// switch on. The README lists them.
const PROBLEM_BASE: &str = "/problems/";

/// Retry-After on a 503: a restarted database accepts connections again
/// within seconds, and a lock or queue frees up sooner.
pub const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 1;

/// One input field the server refused, and why.
#[derive(Debug, Clone, PartialEq, Eq, Object, serde::Serialize)]
pub struct FieldError {
    /// The JSON field (or `row N: field` for CSV imports) at fault.
    pub field: String,
    /// What is wrong with it, phrased for the person who typed it.
    pub message: String,
}

/// An RFC 9457 problem document; every error answer has this shape.
#[derive(Debug, Object)]
#[oai(rename = "Problem")]
pub struct ProblemDoc {
    /// Stable identifier of the kind of problem, e.g. `/problems/insufficient-stock`.
    #[oai(rename = "type")]
    pub kind: String,
    /// Short summary of the problem type.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What happened here and what to do about it.
    pub detail: String,
    /// Field errors, when the input is at fault; null otherwise.
    pub errors: Option<Vec<FieldError>>,
    /// For `insufficient-stock`: the quantity that is available; null
    /// otherwise, and null for device keys, viewers and clerks while a blind
    /// count covers the level (they are the ones counting it).
    pub available: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("unauthorized")]
    Unauthorized,
    /// Login refused: one message for unknown email, wrong password and inactive user.
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("not found: {0}")]
    NotFound(String),
    /// 409 with a problem slug of its own (e.g. `sku-taken`).
    #[error("conflict ({slug}): {detail}")]
    Conflict { slug: &'static str, detail: String },
    /// `available`: None when a blind count hides the level from the asker.
    #[error("insufficient stock: {available:?} available, {requested} requested")]
    InsufficientStock {
        available: Option<i64>,
        requested: i64,
    },
    #[error("precondition failed: {0}")]
    PreconditionFailed(String),
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    /// 422 that is not about one field (e.g. an idempotency key reused with another body).
    #[error("unprocessable ({slug}): {detail}")]
    Unprocessable { slug: &'static str, detail: String },
    #[error("too many requests")]
    TooManyRequests { retry_after_secs: u64 },
    /// 503 + Retry-After: a dependency (the database) is down; the text names it.
    #[error("service unavailable: {0}")]
    Unavailable(&'static str),
    /// 503 + Retry-After: the work could not be done in time (a lock held
    /// elsewhere, a statement or request deadline, a full queue); the text says
    /// which. Nothing was changed.
    #[error("busy: {0}")]
    Busy(&'static str),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn not_found(what: impl std::fmt::Display) -> Self {
        Self::NotFound(format!("{what} does not exist"))
    }

    pub fn conflict(slug: &'static str, detail: impl Into<String>) -> Self {
        Self::Conflict {
            slug,
            detail: detail.into(),
        }
    }

    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError {
            field: field.to_owned(),
            message: message.into(),
        }])
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized | Self::InvalidCredentials => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict { .. } | Self::InsufficientStock { .. } => StatusCode::CONFLICT,
            Self::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            Self::Validation(_) | Self::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) | Self::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn to_problem(&self) -> ProblemDoc {
        let (slug, title, detail) = match self {
            Self::BadRequest(d) => ("bad-request", "Bad request", d.clone()),
            Self::Unauthorized => (
                "unauthorized",
                "Unauthorized",
                "Missing, invalid or expired credentials: send Authorization: Bearer <token>."
                    .to_owned(),
            ),
            Self::InvalidCredentials => (
                "invalid-credentials",
                "Invalid credentials",
                "Email or password is incorrect.".to_owned(),
            ),
            Self::Forbidden(d) => ("forbidden", "Forbidden", d.clone()),
            Self::NotFound(d) => ("not-found", "Not found", d.clone()),
            Self::Conflict { slug, detail } => (*slug, "Conflict", detail.clone()),
            Self::InsufficientStock {
                available,
                requested,
            } => (
                "insufficient-stock",
                "Insufficient stock",
                match available {
                    Some(available) => {
                        format!("Only {available} available; {requested} requested.")
                    }
                    None => format!(
                        "Not enough available for {requested}; the level is under a blind count, \
                         so how much is there is not shown."
                    ),
                },
            ),
            Self::PreconditionFailed(d) => {
                ("precondition-failed", "Precondition failed", d.clone())
            }
            Self::Validation(_) => (
                "validation",
                "Validation failed",
                "One or more fields are invalid; see errors.".to_owned(),
            ),
            Self::Unprocessable { slug, detail } => {
                (*slug, "Unprocessable request", detail.clone())
            }
            Self::TooManyRequests { retry_after_secs } => (
                "too-many-requests",
                "Too many requests",
                format!("Slow down; retry after {retry_after_secs} seconds."),
            ),
            Self::Unavailable(what) => (
                "unavailable",
                "Service unavailable",
                format!("{what} is unavailable; retry shortly."),
            ),
            Self::Busy(detail) => ("unavailable", "Service unavailable", (*detail).to_owned()),
            Self::Internal(_) => (
                "internal",
                "Internal server error",
                "An unexpected error occurred; it has been logged.".to_owned(),
            ),
        };
        ProblemDoc {
            kind: format!("{PROBLEM_BASE}{slug}"),
            title: title.to_owned(),
            status: self.status().as_u16(),
            detail,
            errors: match self {
                Self::Validation(errors) => Some(errors.clone()),
                _ => None,
            },
            available: match self {
                Self::InsufficientStock { available, .. } => *available,
                _ => None,
            },
        }
    }
}

/// Builds a problem+json response.
pub fn problem_response(status: StatusCode, problem: &ProblemDoc) -> Response {
    let body = problem.to_json_string();
    Response::builder()
        .status(status)
        .content_type("application/problem+json")
        .body(body)
}

impl poem::error::ResponseError for ApiError {
    fn status(&self) -> StatusCode {
        ApiError::status(self)
    }

    fn as_response(&self) -> Response {
        if let Self::Internal(e) = self {
            // The chain goes to the log; the client gets the fixed text above.
            tracing::error!(error = format!("{e:#}"), "internal error");
        }
        let mut resp = problem_response(self.status(), &self.to_problem());
        let retry_after = match self {
            Self::TooManyRequests { retry_after_secs } => Some(*retry_after_secs),
            Self::Unavailable(_) | Self::Busy(_) => Some(UNAVAILABLE_RETRY_AFTER_SECS),
            _ => None,
        };
        if let Some(secs) = retry_after {
            resp.headers_mut().insert(
                poem::http::header::RETRY_AFTER,
                secs.to_string().parse().expect("digits are a valid header"),
            );
        }
        resp
    }
}

impl poem::IntoResponse for ApiError {
    fn into_response(self) -> Response {
        poem::error::ResponseError::as_response(&self)
    }
}

/// Documents every operation's error answers as one `default` problem+json response.
impl ApiResponse for ApiError {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: vec![MetaResponse {
                description: "An RFC 9457 problem: 400 malformed input, 401 missing or bad \
                              credentials, 403 role not allowed, 404 unknown resource, 409 \
                              conflict (duplicate, insufficient stock), 412 stale If-Match, 422 \
                              validation failed, 429 throttled, 503 database unavailable.",
                status: None,
                status_range: None,
                content: vec![MetaMediaType {
                    content_type: "application/problem+json",
                    schema: <ProblemDoc as poem_openapi::types::Type>::schema_ref(),
                }],
                headers: vec![],
            }],
        }
    }

    fn register(registry: &mut Registry) {
        <ProblemDoc as poem_openapi::types::Type>::register(registry);
    }
}

/// Constraint names (from migrations/) that have a message of their own.
fn constraint_problem(constraint: &str) -> Option<ApiError> {
    let conflict = |slug, detail: &str| Some(ApiError::conflict(slug, detail));
    let field = |f: &str, m: &str| Some(ApiError::field(f, m));
    match constraint {
        "users_email_key" | "users_email_normalized_key" => {
            conflict("email-taken", "A user with this email already exists.")
        }
        "products_sku_key" => conflict("sku-taken", "A product with this SKU already exists."),
        "product_barcodes_pkey" => conflict(
            "barcode-taken",
            "This barcode (or an equivalent GTIN form) already belongs to a product.",
        ),
        "warehouses_code_key" => {
            conflict("code-taken", "A warehouse with this code already exists.")
        }
        "categories_sibling_name_key" => conflict(
            "category-name-taken",
            "A category with this name already exists under the same parent.",
        ),
        "locations_code_key" => conflict(
            "location-code-taken",
            "A location with this code already exists in this warehouse.",
        ),
        // The trigger refusing a product's barcode as a location label raises this name too.
        "locations_barcode_key" => conflict(
            "barcode-taken",
            "This barcode already labels a location or belongs to a product.",
        ),
        "locations_parent_same_warehouse" => {
            field("parent_id", "no location with this id in this warehouse")
        }
        "locations_no_cycle" | "locations_not_own_parent" => field(
            "parent_id",
            "a location cannot be placed under itself or one of its sub-locations",
        ),
        "locations_code_format" => field(
            "code",
            "1-32 characters: letters, digits, '.', '_', '-'; starting with a letter or digit",
        ),
        "categories_no_cycle" | "categories_not_own_parent" => field(
            "parent_id",
            "a category cannot be placed under itself or one of its descendants",
        ),
        "products_sku_format" => field(
            "sku",
            "1-64 characters: letters, digits, '.', '_', '/', '-'; starting with a letter or digit",
        ),
        "warehouses_code_format" => field(
            "code",
            "1-32 characters: letters, digits, '.', '_', '-'; starting with a letter or digit",
        ),
        "product_barcodes_pack_quantity_positive" => field("pack_quantity", "must be at least 1"),
        "products_category_id_fkey" => field("category_id", "no category with this id"),
        "stock_levels_quantity_non_negative" => Some(ApiError::conflict(
            "insufficient-stock",
            "The movement would make stock negative.",
        )),
        _ => None,
    }
}

impl From<sqlx::Error> for ApiError {
    /// The one mapping of database errors. Connection-level failures (the
    /// server restarted, failed over or is unreachable) and the session limits
    /// firing are 503 + Retry-After: the request changed nothing and may be
    /// repeated. Only statement errors reach the constraint table below.
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => {
                tracing::warn!(error = %err, "database unavailable: no connection in time");
                ApiError::Unavailable("The database")
            }
            _ if crate::db::note_if_lost(&err) => {
                tracing::warn!(error = %err, "database connection lost");
                ApiError::Unavailable("The database")
            }
            _ if crate::db::is_timeout(&err) => {
                tracing::warn!(error = %err, "database statement cancelled by a session timeout");
                ApiError::Busy(
                    "The database did not finish in time (a lock held elsewhere or a slow \
                     statement); nothing was changed, retry shortly.",
                )
            }
            sqlx::Error::RowNotFound => {
                ApiError::NotFound("The requested record does not exist.".into())
            }
            sqlx::Error::Database(db) => {
                if let Some(problem) = db.constraint().and_then(constraint_problem) {
                    return problem;
                }
                // Deadlock or serialization failure: lock ordering makes these
                // rare; the request changed nothing and can simply be retried.
                if matches!(db.code().as_deref(), Some("40P01" | "40001")) {
                    tracing::warn!(error = %db, "transaction aborted by a concurrent one");
                    return ApiError::conflict(
                        "concurrent-update",
                        "A concurrent change got in the way and nothing was applied; retry the request.",
                    );
                }
                // Generic answers for constraints without a message of their own; the
                // constraint name and SQL text stay in the log.
                if db.kind() != sqlx::error::ErrorKind::Other {
                    tracing::warn!(error = %db, constraint = ?db.constraint(), "constraint violation");
                }
                match db.kind() {
                    sqlx::error::ErrorKind::UniqueViolation => {
                        ApiError::conflict("conflict", "This conflicts with an existing record.")
                    }
                    sqlx::error::ErrorKind::ForeignKeyViolation => ApiError::Unprocessable {
                        slug: "reference-invalid",
                        detail: "The request refers to a record that does not exist, or removes one that is still in use.".into(),
                    },
                    sqlx::error::ErrorKind::CheckViolation
                    | sqlx::error::ErrorKind::NotNullViolation => ApiError::Unprocessable {
                        slug: "validation",
                        detail: "A value is out of the allowed range.".into(),
                    },
                    _ => ApiError::Internal(anyhow::Error::new(err).context("database error")),
                }
            }
            _ => ApiError::Internal(anyhow::Error::new(err).context("database error")),
        }
    }
}

/// Collects field errors so a client learns about every bad field at once.
#[derive(Debug, Default)]
pub struct Validation(Vec<FieldError>);

impl Validation {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `message` against `field` unless `ok`.
    pub fn check(&mut self, ok: bool, field: &str, message: impl Into<String>) -> &mut Self {
        if !ok {
            self.push(field, message);
        }
        self
    }

    pub fn push(&mut self, field: &str, message: impl Into<String>) -> &mut Self {
        self.0.push(FieldError {
            field: field.to_owned(),
            message: message.into(),
        });
        self
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Problems recorded so far.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn finish(self) -> Result<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(self.0))
        }
    }
}

/// Renders any error that reached the top of the stack as problem+json.
///
/// `ApiError`s render themselves. Errors raised by poem and poem-openapi before a
/// handler runs (unknown route, bad JSON, wrong content type, missing
/// credentials) keep their status; their message is about the request, so it is
/// safe and useful to show. Anything 5xx that is not ours gets a fixed text.
pub fn render_any(err: poem::Error) -> Response {
    if let Some(api) = err.downcast_ref::<ApiError>() {
        return poem::error::ResponseError::as_response(api);
    }
    let status = err.status();
    let (slug, title, detail) = match status {
        StatusCode::NOT_FOUND => (
            "not-found",
            "Not found",
            "No resource at this path; see /docs for the API.".to_owned(),
        ),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method-not-allowed",
            "Method not allowed",
            "This path does not accept that method; see /docs.".to_owned(),
        ),
        StatusCode::UNAUTHORIZED => {
            return poem::IntoResponse::into_response(ApiError::Unauthorized)
        }
        StatusCode::PAYLOAD_TOO_LARGE => (
            "payload-too-large",
            "Payload too large",
            "The request body exceeds the size limit.".to_owned(),
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported-media-type",
            "Unsupported media type",
            format!("{err}; send Content-Type: application/json."),
        ),
        s if s.is_client_error() => ("bad-request", "Bad request", err.to_string()),
        _ => {
            tracing::error!(error = %err, status = %status, "unhandled error");
            (
                "internal",
                "Internal server error",
                "An unexpected error occurred; it has been logged.".to_owned(),
            )
        }
    };
    let problem = ProblemDoc {
        kind: format!("{PROBLEM_BASE}{slug}"),
        title: title.to_owned(),
        status: status.as_u16(),
        detail,
        errors: None,
        available: None,
    };
    problem_response(status, &problem)
}

/// Convenience for JSON bodies outside poem-openapi (e.g. health answers).
pub fn json_response(status: StatusCode, value: serde_json::Value) -> Response {
    Response::builder()
        .status(status)
        .content_type("application/json")
        .body(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_collects_every_field() {
        let mut v = Validation::new();
        v.check(false, "sku", "required")
            .check(true, "name", "x")
            .push("price", "negative");
        let Err(ApiError::Validation(errors)) = v.finish() else {
            panic!("expected validation error")
        };
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[0].field, "sku");
    }

    #[test]
    fn internal_errors_hide_their_text() {
        let err = ApiError::Internal(anyhow::anyhow!("password=hunter2 in SQL"));
        let problem = err.to_problem();
        assert!(!problem.detail.contains("hunter2"));
        assert_eq!(problem.status, 500);
    }
}
