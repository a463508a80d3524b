//! Product CSV: a streamed export and an all-or-nothing import.
//!
//! The export pages through the catalog with a database cursor and sends each
//! chunk as it is written, so memory stays flat however large the catalog.
//!
//! The import runs in one transaction: one bad row refuses the whole file and
//! nothing changes. The file is read and each row validated on the blocking
//! pool (CSV parsing is CPU work); valid rows stream on, a few thousand at a
//! time, into temporary tables (`COPY`), so the parsed file is never held in
//! memory. Every problem is reported per line (`row <line>: <column>` and the
//! reason): first what the rows themselves get wrong (checked while reading,
//! duplicates within the file included), then, once every row is valid, what
//! only the catalog can tell (a barcode of another product, an unknown
//! category), found by set-based queries. Only then are products written, a
//! few statements for the whole file (bench/README.md, "CSV import and
//! export", has the figures). Rows equal to what is stored are left alone, so
//! importing an export changes nothing.
//!
//! Every exported cell goes through [`neutralize`] (OWASP's CSV injection
//! rule) so a spreadsheet never runs a product name as a formula; the import
//! undoes exactly that with [`restore`], so export → import is still a no-op.

use std::collections::{hash_map::Entry, HashMap};

use anyhow::Context;
use bytes::Bytes;
use futures_util::StreamExt as _;
use poem::Body;
use rust_decimal::Decimal;
use sqlx::PgPool;
use uuid::Uuid;

use super::{
    barcode::Barcode,
    model::{parse_barcodes, ImportSummary, NewBarcode, ProductFields, Tracking},
};
use crate::{
    error::{ApiError, Result, Validation},
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

/// Most rows one import may hold (the body limit for the import,
/// `MAX_IMPORT_BYTES`, is sized for this many).
const MAX_ROWS: usize = 100_000;
/// Valid rows sent to PostgreSQL per `COPY` while the file is read.
const ROWS_PER_COPY: usize = 5_000;
/// Per-line errors listed in one answer; reading stops after that many.
const MAX_ERRORS: usize = 1_000;
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
        let started = async {
            let mut conn = crate::db::begin(&db).await?;
            sqlx::query("SET LOCAL statement_timeout = 0")
                .execute(&mut *conn)
                .await?;
            Ok::<_, sqlx::Error>(conn)
        };
        let mut conn = match started.await {
            Ok(conn) => conn,
            Err(e) => {
                crate::db::note_if_lost(&e);
                tracing::warn!(error = %e, "CSV export could not start");
                let _ = tx.send(Err(std::io::Error::other("export failed"))).await;
                return;
            }
        };
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
                    crate::db::note_if_lost(&e);
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
    fields: ProductFields,
    active: Option<bool>,
    /// None (column absent or empty): `none` for a new product, unchanged for
    /// an existing one.
    tracking: Option<Tracking>,
    barcodes: Vec<(Barcode, i32)>,
}

/// Valid rows in PostgreSQL's COPY text format, for the staging tables.
#[derive(Default)]
struct CopyChunk {
    rows: Vec<u8>,
    barcodes: Vec<u8>,
    count: usize,
}

impl CopyChunk {
    /// One field: backslash, tab and line breaks escaped (other control
    /// characters never get this far: `crate::input` refuses them).
    fn text(buf: &mut Vec<u8>, value: &str) {
        for b in value.bytes() {
            match b {
                b'\\' => buf.extend_from_slice(b"\\\\"),
                b'\t' => buf.extend_from_slice(b"\\t"),
                b'\n' => buf.extend_from_slice(b"\\n"),
                b'\r' => buf.extend_from_slice(b"\\r"),
                _ => buf.push(b),
            }
        }
    }

