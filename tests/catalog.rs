//! Catalog: products, barcodes, categories, search, pagination, CSV.

mod common;

use std::collections::HashSet;

use common::{assert_problem, TestApp};
use inventory_api::catalog::barcode::gtin_check_digit;
use serde_json::{json, Value};
use sqlx::PgPool;

async fn manager(app: &TestApp) -> String {
    app.token("manager").await
}

async fn create_product(app: &TestApp, token: &str, body: Value) -> Value {
    let resp = app.post_as("/api/v1/products", token, &body).await;
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    resp.json().await.unwrap()
}

async fn product_count(db: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM products")
        .fetch_one(db)
        .await
        .unwrap()
}

#[sqlx::test]
async fn a_product_is_created_with_barcodes_money_and_an_etag(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let token = manager(&app).await;
    let resp = app
        .post_as(
            "/api/v1/products",
            &token,
            &json!({"sku": "BOLT-M8", "name": "Bolt M8", "unit_cost": "0.125", "price": 1,
                    "barcodes": [{"barcode": "4006381333931"}, {"barcode": "CASE-BOLT-M8", "pack_quantity": 12}]}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    assert_eq!(resp.headers()["etag"], "\"1\"");
    let p: Value = resp.json().await.unwrap();
    assert_eq!(p["unit_cost"], "0.1250");
    assert_eq!(p["price"], "1.0000");
    assert_eq!(p["unit"], "each");
    assert_eq!(p["active"], true);
    assert_eq!(p["barcodes"].as_array().unwrap().len(), 2);
    let outbox: i64 =
        sqlx::query_scalar("SELECT count(*) FROM outbox WHERE topic = 'product.created'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(outbox, 1);
}

#[sqlx::test]
async fn invalid_products_get_one_error_per_field_and_change_nothing(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let token = manager(&app).await;
    let resp = app
        .post_as(
            "/api/v1/products",
            &token,
            &json!({"sku": "bad sku!", "name": " ", "unit_cost": "-1", "price": "1.23456",
                    "reorder_point": -5, "barcodes": [{"barcode": "4006381333932"}, {"barcode": "X", "pack_quantity": 0}]}),
        )
        .await;
    let body = assert_problem(resp, 422, "validation").await;
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "sku",
            "name",
            "unit_cost",
            "price",
            "reorder_point",
            "barcodes[0].barcode",
            "barcodes[1].pack_quantity"
        ]
    );
    assert!(body["errors"][5]["message"]
        .as_str()
        .unwrap()
        .contains("check digit"));
    assert_eq!(product_count(&app.db).await, 0);
}

#[sqlx::test]
async fn duplicate_skus_and_barcodes_are_409_in_any_case_or_gtin_form(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let token = manager(&app).await;
    create_product(
        &app,
        &token,
        json!({"sku": "ABC-1", "name": "A", "barcodes": [{"barcode": "4006381333931"}]}),
    )
    .await;
    let resp = app
        .post_as(
            "/api/v1/products",
            &token,
            &json!({"sku": "abc-1", "name": "B"}),
        )
        .await;
    assert_problem(resp, 409, "sku-taken").await;
    // The same EAN-13 as a GTIN-14.
    let resp = app
        .post_as(
            "/api/v1/products",
            &token,
            &json!({"sku": "ABC-2", "name": "B", "barcodes": [{"barcode": "04006381333931"}]}),
        )
        .await;
    assert_problem(resp, 409, "barcode-taken").await;
    assert_eq!(
        product_count(&app.db).await,
        1,
        "the refused product was not half-created"
    );
}

#[sqlx::test]
async fn if_match_refuses_stale_writes_with_412(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let token = manager(&app).await;
    let p = create_product(&app, &token, json!({"sku": "X-1", "name": "Widget"})).await;
    let path = format!("/api/v1/products/{}", p["id"].as_str().unwrap());
    let etag = app.get_as(&path, &token).await.headers()["etag"]
        .to_str()
        .unwrap()
        .to_owned();

    // Clerk A saves with the ETag they read.
    let resp = app
        .with_token(reqwest::Method::PATCH, &path, &token)
        .header("if-match", &etag)
        .json(&json!({"name": "Widget v2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["etag"], "\"2\"");
    // Clerk B, holding the old ETag, is refused instead of overwriting.
    let resp = app
        .with_token(reqwest::Method::PATCH, &path, &token)
        .header("if-match", &etag)
        .json(&json!({"name": "Widget B"}))
        .send()
        .await
        .unwrap();
    assert_problem(resp, 412, "precondition-failed").await;
    let resp = app
        .with_token(reqwest::Method::DELETE, &path, &token)
        .header("if-match", &etag)
        .send()
        .await
        .unwrap();
    assert_problem(resp, 412, "precondition-failed").await;
    let now: Value = app.get_ok(&path, &token).await;
    assert_eq!(now["name"], "Widget v2");
    assert_eq!(now["active"], true);

    // Archive with the current ETag; the product stays readable.
    let resp = app
        .with_token(reqwest::Method::DELETE, &path, &token)
        .header("if-match", "\"2\"")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let now: Value = app.get_ok(&path, &token).await;
    assert_eq!(now["active"], false);
}

#[sqlx::test]
async fn barcode_lookup_normalises_gtin_forms_and_reports_pack_quantity(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let token = manager(&app).await;
    let p = create_product(
        &app,
        &token,
        json!({"sku": "MILK", "name": "Milk", "barcodes": [
            {"barcode": "4006381333931"}, {"barcode": "012345678905", "pack_quantity": 12}]}),
    )
    .await;
    for (scan, pack) in [
        ("4006381333931", 1),
        ("04006381333931", 1),
        ("012345678905", 12),
        ("0012345678905", 12),
        ("00012345678905", 12),
    ] {
        let resp = app
            .get_as(&format!("/api/v1/products/by-barcode/{scan}"), &token)
            .await;
        assert_eq!(resp.status(), 200, "{scan}");
        let found: Value = resp.json().await.unwrap();
        assert_eq!(found["product"]["id"], p["id"], "{scan}");
        assert_eq!(found["pack_quantity"], pack, "{scan}");
    }
    assert_problem(
        app.get_as("/api/v1/products/by-barcode/5901234123457", &token)
            .await,
        404,
        "not-found",
    )
    .await;
    assert_problem(
        app.get_as("/api/v1/products/by-barcode/4006381333932", &token)
            .await,
        422,
        "validation",
    )
    .await;
}

#[sqlx::test]
async fn cached_lookups_see_changes_at_once(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let token = manager(&app).await;
    let p = create_product(
        &app,
        &token,
        json!({"sku": "C-1", "name": "Before", "barcodes": [{"barcode": "CODE-C1"}]}),
    )
    .await;
    let lookup = || async {
        app.get_ok("/api/v1/products/by-barcode/CODE-C1", &token)
            .await
    };
    assert_eq!(lookup().await["product"]["name"], "Before");
    assert_eq!(lookup().await["product"]["name"], "Before"); // now cached
    let path = format!("/api/v1/products/{}", p["id"].as_str().unwrap());
    assert_eq!(
        app.patch_as(&path, &token, &json!({"name": "After"}))
            .await
            .status(),
        200
    );
    assert_eq!(lookup().await["product"]["name"], "After");
    // Removing the barcode removes the cached answer too.
    let resp = app
        .delete_as(&format!("{path}/barcodes/CODE-C1"), &token)
        .await;
    assert_eq!(resp.status(), 204);
    assert_eq!(
        app.get_as("/api/v1/products/by-barcode/CODE-C1", &token)
            .await
            .status(),
        404
    );
}

#[sqlx::test]
async fn search_finds_by_sku_name_and_barcode_case_insensitively(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let token = manager(&app).await;
    create_product(&app, &token, json!({"sku": "HAM-100", "name": "Claw hammer", "barcodes": [{"barcode": "5901234123457"}]})).await;
    create_product(
        &app,
        &token,
        json!({"sku": "SAW-200", "name": "Hand saw 50%"}),
    )
    .await;
    create_product(&app, &token, json!({"sku": "NAIL-300", "name": "Nails"})).await;
    for (q, expected) in [
        ("ham", vec!["HAM-100"]),
        ("CLAW", vec!["HAM-100"]),
        ("1234123", vec!["HAM-100"]),
        ("05901234123457", vec!["HAM-100"]),
        ("50%", vec!["SAW-200"]),
        ("a", vec!["HAM-100", "NAIL-300", "SAW-200"]),
        ("nothing-like-this", vec![]),
    ] {
        let page: Value = app
            .get_ok(&format!("/api/v1/products?q={}", urlencode(q)), &token)
            .await;
        assert_eq!(page_skus(&page), expected, "q={q}");
    }
}

/// The SKUs of one page of products, in order.
fn page_skus(page: &Value) -> Vec<&str> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["sku"].as_str().unwrap())
        .collect()
}

/// SKUs of every page of `GET /api/v1/products?{query}`, following the cursor.
async fn search_all_pages(app: &TestApp, token: &str, query: &str) -> Vec<String> {
    let mut skus = Vec::new();
    let mut cursor = String::new();
    loop {
        let page: Value = app
            .get_ok(&format!("/api/v1/products?{query}&limit=2{cursor}"), token)
            .await;
        skus.extend(page_skus(&page).into_iter().map(str::to_owned));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return skus,
        }
    }
}

