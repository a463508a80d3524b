//! Load generator for the Inventory API benchmarks (`harness = false`).
//!
//! It measures a running API; it asserts nothing and exits non-zero only when it
//! cannot set up (API unreachable, login refused, no seeded data). Each mode
//! prints a human summary and `RESULT <key> <value>` lines that
//! `scripts/bench.sh` collects. See `bench/README.md` for what each figure means.
//!
//! ```text
//! cargo bench --bench load -- movements --url http://127.0.0.1:18097 --token T -c 16 --duration 20 [--rate R]
//! cargo bench --bench load -- lookup    --email E --password P -c 16 --duration 10
//! cargo bench --bench load -- search    --email E --password P --levels 1,8 --products 1000000 [--categories ID,...]
//! cargo bench --bench load -- history   --email E --password P --filter product=product_id=ID [--filter ...]
//! cargo bench --bench load -- scan-batch  --email ADMIN --password P --levels 1,4
//! cargo bench --bench load -- scan-single --email ADMIN --password P -c 32
//! ```

use std::{
    collections::BTreeMap,
    future::Future,
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use poem::{
    get, handler, http::StatusCode, listener::TcpAcceptor, web::Data, EndpointExt, Response, Route,
    Server,
};
use rand::{rngs::SmallRng, Rng, SeedableRng};
use serde_json::{json, Value};
use time::{format_description::well_known::Rfc3339, OffsetDateTime};
use uuid::Uuid;

#[path = "load/chart.rs"]
mod chart;
#[path = "load/import.rs"]
mod import;
#[path = "load/stocktake.rs"]
mod stocktake;

#[derive(Parser)]
#[command(
    name = "load",
    about = "Load generator for the Inventory API (see bench/README.md)"
)]
struct Cli {
    #[command(subcommand)]
    mode: Option<Mode>,
    /// Appended by `cargo bench`; ignored.
    #[arg(long, global = true, hide = true)]
    bench: bool,
}

#[derive(Subcommand)]
enum Mode {
    /// Random receive/issue over many products (closed loop, or paced with --rate).
    Movements(MovementsArgs),
    /// Reserve-then-cancel cycles on ONE product (contention on one level).
    Reservations(ReservationsArgs),
    /// Cached barcode lookups, then a bare poem endpoint serving the same bytes.
    Lookup(LookupArgs),
    /// Product search latency per query shape, sequential and concurrent.
    Search(SearchArgs),
    /// Ledger listing latency per filter, first page and deep in the cursor chain.
    History(HistoryArgs),
    /// Scanner batches of 500 events (needs a manager/admin login).
    ScanBatch(ScanBatchArgs),
    /// Single scanner events (needs a manager/admin login).
    ScanSingle(ScanSingleArgs),
    /// Draws the growth curve (`scripts/bench.sh growth`) as an SVG.
    GrowthChart(chart::ChartArgs),
    /// CSV import of many products: refused copies, the import, a re-import.
    Import(import::ImportArgs),
    /// The streamed CSV export: rows, bytes, time.
    Export(import::ExportArgs),
    /// Whole stocktakes per position: open a count, scanner count batches, complete.
    Stocktake(stocktake::StocktakeArgs),
    /// Internal: the bare endpoint of `lookup`, run as a child process.
    #[command(hide = true)]
    BareServer(BareServerArgs),
    /// The stack without the application, for `movements`: poem and a sqlx pool
    /// calling the database function the API's one-statement path calls.
    BareMovements(BareMovementsArgs),
    /// CPU used by each command (postgres, inventory-api, load, pgbench, ...)
    /// over a window: where a run's two cores went.
    CpuSplit(CpuSplitArgs),
}

#[derive(Args)]
struct BareMovementsArgs {
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// The user recorded as the movements' actor.
    #[arg(long)]
    actor: Uuid,
    /// Pool size (the API's default DATABASE_MAX_CONNECTIONS).
    #[arg(long, default_value_t = 20)]
    pool: u32,
}

#[derive(Args)]
struct CpuSplitArgs {
    /// Seconds to wait before the window opens (a load's warm-up).
    #[arg(long, default_value_t = 0.0)]
    delay: f64,
    /// Length of the window in seconds.
    #[arg(long)]
    duration: f64,
}

#[derive(Args)]
struct BareServerArgs {
    #[arg(long)]
    body_file: std::path::PathBuf,
    #[arg(long)]
    content_type: String,
}

#[derive(Args, Clone)]
struct Common {
    /// Base URL of the running API.
    #[arg(long, default_value = "http://127.0.0.1:18097", env = "BENCH_URL")]
    url: String,
    /// Access token (Bearer). Without it, --email/--password log in.
    #[arg(long, env = "BENCH_TOKEN")]
    token: Option<String>,
    #[arg(long, env = "BENCH_EMAIL")]
    email: Option<String>,
    #[arg(long, env = "BENCH_PASSWORD")]
    password: Option<String>,
    /// Requests in flight (one tokio task each).
    #[arg(short = 'c', long, default_value_t = 16)]
    concurrency: usize,
    /// Measured seconds (after the warm-up).
    #[arg(long, default_value_t = 20.0)]
    duration: f64,
    /// Warm-up seconds (run but not measured).
    #[arg(long, default_value_t = 3.0)]
    warmup: f64,
    /// Comma-separated pids of the server side (the API, Redis): their CPU use
    /// over the measured window is printed next to the load generator's.
    #[arg(long, value_delimiter = ',')]
    server_pids: Vec<u32>,
}

#[derive(Args)]
struct MovementsArgs {
    #[command(flatten)]
    common: Common,
    /// Use products SEED-00000001..SEED-<n> (pgbench must use the same n).
    #[arg(long, default_value_t = 5000)]
    products: usize,
    /// Warehouse code the movements go to (pgbench must use the same warehouse).
    #[arg(long, default_value = "SEED-01")]
    warehouse: String,
    /// Fixed total rate in requests/s (each worker paces itself); latency is then
    /// measured from the scheduled send time.
    #[arg(long)]
    rate: Option<f64>,
    /// Write the warehouse and product ids used to this file (JSON).
    #[arg(long)]
    save_ids: Option<std::path::PathBuf>,
    /// Take the ids from a file written by --save-ids instead of asking the API
    /// (for `bare-movements`, which has no catalog).
    #[arg(long)]
    ids: Option<std::path::PathBuf>,
}

#[derive(Args)]
struct ReservationsArgs {
    #[command(flatten)]
    common: Common,
    /// Warehouse code of the hot level (SEED-00000001 in it).
    #[arg(long, default_value = "SEED-01")]
    warehouse: String,
}

#[derive(Args)]
struct LookupArgs {
    #[command(flatten)]
    common: Common,
    /// Size of the hot set of barcodes (products 1..=hot), small so Redis serves it.
    #[arg(long, default_value_t = 100)]
    hot: u64,
    /// Serve the bare endpoint from a runtime inside this process instead of a
    /// child process (the client then shares its process with the server).
    #[arg(long)]
    bare_in_process: bool,
    /// Alternating API/bare rounds (each side gets --duration per round).
    #[arg(long, default_value_t = 2)]
    rounds: usize,
}

/// One side of the lookup comparison, summed over its rounds.
#[derive(Default)]
struct Side {
    completed: u64,
    elapsed: f64,
    latency: Vec<Duration>,
    /// Server core-seconds, when measured in every round.
    server_core_secs: Option<f64>,
    rounds: usize,
}

impl Side {
    fn add(&mut self, r: Report) {
        self.server_core_secs = match (self.rounds, self.server_core_secs, r.server_cores) {
            (0, _, Some(c)) => Some(c * r.elapsed),
            (_, Some(sum), Some(c)) => Some(sum + c * r.elapsed),
            _ => None,
        };
        self.rounds += 1;
        self.completed += r.tally.completed;
        self.elapsed += r.elapsed;
        self.latency.extend(r.tally.latency);
        self.latency.sort_unstable();
    }

    /// Requests per second of server CPU time.
    fn per_server_core(&self) -> Option<f64> {
        self.server_core_secs
            .filter(|s| *s > 0.0)
            .map(|s| self.completed as f64 / s)
    }

    fn per_second(&self) -> f64 {
        if self.elapsed > 0.0 {
            self.completed as f64 / self.elapsed
        } else {
            0.0
        }
    }
}

#[derive(Args)]
struct SearchArgs {
    #[command(flatten)]
    common: Common,
    /// Measured queries per concurrency level (after warm-up queries), spread
    /// evenly over the query shapes.
    #[arg(long, default_value_t = 2600)]
    queries: usize,
    /// Comma-separated concurrency levels, each measured over the whole mix.
    #[arg(long, default_value = "1,8", value_delimiter = ',')]
    levels: Vec<usize>,
    /// How many products are seeded (for SKUs and barcodes).
    #[arg(long, default_value_t = 1_000_000)]
    products: u64,
    /// Category ids; every third query of each shape also filters by one.
    #[arg(long, value_delimiter = ',')]
    categories: Vec<Uuid>,
    /// Unmeasured queries before each level, sent by --warmup-concurrency
    /// tasks, so that every connection of the API's pool has run the search
    /// statements before the measured ones (see `search`).
    #[arg(long, default_value_t = 1000)]
    warmup_queries: usize,
    #[arg(long, default_value_t = 16)]
    warmup_concurrency: usize,
}

