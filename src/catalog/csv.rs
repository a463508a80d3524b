//! Product CSV: a streamed export and an all-or-nothing import.
//!
//! The export pages through the catalog with a database cursor and sends each
//! chunk as it is written, so memory stays flat however large the catalog.
//! The import parses and validates every row (on the blocking pool: CSV
//! parsing is CPU work) before it writes anything, then applies all rows in one
//! transaction: one bad row refuses the whole file. Rows equal to what is
//! stored are left alone, so importing an export changes nothing.
//!
//! Every exported cell goes through [`neutralize`] (OWASP's CSV injection
//! rule) so a spreadsheet never runs a product name as a formula; the import
//! undoes exactly that with [`restore`], so export → import is still a no-op.

use std::collections::{HashMap, HashSet};

use anyhow::Context;
use futures_util::StreamExt as _;
use poem::Body;
use rust_decimal::Decimal;
use sqlx::PgPool;
use uuid::Uuid;

use super::{
    barcode::Barcode,
    model::{parse_barcodes, ImportSummary, NewBarcode, ProductFields, Tracking},
    repo,
};
use crate::{
    error::{ApiError, Result, Validation},
    events,
    idempotency::{self, Idempotent},
    money::UnitAmount,
    state::AppState,
};

pub const COLUMNS: [&str; 12] = [
    "sku",
    "name",
    "description",
    "category_id",
    "unit",
    "unit_cost",
    "price",
    "reorder_point",
    "reorder_quantity",
    "active",
    "barcodes",
    "tracking",
];

/// Most rows one import may hold.
const MAX_ROWS: usize = 50_000;
/// Rows gathered before a chunk is sent (about 64 KiB).
const ROWS_PER_CHUNK: usize = 500;

type ExportRow = (
    String,
    String,
    String,
    Option<Uuid>,
    String,
    Decimal,
    Decimal,
    i32,
    i32,
    bool,
    String,
    String,
);

/// Streams the catalog as CSV, ordered by SKU.
pub fn export(db: PgPool) -> Body {
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Vec<u8>>>(4);
    tokio::spawn(async move {
        // A large catalog streamed to a slow client can outlive the API's
        // statement_timeout, which is meant for requests, not downloads: this
        // read lifts it for its own transaction only (rolled back on drop).
        let mut conn = match db.begin().await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(error = %e, "CSV export could not start");
                let _ = tx.send(Err(std::io::Error::other("export failed"))).await;
                return;
            }
        };
        if let Err(e) = sqlx::query("SET LOCAL statement_timeout = 0")
            .execute(&mut *conn)
            .await
        {
            tracing::warn!(error = %e, "CSV export could not start");
            let _ = tx.send(Err(std::io::Error::other("export failed"))).await;
            return;
        }
        let mut rows = sqlx::query_as::<_, ExportRow>(
            "SELECT p.sku, p.name, p.description, p.category_id, p.unit, p.unit_cost, p.price,
                    p.reorder_point, p.reorder_quantity, p.active,
                    COALESCE((SELECT string_agg(b.barcode || ':' || b.pack_quantity, '|' ORDER BY b.barcode)
                              FROM product_barcodes b WHERE b.product_id = p.id), ''),
                    p.tracking
             FROM products p ORDER BY lower(p.sku)",
        )
        .fetch(&mut *conn);
        let mut w = csv::Writer::from_writer(Vec::new());
        let mut count = 0usize;
        let _ = w.write_record(COLUMNS);
        while let Some(row) = rows.next().await {
            let r = match row {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, "CSV export failed");
                    let _ = tx.send(Err(std::io::Error::other("export failed"))).await;
                    return;
                }
            };
            let cells = [
                r.0,
                r.1,
                r.2,
                r.3.map(|c| c.to_string()).unwrap_or_default(),
                r.4,
                UnitAmount::new(r.5).to_string(),
                UnitAmount::new(r.6).to_string(),
                r.7.to_string(),
                r.8.to_string(),
                r.9.to_string(),
                r.10,
                r.11,
            ];
            let _ = w.write_record(cells.iter().map(|c| neutralize(c).into_owned()));
            count += 1;
            if count.is_multiple_of(ROWS_PER_CHUNK) {
                let full = std::mem::replace(&mut w, csv::Writer::from_writer(Vec::new()));
                let Ok(chunk) = full.into_inner() else { return };
                if tx.send(Ok(chunk)).await.is_err() {
                    return; // the client went away
                }
            }
        }
        if let Ok(rest) = w.into_inner() {
            let _ = tx.send(Ok(rest)).await;
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    Body::from_bytes_stream(stream)
}