#[sqlx::test]
async fn search_finds_sku_prefixes_and_infixes_in_sku_order_across_pages(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let token = manager(&app).await;
    for (sku, name) in [
        ("AB-200", "Widget"),
        ("ab-100", "Widget"),
        ("XAB-1", "Widget"),
        ("ZZ-9", "Tab-1 holder"),
        ("AC-1", "Widget"),
    ] {
        create_product(&app, &token, json!({"sku": sku, "name": name})).await;
    }
    for (q, expected) in [
        ("ab-", vec!["ab-100", "AB-200", "XAB-1", "ZZ-9"]),
        ("AB-100", vec!["ab-100"]),
        ("b-1", vec!["ab-100", "XAB-1", "ZZ-9"]),
        ("ab", vec!["ab-100", "AB-200", "XAB-1", "ZZ-9"]),
        ("widget", vec!["ab-100", "AB-200", "AC-1", "XAB-1"]),
        ("tab-1 h", vec!["ZZ-9"]),
        ("9 tab", vec!["ZZ-9"]),
        ("ab-1000", vec![]),
    ] {
        let skus = search_all_pages(&app, &token, &format!("q={}", urlencode(q))).await;
        assert_eq!(skus, expected, "q={q}");
    }
}

#[sqlx::test]
async fn search_finds_a_barcode_in_every_gtin_form(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let token = manager(&app).await;
    create_product(
        &app,
        &token,
        json!({"sku": "UPC", "name": "Upc", "barcodes": [{"barcode": "012345678905"}]}),
    )
    .await;
    create_product(
        &app,
        &token,
        json!({"sku": "EAN8", "name": "Ean", "barcodes": [{"barcode": "96385074"}]}),
    )
    .await;
    // Codes that hold those digits inside (not GTINs themselves).
    let packs: Value = app
        .post_ok("/api/v1/categories", &token, &json!({"name": "Packs"}))
        .await;
    let packs = packs["id"].as_str().unwrap().to_owned();
    create_product(
        &app,
        &token,
        json!({"sku": "WRAP", "name": "Wrapped", "category_id": packs,
               "barcodes": [{"barcode": "X012345678905Y"}, {"barcode": "PKG-4006381333931"}]}),
    )
    .await;
    // A complete GTIN that is a product's barcode finds that product alone.
    for (q, expected) in [
        ("012345678905", "UPC"),
        ("0012345678905", "UPC"),
        ("00012345678905", "UPC"),
        ("96385074", "EAN8"),
        ("00000096385074", "EAN8"),
    ] {
        let skus = search_all_pages(&app, &token, &format!("q={q}")).await;
        assert_eq!(skus, [expected], "q={q}");
    }
    // ... and only that product, even when the filters leave it out: the code
    // is not searched as a fragment of other products' codes then.
    let skus = search_all_pages(&app, &token, &format!("q=012345678905&category_id={packs}")).await;
    assert!(
        skus.is_empty(),
        "the UPC's code in another category found {skus:?}"
    );
    // A fragment, or a complete GTIN no product has, is searched as text.
    for (q, expected) in [
        ("2345678905", vec!["UPC", "WRAP"]),
        ("4006381333931", vec!["WRAP"]),
    ] {
        let skus = search_all_pages(&app, &token, &format!("q={q}")).await;
        assert_eq!(skus, expected, "q={q}");
    }
}

