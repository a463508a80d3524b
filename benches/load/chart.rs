//! `growth-chart`: draws the growth curve `scripts/bench.sh growth` measured
//! as a small SVG (bench/growth.svg), so bench/README.md can show it.
//!
//! Each series is drawn as its slowdown against the smallest size: the
//! smallest size's movements/s divided by this size's, and this size's p99
//! divided by the smallest size's. Flat is 1.0 whatever the unit, and the
//! target (within 1.5x from the smallest to the largest) is one dashed line.
//! The measured figures are written under the axis, one row per series.

use std::fmt::Write as _;

use anyhow::{anyhow, bail, Context, Result};

#[derive(clap::Args)]
pub struct ChartArgs {
    /// Tab-separated: products, ledger rows, movements/s, search p99 ms,
    /// listing p99 ms; a header line first.
    #[arg(long)]
    input: std::path::PathBuf,
    /// Where the SVG goes.
    #[arg(long)]
    output: std::path::PathBuf,
}

struct Row {
    products: u64,
    ledger_rows: u64,
    movements: f64,
    search_p99: f64,
    listing_p99: f64,
}

struct Series {
    name: &'static str,
    colour: &'static str,
    /// Slowdown against the first row, and the label of the measured figure.
    points: Vec<(f64, String)>,
}

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 400.0;
const LEFT: f64 = 150.0;
const RIGHT: f64 = 70.0;
const TOP: f64 = 40.0;
/// Room for the size labels and one row of figures per series.
const BOTTOM: f64 = 96.0;
const LIMIT: f64 = 1.5;

pub fn run(a: ChartArgs) -> Result<()> {
    let text = std::fs::read_to_string(&a.input)
        .with_context(|| format!("reading {}", a.input.display()))?;
    let rows = parse(&text)?;
    let svg = draw(&rows);
    std::fs::write(&a.output, svg).with_context(|| format!("writing {}", a.output.display()))?;
    println!(
        "growth chart: {} sizes -> {}",
        rows.len(),
        a.output.display()
    );
    Ok(())
}

fn parse(text: &str) -> Result<Vec<Row>> {
    let rows = text
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            let [products, ledger_rows, movements, search_p99, listing_p99] = f[..] else {
                bail!("expected 5 tab-separated columns: {line}");
            };
            Ok(Row {
                products: products.parse()?,
                ledger_rows: ledger_rows.parse()?,
                movements: movements.parse()?,
                search_p99: search_p99.parse()?,
                listing_p99: listing_p99.parse()?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let first = rows.first().ok_or_else(|| anyhow!("no measured sizes"))?;
    if first.movements <= 0.0 || first.search_p99 <= 0.0 || first.listing_p99 <= 0.0 {
        bail!("the smallest size has a zero figure: nothing to compare against");
    }
    Ok(rows)
}

/// A series: name, colour, the figure, its label, and whether more is better.
type Spec = (
    &'static str,
    &'static str,
    fn(&Row) -> f64,
    fn(f64) -> String,
    bool,
);

fn series(rows: &[Row]) -> Vec<Series> {
    let specs: [Spec; 3] = [
        (
            "movements/s",
            "#1f77b4",
            |r| r.movements,
            |v| format!("{v:.0}/s"),
            true,
        ),
        (
            "search p99",
            "#2ca02c",
            |r| r.search_p99,
            |v| format!("{v:.1} ms"),
            false,
        ),
        (
            "listing p99",
            "#9467bd",
            |r| r.listing_p99,
            |v| format!("{v:.1} ms"),
            false,
        ),
    ];
    specs
        .into_iter()
        .map(|(name, colour, figure, label, higher_is_better)| {
            let base = figure(&rows[0]);
            Series {
                name,
                colour,
                // Slowdown against the smallest size: fewer per second, or a longer p99.
                points: rows
                    .iter()
                    .map(|r| {
                        let v = figure(r);
                        let slowdown = if higher_is_better {
                            base / v.max(0.01)
                        } else {
                            v / base
                        };
                        (slowdown, label(v))
                    })
                    .collect(),
            }
        })
        .collect()
}

fn draw(rows: &[Row]) -> String {
    let all = series(rows);
    let top = all
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .fold(2.0_f64, f64::max)
        .ceil();
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |i: usize| {
        if rows.len() == 1 {
            LEFT + plot_w / 2.0
        } else {
            LEFT + plot_w * i as f64 / (rows.len() - 1) as f64
        }
    };
    let y = |v: f64| TOP + plot_h * (1.0 - v / top);
    let row_y = |k: usize| HEIGHT - BOTTOM + 52.0 + 15.0 * k as f64;

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="8" y="20" font-size="13" font-weight="bold">Growth: slowdown against {} products (1.0 = flat; target within {LIMIT}x)</text>"#,
        thousands(rows[0].products)
    );
    // Grid and y axis: whole and half steps.
    let mut v = 0.0;
    while v <= top + 1e-9 {
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{v:.1}x</text>"##,
            LEFT + plot_w,
            y(v),
            y(v),
            LEFT - 6.0,
            y(v) + 4.0
        );
        v += 0.5;
    }
    let _ = writeln!(
        svg,
        r##"<line x1="{LEFT}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="#d62728" stroke-dasharray="6 4"/><text x="{:.1}" y="{:.1}" fill="#d62728">limit {LIMIT}x</text>"##,
        LEFT + plot_w,
        y(LIMIT),
        y(LIMIT),
        LEFT + plot_w + 6.0,
        y(LIMIT) + 4.0
    );
    // X axis: one tick per size.
    for (i, r) in rows.iter().enumerate() {
        let _ = writeln!(
            svg,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="middle">{} products</text><text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#666">{} ledger rows</text>"##,
            x(i),
            HEIGHT - BOTTOM + 18.0,
            thousands(r.products),
            x(i),
            HEIGHT - BOTTOM + 32.0,
            thousands(r.ledger_rows)
        );
    }
    for (k, s) in all.iter().enumerate() {
        let path: Vec<String> = s
            .points
            .iter()
            .enumerate()
            .map(|(i, p)| format!("{:.1},{:.1}", x(i), y(p.0)))
            .collect();
        let _ = writeln!(
            svg,
            r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"/>"#,
            path.join(" "),
            s.colour
        );
        for (i, (factor, label)) in s.points.iter().enumerate() {
            let _ = writeln!(
                svg,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{c}"/><text x="{:.1}" y="{:.1}" text-anchor="middle" fill="{c}">{label} ({factor:.2}x)</text>"#,
                x(i),
                y(*factor),
                x(i),
                row_y(k),
                c = s.colour
            );
        }
        let _ = writeln!(
            svg,
            r#"<text x="8" y="{:.1}" fill="{}" font-weight="bold">{}</text>"#,
            row_y(k),
            s.colour,
            s.name
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn thousands(n: u64) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}
