//! The `import` and `export` modes: the product CSV at scale.
//!
//! `import` generates a catalog of `--rows` products in the export's column
//! format (names from the search vocabulary, valid GTINs, categories it
//! creates, costs and prices, a few multi-line descriptions and case
//! barcodes), then, as a manager or admin:
//! 1. posts a copy with a few bad lines (caught while the rows are read) and
//!    checks that the 422 names exactly those lines and columns;
//! 2. posts a copy whose one bad line only the database can catch (an unknown
//!    category on the last line: every row is loaded before it is found) and
//!    checks the 422, and that nothing of either copy was written;
//! 3. posts the good file and times it (`import_<rows>_ms`), checks the answer
//!    (`created` = rows) and looks one product up by barcode;
//! 4. posts the same file again (every row `unchanged`) and times that.
//!
//! `export` streams `GET /api/v1/products/export.csv` and counts rows (CSV
//! records, quoted line breaks included) and bytes, with the time to the
//! first byte and to the end.
//!
//! Both sample the API's resident memory while they run: the first pid of
//! `--server-pids` is the API; its `VmRSS` is read every 20 ms and its
//! `VmHWM` (the kernel's peak) at the end. Started fresh for the phase, the
//! `VmHWM` is the phase's own peak. Nothing here asserts on time.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use rand::{rngs::SmallRng, Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use inventory_api::catalog::csv::COLUMNS;

use super::{connect, result, with_check_digit, Api, Common, MATERIALS, NOUNS};

#[derive(Args)]
pub struct ImportArgs {
    #[command(flatten)]
    common: Common,
    /// Products in the generated file.
    #[arg(long, default_value_t = 100_000)]
    rows: usize,
    /// Categories created (or reused) and spread over the products.
    #[arg(long, default_value_t = 20)]
    categories: usize,
    /// SKU prefix of the generated products (`<prefix>-<n, 7 digits>`).
    #[arg(long, default_value = "IMP")]
    prefix: String,
    /// Skip the second, all-unchanged import of the same file.
    #[arg(long)]
    no_reimport: bool,
}

#[derive(Args)]
pub struct ExportArgs {
    #[command(flatten)]
    common: Common,
    /// Rows the export should hold (a mismatch is printed, not fatal).
    #[arg(long)]
    expect_rows: Option<u64>,
}

/// A client for single large requests: no pool to speak of, a long timeout.
pub(super) fn big_client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()
        .context("building the HTTP client")
}

// ---------------------------------------------------------------------------
// Memory of the API process

/// Samples a process's VmRSS every 20 ms until stopped; the peak sample and
/// the kernel's VmHWM at the end, in MB.
pub(super) struct RssSampler {
    pid: Option<u32>,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<u64>,
}

/// `VmRSS` / `VmHWM` (kB) from /proc/<pid>/status.
fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim_start_matches(':').split_whitespace().next())
        .and_then(|kb| kb.parse().ok())
}

impl RssSampler {
    pub(super) fn start(server_pids: &[u32]) -> Self {
        let pid = server_pids.first().copied();
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            let Some(pid) = pid else { return 0 };
            let mut peak = 0;
            loop {
                peak = peak.max(status_kb(pid, "VmRSS").unwrap_or(0));
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                    _ = stopped.changed() => break,
                }
            }
            peak
        });
        Self { pid, stop, task }
    }

    /// (peak sampled VmRSS, VmHWM, VmRSS now) in MB, or None without a pid.
    pub(super) async fn finish(self) -> Option<(f64, f64, f64)> {
        let _ = self.stop.send(true);
        let peak = self.task.await.unwrap_or(0);
        let pid = self.pid?;
        let mb = |kb: u64| kb as f64 / 1024.0;
        Some((
            mb(peak),
            mb(status_kb(pid, "VmHWM").unwrap_or(0)),
            mb(status_kb(pid, "VmRSS").unwrap_or(0)),
        ))
    }
}

/// Prints the memory line and `RESULT <prefix>_rss_mb` (the VmHWM) etc.
pub(super) fn report_rss(prefix: &str, rss: Option<(f64, f64, f64)>) {
    match rss {
        Some((sampled, hwm, now)) => {
            println!(
                "  API memory: peak (VmHWM) {hwm:.1} MB, highest sampled VmRSS {sampled:.1} MB, \
                 VmRSS at the end {now:.1} MB"
            );
            result(&format!("{prefix}_rss_mb"), hwm);
            result(&format!("{prefix}_rss_sampled_mb"), sampled);
            result(&format!("{prefix}_rss_end_mb"), now);
        }
        None => println!("  API memory: not measured (give --server-pids API_PID)"),
    }
}

// ---------------------------------------------------------------------------
// The generated catalog