#[derive(Args)]
struct HistoryArgs {
    #[command(flatten)]
    common: Common,
    /// A named filter of `GET /api/v1/transactions`: NAME=QUERY, e.g.
    /// `product=product_id=<uuid>`; repeat for each filter.
    #[arg(long = "filter")]
    filters: Vec<String>,
    /// Another timed read: NAME=COUNT=PATH, e.g. `valuation=10=/api/v1/stock/valuation?as_of={as_of}`;
    /// `{as_of}` becomes a random instant of the last two years for each request.
    #[arg(long = "get")]
    gets: Vec<String>,
    /// Measured requests per filter and page (first and deep), after 10 warm-up.
    #[arg(long, default_value_t = 200)]
    queries: usize,
    /// Rows to skip by following the cursor chain before the "deep" page.
    #[arg(long, default_value_t = 5000)]
    depth: usize,
}

#[derive(Args)]
struct ScanBatchArgs {
    #[command(flatten)]
    common: Common,
    /// Comma-separated concurrency levels, each measured for --duration.
    #[arg(long, default_value = "1,4", value_delimiter = ',')]
    levels: Vec<usize>,
    /// Events per batch.
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Scan barcodes of products 1..=n.
    #[arg(long, default_value_t = 5000)]
    products: u64,
    #[arg(long, default_value = "SEED-01")]
    warehouse: String,
}

#[derive(Args)]
struct ScanSingleArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long, default_value_t = 5000)]
    products: u64,
    #[arg(long, default_value = "SEED-01")]
    warehouse: String,
    /// Fixed total rate in events/s shared by the -c devices (each paces
    /// itself); without it every device sends its next event as soon as the
    /// last is answered.
    #[arg(long)]
    rate: Option<f64>,
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let Some(mode) = cli.mode else {
        println!(
            "load: needs a running API and a mode (movements, lookup, search, history, \
             scan-batch, scan-single); see bench/README.md or `cargo bench --bench load -- --help`. \
             scripts/bench.sh runs everything."
        );
        return Ok(());
    };
    match mode {
        Mode::Movements(a) => movements(a).await,
        Mode::Reservations(a) => reservations(a).await,
        Mode::Lookup(a) => lookup(a).await,
        Mode::Search(a) => search(a).await,
        Mode::History(a) => history(a).await,
        Mode::ScanBatch(a) => scan_batch(a).await,
        Mode::ScanSingle(a) => scan_single(a).await,
        Mode::GrowthChart(a) => chart::run(a),
        Mode::Import(a) => import::import(a).await,
        Mode::Export(a) => import::export(a).await,
        Mode::Stocktake(a) => stocktake::stocktake(a).await,
        Mode::BareServer(a) => bare_server(a).await,
        Mode::BareMovements(a) => bare_movements(a).await,
        Mode::CpuSplit(a) => cpu_split(a).await,
    }
}

// ---------------------------------------------------------------------------
// Set-up helpers

fn http_client(concurrency: usize) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency.max(1) * 2)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(60))
        .build()
        .context("building the HTTP client")
}

/// Base URL and `Authorization` header value.
struct Api {
    base: String,
    auth: String,
}

async fn connect(client: &reqwest::Client, c: &Common) -> Result<Api> {
    let base = c.url.trim_end_matches('/').to_owned();
    let token = match (&c.token, &c.email, &c.password) {
        (Some(t), _, _) => t.clone(),
        (None, Some(email), Some(password)) => {
            let resp = client
                .post(format!("{base}/api/v1/auth/login"))
                .json(&json!({ "email": email, "password": password }))
                .send()
                .await
                .with_context(|| format!("cannot reach the API at {base}"))?;
            let status = resp.status();
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            if status != StatusCode::OK {
                bail!("login as {email} answered {status}: {body}");
            }
            body["access_token"]
                .as_str()
                .ok_or_else(|| anyhow!("login answer without access_token: {body}"))?
                .to_owned()
        }
        _ => bail!("give --token, or --email and --password"),
    };
    Ok(Api {
        base,
        auth: format!("Bearer {token}"),
    })
}

async fn get_json(client: &reqwest::Client, api: &Api, path: &str) -> Result<Value> {
    let resp = client
        .get(format!("{}{path}", api.base))
        .header("authorization", &api.auth)
        .send()
        .await
        .with_context(|| format!("GET {path}"))?;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if status != StatusCode::OK {
        bail!("GET {path} answered {status}: {body}");
    }
    Ok(body)
}

async fn warehouse_id(client: &reqwest::Client, api: &Api, code: &str) -> Result<Uuid> {
    let mut path = "/api/v1/warehouses?limit=500".to_owned();
    loop {
        let page = get_json(client, api, &path).await?;
        let items = page["items"].as_array().cloned().unwrap_or_default();
        for w in items {
            if w["code"]
                .as_str()
                .is_some_and(|c| c.eq_ignore_ascii_case(code))
            {
                return w["id"]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| anyhow!("warehouse without id: {w}"));
            }
        }
        match page["next_cursor"].as_str() {
            Some(cur) => path = format!("/api/v1/warehouses?limit=500&cursor={cur}"),
            None => bail!("no warehouse with code {code}: run `inventory-api seed` first"),
        }
    }
}

/// Ids of products SEED-00000001..SEED-<n>, in that order (the list is ordered by SKU).
async fn seeded_products(client: &reqwest::Client, api: &Api, n: usize) -> Result<Vec<Uuid>> {
    let mut ids = Vec::with_capacity(n);
    let mut path = "/api/v1/products?limit=500".to_owned();
    while ids.len() < n {
        let page = get_json(client, api, &path).await?;
        for p in page["items"].as_array().into_iter().flatten() {
            let Some(sku) = p["sku"].as_str() else {
                continue;
            };
            if !sku.starts_with("SEED-") || ids.len() >= n {
                continue;
            }
            let want = format!("SEED-{:08}", ids.len() + 1);
            if sku != want {
                bail!(
                    "expected product {want} next, found {sku}: the seeded SKUs are not contiguous"
                );
            }
            ids.push(
                p["id"]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| anyhow!("product without id: {p}"))?,
            );
        }
        match page["next_cursor"].as_str() {
            Some(cur) => path = format!("/api/v1/products?limit=500&cursor={cur}"),
            None => break,
        }
    }
    if ids.len() < n {
        bail!(
            "only {} seeded products (SEED-...) found, {n} wanted: run `inventory-api seed --products {n}`",
            ids.len()
        );
    }
    Ok(ids)
}

/// The EAN-13 `inventory-api seed` gives product number `n`: "20", the number in
/// 10 digits, and the check digit.
fn seeded_barcode(n: u64) -> String {
    with_check_digit(&format!("20{n:010}"))
}

// ---------------------------------------------------------------------------
// The load runner: N workers, warm-up, measured window, optional pacing.

/// What one request came to.
struct Outcome {
    /// Status label for the counts ("201", "409", "error", ...).
    label: String,
    /// Counts towards throughput (completed requests, including refusals).
    completed: bool,
    /// Units of work it carried (1 per request; events per scanner batch).
    units: u64,
    /// Extra counters (scan results by status).
    extra: Vec<(String, u64)>,
    /// First words of an unexpected answer, for diagnostics.
    detail: Option<String>,
}

impl Outcome {
    fn status(status: StatusCode, completed: bool) -> Self {
        Self {
            label: status.as_u16().to_string(),
            completed,
            units: 1,
            extra: Vec::new(),
            detail: None,
        }
    }

    fn failed(label: impl Into<String>, detail: String) -> Self {
        Self {
            label: label.into(),
            completed: false,
            units: 0,
            extra: Vec::new(),
            detail: Some(detail),
        }
    }
}

type BoxFut = Pin<Box<dyn Future<Output = Outcome> + Send>>;
type RequestFn = Arc<dyn Fn(&mut SmallRng) -> BoxFut + Send + Sync>;

struct Plan {
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
    /// Total requests/s when paced.
    rate: Option<f64>,
    /// Server processes whose CPU use is measured over the window.
    server_pids: Vec<u32>,
}

/// CPU time used so far (user + system) by this process and by the server pids.
struct CpuSample {
    at: Instant,
    client: Option<u64>,
    servers: Option<u64>,
}