    fn push(&mut self, line: u64, r: &ImportRow) {
        use std::io::Write as _;
        let f = &r.fields;
        let buf = &mut self.rows;
        let _ = write!(buf, "{line}\t");
        for text in [&f.sku, &f.name, &f.description] {
            Self::text(buf, text);
            buf.push(b'\t');
        }
        match f.category_id {
            Some(c) => {
                let _ = write!(buf, "{c}\t");
            }
            None => buf.extend_from_slice(b"\\N\t"),
        }
        Self::text(buf, &f.unit);
        let _ = write!(
            buf,
            "\t{}\t{}\t{}\t{}\t",
            f.unit_cost, f.price, f.reorder_point, f.reorder_quantity
        );
        match r.active {
            Some(a) => {
                let _ = write!(buf, "{a}\t");
            }
            None => buf.extend_from_slice(b"\\N\t"),
        }
        match r.tracking {
            Some(t) => buf.extend_from_slice(t.as_str().as_bytes()),
            None => buf.extend_from_slice(b"\\N"),
        }
        buf.push(b'\n');
        for (ord, (code, pack)) in r.barcodes.iter().enumerate() {
            let buf = &mut self.barcodes;
            let _ = write!(buf, "{line}\t{ord}\t");
            Self::text(buf, &code.key);
            buf.push(b'\t');
            Self::text(buf, &code.raw);
            let _ = writeln!(buf, "\t{}\t{pack}", code.symbology.code());
        }
        self.count += 1;
    }
}

/// Reads and validates the file row by row (CPU work: run it on the blocking
/// pool) and sends the valid rows on in chunks of [`ROWS_PER_COPY`], so the
/// parsed file is never held whole. After the first bad row nothing more is
/// sent, but every row is still checked so the answer lists each bad line
/// (up to [`MAX_ERRORS`]). Duplicates within the file are found here, from a
/// map of SKUs and barcode keys to the line that has them first.
fn read_rows(text: &[u8], out: &tokio::sync::mpsc::Sender<CopyChunk>) -> Result<usize> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(false)
        .from_reader(text);
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

    let mut rows = 0usize;
    let mut chunk = CopyChunk::default();
    let mut v = Validation::new();
    let mut seen_skus: HashMap<String, u64> = HashMap::new();
    let mut seen_barcodes: HashMap<String, u64> = HashMap::new();
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                v.push(&format!("row {line}"), format!("malformed CSV: {e}"));
                if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                    break;
                }
                continue;
            }
        }
        if rows >= MAX_ROWS {
            v.push("file", format!("at most {MAX_ROWS} rows per import"));
            break;
        }
        if v.len() >= MAX_ERRORS {
            v.push(
                "file",
                format!("stopped after {MAX_ERRORS} errors; correct these and import again"),
            );
            break;
        }
        rows += 1;
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        let row = parse_row(&record, &index, line, &mut v);
        let prefix = format!("row {line}: ");
        match seen_skus.entry(row.fields.sku.to_lowercase()) {
            Entry::Occupied(first) => {
                v.push(
                    &format!("{prefix}sku"),
                    format!("{} is also on row {}", row.fields.sku, first.get()),
                );
            }
            Entry::Vacant(e) => {
                e.insert(line);
            }
        }
        for (code, _) in &row.barcodes {
            match seen_barcodes.entry(code.key.clone()) {
                Entry::Occupied(first) => {
                    v.push(
                        &format!("{prefix}barcodes"),
                        format!("{} is also on row {}", code.raw, first.get()),
                    );
                }
                Entry::Vacant(e) => {
                    e.insert(line);
                }
            }
        }
        if v.is_empty() {
            chunk.push(line, &row);
            // A failed send: the request ended (answered from the idempotency
            // key, or failed); nothing more to read for.
            if chunk.count >= ROWS_PER_COPY
                && out.blocking_send(std::mem::take(&mut chunk)).is_err()
            {
                return Ok(rows);
            }
        }
    }
    v.finish()?;
    if chunk.count > 0 {
        let _ = out.blocking_send(chunk);
    }
    Ok(rows)
}