/// One generated file, and where its rows start (line numbers as the API
/// reports them: the header is line 1; a quoted line break moves the rest).
struct Catalog {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

const UNITS: [&str; 6] = ["each", "each", "each", "box", "kg", "m"];

impl Catalog {
    /// `rows` products, SKU `<prefix>-<n, 7 digits>`, EAN-13 `21<n, 10 digits><check>`
    /// (prefix 21: in-store numbers, apart from the seeded 20...), every
    /// fourth also a case GTIN-14 `1 21<n, 10 digits><check>` of 12 units.
    fn generate(rows: usize, prefix: &str, categories: &[Uuid]) -> Self {
        let mut rng = SmallRng::seed_from_u64(42);
        let mut out = Vec::with_capacity(rows);
        for n in 1..=rows as u64 {
            let material = MATERIALS[rng.random_range(0..MATERIALS.len())];
            let noun = NOUNS[rng.random_range(0..NOUNS.len())];
            let size = rng.random_range(2..=400);
            let description = match n % 50 {
                0 => format!("{material} {noun}, {size} mm.\nPacked in tens; \"heavy duty\"."),
                1..=20 => String::new(),
                _ => format!("{material} {noun} for general use, {size} mm"),
            };
            let category = if n % 10 == 0 || categories.is_empty() {
                String::new()
            } else {
                categories[rng.random_range(0..categories.len())].to_string()
            };
            let cents: u32 = rng.random_range(5..500_000);
            let cost = format!("{}.{:02}", cents / 100, cents % 100);
            let margin = rng.random_range(110..=250);
            let price_cents = u64::from(cents) * margin / 100;
            let price = format!("{}.{:02}", price_cents / 100, price_cents % 100);
            let ean = with_check_digit(&format!("21{n:010}"));
            let barcodes = if n % 4 == 0 {
                let case = with_check_digit(&format!("121{n:010}"));
                format!("{ean}:1|{case}:12")
            } else {
                format!("{ean}:1")
            };
            let tracking = match n % 100 {
                0 => "lot",
                1 => "serial",
                _ => "none",
            };
            out.push(vec![
                format!("{prefix}-{n:07}"),
                format!("{material} {noun} {size}mm"),
                description,
                category,
                UNITS[rng.random_range(0..UNITS.len())].to_owned(),
                cost,
                price,
                rng.random_range(0..50u32).to_string(),
                rng.random_range(10..200u32).to_string(),
                (n % 97 != 0).to_string(),
                barcodes,
                tracking.to_owned(),
            ]);
        }
        Self {
            header: COLUMNS.iter().map(|c| (*c).to_owned()).collect(),
            rows: out,
        }
    }