/// Characters that make a spreadsheet read a cell as a formula (OWASP).
fn starts_formula(cell: &str) -> bool {
    cell.starts_with(['=', '+', '-', '@', '\t', '\r'])
}

/// True when the cell would be read as a formula, or would be mistaken for
/// an escaped one on import (a `'` in front of either).
fn needs_quote(cell: &str) -> bool {
    starts_formula(cell) || cell.strip_prefix('\'').is_some_and(needs_quote)
}

/// A cell as written to CSV: a leading `'` when a spreadsheet would
/// otherwise evaluate it. Use for every cell of every CSV the API writes.
pub fn neutralize(cell: &str) -> std::borrow::Cow<'_, str> {
    if needs_quote(cell) {
        format!("'{cell}").into()
    } else {
        cell.into()
    }
}

/// The inverse of [`neutralize`], for cells read back from an export.
pub fn restore(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if needs_quote(rest) => rest,
        _ => cell,
    }
}

/// One parsed, validated row.
struct ImportRow {
    label: String,
    fields: ProductFields,
    active: Option<bool>,
    /// None (column absent or empty): `none` for a new product, unchanged for
    /// an existing one.
    tracking: Option<Tracking>,
    barcodes: Vec<(Barcode, i32)>,
}

fn parse_rows(text: &str) -> Result<Vec<ImportRow>> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(false)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| ApiError::BadRequest(format!("The CSV header row cannot be read: {e}")))?
        .clone();
    let index: HashMap<&str, usize> = headers.iter().enumerate().map(|(i, h)| (h, i)).collect();
    let mut v = Validation::new();
    for required in ["sku", "name"] {
        if !index.contains_key(required) {
            v.push("header", format!("the column {required:?} is required"));
        }
    }
    for h in headers.iter() {
        if !COLUMNS.contains(&h) {
            v.push(
                "header",
                format!(
                    "unknown column {h:?}; expected some of {}",
                    COLUMNS.join(",")
                ),
            );
        }
    }
    v.finish()?;

    let mut rows = Vec::new();
    let mut v = Validation::new();
    let mut seen_skus: HashMap<String, String> = HashMap::new();
    let mut seen_barcodes: HashMap<String, String> = HashMap::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                v.push(&format!("row {line}"), format!("malformed CSV: {e}"));
                continue;
            }
        };
        if rows.len() >= MAX_ROWS {
            v.push("file", format!("at most {MAX_ROWS} rows per import"));
            break;
        }
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        let label = format!("row {line}");
        let prefix = format!("{label}: ");
        let get = |col: &str| restore(index.get(col).and_then(|i| record.get(*i)).unwrap_or(""));
        let opt = |col: &str| Some(get(col)).filter(|s| !s.is_empty());

        let mut parse_num = |col: &str| -> i32 {
            opt(col).map_or(0, |s| {
                s.parse().unwrap_or_else(|_| {
                    v.push(&format!("{prefix}{col}"), "must be a whole number");
                    0
                })
            })
        };
        let reorder_point = parse_num("reorder_point");
        let reorder_quantity = parse_num("reorder_quantity");
        let mut parse_money = |col: &str| -> Decimal {
            opt(col).map_or(Decimal::ZERO, |s| {
                s.parse().unwrap_or_else(|_| {
                    v.push(
                        &format!("{prefix}{col}"),
                        "must be a decimal number such as 12.50",
                    );
                    Decimal::ZERO
                })
            })
        };
        let unit_cost = parse_money("unit_cost");
        let price = parse_money("price");
        let category_id = match opt("category_id").map(str::parse::<Uuid>) {
            None => None,
            Some(Ok(id)) => Some(id),
            Some(Err(_)) => {
                v.push(
                    &format!("{prefix}category_id"),
                    "must be a category id (UUID)",
                );
                None
            }
        };
        let active = match opt("active") {
            None => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(_) => {
                v.push(&format!("{prefix}active"), "must be true or false");
                None
            }
        };
        let tracking = opt("tracking").and_then(|t| {
            let parsed = Tracking::parse(t);
            if parsed.is_none() {
                v.push(&format!("{prefix}tracking"), "must be none, lot or serial");
            }
            parsed
        });
        let mut new_barcodes = Vec::new();
        for part in get("barcodes").split('|').filter(|p| !p.trim().is_empty()) {
            // The pack quantity follows the last ':'; a code without one has pack 1.
            let (code, pack) = match part.rsplit_once(':') {
                Some((code, pack)) if pack.trim().parse::<i32>().is_ok() => {
                    (code, pack.trim().parse().ok())
                }
                _ => (part, None),
            };
            new_barcodes.push(NewBarcode {
                barcode: code.trim().to_owned(),
                pack_quantity: pack,
            });
        }
        let fields = ProductFields {
            sku: get("sku").to_owned(),
            name: get("name").to_owned(),
            description: get("description").to_owned(),
            category_id,
            unit: opt("unit").unwrap_or("each").to_owned(),
            unit_cost,
            price,
            reorder_point,
            reorder_quantity,
        }
        .normalised();
        fields.validate(&mut v, &prefix);
        let barcodes = parse_barcodes(&mut v, &format!("{prefix}barcodes"), &new_barcodes);
        if let Some(first) = seen_skus.insert(fields.sku.to_lowercase(), label.clone()) {
            v.push(
                &format!("{prefix}sku"),
                format!("{} is also on {first}", fields.sku),
            );
        }
        for (code, _) in &barcodes {
            if let Some(first) = seen_barcodes.insert(code.key.clone(), label.clone()) {
                v.push(
                    &format!("{prefix}barcodes"),
                    format!("{} is also on {first}", code.raw),
                );
            }
        }
        rows.push(ImportRow {
            label,
            fields,
            active,
            tracking,
            barcodes,
        });
    }
    v.finish()?;
    Ok(rows)
}

