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
/// Names are checked after trimming: something other than whitespace.
const NOT_BLANK: &str = r"\S";
/// `catalog::barcode::parse`: trimmed, not empty, no control character.
const BARCODE_PATTERN: &str =
    r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$";
/// `locations::valid_barcode`: printable ASCII, not blank after trimming.
const LOCATION_BARCODE_PATTERN: &str = r"^[ -~]*[!-~][ -~]*$";

/// A name of at most `max` characters that is not blank.
fn name(max: u32) -> Value {
    json!({"minLength": 1, "maxLength": max, "pattern": NOT_BLANK})
}

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
    let location_barcode = json!({"maxLength": 128, "pattern": LOCATION_BARCODE_PATTERN});
    vec![
        // auth::model::LoginRequest::check, RefreshRequest::check
        ("LoginRequest", "email", json!({"maxLength": 254})),
        ("LoginRequest", "password", json!({"maxLength": 256})),
        ("RefreshRequest", "refresh_token", json!({"maxLength": 200})),
        // catalog::model::ProductFields::validate
        ("CreateProduct", "sku", sku.clone()),
        ("CreateProduct", "name", name(200)),
        ("CreateProduct", "description", json!({"maxLength": 4000})),
        ("CreateProduct", "unit", name(20)),
        ("CreateProduct", "reorder_point", json!({"minimum": 0})),
        ("CreateProduct", "reorder_quantity", json!({"minimum": 0})),
        ("UpdateProduct", "sku", sku),
        ("UpdateProduct", "name", name(200)),
        ("UpdateProduct", "description", json!({"maxLength": 4000})),
        ("UpdateProduct", "unit", name(20)),
        ("UpdateProduct", "reorder_point", json!({"minimum": 0})),
        ("UpdateProduct", "reorder_quantity", json!({"minimum": 0})),
        // warehouses::check_fields
        ("CreateWarehouse", "code", code.clone()),
        ("CreateWarehouse", "name", name(200)),
        ("CreateWarehouse", "address", json!({"maxLength": 1000})),
        ("UpdateWarehouse", "code", code.clone()),
        ("UpdateWarehouse", "name", name(200)),
        ("UpdateWarehouse", "address", json!({"maxLength": 1000})),
        // locations::check_fields
        ("CreateLocation", "code", code.clone()),
        ("CreateLocation", "name", json!({"maxLength": 200})),
        ("CreateLocation", "barcode", location_barcode.clone()),
        ("UpdateLocation", "code", code),
        ("UpdateLocation", "name", json!({"maxLength": 200})),
        ("UpdateLocation", "barcode", location_barcode.clone()),
        // catalog::categories::check_name
        ("CreateCategory", "name", name(100)),
        ("UpdateCategory", "name", name(100)),
        // auth::password::policy_violation, auth::check_display_name
        ("CreateUser", "password", password.clone()),
        ("CreateUser", "display_name", name(100)),
        ("UpdateUser", "password", password),
        ("UpdateUser", "display_name", name(100)),
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
        // Non-zero too: `not` is OpenAPI 3.0's way to exclude one value.
        (
            "AdjustRequest",
            "delta",
            json!({"minimum": -1_000_000_000, "maximum": 1_000_000_000, "not": {"enum": [0]}}),
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
        ("CreateDevice", "name", name(100)),
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
        // scanner::counts::create, lines
        ("CreateCount", "product_ids", json!({"maxItems": 10_000})),
        ("CreateCount", "location_ids", json!({"maxItems": 10_000})),
        (
            "CountLinesRequest",
            "lines",
            json!({"minItems": 1, "maxItems": 1000}),
        ),
        (
            "CountedLine",
            "counted_quantity",
            json!({"minimum": 0, "maximum": 1_000_000_000}),
        ),
        // scanner::events::process refuses a batch out of bounds with a 422;
        // a quantity out of bounds is a `rejected` outcome inside the 200.
        (
            "ScanBatch",
            "events",
            json!({"minItems": 1, "maxItems": 500}),
        ),
        (
            "ScanEvent",
            "quantity",
            json!({"minimum": 1, "maximum": 10_000}),
        ),
        // catalog::model::parse_barcodes, parse_barcode (GTIN check digits
        // are verified too, which the descriptions say)
        ("CreateProduct", "barcodes", json!({"maxItems": 100})),
        (
            "NewBarcode",
            "barcode",
            json!({"minLength": 1, "maxLength": 128, "pattern": BARCODE_PATTERN}),
        ),
        (
            "NewBarcode",
            "pack_quantity",
            json!({"minimum": 1, "maximum": 1_000_000}),
        ),
    ]
}