/// One record: every field checked, problems recorded as `row <line>: <column>`.
fn parse_row(
    record: &csv::StringRecord,
    index: &HashMap<&str, usize>,
    line: u64,
    v: &mut Validation,
) -> ImportRow {
    let prefix = format!("row {line}: ");
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
    fields.validate(v, &prefix);
    let barcodes = parse_barcodes(v, &format!("{prefix}barcodes"), &new_barcodes);
    ImportRow {
        fields,
        active,
        tracking,
        barcodes,
    }
}

/// Validates the whole file, then applies it in one transaction.
///
/// The rows stream from the reader into two temporary tables (`COPY`) while
/// the file is read; then the checks that need the database and the writes
/// are set-based statements over those tables, whatever the number of rows.
/// Nothing is written to the catalog unless every row passed every check.
pub async fn import(
    state: &AppState,
    text: Bytes,
    idem: Option<Idempotent>,
) -> Result<ImportSummary> {
    let (chunks_tx, mut chunks) = tokio::sync::mpsc::channel::<CopyChunk>(2);
    let reader = tokio::task::spawn_blocking(move || read_rows(&text, &chunks_tx));

    let mut tx = crate::db::begin(&state.db).await?;
    if let Some(first) = idempotency::claim(&idem, &mut tx).await? {
        return Ok(first);
    }
    // The statements below each work on the whole file; the request's own
    // deadline (REQUEST_TIMEOUT_SECONDS) bounds them instead of the
    // per-statement default meant for single-row work.
    // work_mem: the sorts and hashes over the whole file stay in memory
    // (PostgreSQL's, for this transaction; 4 MB spilled them to disk).
    let timeout_ms = state.config.request_timeout.as_millis();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "SET LOCAL statement_timeout = {timeout_ms}; SET LOCAL work_mem = '32MB'"
    )))
    .execute(&mut *tx)
    .await?;
    staging::create(&mut tx).await?;
    while let Some(chunk) = chunks.recv().await {
        staging::copy(&mut tx, &chunk).await?;
    }
    reader.await.context("CSV reading task panicked")??;

    staging::prepare(&mut tx).await?;
    let errors = staging::database_errors(&mut tx).await?;
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    if let Some((sku, held, tracking)) = staging::tracking_in_use(&mut tx).await? {
        return Err(super::tracking_in_use(&sku, held, tracking));
    }
    let summary = staging::classify(&mut tx).await?;
    let touched_keys = staging::apply(&mut tx).await?;
    staging::emit_events(&mut tx).await?;
    idempotency::store(&idem, &mut tx, 200, &summary).await?;
    tx.commit().await?;
    super::forget_barcodes(state, &touched_keys).await;
    Ok(summary)
}

/// The set-based half of the import: SQL over two temporary tables that live
/// for the import's transaction (`ON COMMIT DROP`; a rollback drops them too).
/// Statements that name them are not kept as prepared statements
/// (`persistent(false)`): the tables are new in every import. Hence in a
/// transaction ([`InTransaction`], which the import is anyway).
mod staging {
    use super::{CopyChunk, ImportSummary, MAX_ERRORS};
    use crate::{
        catalog::{model::Tracking, repo},
        db::InTransaction,
        error::{FieldError, Result},
    };