impl CpuSample {
    fn take(server_pids: &[u32]) -> Self {
        let servers = if server_pids.is_empty() {
            None
        } else {
            server_pids
                .iter()
                .map(|p| cpu_ticks(&p.to_string()))
                .sum::<Option<u64>>()
        };
        Self {
            at: Instant::now(),
            client: cpu_ticks("self"),
            servers,
        }
    }
}

/// utime + stime of /proc/<pid>/stat, in clock ticks.
fn cpu_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(parse_stat(&stat)?.1)
}

/// The command name and utime + stime of a /proc/<pid>/stat line.
fn parse_stat(stat: &str) -> Option<(&str, u64)> {
    // The command name sits in parentheses and may hold spaces and ')', so
    // it ends at the last ')'; the fields after it start at field 3.
    let (head, rest) = stat.rsplit_once(')')?;
    let comm = &head[head.find('(')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some((
        comm,
        f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?,
    ))
}

fn clock_ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// Cores used between two samples: (load generator, servers).
fn cores_used(a: &CpuSample, b: &CpuSample) -> (Option<f64>, Option<f64>) {
    let secs = (b.at - a.at).as_secs_f64().max(1e-9);
    let per = |x: Option<u64>, y: Option<u64>| {
        Some(y?.saturating_sub(x?) as f64 / clock_ticks_per_second() / secs)
    };
    (per(a.client, b.client), per(a.servers, b.servers))
}

#[derive(Default)]
struct Tally {
    /// From the scheduled send time when paced, else from the actual send.
    latency: Vec<Duration>,
    /// From the actual send (differs from `latency` only when paced).
    service: Vec<Duration>,
    /// `latency` split by status label (a tail may belong to one kind of answer).
    latency_by_label: BTreeMap<String, Vec<Duration>>,
    counts: BTreeMap<String, u64>,
    extra: BTreeMap<String, u64>,
    completed: u64,
    units: u64,
    details: Vec<String>,
    last_done: Option<Instant>,
    /// (scheduled send in seconds after the measured window began, latency):
    /// whether the slowest answers are spread out or came in a few stalls.
    timeline: Vec<(f64, Duration)>,
}

impl Tally {
    fn add(&mut self, o: Outcome, latency: Duration, service: Duration, done: Instant, at: f64) {
        self.timeline.push((at, latency));
        self.latency_by_label
            .entry(o.label.clone())
            .or_default()
            .push(latency);
        *self.counts.entry(o.label).or_default() += 1;
        for (k, v) in o.extra {
            *self.extra.entry(k).or_default() += v;
        }
        if o.completed {
            self.completed += 1;
            self.units += o.units;
        }
        if let Some(d) = o.detail {
            if self.details.len() < 5 {
                self.details.push(d);
            }
        }
        self.latency.push(latency);
        self.service.push(service);
        self.last_done = Some(self.last_done.map_or(done, |t| t.max(done)));
    }

    fn merge(&mut self, other: Tally) {
        self.latency.extend(other.latency);
        self.timeline.extend(other.timeline);
        for (k, v) in other.latency_by_label {
            self.latency_by_label.entry(k).or_default().extend(v);
        }
        self.service.extend(other.service);
        for (k, v) in other.counts {
            *self.counts.entry(k).or_default() += v;
        }
        for (k, v) in other.extra {
            *self.extra.entry(k).or_default() += v;
        }
        self.completed += other.completed;
        self.units += other.units;
        for d in other.details {
            if self.details.len() < 5 {
                self.details.push(d);
            }
        }
        self.last_done = match (self.last_done, other.last_done) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
}

struct Report {
    tally: Tally,
    /// Seconds from the start of the measured window to the last measured answer.
    elapsed: f64,
    /// Cores used during the measured window by this load generator.
    client_cores: Option<f64>,
    /// Cores used during the measured window by the server pids.
    server_cores: Option<f64>,
}

impl Report {
    fn per_second(&self, n: u64) -> f64 {
        if self.elapsed > 0.0 {
            n as f64 / self.elapsed
        } else {
            0.0
        }
    }

    fn counts(&self) -> String {
        let mut s: Vec<String> = self
            .tally
            .counts
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        s.extend(self.tally.extra.iter().map(|(k, v)| format!("{k}: {v}")));
        s.join(", ")
    }

    /// "CPU: load generator 0.9 cores, <servers> 1.0 cores" over the measured window.
    fn cpu(&self, servers: &str) -> String {
        let f = |c: Option<f64>| c.map_or("?".to_owned(), |c| format!("{c:.3}"));
        let mut s = format!("CPU: load generator {} cores", f(self.client_cores));
        if self.server_cores.is_some() {
            s.push_str(&format!(", {servers} {} cores", f(self.server_cores)));
        }
        s
    }

    /// "the slowest 1 % (N answers, >= X ms) were sent in K of the run's W
    /// 100-ms windows; most in one: +T s (n, max M ms)": a tail in a few
    /// windows is a stall of the server (a checkpoint, a background job), a
    /// tail spread over many is the per-request cost varying.
    fn print_tail(&self) {
        let t = &self.tally;
        if t.latency.len() < 100 {
            return;
        }
        let p99 = percentile(&t.latency, 99.0);
        let mut windows: BTreeMap<u64, (usize, Duration)> = BTreeMap::new();
        for (at, l) in t.timeline.iter().filter(|(_, l)| *l >= p99) {
            let w = windows.entry((at * 10.0) as u64).or_default();
            w.0 += 1;
            w.1 = w.1.max(*l);
        }
        let slow: usize = windows.values().map(|w| w.0).sum();
        let all = (t.timeline.last().map_or(0.0, |l| l.0) * 10.0) as u64 + 1;
        if let Some((w, (n, max))) = windows.iter().max_by_key(|(_, w)| w.0) {
            println!(
                "  slowest 1 % ({slow} answers, >= {:.2} ms) were sent in {} of the run's {all} \
                 100-ms windows; most in one: +{:.1} s ({n}, max {:.2} ms)",
                ms(p99),
                windows.len(),
                *w as f64 / 10.0,
                ms(*max)
            );
        }
    }

    fn print_details(&self) {
        for d in &self.tally.details {
            println!("    unexpected answer: {d}");
        }
    }
}

async fn run(plan: &Plan, request: RequestFn) -> Report {
    let t0 = Instant::now();
    let measure_from = t0 + plan.warmup;
    let end = measure_from + plan.duration;
    let n = plan.concurrency.max(1);
    let interval = plan.rate.map(|r| Duration::from_secs_f64(n as f64 / r));
    let server_pids = plan.server_pids.clone();
    let sampler = tokio::spawn(async move {
        tokio::time::sleep_until(measure_from.into()).await;
        let a = CpuSample::take(&server_pids);
        tokio::time::sleep_until(end.into()).await;
        cores_used(&a, &CpuSample::take(&server_pids))
    });
    let mut workers = Vec::with_capacity(n);
    for i in 0..n {
        let request = request.clone();
        workers.push(tokio::spawn(async move {
            let mut rng = SmallRng::from_os_rng();
            let mut tally = Tally::default();
            // Paced workers start staggered so the total rate is spread evenly.
            let mut next = interval.map(|iv| t0 + iv.mul_f64(i as f64 / n as f64));
            loop {
                let scheduled = match (&mut next, interval) {
                    (Some(next), Some(iv)) => {
                        let at = *next;
                        if at >= end {
                            break;
                        }
                        tokio::time::sleep_until(at.into()).await;
                        *next += iv;
                        at
                    }
                    _ => Instant::now(),
                };
                let sent = Instant::now();
                if sent >= end {
                    break;
                }
                let outcome = request(&mut rng).await;
                let done = Instant::now();
                if scheduled >= measure_from {
                    let at = (scheduled - measure_from).as_secs_f64();
                    tally.add(outcome, done - scheduled, done - sent, done, at);
                }
            }
            tally
        }));
    }
    let mut tally = Tally::default();
    for w in workers {
        if let Ok(t) = w.await {
            tally.merge(t);
        }
    }
    tally.latency.sort_unstable();
    tally.service.sort_unstable();
    tally.timeline.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    if let Ok(path) = std::env::var("BENCH_TIMELINE") {
        let csv: String = tally
            .timeline
            .iter()
            .map(|(at, l)| format!("{at:.4},{:.3}\n", ms(*l)))
            .collect();
        if let Err(e) = std::fs::write(&path, format!("scheduled_s,latency_ms\n{csv}")) {
            eprintln!("could not write BENCH_TIMELINE {path}: {e}");
        }
    }
    for v in tally.latency_by_label.values_mut() {
        v.sort_unstable();
    }
    let elapsed = tally.last_done.map_or(0.0, |t| {
        t.saturating_duration_since(measure_from).as_secs_f64()
    });
    let (client_cores, server_cores) = sampler.await.unwrap_or((None, None));
    Report {
        tally,
        elapsed,
        client_cores,
        server_cores,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Prints p50/p90/p99/max and the RESULT lines `<prefix>_p50_ms` etc.
fn print_latency(label: &str, prefix: &str, sorted: &[Duration]) {
    let (p50, p90, p99, max) = (
        percentile(sorted, 50.0),
        percentile(sorted, 90.0),
        percentile(sorted, 99.0),
        sorted.last().copied().unwrap_or_default(),
    );
    println!(
        "  {label}: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} samples)",
        ms(p50),
        ms(p90),
        ms(p99),
        ms(max),
        sorted.len()
    );
    result(&format!("{prefix}_p50_ms"), ms(p50));
    result(&format!("{prefix}_p90_ms"), ms(p90));
    result(&format!("{prefix}_p99_ms"), ms(p99));
    result(&format!("{prefix}_max_ms"), ms(max));
}

fn result(key: &str, value: f64) {
    println!("RESULT {key} {value:.2}");
}

fn plan(c: &Common, rate: Option<f64>) -> Plan {
    Plan {
        concurrency: c.concurrency,
        warmup: Duration::from_secs_f64(c.warmup.max(0.0)),
        duration: Duration::from_secs_f64(c.duration.max(0.1)),
        rate,
        server_pids: c.server_pids.clone(),
    }
}

/// Sends a request and classifies the answer; reads the body so the connection is reused.
async fn classify(req: reqwest::RequestBuilder, expected: &[u16], completed: &[u16]) -> Outcome {
    match req.send().await {
        Ok(resp) => {
            let status = resp.status();
            let body = resp.bytes().await.unwrap_or_default();
            let mut o = Outcome::status(status, completed.contains(&status.as_u16()));
            if !expected.contains(&status.as_u16()) {
                let text = String::from_utf8_lossy(&body);
                o.detail = Some(format!(
                    "{status} {}",
                    text.chars().take(300).collect::<String>()
                ));
            }
            o
        }
        Err(e) => Outcome::failed("error", e.to_string()),
    }
}

// ---------------------------------------------------------------------------
// Modes

/// Each request is a cycle on one hot product: reserve 1 unit, then cancel
/// that reservation (a 409 when everything is promised completes the cycle
/// too). Every cycle locks the same level twice, so this measures
/// reservations under contention.
async fn reservations(a: ReservationsArgs) -> Result<()> {
    let c = &a.common;
    let client = http_client(c.concurrency)?;
    let api = connect(&client, c).await?;
    let warehouse = warehouse_id(&client, &api, &a.warehouse).await?;
    let product = seeded_products(&client, &api, 1).await?[0];
    let plan = plan(c, None);
    println!(
        "reservations: c={} closed loop, reserve + cancel on ONE product (SEED-00000001 in {}), {:.0} s after {:.0} s warm-up",
        plan.concurrency, a.warehouse, c.duration, c.warmup
    );
    let base = Arc::new(api.base.clone());
    let auth = Arc::new(api.auth.clone());
    let request: RequestFn = Arc::new(move |_rng: &mut SmallRng| {
        let (client, base, auth) = (client.clone(), base.clone(), auth.clone());
        Box::pin(async move {
            let body = json!({"product_id": product, "warehouse_id": warehouse, "quantity": 1});
            let created = client
                .post(format!("{base}/api/v1/reservations"))
                .header("authorization", auth.as_str())
                .json(&body)
                .send()
                .await;
            let resp = match created {
                Ok(r) => r,
                Err(e) => return Outcome::failed("error", e.to_string()),
            };
            let status = resp.status();
            if status.as_u16() != 201 {
                return Outcome::status(status, status.as_u16() == 409);
            }
            let id = resp.json::<Value>().await.unwrap_or_default()["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let cancel = client
                .post(format!("{base}/api/v1/reservations/{id}/cancel"))
                .header("authorization", auth.as_str());
            classify(cancel, &[200], &[200]).await
        })
    });
    let report = run(&plan, request).await;
    let t = &report.tally;
    let rate = report.per_second(t.completed);
    println!(
        "  {} reserve+cancel cycles in {:.2} s = {rate:.1} cycles/s = {:.1} reservation changes/s ({})",
        t.completed,
        report.elapsed,
        rate * 2.0,
        report.counts()
    );
    report.print_details();
    print_latency("cycle latency (two requests)", "latency", &t.latency);
    result("reservation_cycles_per_s", rate);
    Ok(())
}

async fn movements(a: MovementsArgs) -> Result<()> {
    let c = &a.common;
    let client = http_client(c.concurrency)?;
    let api = connect(&client, c).await?;
    let (warehouse, products): (Uuid, Vec<Uuid>) = match &a.ids {
        Some(file) => serde_json::from_slice(
            &std::fs::read(file).with_context(|| format!("reading {}", file.display()))?,
        )
        .with_context(|| format!("{} is not a file of --save-ids", file.display()))?,
        None => (
            warehouse_id(&client, &api, &a.warehouse).await?,
            seeded_products(&client, &api, a.products).await?,
        ),
    };
    if let Some(file) = &a.save_ids {
        std::fs::write(file, serde_json::to_vec(&(warehouse, &products))?)
            .with_context(|| format!("writing {}", file.display()))?;
    }
    let products = Arc::new(products);
    let plan = plan(c, a.rate);
    println!(
        "movements: c={} {}, {:.0} s measured after {:.0} s warm-up, products SEED-00000001..SEED-{:08} in {}",
        plan.concurrency,
        a.rate
            .map_or("closed loop".to_owned(), |r| format!("paced at {r:.0}/s in total")),
        c.duration,
        c.warmup,
        products.len(),
        if a.ids.is_some() { "the warehouse of --ids" } else { a.warehouse.as_str() }
    );
    let receive_url = Arc::new(format!("{}/api/v1/stock/receive", api.base));
    let issue_url = Arc::new(format!("{}/api/v1/stock/issue", api.base));
    let auth = Arc::new(api.auth.clone());
    let request: RequestFn = Arc::new(move |rng: &mut SmallRng| {
        let product = products[rng.random_range(0..products.len())];
        let quantity: i64 = rng.random_range(1..=5);
        let url = if rng.random_bool(0.5) {
            receive_url.clone()
        } else {
            issue_url.clone()
        };
        let body =
            json!({ "product_id": product, "warehouse_id": warehouse, "quantity": quantity });
        let req = client
            .post(url.as_str())
            .header("authorization", auth.as_str())
            .json(&body);
        Box::pin(async move { classify(req, &[201, 409], &[201, 409]).await })
    });
    let report = run(&plan, request).await;
    let t = &report.tally;
    let rate = report.per_second(t.completed);
    println!(
        "  {} movements completed in {:.2} s = {rate:.1} movements/s ({})",
        t.completed,
        report.elapsed,
        report.counts()
    );
    report.print_details();
    println!("  {}", report.cpu("server side"));
    if let Some(cores) = report.server_cores.filter(|_| rate > 0.0) {
        // What one movement costs the server side in CPU, the figure to
        // compare between the API and the bare stack.
        println!("  server CPU per movement: {:.1} us", cores / rate * 1e6);
        result("server_us_per_movement", cores / rate * 1e6);
    }
    if let Some(target) = a.rate {
        println!("  target rate {target:.0}/s, achieved {rate:.1}/s");
        print_latency(
            "latency from scheduled send (includes any queueing in the generator)",
            "latency",
            &t.latency,
        );
        print_latency("service time (from actual send)", "service", &t.service);
        report.print_tail();
    } else {
        print_latency("latency", "latency", &t.latency);
    }
    // Refused issues take the engine's general path to word the refusal:
    // their latency apart shows whether they make the tail.
    for (label, v) in &t.latency_by_label {
        print_latency(
            &format!("latency of {label} answers"),
            &format!("latency_{label}"),
            v,
        );
    }
    result("movements_per_s", rate);
    result("ok_201", *t.counts.get("201").unwrap_or(&0) as f64);
    result("refused_409", *t.counts.get("409").unwrap_or(&0) as f64);
    result(
        "other",
        t.counts
            .iter()
            .filter(|(k, _)| *k != "201" && *k != "409")
            .map(|(_, v)| *v)
            .sum::<u64>() as f64,
    );
    Ok(())
}

/// One captured lookup answer, served by the bare endpoint.
#[derive(Clone, Copy)]
struct Canned {
    body: &'static [u8],
    content_type: &'static str,
}

#[handler]
fn bare_lookup(canned: Data<&Canned>) -> Response {
    Response::builder()
        .content_type(canned.content_type)
        .body(canned.body)
}

/// Starts the bare poem server on 127.0.0.1:0 in its own runtime and thread (like a
/// separate process would have), returning its address.
fn start_bare_server(canned: Canned) -> Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("binding the bare server")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the bare server's runtime")?;
    std::thread::spawn(move || {
        runtime.block_on(async move {
            let acceptor = match TcpAcceptor::from_std(listener) {
                Ok(a) => a,
                Err(e) => {
                    eprintln!("bare server: {e}");
                    return;
                }
            };
            let app = Route::new()
                .at("/api/v1/products/by-barcode/:barcode", get(bare_lookup))
                .data(canned);
            if let Err(e) = Server::new_with_acceptor(acceptor).run(app).await {
                eprintln!("bare server: {e}");
            }
        });
    });
    Ok(addr)
}

/// The bare endpoint in a child process (this binary, `bare-server`): returns it
/// and its address once it listens. It is killed when the handle is dropped.
async fn spawn_bare_server(canned: Canned) -> Result<(tokio::process::Child, SocketAddr)> {
    use tokio::io::AsyncBufReadExt;
    let body_file =
        std::env::temp_dir().join(format!("inventory-bench-bare-{}.json", std::process::id()));
    std::fs::write(&body_file, canned.body).context("writing the bare server's answer")?;
    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .arg("bare-server")
        .arg("--body-file")
        .arg(&body_file)
        .arg("--content-type")
        .arg(canned.content_type)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting the bare server")?;
    let stdout = child.stdout.take().context("bare server stdout")?;
    let mut line = String::new();
    tokio::time::timeout(
        Duration::from_secs(10),
        tokio::io::BufReader::new(stdout).read_line(&mut line),
    )
    .await
    .context("the bare server did not start within 10 s")??;
    std::fs::remove_file(&body_file).ok();
    let addr = line
        .trim()
        .strip_prefix("LISTENING ")
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| anyhow!("unexpected first line from the bare server: {line:?}"))?;
    Ok((child, addr))
}

async fn bare_server(a: BareServerArgs) -> Result<()> {
    let body = std::fs::read(&a.body_file).context("reading the bare server's answer")?;
    let canned = Canned {
        body: Box::leak(body.into_boxed_slice()),
        content_type: Box::leak(a.content_type.into_boxed_str()),
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("binding the bare server")?;
    listener.set_nonblocking(true)?;
    println!("LISTENING {}", listener.local_addr()?);
    let app = Route::new()
        .at("/api/v1/products/by-barcode/:barcode", get(bare_lookup))
        .data(canned);
    Server::new_with_acceptor(TcpAcceptor::from_std(listener)?)
        .run(app)
        .await?;
    Ok(())
}

#[derive(serde::Deserialize)]
struct BareMove {
    product_id: Uuid,
    warehouse_id: Uuid,
    quantity: i64,
}

/// `POST /api/v1/stock/{receive,issue}` with nothing of the application: no
/// authentication, validation, idempotency, metrics or logging; the body is
/// parsed, the function called in autocommit as the API calls it, and a few
/// columns of its ledger row answered as JSON. A declined movement (the API
/// would take its general path) answers 409.
#[handler]
async fn bare_move(
    poem::web::Path(kind): poem::web::Path<String>,
    poem::web::Json(m): poem::web::Json<BareMove>,
    db: Data<&(sqlx::PgPool, Uuid)>,
) -> poem::Result<Response> {
    let (kind, delta) = match kind.as_str() {
        "receive" => ("receipt", m.quantity),
        "issue" => ("issue", -m.quantity),
        _ => return Err(StatusCode::NOT_FOUND.into()),
    };
    let row: Option<(Uuid, i64, i64)> = sqlx::query_as(
        "SELECT id, quantity, balance_after FROM stock_move_default(\
         $1, $2, $3, $4, $5, NULL, NULL, NULL, NULL, $6, NULL)",
    )
    .bind(Uuid::now_v7())
    .bind(kind)
    .bind(m.product_id)
    .bind(m.warehouse_id)
    .bind(delta)
    .bind(db.0 .1)
    .fetch_optional(&db.0 .0)
    .await
    .map_err(poem::error::InternalServerError)?;
    Ok(match row {
        Some((id, quantity, balance_after)) => Response::builder()
            .status(StatusCode::CREATED)
            .content_type("application/json")
            .body(
                json!({ "id": id, "quantity": quantity, "balance_after": balance_after })
                    .to_string(),
            ),
        None => Response::builder().status(StatusCode::CONFLICT).finish(),
    })
}

async fn bare_movements(a: BareMovementsArgs) -> Result<()> {
    let db = sqlx::postgres::PgPoolOptions::new()
        .max_connections(a.pool)
        // The API's pool settings (src/db.rs): no ping on acquire or release.
        .test_before_acquire(false)
        .ping_on_release(false)
        .connect(&a.database_url)
        .await
        .context("connecting the bare server to PostgreSQL")?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("binding the bare server")?;
    listener.set_nonblocking(true)?;
    println!("LISTENING {}", listener.local_addr()?);
    let app = Route::new()
        .at("/api/v1/stock/:kind", poem::post(bare_move))
        .data((db, a.actor));
    Server::new_with_acceptor(TcpAcceptor::from_std(listener)?)
        .run(app)
        .await?;
    Ok(())
}

/// CPU ticks (user + system) of every process, by command name.
fn ticks_by_command() -> BTreeMap<u32, (String, u64)> {
    let mut all = BTreeMap::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if let Some((comm, ticks)) = parse_stat(&stat) {
            all.insert(pid, (comm.to_owned(), ticks));
        }
    }
    all
}

/// Busy jiffies of the whole machine (/proc/stat's first line, all but idle
/// and iowait).
fn machine_busy_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    v.iter().sum::<u64>() - idle
}

/// Prints the cores each command used over the window (a process started
/// inside it counts whole; one that ended inside it is missed) and
/// `RESULT cpu_<command> <cores>` lines; the machine's busy cores first.
async fn cpu_split(a: CpuSplitArgs) -> Result<()> {
    tokio::time::sleep(Duration::from_secs_f64(a.delay)).await;
    let (before, busy0) = (ticks_by_command(), machine_busy_ticks());
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(a.duration)).await;
    let (after, busy1) = (ticks_by_command(), machine_busy_ticks());
    let secs = t0.elapsed().as_secs_f64();
    let hz = clock_ticks_per_second();
    let mut by: BTreeMap<String, u64> = BTreeMap::new();
    for (pid, (comm, ticks)) in &after {
        let start = before.get(pid).filter(|b| b.0 == *comm).map_or(0, |b| b.1);
        *by.entry(comm.clone()).or_default() += ticks.saturating_sub(start);
    }
    let mut by: Vec<(String, f64)> = by
        .into_iter()
        .map(|(c, t)| (c, t as f64 / hz / secs))
        .filter(|(_, cores)| *cores >= 0.005)
        .collect();
    by.sort_by(|x, y| y.1.total_cmp(&x.1));
    let busy = busy1.saturating_sub(busy0) as f64 / hz / secs;
    let list: Vec<String> = by.iter().map(|(c, v)| format!("{c} {v:.2}")).collect();
    println!(
        "CPU over {secs:.1} s: machine busy {busy:.2} cores; {}",
        list.join(", ")
    );
    result("cpu_machine", busy);
    for (c, v) in &by {
        result(
            &format!(
                "cpu_{}",
                c.replace(|ch: char| !ch.is_ascii_alphanumeric(), "_")
            ),
            *v,
        );
    }
    Ok(())
}

fn lookup_request(client: reqwest::Client, base: String, auth: String, hot: u64) -> RequestFn {
    let base = Arc::new(base);
    let auth = Arc::new(auth);
    Arc::new(move |rng: &mut SmallRng| {
        let barcode = seeded_barcode(rng.random_range(1..=hot));
        let req = client
            .get(format!("{base}/api/v1/products/by-barcode/{barcode}"))
            .header("authorization", auth.as_str());
        Box::pin(async move { classify(req, &[200], &[200]).await })
    })
}

async fn lookup(a: LookupArgs) -> Result<()> {
    let c = &a.common;
    let hot = a.hot.max(1);
    let client = http_client(c.concurrency)?;
    let api = connect(&client, c).await?;
    // Capture one real answer, then touch every hot barcode so Redis holds them.
    let first = seeded_barcode(1);
    let resp = client
        .get(format!("{}/api/v1/products/by-barcode/{first}", api.base))
        .header("authorization", &api.auth)
        .send()
        .await
        .context("first barcode lookup")?;
    let status = resp.status();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_owned();
    let body = resp.bytes().await?.to_vec();
    if status != StatusCode::OK {
        bail!(
            "GET /api/v1/products/by-barcode/{first} answered {status}: {}: run `inventory-api seed` first",
            String::from_utf8_lossy(&body)
        );
    }
    for n in 1..=hot {
        let b = seeded_barcode(n);
        let s = client
            .get(format!("{}/api/v1/products/by-barcode/{b}", api.base))
            .header("authorization", &api.auth)
            .send()
            .await?
            .status();
        if s != StatusCode::OK {
            bail!("barcode {b} (product {n}) answered {s}: is the hot set within the seeded products?");
        }
    }
    let canned = Canned {
        body: Box::leak(body.into_boxed_slice()),
        content_type: Box::leak(content_type.into_boxed_str()),
    };
    // The bare endpoint runs in a child process by default, as the API runs in
    // its own process: the client then never shares an allocator or a
    // scheduler with the server it measures, on either side of the ratio.
    let (bare, child): (SocketAddr, Option<tokio::process::Child>) = if a.bare_in_process {
        (start_bare_server(canned)?, None)
    } else {
        let (child, addr) = spawn_bare_server(canned).await?;
        (addr, Some(child))
    };
    let bare_where = if a.bare_in_process {
        "this process"
    } else {
        "a child process"
    };
    // CPU of each side's server: the API (and Redis) pids given, or the child.
    let bare_pids: Vec<u32> = child.as_ref().and_then(|c| c.id()).into_iter().collect();
    let base_plan = plan(c, None);
    let rounds = a.rounds.max(1);
    println!(
        "lookup: c={}, {rounds} alternating rounds of {:.0} s measured after {:.0} s warm-up on each side, \
         {hot} hot barcodes, answer {} bytes ({}), bare endpoint in {bare_where}",
        base_plan.concurrency,
        c.duration,
        c.warmup,
        canned.body.len(),
        canned.content_type
    );
    let mut sides = [Side::default(), Side::default()];
    for round in 1..=rounds {
        for (i, base) in [api.base.clone(), format!("http://{bare}")]
            .into_iter()
            .enumerate()
        {
            let side_plan = Plan {
                server_pids: if i == 0 {
                    base_plan.server_pids.clone()
                } else {
                    bare_pids.clone()
                },
                ..plan(c, None)
            };
            let report = run(
                &side_plan,
                lookup_request(client.clone(), base, api.auth.clone(), hot),
            )
            .await;
            println!(
                "  round {round} {}: {:.1} req/s ({}); {}",
                ["API ", "bare"][i],
                report.per_second(report.tally.completed),
                report.counts(),
                report.cpu(["API side", "bare server"][i])
            );
            report.print_details();
            sides[i].add(report);
        }
    }
    drop(child);
    let [api_side, bare_side] = sides;
    let api_rps = api_side.per_second();
    let bare_rps = bare_side.per_second();
    let (api_eff, bare_eff) = (api_side.per_server_core(), bare_side.per_server_core());
    println!("  API : {api_rps:.1} req/s over all rounds");
    print_latency("API latency", "api", &api_side.latency);
    println!("  bare: {bare_rps:.1} req/s over all rounds");
    print_latency("bare latency", "bare", &bare_side.latency);
    let ratio = if bare_rps > 0.0 {
        api_rps / bare_rps
    } else {
        0.0
    };
    println!("  ratio API/bare = {ratio:.2} (target >= 0.7)");
    result("api_rps", api_rps);
    result("bare_rps", bare_rps);
    result("ratio", ratio);
    // With two cores the load generator takes about one, so the side that costs
    // the generator more per request (the faster one) can be held back by it.
    // Requests per second of server CPU shows what each server itself costs.
    if let (Some(api_eff), Some(bare_eff)) = (api_eff, bare_eff) {
        let cpu_ratio = api_eff / bare_eff.max(1e-9);
        println!(
            "  per core of server CPU: API {api_eff:.0} req/s, bare {bare_eff:.0} req/s, \
             ratio {cpu_ratio:.2} (the server-cost view of the same comparison)"
        );
        result("api_rps_per_server_core", api_eff);
        result("bare_rps_per_server_core", bare_eff);
        result("cpu_ratio", cpu_ratio);
    }
    Ok(())
}

const MATERIALS: [&str; 20] = [
    "Steel", "Copper", "Brass", "Nylon", "Oak", "Pine", "Rubber", "Glass", "Ceramic", "Carbon",
    "Zinc", "Titanium", "Cotton", "Wool", "Vinyl", "Granite", "Bamboo", "Cobalt", "Nickel",
    "Silver",
];
const NOUNS: [&str; 30] = [
    "bolt", "nut", "washer", "hinge", "bracket", "screw", "rivet", "pipe", "valve", "gasket",
    "spring", "cable", "hose", "clamp", "pulley", "bearing", "chain", "hook", "panel", "tile",
    "brush", "filter", "fuse", "relay", "switch", "socket", "plug", "lamp", "tape", "glue",
];

/// Words not in the seeded vocabulary: searches that find nothing.
const UNKNOWN_WORDS: [&str; 8] = [
    "helicopter",
    "umbrella",
    "keyboard",
    "sandwich",
    "violin",
    "penguin",
    "saxophone",
    "zeppelin",
];

/// The query shapes of the search mix, in the order they are reported.
const SHAPES: [&str; 13] = [
    "sku exact",
    "sku prefix",
    "ean-13",
    "ean-13 as gtin-14",
    "upc-a",
    "upc-a as ean-13",
    "ean-8",
    "ean-8 as gtin-14",
    "one word",
    "two words",
    "2 letters",
    "3 letters",
    "misspelling",
];
fn shape_name(shape: usize) -> &'static str {
    SHAPES.get(shape).copied().unwrap_or("no match")
}

