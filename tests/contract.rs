//! The published contract, checked over the whole OpenAPI document the server
//! serves, so an operation added later is held to the same rules without
//! anyone listing it here: stable operationIds, descriptions, error statuses
//! documented as problem+json, optional = nullable, and control characters
//! refused with a 422 naming the field on every operation that takes text.
//! (schemathesis and the generated clients in scripts/contract.sh check the
//! same document against live answers.)

mod common;

use common::{assert_problem, TestApp};
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::PgPool;

fn spec() -> Value {
    serde_json::from_str(&inventory_api::app::spec_json()).expect("the spec is JSON")
}

/// Every (method, path, operation) of the document.
fn operations(spec: &Value) -> Vec<(String, String, Value)> {
    let mut ops = Vec::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            ops.push((method.to_uppercase(), path.clone(), op.clone()));
        }
    }
    ops
}

fn schema<'a>(spec: &'a Value, reference: &str) -> &'a Value {
    let name = reference.rsplit('/').next().unwrap();
    &spec["components"]["schemas"][name]
}

#[test]
fn every_operation_has_a_unique_camel_case_operation_id_and_a_description() {
    let spec = spec();
    let mut seen = std::collections::BTreeMap::new();
    for (method, path, op) in operations(&spec) {
        let id = op["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{method} {path} has no operationId"));
        assert!(
            id.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                && id.chars().all(|c| c.is_ascii_alphanumeric()),
            "{method} {path}: operationId {id:?} is not camelCase"
        );
        if let Some(other) = seen.insert(id.to_owned(), format!("{method} {path}")) {
            panic!("operationId {id} is used by {other} and {method} {path}");
        }
        let described = ["summary", "description"]
            .iter()
            .any(|k| op[k].as_str().is_some_and(|s| !s.trim().is_empty()));
        assert!(described, "{method} {path} has no description");
    }
    // The names integrators were promised.
    for id in [
        "listProducts",
        "getProduct",
        "createProduct",
        "updateProduct",
        "deleteProduct",
        "receiveStock",
        "issueStock",
        "adjustStock",
        "transferStock",
        "listStockLevels",
        "getProductStock",
        "listTransactions",
        "getTransaction",
        "listWarehouses",
        "createWarehouse",
        "login",
        "refreshToken",
        "logout",
        "postScanEvent",
        "postScanBatch",
    ] {
        assert!(seen.contains_key(id), "operationId {id} is missing");
    }
}

#[test]
fn every_error_status_is_documented_as_a_problem_and_nothing_is_a_catch_all() {
    let spec = spec();
    for (method, path, op) in operations(&spec) {
        let responses = op["responses"].as_object().unwrap();
        assert!(
            !responses.contains_key("default"),
            "{method} {path} documents a catch-all `default` instead of its statuses"
        );
        for (status, response) in responses {
            // /ready answers its own readiness body with 503; every other error is a problem.
            let error = status.starts_with('4') || status.starts_with('5');
            if error && !(path == "/ready" && status == "503") {
                let schema = &response["content"]["application/problem+json"]["schema"]["$ref"];
                assert_eq!(
                    schema, "#/components/schemas/Problem",
                    "{method} {path} {status} is not a problem+json answer"
                );
            }
        }
        if op.get("security").is_some() {
            for status in ["401", "403"] {
                assert!(
                    responses.contains_key(status),
                    "{method} {path} lacks {status}"
                );
            }
        }
        if path.contains('{') {
            assert!(responses.contains_key("404"), "{method} {path} lacks 404");
        }
        if op.get("requestBody").is_some() {
            for status in ["413", "422"] {
                assert!(
                    responses.contains_key(status),
                    "{method} {path} lacks {status}"
                );
            }
        }
    }
}

