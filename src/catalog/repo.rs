//! SQL for products and their barcodes.

use std::collections::HashMap;

use sqlx::{PgExecutor, PgPool, Postgres, QueryBuilder, Transaction};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{
    barcode::Barcode,
    model::{Product, ProductBarcode, ProductFields, Tracking},
};

/// A products row without its barcodes.
#[derive(Debug, sqlx::FromRow)]
pub struct ProductRow {
    pub id: Uuid,
    #[sqlx(flatten)]
    pub fields: ProductFields,
    pub tracking: Tracking,
    pub active: bool,
    pub version: i32,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

const PRODUCT_COLUMNS: &str = "p.id, p.sku, p.name, p.description, p.category_id, p.unit, \
    p.unit_cost, p.price, p.reorder_point, p.reorder_quantity, p.tracking, p.active, p.version, \
    p.created_at, p.updated_at";

impl ProductRow {
    pub fn with_barcodes(self, barcodes: Vec<ProductBarcode>) -> Product {
        let f = self.fields;
        Product {
            id: self.id,
            sku: f.sku,
            name: f.name,
            description: f.description,
            category_id: f.category_id,
            unit: f.unit,
            unit_cost: f.unit_cost.into(),
            price: f.price.into(),
            reorder_point: f.reorder_point,
            reorder_quantity: f.reorder_quantity,
            tracking: self.tracking,
            active: self.active,
            version: self.version,
            barcodes,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// A product `p` (a `products` row) as the JSON its events carry: the same
/// value as `serde_json::to_value(&Product)` (money as text with its 4
/// decimals, barcodes ordered by code, timestamps in `time`'s compact serde
/// form `[year, day of year, hour, minute, second, nanosecond, 0, 0, 0]` in
/// UTC), for writing many events in one statement (the CSV import).
/// `tests/catalog.rs` checks it against the serde form.
pub const PRODUCT_EVENT_JSON: &str = "jsonb_build_object(
    'id', p.id, 'sku', p.sku, 'name', p.name, 'description', p.description,
    'category_id', p.category_id, 'unit', p.unit,
    'unit_cost', p.unit_cost::text, 'price', p.price::text,
    'reorder_point', p.reorder_point, 'reorder_quantity', p.reorder_quantity,
    'tracking', p.tracking, 'active', p.active, 'version', p.version,
    'barcodes', COALESCE((SELECT jsonb_agg(jsonb_build_object(
                              'barcode', b.barcode, 'pack_quantity', b.pack_quantity,
                              'symbology', b.symbology) ORDER BY b.barcode)
                          FROM product_barcodes b WHERE b.product_id = p.id), '[]'::jsonb),
    'created_at', time_serde(p.created_at), 'updated_at', time_serde(p.updated_at))";

/// A new product with its barcodes. The barcodes are written FIRST, under a
/// deferred foreign key ([`defer_barcode_fk`]), so that the products' insert
/// trigger computes `search_text` once, barcodes included. In the other order
/// the barcodes' statement trigger rewrote the new product at once: a dead
/// row version per product in every search index, which VACUUM later empties
/// from the front of GIN's posting trees, where GIN reads how common a
/// trigram is (bench/README.md, "A trigram index that stops short-circuiting
/// after VACUUM").
pub async fn insert(
    tx: &mut Transaction<'_, Postgres>,
    f: &ProductFields,
    tracking: Tracking,
    barcodes: &[(Barcode, i32)],
) -> Result<ProductRow, sqlx::Error> {
    let id = Uuid::new_v4();
    if !barcodes.is_empty() {
        defer_barcode_fk(&mut **tx).await?;
        insert_barcodes(tx, id, barcodes).await?;
    }
    let row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO products AS p (id, sku, name, description, category_id, unit, unit_cost,
                               price, reorder_point, reorder_quantity, tracking)
         VALUES ($11, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         RETURNING {PRODUCT_COLUMNS}"
    )))
    .bind(&f.sku)
    .bind(&f.name)
    .bind(&f.description)
    .bind(f.category_id)
    .bind(&f.unit)
    .bind(f.unit_cost)
    .bind(f.price)
    .bind(f.reorder_point)
    .bind(f.reorder_quantity)
    .bind(tracking)
    .bind(id)
    .fetch_one(&mut **tx)
    .await?;
    if !barcodes.is_empty() {
        check_barcode_fk(&mut **tx).await?;
    }
    Ok(row)
}

/// Checks `product_barcodes.product_id` at the end of the transaction (or
/// at [`check_barcode_fk`]) instead of per statement, so that barcodes can be
/// written before their new product (migration 20261202230001).
pub async fn defer_barcode_fk(db: impl PgExecutor<'_>) -> Result<(), sqlx::Error> {
    sqlx::raw_sql("SET CONSTRAINTS product_barcodes_product_id_fkey DEFERRED")
        .execute(db)
        .await?;
    Ok(())
}

/// Checks the barcodes written since [`defer_barcode_fk`] now, and every
/// later statement's as usual.
pub async fn check_barcode_fk(db: impl PgExecutor<'_>) -> Result<(), sqlx::Error> {
    sqlx::raw_sql("SET CONSTRAINTS product_barcodes_product_id_fkey IMMEDIATE")
        .execute(db)
        .await?;
    Ok(())
}

/// Writes every field and bumps the version.
pub async fn update(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
    f: &ProductFields,
    active: bool,
    tracking: Tracking,
) -> Result<ProductRow, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE products AS p SET sku = $2, name = $3, description = $4, category_id = $5, unit = $6,
             unit_cost = $7, price = $8, reorder_point = $9, reorder_quantity = $10, active = $11,
             tracking = $12, version = version + 1
         WHERE id = $1
         RETURNING {PRODUCT_COLUMNS}"
    )))
    .bind(id)
    .bind(&f.sku)
    .bind(&f.name)
    .bind(&f.description)
    .bind(f.category_id)
    .bind(&f.unit)
    .bind(f.unit_cost)
    .bind(f.price)
    .bind(f.reorder_point)
    .bind(f.reorder_quantity)
    .bind(active)
    .bind(tracking)
    .fetch_one(&mut **tx)
    .await
}

