//! Locations (bins): the tree per warehouse, its paths, codes and labels, and
//! the refusals that keep stock and history attached to a place.

mod common;
#[path = "common/movements.rs"]
mod movements;

use common::{assert_problem, TestApp};
use movements::Actor;
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

struct Fixture {
    app: TestApp,
    manager: String,
    actor: Actor,
    warehouse: Uuid,
}

async fn fixture(db: PgPool) -> Fixture {
    let app = TestApp::spawn(db).await;
    let user = app.create_user("manager").await;
    let resp = app.login(&user.email, &user.password).await;
    let manager = resp.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let warehouse = create_warehouse(&app, &manager, "MAIN").await;
    Fixture {
        app,
        manager,
        actor: Actor(user.id),
        warehouse,
    }
}

/// Through the API, so the DEFAULT location comes from the warehouse's own creation.
async fn create_warehouse(app: &TestApp, token: &str, code: &str) -> Uuid {
    let resp = app
        .post_as(
            "/api/v1/warehouses",
            token,
            &json!({"code": code, "name": code}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    id_of(resp.json().await.unwrap())
}

fn id_of(body: Value) -> Uuid {
    body["id"].as_str().unwrap().parse().unwrap()
}

impl Fixture {
    async fn create(&self, warehouse: Uuid, body: Value) -> reqwest::Response {
        self.app
            .post_as(
                &format!("/api/v1/warehouses/{warehouse}/locations"),
                &self.manager,
                &body,
            )
            .await
    }

    /// Creates a location in the fixture's warehouse; returns its body.
    async fn location(&self, code: &str, parent: Option<Uuid>) -> Value {
        let resp = self
            .create(self.warehouse, json!({"code": code, "parent_id": parent}))
            .await;
        assert_eq!(resp.status(), 201);
        resp.json().await.unwrap()
    }

    async fn patch(&self, id: Uuid, body: Value) -> reqwest::Response {
        self.app
            .patch_as(&format!("/api/v1/locations/{id}"), &self.manager, &body)
            .await
    }

    async fn delete(&self, id: Uuid) -> reqwest::Response {
        self.app
            .delete_as(&format!("/api/v1/locations/{id}"), &self.manager)
            .await
    }

    async fn get(&self, id: Uuid) -> Value {
        let resp = self
            .app
            .get_as(&format!("/api/v1/locations/{id}"), &self.manager)
            .await;
        assert_eq!(resp.status(), 200);
        resp.json().await.unwrap()
    }

    async fn default_location(&self, warehouse: Uuid) -> Value {
        let resp = self
            .app
            .get_as(
                &format!("/api/v1/warehouses/{warehouse}/locations?q=DEFAULT"),
                &self.manager,
            )
            .await;
        let page: Value = resp.json().await.unwrap();
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["code"] == "DEFAULT")
            .cloned()
            .expect("every warehouse has a DEFAULT location")
    }

    async fn product(&self, sku: &str) -> Uuid {
        sqlx::query_scalar("INSERT INTO products (sku, name) VALUES ($1, $1) RETURNING id")
            .bind(sku)
            .fetch_one(&self.app.db)
            .await
            .unwrap()
    }
}

#[sqlx::test]
async fn a_new_warehouse_has_a_default_location_and_locations_nest_into_paths(db: PgPool) {
    let f = fixture(db).await;
    let default = f.default_location(f.warehouse).await;
    assert_eq!(default["path"], "DEFAULT");
    assert_eq!(default["active"], true);
    assert!(default["parent_id"].is_null());

    let zone = f.location("A", None).await;
    let aisle = f.location("A-01", Some(id_of(zone.clone()))).await;
    let bin = f.location("A-01-3", Some(id_of(aisle.clone()))).await;
    assert_eq!(bin["path"], "A/A-01/A-01-3");
    assert_eq!(bin["warehouse_id"], f.warehouse.to_string());
    assert_eq!(bin["parent_id"], aisle["id"]);

    // Recoding the zone renames every path below it.
    let resp = f.patch(id_of(zone.clone()), json!({"code": "Z"})).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(f.get(id_of(bin.clone())).await["path"], "Z/A-01/A-01-3");
    // Moving the aisle to the top level does too; null means "no parent".
    let resp = f
        .patch(id_of(aisle.clone()), json!({"parent_id": null}))
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(f.get(id_of(bin.clone())).await["path"], "A-01/A-01-3");

    // Listed in tree order, two per page.
    let mut paths = Vec::new();
    let mut cursor = String::new();
    loop {
        let page: Value = f
            .app
            .get_ok(
                &format!(
                    "/api/v1/warehouses/{}/locations?limit=2&cursor={cursor}",
                    f.warehouse
                ),
                &f.manager,
            )
            .await;
        for l in page["items"].as_array().unwrap() {
            paths.push(l["path"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break,
        }
    }
    assert_eq!(paths, ["A-01", "A-01/A-01-3", "DEFAULT", "Z"]);
}

#[sqlx::test]
async fn codes_are_unique_per_warehouse_and_barcodes_unique_everywhere(db: PgPool) {
    let f = fixture(db).await;
    let other = create_warehouse(&f.app, &f.manager, "OTHER").await;
    f.location("a-1", None).await;
    let resp = f.create(f.warehouse, json!({"code": "A-1"})).await;
    assert_problem(resp, 409, "location-code-taken").await;
    // The same code in another warehouse is another location.
    assert_eq!(f.create(other, json!({"code": "A-1"})).await.status(), 201);

    let resp = f
        .create(f.warehouse, json!({"code": "B-1", "barcode": "LOC-B-1"}))
        .await;
    assert_eq!(resp.status(), 201);
    let labelled = id_of(resp.json().await.unwrap());
    let resp = f
        .create(other, json!({"code": "B-1", "barcode": "LOC-B-1"}))
        .await;
    assert_problem(resp, 409, "barcode-taken").await;
    // A product's barcode cannot label a location either.
    let product = f.product("P-1").await;
    sqlx::query("INSERT INTO product_barcodes (lookup_key, barcode, symbology, product_id) VALUES ('PRODCODE', 'PRODCODE', 'other', $1)")
        .bind(product)
        .execute(&f.app.db)
        .await
        .unwrap();
    let resp = f
        .create(f.warehouse, json!({"code": "C-1", "barcode": "PRODCODE"}))
        .await;
    assert_problem(resp, 409, "barcode-taken").await;
    // ...nor a location's label a product's barcode.
    let resp = f
        .app
        .post_as(
            &format!("/api/v1/products/{product}/barcodes"),
            &f.manager,
            &json!({"barcode": "LOC-B-1"}),
        )
        .await;
    assert_problem(resp, 409, "barcode-taken").await;

    // A scanner finds the location by its label.
    let viewer = f.app.token("viewer").await;
    let resp = f
        .app
        .get_as("/api/v1/locations/by-barcode/LOC-B-1", &viewer)
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(id_of(resp.json().await.unwrap()), labelled);
    let resp = f
        .app
        .get_as("/api/v1/locations/by-barcode/NOPE", &viewer)
        .await;
    assert_problem(resp, 404, "not-found").await;
    // A label can be removed again.
    let resp = f.patch(labelled, json!({"barcode": null})).await;
    assert_eq!(resp.status(), 200);
    assert!(f.get(labelled).await["barcode"].is_null());

    let resp = f.create(f.warehouse, json!({"code": "-bad code"})).await;
    let body = assert_problem(resp, 422, "validation").await;
    assert_eq!(body["errors"][0]["field"], "code");
    let resp = f.create(Uuid::new_v4(), json!({"code": "X"})).await;
    assert_problem(resp, 404, "not-found").await;
}

#[sqlx::test]
async fn a_parent_must_be_in_the_same_warehouse_and_the_tree_has_no_cycles(db: PgPool) {
    let f = fixture(db).await;
    let other = create_warehouse(&f.app, &f.manager, "OTHER").await;
    let foreign = f
        .create(other, json!({"code": "F"}))
        .await
        .json::<Value>()
        .await
        .unwrap();
    let resp = f
        .create(
            f.warehouse,
            json!({"code": "X", "parent_id": foreign["id"]}),
        )
        .await;
    let body = assert_problem(resp, 422, "validation").await;
    assert_eq!(body["errors"][0]["field"], "parent_id");
    let resp = f
        .create(
            f.warehouse,
            json!({"code": "X", "parent_id": Uuid::new_v4()}),
        )
        .await;
    let body = assert_problem(resp, 422, "validation").await;
    assert_eq!(body["errors"][0]["field"], "parent_id");

    let zone = id_of(f.location("A", None).await);
    let aisle = id_of(f.location("A-01", Some(zone)).await);
    let bin = id_of(f.location("A-01-3", Some(aisle)).await);
    for (parent, what) in [(bin, "a grandchild"), (zone, "itself")] {
        let resp = f.patch(zone, json!({"parent_id": parent})).await;
        let body = assert_problem(resp, 422, "validation").await;
        assert_eq!(body["errors"][0]["field"], "parent_id", "under {what}");
    }
    assert_eq!(f.get(zone).await["path"], "A");
}

#[sqlx::test]
async fn a_location_holding_stock_is_neither_deleted_nor_deactivated(db: PgPool) {
    let f = fixture(db).await;
    let product = f.product("P-1").await;
    let bin = id_of(f.location("BIN-1", None).await);
    movements::receive(
        &f.app.db,
        f.actor,
        json!({"product_id": product, "warehouse_id": f.warehouse, "quantity": 5, "location_id": bin}),
    )
    .await;

    assert_problem(f.delete(bin).await, 409, "location-not-empty").await;
    let resp = f.patch(bin, json!({"active": false})).await;
    let body = assert_problem(resp, 409, "location-not-empty").await;
    assert!(body["detail"].as_str().unwrap().contains('5'), "{body}");
    assert_eq!(f.get(bin).await["active"], true);

    // Empty again: it may be deactivated, but its history keeps it from deletion.
    movements::issue(
        &f.app.db,
        f.actor,
        json!({"product_id": product, "warehouse_id": f.warehouse, "quantity": 5, "location_id": bin}),
    )
    .await;
    let resp = f.patch(bin, json!({"active": false})).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["active"], false);
    let body = assert_problem(f.delete(bin).await, 409, "location-not-empty").await;
    assert!(
        body["detail"].as_str().unwrap().contains("deactivate"),
        "{body}"
    );

    // A parent goes only after its children.
    let zone = id_of(f.location("Z", None).await);
    let shelf = id_of(f.location("Z-1", Some(zone)).await);
    assert_problem(f.delete(zone).await, 409, "location-not-empty").await;
    assert_eq!(f.delete(shelf).await.status(), 204);
    assert_eq!(f.delete(zone).await.status(), 204);
    let resp = f
        .app
        .get_as(&format!("/api/v1/locations/{zone}"), &f.manager)
        .await;
    assert_problem(resp, 404, "not-found").await;
}

#[sqlx::test]
async fn the_default_location_is_never_deleted_recoded_or_deactivated(db: PgPool) {
    let f = fixture(db).await;
    let default = id_of(f.default_location(f.warehouse).await);
    assert_problem(f.delete(default).await, 409, "default-location").await;
    let resp = f.patch(default, json!({"code": "MAIN-FLOOR"})).await;
    assert_problem(resp, 409, "default-location").await;
    let resp = f.patch(default, json!({"active": false})).await;
    assert_problem(resp, 409, "default-location").await;
    // Its display name and label are free to change.
    let resp = f
        .patch(default, json!({"name": "Goods in", "barcode": "LOC-IN"}))
        .await;
    assert_eq!(resp.status(), 200);
    let body = f.get(default).await;
    assert_eq!(
        (body["code"].as_str(), body["name"].as_str()),
        (Some("DEFAULT"), Some("Goods in"))
    );
}

#[sqlx::test]
async fn creating_a_location_twice_with_one_idempotency_key_creates_it_once(db: PgPool) {
    let f = fixture(db).await;
    let send = || {
        f.app
            .with_token(
                reqwest::Method::POST,
                &format!("/api/v1/warehouses/{}/locations", f.warehouse),
                &f.manager,
            )
            .header("Idempotency-Key", "loc-create-1")
            .json(&json!({"code": "R-1", "name": "Returns"}))
            .send()
    };
    let first = send().await.unwrap();
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let again = send().await.unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM locations WHERE code = 'R-1'")
        .fetch_one(&f.app.db)
        .await
        .unwrap();
    assert_eq!(count, 1);
}

#[sqlx::test]
async fn inactive_locations_can_be_filtered_and_reactivated(db: PgPool) {
    let f = fixture(db).await;
    let bin = id_of(f.location("OLD", None).await);
    assert_eq!(f.patch(bin, json!({"active": false})).await.status(), 200);
    let page: Value = f
        .app
        .get_ok(
            &format!("/api/v1/warehouses/{}/locations?active=false", f.warehouse),
            &f.manager,
        )
        .await;
    let codes: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["OLD"]);
    assert_eq!(f.patch(bin, json!({"active": true})).await.status(), 200);
    assert_eq!(f.get(bin).await["active"], true);
}
