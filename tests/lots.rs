//! Which stock: product tracking, stock positions, lots and their expiry,
//! recall traces and serial numbers, read through the API. Stock is set up
//! by `common/movements.rs` in the shape of the movement API.

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
    viewer: String,
    actor: Actor,
    product: Uuid,
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
    let viewer = app.token("viewer").await;
    let product = sqlx::query_scalar(
        "INSERT INTO products (sku, name, tracking) VALUES ('MILK-1', 'Milk', 'lot') RETURNING id",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    let warehouse = app.create_warehouse_sql("MAIN").await;
    Fixture {
        app,
        manager,
        viewer,
        actor: Actor(user.id),
        product,
        warehouse,
    }
}

impl Fixture {
    async fn get(&self, path: &str, token: &str) -> Value {
        let resp = self.app.get_as(path, token).await;
        assert_eq!(resp.status(), 200, "GET {path}");
        resp.json().await.unwrap()
    }

    async fn location(&self, warehouse: Uuid, code: &str) -> Uuid {
        sqlx::query_scalar(
            "INSERT INTO locations (warehouse_id, code) VALUES ($1, $2) RETURNING id",
        )
        .bind(warehouse)
        .bind(code)
        .fetch_one(&self.app.db)
        .await
        .unwrap()
    }

    async fn receive(&self, body: Value) {
        movements::receive(&self.app.db, self.actor, body).await;
    }

    async fn issue(&self, body: Value) {
        movements::issue(&self.app.db, self.actor, body).await;
    }

    async fn lot_id(&self, code: &str) -> Uuid {
        sqlx::query_scalar("SELECT id FROM lots WHERE product_id = $1 AND code = $2")
            .bind(self.product)
            .bind(code)
            .fetch_one(&self.app.db)
            .await
            .unwrap()
    }

    /// Today + `days` by the database's calendar, as `YYYY-MM-DD`.
    async fn day(&self, days: i32) -> String {
        sqlx::query_scalar("SELECT (current_date + $1)::text")
            .bind(days)
            .fetch_one(&self.app.db)
            .await
            .unwrap()
    }
}

fn items(page: &Value) -> &Vec<Value> {
    page["items"].as_array().unwrap()
}