/// `body` followed by its GS1 check digit (the service's own rule).
fn with_check_digit(body: &str) -> String {
    format!(
        "{body}{}",
        inventory_api::catalog::barcode::gtin_check_digit(body)
    )
}

/// A misspelling of `word`: two neighbouring letters swapped, or one dropped.
fn misspell(rng: &mut SmallRng, word: &str) -> String {
    let mut c: Vec<char> = word.to_lowercase().chars().collect();
    let i = rng.random_range(1..c.len() - 1);
    if rng.random_bool(0.5) {
        c.swap(i, i + 1);
    } else {
        c.remove(i);
    }
    c.into_iter().collect()
}

/// A search term of `shape` (see SHAPES), like a person would type it, from the
/// seeded data: `inventory-api seed` gives product n the SKU SEED-<n in 8
/// digits>, an EAN-13 "20<n in 10 digits><check>", for n <= 100,000 a UPC-A
/// "4<n in 10 digits><check>" and for n <= 10,000 an EAN-8 "9<n in 6 digits><check>".
fn search_term(rng: &mut SmallRng, shape: usize, products: u64) -> String {
    let n = rng.random_range(1..=products.max(1));
    let material = MATERIALS[rng.random_range(0..MATERIALS.len())];
    let noun = NOUNS[rng.random_range(0..NOUNS.len())];
    let word = if rng.random_bool(0.5) { material } else { noun };
    match shape_name(shape) {
        "sku exact" => format!("SEED-{n:08}"),
        "sku prefix" => {
            let sku = format!("SEED-{n:08}");
            sku[..rng.random_range(9..=12)].to_owned()
        }
        "ean-13" => seeded_barcode(n),
        "ean-13 as gtin-14" => format!("0{}", seeded_barcode(n)),
        "upc-a" => with_check_digit(&format!("4{:010}", n.min(100_000))),
        "upc-a as ean-13" => format!("0{}", with_check_digit(&format!("4{:010}", n.min(100_000)))),
        "ean-8" => with_check_digit(&format!("9{:06}", n.min(10_000))),
        "ean-8 as gtin-14" => format!(
            "000000{}",
            with_check_digit(&format!("9{:06}", n.min(10_000)))
        ),
        "one word" => word.to_owned(),
        "two words" => format!("{material} {noun}"),
        "2 letters" | "3 letters" => {
            let len = if shape_name(shape) == "2 letters" {
                2
            } else {
                3
            };
            let w: Vec<char> = word.to_lowercase().chars().collect();
            let start = rng.random_range(0..=w.len() - len);
            w[start..start + len].iter().collect()
        }
        "misspelling" => {
            let long: Vec<&str> = MATERIALS
                .iter()
                .chain(NOUNS.iter())
                .copied()
                .filter(|w| w.len() >= 5)
                .collect();
            let word = long[rng.random_range(0..long.len())];
            misspell(rng, word)
        }
        _ => UNKNOWN_WORDS[rng.random_range(0..UNKNOWN_WORDS.len())].to_owned(),
    }
}

