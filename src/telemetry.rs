//! Logs and metrics: set up once here; domains only record.
//!
//! Metrics go through the OpenTelemetry API and are exported in Prometheus text
//! format by `opentelemetry-prometheus` into a registry served on `/metrics`.
//! The HTTP middleware ([`observe`]) gives every request an id, a tracing span,
//! a log line and its RED metrics, labelled by route *template* so label
//! cardinality stays bounded. This module does not decide what to log inside
//! handlers, and it does not push anywhere: Prometheus scrapes.

use std::{
    sync::{Arc, OnceLock},
    time::{Duration, Instant},
};

use opentelemetry::{
    metrics::{Counter, Gauge, Histogram, Meter, MeterProvider as _, UpDownCounter},
    KeyValue,
};
use opentelemetry_sdk::metrics::SdkMeterProvider;
use poem::{
    http::{HeaderValue, StatusCode},
    Endpoint, IntoResponse, PathPattern, Request, Response,
};
use tracing::Instrument;

use crate::config::LogFormat;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Latency buckets for a fast API: half a millisecond up to ten seconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Installs the tracing subscriber. Safe to call more than once (tests).
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,poem=warn"));
    init_logging_to(format, filter, std::io::stdout);
}

/// [`init_logging`] with an explicit filter and destination (tests read the lines back).
pub fn init_logging_to<W>(format: LogFormat, filter: tracing_subscriber::EnvFilter, writer: W)
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    use tracing_subscriber::fmt;
    let result = match format {
        LogFormat::Json => fmt()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_env_filter(filter)
            .with_writer(writer)
            .try_init(),
        LogFormat::Pretty => fmt().with_env_filter(filter).with_writer(writer).try_init(),
    };
    // A second call (several apps in one test process) keeps the first subscriber.
    let _ = result;
}

/// Every instrument the service records. Created once per process.
pub struct Metrics {
    pub http_requests: Counter<u64>,
    pub http_duration: Histogram<f64>,
    pub http_active: UpDownCounter<i64>,
    pub stock_movements: Counter<u64>,
    pub stock_units_moved: Counter<u64>,
    pub scan_events: Counter<u64>,
    pub idempotent_replays: Counter<u64>,
    pub count_sessions_completed: Counter<u64>,
    pub logins: Counter<u64>,
    pub cache_requests: Counter<u64>,
    pub outbox_backlog: Gauge<i64>,
    pub outbox_published: Counter<u64>,
    pub outbox_publish_failures: Counter<u64>,
    pub webhook_deliveries: Counter<u64>,
    pub webhook_queue_depth: Gauge<i64>,
    pub webhook_oldest_pending: Gauge<i64>,
    pub db_pool_size: Gauge<i64>,
    pub db_pool_idle: Gauge<i64>,
    pub db_pool_max: Gauge<i64>,
    pub db_up: Gauge<i64>,
    pub redis_up: Gauge<i64>,
    pub products: Gauge<i64>,
    pub warehouses: Gauge<i64>,
    pub low_stock_products: Gauge<i64>,
    pub expiring_lots: Gauge<i64>,
    pub stock_value: Gauge<f64>,
}

struct Telemetry {
    registry: prometheus::Registry,
    metrics: Metrics,
    // Kept alive for as long as the process: dropping it stops collection.
    _provider: SdkMeterProvider,
}

static TELEMETRY: OnceLock<Telemetry> = OnceLock::new();

fn telemetry() -> &'static Telemetry {
    TELEMETRY.get_or_init(|| {
        let registry = prometheus::Registry::new();
        let exporter = opentelemetry_prometheus::exporter()
            .with_registry(registry.clone())
            .without_target_info()
            .scope_info_enabled(false)
            .build()
            .expect("prometheus exporter registers in a fresh registry");
        let provider = SdkMeterProvider::builder().with_reader(exporter).build();
        let meter = provider.meter("inventory-api");
        let metrics = Metrics::new(&meter);
        zero_fill(&metrics);
        meter
            .i64_gauge("inventory_build_info")
            .with_description("Build information; the value is always 1.")
            .build()
            .record(
                1,
                &[
                    KeyValue::new("version", env!("CARGO_PKG_VERSION")),
                    KeyValue::new("git_sha", env!("GIT_SHA")),
                ],
            );
        Telemetry {
            registry,
            metrics,
            _provider: provider,
        }
    })
}

