//! README.md's examples, run against the real API: every ```http request block
//! followed by an ```http response block is sent in order, and the answer must
//! have the status, headers and body the README shows. In a README body, `…`
//! (or a string ending in it, as a prefix) stands for any value; uuids,
//! timestamps and decimal strings match any of their kind (decimals by value);
//! `"$NAME"` captures a value that later requests use as `$NAME`; objects may
//! have more fields than shown, arrays more items. Also: every
//! `/problems/...` type the README names is one the code can send.

mod common;

use std::collections::HashMap;

use common::TestApp;
use serde_json::Value;
use sqlx::PgPool;

const ADMIN_EMAIL: &str = "admin@example.com";
const ADMIN_PASSWORD: &str = "readme-example-password";

struct Exchange {
    line: usize,
    request: Vec<String>,
    response: Vec<String>,
}

/// The ```http blocks of the README, paired: a request, then its response.
fn exchanges(readme: &str) -> Vec<Exchange> {
    let mut blocks: Vec<(usize, Vec<String>)> = Vec::new();
    let mut current: Option<(usize, Vec<String>)> = None;
    for (i, line) in readme.lines().enumerate() {
        match (&mut current, line.trim_end()) {
            (None, "```http") => current = Some((i + 1, Vec::new())),
            (Some(_), "```") => blocks.push(current.take().expect("in a block")),
            (Some((_, lines)), text) => lines.push(text.to_owned()),
            _ => {}
        }
    }
    let mut out = Vec::new();
    let mut iter = blocks.into_iter();
    while let Some((line, request)) = iter.next() {
        assert!(
            !request[0].starts_with("HTTP/"),
            "README.md:{line}: a response block without a request before it"
        );
        let (_, response) = iter.next().unwrap_or_else(|| {
            panic!("README.md:{line}: a request without a response block after it")
        });
        assert!(
            response[0].starts_with("HTTP/1.1 "),
            "README.md:{line}: the block after a request must be its response (HTTP/1.1 ...)"
        );
        out.push(Exchange {
            line,
            request,
            response,
        });
    }
    out
}

/// Head lines, then the body after the first empty line.
fn split(lines: &[String]) -> (&[String], String) {
    match lines.iter().position(|l| l.is_empty()) {
        Some(i) => (&lines[..i], lines[i + 1..].join("\n")),
        None => (lines, String::new()),
    }
}

fn substitute(text: &str, vars: &HashMap<String, String>, line: usize) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let name: String = rest[i + 1..]
            .chars()
            .take_while(|c| c.is_ascii_uppercase() || *c == '_')
            .collect();
        let value = vars.get(&name).unwrap_or_else(|| {
            panic!("README.md:{line}: ${name} is not set by an earlier example")
        });
        out.push_str(value);
        rest = &rest[i + 1 + name.len()..];
    }
    out.push_str(rest);
    out
}

fn is_uuid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok()
}

fn is_timestamp(s: &str) -> bool {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).is_ok()
}

/// Compares `actual` with the README's `shown`, collecting captures and mismatches.
fn matches(
    shown: &Value,
    actual: &Value,
    at: &str,
    vars: &mut HashMap<String, String>,
    errors: &mut Vec<String>,
) {
    match (shown, actual) {
        (Value::String(s), _) if s == "…" => {}
        (Value::String(s), _) if s.starts_with('$') => {
            let value = match actual {
                Value::String(a) => a.clone(),
                other => other.to_string(),
            };
            vars.insert(s[1..].to_owned(), value);
        }
        (Value::String(s), Value::String(a)) => {
            let ok = if let Some(prefix) = s.strip_suffix('…') {
                a.starts_with(prefix)
            } else if is_uuid(s) {
                is_uuid(a)
            } else if is_timestamp(s) {
                is_timestamp(a)
            } else {
                // Exactly, money too: the API answers each amount at its
                // field's fixed scale, and the README must show that form.
                s == a
            };
            if !ok {
                errors.push(format!("{at}: README shows {s:?}, the API answered {a:?}"));
            }
        }
        (Value::Object(s), Value::Object(a)) => {
            for (k, v) in s {
                match a.get(k) {
                    Some(av) => matches(v, av, &format!("{at}.{k}"), vars, errors),
                    None => errors.push(format!("{at}.{k}: not in the API's answer")),
                }
            }
        }
        (Value::Array(s), Value::Array(a)) => {
            if a.len() < s.len() {
                errors.push(format!(
                    "{at}: README shows {} items, the API answered {}",
                    s.len(),
                    a.len()
                ));
            }
            for (i, (sv, av)) in s.iter().zip(a).enumerate() {
                matches(sv, av, &format!("{at}[{i}]"), vars, errors);
            }
        }
        (s, a) if s == a => {}
        (s, a) => errors.push(format!("{at}: README shows {s}, the API answered {a}")),
    }
}