/// One planned search: shape, term and the category filter (if any).
struct SearchQuery {
    shape: usize,
    term: String,
    category: Option<Uuid>,
}

/// What one search came to: (shape, with category, latency, items) or a failure.
type SearchResult = std::result::Result<(usize, bool, Duration, usize), String>;

async fn search_once(client: &reqwest::Client, api: &Api, q: &SearchQuery) -> SearchResult {
    let mut req = client
        .get(format!("{}/api/v1/products", api.base))
        .query(&[("q", q.term.as_str())])
        .header("authorization", &api.auth);
    if let Some(c) = q.category {
        req = req.query(&[("category_id", c.to_string())]);
    }
    let started = Instant::now();
    let resp = req.send().await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let body = resp.bytes().await.map_err(|e| e.to_string())?;
    let took = started.elapsed();
    if status != StatusCode::OK {
        return Err(format!(
            "q={:?}: {status} {}",
            q.term,
            String::from_utf8_lossy(&body)
                .chars()
                .take(200)
                .collect::<String>()
        ));
    }
    let items = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["items"].as_array().map(Vec::len))
        .unwrap_or(0);
    Ok((q.shape, q.category.is_some(), took, items))
}

/// Sends `queries` from `tasks` concurrent tasks, each taking the next
/// query when its last is answered; each result with its query's index, in
/// no particular order.
async fn run_searches(
    client: &reqwest::Client,
    api: &Arc<Api>,
    queries: Arc<Vec<SearchQuery>>,
    tasks: usize,
) -> Vec<(usize, SearchResult)> {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut running = Vec::new();
    for _ in 0..tasks {
        let (client, api, queries, next) =
            (client.clone(), api.clone(), queries.clone(), next.clone());
        running.push(tokio::spawn(async move {
            let mut out = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(q) = queries.get(i) else { break };
                out.push((i, search_once(&client, &api, q).await));
            }
            out
        }));
    }
    let mut results = Vec::new();
    for t in running {
        results.extend(t.await.unwrap_or_default());
    }
    results
}

