//! Assembles every domain's API into one poem `Route` and one OpenAPI document.
//! `build` is what `serve` and the tests call.

use std::{sync::Arc, time::Duration};

use poem::{
    get, handler, http::StatusCode, web::Data, Endpoint, EndpointExt, IntoResponse, Request,
    Response, Route,
};
use poem_openapi::OpenApiService;

use crate::{
    auth::{AuthApi, UsersApi},
    catalog::{categories::CategoriesApi, ProductsApi},
    compression,
    dashboard::DashboardApi,
    error::ApiError,
    events::EventsApi,
    locations::LocationsApi,
    lots::LotsApi,
    ops::OpsApi,
    positions::PositionsApi,
    replenishment::ReplenishmentApi,
    reservations::ReservationsApi,
    scanner::{counts::CountsApi, devices::DevicesApi, ScannerApi},
    state::AppState,
    stock::{StockApi, TransactionsApi},
    telemetry,
    warehouses::WarehousesApi,
    webhooks::WebhooksApi,
};

/// Locations, positions and lots: one element, as poem-openapi implements
/// `OpenApi` for tuples of at most 16.
pub type WhereAndWhich = (LocationsApi, PositionsApi, LotsApi);

/// Front-page reads and what to reorder: one element, for the same reason.
pub type Overview = (DashboardApi, ReplenishmentApi);

pub type Apis = (
    OpsApi,
    AuthApi,
    UsersApi,
    CategoriesApi,
    ProductsApi,
    WarehousesApi,
    WhereAndWhich,
    StockApi,
    TransactionsApi,
    ReservationsApi,
    DevicesApi,
    ScannerApi,
    CountsApi,
    Overview,
    EventsApi,
    WebhooksApi,
);

const API_DESCRIPTION: &str = "\
The system of record for what is in stock, where, and why it changed.

Authenticate with `POST /api/v1/auth/login`, then press **Authorize** and paste the \
`access_token`. Scanner devices send their device key the same way. Errors are RFC 9457 \
`application/problem+json`. Lists use keyset pagination: pass `next_cursor` back as `cursor`.";

/// The OpenAPI service (routes and document) for every domain.
pub fn api_service() -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        (
            OpsApi,
            AuthApi,
            UsersApi,
            CategoriesApi,
            ProductsApi,
            WarehousesApi,
            (LocationsApi, PositionsApi, LotsApi),
            StockApi,
            TransactionsApi,
            ReservationsApi,
            DevicesApi,
            ScannerApi,
            CountsApi,
            (DashboardApi, ReplenishmentApi),
            EventsApi,
            WebhooksApi,
        ),
        "Inventory API",
        env!("CARGO_PKG_VERSION"),
    )
    .description(API_DESCRIPTION)
}

/// The spec as YAML: what `inventory-api openapi` prints and `openapi/openapi.yaml` holds.
pub fn spec_yaml() -> String {
    serde_yaml::to_string(&crate::contract::finish(&api_service().spec()))
        .expect("a JSON document is valid YAML")
}

pub fn spec_json() -> String {
    serde_json::to_string_pretty(&crate::contract::finish(&api_service().spec()))
        .expect("a JSON value serialises")
}

#[handler]
fn metrics_endpoint() -> Response {
    Response::builder()
        .content_type("text/plain; version=0.0.4")
        .body(telemetry::render_prometheus())
}

#[handler]
fn spec_json_endpoint(spec: Data<&Arc<Specs>>) -> Response {
    Response::builder()
        .status(StatusCode::OK)
        .content_type("application/json")
        .body(spec.json.clone())
}

#[handler]
fn spec_yaml_endpoint(spec: Data<&Arc<Specs>>) -> Response {
    Response::builder()
        .content_type("application/yaml")
        .body(spec.yaml.clone())
}

/// The rendered document, built once at start-up.
struct Specs {
    json: String,
    yaml: String,
}

/// The one route whose body may exceed `MAX_BODY_BYTES`: a CSV of up to
/// 100,000 products, limited by `MAX_IMPORT_BYTES` instead.
const IMPORT_PATH: &str = "/api/v1/products/import";

/// Refuses bodies over the limit: by Content-Length up front (413), and for
/// chunked bodies by cutting the stream, which the JSON/CSV parser then reports
/// as malformed. (poem's SizeLimit would demand a Content-Length even on GETs.)
/// `limits` is (every route, the CSV import).
async fn limit_body<E: Endpoint>(
    ep: E,
    mut req: Request,
    limits: (usize, usize),
) -> poem::Result<Response> {
    let import = req.method() == poem::http::Method::POST && req.uri().path() == IMPORT_PATH;
    let max = if import { limits.1 } else { limits.0 };
    let declared = req
        .headers()
        .get(poem::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(len) if len > max as u64 => {
            return Err(poem::Error::from_status(StatusCode::PAYLOAD_TOO_LARGE))
        }
        Some(_) => {}
        None => {
            use tokio::io::AsyncReadExt;
            let body = req.take_body().into_async_read().take(max as u64);
            req.set_body(poem::Body::from_async_read(body));
        }
    }
    ep.call(req).await.map(IntoResponse::into_response)
}

/// Abandons a request still running after `limit`: its future is dropped, so
/// an open transaction is rolled back (sqlx rolls back an uncommitted
/// transaction when it is dropped, before the connection is reused) instead of
/// committing after the client gave up. The database's own timeouts are set
/// below this limit (see `db::SessionLimits`), so normally PostgreSQL gives up
/// first and this is the backstop. Event streams are not affected: their
/// response is returned at once and streamed afterwards.
async fn deadline<E: Endpoint>(ep: E, req: Request, limit: Duration) -> poem::Result<Response> {
    match tokio::time::timeout(limit, ep.call(req)).await {
        Ok(result) => result.map(IntoResponse::into_response),
        Err(_) => {
            tracing::warn!(
                limit_ms = limit.as_millis() as u64,
                "request abandoned at its deadline"
            );
            Err(ApiError::Busy(
                "The request did not finish in time and was abandoned; retry shortly \
                 (with the same Idempotency-Key for writes).",
            )
            .into())
        }
    }
}

/// The whole HTTP application.
pub fn build(state: AppState) -> impl Endpoint {
    let api = api_service();
    let specs = Arc::new(Specs {
        json: spec_json(),
        yaml: spec_yaml(),
    });
    if let Ok(doc) = serde_json::from_str::<serde_json::Value>(&specs.json) {
        if let Some(paths) = doc["paths"].as_object() {
            telemetry::register_routes(paths.keys().map(String::as_str));
        }
    }
    // poem's Swagger UI page embeds poem's own document; it shows ours instead.
    let docs_html = api.swagger_ui_html().replace(&api.spec(), &specs.json);
    let docs = get(poem::endpoint::make_sync(move |_| {
        poem::web::Html(docs_html.clone())
    }));
    let body_limits = (state.config.max_body_bytes, state.config.max_import_bytes);
    let request_timeout = state.config.request_timeout;
    Route::new()
        .at("/metrics", get(metrics_endpoint))
        .at("/openapi.json", get(spec_json_endpoint))
        .at("/openapi.yaml", get(spec_yaml_endpoint))
        .nest("/docs", docs)
        .nest("/console", crate::console::routes())
        .nest("/", api)
        .data(state)
        .data(specs)
        .around(crate::input::refuse_control_chars)
        .around(move |ep, req| limit_body(ep, req, body_limits))
        .around(move |ep, req| deadline(ep, req, request_timeout))
        .around(telemetry::observe)
        // Outermost, so that the problem+json bodies `observe` renders are compressed too.
        .around(compression::compress)
}