/// Units of the product on hand anywhere: a product holding stock keeps its
/// tracking (its positions, lots and serial numbers were recorded under it).
/// A level is the sum of its positions, and levels are keyed by product first.
pub async fn units_held(db: impl PgExecutor<'_>, id: Uuid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT COALESCE(sum(quantity), 0)::bigint FROM stock_levels WHERE product_id = $1",
    )
    .bind(id)
    .fetch_one(db)
    .await
}

/// Bumps the version after a change to the product's barcodes.
pub async fn touch(tx: &mut Transaction<'_, Postgres>, id: Uuid) -> Result<i32, sqlx::Error> {
    sqlx::query_scalar("UPDATE products SET version = version + 1 WHERE id = $1 RETURNING version")
        .bind(id)
        .fetch_one(&mut **tx)
        .await
}

pub async fn get_row(
    db: impl PgExecutor<'_>,
    id: Uuid,
    lock: bool,
) -> Result<Option<ProductRow>, sqlx::Error> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {PRODUCT_COLUMNS} FROM products p WHERE p.id = $1{lock}"
    )))
    .bind(id)
    .fetch_optional(db)
    .await
}

/// Barcodes of many products in one query (no query per product).
pub async fn barcodes_of(
    db: impl PgExecutor<'_>,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<ProductBarcode>>, sqlx::Error> {
    let rows: Vec<(Uuid, String, i32, String)> = sqlx::query_as(
        "SELECT product_id, barcode, pack_quantity, symbology FROM product_barcodes
         WHERE product_id = ANY($1) ORDER BY product_id, barcode",
    )
    .bind(ids)
    .fetch_all(db)
    .await?;
    let mut map: HashMap<Uuid, Vec<ProductBarcode>> = HashMap::new();
    for (id, barcode, pack_quantity, symbology) in rows {
        map.entry(id).or_default().push(ProductBarcode {
            barcode,
            pack_quantity,
            symbology,
        });
    }
    Ok(map)
}

