//! The `stocktake` mode: whole stocktakes through the API, at the sizes of
//! `--lines` (5,000 and 100,000 by default), counted per position.
//!
//! Set-up, per size (not timed): a warehouse of its own (`ST-<run>-<lines>`)
//! with `--locations` bins, `lines / 4` lot-tracked products (SKU `ST-<n>`,
//! EAN-13 `22<n, 10 digits><check>`, imported by CSV; a later size reuses
//! the products of an earlier one), each received by scanner `receive`
//! batches as two lots in two bins: `lines` positions of 1-40 units.
//!
//! Timed, as a stocktake is done:
//! 1. `open`: `POST /api/v1/counts` for the warehouse (the snapshot), with
//!    `include_lines: false` as a client opening a whole warehouse would:
//!    the answer carries `line_count`, not every line;
//! 2. `lines`: every position counted by scanner `count` events
//!    (`(01)GTIN(17)expiry(10)lot` with the bin's barcode), in batches of 500
//!    posted one after the other by one device; one position in 50 is
//!    counted one unit off (alternately over and under);
//! 3. `complete`: `POST /api/v1/counts/{id}/complete`.
//!
//! Checked (any mismatch fails the run): the count opened with exactly
//! `lines` lines; every count event was applied; completion posted exactly
//! one adjustment per position counted off, each by the difference; after it
//! every position of the warehouse holds what was counted. The API's memory
//! during completion is sampled (`--server-pids`). Nothing asserts on time.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use serde_json::{json, Value};
use uuid::Uuid;

use inventory_api::catalog::csv::COLUMNS;

use super::import::{big_client, post_csv, report_rss, RssSampler};
use super::{connect, get_json, result, scanner_device, with_check_digit, Api, Common};

#[derive(Args)]
pub struct StocktakeArgs {
    #[command(flatten)]
    common: Common,
    /// Stocktake sizes in positions (count lines), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "5000,100000")]
    lines: Vec<usize>,
    /// Bins in each stocktake's warehouse.
    #[arg(long, default_value_t = 20)]
    locations: usize,
    /// Events per scanner batch (the API takes at most 500).
    #[arg(long, default_value_t = 500)]
    batch: usize,
}

/// Positions per product: two lots, each in two bins.
const PER_PRODUCT: usize = 4;
/// One position in this many is counted one unit off.
const OFF_EVERY: usize = 50;

/// One position of the set-up: what the scanners receive and later count.
struct Position {
    product: usize,
    lot: &'static str,
    bin: usize,
    quantity: i64,
    counted: i64,
}

fn gtin13(product: usize) -> String {
    with_check_digit(&format!("22{product:010}"))
}

/// The GS1 element string a scanner reads off a lot's label.
fn gs1(p: &Position) -> String {
    let expiry = if p.lot == "A" { "281231" } else { "291231" };
    format!("(01)0{}(17){expiry}(10)L{}", gtin13(p.product), p.lot)
}

fn bin_code(bin: usize) -> String {
    format!("BIN-{bin:02}")
}

fn positions(lines: usize, bins: usize) -> Vec<Position> {
    (0..lines)
        .map(|i| {
            let product = i / PER_PRODUCT + 1;
            let lot = if i % 2 == 0 { "A" } else { "B" };
            let bin = (product * 7 + (i % PER_PRODUCT) / 2) % bins + 1;
            let quantity = (1 + (product * 13 + i * 3) % 40) as i64;
            let counted = match i % OFF_EVERY {
                0 if (i / OFF_EVERY).is_multiple_of(2) => quantity + 1,
                0 => quantity - 1,
                _ => quantity,
            };
            Position {
                product,
                lot,
                bin,
                quantity,
                counted,
            }
        })
        .collect()
}

pub async fn stocktake(a: StocktakeArgs) -> Result<()> {
    let client = big_client()?;
    let api = connect(&client, &a.common).await?;
    if !(1..=500).contains(&a.batch) || a.locations == 0 {
        bail!("--batch must be 1-500 and --locations at least 1");
    }
    let run = &Uuid::new_v4().simple().to_string()[..6];
    for &lines in &a.lines {
        let lines = lines.div_ceil(PER_PRODUCT) * PER_PRODUCT;
        // Location barcodes are unique across warehouses: one tag per stocktake.
        one_stocktake(&client, &api, &a, lines, &format!("{run}-{lines}")).await?;
    }
    Ok(())
}