#[sqlx::test]
async fn search_combines_with_the_category_filter(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let token = manager(&app).await;
    let cat: Value = app
        .post_ok("/api/v1/categories", &token, &json!({"name": "Tools"}))
        .await;
    let id = cat["id"].as_str().unwrap();
    create_product(
        &app,
        &token,
        json!({"sku": "S-1", "name": "Steel bolt", "category_id": id}),
    )
    .await;
    create_product(&app, &token, json!({"sku": "S-2", "name": "Steel bolt"})).await;
    create_product(
        &app,
        &token,
        json!({"sku": "S-3", "name": "Steel nut", "category_id": id}),
    )
    .await;
    for (q, expected) in [
        ("steel", vec!["S-1", "S-3"]),
        ("s-", vec!["S-1", "S-3"]),
        ("bolt", vec!["S-1"]),
        ("st", vec!["S-1", "S-3"]),
    ] {
        let skus = search_all_pages(&app, &token, &format!("q={q}&category_id={id}")).await;
        assert_eq!(skus, expected, "q={q}");
    }
}

/// A term of several words is looked up by its words (the first may end a
/// word, the last start one, the others are whole words; a word may be part
/// of the SKU) and still means "contains": order, spans and pages as before.
#[sqlx::test]
async fn a_term_of_several_words_matches_by_word_exactly_as_contains_would(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let token = manager(&app).await;
    let cat: Value = app
        .post_ok("/api/v1/categories", &token, &json!({"name": "Hinges"}))
        .await;
    let id = cat["id"].as_str().unwrap();
    for (sku, name, category) in [
        ("H-1", "Copper hinge 12mm", true),
        ("H-2", "Copper hinges 12mm pack", false),
        ("H-3", "Hinge copper 12mm", true),
        ("ZZ-COPPER9", "Hinge 12mm", true),
        ("C-3", "Brass hinge 40mm", true),
        ("C-1", "Brass hinge 40mm", true),
        ("C-2", "Brass hinge 40mm", false),
        ("B-1", "Copper bolt 12mm", true),
    ] {
        let mut body = json!({"sku": sku, "name": name});
        if category {
            body["category_id"] = json!(id);
        }
        create_product(&app, &token, body).await;
    }
    // More tokens start with "b" than a word's set may hold: that word is
    // not looked up, the others and "contains" still decide.
    sqlx::query("INSERT INTO search_tokens SELECT 'bx' || i FROM generate_series(1, 70) i")
        .execute(&app.db)
        .await
        .unwrap();
    for (q, expected) in [
        ("copper hinge 12", vec!["H-1"]),
        ("opper hinges 1", vec!["H-2"]),
        ("copper hinge", vec!["H-1", "H-2"]),
        ("hinge copper 1", vec!["H-3"]),
        ("copper9 hinge 1", vec!["ZZ-COPPER9"]),
        ("-copper9 hinge 12mm", vec!["ZZ-COPPER9"]),
        ("brass hinge 4", vec!["C-1", "C-2", "C-3"]),
        ("copper b", vec!["B-1"]),
        ("hinge  copper", vec![]),
        // No product has "hingx": nothing contains the term, so it is
        // spell-corrected and searched once more.
        ("copper hingx 12", vec!["H-1"]),
        // No token starts with "hingx": the same, without reading products.
        ("copper hingx", vec!["H-1", "H-2"]),
    ] {
        let skus = search_all_pages(&app, &token, &format!("q={}", urlencode(q))).await;
        assert_eq!(skus, expected, "q={q}");
    }
    let skus = search_all_pages(
        &app,
        &token,
        &format!("q=brass%20hinge%204&category_id={id}"),
    )
    .await;
    assert_eq!(skus, ["C-1", "C-3"]);
}

/// Rows of `product_search_pairs` that differ from the pairs recomputed from
/// the catalog (either way).
async fn stale_pairs(db: &PgPool) -> i64 {
    sqlx::query_scalar(
        "WITH want AS (SELECT pr AS pair, lower(sku) AS k, id AS product_id, category_id
                       FROM products, unnest(search_pairs_of(search_text)) AS pr)
         SELECT count(*) FROM ((SELECT * FROM want EXCEPT SELECT * FROM product_search_pairs)
                  UNION ALL (SELECT * FROM product_search_pairs EXCEPT SELECT * FROM want)) d",
    )
    .fetch_one(db)
    .await
    .unwrap()
}

/// Terms of several words are looked up by their first two adjacent words
/// (`product_search_pairs`); the pairs follow every change of `search_text`:
/// a new name, a new category, a barcode with letters, a new SKU (the list
/// key), a deleted product.
#[sqlx::test]
async fn word_pairs_follow_every_change_of_a_product(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let token = manager(&app).await;
    let p = create_product(&app, &token, json!({"sku": "W-1", "name": "Walnut shelf"})).await;
    create_product(
        &app,
        &token,
        json!({"sku": "W-2", "name": "Walnut-shelf bracket"}),
    )
    .await;
    let id = p["id"].as_str().unwrap();
    let (a, t) = (&app, token.as_str());
    let find = move |q: &'static str| search_all_pages(a, t, q);
    assert_eq!(stale_pairs(&app.db).await, 0);
    // W-2 carries the pair too, but not the term: the LIKE decides.
    assert_eq!(find("q=walnut%20shelf").await, ["W-1"]);

    let resp = app
        .patch_as(
            &format!("/api/v1/products/{id}"),
            &token,
            &json!({"name": "Cherry shelf"}),
        )
        .await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    assert_eq!(stale_pairs(&app.db).await, 0);
    assert!(find("q=walnut%20shelf").await.is_empty());
    assert_eq!(find("q=cherry%20shelf").await, ["W-1"]);

    // The pairs carry the category, which a search within one reads from them.
    let cat: Value = app
        .post_ok("/api/v1/categories", &token, &json!({"name": "Shelves"}))
        .await;
    let cat = cat["id"].as_str().unwrap();
    let within = format!("q=cherry%20shelf&category_id={cat}");
    assert!(search_all_pages(a, t, &within).await.is_empty());
    let resp = app
        .patch_as(
            &format!("/api/v1/products/{id}"),
            &token,
            &json!({"category_id": cat}),
        )
        .await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    assert_eq!(stale_pairs(&app.db).await, 0);
    assert_eq!(search_all_pages(a, t, &within).await, ["W-1"]);

    // The name's last word and a barcode's first token are adjacent too.
    let resp = app
        .post_as(
            &format!("/api/v1/products/{id}/barcodes"),
            &token,
            &json!({"barcode": "ZQ-77"}),
        )
        .await;
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    assert_eq!(stale_pairs(&app.db).await, 0);
    assert_eq!(find("q=shelf%20zq").await, ["W-1"]);

    sqlx::query("UPDATE products SET sku = 'A-9' WHERE id = $1::uuid")
        .bind(id)
        .execute(&app.db)
        .await
        .unwrap();
    assert_eq!(stale_pairs(&app.db).await, 0);
    assert_eq!(find("q=cherry%20shelf").await, ["A-9"]);

    sqlx::query("DELETE FROM product_barcodes WHERE product_id = $1::uuid")
        .bind(id)
        .execute(&app.db)
        .await
        .unwrap();
    sqlx::query("DELETE FROM products WHERE id = $1::uuid")
        .bind(id)
        .execute(&app.db)
        .await
        .unwrap();
    assert_eq!(stale_pairs(&app.db).await, 0);
    assert!(find("q=cherry%20shelf").await.is_empty());
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM product_search_pairs")
        .fetch_one(&app.db)
        .await
        .unwrap();
    // W-2's "walnut shelf" and "shelf bracket".
    assert_eq!(left, 2);
}