#[test]
fn optional_properties_are_nullable_and_every_property_is_described() {
    let spec = spec();
    let mut undescribed = Vec::new();
    for (name, schema) in spec["components"]["schemas"].as_object().unwrap() {
        let required: Vec<&str> = schema["required"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let Some(props) = schema["properties"].as_object() else {
            continue;
        };
        for (prop, def) in props {
            if !required.contains(&prop.as_str()) {
                assert_eq!(
                    def["nullable"], true,
                    "{name}.{prop} is optional but not nullable"
                );
            }
            let described = def["description"].as_str().is_some_and(|d| !d.is_empty())
                || def["$ref"]
                    .as_str()
                    .is_some_and(|r| schema_description(&spec, r).is_some());
            if !described {
                undescribed.push(format!("{name}.{prop}"));
            }
        }
    }
    assert!(
        undescribed.is_empty(),
        "properties without a description: {undescribed:?}"
    );
}

/// `schema` with references (and a lone `allOf` entry) followed.
fn resolve<'a>(spec: &'a Value, mut schema: &'a Value) -> &'a Value {
    loop {
        if let Some(r) = schema["$ref"].as_str() {
            schema = self::schema(spec, r);
        } else if let Some(first) = schema["allOf"].as_array().and_then(|a| a.first()) {
            schema = first;
        } else {
            return schema;
        }
    }
}

/// Why `example` does not fit `schema`, if it does not: undeclared or
/// missing required properties, values outside an enum, wrong JSON types.
fn misfit(spec: &Value, schema: &Value, example: &Value, at: &str) -> Option<String> {
    let schema = resolve(spec, schema);
    if example.is_null() {
        return None;
    }
    if let Some(allowed) = schema["enum"].as_array() {
        if !allowed.contains(example) {
            return Some(format!("{at}: {example} is not one of {allowed:?}"));
        }
    }
    let ok = match schema["type"].as_str() {
        Some("object") => {
            let props = &schema["properties"];
            let obj = example.as_object()?;
            for (k, v) in obj {
                if props[k].is_null() {
                    return Some(format!("{at}.{k} is not a declared property"));
                }
                if let Some(why) = misfit(spec, &props[k], v, &format!("{at}.{k}")) {
                    return Some(why);
                }
            }
            for r in schema["required"].as_array().into_iter().flatten() {
                if !obj.contains_key(r.as_str().unwrap()) {
                    return Some(format!("{at}: required {r} is missing"));
                }
            }
            true
        }
        Some("array") => {
            for (i, item) in example.as_array()?.iter().enumerate() {
                if let Some(why) = misfit(spec, &schema["items"], item, &format!("{at}[{i}]")) {
                    return Some(why);
                }
            }
            true
        }
        Some("string") => example.is_string(),
        Some("integer") => example.is_i64(),
        Some("boolean") => example.is_boolean(),
        _ => true,
    };
    (!ok).then(|| format!("{at}: {example} does not have the declared type"))
}

#[test]
fn every_json_request_body_has_an_example_that_fits_its_schema() {
    let spec = spec();
    let mut checked = 0;
    for (method, path, op) in operations(&spec) {
        for (media, body) in op["requestBody"]["content"]
            .as_object()
            .into_iter()
            .flatten()
        {
            if !media.starts_with("application/json") {
                continue;
            }
            let example = body
                .get("example")
                .unwrap_or_else(|| panic!("{method} {path}: the JSON body has no example"));
            assert!(
                example.is_object(),
                "{method} {path}: example is not an object"
            );
            if let Some(why) = misfit(&spec, &body["schema"], example, "body") {
                panic!("{method} {path}: the example does not fit: {why}");
            }
            checked += 1;
        }
    }
    // A floor, so a spec that lost its bodies (a broken walk) cannot pass.
    assert!(checked >= 20, "only {checked} JSON bodies found");
}

/// Mutating POSTs that deliberately take no `Idempotency-Key`, and why. Any
/// other POST must document it (the design promises it on every POST that
/// creates or changes something).
const NOT_IDEMPOTENT_BY_KEY: &[(&str, &str)] = &[
    // Their answers hold a secret shown once (tokens); replaying would mean
    // storing it. A retried sign-in just signs in again.
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/auth/refresh"),
    // Repeating it changes nothing more: the token is already revoked.
    ("POST", "/api/v1/auth/logout"),
    // The answer holds the device key, shown once; replaying would mean
    // storing the key.
    ("POST", "/api/v1/scanner/devices"),
    // Same: the answer holds the webhook's signing secret, shown once.
    ("POST", "/api/v1/webhooks"),
    // Scans are idempotent by their own `event_id` (a repeat answers
    // `duplicate` with the first outcome), which also spans batches.
    ("POST", "/api/v1/scanner/events"),
    ("POST", "/api/v1/scanner/events/batch"),
    ("POST", "/api/v1/scanner/console-events"),
    // Operator actions whose repeat is the intent (send again); receivers
    // deduplicate deliveries by their `webhook-id` header anyway.
    (
        "POST",
        "/api/v1/webhooks/{id}/deliveries/{delivery_id}/retry",
    ),
    ("POST", "/api/v1/webhooks/{id}/ping"),
];

#[test]
fn every_mutating_post_documents_idempotency_key_unless_excluded() {
    let spec = spec();
    let mut posts = Vec::new();
    for (method, path, op) in operations(&spec) {
        if method != "POST" {
            continue;
        }
        posts.push(path.clone());
        let excluded = NOT_IDEMPOTENT_BY_KEY.contains(&(method.as_str(), path.as_str()));
        let documented = op["parameters"].as_array().is_some_and(|ps| {
            ps.iter()
                .any(|p| p["in"] == "header" && p["name"] == "Idempotency-Key")
        });
        assert!(
            documented != excluded,
            "{method} {path}: {}",
            if excluded {
                "is in NOT_IDEMPOTENT_BY_KEY but documents Idempotency-Key; drop it from the list"
            } else {
                "documents no Idempotency-Key header (add it, or exclude it with a reason)"
            }
        );
    }
    // The exclusion list names no operation that is gone.
    for (_, path) in NOT_IDEMPOTENT_BY_KEY {
        assert!(
            posts.contains(&path.to_string()),
            "excluded {path} is not in the spec"
        );
    }
}

fn schema_description(spec: &Value, reference: &str) -> Option<String> {
    schema(spec, reference)["description"]
        .as_str()
        .map(str::to_owned)
}

#[test]
fn json_request_bodies_name_their_schema() {
    // Every JSON request body names its schema, so generated clients get a model for it.
    let spec = spec();
    for (method, path, op) in operations(&spec) {
        let Some(content) = op["requestBody"]["content"].as_object() else {
            continue;
        };
        for (media, body) in content {
            if media.starts_with("application/json") {
                assert!(
                    body["schema"]["$ref"].is_string(),
                    "{method} {path}: the JSON body has no named schema"
                );
            }
        }
    }
}

/// The path with every remaining `{param}` replaced by a (well-formed, unknown) id.
fn fill_ids(path: &str) -> String {
    path.split('/')
        .map(|seg| {
            if seg.starts_with('{') {
                "00000000-0000-0000-0000-000000000000"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// A value for a text field: NUL, which PostgreSQL refuses, or another C0 control.
const CONTROL: [&str; 2] = ["a\u{0}b", "a\u{1b}b"];

/// Text fields of a JSON request body, as the server names them in field errors,
/// with a body that puts a control character in that field alone.
fn text_fields(spec: &Value, body_schema: &Value, control: &str) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let Some(reference) = body_schema["$ref"].as_str() else {
        return out;
    };
    let Some(props) = schema(spec, reference)["properties"].as_object() else {
        return out;
    };
    for (name, def) in props {
        if def["type"] == "string" && def["format"].is_null() {
            out.push((name.clone(), json!({ name: control })));
        }
        // Arrays of objects (scan batches, count lines): the first element's text fields.
        if def["type"] == "array" {
            for (inner, mut inner_body) in text_fields(spec, &def["items"], control) {
                let element = inner_body.as_object_mut().unwrap().remove(&inner).unwrap();
                out.push((
                    format!("{name}[0].{inner}"),
                    json!({ name: [{ inner.clone(): element }] }),
                ));
            }
        }
    }
    out
}

#[sqlx::test]
async fn control_characters_in_any_text_input_are_a_422_naming_the_field(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let token = app.token("admin").await;
    let spec = spec();
    let mut checked = 0;
    for (i, (method, path, op)) in operations(&spec).into_iter().enumerate() {
        let control = CONTROL[i % CONTROL.len()];
        let encoded = control.replace('\u{0}', "%00").replace('\u{1b}', "%1B");
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let mut cases: Vec<(String, reqwest::RequestBuilder)> = Vec::new();
        let base = fill_ids(&path);
        for param in op["parameters"].as_array().into_iter().flatten() {
            let name = param["name"].as_str().unwrap();
            let text = param["schema"]["type"] == "string" && param["schema"]["format"].is_null();
            if !text {
                continue;
            }
            match param["in"].as_str() {
                Some("query") => cases.push((
                    name.to_owned(),
                    app.with_token(method.clone(), &format!("{base}?{name}={encoded}"), &token),
                )),
                Some("path") => {
                    let url = path.replace(&format!("{{{name}}}"), &encoded);
                    cases.push((
                        "path".to_owned(),
                        app.with_token(method.clone(), &fill_ids(&url), &token),
                    ));
                }
                _ => {}
            }
        }
        for (media, body) in op["requestBody"]["content"]
            .as_object()
            .into_iter()
            .flatten()
        {
            if media.starts_with("application/json") {
                for (field, json_body) in text_fields(&spec, &body["schema"], control) {
                    cases.push((
                        field,
                        app.with_token(method.clone(), &base, &token)
                            .json(&json_body),
                    ));
                }
            }
            if media == "text/csv" {
                cases.push((
                    "line 2".to_owned(),
                    app.with_token(method.clone(), &base, &token)
                        .header("content-type", "text/csv")
                        .body(format!("sku,name\nA-1,{control}\n")),
                ));
            }
            if media == "multipart/form-data" {
                // Built by hand: the form a browser sends for <input type=file name=file>.
                let form = format!(
                    "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"p.csv\"\r\n\
                     Content-Type: text/csv\r\n\r\nsku,name\nA-1,{control}\n\r\n--XyZ--\r\n"
                );
                cases.push((
                    "file: line 2".to_owned(),
                    app.with_token(method.clone(), &base, &token)
                        .header("content-type", "multipart/form-data; boundary=XyZ")
                        .body(form),
                ));
            }
        }
        for (field, request) in cases {
            let resp = request.send().await.unwrap();
            let body = assert_problem(resp, 422, "validation").await;
            let fields: Vec<&str> = body["errors"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|e| e["field"].as_str())
                .collect();
            assert!(
                fields.contains(&field.as_str()),
                "{method} {path}: the error names {fields:?}, not {field}"
            );
            checked += 1;
        }
    }
    // Sanity: the walk found the text inputs (names, SKUs, references, notes, queries...).
    assert!(
        checked >= 50,
        "only {checked} text inputs were found in the spec"
    );
}

#[sqlx::test]
async fn tab_and_newline_are_kept_where_text_is_multi_line_and_gs_in_barcodes(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let token = app.token("admin").await;
    let resp = app
        .post_as(
            "/api/v1/warehouses",
            &token,
            &json!({"code": "ML", "name": "Multi", "address": "1 Road\nTown\tNorth"}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let w: Value = resp.json().await.unwrap();
    assert_eq!(w["address"], "1 Road\nTown\tNorth");
    // A newline in a one-line field is refused.
    let resp = app
        .post_as(
            "/api/v1/warehouses",
            &token,
            &json!({"code": "ML2", "name": "Two\nlines"}),
        )
        .await;
    let body = assert_problem(resp, 422, "validation").await;
    assert_eq!(body["errors"][0]["field"], "name");
    // GS1 FNC1 (ASCII 29) in a scanned barcode is data, not a control: it is not refused here.
    let resp = app
        .get_as("/api/v1/scanner/lookup/%1D0104012345678901", &token)
        .await;
    assert_ne!(resp.status(), 422);
}

#[sqlx::test]
async fn optional_values_are_sent_as_null(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let token = app.token("admin").await;
    let page: Value = app.get_ok("/api/v1/warehouses", &token).await;
    assert!(page.as_object().unwrap().contains_key("next_cursor"));
    assert!(page["next_cursor"].is_null());
    let resp = app.get_as("/api/v1/warehouses/not-a-uuid", &token).await;
    let problem: Value = resp.json().await.unwrap();
    assert!(problem.as_object().unwrap().contains_key("errors"));
}

#[sqlx::test]
async fn the_csv_import_example_imports(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let token = app.token("manager").await;
    let spec = spec();
    let example = spec["paths"]["/api/v1/products/import"]["post"]["requestBody"]["content"]
        ["text/csv"]["example"]
        .as_str()
        .expect("the text/csv body has an example")
        .to_owned();
    let resp = app
        .with_token(Method::POST, "/api/v1/products/import", &token)
        .header("content-type", "text/csv")
        .body(example)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let summary: Value = resp.json().await.unwrap();
    assert_eq!(summary["created"], 1, "{summary}");
}

/// Strings tried against a declared pattern; the first it does not match breaks it.
const OFF_PATTERN: [&str; 2] = ["-not valid!", "   "];

/// A string that breaks `pattern` (an ECMA regex; the ones declared here
/// mean the same in Rust's syntax).
fn off_pattern(pattern: &str) -> Value {
    let re = regex::Regex::new(pattern)
        .unwrap_or_else(|e| panic!("declared pattern {pattern:?} does not compile: {e}"));
    let off = OFF_PATTERN.iter().find(|c| !re.is_match(c));
    json!(off.unwrap_or_else(|| panic!("no value in OFF_PATTERN breaks {pattern:?}: add one")))
}

/// Values just outside each limit property `name` of schema `owner` declares:
/// what is violated, the value, and whether the answer is a rejection inside
/// a 200 ([`REFUSED_AS_REJECTION`]) rather than a 422.
fn violations(
    spec: &Value,
    owner: &str,
    name: &str,
    prop: &Value,
    example: Option<&Value>,
) -> Vec<(String, Value, bool)> {
    let rejection = REFUSED_AS_REJECTION.contains(&(owner, name));
    let items_owner = prop["items"]["$ref"]
        .as_str()
        .and_then(|r| r.rsplit('/').next())
        .unwrap_or("");
    let prop = resolve(spec, prop);
    let mut out = Vec::new();
    let n = |k: &str| prop[k].as_i64();
    if let Some(max) = n("maxLength") {
        out.push((
            format!("maxLength {max}"),
            json!("a".repeat(max as usize + 1)),
        ));
    }
    if let Some(min) = n("minLength").filter(|m| *m > 0) {
        out.push((
            format!("minLength {min}"),
            json!("a".repeat(min as usize - 1)),
        ));
    }
    // A decimal's pattern describes its type: a malformed one fails parsing
    // (400, like a string sent for an integer), not a limit.
    if let Some(pattern) = prop["pattern"]
        .as_str()
        .filter(|_| prop["format"] != "decimal")
    {
        out.push((format!("pattern {pattern}"), off_pattern(pattern)));
    }
    if let Some(min) = n("minimum") {
        out.push((format!("minimum {min}"), json!(min - 1)));
    }
    if let Some(max) = n("maximum") {
        out.push((format!("maximum {max}"), json!(max + 1)));
    }
    for excluded in prop["not"]["enum"].as_array().into_iter().flatten() {
        out.push((format!("not {excluded}"), excluded.clone()));
    }
    if n("minItems") == Some(1) {
        out.push(("minItems 1".into(), json!([])));
    }
    if let Some(max) = n("maxItems") {
        // Distinct items, so no deduplication brings the list back in bounds.
        let items = resolve(spec, &prop["items"]);
        let first = example.and_then(|e| e.get(0)).cloned();
        let item = |i: i64| match (&items["format"], &first) {
            (f, _) if f == "uuid" => json!(uuid::Uuid::new_v4()),
            (_, Some(v)) if v.is_object() => v.clone(),
            _ => json!(format!("t{i}")),
        };
        out.push((
            format!("maxItems {max}"),
            json!((0..=max).map(item).collect::<Vec<_>>()),
        ));
    }
    if let Some(pattern) = prop["items"]["pattern"].as_str() {
        out.push((
            format!("items pattern {pattern}"),
            json!([off_pattern(pattern)]),
        ));
    }
    let mut out: Vec<(String, Value, bool)> = out
        .into_iter()
        .map(|(what, value)| (what, value, rejection))
        .collect();
    // A list of objects (count lines, scans, barcodes): each limit of the
    // first element's properties.
    let items = resolve(spec, &prop["items"]);
    let first = example.and_then(|e| e.get(0));
    if let (Some(props), Some(first)) = (items["properties"].as_object(), first) {
        for (inner, def) in props {
            for (what, value, rejected) in
                violations(spec, items_owner, inner, def, first.get(inner))
            {
                let mut element = first.clone();
                element[inner] = value;
                out.push((format!("[0].{inner} {what}"), json!([element]), rejected));
            }
        }
    }
    out
}

/// Limits a handler enforces as a `rejected` outcome inside a 200 answer
/// rather than a 422: (schema, property). A scan batch is applied event by
/// event, so one bad scan does not refuse the others.
const REFUSED_AS_REJECTION: &[(&str, &str)] = &[("ScanEvent", "quantity")];

#[sqlx::test]
async fn every_declared_limit_of_a_body_is_enforced_with_a_422_naming_the_field(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let token = app.token("admin").await;
    let spec = spec();
    // A product PATCH is checked against the stored product, so it needs one.
    let product = app
        .post_as(
            "/api/v1/products",
            &token,
            &json!({"sku": "LIMITS", "name": "Limits"}),
        )
        .await;
    assert_eq!(product.status(), 201);
    let product: Value = product.json().await.unwrap();
    // Scans are judged event by event in a warehouse the device may post for,
    // so a limit is what rejects them, not the warehouse.
    let warehouse = app.create_warehouse_sql("LIMITS").await;
    let (_, device_key) = app.create_device(&token, &[warehouse]).await;
    let target = |path: &str| match path {
        "/api/v1/products/{id}" => format!("/api/v1/products/{}", product["id"].as_str().unwrap()),
        _ => fill_ids(path),
    };
    let mut checked = 0;
    for (method, path, op) in operations(&spec) {
        // Elsewhere a made-up id: the handlers check the body before the lookup.
        if method != "POST" && method != "PATCH" {
            continue;
        }
        let Some((_, body)) = op["requestBody"]["content"]
            .as_object()
            .into_iter()
            .flatten()
            .find(|(m, _)| m.starts_with("application/json"))
        else {
            continue;
        };
        let mut base = body["example"].clone();
        if base.get("url").is_some() {
            // No name resolution in a test: a literal address.
            base["url"] = json!("http://127.0.0.1:9/hook");
        }
        let scans = path.starts_with("/api/v1/scanner/") && path.contains("events");
        if scans {
            match base.get_mut("events").and_then(Value::as_array_mut) {
                Some(events) => events[0]["warehouse_id"] = json!(warehouse),
                None => base["warehouse_id"] = json!(warehouse),
            }
        }
        let credential = if path.starts_with("/api/v1/scanner/events") {
            &device_key
        } else {
            &token
        };
        let body_schema = body["schema"]["$ref"]
            .as_str()
            .and_then(|r| r.rsplit('/').next())
            .unwrap_or("");
        let schema = resolve(&spec, &body["schema"]);
        for (name, prop) in schema["properties"].as_object().into_iter().flatten() {
            for (what, value, rejection) in
                violations(&spec, body_schema, name, prop, base.get(name))
            {
                let mut sent = base.clone();
                sent[name] = value;
                if scans {
                    // A fresh event id, so no scan is a duplicate of an earlier case.
                    match sent.get_mut("events").and_then(Value::as_array_mut) {
                        Some(events) => {
                            for e in events.iter_mut().filter(|e| e.is_object()) {
                                e["event_id"] = json!(uuid::Uuid::new_v4());
                            }
                        }
                        None => sent["event_id"] = json!(uuid::Uuid::new_v4()),
                    }
                }
                let resp = app
                    .with_token(
                        Method::from_bytes(method.as_bytes()).unwrap(),
                        &target(&path),
                        credential,
                    )
                    .json(&sent)
                    .send()
                    .await
                    .unwrap();
                let status = resp.status();
                let answer: Value = resp.json().await.unwrap();
                if rejection {
                    // The rejection names the property: `quantity`, or in a
                    // list `[0].quantity`.
                    let limited = what
                        .strip_prefix("[0].")
                        .and_then(|w| w.split(' ').next())
                        .unwrap_or(name);
                    let outcome = answer["results"].get(0).unwrap_or(&answer);
                    assert!(
                        status == 200
                            && outcome["status"] == "rejected"
                            && outcome["reason"]
                                .as_str()
                                .is_some_and(|r| r.contains(limited)),
                        "{method} {path}: {name} breaking {what} answered {status} {answer}"
                    );
                } else {
                    let named = answer["errors"].as_array().into_iter().flatten().any(|e| {
                        e["field"]
                            .as_str()
                            .is_some_and(|f| f.starts_with(name.as_str()))
                    });
                    assert!(
                        status == 422 && named,
                        "{method} {path}: {name} breaking {what} answered {status} {answer}"
                    );
                }
                checked += 1;
            }
        }
    }
    // The limits src/contract/constraints.rs declares; a floor so a broken walk fails.
    assert!(checked >= 60, "only {checked} limits checked");
}

#[sqlx::test]
async fn the_largest_amount_the_decimal_pattern_allows_is_accepted(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let token = app.token("admin").await;
    let pattern = spec()["components"]["schemas"]["CreateProduct"]["properties"]["unit_cost"]
        ["pattern"]
        .as_str()
        .expect("unit_cost declares a pattern")
        .to_owned();
    let largest = "9999999999.9999";
    assert!(regex::Regex::new(&pattern).unwrap().is_match(largest));
    assert!(!regex::Regex::new(&pattern).unwrap().is_match("10000000000"));
    let resp = app
        .post_as(
            "/api/v1/products",
            &token,
            &json!({"sku": "MAX-COST", "name": "Dear", "unit_cost": largest, "price": largest}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let p: Value = resp.json().await.unwrap();
    assert_eq!(p["unit_cost"], largest);
}