async fn one_stocktake(
    client: &reqwest::Client,
    api: &Api,
    a: &StocktakeArgs,
    lines: usize,
    run: &str,
) -> Result<()> {
    println!("stocktake of {lines} positions");
    let started = Instant::now();
    let warehouse = post(
        client,
        api,
        "/api/v1/warehouses",
        &json!({ "code": format!("ST-{run}"), "name": format!("Stocktake bench {lines}") }),
    )
    .await?;
    let warehouse = id_of(&warehouse)?;
    for bin in 1..=a.locations {
        post(
            client,
            api,
            &format!("/api/v1/warehouses/{warehouse}/locations"),
            &json!({ "code": bin_code(bin), "barcode": format!("LOC-{run}-{bin:02}") }),
        )
        .await?;
    }
    import_products(client, api, lines / PER_PRODUCT).await?;
    let device = scanner_device(client, api, warehouse)
        .await?
        .ok_or_else(|| anyhow!("the scanner endpoints answer 404 in this build"))?;
    let plan = positions(lines, a.locations);
    let receipts: Vec<Value> = plan
        .iter()
        .map(|p| scan(p, "receive", p.quantity, warehouse, None, run))
        .collect();
    post_scans(client, api, &device, &receipts, a.batch).await?;
    println!(
        "  set-up: warehouse, {} bins, {} products, {lines} positions received in {:.1} s",
        a.locations,
        lines / PER_PRODUCT,
        started.elapsed().as_secs_f64()
    );

    // 1. Open: the snapshot of every position.
    let t = Instant::now();
    let count = post(
        client,
        api,
        "/api/v1/counts",
        &json!({ "warehouse_id": warehouse, "include_lines": false }),
    )
    .await?;
    let open = t.elapsed();
    let count_id = id_of(&count)?;
    let snapshot = count["line_count"].as_u64().unwrap_or(0) as usize;
    if snapshot != lines {
        bail!("the count opened with {snapshot} lines, {lines} positions were received");
    }

    // 2. The lines, as scanner count batches.
    let counts: Vec<Value> = plan
        .iter()
        .map(|p| scan(p, "count", p.counted, warehouse, Some(count_id), run))
        .collect();
    let t = Instant::now();
    post_scans(client, api, &device, &counts, a.batch).await?;
    let scanned = t.elapsed();

    // 3. Complete, with the API's memory sampled meanwhile.
    let rss = RssSampler::start(&a.common.server_pids);
    let t = Instant::now();
    let done = post(
        client,
        api,
        &format!("/api/v1/counts/{count_id}/complete"),
        &json!({}),
    )
    .await?;
    let complete = t.elapsed();
    let rss = rss.finish().await;
    let total = open + scanned + complete;
    check_adjustments(&plan, &done)?;
    check_positions(client, api, warehouse, &plan).await?;

    let off = plan.iter().filter(|p| p.counted != p.quantity).count();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "  open {:.0} ms, lines {:.0} ms ({} batches of {}), complete {:.0} ms ({off} adjustments): \
         total {:.0} ms",
        ms(open),
        ms(scanned),
        lines.div_ceil(a.batch),
        a.batch,
        ms(complete),
        ms(total)
    );
    println!("  checked: {lines} lines opened, every count applied, {off} adjustments by the difference, every position as counted");
    result(&format!("stocktake_{lines}_open_ms"), ms(open));
    result(&format!("stocktake_{lines}_lines_ms"), ms(scanned));
    result(&format!("stocktake_{lines}_complete_ms"), ms(complete));
    result(&format!("stocktake_{lines}_total_ms"), ms(total));
    report_rss(&format!("stocktake_{lines}_complete"), rss);
    Ok(())
}

/// A scanner event for position `p`.
fn scan(
    p: &Position,
    action: &str,
    quantity: i64,
    warehouse: Uuid,
    count: Option<Uuid>,
    run: &str,
) -> Value {
    json!({
        "event_id": Uuid::new_v4(),
        "barcode": gs1(p),
        "action": action,
        "quantity": quantity,
        "warehouse_id": warehouse,
        "count_id": count,
        "location": format!("LOC-{run}-{:02}", p.bin),
    })
}

/// Imports products ST-0000001..ST-<n> (lot-tracked); a re-import of ones
/// an earlier size made leaves them unchanged.
async fn import_products(client: &reqwest::Client, api: &Api, n: usize) -> Result<()> {
    let mut w = csv::Writer::from_writer(Vec::with_capacity(n * 80));
    w.write_record(COLUMNS)?;
    for product in 1..=n {
        let row: HashMap<&str, String> = HashMap::from([
            ("sku", format!("ST-{product:07}")),
            ("name", format!("Stocktake item {product}")),
            ("unit", "each".to_owned()),
            ("barcodes", format!("{}:1", gtin13(product))),
            ("tracking", "lot".to_owned()),
            ("active", "true".to_owned()),
        ]);
        w.write_record(
            COLUMNS
                .iter()
                .map(|c| row.get(c).map_or("", String::as_str)),
        )?;
    }
    let body = w.into_inner().map_err(|e| anyhow!("{e}"))?;
    let (status, answer, _) = post_csv(client, api, body).await?;
    if !status.is_success() {
        bail!("importing the stocktake products answered {status}: {answer}");
    }
    Ok(())
}