/// Products with their barcodes, in the order of `rows`.
pub async fn with_barcodes(
    db: impl PgExecutor<'_>,
    rows: Vec<ProductRow>,
) -> Result<Vec<Product>, sqlx::Error> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let mut barcodes = barcodes_of(db, &ids).await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let b = barcodes.remove(&r.id).unwrap_or_default();
            r.with_barcodes(b)
        })
        .collect())
}

pub async fn get(db: &PgPool, id: Uuid) -> Result<Option<Product>, sqlx::Error> {
    let Some(row) = get_row(db, id, false).await? else {
        return Ok(None);
    };
    Ok(with_barcodes(db, vec![row]).await?.pop())
}

pub async fn insert_barcodes(
    tx: &mut Transaction<'_, Postgres>,
    product_id: Uuid,
    barcodes: &[(Barcode, i32)],
) -> Result<(), sqlx::Error> {
    if barcodes.is_empty() {
        return Ok(());
    }
    let mut q = QueryBuilder::new(
        "INSERT INTO product_barcodes (lookup_key, barcode, symbology, product_id, pack_quantity) ",
    );
    q.push_values(barcodes, |mut row, (code, pack)| {
        row.push_bind(&code.key)
            .push_bind(&code.raw)
            .push_bind(code.symbology.code())
            .push_bind(product_id)
            .push_bind(*pack);
    });
    q.build().execute(&mut **tx).await?;
    Ok(())
}

/// Lookup keys of a product's barcodes (to drop them from the cache).
pub async fn barcode_keys(
    db: impl PgExecutor<'_>,
    product_id: Uuid,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT lookup_key FROM product_barcodes WHERE product_id = $1")
        .bind(product_id)
        .fetch_all(db)
        .await
}

pub async fn delete_barcode(
    tx: &mut Transaction<'_, Postgres>,
    product_id: Uuid,
    key: &str,
) -> Result<bool, sqlx::Error> {
    let done =
        sqlx::query("DELETE FROM product_barcodes WHERE product_id = $1 AND lookup_key = $2")
            .bind(product_id)
            .bind(key)
            .execute(&mut **tx)
            .await?;
    Ok(done.rows_affected() > 0)
}

/// The product a normalised barcode belongs to, with the pack quantity.
pub async fn find_by_barcode(
    db: &PgPool,
    key: &str,
) -> Result<Option<(String, i32, Product)>, sqlx::Error> {
    let found: Option<(String, i32, Uuid)> = sqlx::query_as(
        "SELECT barcode, pack_quantity, product_id FROM product_barcodes WHERE lookup_key = $1",
    )
    .bind(key)
    .fetch_optional(db)
    .await?;
    let Some((barcode, pack, product_id)) = found else {
        return Ok(None);
    };
    Ok(get(db, product_id).await?.map(|p| (barcode, pack, p)))
}

/// Filters of the product list.
#[derive(Debug, Default)]
pub struct ProductFilter {
    pub q: Option<String>,
    pub category_id: Option<Uuid>,
    pub active: Option<bool>,
    pub below_reorder: bool,
    /// With `below_reorder`: leave out products with a level under an open
    /// blind count (`stock::blind`).
    pub hide_blind: bool,
}