/// A phrase so common that its words have more candidates than are sorted
/// at once is answered from the list order instead; the page is still the
/// first in SKU order (the rows are stored in reverse SKU order, so a page
/// sorted from an arbitrary part of the candidates would start elsewhere).
#[sqlx::test]
async fn a_common_phrase_is_paged_in_sku_order(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let token = manager(&app).await;
    sqlx::query(
        "INSERT INTO products (sku, name)
         SELECT 'CP-' || lpad(i::text, 5, '0'), 'Common phrase' FROM generate_series(5002, 1, -1) i",
    )
    .execute(&app.db)
    .await
    .unwrap();
    let page: Value = app
        .get_ok("/api/v1/products?q=common%20phrase&limit=3", &token)
        .await;
    assert_eq!(page_skus(&page), ["CP-00001", "CP-00002", "CP-00003"]);
    let cursor = page["next_cursor"].as_str().unwrap();
    let next: Value = app
        .get_ok(
            &format!("/api/v1/products?q=mmon%20phr&limit=2&cursor={cursor}"),
            &token,
        )
        .await;
    assert_eq!(next["items"][0]["sku"], "CP-00004", "{next}");
}

/// A word no token of the catalog contains finds nothing without reading
/// products; every word inside a token (of a name, a SKU, or a barcode added
/// later) is still found.
#[sqlx::test]
async fn a_word_inside_no_token_finds_nothing_and_every_other_word_is_found(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let token = manager(&app).await;
    let product = create_product(&app, &token, json!({"sku": "QX-1", "name": "Gasket ring"})).await;
    let id = product["id"].as_str().unwrap();
    let resp = app
        .post_as(
            &format!("/api/v1/products/{id}/barcodes"),
            &token,
            &json!({"barcode": "ZR77KT"}),
        )
        .await;
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    for (q, expected) in [
        ("asket", vec!["QX-1"]),
        ("qx", vec!["QX-1"]),
        ("r77k", vec!["QX-1"]),
        ("zr77kt", vec!["QX-1"]),
        ("ring", vec!["QX-1"]),
        ("qqqq", vec![]),
        ("kt9", vec![]),
    ] {
        let skus = search_all_pages(&app, &token, &format!("q={q}")).await;
        assert_eq!(skus, expected, "q={q}");
    }
}

/// A term under 3 characters walks the list order with every filter inside
/// the walk (the below-reorder sum, the blind-count check of a clerk, the
/// category, the cursor); pages still come in SKU order.
#[sqlx::test]
async fn a_short_term_walk_keeps_sku_order_with_every_filter(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let token = manager(&app).await;
    let cat: Value = app
        .post_ok("/api/v1/categories", &token, &json!({"name": "Tools"}))
        .await;
    let id = cat["id"].as_str().unwrap();
    for (sku, point, category) in [
        ("LO-4", 5, true),
        ("LO-1", 5, true),
        ("LO-3", 0, true),
        ("LO-2", 5, true),
        ("LO-5", 5, false),
        ("LO-0", 5, true),
    ] {
        let mut body = json!({"sku": sku, "name": "Bolt", "reorder_point": point});
        if category {
            body["category_id"] = json!(id);
        }
        create_product(&app, &token, body).await;
    }
    let clerk = app.token("clerk").await;
    let skus = search_all_pages(
        &app,
        &clerk,
        &format!("q=lo&category_id={id}&below_reorder=true&active=true"),
    )
    .await;
    assert_eq!(skus, ["LO-0", "LO-1", "LO-2", "LO-4"]);
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[sqlx::test]
async fn filters_by_category_active_and_below_reorder(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let token = manager(&app).await;
    let cat: Value = app
        .post_ok("/api/v1/categories", &token, &json!({"name": "Tools"}))
        .await;
    let low = create_product(
        &app,
        &token,
        json!({"sku": "LOW", "name": "Low", "reorder_point": 5, "category_id": cat["id"]}),
    )
    .await;
    create_product(
        &app,
        &token,
        json!({"sku": "NOPOINT", "name": "No reorder point"}),
    )
    .await;
    let archived = create_product(&app, &token, json!({"sku": "OLD", "name": "Old"})).await;
    app.delete_as(
        &format!("/api/v1/products/{}", archived["id"].as_str().unwrap()),
        &token,
    )
    .await;
    let skus = |v: Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["sku"].as_str().unwrap().to_owned())
            .collect()
    };
    let by_cat = app
        .get_as(
            &format!(
                "/api/v1/products?category_id={}",
                cat["id"].as_str().unwrap()
            ),
            &token,
        )
        .await;
    assert_eq!(skus(by_cat.json().await.unwrap()), ["LOW"]);
    let active = app.get_as("/api/v1/products?active=false", &token).await;
    assert_eq!(skus(active.json().await.unwrap()), ["OLD"]);
    let below = app
        .get_as("/api/v1/products?below_reorder=true", &token)
        .await;
    assert_eq!(skus(below.json().await.unwrap()), ["LOW"]);
    // With stock above the reorder point it is no longer low.
    let wh = app.create_warehouse_sql("W1").await;
    sqlx::query("INSERT INTO stock_levels (product_id, warehouse_id, quantity) VALUES ($1, $2, 6)")
        .bind(uuid::Uuid::parse_str(low["id"].as_str().unwrap()).unwrap())
        .bind(wh)
        .execute(&app.db)
        .await
        .unwrap();
    let below = app
        .get_as("/api/v1/products?below_reorder=true", &token)
        .await;
    assert!(skus(below.json().await.unwrap()).is_empty());
    assert_problem(
        app.get_as("/api/v1/products?limit=501", &token).await,
        422,
        "validation",
    )
    .await;
    assert_problem(
        app.get_as("/api/v1/products?cursor=garbage", &token).await,
        422,
        "validation",
    )
    .await;
}

