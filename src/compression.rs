//! Response compression (br, gzip) chosen from the request's `Accept-Encoding`,
//! so a deployment without nginx in front is fast too (`/docs` is 1.76 MB of
//! inline Swagger UI; JSON lists compress ~10x).
//!
//! Deliberately not poem's `Compression` middleware: that one also inflates
//! request bodies sent with `Content-Encoding`, which would let a small gzip
//! body grow past `MAX_BODY_BYTES` after the size check, and it compresses
//! every content type, `text/event-stream` included, where an encoder holds
//! events back until its buffer fills. Here requests are never touched, only
//! text-like responses are compressed, and server-sent events pass as they are.

use async_compression::{
    tokio::bufread::{BrotliEncoder, GzipEncoder},
    Level,
};
use poem::{
    http::{header, HeaderValue, Method, StatusCode},
    Body, Endpoint, IntoResponse, Request, Response,
};
use tokio::io::BufReader;

/// A content coding this server can produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coding {
    Brotli,
    Gzip,
}

impl Coding {
    fn token(self) -> &'static str {
        match self {
            Self::Brotli => "br",
            Self::Gzip => "gzip",
        }
    }
}

/// The coding to answer with, from an `Accept-Encoding` value: the highest
/// q-value wins, `br` on a tie (smaller output), `q=0` means "not this one",
/// and `*` stands for any coding not listed by name (RFC 9110, 12.5.3).
pub fn negotiate(accept_encoding: &str) -> Option<Coding> {
    let (mut br, mut gzip, mut star) = (None, None, None);
    for item in accept_encoding.split(',') {
        let mut parts = item.split(';');
        let name = parts.next().unwrap_or("").trim();
        let q = parts
            .find_map(|p| {
                let (k, v) = p.split_once('=')?;
                k.trim()
                    .eq_ignore_ascii_case("q")
                    .then(|| v.trim().parse::<f32>().ok())?
            })
            .unwrap_or(1.0);
        if name.eq_ignore_ascii_case("br") {
            br = Some(q);
        } else if name.eq_ignore_ascii_case("gzip") || name.eq_ignore_ascii_case("x-gzip") {
            gzip = Some(q);
        } else if name == "*" {
            star = Some(q);
        }
    }
    let br = br.or(star).unwrap_or(0.0);
    let gzip = gzip.or(star).unwrap_or(0.0);
    if br <= 0.0 && gzip <= 0.0 {
        None
    } else if br >= gzip {
        Some(Coding::Brotli)
    } else {
        Some(Coding::Gzip)
    }
}

/// Text-like media types, which compress well. Images, archives and
/// `text/event-stream` (see the module comment) are left alone.
fn compressible(content_type: &str) -> bool {
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if media == "text/event-stream" {
        return false;
    }
    media.starts_with("text/")
        || media.ends_with("+json")
        || matches!(
            media.as_str(),
            "application/json"
                | "application/yaml"
                | "application/javascript"
                | "application/xml"
                | "image/svg+xml"
        )
}

/// Middleware (`.around(compression::compress)`): compresses the response
/// body on the fly, streaming, when the type is text-like and the client
/// accepts br or gzip.
pub async fn compress<E: Endpoint>(ep: E, req: Request) -> poem::Result<Response> {
    let coding = req
        .headers()
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .and_then(negotiate);
    let head = req.method() == Method::HEAD;
    let mut resp = ep.call(req).await?.into_response();

    let eligible = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(compressible);
    if !eligible {
        return Ok(resp);
    }
    // The answer depends on Accept-Encoding: caches must keep one per coding.
    resp.headers_mut()
        .append(header::VARY, HeaderValue::from_static("accept-encoding"));
    let Some(coding) = coding else {
        return Ok(resp);
    };
    if head
        || matches!(
            resp.status(),
            StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED
        )
        || resp.headers().contains_key(header::CONTENT_ENCODING)
    {
        return Ok(resp);
    }
    let body = resp.take_body();
    if body.is_empty() {
        return Ok(resp);
    }
    let reader = BufReader::new(body.into_async_read());
    // Levels chosen for speed per request (no cache of compressed bodies):
    // brotli 4 is about as fast as gzip 6 and ~15% smaller.
    let encoded = match coding {
        Coding::Brotli => {
            Body::from_async_read(BrotliEncoder::with_quality(reader, Level::Precise(4)))
        }
        Coding::Gzip => Body::from_async_read(GzipEncoder::with_quality(reader, Level::Default)),
    };
    resp.set_body(encoded);
    let headers = resp.headers_mut();
    headers.remove(header::CONTENT_LENGTH);
    headers.insert(
        header::CONTENT_ENCODING,
        HeaderValue::from_static(coding.token()),
    );
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_follows_q_values() {
        assert_eq!(negotiate("gzip, deflate, br"), Some(Coding::Brotli));
        assert_eq!(negotiate("gzip"), Some(Coding::Gzip));
        assert_eq!(negotiate("br;q=0.5, gzip;q=0.8"), Some(Coding::Gzip));
        assert_eq!(negotiate("br;q=0, gzip"), Some(Coding::Gzip));
        assert_eq!(negotiate("gzip;q=0, br;q=0"), None);
        assert_eq!(negotiate("identity"), None);
        assert_eq!(negotiate("deflate, zstd"), None);
        assert_eq!(negotiate("*"), Some(Coding::Brotli));
        assert_eq!(negotiate("*;q=0.5, br;q=0"), Some(Coding::Gzip));
        assert_eq!(negotiate("GZIP ; Q=1"), Some(Coding::Gzip));
        assert_eq!(negotiate(""), None);
    }

    #[test]
    fn only_text_like_types_are_compressed() {
        assert!(compressible("application/json"));
        assert!(compressible("application/problem+json"));
        assert!(compressible("text/html; charset=utf-8"));
        assert!(compressible("text/plain; version=0.0.4"));
        assert!(compressible("application/yaml"));
        assert!(!compressible("text/event-stream"));
        assert!(!compressible("Text/Event-Stream; charset=utf-8"));
        assert!(!compressible("image/png"));
        assert!(!compressible("application/octet-stream"));
    }
}