/// Posts events as scanner batches, one after the other; every event must be applied.
async fn post_scans(
    client: &reqwest::Client,
    api: &Api,
    device: &str,
    events: &[Value],
    batch: usize,
) -> Result<()> {
    let auth = format!("Bearer {device}");
    for chunk in events.chunks(batch) {
        let resp = client
            .post(format!("{}/api/v1/scanner/events/batch", api.base))
            .header("authorization", &auth)
            .json(&json!({ "events": chunk }))
            .send()
            .await
            .context("POST /api/v1/scanner/events/batch")?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("a scanner batch answered {status}: {body}");
        }
        let results = body["results"].as_array().cloned().unwrap_or_default();
        if results.len() != chunk.len() {
            bail!("{} results for {} events", results.len(), chunk.len());
        }
        if let Some(r) = results.iter().find(|r| r["status"] != "applied") {
            bail!("a scan was not applied: {r}");
        }
    }
    Ok(())
}

/// One adjustment per position counted off, by exactly the difference.
fn check_adjustments(plan: &[Position], done: &Value) -> Result<()> {
    let adjustments = done["transactions"]
        .as_array()
        .ok_or_else(|| anyhow!("completion answer without transactions"))?;
    let mut expected: Vec<i64> = plan
        .iter()
        .filter(|p| p.counted != p.quantity)
        .map(|p| p.counted - p.quantity)
        .collect();
    let mut got: Vec<i64> = adjustments
        .iter()
        .map(|t| t["quantity"].as_i64().unwrap_or(0))
        .collect();
    expected.sort_unstable();
    got.sort_unstable();
    if got != expected {
        bail!(
            "completion posted {} adjustments (sum {}), {} expected (sum {})",
            got.len(),
            got.iter().sum::<i64>(),
            expected.len(),
            expected.iter().sum::<i64>()
        );
    }
    if let Some(t) = adjustments.iter().find(|t| t["kind"] != "count_adjustment") {
        bail!("completion posted a {} row", t["kind"]);
    }
    Ok(())
}

/// Every position of the warehouse holds what was counted (read page by page).
async fn check_positions(
    client: &reqwest::Client,
    api: &Api,
    warehouse: Uuid,
    plan: &[Position],
) -> Result<()> {
    let mut want: HashMap<(String, String, String), i64> = plan
        .iter()
        .map(|p| {
            (
                (
                    format!("ST-{:07}", p.product),
                    bin_code(p.bin),
                    format!("L{}", p.lot),
                ),
                p.counted,
            )
        })
        .collect();
    let mut path = format!("/api/v1/stock/positions?warehouse_id={warehouse}&limit=500");
    loop {
        let page = get_json(client, api, &path).await?;
        for p in page["items"].as_array().into_iter().flatten() {
            let key = (
                p["sku"].as_str().unwrap_or("").to_owned(),
                p["location_code"].as_str().unwrap_or("").to_owned(),
                p["lot"].as_str().unwrap_or("").to_owned(),
            );
            let have = p["quantity"].as_i64().unwrap_or(-1);
            match want.remove(&key) {
                Some(q) if q == have => {}
                Some(q) => bail!("position {key:?} holds {have}, {q} were counted"),
                None => bail!("unexpected position {key:?} holding {have}"),
            }
        }
        match page["next_cursor"].as_str() {
            Some(c) => {
                path =
                    format!("/api/v1/stock/positions?warehouse_id={warehouse}&limit=500&cursor={c}")
            }
            None => break,
        }
    }
    if let Some((key, q)) = want.iter().find(|(_, q)| **q > 0) {
        bail!("position {key:?} is missing; {q} were counted");
    }
    Ok(())
}

/// POSTs JSON as the logged-in user; the answer must be 2xx.
async fn post(client: &reqwest::Client, api: &Api, path: &str, body: &Value) -> Result<Value> {
    let resp = client
        .post(format!("{}{path}", api.base))
        .header("authorization", &api.auth)
        .json(body)
        .send()
        .await
        .with_context(|| format!("POST {path}"))?;
    let status = resp.status();
    let answer: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("POST {path} answered {status}: {answer}");
    }
    Ok(answer)
}

fn id_of(v: &Value) -> Result<Uuid> {
    v["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("answer without id: {v}"))
}