#[sqlx::test]
async fn pagination_walks_every_row_once_while_rows_are_inserted(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let token = manager(&app).await;
    // Bulk-load the starting rows directly; the API path is covered elsewhere.
    sqlx::query("INSERT INTO products (sku, name) SELECT 'P-' || lpad(i::text, 4, '0'), 'Product ' || i FROM generate_series(1, 300) i")
        .execute(&app.db)
        .await
        .unwrap();
    let original: HashSet<String> = (1..=300).map(|i| format!("P-{i:04}")).collect();

    let writer_db = app.db.clone();
    let writer = tokio::spawn(async move {
        // Interleaved SKUs land before and after the reader's position.
        for i in 1..=100 {
            sqlx::query("INSERT INTO products (sku, name) VALUES ($1, 'new')")
                .bind(format!("P-{:04}-N", i * 3))
                .execute(&writer_db)
                .await
                .unwrap();
            tokio::task::yield_now().await;
        }
    });

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/products?limit=7&cursor={c}"),
            None => "/api/v1/products?limit=7".to_owned(),
        };
        let page: Value = app.get_ok(&path, &token).await;
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["sku"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    writer.await.unwrap();
    let unique: HashSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "no row twice");
    assert!(
        original.is_subset(&unique),
        "every row that existed throughout was seen"
    );
    let mut sorted = seen.clone();
    sorted.sort_by_key(|s| s.to_lowercase());
    assert_eq!(sorted, seen, "stable order");
}

async fn export(app: &TestApp, token: &str) -> String {
    let resp = app.get_as("/api/v1/products/export.csv", token).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/csv");
    resp.text().await.unwrap()
}

async fn import(app: &TestApp, token: &str, csv: &str) -> reqwest::Response {
    app.with_token(reqwest::Method::POST, "/api/v1/products/import", token)
        .header("content-type", "text/csv")
        .body(csv.to_owned())
        .send()
        .await
        .unwrap()
}

#[sqlx::test]
async fn csv_export_then_import_changes_nothing(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let token = manager(&app).await;
    let cat: Value = app
        .post_ok("/api/v1/categories", &token, &json!({"name": "Tools"}))
        .await;
    create_product(&app, &token, json!({"sku": "A-1", "name": "Alpha, with comma", "description": "line one\nline \"two\"",
        "unit_cost": "12.5", "price": "20", "reorder_point": 3, "reorder_quantity": 10, "category_id": cat["id"],
        "barcodes": [{"barcode": "4006381333931"}, {"barcode": "CASE-A", "pack_quantity": 6}]})).await;
    create_product(
        &app,
        &token,
        json!({"sku": "B-2", "name": "Beta", "unit": "kg"}),
    )
    .await;
    let before: Vec<(String, i32)> =
        sqlx::query_as("SELECT sku, version FROM products ORDER BY sku")
            .fetch_all(&app.db)
            .await
            .unwrap();

    let csv = export(&app, &token).await;
    assert!(csv.starts_with("sku,name,description,category_id,unit,unit_cost,price,reorder_point,reorder_quantity,active,barcodes,tracking\n"));
    let resp = import(&app, &token, &csv).await;
    assert_eq!(resp.status(), 200);
    let summary: Value = resp.json().await.unwrap();
    assert_eq!(summary, json!({"created": 0, "updated": 0, "unchanged": 2}));
    let after: Vec<(String, i32)> =
        sqlx::query_as("SELECT sku, version FROM products ORDER BY sku")
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert_eq!(before, after);
    assert_eq!(
        export(&app, &token).await,
        csv,
        "byte-identical second export"
    );
}

#[sqlx::test]
async fn csv_export_neutralizes_formulas_and_imports_them_back_unchanged(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let token = manager(&app).await;
    create_product(
        &app,
        &token,
        json!({"sku": "F-1", "name": "=HYPERLINK(\"http://x\",\"y\")",
        "description": "@SUM(A1:A2)", "barcodes": [{"barcode": "-CASE"}]}),
    )
    .await;
    create_product(
        &app,
        &token,
        json!({"sku": "F-2", "name": "+1 and '=quoted", "unit": "'=kg"}),
    )
    .await;
    let csv = export(&app, &token).await;
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    for record in reader.records() {
        for cell in record.unwrap().iter() {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "cell {cell:?} would run as a formula"
            );
        }
    }
    assert!(csv.contains("'=HYPERLINK"), "{csv}");
    assert!(csv.contains("''=kg"), "{csv}");
    let resp = import(&app, &token, &csv).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"created": 0, "updated": 0, "unchanged": 2})
    );
    let name: String = sqlx::query_scalar("SELECT name FROM products WHERE sku = 'F-1'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(name, "=HYPERLINK(\"http://x\",\"y\")");
}

#[sqlx::test]
async fn csv_import_creates_and_updates_by_sku(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let token = manager(&app).await;
    create_product(&app, &token, json!({"sku": "A-1", "name": "Old name"})).await;
    let csv = "sku,name,price,barcodes\na-1,New name,3.50,\nC-3,Gamma,1,5901234123457|BOX-C:10\n";
    let resp = import(&app, &token, csv).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"created": 1, "updated": 1, "unchanged": 0})
    );
    let found: Value = app
        .get_ok("/api/v1/products/by-barcode/BOX-C", &token)
        .await;
    assert_eq!(found["product"]["sku"], "C-3");
    assert_eq!(found["pack_quantity"], 10);
    let page: Value = app.get_ok("/api/v1/products?q=A-1", &token).await;
    assert_eq!(page["items"][0]["name"], "New name");
    assert_eq!(page["items"][0]["price"], "3.5000");
}

#[sqlx::test]
async fn a_bad_csv_row_leaves_the_database_untouched(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let token = manager(&app).await;
    create_product(
        &app,
        &token,
        json!({"sku": "A-1", "name": "Keep me", "barcodes": [{"barcode": "OWNED"}]}),
    )
    .await;
    let csv = "sku,name,price,barcodes\nA-1,Changed,1,\nB-2,Fine,2,\nbad sku,Oops,-3,4006381333932\nD-4,Thief,1,OWNED\n";
    let resp = import(&app, &token, csv).await;
    let body = assert_problem(resp, 422, "validation").await;
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        ["row 4: sku", "row 4: price", "row 4: barcodes[0].barcode"]
    );
    // The ownership check runs once the rows themselves are valid.
    let resp = import(
        &app,
        &token,
        "sku,name,barcodes\nA-1,Changed,\nD-4,Thief,OWNED\n",
    )
    .await;
    let body = assert_problem(resp, 422, "validation").await;
    assert_eq!(body["errors"][0]["field"], "row 3: barcodes");
    assert_eq!(product_count(&app.db).await, 1);
    let name: String = sqlx::query_scalar("SELECT name FROM products")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(name, "Keep me");
    // Unknown columns and a missing header are refused too.
    assert_problem(
        import(&app, &token, "sku,colour\nX,red\n").await,
        422,
        "validation",
    )
    .await;
    let resp = app
        .with_token(reqwest::Method::POST, "/api/v1/products/import", &token)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 415);
}