/// Escapes LIKE wildcards so a search for "50%" means the text "50%".
pub fn like_escape(q: &str) -> String {
    q.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// `%term%` with the term's wildcards escaped: "contains".
pub fn like_pattern(q: &str) -> String {
    format!("%{}%", like_escape(q))
}

/// The list order and keyset: the SKU lower-cased, compared byte by byte
/// (COLLATE "C", so a SKU prefix is one contiguous range of it, whatever the
/// database's collation). `products_sku_order_idx` serves it.
const SKU_ORDER: &str = "lower(p.sku) COLLATE \"C\"";

/// Rows a search reads in list order before it asks the trigram indexes
/// instead: a term found in at least 1 of 40 products fills a page of 50 from
/// the first 2,000 rows; a rarer one is cheaper to collect from the indexes.
const WALK_ROWS: i64 = 2_000;

/// The exclusive upper bound of the SKUs starting with `prefix` (byte order),
/// or None when no SKU can start with it (SKUs are ASCII letters, digits and
/// `._/-`, see `products_sku_format`).
fn sku_prefix_end(prefix: &str) -> Option<String> {
    let ok = |b: u8| b.is_ascii_alphanumeric() || b"._/-".contains(&b);
    let bytes = prefix.as_bytes();
    let (&last, head) = bytes.split_last()?;
    if !bytes.iter().all(|&b| ok(b)) {
        return None;
    }
    let mut end = head.to_vec();
    end.push(last + 1);
    String::from_utf8(end).ok()
}

/// Whether some product carries the barcode with this lookup key.
async fn barcode_exists(db: &PgPool, key: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM product_barcodes WHERE lookup_key = $1)")
        .bind(key)
        .fetch_one(db)
        .await
}

/// Filters that do not involve `q`, on products `p`.
fn push_filters(q: &mut QueryBuilder<Postgres>, filter: &ProductFilter, after: Option<&str>) {
    if let Some(category) = filter.category_id {
        q.push(" AND p.category_id = ").push_bind(category);
    }
    if let Some(active) = filter.active {
        q.push(" AND p.active = ").push_bind(active);
    }
    if filter.below_reorder {
        // At or below the reorder point, over all warehouses; products without
        // a reorder point (0) are never "low".
        q.push(
            " AND p.reorder_point > 0 AND COALESCE((SELECT sum(s.quantity) FROM stock_levels s \
             WHERE s.product_id = p.id), 0) <= p.reorder_point",
        );
        // Whether the sum is low would tell of a level being counted blind.
        q.push(crate::stock::blind::and_product_not_hidden(
            filter.hide_blind,
            "p.id",
            "NULL::uuid",
        ));
    }
    if let Some(sku) = after {
        q.push(format!(" AND {SKU_ORDER} > "))
            .push_bind(sku.to_owned());
    }
}

/// Products matching `filter`, ordered by SKU (lower-cased, byte order;
/// unique, so the order is total and the SKU alone is the keyset).
///
/// `q` is matched case-insensitively anywhere in the SKU, the name or a
/// barcode (as entered, and as its 14-digit GTIN key, so every GTIN form of a
/// code finds it): `search_text` contains it. A complete GTIN (8, 12, 13 or
/// 14 digits with a valid check digit) that is a product's barcode finds that
/// product alone. How the rows are found depends on the term (bench/README.md,
/// "Search", has the plans and figures):
/// 1. under 3 characters (no trigram to look up): walk the list order and
///    keep what matches;
/// 2. a term without digits is often a common word: walk the first
///    [`WALK_ROWS`] rows in list order; if a page is found there, done;
/// 3. otherwise collect the candidates from the indexes, each exact for its
///    part (SKU prefix range, SKU infix, name and barcodes), and sort those.
///    A term with a space may span SKU and name, so it uses the whole
///    `search_text`: by its words (`search_tokens`) when two of them can be
///    looked up, else by the trigram index.
///
/// A word no token of the catalog contains ([`super::search_tokens::in_no_token`])
/// finds nothing without reading products.
///
/// When nothing matches, the term's words are spell-corrected against the
/// words of product names ([`corrected`]) and the search runs once more with
/// the corrected term, so "bering" lists bearings.
pub async fn list(
    db: &PgPool,
    filter: &ProductFilter,
    after: Option<String>,
    fetch: i64,
) -> Result<Vec<ProductRow>, sqlx::Error> {
    let term = filter
        .q
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase);
    let Some(term) = term else {
        let mut q = QueryBuilder::new(format!(
            "SELECT {PRODUCT_COLUMNS} FROM products p WHERE TRUE"
        ));
        push_filters(&mut q, filter, after.as_deref());
        q.push(format!(" ORDER BY {SKU_ORDER} LIMIT "))
            .push_bind(fetch);
        return q.build_query_as().fetch_all(db).await;
    };
    let rows = matching(db, filter, &term, after.as_deref(), fetch).await?;
    if !rows.is_empty() {
        return Ok(rows);
    }
    match corrected(db, &term).await? {
        Some(better) => matching(db, filter, &better, after.as_deref(), fetch).await,
        None => Ok(rows),
    }
}

