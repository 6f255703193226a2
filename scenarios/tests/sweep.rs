//! Capacity planning end to end: `wssim sweep` over a small grid writes its table
//! (CSV, JSON) and its page with a chart per figure; and the clinic's ordering
//! strategy is what the scenario says (ordered when called, no patient's order is
//! placed before the patient before them at that booth had their dose).

use std::process::Command;

fn planning() -> String {
    let base = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/planning/clinic-hour.toml")).expect("planning scenario");
    // A short hour: the test is about the sweep, not the figures.
    base.replace("duration_h = 0.75", "duration_h = 0.1")
}

#[test]
fn a_sweep_writes_its_table_and_a_chart_per_figure() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("plan.toml");
    std::fs::write(&file, planning()).expect("scenario");
    let report = dir.path().join("report");
    let out = Command::new(env!("CARGO_BIN_EXE_wssim"))
        .args(["sweep"])
        .arg(&file)
        .args(["--vary", "booths=2..3", "--vary", "arrivals_per_hour=100..200:100", "--jobs", "2", "--json", "--report"])
        .arg(&report)
        .output()
        .expect("wssim runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    // A JSON line per run, then the summary.
    let lines: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    assert_eq!(lines.len(), 5, "{stdout}");
    assert!(lines[..4].iter().all(|r| r["patients"].as_u64().unwrap_or(0) > 0 && r["wait_p95_s"].as_f64().unwrap_or(-1.0) > 0.0), "{stdout}");
    assert_eq!(lines[4]["runs"], 4);
    let csv = std::fs::read_to_string(report.join("sweep.csv")).expect("csv");
    assert_eq!(csv.lines().count(), 5, "{csv}");
    assert!(csv.starts_with("arrivals_per_hour,booths,seed,"), "{csv}");
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(report.join("sweep.json")).expect("json")).expect("parses");
    assert_eq!(json["points"].as_array().map(Vec::len), Some(4));
    assert_eq!(json["booths_needed"].as_array().map(Vec::len), Some(2), "an answer per arrival rate");
    let page = std::fs::read_to_string(report.join("index.html")).expect("page");
    assert_eq!(page.matches("<svg").count(), 4, "wait, throughput, utilisation, waste");
    assert!(page.contains("booths 2") && page.contains("booths 3"), "a line per booth count");
}

#[test]
fn a_bad_axis_is_refused_naming_it() {
    let out = Command::new(env!("CARGO_BIN_EXE_wssim")).args(["sweep", "x.toml", "--vary", "boths=1..2", "--report", "/tmp/x"]).output().expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("boths"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn ordered_when_called_no_order_precedes_the_dose_before_it_at_its_booth() {
    let text = planning().replace("ordering = \"check_in\"", "ordering = \"when_called\"").replace("per_hour = 300", "per_hour = 200").replace("booths = 6", "booths = 2");
    let scenario = scenarios::format::Scenario::parse(&text).expect("scenario");
    let raw = scenarios::run::run(&scenario, scenario.seed, &|_, _, _| {}).expect("runs");
    let mut by_booth: std::collections::BTreeMap<u8, Vec<(chrono::DateTime<chrono::Utc>, Option<chrono::DateTime<chrono::Utc>>)>> = Default::default();
    for d in &raw.finals {
        by_booth.entry(d.order.booth.0).or_default().push((d.created_at, raw.given.get(&d.id).copied()));
    }
    let mut checked = 0;
    for (booth, mut orders) in by_booth {
        orders.sort();
        for pair in orders.windows(2) {
            if let (Some(given), next_ordered) = (pair[0].1, pair[1].0) {
                assert!(next_ordered >= given, "booth {booth}: an order at {next_ordered} before the dose before it at {given}");
                checked += 1;
            }
        }
    }
    assert!(checked > 5, "the run had patients queueing for their booths ({checked} pairs)");
    // Ordered at check-in, the same day has orders placed while the booth still serves.
    let check_in = scenarios::format::Scenario::parse(&text.replace("when_called", "check_in")).expect("scenario");
    let raw = scenarios::run::run(&check_in, check_in.seed, &|_, _, _| {}).expect("runs");
    let early = raw.finals.iter().filter(|d| raw.finals.iter().any(|e| e.order.booth == d.order.booth && e.created_at < d.created_at && raw.given.get(&e.id).is_some_and(|g| *g > d.created_at))).count();
    assert!(early > 0, "at check-in, orders wait in the workstation's queue for their booth");
}

/// Outside a terminal (CI logs, pipes) a long run writes its results only: no
/// progress bar on stderr.
#[test]
fn no_progress_bar_outside_a_terminal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("plan.toml");
    std::fs::write(&file, planning()).expect("scenario");
    let out = Command::new(env!("CARGO_BIN_EXE_wssim")).args(["sweep"]).arg(&file).args(["--vary", "booths=2", "--report"]).arg(dir.path().join("r")).output().expect("wssim runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "nothing but results outside a terminal: {:?}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("booths=2"), "the table");
    let out = Command::new(env!("CARGO_BIN_EXE_wssim")).args(["run"]).arg(&file).output().expect("wssim runs");
    assert!(out.stderr.is_empty(), "{:?}", String::from_utf8_lossy(&out.stderr));
}
