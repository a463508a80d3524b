//! The published OpenAPI document: what poem-openapi generates, plus the
//! API-wide rules it cannot express per field, applied in one pass so the
//! served `/openapi.json`, `/openapi.yaml`, Swagger UI and the committed
//! `openapi/openapi.yaml` are the same document.
//!
//! The rules (the README states them for clients):
//! - **Absent optional values are `null`.** Every property that is not
//!   `required` is declared `nullable`, because the server writes `null` for
//!   it (and accepts `null` or absence on input). One rule, no per-field
//!   exceptions to remember. The one kind of property that is left out
//!   instead is one a query parameter opts into (`positions` with
//!   `detail=positions`), so the answer without it stays the v1 one byte for
//!   byte; a client reading it as "optional, nullable" is still right.
//! - **Every operation lists its real error statuses** with the problem+json
//!   schema, derived from what the operation can meet (credentials, path ids,
//!   a body, `If-Match`, a write), instead of one catch-all `default`.
//! - Formats a generic client knows: dates are `date`, decimals carry a pattern.
//! - Every request body carries an example ([`examples`]).
//! - Request schemas declare the limits handlers enforce ([`constraints`]).
//!
//! It deliberately does not invent anything a handler does not do: statuses
//! come from the operation's shape, and the handlers/extractors produce them.

use serde_json::{json, Map, Value};

mod constraints;
mod examples;

/// A decimal string as the API accepts it: up to 10 digits, optionally up to
/// 4 decimals, no sign. Every value it matches parses and fits numeric(14, 4)
/// (`catalog::model::check_money`), so a schema-valid amount is never refused.
pub const DECIMAL_PATTERN: &str = r"^[0-9]{1,10}(\.[0-9]{1,4})?$";

/// Operations that throttle (429 with `Retry-After`).
const THROTTLED: &[&str] = &["/api/v1/auth/login"];

/// Operations that take credentials in the body instead of a bearer token:
/// wrong ones are a 401 too.
const CREDENTIALS_IN_BODY: &[&str] = &["/api/v1/auth/login", "/api/v1/auth/refresh"];

/// Operations that never touch PostgreSQL, so never answer 503.
const NO_DATABASE: &[&str] = &["/health"];

/// Applies the API-wide rules to the document poem-openapi generated.
pub fn finish(raw: &str) -> Value {
    let mut doc: Value = serde_json::from_str(raw).expect("poem-openapi writes valid JSON");
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        for schema in schemas.values_mut() {
            nullable_optionals(schema);
        }
        declare_constraints(schemas);
    }
    walk(&mut doc, &mut fix_formats);
    walk(&mut doc, &mut describe_event_streams);
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, ops) in paths.iter_mut() {
            let Some(ops) = ops.as_object_mut() else {
                continue;
            };
            for (method, op) in ops.iter_mut() {
                error_statuses(path, method, op);
                request_examples(op);
            }
        }
    }
    doc
}

/// Merges the limits handlers enforce ([`constraints`]) into the schemas.
fn declare_constraints(schemas: &mut Map<String, Value>) {
    let merge = |target: Option<&mut Value>, keywords: Value, what: String| {
        let target = target.and_then(Value::as_object_mut).unwrap_or_else(|| {
            panic!("contract constraints name {what}, which is not in the spec")
        });
        for (k, v) in keywords.as_object().into_iter().flatten() {
            target.insert(k.clone(), v.clone());
        }
    };
    for (schema, prop, keywords) in constraints::all() {
        let target = schemas
            .get_mut(schema)
            .and_then(|s| s.pointer_mut(&format!("/properties/{prop}")));
        merge(target, keywords, format!("{schema}.{prop}"));
    }
}