/// `term` with each word of 4+ letters replaced by the most similar word of
/// the product names (`search_words`, pg_trgm similarity at least
/// `pg_trgm.similarity_threshold`, 0.3 by default; ties by the word), or None
/// when no word changes.
async fn corrected(db: &PgPool, term: &str) -> Result<Option<String>, sqlx::Error> {
    let words: Vec<&str> = term
        .split(|c: char| !c.is_alphabetic())
        .filter(|w| w.chars().count() >= 4)
        .collect();
    if words.is_empty() {
        return Ok(None);
    }
    let found: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT w, (SELECT s.word FROM search_words s WHERE s.word % w
                    ORDER BY similarity(s.word, w) DESC, s.word LIMIT 1)
         FROM unnest($1::text[]) AS w",
    )
    .bind(&words)
    .fetch_all(db)
    .await?;
    let mut out = String::with_capacity(term.len());
    let mut word = String::new();
    // Rebuild the term, replacing letter runs and keeping everything between.
    for c in term.chars().chain(std::iter::once(' ')) {
        if c.is_alphabetic() {
            word.push(c);
            continue;
        }
        let better = found
            .iter()
            .find(|(w, _)| *w == word)
            .and_then(|(_, b)| b.as_deref());
        out.push_str(better.unwrap_or(&word));
        word.clear();
        out.push(c);
    }
    out.pop();
    Ok((out != term).then_some(out))
}