async fn search(a: SearchArgs) -> Result<()> {
    let c = &a.common;
    let max_level = a.levels.iter().copied().max().unwrap_or(1);
    let client = http_client(max_level.max(a.warmup_concurrency))?;
    let api = Arc::new(connect(&client, c).await?);
    let mut rng = SmallRng::from_os_rng();
    let shapes = SHAPES.len() + 1;
    let plan_queries = |rng: &mut SmallRng, count: usize| -> Vec<SearchQuery> {
        (0..count)
            .map(|i| {
                let shape = i % shapes;
                let category = ((i / shapes) % 3 == 2 && !a.categories.is_empty())
                    .then(|| a.categories[rng.random_range(0..a.categories.len())]);
                SearchQuery {
                    shape,
                    term: search_term(rng, shape, a.products),
                    category,
                }
            })
            .collect()
    };
    println!(
        "search: {} shapes, {} measured queries per level (every third of a shape also with \
         category_id) after {} unmeasured ones at c={}, levels {:?}, {} products",
        shapes, a.queries, a.warmup_queries, a.warmup_concurrency, a.levels, a.products
    );
    for &level in &a.levels {
        let level = level.max(1);
        // Warm-up, concurrently: the API's pool hands its idle connections
        // out in turn (first in, first out), and a connection's first run of
        // each search statement is slow (parse, describe, plan, its
        // backend's caches). After another load has opened the pool's
        // connections, sequential warm-up queries reach only some of the
        // (connection, statement) pairs and the measured p99 counted those
        // first runs, which a long-running API pays once per connection.
        let warmup = Arc::new(plan_queries(&mut rng, a.warmup_queries));
        run_searches(&client, &api, warmup, a.warmup_concurrency.max(1)).await;
        let queries = Arc::new(plan_queries(&mut rng, a.queries));
        let started = Instant::now();
        let results = run_searches(&client, &api, queries.clone(), level).await;
        let elapsed = started.elapsed().as_secs_f64();
        let mut all = Vec::new();
        let mut by_shape: BTreeMap<(usize, bool), (Vec<Duration>, usize)> = BTreeMap::new();
        let mut failures = Vec::new();
        // The slowest answers with their terms, to find the shapes' dear cases.
        let mut slowest: Vec<(Duration, usize)> = Vec::new();
        for (i, r) in results {
            match r {
                Ok((shape, cat, took, items)) => {
                    all.push(took);
                    slowest.push((took, i));
                    let e = by_shape.entry((shape, cat)).or_default();
                    e.0.push(took);
                    e.1 += items;
                }
                Err(e) => failures.push(e),
            }
        }
        all.sort_unstable();
        slowest.sort_unstable_by(|a, b| b.cmp(a));
        println!(
            "  c={level}: {} answered 200, {} failed, {:.0} queries/s",
            all.len(),
            failures.len(),
            all.len() as f64 / elapsed.max(1e-9)
        );
        for f in failures.iter().take(5) {
            println!("    failed: {f}");
        }
        println!(
            "    {:<28} {:>9} {:>9} {:>9} {:>6}",
            "shape", "p50 ms", "p99 ms", "max ms", "items"
        );
        let mut worst = (String::new(), 0.0f64);
        for ((shape, cat), (mut v, items)) in by_shape {
            v.sort_unstable();
            let name = format!(
                "{}{}",
                shape_name(shape),
                if cat { " +category" } else { "" }
            );
            let p99 = ms(percentile(&v, 99.0));
            println!(
                "    {name:<28} {:>9.2} {:>9.2} {:>9.2} {:>6.1}",
                ms(percentile(&v, 50.0)),
                p99,
                ms(v.last().copied().unwrap_or_default()),
                items as f64 / v.len().max(1) as f64
            );
            let key = name.replace(['+', ' ', '-'], "_");
            result(&format!("search_c{level}_{key}_p99_ms"), p99);
            if p99 > worst.1 {
                worst = (name, p99);
            }
        }
        println!("    slowest shape by p99: {} ({:.2} ms)", worst.0, worst.1);
        result(&format!("search_c{level}_worst_shape_p99_ms"), worst.1);
        for (took, i) in slowest.iter().take(8) {
            let q = &queries[*i];
            println!(
                "    slow: {:>8.2} ms  {:<22} q={:?}{}",
                took.as_secs_f64() * 1000.0,
                shape_name(q.shape),
                q.term,
                if q.category.is_some() {
                    " +category"
                } else {
                    ""
                }
            );
        }
        print_latency(
            &format!("c={level} overall"),
            &format!("search_c{level}"),
            &all,
        );
    }
    Ok(())
}

