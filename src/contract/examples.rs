//! An example for every JSON request body, by schema name: Swagger UI's "Try
//! it out" starts from it and generated clients document it. They sit in one
//! table rather than on each type because most request types hold
//! `MaybeUndefined`/money fields whose Rust construction would bury the JSON a
//! reader wants to see. `tests/contract.rs` checks that every JSON body has
//! one and that it only uses declared properties and names every required one.

use serde_json::{json, Value};

const WAREHOUSE: &str = "0b6f3c2e-5d1a-4c8e-9f47-2a6d1e3b7c90";
const OTHER_WAREHOUSE: &str = "5e2d8a41-9c3b-4f6e-8d17-c4a9b0e2f153";
const PRODUCT: &str = "7d9e4b12-3a6c-4e8f-b1d5-9c2a7f4e6b08";
const CATEGORY: &str = "c3a1f9e7-2b4d-4a6c-8e0f-1d3b5a7c9e24";
const LOCATION: &str = "9a4e2c71-6b3d-4f8a-a5c0-7e1d3b9f2a64";

/// The example of request schema `name`, if it has one.
pub fn request(name: &str) -> Option<Value> {
    Some(match name {
        "LoginRequest" => {
            json!({"email": "clerk@example.com", "password": "correct horse battery staple"})
        }
        "RefreshRequest" => json!({"refresh_token": "rt_3q2-6yVb0kFh9wQeZs1XcJ8uN4mD7pLa"}),
        "CreateUser" => json!({
            "email": "sam@example.com", "password": "correct horse battery staple",
            "role": "clerk", "display_name": "Sam"
        }),
        "UpdateUser" => json!({"role": "manager", "active": true}),
        "CreateCategory" => json!({"name": "Fasteners", "parent_id": CATEGORY}),
        "UpdateCategory" => json!({"name": "Screws and bolts"}),
        "CreateProduct" => json!({
            "sku": "SCR-4X40", "name": "Wood screw 4x40 mm", "description": "Zinc plated, box of 200",
            "category_id": CATEGORY, "unit": "box", "unit_cost": "3.20", "price": "5.90",
            "reorder_point": 20, "reorder_quantity": 100,
            "barcodes": [{"barcode": "4006381333931"}, {"barcode": "14006381333938", "pack_quantity": 12}]
        }),
        "UpdateProduct" => json!({"price": "6.20", "reorder_point": 25}),
        "NewBarcode" => json!({"barcode": "14006381333938", "pack_quantity": 12}),
        "CreateWarehouse" => {
            json!({"code": "BER-1", "name": "Berlin main", "address": "Lagerstr. 1, 10115 Berlin"})
        }
        "UpdateWarehouse" => json!({"name": "Berlin central"}),
        "CreateLocation" => json!({
            "code": "A-01-3", "name": "Aisle A, bay 1, shelf 3", "parent_id": LOCATION,
            "barcode": "LOC-A-01-3"
        }),
        "UpdateLocation" => json!({"name": "Aisle A, bay 1, top shelf"}),
        "ReceiveRequest" => json!({
            "product_id": PRODUCT, "warehouse_id": WAREHOUSE, "quantity": 100,
            "unit_cost": "3.20", "reference": "PO-2026-0042"
        }),
        "IssueRequest" => json!({
            "product_id": PRODUCT, "warehouse_id": WAREHOUSE, "quantity": 3, "reference": "SO-2026-0107"
        }),
        "AdjustRequest" => json!({
            "product_id": PRODUCT, "warehouse_id": WAREHOUSE, "reason": "damaged", "delta": -2,
            "note": "Two boxes crushed on the shelf"
        }),
        "TransferRequest" => json!({
            "product_id": PRODUCT, "from_warehouse_id": WAREHOUSE,
            "to_warehouse_id": OTHER_WAREHOUSE, "quantity": 10, "reference": "TR-0007"
        }),
        "CreateReservation" => json!({
            "product_id": PRODUCT, "warehouse_id": WAREHOUSE, "quantity": 5,
            "reference": "SO-2026-0108", "expires_at": "2030-01-31T18:00:00Z"
        }),
        "CreateDevice" => json!({"name": "Handheld 3", "warehouse_ids": [WAREHOUSE]}),
        "ScanEvent" => json!({
            "event_id": "e7c1a3b5-9d2f-4e6a-8c0b-3f5d7a9e1c42", "barcode": "4006381333931",
            "action": "receive", "warehouse_id": WAREHOUSE, "quantity": 1,
            "scanned_at": "2026-03-01T09:30:00Z"
        }),
        "ScanBatch" => json!({"events": [{
            "event_id": "e7c1a3b5-9d2f-4e6a-8c0b-3f5d7a9e1c42", "barcode": "4006381333931",
            "action": "issue", "warehouse_id": WAREHOUSE
        }]}),
        "CreateCount" => {
            json!({"warehouse_id": WAREHOUSE, "product_ids": [PRODUCT], "blind": true})
        }
        "CountLinesRequest" => json!({"lines": [{"product_id": PRODUCT, "counted_quantity": 42}]}),
        "CreateWebhook" => json!({
            "url": "https://erp.example.com/hooks/inventory",
            "events": ["stock.*", "product.created"], "description": "ERP sync"
        }),
        "UpdateWebhook" => json!({"active": false}),
        _ => return None,
    })
}

/// The example of a CSV import (`text/csv`); the columns `export.csv` writes.
pub const CSV_IMPORT: &str = "sku,name,description,category_id,unit,unit_cost,price,reorder_point,reorder_quantity,active,barcodes,tracking\n\
SCR-4X40,Wood screw 4x40 mm,\"Zinc plated, box of 200\",,box,3.20,5.90,20,100,true,4006381333931,none\n";

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_uuids() {
        for id in [
            super::WAREHOUSE,
            super::OTHER_WAREHOUSE,
            super::PRODUCT,
            super::CATEGORY,
            super::LOCATION,
        ] {
            assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
        }
    }
}