/// Products whose `search_text` contains `term` (lower-cased), in list order.
async fn matching(
    db: &PgPool,
    filter: &ProductFilter,
    term: &str,
    after: Option<&str>,
    fetch: i64,
) -> Result<Vec<ProductRow>, sqlx::Error> {
    let term = term.to_owned();
    let after = after.map(str::to_owned);
    if let Ok(code) = super::barcode::parse(&term) {
        if code.symbology != super::barcode::Symbology::Other {
            // A complete GTIN (valid check digit) is a code, not a fragment:
            // the product it labels, in any GTIN form, by the unique key
            // (its digits are in most barcodes' trigrams, so the trigram
            // indexes would read a large share of the catalog for it).
            let mut q = QueryBuilder::new(format!(
                "SELECT {PRODUCT_COLUMNS} FROM products p \
                 JOIN product_barcodes b ON b.product_id = p.id WHERE b.lookup_key = "
            ));
            q.push_bind(code.key.clone());
            push_filters(&mut q, filter, after.as_deref());
            let rows: Vec<ProductRow> = q.build_query_as().fetch_all(db).await?;
            // Its product filtered out (another category, inactive, an
            // earlier page) is still an answer: the code names one product.
            // Only a GTIN no product carries is searched for as a fragment.
            if !rows.is_empty() || barcode_exists(db, &code.key).await? {
                return Ok(rows);
            }
        }
    }
    let pattern = like_pattern(&term);
    let short = term.chars().count() < 3;
    if !short && super::search_tokens::in_no_token(db, &term).await? {
        // A misspelling or a word the catalog lacks: nothing to walk for.
        return Ok(Vec::new());
    }
    let spaced = term.contains(' ');
    let words = match spaced && !short {
        true => super::search_tokens::words(db, &term).await?,
        false => None,
    };
    let token_sets = words.as_ref().map(|w| &w.sets);
    if let Some(words) = &words {
        if words.sets.iter().any(Vec::is_empty) {
            // No token of the catalog starts (ends) like the term's last
            // (first) word: nothing contains the term.
            return Ok(Vec::new());
        }
        // Rare words first: their candidates answer without the walk; only
        // a common phrase ("stainless steel") is left to the walk below.
        let rows = match &words.pairs {
            Some(pairs) => by_pairs(db, filter, pairs, &pattern, after.as_deref(), fetch).await?,
            None => {
                let capped = Some(TOKEN_CANDIDATES);
                by_tokens(
                    db,
                    filter,
                    &words.sets,
                    &pattern,
                    after.as_deref(),
                    fetch,
                    capped,
                )
                .await?
            }
        };
        if let Some(rows) = rows {
            return Ok(rows);
        }
    }

    if short || !term.bytes().any(|b| b.is_ascii_digit()) {
        // The walk: rows in list order, keeping those that match. Bounded to
        // WALK_ROWS (within the category when there is one:
        // products_category_sku_order_idx) unless the term is too short for
        // the trigram indexes. The subquery exposes its order as `k` so the
        // outer LIMIT stops the walk as soon as the page is full; a subquery
        // with ORDER BY is never flattened, so the plan stays this walk even
        // when the planner would rather scan a whole trigram index for a
        // 2-letter pattern it cannot narrow.
        let mut q = QueryBuilder::new(format!(
            "SELECT {PRODUCT_COLUMNS} FROM (SELECT p.*, {SKU_ORDER} AS k FROM products p WHERE TRUE"
        ));
        if short {
            // Unbounded, so every filter goes inside, the subquery's ORDER BY
            // is the answer's order, and the outer query is one scan of it
            // with the LIKE (which keeps that order) and no ORDER BY of its
            // own: an outer ORDER BY makes PostgreSQL plan the subquery for
            // all its rows, not for the first page, and within a category
            // (50,000 of 1,000,000 products) it sorted the whole category for
            // "ng" (418 ms) instead of walking products_category_sku_order_idx
            // (4 ms). OFFSET 0 is the fence: without it PostgreSQL pushes the
            // LIKE into the subquery and, for a common fragment ("ng" in 1 of
            // 10 products), prefers a parallel scan and sort of the whole
            // table (0.8-1.9 s at 1,000,000 products) to this walk (6 ms).
            push_filters(&mut q, filter, after.as_deref());
            q.push(" ORDER BY k OFFSET 0) p WHERE p.search_text LIKE ")
                .push_bind(pattern.clone())
                .push(" LIMIT ")
                .push_bind(fetch);
        } else {
            // Bounded by its own LIMIT, so planned for WALK_ROWS rows whatever
            // the outer query does; the other filters apply to what it finds.
            if let Some(category) = filter.category_id {
                q.push(" AND p.category_id = ").push_bind(category);
            }
            if let Some(sku) = after.as_deref() {
                q.push(format!(" AND {SKU_ORDER} > "))
                    .push_bind(sku.to_owned());
            }
            q.push(" ORDER BY k LIMIT ")
                .push_bind(WALK_ROWS)
                .push(") p WHERE p.search_text LIKE ")
                .push_bind(pattern.clone());
            push_filters(&mut q, filter, after.as_deref());
            q.push(" ORDER BY p.k LIMIT ").push_bind(fetch);
        }
        let rows: Vec<ProductRow> = q.build_query_as().fetch_all(db).await?;
        if short || rows.len() as i64 >= fetch {
            return Ok(rows);
        }
    }

    if let Some(sets) = &token_sets {
        let rows = by_tokens(db, filter, sets, &pattern, after.as_deref(), fetch, None).await?;
        return Ok(rows.unwrap_or_default());
    }
    // The candidates (id and list key), each branch exact for its part of
    // search_text; MATERIALIZED so each is collected from its index rather
    // than by a walk the planner might prefer for a term it over-estimates.
    // Only the page's rows are read again in full.
    let mut q = QueryBuilder::new("WITH ");
    let select = format!("SELECT p.id, {SKU_ORDER} AS k FROM products p WHERE ");
    if spaced {
        // May span the SKU and the name: the whole search_text (fewer than
        // two of its words could be looked up).
        q.push("m AS MATERIALIZED (")
            .push(&select)
            .push("p.search_text LIKE ")
            .push_bind(pattern.clone());
        push_filters(&mut q, filter, after.as_deref());
    } else {
        q.push("m AS MATERIALIZED (");
        if let Some(end) = sku_prefix_end(&term) {
            // SKU prefix: a range of the list order, read in order, one page.
            q.push(format!("({select}{SKU_ORDER} >= "))
                .push_bind(term.clone())
                .push(format!(" AND {SKU_ORDER} < "))
                .push_bind(end);
            push_filters(&mut q, filter, after.as_deref());
            q.push(" ORDER BY k LIMIT ")
                .push_bind(fetch)
                .push(") UNION ALL ");
        }
        q.push(&select)
            .push("substr(lower(p.sku), 2) LIKE ")
            .push_bind(pattern.clone());
        push_filters(&mut q, filter, after.as_deref());
        q.push(format!(
            " UNION ALL {select}substr(p.search_text, length(p.sku) + 2) LIKE "
        ))
        .push_bind(pattern.clone());
        push_filters(&mut q, filter, after.as_deref());
    }
    q.push("), page AS (SELECT DISTINCT id, k FROM m ORDER BY k LIMIT ")
        .push_bind(fetch)
        .push(format!(
            ") SELECT {PRODUCT_COLUMNS} FROM page JOIN products p ON p.id = page.id ORDER BY page.k"
        ));
    q.build_query_as().fetch_all(db).await
}

