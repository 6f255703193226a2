//! `wssim sweep FILE --vary NAME=A..B[:STEP] … [--seeds N] [--jobs N] [--wait-min M]
//! --report DIR [--json]`: one scenario over a grid of settings (see
//! `scenarios::sweep`), with a progress bar on a terminal (none in JSON mode or
//! when stderr is not a terminal); writes DIR/sweep.csv (a row per point and seed),
//! DIR/sweep.json (rows, per-point summaries, the planner's answer) and
//! DIR/index.html (the table and the charts, SVG). Exit 0 when every point ran and
//! no safety check failed, 1 otherwise, 2 on a bad argument.

use scenarios::plots::{self, Series};
use scenarios::sweep::{self, Axis, Row, Summary};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The scenario to vary.
    file: PathBuf,
    /// A setting and its values: `booths=4..8`, `arrivals_per_hour=200..600:100`,
    /// `ordering=check_in,when_called`, `duration_h=1..3` (repeat for a grid).
    #[arg(long = "vary", required = true)]
    vary: Vec<Axis>,
    /// Seeds per point (the scenario's seed and the next ones).
    #[arg(long, default_value_t = 1)]
    seeds: u64,
    /// Runs at once (threads).
    #[arg(long, default_value_t = 2)]
    jobs: usize,
    /// The planner's limit on the patients' p95 wait, minutes.
    #[arg(long, default_value_t = 5.0)]
    wait_min: f64,
    /// The folder for sweep.csv, sweep.json and index.html.
    #[arg(long)]
    report: PathBuf,
    /// A JSON line per run and the summary as JSON on stdout; no progress bar.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> ExitCode {
    let base = match scenarios::format::Scenario::load(&args.file) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("wssim: {e:#}");
            return ExitCode::from(2);
        }
    };
    let points = sweep::grid(&args.vary);
    // Each point must make a valid scenario before anything runs.
    for point in &points {
        let mut s = base.clone();
        if let Some(e) = point.iter().find_map(|(n, v)| sweep::apply(&mut s, n, v).err()).or_else(|| s.check().err()) {
            eprintln!("wssim: {}: point {point:?}: {e}", args.file.display());
            return ExitCode::from(2);
        }
    }
    let runs = points.len() as u64 * args.seeds.max(1);
    let bar = if args.json { indicatif::ProgressBar::hidden() } else { crate::progress::bar(runs, "{elapsed_precise} [{bar:30}] {pos}/{len} runs  {msg}") };
    let wall = std::time::Instant::now();
    let each = |row: &Row| {
        if args.json {
            println!("{}", serde_json::to_string(row).unwrap_or_default());
        }
        bar.set_message(format!("{:?} seed {}: p95 wait {:.0} s", row.point, row.seed, row.wait_p95_s));
        bar.inc(1);
    };
    let rows = match sweep::sweep(&base, &points, args.seeds, args.jobs, &each) {
        Ok(rows) => rows,
        Err(e) => {
            bar.abandon();
            eprintln!("wssim: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    bar.finish_and_clear();
    let wall_s = wall.elapsed().as_secs_f64();
    let summaries = sweep::summarise(&rows);
    let wait_s = args.wait_min * 60.0;
    let answers = if args.vary.iter().any(|a| a.name == "booths") { sweep::smallest_meeting(&summaries, "booths", wait_s) } else { Vec::new() };
    let unsafe_points: Vec<&Summary> = summaries.iter().filter(|s| !s.safety_failed.is_empty()).collect();
    let report = serde_json::json!({
        "scenario": base.name,
        "runs": rows.len(),
        "wall_s": wall_s,
        "wait_limit_s": wait_s,
        "rows": rows,
        "points": summaries,
        "booths_needed": answers.iter().map(|(p, b)| serde_json::json!({"at": p, "booths": b})).collect::<Vec<_>>(),
    });
    if let Err(e) = write_report(&args.report, &rows, &summaries, &answers, &report, args.wait_min) {
        eprintln!("wssim: {}: {e}", args.report.display());
        return ExitCode::FAILURE;
    }
    if args.json {
        println!("{}", serde_json::json!({"runs": rows.len(), "wall_s": wall_s, "booths_needed": report["booths_needed"], "unsafe_points": unsafe_points.len()}));
    } else {
        print!("{}", table(&summaries));
        for (at, booths) in &answers {
            match booths {
                Some(b) => println!("p95 wait ≤ {:.0} min at {at:?}: {b} booths", args.wait_min),
                None => println!("p95 wait ≤ {:.0} min at {at:?}: no booth count tried meets it", args.wait_min),
            }
        }
        println!("{} runs in {wall_s:.1} s; report {}", rows.len(), args.report.join("index.html").display());
    }
    if unsafe_points.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// The per-point table for the terminal.
fn table(summaries: &[Summary]) -> String {
    let mut out = String::new();
    for s in summaries {
        let point: Vec<String> = s.point.iter().map(|(k, v)| format!("{k}={v}")).collect();
        out.push_str(&format!(
            "{:<44} {:>6.1}/h  wait p50 {:>5.0} s p95 {:>5.0} s  booths {:>3.0} %  wasted {:>4.1}  {}\n",
            point.join(" "),
            s.throughput_per_hour,
            s.wait_p50_s,
            s.wait_p95_s,
            s.booth_utilisation * 100.0,
            s.units_wasted,
            if s.safety_failed.is_empty() { "safe".to_owned() } else { format!("UNSAFE: {}", s.safety_failed.join(", ")) }
        ));
    }
    out
}

/// The x axis of the charts: arrivals per hour if varied, else the first numeric setting.
fn x_axis(summaries: &[Summary]) -> Option<String> {
    let first = summaries.first()?;
    let numeric = |k: &String| summaries.iter().all(|s| s.point.get(k).is_some_and(|v| v.parse::<f64>().is_ok()));
    if first.point.contains_key("arrivals_per_hour") {
        return Some("arrivals_per_hour".into());
    }
    first.point.keys().find(|k| numeric(k)).cloned()
}

/// One chart's series: a line per combination of the other settings.
fn series(summaries: &[Summary], x: &str, y: impl Fn(&Summary) -> f64) -> Vec<Series> {
    let mut lines: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for s in summaries {
        let Some(xv) = s.point.get(x).and_then(|v| v.parse::<f64>().ok()) else { continue };
        let name: Vec<String> = s.point.iter().filter(|(k, _)| *k != x).map(|(k, v)| format!("{k} {v}")).collect();
        lines.entry(if name.is_empty() { "all".into() } else { name.join(", ") }).or_default().push((xv, y(s)));
    }
    lines
        .into_iter()
        .map(|(name, mut points)| {
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            Series { name, points }
        })
        .collect()
}

fn write_report(dir: &Path, rows: &[Row], summaries: &[Summary], answers: &[(BTreeMap<String, String>, Option<String>)], json: &serde_json::Value, wait_min: f64) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("sweep.csv"), sweep::csv(rows)).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("sweep.json"), serde_json::to_string_pretty(json).unwrap_or_default()).map_err(|e| e.to_string())?;
    let mut charts = Vec::new();
    if let Some(x) = x_axis(summaries) {
        let caption = x.replace('_', " ");
        charts.push(plots::lines("Patients' wait, check-in to dose (p95)", &caption, "minutes", &series(summaries, &x, |s| s.wait_p95_s / 60.0), Some((&format!("{wait_min:.0} min"), wait_min)))?);
        charts.push(plots::lines("Throughput", &caption, "doses per hour", &series(summaries, &x, |s| s.throughput_per_hour), None)?);
        charts.push(plots::lines("Booth utilisation", &caption, "% of booth time busy", &series(summaries, &x, |s| s.booth_utilisation * 100.0), None)?);
        charts.push(plots::lines("Units wasted per run", &caption, "units", &series(summaries, &x, |s| s.units_wasted), None)?);
    }
    let mut page = String::from("<!doctype html><meta charset=utf-8><title>Sweep</title><style>body{font:14px sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}figure{margin:1em 0}</style><h1>Sweep</h1>");
    for (at, booths) in answers {
        page.push_str(&format!("<p class=answer>p95 wait ≤ {wait_min:.0} min at {}: <b>{}</b></p>", esc(&format!("{at:?}")), booths.as_deref().map_or("no booth count tried meets it".to_owned(), |b| format!("{b} booths"))));
    }
    page.push_str("<table><tr>");
    let names: Vec<&String> = summaries.first().map(|s| s.point.keys().collect()).unwrap_or_default();
    for n in &names {
        page.push_str(&format!("<th>{}</th>", esc(n)));
    }
    page.push_str("<th>seeds</th><th>doses/h</th><th>wait p50 s</th><th>wait p95 s</th><th>order to booth p95 s</th><th>booths busy</th><th>units wasted</th><th>not given</th><th>safety</th></tr>");
    for s in summaries {
        page.push_str("<tr>");
        for n in &names {
            page.push_str(&format!("<td>{}</td>", esc(s.point.get(*n).map_or("", String::as_str))));
        }
        page.push_str(&format!(
            "<td>{}</td><td>{:.1}</td><td>{:.0}</td><td>{:.0}</td><td>{:.0}</td><td>{:.0} %</td><td>{:.1}</td><td>{:.1}</td><td>{}</td></tr>",
            s.seeds,
            s.throughput_per_hour,
            s.wait_p50_s,
            s.wait_p95_s,
            s.order_to_booth_p95_s,
            s.booth_utilisation * 100.0,
            s.units_wasted,
            s.patients_not_given,
            if s.safety_failed.is_empty() { "safe".to_owned() } else { esc(&s.safety_failed.join(", ")) }
        ));
    }
    page.push_str("</table>");
    for chart in charts {
        page.push_str("<figure class=chart>");
        page.push_str(&chart);
        page.push_str("</figure>");
    }
    std::fs::write(dir.join("index.html"), page).map_err(|e| e.to_string())
}

fn esc(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}