#[sqlx::test]
async fn positions_show_stock_by_location_and_lot_and_leave_out_empty_ones(db: PgPool) {
    let f = fixture(db).await;
    let bin = f.location(f.warehouse, "BIN-1").await;
    let (p, w) = (f.product, f.warehouse);
    f.receive(
        json!({"product_id": p, "warehouse_id": w, "quantity": 10, "location_id": bin,
        "lot": "L1", "expires_on": "2030-01-31"}),
    )
    .await;
    f.receive(json!({"product_id": p, "warehouse_id": w, "quantity": 5, "lot": "L2"}))
        .await;
    f.receive(
        json!({"product_id": p, "warehouse_id": w, "quantity": 2, "lot": "L3",
        "expires_on": "2029-06-30"}),
    )
    .await;
    // L3 is used up: its position stays in the table at 0 but is not listed.
    f.issue(json!({"product_id": p, "warehouse_id": w, "quantity": 2, "lot": "L3"}))
        .await;

    let page = f
        .get(
            &format!("/api/v1/stock/positions?product_id={p}"),
            &f.viewer,
        )
        .await;
    let mut rows: Vec<(String, String, i64)> = items(&page)
        .iter()
        .map(|r| {
            (
                r["location_path"].as_str().unwrap().to_owned(),
                r["lot"].as_str().unwrap().to_owned(),
                r["quantity"].as_i64().unwrap(),
            )
        })
        .collect();
    rows.sort();
    assert_eq!(
        rows,
        [
            ("BIN-1".to_owned(), "L1".to_owned(), 10),
            ("DEFAULT".to_owned(), "L2".to_owned(), 5)
        ]
    );

    let l1 = f.lot_id("L1").await;
    let page = f
        .get(
            &format!("/api/v1/stock/positions?location_id={bin}"),
            &f.viewer,
        )
        .await;
    let row = &items(&page)[0];
    assert_eq!(items(&page).len(), 1);
    assert_eq!(row["sku"], "MILK-1");
    assert_eq!(row["warehouse_code"], "MAIN");
    assert_eq!(row["location_code"], "BIN-1");
    assert_eq!(row["lot_id"], l1.to_string());
    assert_eq!(row["expires_on"], "2030-01-31");
    for filter in [
        format!("lot_id={l1}"),
        "expiring_before=2030-02-01".to_owned(),
        format!("product_id={p}&warehouse_id={w}&location_id={bin}"),
    ] {
        let page = f
            .get(&format!("/api/v1/stock/positions?{filter}"), &f.viewer)
            .await;
        let lots: Vec<&Value> = items(&page).iter().map(|r| &r["lot"]).collect();
        assert_eq!(lots, [&json!("L1")], "{filter}");
    }
    // Strictly before: L1 expires on the 31st.
    let page = f
        .get(
            "/api/v1/stock/positions?expiring_before=2030-01-31",
            &f.viewer,
        )
        .await;
    assert!(items(&page).is_empty());

    // Keyset pages of one row cover every position once: two lots at one
    // location, and stock without a lot next to lotted stock.
    f.receive(
        json!({"product_id": p, "warehouse_id": w, "quantity": 1, "location_id": bin,
        "lot": "L4"}),
    )
    .await;
    let salt: Uuid =
        sqlx::query_scalar("INSERT INTO products (sku, name) VALUES ('SALT', 'Salt') RETURNING id")
            .fetch_one(&f.app.db)
            .await
            .unwrap();
    for location in [Some(bin), None] {
        f.receive(json!({"product_id": salt, "warehouse_id": w, "quantity": 4,
            "location_id": location}))
            .await;
    }
    let all = f.get("/api/v1/stock/positions", &f.viewer).await;
    let all: Vec<Value> = items(&all).iter().map(|r| r["id"].clone()).collect();
    assert_eq!(all.len(), 5);
    let mut paged = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = f
            .get(
                &format!("/api/v1/stock/positions?limit=1&cursor={cursor}"),
                &f.viewer,
            )
            .await;
        paged.extend(items(&page).iter().map(|r| r["id"].clone()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break,
        }
    }
    assert_eq!(paged, all);
}

#[sqlx::test]
async fn expiring_stock_comes_soonest_first_with_expired_lots_flagged(db: PgPool) {
    let f = fixture(db).await;
    let (p, w) = (f.product, f.warehouse);
    for (lot, days) in [("SOON", 10), ("LATER", 40), ("GONE", -1), ("TODAY", 0)] {
        let expires_on = f.day(days).await;
        f.receive(
            json!({"product_id": p, "warehouse_id": w, "quantity": 3, "lot": lot,
            "expires_on": expires_on}),
        )
        .await;
    }
    f.receive(json!({"product_id": p, "warehouse_id": w, "quantity": 3, "lot": "KEEPS"}))
        .await;

    let lots = |page: &Value| -> Vec<(String, bool, i64)> {
        items(page)
            .iter()
            .map(|r| {
                (
                    r["lot"].as_str().unwrap().to_owned(),
                    r["expired"].as_bool().unwrap(),
                    r["days_left"].as_i64().unwrap(),
                )
            })
            .collect()
    };
    let page = f.get("/api/v1/stock/expiring", &f.viewer).await;
    assert_eq!(
        lots(&page),
        [
            ("GONE".to_owned(), true, -1),
            ("TODAY".to_owned(), false, 0),
            ("SOON".to_owned(), false, 10)
        ]
    );
    assert_eq!(items(&page)[0]["quantity"], 3);
    assert_eq!(items(&page)[0]["expires_on"], f.day(-1).await);
    let page = f
        .get("/api/v1/stock/expiring?within_days=0", &f.viewer)
        .await;
    assert_eq!(lots(&page).len(), 2);
    let page = f
        .get("/api/v1/stock/expiring?within_days=60&limit=2", &f.viewer)
        .await;
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let rest = f
        .get(
            &format!("/api/v1/stock/expiring?within_days=60&limit=2&cursor={cursor}"),
            &f.viewer,
        )
        .await;
    let all: Vec<String> = lots(&page)
        .into_iter()
        .chain(lots(&rest))
        .map(|(l, _, _)| l)
        .collect();
    assert_eq!(all, ["GONE", "TODAY", "SOON", "LATER"]);

    for bad in ["-1", "3651"] {
        let resp = f
            .app
            .get_as(
                &format!("/api/v1/stock/expiring?within_days={bad}"),
                &f.viewer,
            )
            .await;
        let body = assert_problem(resp, 422, "validation").await;
        assert_eq!(body["errors"][0]["field"], "within_days");
    }
}

