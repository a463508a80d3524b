//! Rebuilding the catalog's inverted (GIN) search indexes:
//! `inventory-api reindex-search`.
//!
//! Why it is needed (bench/README.md, "A trigram index that stops
//! short-circuiting after VACUUM"): a trigram pattern needs all its trigrams,
//! so GIN scans the rarest first and an absent one ends the scan at once. GIN
//! takes each entry's frequency from the first leaf page of its posting tree,
//! and never deletes that page: once VACUUM has emptied it (it held the
//! oldest row versions, which edits of SKUs, names and barcodes replace; new
//! products are written once, see `repo::insert`), the most common trigrams
//! are estimated at zero and read in full. At 1,000,000 products an exact SKU
//! search went from 2 ms to 165 ms that way; a rebuilt index is right again.
//! Run it after bulk edits and on a schedule (a nightly CronJob in
//! deploy/kubernetes).

use sqlx::PgPool;

/// The catalog tables whose GIN indexes the product search reads (barcodes
/// are searched through `products.search_text`; their table has none).
const SEARCH_TABLES: [&str; 3] = ["products", "search_tokens", "search_words"];

/// The search's GIN indexes, schema-qualified where needed, by name.
pub async fn list(db: &PgPool) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT i.indexrelid::regclass::text FROM pg_index i
           JOIN pg_class c ON c.oid = i.indexrelid
           JOIN pg_am a ON a.oid = c.relam
          WHERE a.amname = 'gin' AND i.indrelid = ANY (
                SELECT to_regclass(t)::oid FROM unnest($1::text[]) AS t)
          ORDER BY 1",
    )
    .bind(SEARCH_TABLES)
    .fetch_all(db)
    .await
}

/// Rebuilds `index` without blocking reads or writes of its table
/// (`REINDEX ... CONCURRENTLY`, which cannot run inside a transaction). If
/// it fails part-way PostgreSQL leaves an invalid copy named `<index>_ccnew`,
/// which `DROP INDEX CONCURRENTLY` removes; the index itself stays usable.
pub async fn rebuild(db: &PgPool, index: &str) -> Result<(), sqlx::Error> {
    // An identifier cannot be a bind parameter; `index` comes from `list`
    // (regclass text, quoted where needed), never from a client.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "REINDEX INDEX CONCURRENTLY {index}"
    )))
    .execute(db)
    .await
    .map(drop)
}