/// Validates the whole file, then applies it in one transaction.
pub async fn import(
    state: &AppState,
    text: String,
    idem: Option<Idempotent>,
) -> Result<ImportSummary> {
    let rows = tokio::task::spawn_blocking(move || parse_rows(&text))
        .await
        .context("CSV parsing task panicked")??;

    let mut tx = state.db.begin().await?;
    if let Some(first) = idempotency::claim(&idem, &mut tx).await? {
        return Ok(first);
    }
    let skus: Vec<String> = rows.iter().map(|r| r.fields.sku.to_lowercase()).collect();
    // Lock every product the file touches, in SKU order (as concurrent imports
    // would), so nothing changes between the checks and the writes.
    let existing: Vec<repo::ProductRow> = sqlx::query_as(
        "SELECT p.id, p.sku, p.name, p.description, p.category_id, p.unit, p.unit_cost, p.price,
                p.reorder_point, p.reorder_quantity, p.tracking, p.active, p.version, p.created_at,
                p.updated_at
         FROM products p WHERE lower(p.sku) = ANY($1) ORDER BY lower(p.sku) FOR UPDATE",
    )
    .bind(&skus)
    .fetch_all(&mut *tx)
    .await?;
    let existing_ids: Vec<Uuid> = existing.iter().map(|r| r.id).collect();
    let mut existing_barcodes = repo::barcodes_of(&mut *tx, &existing_ids).await?;
    let mut by_sku: HashMap<String, repo::ProductRow> = existing
        .into_iter()
        .map(|r| (r.fields.sku.to_lowercase(), r))
        .collect();

    let mut v = Validation::new();
    // Barcodes owned by a product other than the row's.
    let keys: Vec<String> = rows
        .iter()
        .flat_map(|r| r.barcodes.iter().map(|(c, _)| c.key.clone()))
        .collect();
    let owners: HashMap<String, String> = sqlx::query_as::<_, (String, String)>(
        "SELECT b.lookup_key, p.sku FROM product_barcodes b JOIN products p ON p.id = b.product_id
         WHERE b.lookup_key = ANY($1)",
    )
    .bind(&keys)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .collect();
    // Categories that do not exist.
    let categories: Vec<Uuid> = rows.iter().filter_map(|r| r.fields.category_id).collect();
    let known: HashSet<Uuid> =
        sqlx::query_scalar::<_, Uuid>("SELECT id FROM categories WHERE id = ANY($1)")
            .bind(&categories)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
    for r in &rows {
        for (code, _) in &r.barcodes {
            if let Some(owner) = owners.get(&code.key) {
                if owner.to_lowercase() != r.fields.sku.to_lowercase() {
                    v.push(
                        &format!("{}: barcodes", r.label),
                        format!("{} already belongs to product {owner}", code.raw),
                    );
                }
            }
        }
        if let Some(c) = r.fields.category_id {
            v.check(
                known.contains(&c),
                &format!("{}: category_id", r.label),
                "no category with this id",
            );
        }
    }
    v.finish()?;

    let mut summary = ImportSummary {
        created: 0,
        updated: 0,
        unchanged: 0,
    };
    let mut touched_keys = Vec::new();
    for r in rows {
        match by_sku.remove(&r.fields.sku.to_lowercase()) {
            None => {
                let tracking = r.tracking.unwrap_or_default();
                let row = repo::insert(&mut tx, &r.fields, tracking).await?;
                let active = r.active.unwrap_or(true);
                let row = if active {
                    row
                } else {
                    repo::update(&mut tx, row.id, &r.fields, false, tracking).await?
                };
                repo::insert_barcodes(&mut tx, row.id, &r.barcodes).await?;
                let id = row.id;
                let product = repo::with_barcodes(&mut *tx, vec![row]).await?.remove(0);
                events::emit(
                    &mut tx,
                    "product.created",
                    id,
                    serde_json::to_value(&product).unwrap_or_default(),
                )
                .await?;
                summary.created += 1;
            }
            Some(current) => {
                let active = r.active.unwrap_or(current.active);
                let tracking = r.tracking.unwrap_or(current.tracking);
                let mut stored: Vec<(String, i32)> = existing_barcodes
                    .remove(&current.id)
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|b| {
                        super::barcode::parse(&b.barcode)
                            .ok()
                            .map(|c| (c.key, b.pack_quantity))
                    })
                    .collect();
                let mut wanted: Vec<(String, i32)> = r
                    .barcodes
                    .iter()
                    .map(|(c, p)| (c.key.clone(), *p))
                    .collect();
                stored.sort();
                wanted.sort();
                let same_fields = current.fields.clone().normalised() == r.fields
                    && current.active == active
                    && current.tracking == tracking;
                if same_fields && stored == wanted {
                    summary.unchanged += 1;
                    continue;
                }
                let id = current.id;
                if tracking != current.tracking {
                    super::refuse_tracking_change(
                        &mut tx,
                        id,
                        &current.fields.sku,
                        current.tracking,
                    )
                    .await?;
                }
                let row = repo::update(&mut tx, id, &r.fields, active, tracking).await?;
                if stored != wanted {
                    repo::replace_barcodes(&mut tx, id, &r.barcodes).await?;
                }
                touched_keys.extend(stored.into_iter().map(|(k, _)| k));
                touched_keys.extend(wanted.into_iter().map(|(k, _)| k));
                let product = repo::with_barcodes(&mut *tx, vec![row]).await?.remove(0);
                events::emit(
                    &mut tx,
                    "product.updated",
                    id,
                    serde_json::to_value(&product).unwrap_or_default(),
                )
                .await?;
                summary.updated += 1;
            }
        }
    }
    idempotency::store(&idem, &mut tx, 200, &summary).await?;
    tx.commit().await?;
    super::forget_barcodes(state, &touched_keys).await;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::{neutralize, restore};

    #[test]
    fn formula_cells_are_neutralized_and_restored_exactly() {
        for (cell, written) in [
            ("=1+2", "'=1+2"),
            ("+41 555", "'+41 555"),
            ("-5", "'-5"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("'=x", "''=x"),
            ("'plain", "'plain"),
            ("plain", "plain"),
            ("", ""),
        ] {
            assert_eq!(neutralize(cell), written, "{cell:?}");
            assert_eq!(restore(&neutralize(cell)), cell, "{cell:?}");
        }
    }
}