#[sqlx::test]
async fn a_products_lots_carry_what_is_on_hand_of_each(db: PgPool) {
    let f = fixture(db).await;
    let other = f.app.create_warehouse_sql("OTHER").await;
    let (p, w) = (f.product, f.warehouse);
    f.receive(
        json!({"product_id": p, "warehouse_id": w, "quantity": 7, "lot": "A1",
        "expires_on": "2031-03-01"}),
    )
    .await;
    f.receive(json!({"product_id": p, "warehouse_id": other, "quantity": 4, "lot": "A1"}))
        .await;
    f.receive(json!({"product_id": p, "warehouse_id": w, "quantity": 1, "lot": "B2"}))
        .await;
    f.issue(json!({"product_id": p, "warehouse_id": w, "quantity": 1, "lot": "B2"}))
        .await;

    let page = f
        .get(&format!("/api/v1/products/{p}/lots"), &f.viewer)
        .await;
    let lots: Vec<(&str, i64)> = items(&page)
        .iter()
        .map(|l| (l["code"].as_str().unwrap(), l["quantity"].as_i64().unwrap()))
        .collect();
    assert_eq!(lots, [("A1", 11), ("B2", 0)]);
    let page = f
        .get(
            &format!("/api/v1/products/{p}/lots?in_stock=true"),
            &f.viewer,
        )
        .await;
    assert_eq!(items(&page).len(), 1);

    let a1 = f.lot_id("A1").await;
    let lot = f.get(&format!("/api/v1/lots/{a1}"), &f.viewer).await;
    assert_eq!(lot["product_id"], p.to_string());
    assert_eq!(lot["code"], "A1");
    assert_eq!(lot["expires_on"], "2031-03-01");
    assert_eq!(lot["quantity"], 11);
    assert!(lot["created_at"].is_string());

    let resp = f
        .app
        .get_as(&format!("/api/v1/lots/{}", Uuid::new_v4()), &f.viewer)
        .await;
    assert_problem(resp, 404, "not-found").await;
    let resp = f
        .app
        .get_as(
            &format!("/api/v1/products/{}/lots", Uuid::new_v4()),
            &f.viewer,
        )
        .await;
    assert_problem(resp, 404, "not-found").await;
}