/// `body` followed by its GS1 check digit.
fn with_check_digit(body: &str) -> String {
    format!("{body}{}", gtin_check_digit(body))
}

/// A CSV of `n` products BULK-00001.. with an EAN-13 each, over 1 MiB for
/// n = 12,000 (more than `MAX_BODY_BYTES` in tests, several COPY chunks).
fn bulk_csv(n: usize, category: &str) -> String {
    let mut csv = String::from("sku,name,description,category_id,price,barcodes\n");
    for i in 1..=n {
        let ean = with_check_digit(&format!("21{i:010}"));
        csv.push_str(&format!(
            "BULK-{i:05},Bulk item {i},\"A longer description, so the file is large: {i}\",{category},{}.50,{ean}\n",
            i % 90
        ));
    }
    csv
}

#[sqlx::test]
async fn a_large_csv_import_is_all_or_nothing_and_emits_one_event_per_product(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let token = manager(&app).await;
    let cat: Value = app
        .post_ok("/api/v1/categories", &token, &json!({"name": "Bulk"}))
        .await;
    let category = cat["id"].as_str().unwrap();
    let csv = bulk_csv(12_000, category);
    assert!(csv.len() > 1024 * 1024, "over MAX_BODY_BYTES of the tests");
    // Other endpoints keep MAX_BODY_BYTES.
    let big_json = json!({"sku": "BIG", "name": "x".repeat(csv.len())});
    assert_eq!(
        app.post_as("/api/v1/products", &token, &big_json)
            .await
            .status(),
        413
    );

    // A bad line only the database finds (the last row's category), and a
    // duplicate SKU far from its first: refused, per line, nothing written.
    let unknown = uuid::Uuid::new_v4().to_string();
    let mut bad = csv.replace(
        &format!(
            "Bulk item 12000,\"A longer description, so the file is large: 12000\",{category}"
        ),
        &format!("Bulk item 12000,\"A longer description, so the file is large: 12000\",{unknown}"),
    );
    assert_ne!(bad, csv);
    let body = assert_problem(import(&app, &token, &bad).await, 422, "validation").await;
    assert_eq!(body["errors"][0]["field"], "row 12001: category_id");
    assert_eq!(body["errors"].as_array().unwrap().len(), 1);
    bad = csv.clone();
    bad.push_str("bulk-00007,Again,,,1,\n");
    let body = assert_problem(import(&app, &token, &bad).await, 422, "validation").await;
    assert_eq!(body["errors"][0]["field"], "row 12002: sku");
    assert_eq!(body["errors"][0]["message"], "bulk-00007 is also on row 8");
    assert_eq!(product_count(&app.db).await, 0);

    let resp = import(&app, &token, &csv).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"created": 12_000, "updated": 0, "unchanged": 0})
    );
    let events: Vec<(String, String)> = sqlx::query_as(
        "SELECT o.topic, p.sku FROM outbox o JOIN products p ON p.id = o.aggregate_id
         WHERE o.topic LIKE 'product.%' ORDER BY o.id",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(events.len(), 12_000);
    assert_eq!(events[0], ("product.created".into(), "BULK-00001".into()));
    assert_eq!(events[11_999].1, "BULK-12000");
    let payload: Value = sqlx::query_scalar(
        "SELECT payload FROM outbox o JOIN products p ON p.id = o.aggregate_id
         WHERE p.sku = 'BULK-00042'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(
        payload["barcodes"][0]["barcode"],
        with_check_digit("210000000042")
    );
    assert_eq!(payload["category_id"], category);
    let found: Value = app
        .get_ok(
            &format!(
                "/api/v1/products/by-barcode/{}",
                with_check_digit("210000011999")
            ),
            &token,
        )
        .await;
    assert_eq!(found["product"]["sku"], "BULK-11999");
    assert_eq!(found["product"]["price"], format!("{}.5000", 11_999 % 90));

    // One row changed (its name and its barcode), the rest as stored.
    let changed = csv
        .replace("BULK-00500,Bulk item 500,", "BULK-00500,Renamed,")
        .replace(
            &with_check_digit("210000000500"),
            &with_check_digit("219999999999"),
        );
    let resp = import(&app, &token, &changed).await;
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"created": 0, "updated": 1, "unchanged": 11_999})
    );
    let versions: Vec<(String, i32)> =
        sqlx::query_as("SELECT sku, version FROM products WHERE version <> 1")
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert_eq!(versions, [("BULK-00500".to_owned(), 2)]);
    let found = app
        .get_as(
            &format!(
                "/api/v1/products/by-barcode/{}",
                with_check_digit("219999999999")
            ),
            &token,
        )
        .await;
    assert_eq!(
        found.json::<Value>().await.unwrap()["product"]["name"],
        "Renamed"
    );
    assert_eq!(
        app.get_as(
            &format!(
                "/api/v1/products/by-barcode/{}",
                with_check_digit("210000000500")
            ),
            &token,
        )
        .await
        .status(),
        404
    );
}

#[sqlx::test]
async fn product_events_built_in_sql_equal_the_serde_form(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let token = manager(&app).await;
    let cat: Value = app
        .post_ok("/api/v1/categories", &token, &json!({"name": "Tools"}))
        .await;
    for body in [
        json!({"sku": "EV-1", "name": "Event \"one\"", "description": "two\nlines", "unit_cost": "0.125",
               "price": "12", "category_id": cat["id"], "reorder_point": 3, "reorder_quantity": 7,
               "barcodes": [{"barcode": "4006381333931"}, {"barcode": "CASE-EV", "pack_quantity": 6}]}),
        json!({"sku": "EV-2", "name": "Bare"}),
    ] {
        let product = create_product(&app, &token, body).await;
        // The serde form, as POST /api/v1/products emitted it.
        let emitted: Value = sqlx::query_scalar(
            "SELECT payload FROM outbox WHERE topic = 'product.created' AND aggregate_id = $1::uuid",
        )
        .bind(product["id"].as_str().unwrap())
        .fetch_one(&app.db)
        .await
        .unwrap();
        let built: Value = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM products p WHERE p.id = $1::uuid",
            inventory_api::catalog::repo::PRODUCT_EVENT_JSON
        )))
        .bind(product["id"].as_str().unwrap())
        .fetch_one(&app.db)
        .await
        .unwrap();
        assert_eq!(built, emitted);
    }
}