/// Publishes every bounded label combination at zero, so series exist (and
/// `rate()`/alerts work) before the first event of their kind.
fn zero_fill(m: &Metrics) {
    for kind in [
        "receipt",
        "issue",
        "adjustment",
        "transfer",
        "count_adjustment",
    ] {
        for outcome in ["applied", "refused"] {
            m.stock_movements.add(
                0,
                &[
                    KeyValue::new("kind", kind),
                    KeyValue::new("outcome", outcome),
                ],
            );
        }
        m.stock_units_moved.add(0, &[KeyValue::new("kind", kind)]);
    }
    for action in ["receive", "issue", "count", "lookup"] {
        for status in ["applied", "duplicate", "rejected"] {
            m.scan_events.add(
                0,
                &[
                    KeyValue::new("action", action),
                    KeyValue::new("status", status),
                ],
            );
        }
    }
    for outcome in ["success", "failure", "throttled"] {
        m.logins.add(0, &[KeyValue::new("outcome", outcome)]);
    }
    for result in ["hit", "miss"] {
        m.cache_requests.add(
            0,
            &[
                KeyValue::new("cache", "barcode"),
                KeyValue::new("result", result),
            ],
        );
    }
    m.idempotent_replays.add(0, &[]);
    m.count_sessions_completed.add(0, &[]);
    m.outbox_published.add(0, &[]);
    m.outbox_publish_failures.add(0, &[]);
    for outcome in ["delivered", "retry", "failed"] {
        m.webhook_deliveries
            .add(0, &[KeyValue::new("outcome", outcome)]);
    }
}

/// The process-wide instruments.
pub fn metrics() -> &'static Metrics {
    &telemetry().metrics
}

/// Everything collected so far, in Prometheus text exposition format.
pub fn render_prometheus() -> String {
    let families = telemetry().registry.gather();
    prometheus::TextEncoder::new()
        .encode_to_string(&families)
        .unwrap_or_else(|e| format!("# encoding failed: {e}\n"))
}

impl Metrics {
    fn new(meter: &Meter) -> Self {
        let counter = |name: &'static str, description: &'static str| {
            meter
                .u64_counter(name)
                .with_description(description)
                .build()
        };
        let gauge = |name: &'static str, description: &'static str| {
            meter.i64_gauge(name).with_description(description).build()
        };
        Self {
            http_requests: counter(
                "http_server_requests",
                "HTTP requests by method, route template and status class.",
            ),
            http_duration: meter
                .f64_histogram("http_server_request_duration")
                .with_unit("s")
                .with_description(
                    "HTTP request latency by method, route template and status class.",
                )
                .with_boundaries(LATENCY_BUCKETS.to_vec())
                .build(),
            http_active: meter
                .i64_up_down_counter("http_server_active_requests")
                .with_description("HTTP requests being served right now.")
                .build(),
            stock_movements: counter(
                "inventory_stock_movements",
                "Stock movements by kind and outcome (applied or refused).",
            ),
            stock_units_moved: counter(
                "inventory_stock_units_moved",
                "Units moved by applied stock movements, by kind.",
            ),
            scan_events: counter(
                "inventory_scan_events",
                "Scanner events by action and status.",
            ),
            idempotent_replays: counter(
                "inventory_idempotent_replays",
                "Requests answered from a stored Idempotency-Key response.",
            ),
            count_sessions_completed: counter(
                "inventory_count_sessions_completed",
                "Count sessions (stocktakes) completed.",
            ),
            logins: counter("inventory_logins", "Login attempts by outcome."),
            cache_requests: counter(
                "inventory_cache_requests",
                "Cache lookups by cache and result (hit or miss).",
            ),
            outbox_backlog: gauge(
                "inventory_outbox_backlog",
                "Outbox events not yet published.",
            ),
            outbox_published: counter(
                "inventory_outbox_published",
                "Outbox events published to Redis.",
            ),
            outbox_publish_failures: counter(
                "inventory_outbox_publish_failures",
                "Failed attempts to publish outbox events.",
            ),
            webhook_deliveries: counter(
                "inventory_webhook_deliveries",
                "Webhook delivery attempts by outcome (delivered, retry, failed).",
            ),
            webhook_queue_depth: gauge(
                "inventory_webhook_queue_depth",
                "Webhook deliveries pending (waiting or due) for active endpoints.",
            ),
            webhook_oldest_pending: gauge(
                "inventory_webhook_oldest_pending_seconds",
                "Age in seconds of the oldest pending webhook delivery of an active endpoint (0 when none).",
            ),
            db_pool_size: gauge("inventory_db_pool_size", "Open database connections."),
            db_pool_idle: gauge("inventory_db_pool_idle", "Idle database connections."),
            db_pool_max: gauge("inventory_db_pool_max", "Maximum database connections."),
            db_up: gauge(
                "inventory_db_up",
                "1 when the last PostgreSQL check succeeded, else 0.",
            ),
            redis_up: gauge(
                "inventory_redis_up",
                "1 when Redis answered the last check, else 0 (also 0 when disabled).",
            ),
            products: gauge("inventory_products", "Active products."),
            warehouses: gauge("inventory_warehouses", "Active warehouses."),
            low_stock_products: gauge(
                "inventory_low_stock_products",
                "Active products whose total stock is at or below their reorder point.",
            ),
            expiring_lots: gauge(
                "inventory_expiring_lots",
                "Lots with stock that expire within 30 days or have expired.",
            ),
            stock_value: meter
                .f64_gauge("inventory_stock_value")
                .with_description("Value of all stock at its moving-average cost (sum of the levels' values).")
                .build(),
        }
    }
}