#[sqlx::test]
async fn a_lot_trace_follows_a_lot_split_over_two_warehouses(db: PgPool) {
    let f = fixture(db).await;
    let other = f.app.create_warehouse_sql("NORTH").await;
    let cold = f.location(other, "COLD-1").await;
    let (p, w) = (f.product, f.warehouse);
    f.receive(
        json!({"product_id": p, "warehouse_id": w, "quantity": 10, "lot": "RECALL-7",
        "expires_on": "2030-05-01", "reference": "PO-1"}),
    )
    .await;
    // Another lot of the same product must stay out of the report.
    f.receive(json!({"product_id": p, "warehouse_id": w, "quantity": 8, "lot": "FINE-1"}))
        .await;
    movements::transfer(
        &f.app.db,
        f.actor,
        json!({"product_id": p, "from_warehouse_id": w, "to_warehouse_id": other,
            "to_location_id": cold, "quantity": 4, "lot": "RECALL-7", "reference": "TR-1"}),
    )
    .await;
    f.issue(
        json!({"product_id": p, "warehouse_id": w, "quantity": 3, "lot": "RECALL-7",
        "reference": "SO-1"}),
    )
    .await;
    f.issue(
        json!({"product_id": p, "warehouse_id": other, "location_id": cold, "quantity": 1,
        "lot": "RECALL-7", "reference": "SO-2"}),
    )
    .await;

    let lot = f.lot_id("RECALL-7").await;
    let trace = f.get(&format!("/api/v1/lots/{lot}/trace"), &f.viewer).await;
    assert_eq!(trace["lot"]["code"], "RECALL-7");
    assert_eq!(trace["lot"]["quantity"], 6);
    assert_eq!(trace["sku"], "MILK-1");
    let movements: Vec<(String, String, i64, String)> = trace["movements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["kind"].as_str().unwrap().to_owned(),
                m["warehouse_code"].as_str().unwrap().to_owned(),
                m["quantity"].as_i64().unwrap(),
                m["reference"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let row = |k: &str, w: &str, q: i64, r: &str| (k.to_owned(), w.to_owned(), q, r.to_owned());
    // The two halves of the transfer share a timestamp; either may come first.
    let mut transfer = movements[1..3].to_vec();
    transfer.sort();
    assert_eq!(movements.len(), 5, "{trace}");
    assert_eq!(movements[0], row("receipt", "MAIN", 10, "PO-1"));
    assert_eq!(
        transfer,
        [
            row("transfer_in", "NORTH", 4, "TR-1"),
            row("transfer_out", "MAIN", -4, "TR-1")
        ]
    );
    assert_eq!(movements[3], row("issue", "MAIN", -3, "SO-1"));
    assert_eq!(movements[4], row("issue", "NORTH", -1, "SO-2"));
    let moves = trace["movements"].as_array().unwrap();
    assert_eq!(moves[1]["transfer_id"], moves[2]["transfer_id"]);
    assert!(moves[1]["transfer_id"].is_string());

    let mut remaining: Vec<(String, String, i64)> = trace["remaining"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["warehouse_code"].as_str().unwrap().to_owned(),
                r["location_path"].as_str().unwrap().to_owned(),
                r["quantity"].as_i64().unwrap(),
            )
        })
        .collect();
    remaining.sort();
    assert_eq!(
        remaining,
        [
            ("MAIN".to_owned(), "DEFAULT".to_owned(), 3),
            ("NORTH".to_owned(), "COLD-1".to_owned(), 3)
        ]
    );
}

