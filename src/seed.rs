//! Test data for benchmarks and demos: `inventory-api seed --products N`.
//!
//! Loads N products with varied names, one of 20 categories, one valid EAN-13
//! each (products 1..=100,000 also a UPC-A, 1..=10,000 also an EAN-8, so every
//! GTIN length exists), and stock in each warehouse, set-based in SQL.
//! Stock enters through receipt rows in the ledger, so level = sum(ledger)
//! holds for seeded data too. Not for production databases.

use anyhow::Context;
use sqlx::PgPool;
use uuid::Uuid;

use crate::catalog;

/// Rows written per statement (bounded so a huge seed does not build one giant transaction).
const BATCH: i64 = 50_000;

/// Top-level categories "Seed category 01".."20", spread over the products.
const CATEGORIES: usize = 20;

pub struct Seeded {
    pub products: i64,
    pub warehouses: Vec<Uuid>,
}

pub async fn seed(db: &PgPool, products: i64, warehouses: i64) -> anyhow::Result<Seeded> {
    let actor: Uuid = sqlx::query_scalar(
        "INSERT INTO users (email, display_name, role, password_hash, active)
         VALUES ('seed@inventory.invalid', 'Seeder', 'admin', '!', false)
         ON CONFLICT (lower(email)) DO UPDATE SET display_name = EXCLUDED.display_name
         RETURNING id",
    )
    .fetch_one(db)
    .await
    .context("creating the seed user")?;
    let mut warehouse_ids = Vec::new();
    for w in 1..=warehouses {
        let id: Uuid = sqlx::query_scalar(
            "INSERT INTO warehouses (code, name) VALUES ($1, $2)
             ON CONFLICT (lower(code)) DO UPDATE SET name = EXCLUDED.name RETURNING id",
        )
        .bind(format!("SEED-{w:02}"))
        .bind(format!("Seed warehouse {w}"))
        .fetch_one(db)
        .await?;
        warehouse_ids.push(id);
    }
    let mut categories = Vec::new();
    for c in 1..=CATEGORIES {
        let id: Uuid = sqlx::query_scalar(
            "INSERT INTO categories (name) VALUES ($1)
             ON CONFLICT (COALESCE(parent_id, '00000000-0000-0000-0000-000000000000'::uuid), lower(name))
             DO UPDATE SET name = EXCLUDED.name RETURNING id",
        )
        .bind(format!("Seed category {c:02}"))
        .fetch_one(db)
        .await
        .context("creating the seed categories")?;
        categories.push(id);
    }
    let start: i64 = sqlx::query_scalar("SELECT count(*) FROM products WHERE sku LIKE 'SEED-%'")
        .fetch_one(db)
        .await?;
    let mut from = start + 1;
    let to = start + products;
    while from <= to {
        let until = (from + BATCH - 1).min(to);
        let mut tx = crate::db::begin(db).await?;
        // Each product's id is chosen first so that its barcodes can be
        // written before it and its search_text computed once, as the API
        // and the CSV import write them (catalog::repo::insert): a product
        // rewritten right after its insert left dead entries at the front of
        // the search's GIN posting trees, which misled GIN once vacuumed.
        sqlx::raw_sql(
            "CREATE TEMP TABLE seed_ids (i bigint PRIMARY KEY, id uuid NOT NULL DEFAULT gen_random_uuid())
             ON COMMIT DROP",
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO seed_ids (i) SELECT generate_series($1::bigint, $2::bigint)")
            .bind(from)
            .bind(until)
            .execute(&mut *tx)
            .await?;
        catalog::repo::defer_barcode_fk(&mut *tx).await?;
        // GTINs with computed check digits: an EAN-13 with prefix 20 (in-store
        // numbers) for every product, a UPC-A (4 + 10 digits) for products up to
        // 100,000 and an EAN-8 (9 + 6 digits) up to 10,000; keyed as GTIN-14.
        sqlx::query(
            "WITH codes AS (
                 SELECT id, 'gtin13' AS symbology, '20' || lpad(i::text, 10, '0') AS body FROM seed_ids
                 UNION ALL
                 SELECT id, 'gtin12', '4' || lpad(i::text, 10, '0') FROM seed_ids WHERE i <= 100000
                 UNION ALL
                 SELECT id, 'gtin8', '9' || lpad(i::text, 6, '0') FROM seed_ids WHERE i <= 10000
             )
             INSERT INTO product_barcodes (lookup_key, barcode, symbology, product_id)
             SELECT lpad(body || d, 14, '0'), body || d, symbology, id FROM codes,
             LATERAL (SELECT ((10 - (SELECT sum(substr(body, k, 1)::int
                                                * CASE WHEN (length(body) - k) % 2 = 0 THEN 3 ELSE 1 END)
                                     FROM generate_series(1, length(body)) k) % 10) % 10)::text AS d) check_digit
             ON CONFLICT DO NOTHING",
        )
        .execute(&mut *tx)
        .await?;
        // Names combine words so trigram search has realistic selectivity.
        sqlx::query(
            "INSERT INTO products (id, sku, name, description, category_id, unit_cost, price,
                                   reorder_point, reorder_quantity)
             SELECT id, 'SEED-' || lpad(i::text, 8, '0'),
                    (ARRAY['Steel','Copper','Brass','Nylon','Oak','Pine','Rubber','Glass','Ceramic','Carbon',
                           'Zinc','Titanium','Cotton','Wool','Vinyl','Granite','Bamboo','Cobalt','Nickel','Silver'])[1 + i % 20]
                    || ' ' ||
                    (ARRAY['bolt','nut','washer','hinge','bracket','screw','rivet','pipe','valve','gasket',
                           'spring','cable','hose','clamp','pulley','bearing','chain','hook','panel','tile',
                           'brush','filter','fuse','relay','switch','socket','plug','lamp','tape','glue'])[1 + (i / 20) % 30]
                    || ' ' || (i % 997)::text || 'mm',
                    'Seeded product ' || i,
                    ($1::uuid[])[1 + abs(hashtext('c' || i)) % cardinality($1::uuid[])],
                    round((1 + (i % 5000)) / 100.0, 2), round((2 + (i % 7000)) / 100.0, 2),
                    i % 50, 10 + i % 90
             FROM seed_ids ORDER BY i",
        )
        .bind(&categories)
        .execute(&mut *tx)
        .await?;
        catalog::repo::check_barcode_fk(&mut *tx).await?;
        for (n, w) in warehouse_ids.iter().enumerate() {
            sqlx::query(
                "WITH batch AS (
                     SELECT id, (abs(hashtext(id::text || $4)) % 200)::bigint AS q FROM products
                     WHERE sku BETWEEN 'SEED-' || lpad($1::text, 8, '0') AND 'SEED-' || lpad($2::text, 8, '0')
                 ), lvl AS (
                     INSERT INTO stock_levels (product_id, warehouse_id, quantity)
                     SELECT id, $3, q FROM batch WHERE q > 0
                     ON CONFLICT DO NOTHING RETURNING product_id, quantity
                 )
                 INSERT INTO stock_transactions (kind, product_id, warehouse_id, quantity, balance_after, actor_user_id, reference)
                 SELECT 'receipt', product_id, $3, quantity, quantity, $5, 'seed' FROM lvl",
            )
            .bind(from)
            .bind(until)
            .bind(w)
            .bind(n.to_string())
            .bind(actor)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        tracing::info!(until, to, "seeded");
        from = until + 1;
    }
    // One statement each: a prepared statement cannot hold several commands.
    for table in ["categories", "products", "product_barcodes", "stock_levels"] {
        sqlx::query(sqlx::AssertSqlSafe(format!("ANALYZE {table}")))
            .execute(db)
            .await
            .with_context(|| format!("analyzing {table}"))?;
    }
    Ok(Seeded {
        products,
        warehouses: warehouse_ids,
    })
}