#[sqlx::test]
async fn categories_are_a_tree_with_unique_sibling_names(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let token = manager(&app).await;
    let tools: Value = app
        .post_ok("/api/v1/categories", &token, &json!({"name": "Tools"}))
        .await;
    let tid = tools["id"].as_str().unwrap();
    let hand: Value = app
        .post_ok(
            "/api/v1/categories",
            &token,
            &json!({"name": "Hand tools", "parent_id": tid}),
        )
        .await;
    assert_problem(
        app.post_as("/api/v1/categories", &token, &json!({"name": "tools"}))
            .await,
        409,
        "category-name-taken",
    )
    .await;
    // The same name under another parent is fine.
    assert_eq!(
        app.post_as(
            "/api/v1/categories",
            &token,
            &json!({"name": "Tools", "parent_id": hand["id"]})
        )
        .await
        .status(),
        201
    );
    // Moving Tools under its own child would make a cycle.
    let resp = app
        .patch_as(
            &format!("/api/v1/categories/{tid}"),
            &token,
            &json!({"parent_id": hand["id"]}),
        )
        .await;
    let body = assert_problem(resp, 422, "validation").await;
    assert_eq!(body["errors"][0]["field"], "parent_id");
    // A category in use cannot be deleted; the detail says how much uses it.
    create_product(
        &app,
        &token,
        json!({"sku": "T-1", "name": "Hammer", "category_id": tid}),
    )
    .await;
    let body = assert_problem(
        app.delete_as(&format!("/api/v1/categories/{tid}"), &token)
            .await,
        409,
        "category-in-use",
    )
    .await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("1 product(s) and 1 subcategory"),
        "{body}"
    );
    assert_problem(
        app.post_as(
            "/api/v1/products",
            &token,
            &json!({"sku": "T-2", "name": "x", "category_id": uuid::Uuid::new_v4()}),
        )
        .await,
        422,
        "validation",
    )
    .await;
}