#[sqlx::test]
async fn a_serial_number_is_found_where_it_is_with_its_history(db: PgPool) {
    let f = fixture(db).await;
    let bin = f.location(f.warehouse, "CAGE").await;
    let scanner: Uuid = sqlx::query_scalar(
        "INSERT INTO products (sku, name, tracking) VALUES ('SCAN-9', 'Scanner', 'serial') RETURNING id",
    )
    .fetch_one(&f.app.db)
    .await
    .unwrap();
    movements::receive(
        &f.app.db,
        f.actor,
        json!({"product_id": scanner, "warehouse_id": f.warehouse, "quantity": 2,
            "location_id": bin, "serials": ["SN-1", "SN-2"], "reference": "PO-9"}),
    )
    .await;
    movements::issue(
        &f.app.db,
        f.actor,
        json!({"product_id": scanner, "warehouse_id": f.warehouse, "quantity": 1,
            "location_id": bin, "serials": ["SN-1"], "reference": "SO-9"}),
    )
    .await;

    let sold = f
        .get(
            &format!("/api/v1/products/{scanner}/serials/SN-1"),
            &f.viewer,
        )
        .await;
    assert_eq!(sold["in_stock"], false);
    assert!(sold["location_id"].is_null() && sold["warehouse_id"].is_null());
    let history: Vec<(&str, i64, &str)> = sold["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["kind"].as_str().unwrap(),
                m["quantity"].as_i64().unwrap(),
                m["reference"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(history, [("receipt", 1, "PO-9"), ("issue", -1, "SO-9")]);

    let held = f
        .get(
            &format!("/api/v1/products/{scanner}/serials/SN-2"),
            &f.viewer,
        )
        .await;
    assert_eq!(held["in_stock"], true);
    assert_eq!(held["serial"], "SN-2");
    assert_eq!(held["warehouse_code"], "MAIN");
    assert_eq!(held["location_path"], "CAGE");
    assert_eq!(held["location_id"], bin.to_string());
    assert_eq!(held["history"].as_array().unwrap().len(), 1);

    for (product, serial) in [(scanner, "SN-3"), (f.product, "SN-2")] {
        let resp = f
            .app
            .get_as(
                &format!("/api/v1/products/{product}/serials/{serial}"),
                &f.viewer,
            )
            .await;
        assert_problem(resp, 404, "not-found").await;
    }
}

#[sqlx::test]
async fn positions_under_an_open_blind_count_are_hidden_from_viewers_but_not_managers(db: PgPool) {
    let f = fixture(db).await;
    let other = f.app.create_warehouse_sql("OTHER").await;
    let (p, w) = (f.product, f.warehouse);
    let soon = f.day(5).await;
    f.receive(
        json!({"product_id": p, "warehouse_id": w, "quantity": 6, "lot": "C1",
        "expires_on": soon}),
    )
    .await;
    f.receive(json!({"product_id": p, "warehouse_id": other, "quantity": 2, "lot": "C1"}))
        .await;
    sqlx::query("INSERT INTO count_sessions (warehouse_id, blind) VALUES ($1, true)")
        .bind(w)
        .execute(&f.app.db)
        .await
        .unwrap();
    let lot = f.lot_id("C1").await;

    let clerk = f.app.token("clerk").await;
    for (token, seen) in [(&f.viewer, 2), (&clerk, 2), (&f.manager, 8)] {
        let page = f.get("/api/v1/stock/positions", token).await;
        let total: i64 = items(&page)
            .iter()
            .map(|r| r["quantity"].as_i64().unwrap())
            .sum();
        assert_eq!(total, seen);
        let lot_body = f.get(&format!("/api/v1/lots/{lot}"), token).await;
        assert_eq!(lot_body["quantity"], seen);
        let trace = f.get(&format!("/api/v1/lots/{lot}/trace"), token).await;
        let remaining: i64 = trace["remaining"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["quantity"].as_i64().unwrap())
            .sum();
        assert_eq!(remaining, seen);
        let page = f.get(&format!("/api/v1/products/{p}/lots"), token).await;
        assert_eq!(items(&page)[0]["quantity"], seen);
        let expiring = f.get("/api/v1/stock/expiring", token).await;
        // The lot expires in both warehouses: one row each, the counted one hidden.
        assert_eq!(items(&expiring).len(), if seen == 8 { 2 } else { 1 });
    }
}

#[sqlx::test]
async fn tracking_defaults_to_none_and_cannot_change_while_stock_is_held(db: PgPool) {
    let f = fixture(db).await;
    let resp = f
        .app
        .post_as(
            "/api/v1/products",
            &f.manager,
            &json!({"sku": "BOLT-1", "name": "Bolt"}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let bolt: Value = resp.json().await.unwrap();
    assert_eq!(bolt["tracking"], "none");
    let id: Uuid = bolt["id"].as_str().unwrap().parse().unwrap();
    let resp = f
        .app
        .post_as(
            "/api/v1/products",
            &f.manager,
            &json!({"sku": "PILL-1", "name": "Pill", "tracking": "lot"}),
        )
        .await;
    assert_eq!(resp.json::<Value>().await.unwrap()["tracking"], "lot");
    let resp = f
        .app
        .post_as(
            "/api/v1/products",
            &f.manager,
            &json!({"sku": "PILL-2", "name": "Pill", "tracking": "batch"}),
        )
        .await;
    assert!(resp.status().is_client_error());

    // Without stock, tracking may change.
    let path = format!("/api/v1/products/{id}");
    let patch = |tracking: &str| {
        f.app
            .with_token(reqwest::Method::PATCH, &path, &f.manager)
            .json(&json!({"tracking": tracking}))
            .send()
    };
    let resp = patch("serial").await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["tracking"], "serial");
    assert_eq!(patch("none").await.unwrap().status(), 200);

    f.receive(json!({"product_id": id, "warehouse_id": f.warehouse, "quantity": 3}))
        .await;
    assert_problem(patch("lot").await.unwrap(), 409, "tracking-in-use").await;
    // Other changes, and sending the tracking it has, still work.
    let resp = f
        .app
        .patch_as(
            &format!("/api/v1/products/{id}"),
            &f.manager,
            &json!({"name": "Hex bolt", "tracking": "none"}),
        )
        .await;
    assert_eq!(resp.status(), 200);

    // The CSV carries tracking; an import may not change it under stock either,
    // and a file without the column leaves it alone.
    let csv = f
        .app
        .get_as("/api/v1/products/export.csv", &f.manager)
        .await
        .text()
        .await
        .unwrap();
    assert!(csv.lines().next().unwrap().ends_with(",tracking"), "{csv}");
    assert!(
        csv.contains("PILL-1,Pill,,,each,0.0000,0.0000,0,0,true,,lot"),
        "{csv}"
    );
    let import = |text: &'static str| {
        f.app
            .with_token(reqwest::Method::POST, "/api/v1/products/import", &f.manager)
            .header("content-type", "text/csv")
            .body(text)
            .send()
    };
    let resp = import("sku,name,tracking\nBOLT-1,Hex bolt,serial\n")
        .await
        .unwrap();
    assert_problem(resp, 409, "tracking-in-use").await;
    let resp = import("sku,name\nBOLT-1,Hex bolt\nPILL-1,Pill\n")
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let summary: Value = resp.json().await.unwrap();
    assert_eq!(summary["unchanged"], 2, "{summary}");
    let resp = import("sku,name,tracking\nPILL-1,Pill,serial\n")
        .await
        .unwrap();
    assert_eq!(resp.json::<Value>().await.unwrap()["updated"], 1);
    let tracking: String = sqlx::query_scalar("SELECT tracking FROM products WHERE sku = 'PILL-1'")
        .fetch_one(&f.app.db)
        .await
        .unwrap();
    assert_eq!(tracking, "serial");
}

#[sqlx::test]
async fn a_counts_lines_come_a_page_at_a_time_in_the_order_of_the_whole_listing(db: PgPool) {
    let f = fixture(db).await;
    let (p, w) = (f.product, f.warehouse);
    // Bins created out of order, lots received out of order: the listing
    // sorts by SKU, location path, then lot.
    for (bin, n) in [
        (f.location(w, "B-2").await, 3),
        (f.location(w, "B-1").await, 4),
    ] {
        for lot in ["L2", "L1"] {
            f.receive(json!({"product_id": p, "warehouse_id": w, "quantity": n,
                "location_id": bin, "lot": lot, "expires_on": "2030-01-31"}))
                .await;
        }
    }
    let other: Uuid = sqlx::query_scalar(
        "INSERT INTO products (sku, name) VALUES ('ALPHA-1', 'Alpha') RETURNING id",
    )
    .fetch_one(&f.app.db)
    .await
    .unwrap();
    f.receive(json!({"product_id": other, "warehouse_id": w, "quantity": 7}))
        .await;

    let resp = f
        .app
        .post_as(
            "/api/v1/counts",
            &f.manager,
            &json!({"warehouse_id": w, "include_lines": false}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let count: Value = resp.json().await.unwrap();
    assert_eq!(count["line_count"], 5, "{count}");
    let id = count["id"].as_str().unwrap();
    let whole = f.get(&format!("/api/v1/counts/{id}"), &f.viewer).await;
    let order: Vec<String> = whole["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| format!("{} {} {}", l["sku"], l["location_code"], l["lot"]))
        .collect();
    assert_eq!(
        order,
        [
            r#""ALPHA-1" "DEFAULT" null"#,
            r#""MILK-1" "B-1" "L1""#,
            r#""MILK-1" "B-1" "L2""#,
            r#""MILK-1" "B-2" "L1""#,
            r#""MILK-1" "B-2" "L2""#,
        ]
    );

    let mut paged = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = f
            .get(
                &format!("/api/v1/counts/{id}/lines?limit=2&cursor={cursor}"),
                &f.viewer,
            )
            .await;
        assert!(items(&page).len() <= 2);
        paged.extend(items(&page).iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break,
        }
    }
    assert_eq!(Value::Array(paged), whole["lines"]);

    let resp = f
        .app
        .get_as(
            &format!("/api/v1/counts/{id}/lines?cursor=nonsense"),
            &f.viewer,
        )
        .await;
    assert_problem(resp, 422, "validation").await;
    let resp = f
        .app
        .get_as(
            &format!("/api/v1/counts/{}/lines", Uuid::new_v4()),
            &f.viewer,
        )
        .await;
    assert_problem(resp, 404, "not-found").await;
}