/// `cursor` of the page that starts after `depth` rows of `query`, and the rows skipped.
async fn deep_cursor(
    client: &reqwest::Client,
    api: &Api,
    query: &str,
    depth: usize,
) -> Result<(Option<String>, usize)> {
    let (mut skipped, mut cursor) = (0usize, None::<String>);
    while skipped < depth {
        let limit = (depth - skipped).min(500);
        let mut path = format!("/api/v1/transactions?{query}&limit={limit}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = get_json(client, api, &path).await?;
        let n = page["items"].as_array().map_or(0, Vec::len);
        match page["next_cursor"].as_str() {
            Some(c) if n == limit => {
                skipped += n;
                cursor = Some(c.to_owned());
            }
            _ => {
                // Fewer rows than the depth: the deep page is the last 50.
                if n > 50 {
                    let path =
                        path.replace(&format!("limit={limit}"), &format!("limit={}", n - 50));
                    let page = get_json(client, api, &path).await?;
                    if let Some(c) = page["next_cursor"].as_str() {
                        skipped += n - 50;
                        cursor = Some(c.to_owned());
                    }
                }
                break;
            }
        }
    }
    Ok((cursor, skipped))
}

async fn history(a: HistoryArgs) -> Result<()> {
    let c = &a.common;
    let client = http_client(1)?;
    let api = connect(&client, c).await?;
    println!(
        "history: GET /api/v1/transactions, c=1, {} measured requests per filter and page, \
         deep page after up to {} rows",
        a.queries, a.depth
    );
    println!(
        "    {:<12} {:<6} {:>7} {:>9} {:>9} {:>9}",
        "filter", "page", "depth", "p50 ms", "p99 ms", "max ms"
    );
    for spec in &a.filters {
        let (name, query) = spec
            .split_once('=')
            .ok_or_else(|| anyhow!("--filter wants NAME=QUERY, not {spec}"))?;
        let (cursor, depth) = deep_cursor(&client, &api, query, a.depth).await?;
        let first = format!("/api/v1/transactions?{query}&limit=50");
        let deep = cursor.map(|c| format!("{first}&cursor={c}"));
        for (page, path, depth) in [("first", Some(first), 0), ("deep", deep, depth)] {
            let Some(path) = path else {
                println!("    {name:<12} {page:<6} (the chain is shorter than one page)");
                continue;
            };
            let mut v = Vec::with_capacity(a.queries);
            for i in 0..a.queries + 10 {
                let started = Instant::now();
                let body = get_json(&client, &api, &path).await?;
                let took = started.elapsed();
                if body["items"].as_array().is_none_or(Vec::is_empty) {
                    bail!("{path} answered no rows");
                }
                if i >= 10 {
                    v.push(took);
                }
            }
            v.sort_unstable();
            println!(
                "    {name:<12} {page:<6} {depth:>7} {:>9.2} {:>9.2} {:>9.2}",
                ms(percentile(&v, 50.0)),
                ms(percentile(&v, 99.0)),
                ms(v.last().copied().unwrap_or_default())
            );
            result(
                &format!("history_{name}_{page}_p50_ms"),
                ms(percentile(&v, 50.0)),
            );
            result(
                &format!("history_{name}_{page}_p99_ms"),
                ms(percentile(&v, 99.0)),
            );
        }
    }
    let mut rng = SmallRng::from_os_rng();
    for spec in &a.gets {
        let mut parts = spec.splitn(3, '=');
        let (Some(name), Some(count), Some(template)) = (parts.next(), parts.next(), parts.next())
        else {
            bail!("--get wants NAME=COUNT=PATH, not {spec}");
        };
        let count: usize = count
            .parse()
            .with_context(|| format!("--get {name}: COUNT"))?;
        let mut v = Vec::with_capacity(count);
        // Two warm-up requests, then COUNT measured ones, each at its own instant.
        for i in 0..count + 2 {
            let ago = time::Duration::seconds(rng.random_range(0..730 * 86_400));
            let instant = (OffsetDateTime::now_utc() - ago).format(&Rfc3339)?;
            let path = template.replace("{as_of}", &instant.replace('+', "%2B"));
            let started = Instant::now();
            get_json(&client, &api, &path).await?;
            if i >= 2 {
                v.push(started.elapsed());
            }
        }
        v.sort_unstable();
        print_latency(&format!("GET {template}"), &format!("get_{name}"), &v);
    }
    Ok(())
}

/// A device key for the scanner modes, or None when the scanner API is not there (404).
async fn scanner_device(
    client: &reqwest::Client,
    api: &Api,
    warehouse: Uuid,
) -> Result<Option<String>> {
    let resp = client
        .post(format!("{}/api/v1/scanner/devices", api.base))
        .header("authorization", &api.auth)
        .json(&json!({ "name": format!("bench-{}", &Uuid::new_v4().to_string()[..8]), "warehouse_ids": [warehouse] }))
        .send()
        .await
        .context("POST /api/v1/scanner/devices")?;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    match status.as_u16() {
        404 | 405 => Ok(None),
        200 | 201 => Ok(Some(
            body["api_key"]
                .as_str()
                .ok_or_else(|| anyhow!("device answer without api_key: {body}"))?
                .to_owned(),
        )),
        _ => bail!(
            "creating a scanner device answered {status} (needs a manager/admin login): {body}"
        ),
    }
}

fn scan_event(rng: &mut SmallRng, products: u64, warehouse: Uuid, scanned_at: &str) -> Value {
    json!({
        "event_id": Uuid::new_v4(),
        "barcode": seeded_barcode(rng.random_range(1..=products.max(1))),
        "action": "receive",
        "quantity": 1,
        "warehouse_id": warehouse,
        "scanned_at": scanned_at,
    })
}

fn now_rfc3339() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_else(|_| "2026-01-01T00:00:00Z".to_owned())
}