    /// The CSV text and the line each row starts on.
    fn to_csv(&self) -> Result<(Vec<u8>, Vec<u64>)> {
        let mut w = csv::Writer::from_writer(Vec::with_capacity(self.rows.len() * 130));
        w.write_record(&self.header)?;
        w.flush()?;
        let mut starts = Vec::with_capacity(self.rows.len());
        let mut line = 2;
        for r in &self.rows {
            starts.push(line);
            w.write_record(r)?;
            // Quoted line breaks inside a cell move the next row down.
            line += 1 + r
                .iter()
                .map(|c| c.matches('\n').count() as u64)
                .sum::<u64>();
        }
        Ok((w.into_inner().map_err(|e| anyhow!("{e}"))?, starts))
    }
}

/// A bad cell planted in a copy: row index, column, value, and the error the
/// API should answer (field suffix, words of the message).
struct Planted {
    row: usize,
    column: usize,
    value: String,
    field: &'static str,
    message: &'static str,
}

/// Posts a CSV as text/csv; (status, body, seconds).
pub(super) async fn post_csv(
    client: &reqwest::Client,
    api: &Api,
    csv: Vec<u8>,
) -> Result<(StatusCode, Value, f64)> {
    let started = Instant::now();
    let resp = client
        .post(format!("{}/api/v1/products/import", api.base))
        .header("authorization", &api.auth)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .context("POST /api/v1/products/import")?;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    Ok((status, body, started.elapsed().as_secs_f64()))
}

/// Posts a copy with `planted` cells and checks the 422 lists exactly them, in order.
async fn post_bad_copy(
    client: &reqwest::Client,
    api: &Api,
    catalog: &Catalog,
    planted: &[Planted],
    what: &str,
) -> Result<f64> {
    let mut copy = Catalog {
        header: catalog.header.clone(),
        rows: catalog.rows.clone(),
    };
    for p in planted {
        copy.rows[p.row][p.column] = p.value.clone();
    }
    let (csv, starts) = copy.to_csv()?;
    let (status, body, secs) = post_csv(client, api, csv).await?;
    if status != StatusCode::UNPROCESSABLE_ENTITY {
        bail!("{what}: expected 422, got {status}: {body}");
    }
    let errors = body["errors"].as_array().cloned().unwrap_or_default();
    let got: Vec<(String, String)> = errors
        .iter()
        .map(|e| {
            (
                e["field"].as_str().unwrap_or("").to_owned(),
                e["message"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let want: Vec<(String, &str)> = planted
        .iter()
        .map(|p| (format!("row {}: {}", starts[p.row], p.field), p.message))
        .collect();
    let matches = got.len() == want.len()
        && got
            .iter()
            .zip(&want)
            .all(|((gf, gm), (wf, wm))| gf == wf && gm.contains(wm));
    println!(
        "  {what}: 422 in {:.0} ms with {} per-line errors, {}",
        secs * 1000.0,
        got.len(),
        if matches {
            "exactly the planted lines and columns"
        } else {
            "NOT the planted ones"
        }
    );
    for (f, m) in got.iter().take(8) {
        println!("      {f}: {m}");
    }
    if !matches {
        for (f, m) in &want {
            println!("      expected {f}: ...{m}...");
        }
        bail!("{what}: the per-line errors differ from the planted ones");
    }
    Ok(secs)
}

/// Categories "Import category NN" (created, or found when they exist).
async fn ensure_categories(client: &reqwest::Client, api: &Api, n: usize) -> Result<Vec<Uuid>> {
    let mut ids = Vec::with_capacity(n);
    for i in 1..=n {
        let name = format!("Import category {i:02}");
        let resp = client
            .post(format!("{}/api/v1/categories", api.base))
            .header("authorization", &api.auth)
            .json(&json!({ "name": name }))
            .send()
            .await?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        let id = match status {
            StatusCode::CREATED => body["id"].as_str().map(str::to_owned),
            StatusCode::CONFLICT => {
                let page = super::get_json(client, api, "/api/v1/categories?limit=500").await?;
                page["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|c| c["name"] == name.as_str())
                    .and_then(|c| c["id"].as_str().map(str::to_owned))
            }
            _ => bail!("POST /api/v1/categories answered {status}: {body}"),
        };
        ids.push(
            id.and_then(|s| s.parse().ok())
                .ok_or_else(|| anyhow!("category {name} without an id: {body}"))?,
        );
    }
    Ok(ids)
}

/// Whether a product with exactly this SKU exists.
async fn sku_exists(client: &reqwest::Client, api: &Api, sku: &str) -> Result<bool> {
    let page = super::get_json(client, api, &format!("/api/v1/products?limit=5&q={sku}")).await?;
    Ok(page["items"].as_array().into_iter().flatten().any(|p| {
        p["sku"]
            .as_str()
            .is_some_and(|s| s.eq_ignore_ascii_case(sku))
    }))
}

pub async fn import(a: ImportArgs) -> Result<()> {
    let c = &a.common;
    let client = big_client()?;
    let api = connect(&client, c).await?;
    let categories = ensure_categories(&client, &api, a.categories).await?;
    let started = Instant::now();
    let catalog = Catalog::generate(a.rows, &a.prefix, &categories);
    let (csv, _) = catalog.to_csv()?;
    println!(
        "import: {} products, {:.1} MB of CSV (generated in {:.1} s), {} categories",
        a.rows,
        csv.len() as f64 / 1e6,
        started.elapsed().as_secs_f64(),
        categories.len()
    );
    result("import_bytes", csv.len() as f64);
    let first_sku = catalog.rows[0][0].clone();
    let last = a.rows - 1;
    if sku_exists(&client, &api, &first_sku).await? {
        bail!("{first_sku} already exists: import into a database without these products");
    }

    let rss = RssSampler::start(&c.server_pids);
    // 1. Bad lines the reader catches, spread through the file.
    let at = |f: f64| ((a.rows as f64 * f) as usize).min(last);
    let planted = [
        Planted {
            row: at(0.0001),
            column: 0,
            value: "bad sku!".into(),
            field: "sku",
            message: "characters",
        },
        Planted {
            row: at(0.2),
            column: 6,
            value: "-3".into(),
            field: "price",
            message: "between 0 and",
        },
        Planted {
            row: at(0.5),
            column: 10,
            value: "2100000000009".into(),
            field: "barcodes[0].barcode",
            message: "check digit",
        },
        Planted {
            row: at(0.7),
            column: 0,
            value: first_sku.clone(),
            field: "sku",
            message: "is also on row 2",
        },
        Planted {
            row: last,
            column: 7,
            value: "many".into(),
            field: "reorder_point",
            message: "whole number",
        },
    ];
    let refused_read = post_bad_copy(&client, &api, &catalog, &planted, "bad lines").await?;
    // 2. One bad line only the database finds: every row is loaded first.
    let unknown = Planted {
        row: last,
        column: 3,
        value: Uuid::new_v4().to_string(),
        field: "category_id",
        message: "no category",
    };
    let refused_db = post_bad_copy(
        &client,
        &api,
        &catalog,
        &[unknown],
        "unknown category on the last line",
    )
    .await?;
    let written = sku_exists(&client, &api, &first_sku).await?
        || sku_exists(&client, &api, &catalog.rows[last][0]).await?;
    println!(
        "  all-or-nothing: {}",
        if written {
            "VIOLATED: rows of a refused file were written"
        } else {
            "nothing of either refused file was written"
        }
    );
    if written {
        bail!("a refused import wrote rows");
    }
    result("import_refused_read_ms", refused_read * 1000.0);
    result("import_refused_db_ms", refused_db * 1000.0);

    // 3. The good file.
    let (status, body, secs) = post_csv(&client, &api, csv.clone()).await?;
    if status != StatusCode::OK {
        bail!("import answered {status}: {body}");
    }
    let created = body["created"].as_u64().unwrap_or(0);
    println!(
        "  import of {} rows: {:.2} s ({:.0} rows/s): {body}",
        a.rows,
        secs,
        a.rows as f64 / secs
    );
    if created != a.rows as u64 {
        bail!("expected created = {}, got {body}", a.rows);
    }
    let mid = a.rows / 2;
    let code = catalog.rows[mid][10].split(':').next().unwrap_or("");
    let found = super::get_json(
        &client,
        &api,
        &format!("/api/v1/products/by-barcode/{code}"),
    )
    .await?;
    if found["product"]["sku"] != catalog.rows[mid][0].as_str() {
        bail!(
            "barcode {code} does not find {}: {found}",
            catalog.rows[mid][0]
        );
    }
    result(&format!("import_{}_ms", a.rows), secs * 1000.0);
    result("import_ms", secs * 1000.0);
    result("import_created", created as f64);
    result("import_rows_per_s", a.rows as f64 / secs);

    // 4. The same file again: every row compared, nothing written.
    if !a.no_reimport {
        let (status, body, secs) = post_csv(&client, &api, csv).await?;
        if status != StatusCode::OK || body["unchanged"].as_u64() != Some(a.rows as u64) {
            bail!("re-import answered {status}: {body}");
        }
        println!("  re-import of the same file: {:.2} s: {body}", secs);
        result("reimport_ms", secs * 1000.0);
    }
    report_rss("import", rss.finish().await);
    Ok(())
}

pub async fn export(a: ExportArgs) -> Result<()> {
    let c = &a.common;
    let client = big_client()?;
    let api = connect(&client, c).await?;
    let rss = RssSampler::start(&c.server_pids);
    let started = Instant::now();
    let mut resp = client
        .get(format!("{}/api/v1/products/export.csv", api.base))
        .header("authorization", &api.auth)
        .send()
        .await
        .context("GET /api/v1/products/export.csv")?;
    let status = resp.status();
    if status != StatusCode::OK {
        let body = resp.text().await.unwrap_or_default();
        bail!("export answered {status}: {body}");
    }
    let mut first_byte = None;
    let (mut bytes, mut records, mut quoted) = (0u64, 0u64, false);
    let mut header = Vec::new();
    while let Some(chunk) = resp.chunk().await.context("reading the export")? {
        first_byte.get_or_insert_with(|| started.elapsed());
        bytes += chunk.len() as u64;
        if records == 0 && header.len() < 512 {
            header.extend_from_slice(&chunk[..chunk.len().min(512)]);
        }
        // A record ends at a line break outside quotes ("" inside quotes
        // toggles twice, so it needs no special case).
        for &b in chunk.iter() {
            match b {
                b'"' => quoted = !quoted,
                b'\n' if !quoted => records += 1,
                _ => {}
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let rows = records.saturating_sub(1);
    let header_line = String::from_utf8_lossy(&header);
    let header_line = header_line.lines().next().unwrap_or("");
    if header_line != COLUMNS.join(",") {
        bail!("the export starts with {header_line:?}, not the column header");
    }
    let ttfb = first_byte.unwrap_or_default().as_secs_f64();
    println!(
        "export: {rows} rows, {:.1} MB in {:.2} s ({:.0} rows/s, {:.1} MB/s); first byte after {:.0} ms",
        bytes as f64 / 1e6,
        secs,
        rows as f64 / secs,
        bytes as f64 / 1e6 / secs,
        ttfb * 1000.0
    );
    if let Some(want) = a.expect_rows {
        if want != rows {
            println!("  expected {want} rows, got {rows}");
        }
    }
    result("export_rows", rows as f64);
    result("export_bytes", bytes as f64);
    result("export_ms", secs * 1000.0);
    result("export_first_byte_ms", ttfb * 1000.0);
    result("export_rows_per_s", rows as f64 / secs);
    report_rss("export", rss.finish().await);
    Ok(())
}
