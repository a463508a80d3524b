//! Refuses control characters in text input, for every operation, in one place.
//!
//! PostgreSQL refuses NUL in text (a 500 if it got that far), and the other C0
//! controls are never meaningful in names, codes or references. So before any
//! handler runs, JSON bodies, CSV bodies, query parameters and path segments
//! are checked, and a control character is a 422 naming the field. Exceptions,
//! because real input carries them: tab, newline and carriage return in
//! multi-line fields ([`MULTILINE_FIELDS`]) and in CSV (its own line breaks),
//! and the GS1 group separator (ASCII 29, FNC1) in barcodes.
//!
//! What it does not do: judge any other content; handlers validate values.

use poem::{http::header::CONTENT_TYPE, Endpoint, IntoResponse, Request, Response};
use serde_json::Value;

use crate::error::{ApiError, FieldError};

/// Free-text fields where a person may type several lines.
pub const MULTILINE_FIELDS: &[&str] = &["description", "note", "address"];

/// Fields (and path segments after these names) that hold raw barcode data.
const BARCODE_FIELDS: &[&str] = &["barcode"];
const BARCODE_PATH_PREFIXES: &[&str] = &["by-barcode", "lookup", "barcodes"];

const GS1_GROUP_SEPARATOR: char = '\u{1d}';

/// The middleware: checks the URI, then the body when it is JSON or CSV.
pub async fn refuse_control_chars<E: Endpoint>(ep: E, mut req: Request) -> poem::Result<Response> {
    let mut errors = check_uri(req.uri().path(), req.uri().query().unwrap_or(""));
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let json = content_type.starts_with("application/json");
    let csv = content_type.starts_with("text/csv");
    if errors.is_empty() && (json || csv) {
        let bytes = req.take_body().into_bytes().await?;
        if json {
            // Escaped controls need a backslash; most bodies have none, and
            // then nothing is parsed twice.
            if bytes.contains(&b'\\') {
                if let Ok(value) = serde_json::from_slice::<Value>(&bytes) {
                    check_json(&value, "", &mut errors);
                }
            }
        } else {
            check_csv(&bytes, &mut errors);
        }
        req.set_body(bytes);
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors).into());
    }
    ep.call(req).await.map(IntoResponse::into_response)
}

fn refused(c: char, allow_multiline: bool, allow_gs: bool) -> bool {
    c.is_ascii_control()
        && c != '\u{7f}'
        && !(allow_multiline && matches!(c, '\t' | '\n' | '\r'))
        && !(allow_gs && c == GS1_GROUP_SEPARATOR)
}

fn error(field: &str) -> FieldError {
    FieldError {
        field: field.to_owned(),
        message: "must not contain control characters (such as NUL)".to_owned(),
    }
}

/// Walks a JSON body; `path` is the field as the client wrote it (`lines[2].note`).
fn check_json(value: &Value, path: &str, errors: &mut Vec<FieldError>) {
    match value {
        Value::String(s) => {
            let leaf = path.rsplit(['.', ']']).next().unwrap_or(path);
            let leaf = leaf.split('[').next().unwrap_or(leaf);
            let multiline = MULTILINE_FIELDS.contains(&leaf);
            let gs = BARCODE_FIELDS.contains(&leaf);
            if s.chars().any(|c| refused(c, multiline, gs)) {
                errors.push(error(if path.is_empty() { "body" } else { path }));
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                check_json(item, &format!("{path}[{i}]"), errors);
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                if k.chars().any(|c| refused(c, false, false)) {
                    errors.push(error(if path.is_empty() { "body" } else { path }));
                    continue;
                }
                let child = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                check_json(v, &child, errors);
            }
        }
        _ => {}
    }
}

/// CSV keeps its line breaks; anything else is refused, naming the line.
fn check_csv(bytes: &[u8], errors: &mut Vec<FieldError>) {
    for (n, line) in bytes.split(|b| *b == b'\n').enumerate() {
        if line
            .iter()
            .any(|b| b.is_ascii_control() && !matches!(b, b'\t' | b'\r' | 0x7f))
        {
            errors.push(error(&format!("line {}", n + 1)));
        }
    }
}

/// Checks an uploaded CSV file (a multipart part the middleware does not read).
pub fn check_csv_upload(part: &str, bytes: &[u8]) -> crate::error::Result<()> {
    let mut errors = Vec::new();
    check_csv(bytes, &mut errors);
    for e in &mut errors {
        e.field = format!("{part}: {}", e.field);
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation(errors))
    }
}

fn check_uri(path: &str, query: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut previous = "";
    for segment in path.split('/') {
        let decoded = percent_decode(segment, false);
        let gs = BARCODE_PATH_PREFIXES.contains(&previous);
        if decoded.chars().any(|c| refused(c, false, gs)) {
            errors.push(error("path"));
        }
        previous = segment;
    }
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = percent_decode(name, true);
        let value = percent_decode(value, true);
        if name
            .chars()
            .chain(value.chars())
            .any(|c| refused(c, false, false))
        {
            let shown: String = name.chars().filter(|c| !c.is_control()).collect();
            errors.push(error(&shown));
        }
    }
    errors
}

/// Percent-decoding as browsers encode URIs (`+` is a space in queries).
fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len()
                && bytes[i + 1].is_ascii_hexdigit()
                && bytes[i + 2].is_ascii_hexdigit() =>
            {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("ASCII hex digits");
                out.push(u8::from_str_radix(hex, 16).expect("two hex digits"));
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(value: Value) -> Vec<String> {
        let mut errors = Vec::new();
        check_json(&value, "", &mut errors);
        errors.into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn json_fields_with_controls_are_named() {
        let body = serde_json::json!({
            "name": "a\u{0}b",
            "note": "two\nlines",
            "description": "bell\u{7}",
            "lines": [{"barcode": "]C1010\u{1d}10AB"}, {"reference": "x\u{1}"}],
        });
        assert_eq!(fields(body), ["description", "lines[1].reference", "name"]);
    }

    #[test]
    fn uri_controls_are_named() {
        assert_eq!(
            check_uri("/api/v1/products", "q=a%00b&limit=5")
                .into_iter()
                .map(|e| e.field)
                .collect::<Vec<_>>(),
            ["q"]
        );
        assert_eq!(check_uri("/api/v1/warehouses/%00", "").len(), 1);
        assert!(check_uri("/api/v1/scanner/lookup/%1D0101", "").is_empty());
        assert!(check_uri("/api/v1/products", "q=caf%C3%A9+au+lait").is_empty());
        assert_eq!(percent_decode("%4", false), "%4");
        assert_eq!(percent_decode("a%", false), "a%");
    }

    #[test]
    fn csv_lines_with_controls_are_named() {
        let mut errors = Vec::new();
        check_csv(b"sku,name\r\nA,ok\nB,b\0d\n", &mut errors);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "line 3");
    }
}