fn skip_scanner(what: &str) {
    println!("SKIP {what}: the scanner endpoints answer 404 (not deployed in this build yet)");
    println!("RESULT skipped 1");
}

/// Counts results by status into the outcome.
fn scan_outcome(status: StatusCode, body: &[u8], events: u64) -> Outcome {
    let mut o = Outcome::status(status, status.is_success());
    if !status.is_success() {
        o.units = 0;
        o.detail = Some(format!(
            "{status} {}",
            String::from_utf8_lossy(body)
                .chars()
                .take(300)
                .collect::<String>()
        ));
        return o;
    }
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let mut by_status: BTreeMap<String, u64> = BTreeMap::new();
    let results: Vec<&Value> = match v["results"].as_array() {
        Some(r) => r.iter().collect(),
        None => vec![&v],
    };
    for r in &results {
        let s = r["status"].as_str().unwrap_or("unknown");
        *by_status.entry(format!("events {s}")).or_default() += 1;
    }
    o.units = events;
    o.extra = by_status.into_iter().collect();
    if let Some(r) = results.iter().find(|r| r["status"] == "rejected") {
        o.detail = Some(format!("rejected: {r}"));
    }
    o
}

async fn scan_batch(a: ScanBatchArgs) -> Result<()> {
    let c = &a.common;
    let max_level = a.levels.iter().copied().max().unwrap_or(1);
    let client = http_client(max_level)?;
    let api = connect(&client, c).await?;
    let warehouse = warehouse_id(&client, &api, &a.warehouse).await?;
    let Some(key) = scanner_device(&client, &api, warehouse).await? else {
        skip_scanner("scan-batch");
        return Ok(());
    };
    let url = Arc::new(format!("{}/api/v1/scanner/events/batch", api.base));
    let auth = Arc::new(format!("Bearer {key}"));
    // Probe with one event so a missing batch route skips instead of measuring 404s.
    let mut rng = SmallRng::from_os_rng();
    let probe = json!({ "events": [scan_event(&mut rng, a.products, warehouse, &now_rfc3339())] });
    let resp = client
        .post(url.as_str())
        .header("authorization", auth.as_str())
        .json(&probe)
        .send()
        .await?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    if status.as_u16() == 404 || status.as_u16() == 405 {
        skip_scanner("scan-batch");
        return Ok(());
    }
    if !status.is_success() {
        bail!("a one-event batch answered {status}: {text}");
    }
    let batch = a.batch.max(1);
    for &level in &a.levels {
        let plan = Plan {
            concurrency: level.max(1),
            ..plan(c, None)
        };
        let (client, url, auth) = (client.clone(), url.clone(), auth.clone());
        let products = a.products;
        let request: RequestFn = Arc::new(move |rng: &mut SmallRng| {
            let at = now_rfc3339();
            let events: Vec<Value> = (0..batch)
                .map(|_| scan_event(rng, products, warehouse, &at))
                .collect();
            let body = serde_json::to_vec(&json!({ "events": events })).unwrap_or_default();
            let req = client
                .post(url.as_str())
                .header("authorization", auth.as_str())
                .header("content-type", "application/json")
                .body(body);
            Box::pin(async move {
                match req.send().await {
                    Ok(resp) => {
                        let status = resp.status();
                        let body = resp.bytes().await.unwrap_or_default();
                        scan_outcome(status, &body, batch as u64)
                    }
                    Err(e) => Outcome::failed("error", e.to_string()),
                }
            })
        });
        let report = run(&plan, request).await;
        let events_per_s = report.per_second(report.tally.units);
        println!(
            "scan-batch: c={level}, {batch} events per batch, {:.0} s measured after {:.0} s warm-up",
            c.duration, c.warmup
        );
        println!(
            "  {} batches, {} events in {:.2} s = {events_per_s:.0} events/s ({})",
            report.tally.completed,
            report.tally.units,
            report.elapsed,
            report.counts()
        );
        report.print_details();
        println!("  {}", report.cpu("server side"));
        print_latency(
            "batch latency",
            &format!("batch_c{level}"),
            &report.tally.latency,
        );
        result(&format!("batch_c{level}_events_per_s"), events_per_s);
    }
    Ok(())
}

async fn scan_single(a: ScanSingleArgs) -> Result<()> {
    let c = &a.common;
    let client = http_client(c.concurrency)?;
    let api = connect(&client, c).await?;
    let warehouse = warehouse_id(&client, &api, &a.warehouse).await?;
    let Some(key) = scanner_device(&client, &api, warehouse).await? else {
        skip_scanner("scan-single");
        return Ok(());
    };
    let url = Arc::new(format!("{}/api/v1/scanner/events", api.base));
    let auth = Arc::new(format!("Bearer {key}"));
    let mut rng = SmallRng::from_os_rng();
    let resp = client
        .post(url.as_str())
        .header("authorization", auth.as_str())
        .json(&scan_event(&mut rng, a.products, warehouse, &now_rfc3339()))
        .send()
        .await?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    if status.as_u16() == 404 || status.as_u16() == 405 {
        skip_scanner("scan-single");
        return Ok(());
    }
    if !status.is_success() {
        bail!("a single scan event answered {status}: {text}");
    }
    let plan = plan(c, a.rate);
    let products = a.products;
    let request: RequestFn = Arc::new(move |rng: &mut SmallRng| {
        let event = scan_event(rng, products, warehouse, &now_rfc3339());
        let req = client
            .post(url.as_str())
            .header("authorization", auth.as_str())
            .json(&event);
        Box::pin(async move {
            match req.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    let body = resp.bytes().await.unwrap_or_default();
                    scan_outcome(status, &body, 1)
                }
                Err(e) => Outcome::failed("error", e.to_string()),
            }
        })
    });
    let report = run(&plan, request).await;
    let events_per_s = report.per_second(report.tally.units);
    println!(
        "scan-single: c={}, {:.0} s measured after {:.0} s warm-up",
        plan.concurrency, c.duration, c.warmup
    );
    println!(
        "  {} events in {:.2} s = {events_per_s:.0} events/s ({})",
        report.tally.units,
        report.elapsed,
        report.counts()
    );
    report.print_details();
    println!("  {}", report.cpu("server side"));
    print_latency("event latency", "single", &report.tally.latency);
    report.print_tail();
    result("single_events_per_s", events_per_s);
    Ok(())
}