/// Puts the example of its schema ([`examples`]) on each request body.
fn request_examples(op: &mut Value) {
    let Some(content) = op
        .pointer_mut("/requestBody/content")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for (media, body) in content.iter_mut() {
        let example = if media.starts_with("text/csv") {
            Some(Value::from(examples::CSV_IMPORT))
        } else {
            body.pointer("/schema/$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.rsplit('/').next())
                .and_then(examples::request)
        };
        if let (Some(example), Some(body)) = (example, body.as_object_mut()) {
            body.insert("example".into(), example);
        }
    }
}

/// Calls `f` on every object in the document, depth first.
fn walk(value: &mut Value, f: &mut impl FnMut(&mut Map<String, Value>)) {
    match value {
        Value::Object(map) => {
            f(map);
            for v in map.values_mut() {
                walk(v, f);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| walk(v, f)),
        _ => {}
    }
}

/// Marks every optional property of an object schema nullable.
fn nullable_optionals(schema: &mut Value) {
    let required: Vec<String> = schema["required"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) else {
        return;
    };
    for (name, prop) in props.iter_mut() {
        if !required.contains(name) {
            make_nullable(prop);
        }
    }
}

/// `nullable` is ignored beside a bare `$ref` in OpenAPI 3.0, so a reference
/// becomes `allOf: [$ref]` first (the form generators read as "this type or null").
/// poem-openapi writes a described reference as `allOf: [$ref, {description}]`:
/// the description moves up so the `allOf` holds only the type.
fn make_nullable(prop: &mut Value) {
    let Some(obj) = prop.as_object_mut() else {
        return;
    };
    if let Some(reference) = obj.remove("$ref") {
        obj.insert("allOf".into(), json!([{ "$ref": reference }]));
    }
    if let Some(Value::Array(parts)) = obj.get_mut("allOf") {
        parts.retain(|p| p.get("$ref").is_some());
    }
    obj.insert("nullable".into(), Value::Bool(true));
}

/// A described reference that is required: poem's `allOf: [$ref, {description}]`
/// confuses generators ("allOf a non-object" for enums); keep the reference alone.
/// Dates get the standard format; decimal strings get their pattern.
fn fix_formats(obj: &mut Map<String, Value>) {
    if obj.get("format").and_then(Value::as_str) == Some("naive-date") {
        obj.insert("format".into(), "date".into());
    }
    if obj.get("format").and_then(Value::as_str) == Some("decimal") && !obj.contains_key("pattern")
    {
        obj.insert("pattern".into(), DECIMAL_PATTERN.into());
    }
    let single_ref = match obj.get("allOf") {
        Some(Value::Array(parts)) => {
            let refs: Vec<&Value> = parts.iter().filter(|p| p.get("$ref").is_some()).collect();
            let only_descriptions = parts.iter().filter(|p| p.get("$ref").is_none()).all(|p| {
                p.as_object()
                    .is_some_and(|o| o.keys().all(|k| k == "description"))
            });
            (refs.len() == 1 && only_descriptions).then(|| refs[0].clone())
        }
        _ => None,
    };
    if let Some(reference) = single_ref {
        if obj.get("nullable") == Some(&Value::Bool(true)) {
            obj.insert("allOf".into(), json!([reference]));
        } else {
            // Required: a plain reference; its description lives on the referenced schema.
            obj.remove("allOf");
            obj.remove("description");
            obj.insert("$ref".into(), reference["$ref"].clone());
        }
    }
}

/// poem-openapi documents an event stream as `array` of its item type, a
/// convention of its own; in OpenAPI 3.0 the `schema` of `text/event-stream`
/// describes one event as it arrives: `id`, `event` and `data` (the item as JSON).
fn describe_event_streams(obj: &mut Map<String, Value>) {
    let Some(Value::Object(stream)) = obj.get_mut("text/event-stream") else {
        return;
    };
    let item = stream
        .get("schema")
        .and_then(|s| s.pointer("/items/$ref"))
        .and_then(Value::as_str)
        .map(|r| r.rsplit('/').next().unwrap_or(r).to_owned());
    let Some(item) = item else {
        return;
    };
    stream.insert(
        "schema".into(),
        json!({
            "type": "object",
            "description": format!("One Server-Sent Event; `data` is a `{item}` as JSON."),
            "required": ["data"],
            "properties": {
                "id": {"type": "string", "description": "Send back as `Last-Event-ID` to resume after this event."},
                "event": {"type": "string", "description": "The event's topic."},
                "data": {"type": "string", "description": format!("A `{item}` serialised as JSON.")},
                "retry": {"type": "integer", "description": "Reconnection delay in milliseconds."}
            }
        }),
    );
}

/// Replaces the catch-all `default` problem response with the statuses this
/// operation can actually answer.
fn error_statuses(path: &str, method: &str, op: &mut Value) {
    let has = |key: &str| op.get(key).is_some_and(|v| !v.is_null());
    let params = op["parameters"].as_array().map_or(&[][..], Vec::as_slice);
    let has_params = !params.is_empty();
    let if_match = params.iter().any(|p| p["name"] == "If-Match");
    let body = has("requestBody");
    let secured = has("security");
    let write = method != "get";
    let mut statuses: Vec<(u16, &str)> = Vec::new();
    if has_params || body {
        statuses.push((
            400,
            "Malformed request: a parameter or the body does not parse.",
        ));
    }
    if secured || CREDENTIALS_IN_BODY.contains(&path) {
        statuses.push((401, "Missing, invalid or expired credentials."));
    }
    if secured {
        statuses.push((403, "The caller's role (or device) may not do this."));
    }
    if path.contains('{') {
        statuses.push((404, "No such resource."));
    }
    if write && secured {
        statuses.push((
            409,
            "Conflicts with the current state (duplicate, insufficient stock, archived, ...).",
        ));
    }
    if if_match {
        statuses.push((412, "If-Match names a version that is no longer current."));
    }
    if body {
        statuses.push((413, "The body exceeds the size limit."));
        statuses.push((415, "Unsupported Content-Type for the body."));
    }
    if has_params || body {
        statuses.push((422, "A field is invalid; `errors` names each one."));
    }
    if THROTTLED.contains(&path) {
        statuses.push((429, "Too many attempts; retry after `Retry-After` seconds."));
    }
    if !NO_DATABASE.contains(&path) {
        statuses.push((503, "The database is unavailable; retry shortly."));
    }
    let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
        return;
    };
    let problem = responses
        .remove("default")
        .and_then(|d| d.get("content").cloned())
        .unwrap_or_else(|| {
            json!({"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}})
        });
    for (status, description) in statuses {
        responses
            .entry(status.to_string())
            .or_insert_with(|| json!({ "description": description, "content": problem.clone() }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optional_properties_become_nullable_and_references_stay_usable() {
        let raw = json!({
            "components": {"schemas": {"S": {
                "type": "object",
                "required": ["a"],
                "properties": {
                    "a": {"type": "string"},
                    "b": {"type": "string"},
                    "c": {"$ref": "#/components/schemas/T"},
                    "d": {"allOf": [{"$ref": "#/components/schemas/T"}, {"description": "x"}], "description": "x"}
                }
            }}},
            "paths": {}
        });
        // Only the nullable rule: `finish` also declares constraints, which
        // name schemas this fixture does not have.
        let mut doc = raw;
        for schema in doc["components"]["schemas"]
            .as_object_mut()
            .expect("fixture has schemas")
            .values_mut()
        {
            nullable_optionals(schema);
        }
        let props = &doc["components"]["schemas"]["S"]["properties"];
        assert!(props["a"].get("nullable").is_none());
        assert_eq!(props["b"]["nullable"], true);
        assert_eq!(
            props["c"],
            json!({"allOf": [{"$ref": "#/components/schemas/T"}], "nullable": true})
        );
        assert_eq!(
            props["d"],
            json!({"allOf": [{"$ref": "#/components/schemas/T"}], "description": "x", "nullable": true})
        );
    }

    #[test]
    fn default_problem_becomes_the_operations_statuses() {
        let raw = json!({
            "paths": {"/api/v1/things/{id}": {
                "patch": {
                    "parameters": [{"name": "id", "in": "path"}, {"name": "If-Match", "in": "header"}],
                    "requestBody": {"content": {}},
                    "security": [{"bearer": []}],
                    "responses": {"200": {"description": "ok"}, "default": {"description": "p", "content": {"application/problem+json": {}}}}
                },
                "get": {"responses": {"200": {"description": "ok"}, "default": {"description": "p"}}}
            }}
        });
        let doc = finish(&raw.to_string());
        let patch: Vec<&String> = doc["paths"]["/api/v1/things/{id}"]["patch"]["responses"]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        assert_eq!(
            patch,
            ["200", "400", "401", "403", "404", "409", "412", "413", "415", "422", "503"]
        );
        let get: Vec<&String> = doc["paths"]["/api/v1/things/{id}"]["get"]["responses"]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        assert_eq!(get, ["200", "404", "503"]);
    }
}