#[sqlx::test]
async fn warehouses_have_unique_codes_etags_and_refuse_deactivation_with_stock(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let token = manager(&app).await;
    let resp = app
        .post_as(
            "/api/v1/warehouses",
            &token,
            &json!({"code": "WH-01", "name": "Main", "address": "1 Dock Rd"}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    assert_eq!(resp.headers()["etag"], "\"1\"");
    let wh: Value = resp.json().await.unwrap();
    let path = format!("/api/v1/warehouses/{}", wh["id"].as_str().unwrap());
    assert_problem(
        app.post_as(
            "/api/v1/warehouses",
            &token,
            &json!({"code": "wh-01", "name": "Dup"}),
        )
        .await,
        409,
        "code-taken",
    )
    .await;
    assert_problem(
        app.post_as(
            "/api/v1/warehouses",
            &token,
            &json!({"code": "", "name": ""}),
        )
        .await,
        422,
        "validation",
    )
    .await;

    let resp = app
        .with_token(reqwest::Method::PATCH, &path, &token)
        .header("if-match", "\"7\"")
        .json(&json!({"name": "X"}))
        .send()
        .await
        .unwrap();
    assert_problem(resp, 412, "precondition-failed").await;
    let resp = app
        .with_token(reqwest::Method::PATCH, &path, &token)
        .header("if-match", "\"1\"")
        .json(&json!({"name": "Main hall"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["etag"], "\"2\"");

    let product: uuid::Uuid =
        sqlx::query_scalar("INSERT INTO products (sku, name) VALUES ('S', 'S') RETURNING id")
            .fetch_one(&app.db)
            .await
            .unwrap();
    sqlx::query("INSERT INTO stock_levels (product_id, warehouse_id, quantity) VALUES ($1, $2, 4)")
        .bind(product)
        .bind(uuid::Uuid::parse_str(wh["id"].as_str().unwrap()).unwrap())
        .execute(&app.db)
        .await
        .unwrap();
    let body = assert_problem(
        app.delete_as(&path, &token).await,
        409,
        "warehouse-not-empty",
    )
    .await;
    assert!(body["detail"].as_str().unwrap().contains("4 units"));
    sqlx::query("UPDATE stock_levels SET quantity = 0")
        .execute(&app.db)
        .await
        .unwrap();
    assert_eq!(app.delete_as(&path, &token).await.status(), 204);
    let now: Value = app.get_ok(&path, &token).await;
    assert_eq!(now["active"], false);
    let list: Value = app.get_ok("/api/v1/warehouses?active=true", &token).await;
    assert!(list["items"].as_array().unwrap().is_empty());
}

#[sqlx::test]
async fn creating_with_an_idempotency_key_twice_creates_once(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let token = manager(&app).await;
    let send = |path: &'static str, key: &'static str, body: Value| {
        app.with_token(reqwest::Method::POST, path, &token)
            .header("idempotency-key", key)
            .json(&body)
            .send()
    };
    let body = json!({"sku": "IDEM-1", "name": "Once"});
    let first = send("/api/v1/products", "k1", body.clone()).await.unwrap();
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    // The retry answers the first 201 (not a 409 sku-taken) and creates nothing.
    let again = send("/api/v1/products", "k1", body).await.unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["etag"], "\"1\"");
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    assert_eq!(product_count(&app.db).await, 1);
    let other = send(
        "/api/v1/products",
        "k1",
        json!({"sku": "IDEM-2", "name": "Other"}),
    )
    .await
    .unwrap();
    assert_problem(other, 422, "idempotency-key-reused").await;

    let wh = json!({"code": "IDEM-W", "name": "Once"});
    let a: Value = send("/api/v1/warehouses", "k2", wh.clone())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let b = send("/api/v1/warehouses", "k2", wh).await.unwrap();
    assert_eq!(b.status(), 201);
    assert_eq!(b.json::<Value>().await.unwrap()["id"], a["id"]);
}

/// Index pages the SKU-infix trigram index reads to find that no SKU
/// contains "qeed" (the index, not the table: a bitmap scan, seq scans off).
async fn sku_infix_pages(db: &PgPool) -> i64 {
    let mut tx = db.begin().await.unwrap();
    sqlx::raw_sql("SET LOCAL enable_seqscan = off")
        .execute(&mut *tx)
        .await
        .unwrap();
    let plan: Value = sqlx::query_scalar(
        "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)
         SELECT count(*) FROM products p WHERE substr(lower(p.sku), 2) LIKE '%qeed%'",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    fn index_scan(node: &Value) -> Option<&Value> {
        if node["Index Name"] == "products_sku_infix_trgm_idx" {
            return Some(node);
        }
        node["Plans"].as_array()?.iter().find_map(index_scan)
    }
    let scan = index_scan(&plan[0]["Plan"]).expect("the plan reads products_sku_infix_trgm_idx");
    scan["Shared Hit Blocks"].as_i64().unwrap() + scan["Shared Read Blocks"].as_i64().unwrap()
}

#[sqlx::test]
async fn reindex_search_restores_the_trigram_short_cut_that_vacuum_broke(db: PgPool) {
    use inventory_api::catalog::search_indexes;
    // 50,000 SKUs sharing "eed-" after their first letter: "eed" is in every
    // entry of the SKU-infix index, "qee" in none, so GIN can rule every row
    // out from "qee" alone, when it knows which of the two is rarer.
    sqlx::query(
        "INSERT INTO products (sku, name, unit_cost)
         SELECT format('SEED-%s', lpad(i::text, 8, '0')), 'Widget', 1 FROM generate_series(1, 50000) i",
    )
    .execute(&db)
    .await
    .unwrap();
    sqlx::raw_sql("VACUUM products").execute(&db).await.unwrap();
    let fresh = sku_infix_pages(&db).await;
    // The oldest 30,000 rewritten (the name is indexed, so not in place) and
    // vacuumed, as products edited in bulk are (and, before repo::insert
    // wrote barcodes first, every product created with barcodes): the first
    // leaf page of "eed"'s posting tree is emptied but kept.
    sqlx::query("UPDATE products SET name = 'Gadget' WHERE sku < 'SEED-00030001'")
        .execute(&db)
        .await
        .unwrap();
    sqlx::raw_sql("VACUUM products").execute(&db).await.unwrap();
    let vacuumed = sku_infix_pages(&db).await;
    assert!(
        vacuumed > fresh,
        "the set-up reproduces the misestimate: {vacuumed} pages read after VACUUM, {fresh} before"
    );

    let indexes = search_indexes::list(&db).await.unwrap();
    assert!(
        indexes.contains(&"products_sku_infix_trgm_idx".to_owned()),
        "{indexes:?}"
    );
    for index in &indexes {
        search_indexes::rebuild(&db, index).await.unwrap();
    }
    assert_eq!(
        search_indexes::list(&db).await.unwrap(),
        indexes,
        "the same indexes, none left behind"
    );
    let invalid: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_index WHERE NOT indisvalid")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(invalid, 0);
    let rebuilt = sku_infix_pages(&db).await;
    assert!(
        rebuilt <= fresh,
        "rebuilt: {rebuilt} pages read, {fresh} when fresh, {vacuumed} after VACUUM"
    );

    // And search still answers from them.
    let app = TestApp::spawn(db).await;
    let token = manager(&app).await;
    let page: Value = app.get_ok("/api/v1/products?q=seed-00012345", &token).await;
    assert_eq!(page_skus(&page), ["SEED-00012345"]);
}

/// Inserts and updates of `products` counted so far: by this transaction
/// (`pg_stat_xact_user_tables`), so nothing else can add to them.
async fn products_written_in(tx: &mut sqlx::PgConnection) -> (i64, i64) {
    sqlx::query_as(
        "SELECT n_tup_ins, n_tup_upd FROM pg_stat_xact_user_tables WHERE relname = 'products'",
    )
    .fetch_one(tx)
    .await
    .unwrap()
}

#[sqlx::test]
async fn a_product_created_with_barcodes_is_written_once(db: PgPool) {
    use inventory_api::catalog::{barcode, model::ProductFields, model::Tracking, repo};
    // A second version of every new product (its barcodes' trigger rewriting
    // search_text) is what later misleads GIN once VACUUM has removed the
    // first ones (the test above); the API's create must not leave one.
    let fields = ProductFields {
        sku: "ONCE-1".into(),
        name: "Written once".into(),
        description: String::new(),
        category_id: None,
        unit: "pcs".into(),
        unit_cost: 1.into(),
        price: 2.into(),
        reorder_point: 0,
        reorder_quantity: 0,
    };
    let ean = format!("400638133393{}", gtin_check_digit("400638133393"));
    let barcodes = [
        (barcode::parse(&ean).unwrap(), 1),
        (barcode::parse("ONCE-CODE").unwrap(), 6),
    ];
    let mut tx = db.begin().await.unwrap();
    let row = repo::insert(&mut tx, &fields, Tracking::None, &barcodes)
        .await
        .unwrap();
    assert_eq!(
        products_written_in(&mut tx).await,
        (1, 0),
        "one insert, no update"
    );
    let search_text: String = sqlx::query_scalar("SELECT search_text FROM products WHERE id = $1")
        .bind(row.id)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert!(
        search_text.contains(&ean) && search_text.contains("once-code"),
        "the barcodes are in the one version: {search_text}"
    );
    tx.commit().await.unwrap();

    // The foreign key is checked per statement again afterwards.
    let mut tx = db.begin().await.unwrap();
    let orphan = sqlx::query(
        "INSERT INTO product_barcodes (lookup_key, barcode, symbology, product_id)
         VALUES ('ORPHAN', 'ORPHAN', 'other', gen_random_uuid())",
    )
    .execute(&mut *tx)
    .await
    .unwrap_err();
    assert!(orphan.to_string().contains("foreign key"), "{orphan}");
}

#[sqlx::test]
async fn the_seed_writes_each_product_once(db: PgPool) {
    // Its own pool, closed afterwards: a backend reports its table counters
    // when it exits, so they can be read from here.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_with(db.connect_options().as_ref().clone())
        .await
        .unwrap();
    inventory_api::seed::seed(&pool, 2_000, 1).await.unwrap();
    pool.close().await;
    let mut counters: (i64, i64) = (0, 0);
    for _ in 0..100 {
        counters = sqlx::query_as(
            "SELECT n_tup_ins, n_tup_upd FROM pg_stat_user_tables WHERE relname = 'products'",
        )
        .fetch_one(&db)
        .await
        .unwrap();
        if counters.0 >= 2_000 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(counters, (2_000, 0), "(inserted, updated)");
    let search_text: String =
        sqlx::query_scalar("SELECT search_text FROM products WHERE sku = 'SEED-00000042'")
            .fetch_one(&db)
            .await
            .unwrap();
    assert!(search_text.contains("200000000042"), "{search_text}");
}
