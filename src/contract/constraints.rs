//! The limits handlers enforce on request bodies, declared in the schemas so a
//! client can know what is valid. They are declared here, not as poem-openapi
//! validators: those would refuse with a bare 400, while the handlers answer
//! 422 with field errors (and check text after trimming, so a declared
//! `maxLength` is never stricter than the handler). Each entry mirrors a
//! check in the handler named beside it; `tests/contract.rs` sends a value
//! just outside every declared limit and expects a 422 naming the field.

use serde_json::{json, Value};

/// Identifiers start with a letter or digit (`valid_sku`, `valid_code`).
const SKU_PATTERN: &str = r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$";
const WAREHOUSE_CODE_PATTERN: &str = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$";
const TOPIC_FILTER_PATTERN: &str = r"^[A-Za-z0-9._*]{1,100}$";

/// (schema, property, keywords to merge into the property). A property
/// `x/items` means the items of list `x`.
pub fn all() -> Vec<(&'static str, &'static str, Value)> {
    let quantity = json!({"minimum": 1, "maximum": 1_000_000_000});
    let reference = json!({"maxLength": 200});
    let note = json!({"maxLength": 2000});
    let code = json!({"maxLength": 32, "pattern": WAREHOUSE_CODE_PATTERN});
    let password = json!({"minLength": 12, "maxLength": 256});
    let events = json!({"minItems": 1, "maxItems": 50});
    let topic = json!({"pattern": TOPIC_FILTER_PATTERN});
    let sku = json!({"maxLength": 64, "pattern": SKU_PATTERN});
    // stock::is_code: what GS1 AI 10 and 21 carry.
    let lot = json!({"maxLength": 20, "pattern": "^[!-~]{1,20}$"});
    let serial = lot.clone();
    vec![
        // auth::model::LoginRequest::check, RefreshRequest::check
        ("LoginRequest", "email", json!({"maxLength": 254})),
        ("LoginRequest", "password", json!({"maxLength": 256})),
        ("RefreshRequest", "refresh_token", json!({"maxLength": 200})),
        // catalog::model::ProductFields::validate
        ("CreateProduct", "sku", sku.clone()),
        ("CreateProduct", "name", json!({"maxLength": 200})),
        ("CreateProduct", "description", json!({"maxLength": 4000})),
        ("CreateProduct", "unit", json!({"maxLength": 20})),
        ("CreateProduct", "reorder_point", json!({"minimum": 0})),
        ("CreateProduct", "reorder_quantity", json!({"minimum": 0})),
        ("UpdateProduct", "sku", sku),
        ("UpdateProduct", "name", json!({"maxLength": 200})),
        ("UpdateProduct", "description", json!({"maxLength": 4000})),
        ("UpdateProduct", "unit", json!({"maxLength": 20})),
        ("UpdateProduct", "reorder_point", json!({"minimum": 0})),
        ("UpdateProduct", "reorder_quantity", json!({"minimum": 0})),
        // warehouses::check_fields
        ("CreateWarehouse", "code", code.clone()),
        ("CreateWarehouse", "name", json!({"maxLength": 200})),
        ("CreateWarehouse", "address", json!({"maxLength": 1000})),
        ("UpdateWarehouse", "code", code.clone()),
        ("UpdateWarehouse", "name", json!({"maxLength": 200})),
        ("UpdateWarehouse", "address", json!({"maxLength": 1000})),
        // locations::check_fields
        ("CreateLocation", "code", code.clone()),
        ("CreateLocation", "name", json!({"maxLength": 200})),
        ("CreateLocation", "barcode", json!({"maxLength": 128})),
        ("UpdateLocation", "code", code),
        ("UpdateLocation", "name", json!({"maxLength": 200})),
        ("UpdateLocation", "barcode", json!({"maxLength": 128})),
        // catalog::categories::check_name
        ("CreateCategory", "name", json!({"maxLength": 100})),
        ("UpdateCategory", "name", json!({"maxLength": 100})),
        // auth::password::policy_violation, auth::check_display_name
        ("CreateUser", "password", password.clone()),
        ("CreateUser", "display_name", json!({"maxLength": 100})),
        ("UpdateUser", "password", password),
        ("UpdateUser", "display_name", json!({"maxLength": 100})),
        // stock::check_quantity, check_reference_and_note, adjust
        ("ReceiveRequest", "quantity", quantity.clone()),
        ("IssueRequest", "quantity", quantity.clone()),
        ("TransferRequest", "quantity", quantity),
        ("ReceiveRequest", "reference", reference.clone()),
        ("IssueRequest", "reference", reference.clone()),
        ("TransferRequest", "reference", reference),
        ("ReceiveRequest", "note", note.clone()),
        ("IssueRequest", "note", note.clone()),
        ("TransferRequest", "note", note.clone()),
        ("AdjustRequest", "note", note),
        (
            "AdjustRequest",
            "new_quantity",
            json!({"minimum": 0, "maximum": 1_000_000_000}),
        ),
        // Non-zero too, which OpenAPI 3.0 cannot say simply.
        (
            "AdjustRequest",
            "delta",
            json!({"minimum": -1_000_000_000, "maximum": 1_000_000_000}),
        ),
        // stock::check_dimensions, reservations::create
        ("ReceiveRequest", "lot", lot.clone()),
        ("IssueRequest", "lot", lot.clone()),
        ("AdjustRequest", "lot", lot.clone()),
        ("TransferRequest", "lot", lot.clone()),
        ("CreateReservation", "lot", lot),
        ("ReceiveRequest", "serials/items", serial.clone()),
        ("IssueRequest", "serials/items", serial.clone()),
        ("AdjustRequest", "serials/items", serial.clone()),
        ("TransferRequest", "serials/items", serial),
        (
            "CreateReservation",
            "quantity",
            json!({"minimum": 1, "maximum": 1_000_000_000}),
        ),
        ("CreateReservation", "reference", json!({"maxLength": 200})),
        // scanner::devices::create
        ("CreateDevice", "name", json!({"maxLength": 100})),
        (
            "CreateDevice",
            "warehouse_ids",
            json!({"minItems": 1, "maxItems": 100}),
        ),
        // webhooks::check_events, create and update
        ("CreateWebhook", "events", events.clone()),
        ("CreateWebhook", "events/items", topic.clone()),
        ("CreateWebhook", "description", json!({"maxLength": 500})),
        ("UpdateWebhook", "events", events),
        ("UpdateWebhook", "events/items", topic),
        ("UpdateWebhook", "description", json!({"maxLength": 500})),
        // scanner::counts::lines
        (
            "CountLinesRequest",
            "lines",
            json!({"minItems": 1, "maxItems": 1000}),
        ),
    ]
}