    /// `import_rows`: one row per line of the file (`line` as reported in
    /// errors), plus what the import decides for it: the product it is
    /// (`product_id`: a new id unless the SKU exists, then `existing`), and
    /// `kind` c(reated), u(pdated) or n (unchanged).
    /// `import_barcodes`: the row's barcodes in file order (`ord`).
    pub async fn create(tx: &mut InTransaction) -> Result<()> {
        sqlx::raw_sql(
            "CREATE TEMP TABLE import_rows (
                 line bigint NOT NULL, sku text NOT NULL, name text NOT NULL,
                 description text NOT NULL, category_id uuid, unit text NOT NULL,
                 unit_cost numeric NOT NULL, price numeric NOT NULL,
                 reorder_point integer NOT NULL, reorder_quantity integer NOT NULL,
                 active boolean, tracking text,
                 product_id uuid NOT NULL DEFAULT gen_random_uuid(),
                 kind \"char\" NOT NULL DEFAULT 'c', existing boolean NOT NULL DEFAULT false,
                 barcodes_changed boolean NOT NULL DEFAULT false
             ) ON COMMIT DROP;
             CREATE TEMP TABLE import_barcodes (
                 line bigint NOT NULL, ord integer NOT NULL, lookup_key text NOT NULL,
                 barcode text NOT NULL, symbology text NOT NULL, pack_quantity integer NOT NULL
             ) ON COMMIT DROP;",
        )
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    pub async fn copy(tx: &mut InTransaction, chunk: &CopyChunk) -> Result<()> {
        let mut copy = tx
            .copy_in_raw(
                "COPY import_rows (line, sku, name, description, category_id, unit, unit_cost,
                     price, reorder_point, reorder_quantity, active, tracking) FROM STDIN",
            )
            .await?;
        copy.send(chunk.rows.as_slice()).await?;
        copy.finish().await?;
        if !chunk.barcodes.is_empty() {
            let mut copy = tx
                .copy_in_raw(
                    "COPY import_barcodes (line, ord, lookup_key, barcode, symbology, pack_quantity)
                     FROM STDIN",
                )
                .await?;
            copy.send(chunk.barcodes.as_slice()).await?;
            copy.finish().await?;
        }
        Ok(())
    }

    /// Indexes and statistics for the joins below, then the products the
    /// file names, locked in SKU order (as every import locks them, so two
    /// imports cannot deadlock) so nothing changes between checks and writes.
    /// Statistics again once `product_id` is known: without them the planner
    /// takes every row for new and joins the rest by nested loops over
    /// aggregates (minutes instead of milliseconds for 12,000 updated rows).
    pub async fn prepare(tx: &mut InTransaction) -> Result<()> {
        sqlx::raw_sql(
            "CREATE INDEX ON import_rows (line);
             CREATE INDEX ON import_barcodes (line);
             ANALYZE import_rows;
             ANALYZE import_barcodes;",
        )
        .execute(&mut **tx)
        .await?;
        sqlx::query(
            "WITH locked AS (
                 SELECT p.id, lower(p.sku) AS k FROM products p
                 WHERE lower(p.sku) IN (SELECT lower(sku) FROM import_rows)
                 ORDER BY lower(p.sku) FOR UPDATE
             )
             UPDATE import_rows r SET product_id = locked.id, existing = true
             FROM locked WHERE locked.k = lower(r.sku)",
        )
        .persistent(false)
        .execute(&mut **tx)
        .await?;
        sqlx::raw_sql("ANALYZE import_rows")
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// What only the database can tell, per line, in line order: a barcode
    /// that belongs to another product, a category that does not exist.
    pub async fn database_errors(tx: &mut InTransaction) -> Result<Vec<FieldError>> {
        let found: Vec<(i64, String, String)> = sqlx::query_as(
            "SELECT line, field, message FROM (
                 SELECT ib.line, ib.ord, 'barcodes' AS field,
                        ib.barcode || ' already belongs to product ' || p.sku AS message
                 FROM import_barcodes ib
                 JOIN product_barcodes b ON b.lookup_key = ib.lookup_key
                 JOIN products p ON p.id = b.product_id
                 JOIN import_rows r ON r.line = ib.line
                 WHERE lower(p.sku) <> lower(r.sku)
                 UNION ALL
                 SELECT r.line, 2147483647, 'category_id', 'no category with this id'
                 FROM import_rows r
                 WHERE r.category_id IS NOT NULL
                   AND NOT EXISTS (SELECT 1 FROM categories c WHERE c.id = r.category_id)
             ) e ORDER BY line, ord LIMIT $1",
        )
        .bind(MAX_ERRORS as i64 + 1)
        .persistent(false)
        .fetch_all(&mut **tx)
        .await?;
        let mut errors: Vec<FieldError> = found
            .into_iter()
            .take(MAX_ERRORS)
            .map(|(line, field, message)| FieldError {
                field: format!("row {line}: {field}"),
                message,
            })
            .collect();
        if errors.len() == MAX_ERRORS {
            errors.push(FieldError {
                field: "file".into(),
                message: format!(
                    "stopped after {MAX_ERRORS} errors; correct these and import again"
                ),
            });
        }
        Ok(errors)
    }

    /// The first line (in file order) that changes the tracking of a product
    /// holding stock: its SKU, the units held and the tracking they are under.
    pub async fn tracking_in_use(
        tx: &mut InTransaction,
    ) -> Result<Option<(String, i64, Tracking)>> {
        Ok(sqlx::query_as(
            "SELECT sku, held, tracking FROM (
                 SELECT r.line, p.sku, p.tracking,
                        (SELECT COALESCE(sum(s.quantity), 0)::bigint FROM stock_levels s
                         WHERE s.product_id = p.id) AS held
                 FROM import_rows r JOIN products p ON p.id = r.product_id
                 WHERE r.existing AND r.tracking IS NOT NULL AND r.tracking <> p.tracking
             ) t WHERE held > 0 ORDER BY line LIMIT 1",
        )
        .persistent(false)
        .fetch_optional(&mut **tx)
        .await?)
    }

    /// Decides each row of an existing SKU (the others stay c(reated)): every field,
    /// `active`, `tracking` (an empty cell keeps the stored value) and the set
    /// of barcodes with their pack quantities equal to what is stored:
    /// unchanged; otherwise updated. Importing an export therefore writes
    /// nothing.
    pub async fn classify(tx: &mut InTransaction) -> Result<ImportSummary> {
        sqlx::query(
            "WITH wanted AS MATERIALIZED (
                 SELECT line, array_agg(lookup_key || ':' || pack_quantity ORDER BY lookup_key) AS codes
                 FROM import_barcodes GROUP BY line
             ), stored AS MATERIALIZED (
                 SELECT b.product_id,
                        array_agg(b.lookup_key || ':' || b.pack_quantity ORDER BY b.lookup_key) AS codes
                 FROM product_barcodes b
                 WHERE b.product_id IN (SELECT product_id FROM import_rows WHERE existing)
                 GROUP BY b.product_id
             ), compared AS (
                 SELECT r.line,
                        s.codes IS DISTINCT FROM w.codes AS barcodes_changed,
                        p.sku = r.sku AND p.name = r.name AND p.description = r.description
                        AND p.category_id IS NOT DISTINCT FROM r.category_id AND p.unit = r.unit
                        AND p.unit_cost = r.unit_cost AND p.price = r.price
                        AND p.reorder_point = r.reorder_point
                        AND p.reorder_quantity = r.reorder_quantity
                        AND p.active = COALESCE(r.active, p.active)
                        AND p.tracking = COALESCE(r.tracking, p.tracking) AS same_fields
                 FROM import_rows r
                 JOIN products p ON p.id = r.product_id AND r.existing
                 LEFT JOIN stored s ON s.product_id = p.id
                 LEFT JOIN wanted w ON w.line = r.line
             )
             UPDATE import_rows r
             SET kind = CASE WHEN c.same_fields AND NOT c.barcodes_changed THEN 'n' ELSE 'u' END,
                 barcodes_changed = c.barcodes_changed
             FROM compared c WHERE c.line = r.line",
        )
        .persistent(false)
        .execute(&mut **tx)
        .await?;
        let counts: Vec<(String, i64)> =
            sqlx::query_as("SELECT kind::text, count(*) FROM import_rows GROUP BY kind")
                .persistent(false)
                .fetch_all(&mut **tx)
                .await?;
        let count = |k: &str| {
            counts
                .iter()
                .find(|(kind, _)| kind == k)
                .map_or(0, |(_, n)| *n as u32)
        };
        Ok(ImportSummary {
            created: count("c"),
            updated: count("u"),
            unchanged: count("n"),
        })
    }

    /// Writes the created and updated rows; returns the barcode keys whose
    /// cached lookups are stale (every barcode an updated product had or
    /// gets: a lookup answer embeds the product).
    ///
    /// New products' barcodes are written BEFORE the products, their foreign
    /// key checked at the end (migration 20261202230001): the products'
    /// insert trigger then computes each `search_text` once, barcodes
    /// included, where the barcodes' own trigger would otherwise rewrite
    /// every new product (and its trigram index entries) a second time.
    pub async fn apply(tx: &mut InTransaction) -> Result<Vec<String>> {
        let touched: Vec<String> = sqlx::query_scalar(
            "SELECT b.lookup_key FROM product_barcodes b
             JOIN import_rows r ON r.product_id = b.product_id WHERE r.kind = 'u'
             UNION
             SELECT ib.lookup_key FROM import_barcodes ib
             JOIN import_rows r ON r.line = ib.line WHERE r.kind = 'u'",
        )
        .persistent(false)
        .fetch_all(&mut **tx)
        .await?;
        repo::defer_barcode_fk(&mut **tx).await?;
        sqlx::query(
            "UPDATE products p
             SET sku = r.sku, name = r.name, description = r.description,
                 category_id = r.category_id, unit = r.unit, unit_cost = r.unit_cost,
                 price = r.price, reorder_point = r.reorder_point,
                 reorder_quantity = r.reorder_quantity, active = COALESCE(r.active, p.active),
                 tracking = COALESCE(r.tracking, p.tracking), version = p.version + 1
             FROM import_rows r WHERE r.kind = 'u' AND p.id = r.product_id",
        )
        .persistent(false)
        .execute(&mut **tx)
        .await?;
        sqlx::query(
            "DELETE FROM product_barcodes b USING import_rows r
             WHERE r.kind = 'u' AND r.barcodes_changed AND b.product_id = r.product_id",
        )
        .persistent(false)
        .execute(&mut **tx)
        .await?;
        sqlx::query(
            "INSERT INTO product_barcodes (lookup_key, barcode, symbology, product_id, pack_quantity)
             SELECT ib.lookup_key, ib.barcode, ib.symbology, r.product_id, ib.pack_quantity
             FROM import_barcodes ib JOIN import_rows r ON r.line = ib.line
             WHERE r.kind = 'c' OR (r.kind = 'u' AND r.barcodes_changed)
             ORDER BY ib.line, ib.ord",
        )
        .persistent(false)
        .execute(&mut **tx)
        .await?;
        sqlx::query(
            "INSERT INTO products (id, sku, name, description, category_id, unit, unit_cost,
                                   price, reorder_point, reorder_quantity, tracking, active)
             SELECT product_id, sku, name, description, category_id, unit, unit_cost, price,
                    reorder_point, reorder_quantity, COALESCE(tracking, 'none'),
                    COALESCE(active, true)
             FROM import_rows WHERE kind = 'c' ORDER BY line",
        )
        .persistent(false)
        .execute(&mut **tx)
        .await?;
        repo::check_barcode_fk(&mut **tx).await?;
        Ok(touched)
    }

    /// `product.created` / `product.updated` for each written row, in file
    /// order, with the product as stored (barcodes included): one statement.
    /// The payload is built in SQL ([`repo::PRODUCT_EVENT_JSON`], the same
    /// JSON as `Product`'s serde form that every other product event carries;
    /// `tests/catalog.rs` compares the two). Built in Rust a batch at a time
    /// it cost 8 of the 24 s of a 100,000-row import: a round trip per batch
    /// and every payload serialised, sent and parsed again as jsonb.
    pub async fn emit_events(tx: &mut InTransaction) -> Result<()> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO outbox (topic, aggregate_id, payload)
             SELECT CASE r.kind WHEN 'c' THEN 'product.created' ELSE 'product.updated' END,
                    p.id, {}
             FROM import_rows r JOIN products p ON p.id = r.product_id
             WHERE r.kind IN ('c', 'u')
             ORDER BY r.line",
            repo::PRODUCT_EVENT_JSON
        )))
        .persistent(false)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
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
