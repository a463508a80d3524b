//! The web console at `/console/`: hand-written ES modules, CSS and HTML
//! embedded in the binary, so one file deploys it and nothing is fetched from
//! another host. There is no build step; `console/` holds the files as served.
//!
//! Every response carries a strict Content-Security-Policy (scripts and
//! connections to this origin only, no inline script or style) and a strong
//! ETag; files are revalidated on each load (`no-cache`), which costs a 304
//! and means a new binary is picked up at once without versioned file names.

use std::sync::OnceLock;

use poem::{
    get, handler,
    http::{header, StatusCode},
    web::Path,
    IntoResponse, Request, Response, Route,
};
use sha2::{Digest, Sha256};

/// The console's Content-Security-Policy.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; connect-src 'self'; font-src 'self'; manifest-src 'self'; \
base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const JS: &str = "text/javascript; charset=utf-8";

macro_rules! file {
    ($name:literal, $content_type:expr) => {
        (
            $name,
            $content_type,
            include_bytes!(concat!("../console/", $name)),
        )
    };
}

/// (file name, content type, bytes) of every console file.
const FILES: &[(&str, &str, &[u8])] = &[
    file!("index.html", "text/html; charset=utf-8"),
    file!("style.css", "text/css; charset=utf-8"),
    file!("favicon.svg", "image/svg+xml"),
    file!("app.js", JS),
    file!("api.js", JS),
    file!("ui.js", JS),
    file!("dashboard.js", JS),
    file!("products.js", JS),
    file!("scan.js", JS),
    file!("counts.js", JS),
    file!("admin.js", JS),
    file!("reservations.js", JS),
];

/// ETags, computed once.
fn etags() -> &'static [String] {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    TAGS.get_or_init(|| {
        FILES
            .iter()
            .map(|(_, _, body)| format!("\"{}\"", hex::encode(&Sha256::digest(body)[..12])))
            .collect()
    })
}

fn serve(req: &Request, name: &str) -> Response {
    let Some(i) = FILES.iter().position(|(n, _, _)| *n == name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let (_, content_type, body) = FILES[i];
    let etag = &etags()[i];
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        // Weak comparison (RFC 9110): nginx's gzip turns the ETag into W/"...".
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim().trim_start_matches("W/") == etag)
        });
    let builder = Response::builder()
        .header(header::ETAG, etag.as_str())
        .header(header::CACHE_CONTROL, "no-cache")
        .header(header::CONTENT_SECURITY_POLICY, CSP)
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::REFERRER_POLICY, "no-referrer")
        .header(header::X_FRAME_OPTIONS, "DENY");
    if fresh {
        builder.status(StatusCode::NOT_MODIFIED).finish()
    } else {
        builder.content_type(content_type).body(body)
    }
}

#[handler]
fn index(req: &Request) -> Response {
    serve(req, "index.html")
}

#[handler]
fn file(req: &Request, Path(name): Path<String>) -> Response {
    serve(req, &name)
}

/// Routes to nest under `/console`.
pub fn routes() -> Route {
    Route::new().at("/", get(index)).at("/:name", get(file))
}