/// Who made the request (`user:<id>` or `device:<id>`), set by authentication
/// and written on the request's access line.
///
/// Not a field of the request span: recording into a span makes the JSON
/// formatter parse and rewrite the span's fields (perf: ~3 % of the API's CPU
/// in a movement run); the access line carries the request id, which ties the
/// request's other lines to it.
#[derive(Debug, Clone, Default)]
pub struct RequestPrincipal(Arc<OnceLock<String>>);

impl RequestPrincipal {
    pub fn set(&self, principal: String) {
        let _ = self.0.set(principal);
    }
}

/// The request id: the caller's `X-Request-Id` when it is sane, else a new UUIDv7.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

fn request_id_from(req: &Request) -> String {
    req.headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            (1..=64).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string())
}

/// poem-openapi routes `/api/v1/products/{id}` as `/api/v1/products/:param0`;
/// labels and dashboards use the OpenAPI form. This maps one to the other.
static ROUTE_NAMES: OnceLock<std::collections::HashMap<String, String>> = OnceLock::new();

/// Registers the OpenAPI path templates (called once when the app is built).
pub fn register_routes<'a>(templates: impl IntoIterator<Item = &'a str> + Clone) {
    let _ = ROUTE_TEMPLATES.get_or_init(|| {
        let mut routes = RouteTemplates::default();
        for t in templates.clone() {
            let segments: Vec<_> = t
                .split('/')
                .map(|seg| (!seg.starts_with('{')).then(|| seg.to_owned()))
                .collect();
            if segments.iter().all(Option::is_some) {
                routes.literal.insert(t.to_owned());
            } else {
                routes.with_params.push((t.to_owned(), segments));
            }
        }
        routes
    });
    let _ = ROUTE_NAMES.get_or_init(|| {
        templates
            .into_iter()
            .map(|t| {
                let mut n = 0;
                let poem_form = t
                    .split('/')
                    .map(|seg| {
                        if seg.starts_with('{') {
                            n += 1;
                            format!(":param{}", n - 1)
                        } else {
                            seg.to_owned()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("/");
                (poem_form, t.to_owned())
            })
            .collect()
    });
}

/// The OpenAPI templates, for [`route_for_path`]: those without parameters by
/// their path, the others split into segments (`None` = a `{param}`).
#[derive(Default)]
struct RouteTemplates {
    literal: std::collections::HashSet<String>,
    with_params: Vec<(String, Vec<Option<String>>)>,
}
static ROUTE_TEMPLATES: OnceLock<RouteTemplates> = OnceLock::new();

/// The OpenAPI template a request path falls under, before routing has run
/// (the most literal match wins: `/products/by-barcode/{b}` over `/products/{id}/{x}`);
/// "unmatched" for paths outside the API (routing later names those it knows).
/// A template without parameters is the most literal match there is, so it is
/// looked up first: one hash lookup for the movement endpoints instead of
/// comparing the path with every template (perf: ~4 % of the API's CPU in a
/// movement run).
fn route_for_path(path: &str) -> &'static str {
    let Some(templates) = ROUTE_TEMPLATES.get() else {
        return "unmatched";
    };
    if let Some(template) = templates.literal.get(path) {
        return template;
    }
    let segments: Vec<&str> = path.split('/').collect();
    templates
        .with_params
        .iter()
        .filter(|(_, t)| {
            t.len() == segments.len()
                && t.iter().zip(&segments).all(|(want, got)| match want {
                    Some(literal) => literal == got,
                    None => !got.is_empty(),
                })
        })
        .max_by_key(|(_, t)| t.iter().filter(|s| s.is_some()).count())
        .map_or("unmatched", |(name, _)| name)
}

fn route_label(pattern: Option<&PathPattern>) -> String {
    // Unmatched paths share one label so scanners of random URLs cannot
    // inflate label cardinality.
    let Some(pattern) = pattern.filter(|p| !p.0.is_empty()) else {
        return "unmatched".to_owned();
    };
    if let Some(name) = ROUTE_NAMES.get().and_then(|m| m.get(&*pattern.0)) {
        return name.clone();
    }
    pattern
        .0
        .split('/')
        .map(|seg| match seg.strip_prefix(':') {
            Some(name) => format!("{{{name}}}"),
            None => seg.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// Outermost middleware: request id, span, access log, HTTP metrics, and the
/// final problem+json rendering of any error.
pub async fn observe<E: Endpoint>(ep: E, mut req: Request) -> poem::Result<Response> {
    let metrics = metrics();
    let request_id = request_id_from(&req);
    req.set_data(RequestId(request_id.clone()));
    let principal = RequestPrincipal::default();
    req.set_data(principal.clone());
    let method = req.method().to_string();
    // ERROR level so the span is enabled whenever any line is logged: under
    // RUST_LOG=warn an INFO span would be filtered out and warn lines would
    // lose the request's fields. The route is known from the path up front, so
    // lines logged inside the handler carry it too.
    let span = tracing::error_span!(
        "request",
        request_id = %request_id,
        method = %method,
        path = %req.uri().path(),
        route = %route_for_path(req.uri().path()),
    );
    let started = Instant::now();
    metrics.http_active.add(1, &[]);
    let result = ep.call(req).instrument(span.clone()).await;
    metrics.http_active.add(-1, &[]);

    let (mut resp, pattern) = match result {
        Ok(resp) => {
            let resp = resp.into_response();
            let pattern = resp.data::<PathPattern>().cloned();
            (resp, pattern)
        }
        Err(err) => {
            let pattern = err.data::<PathPattern>().cloned();
            let resp = span.in_scope(|| crate::error::render_any(err));
            (resp, pattern)
        }
    };
    let route = route_label(pattern.as_ref());
    let status = resp.status();
    let elapsed = started.elapsed();
    let labels = [
        KeyValue::new("method", method),
        KeyValue::new("route", route.clone()),
        KeyValue::new("status_class", status_class(status)),
    ];
    metrics.http_requests.add(1, &labels);
    metrics.http_duration.record(elapsed.as_secs_f64(), &labels);

    // The outcome goes on the line, not into the span: recording a field
    // into a span makes the JSON formatter parse and rewrite the span's
    // fields, which cost ~7 % of the API's CPU in a movement run (perf).
    let (status_code, latency_ms) = (status.as_u16(), elapsed.as_secs_f64() * 1000.0);
    let principal = principal.0.get().map(String::as_str);
    span.in_scope(|| {
        if status.is_server_error() {
            tracing::error!(
                status = status_code,
                latency_ms,
                principal,
                "request failed"
            );
        } else if elapsed > Duration::from_secs(1) {
            tracing::warn!(status = status_code, latency_ms, principal, "slow request");
        } else {
            tracing::info!(
                status = status_code,
                latency_ms,
                principal,
                "request completed"
            );
        }
    });

    if let Ok(value) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_label_uses_openapi_templates() {
        register_routes([
            "/api/v1/products/{id}/barcodes/{barcode}",
            "/api/v1/products/{id}",
            "/api/v1/products/low-stock",
        ]);
        let p = PathPattern("/api/v1/products/:param0/barcodes/:param1".into());
        assert_eq!(
            route_label(Some(&p)),
            "/api/v1/products/{id}/barcodes/{barcode}"
        );
        assert_eq!(route_label(None), "unmatched");
        assert_eq!(
            route_for_path("/api/v1/products/abc/barcodes/123"),
            "/api/v1/products/{id}/barcodes/{barcode}"
        );
        assert_eq!(
            route_for_path("/api/v1/products/abc/barcodes/"),
            "unmatched"
        );
        assert_eq!(route_for_path("/nope"), "unmatched");
        // The most literal template wins, with or without parameters.
        assert_eq!(
            route_for_path("/api/v1/products/low-stock"),
            "/api/v1/products/low-stock"
        );
        assert_eq!(
            route_for_path("/api/v1/products/abc"),
            "/api/v1/products/{id}"
        );
    }
}