async fn create_admin(app: &TestApp) {
    let hash = inventory_api::auth::password::hash(ADMIN_PASSWORD.to_owned())
        .await
        .unwrap();
    assert!(
        inventory_api::auth::repo::bootstrap_admin(&app.db, ADMIN_EMAIL, &hash)
            .await
            .unwrap()
    );
}

#[sqlx::test]
async fn every_readme_example_answers_as_shown(db: PgPool) {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let exchanges = exchanges(&readme);
    assert!(
        exchanges.len() >= 5,
        "README.md has {} examples",
        exchanges.len()
    );
    let app = TestApp::spawn(db).await;
    create_admin(&app).await;
    let mut vars = HashMap::from([("ADMIN_PASSWORD".to_owned(), ADMIN_PASSWORD.to_owned())]);

    for ex in &exchanges {
        let line = ex.line;
        let (head, body) = split(&ex.request);
        let mut words = head[0].split_whitespace();
        let (method, path) = (words.next().unwrap(), words.next().unwrap());
        let method: reqwest::Method = method.parse().unwrap();
        let mut req = app
            .client
            .request(method, app.url(&substitute(path, &vars, line)));
        for h in &head[1..] {
            let (name, value) = h
                .split_once(':')
                .unwrap_or_else(|| panic!("README.md:{line}: bad header line {h:?}"));
            req = req.header(name.trim(), substitute(value.trim(), &vars, line));
        }
        if !body.is_empty() {
            req = req.body(substitute(&body, &vars, line));
        }
        let resp = req.send().await.unwrap();

        let (head, shown_body) = split(&ex.response);
        let status: u16 = head[0].split_whitespace().nth(1).unwrap().parse().unwrap();
        let mut errors = Vec::new();
        if resp.status().as_u16() != status {
            errors.push(format!(
                "status: README shows {status}, the API answered {}",
                resp.status()
            ));
        }
        for h in &head[1..] {
            let (name, value) = h.split_once(':').unwrap();
            let actual = resp
                .headers()
                .get(name.trim())
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            if !actual.starts_with(value.trim()) {
                errors.push(format!(
                    "{name}: README shows {value:?}, the API answered {actual:?}"
                ));
            }
        }
        let actual_body = resp.text().await.unwrap();
        if !shown_body.is_empty() {
            let shown: Value = serde_json::from_str(&shown_body)
                .unwrap_or_else(|e| panic!("README.md:{line}: the response body is not JSON: {e}"));
            match serde_json::from_str::<Value>(&actual_body) {
                Ok(actual) => matches(&shown, &actual, "body", &mut vars, &mut errors),
                Err(_) => errors.push(format!("body: the API answered non-JSON {actual_body:?}")),
            }
        }
        assert!(
            errors.is_empty(),
            "README.md:{line} ({}):\n  {}\nthe API answered: {actual_body}",
            ex.request[0],
            errors.join("\n  ")
        );
    }
}

#[test]
fn every_problem_type_the_readme_names_is_sent_by_the_code() {
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let mut sources = String::new();
    let mut dirs = vec![std::path::PathBuf::from(format!("{root}/src"))];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                sources.push_str(&std::fs::read_to_string(path).unwrap());
            }
        }
    }
    let mut missing = Vec::new();
    for (i, _) in readme.match_indices("/problems/") {
        let slug: String = readme[i + "/problems/".len()..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '-' || *c == '*')
            .collect();
        // `/problems/*-taken` names a family (sku-taken, code-taken, ...).
        let found = match slug.strip_prefix('*') {
            Some(suffix) => sources.contains(&format!("{suffix}\"")),
            None => sources.contains(&format!("\"{slug}\"")),
        };
        if !found && !missing.contains(&slug) {
            missing.push(slug);
        }
    }
    assert!(
        missing.is_empty(),
        "README names problem types the code never sends: {missing:?}"
    );
}