/// A term of several words whose words have at most this many candidates is
/// answered from them before the list walk is tried: the walk (3 ms at
/// 1,000,000 products) only pays for a phrase common enough to fill a page
/// in its first rows, which has many candidates.
const TOKEN_CANDIDATES: i64 = 5_000;

/// A page of products carrying a token of each of `sets` whose
/// `search_text` is LIKE `pattern`, in list order (see
/// `super::search_tokens`). With `cap`, None when the words have more
/// candidates than that (nothing was answered).
async fn by_tokens(
    db: &PgPool,
    filter: &ProductFilter,
    sets: &[Vec<String>],
    pattern: &str,
    after: Option<&str>,
    fetch: i64,
    cap: Option<i64>,
) -> Result<Option<Vec<ProductRow>>, sqlx::Error> {
    let candidates = |q: &mut QueryBuilder<Postgres>, select: &str| {
        q.push(format!("SELECT {select} FROM products p WHERE TRUE"));
        for set in sets {
            q.push(" AND search_tokens_of(p.search_text) && ")
                .push_bind(set.clone())
                .push("::text[]");
        }
        push_filters(q, filter, after);
        if let Some(cap) = cap {
            q.push(" LIMIT ").push_bind(cap + 1);
        }
    };
    // MATERIALIZED because the planner, which prices a long LIKE pattern as
    // very selective, would otherwise add the trigram index: the slow part
    // the words avoid.
    let mut q = QueryBuilder::new("WITH t AS MATERIALIZED (");
    candidates(&mut q, &format!("p.id, {SKU_ORDER} AS k, p.search_text"));
    q.push("), page AS (SELECT id, k FROM t WHERE t.search_text LIKE ")
        .push_bind(pattern.to_owned())
        .push(" ORDER BY k LIMIT ")
        .push_bind(fetch)
        .push(format!(
            ") SELECT {PRODUCT_COLUMNS}, (SELECT count(*) FROM t) AS candidates \
             FROM page JOIN products p ON p.id = page.id ORDER BY page.k"
        ));
    let rows: Vec<Counted> = q.build_query_as().fetch_all(db).await?;
    let Some(cap) = cap else {
        return Ok(Some(rows.into_iter().map(|r| r.row).collect()));
    };
    within_cap(db, rows, cap, |q| candidates(q, "1")).await
}

