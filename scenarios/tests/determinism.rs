//! A scenario run is a replayable experiment (issue 18): the clinic day is the
//! scenario's own — its opening date, local time and time zone — never the host's,
//! and the same scenario and seed give a byte-identical event log, whose digest
//! `wssim run` prints. The library replays to the same digest run after run
//! (`tests/library.rs` runs each scenario twice); here a run made with the host's
//! clock moved years ahead (libfaketime) gives the digest of one made today.

use std::path::Path;
use std::process::Command;

/// Opens on New Year's Day 2031 in Berlin; lot OLD expired the day before, nearest
/// the hatch. Run on any host date, it gives the same three doses, all from NEW.
const BERLIN: &str = r#"name = "berlin-new-year"
description = "Opens on New Year's Day 2031 in Berlin: lot OLD expired the day before."
seed = 5
duration_h = 0.5

[site]
opens = "2031-01-01T08:00:00"
time_zone = "Europe/Berlin"

[workstation]
simulator = { booths = 2 }
devices = "in-process"

[[stock.batch]]
gtin = "06901234000016"
lot = "OLD"
expiry = "2030-12-31"
serial_prefix = "OL"
count = 3
first_slot = "R0-0-0"

[[stock.batch]]
gtin = "06901234000016"
lot = "NEW"
expiry = "2032-06-30"
serial_prefix = "NW"
count = 10
first_slot = "R1-0-0"

[[patients.list]]
at_min = 1
product = "HepB"

[[patients.list]]
at_min = 2
product = "HepB"

[[patients.list]]
at_min = 3
product = "HepB"

[expect]
administered_by_product = { HepB = 3 }
none_given_from = ["OLD"]
"#;

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let file = dir.join(name);
    std::fs::write(&file, text).expect("scenario file");
    file
}

#[test]
fn the_clinic_day_is_the_scenarios_own() {
    let dir = tempfile::tempdir().expect("tempdir");
    let report = scenarios::run_file(&write(dir.path(), "berlin.toml", BERLIN), None, &|_, _, _| {}).expect("runs");
    let m = &report.metrics;
    assert!(report.passed, "{:?}", report.checks);
    assert_eq!(m.administered, 3);
    assert_eq!(m.administered_by_lot.keys().collect::<Vec<_>>(), vec!["NEW"], "the OLD lot expired on the scenario's day");
    let first = m.event_log.first().expect("events");
    assert!(first.starts_with("2031-01-01T07:00:00"), "08:00 in Berlin is 07:00 UTC: {first}");
    let broken = write(dir.path(), "gap.toml", &BERLIN.replace("2031-01-01T08:00:00", "2031-03-30T02:30:00"));
    let refused = scenarios::run_file(&broken, None, &|_, _, _| {}).map(|_| ()).expect_err("02:30 does not exist that night in Berlin");
    assert!(format!("{refused:#}").contains("site.opens"), "{refused:#}");
}

/// The digest `wssim run` prints.
fn printed_digest(output: &std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout.lines().find_map(|l| l.trim().strip_prefix("digest sha256:")).map(|d| d.split_whitespace().next().unwrap_or_default().to_owned()).unwrap_or_else(|| panic!("no digest printed: {stdout}"))
}

#[test]
fn a_run_replays_to_the_same_digest_whatever_the_hosts_date() {
    let library = Path::new(env!("CARGO_MANIFEST_DIR")).join("library");
    // A restart and line faults over the wire: the most moving parts.
    let file = library.join("power-cut-restart.toml");
    let here = scenarios::run_file(&file, None, &|_, _, _| {}).expect("runs");
    let wssim = env!("CARGO_BIN_EXE_wssim");
    // Only the wall clock moves (the runs' timers are tokio's, on the monotonic clock).
    let moved = Command::new("faketime")
        .args(["-f", "@2033-03-03 03:03:03", wssim, "run"])
        .arg(&file)
        .env("DONT_FAKE_MONOTONIC", "1")
        .output()
        .expect("faketime runs (scripts/setup.sh installs it)");
    assert!(moved.status.success(), "{}", String::from_utf8_lossy(&moved.stderr));
    let date = Command::new("faketime").args(["-f", "@2033-03-03 03:03:03", "date", "+%Y"]).output().expect("date");
    assert_eq!(String::from_utf8_lossy(&date.stdout).trim(), "2033", "faketime moves the host's date");
    assert_eq!(printed_digest(&moved), here.metrics.digest, "the same run on another host date");
}