/// A page of products carrying one of `pairs` whose `search_text` is LIKE
/// `pattern`, in list order (see `super::search_tokens::Words::pairs`), or
/// None when the pairs have more than [`TOKEN_CANDIDATES`] products (a
/// common phrase: the walk in list order finds its page sooner).
///
/// The pairs' products come from `product_search_pairs_pkey` alone, with
/// their list key (and within the category, when the filter names one);
/// sorted by the key, they are read from the catalog one by one
/// until the page is full, so a page costs about its own rows however many
/// products carry the pair.
async fn by_pairs(
    db: &PgPool,
    filter: &ProductFilter,
    pairs: &[String],
    pattern: &str,
    after: Option<&str>,
    fetch: i64,
) -> Result<Option<Vec<ProductRow>>, sqlx::Error> {
    // The pairs' products after the keyset, at most one more than the cap.
    let candidates = |q: &mut QueryBuilder<Postgres>| {
        q.push("SELECT s.product_id, s.k FROM product_search_pairs s WHERE s.pair = ANY(")
            .push_bind(pairs.to_vec())
            .push("::text[])");
        if let Some(category) = filter.category_id {
            // From the index too (`INCLUDE (product_id, category_id)`).
            q.push(" AND s.category_id = ").push_bind(category);
        }
        if let Some(sku) = after {
            q.push(" AND s.k > ").push_bind(sku.to_owned());
        }
        q.push(" LIMIT ").push_bind(TOKEN_CANDIDATES + 1);
    };
    let mut q = QueryBuilder::new("WITH c AS MATERIALIZED (");
    candidates(&mut q);
    // DISTINCT: a product may carry two of the pairs. Sorted before the join,
    // so the join reads products in list order and stops at a full page. The
    // products are a LATERAL subquery fenced by OFFSET 0, so that each is
    // looked up by id in that order: as a plain join, PostgreSQL priced the
    // LIKE as very selective and read every product matching it through the
    // trigram index instead (a hash join over all 1,667 products of "zinc
    // screw" at 1,000,000 products: 1,928 pages, 69 ms when not cached; this
    // way 156 pages, 6 ms).
    q.push(format!(
        "), page AS (SELECT DISTINCT product_id, k FROM c ORDER BY k) \
         SELECT {PRODUCT_COLUMNS}, (SELECT count(*) FROM c) AS candidates \
         FROM page CROSS JOIN LATERAL (SELECT * FROM products p \
             WHERE p.id = page.product_id AND p.search_text LIKE "
    ))
    .push_bind(pattern.to_owned());
    push_filters(&mut q, filter, None);
    q.push(" OFFSET 0) p ORDER BY page.k LIMIT ")
        .push_bind(fetch);
    let rows: Vec<Counted> = q.build_query_as().fetch_all(db).await?;
    within_cap(db, rows, TOKEN_CANDIDATES, candidates).await
}

/// The page `rows` when their candidates were at most `cap`, else None. The
/// count rides on every row; a page without rows asks for it on its own,
/// counting what `candidates` selects.
async fn within_cap(
    db: &PgPool,
    rows: Vec<Counted>,
    cap: i64,
    candidates: impl FnOnce(&mut QueryBuilder<Postgres>),
) -> Result<Option<Vec<ProductRow>>, sqlx::Error> {
    let count = match rows.first() {
        Some(r) => r.candidates,
        None => {
            let mut q = QueryBuilder::new("SELECT count(*) FROM (");
            candidates(&mut q);
            q.push(") c");
            q.build_query_scalar().fetch_one(db).await?
        }
    };
    Ok((count <= cap).then(|| rows.into_iter().map(|r| r.row).collect()))
}

/// A product of [`by_tokens`] or [`by_pairs`] and how many candidates its words had.
#[derive(sqlx::FromRow)]
struct Counted {
    #[sqlx(flatten)]
    row: ProductRow,
    candidates: i64,
}
