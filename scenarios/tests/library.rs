//! Every scenario in `scenarios/library/` is a test case of its own (libtest-mimic):
//! it runs on the virtual clock and must meet all its expectations and the two
//! safety checks every run has (no wrong unit delivered, every unit accounted for),
//! and replay: run twice, it gives the same event log digest.
//! Adding a file adds a test; `cargo test -p scenarios --test library rush` runs one.

use libtest_mimic::{Arguments, Failed, Trial};
use std::path::{Path, PathBuf};

fn main() {
    let args = Arguments::from_args();
    let library = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("library");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&library).expect("library").filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "toml")).collect();
    files.sort();
    let mut trials: Vec<Trial> = files.into_iter().map(|file| Trial::test(format!("scenario::{}", stem(&file)), move || run_scenario(&file))).collect();
    trials.push(Trial::test("the_library_has_its_scenarios", || {
        let count = std::fs::read_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("library")).map_err(|e| Failed::from(e.to_string()))?.count();
        if count < 14 { Err(format!("only {count} scenario files").into()) } else { Ok(()) }
    }));
    trials.push(Trial::test("a_broken_scenario_file_is_refused_naming_the_problem", broken_files_are_refused));
    libtest_mimic::run(&args, trials).exit();
}

fn stem(file: &Path) -> String {
    file.file_stem().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

fn run_scenario(file: &Path) -> Result<(), Failed> {
    let report = scenarios::run_file(file, None, &|_, _, _| {}).map_err(|e| Failed::from(format!("{e:#}")))?;
    // Deterministic: the same scenario and seed replay to the same event log (issue 18).
    let again = scenarios::run_file(file, None, &|_, _, _| {}).map_err(|e| Failed::from(format!("{e:#}")))?;
    if again.metrics.digest != report.metrics.digest {
        let first = report.metrics.event_log.iter().zip(&again.metrics.event_log).position(|(a, b)| a != b).unwrap_or(report.metrics.event_log.len().min(again.metrics.event_log.len()));
        return Err(format!(
            "two runs with seed {} differ (digests {} and {}) from event {first}:\n  {}\n  {}",
            report.seed,
            report.metrics.digest,
            again.metrics.digest,
            report.metrics.event_log.get(first).map_or("(end)", String::as_str),
            again.metrics.event_log.get(first).map_or("(end)", String::as_str)
        )
        .into());
    }
    if !report.checks.iter().any(|c| c.name == "no wrong unit delivered") || !report.checks.iter().any(|c| c.name == "every unit accounted for") {
        return Err("the safety checks did not run".into());
    }
    let failed: Vec<String> = report.checks.iter().filter(|c| !c.passed).map(|c| format!("{}: {}", c.name, c.detail)).collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("expectations failed:\n{}", failed.join("\n")).into())
    }
}

fn broken_files_are_refused() -> Result<(), Failed> {
    let dir = tempfile::tempdir().map_err(|e| Failed::from(e.to_string()))?;
    let cases = [
        ("name = \"x\"\nduration_h = 1\n[stock]\n[patients.arrivals]\nper_hour = 5\nmix = { HepB = 1 }\n[expect]\nadministerd = 3\n", "administerd"),
        ("name = \"x\"\nduration_h = 1\n[stock]\n[patients]\n", "patients"),
        ("name = \"x\"\nduration_h = 1\n[stock]\n[patients.arrivals]\nper_hour = 5\nmix = { HepB = 1 }\n[[faults]]\nat_min = 1\nfault = \"gremlins\"\n", "gremlins"),
        ("name = \"x\"\nduration_h = 1\n[stock]\n[[stock.batch]]\ngtin = \"06901234000016\"\nlot = \"L\"\nexpiry = \"2030-01-31\"\nserial_prefix = \"S\"\ncount = 2\nfirst_slot = \"R9-0-0\"\n[patients.arrivals]\nper_hour = 5\nmix = { HepB = 1 }\n", "R9-0-0"),
        ("name = \"x\"\nduration_h = 1\n[stock]\n[patients.arrivals]\nper_hour = 5\nmix = { Unobtainium = 1 }\n", "Unobtainium"),
        // A store the register map cannot describe, on the wire: named, with the way out.
        ("name = \"x\"\nduration_h = 1\n[workstation]\nsimulator = { racks = 4, rows = 30, columns = 10 }\n[stock]\n[patients.arrivals]\nper_hour = 5\nmix = { HepB = 1 }\n", "in-process"),
        ("name = \"x\"\nduration_h = 1\n[workstation]\ndevices = \"carrier-pigeon\"\n[stock]\n[patients.arrivals]\nper_hour = 5\nmix = { HepB = 1 }\n", "carrier-pigeon"),
    ];
    for (i, (text, named)) in cases.iter().enumerate() {
        let file = dir.path().join(format!("broken-{i}.toml"));
        std::fs::write(&file, text).map_err(|e| Failed::from(e.to_string()))?;
        let message = match scenarios::run_file(&file, None, &|_, _, _| {}) {
            Ok(_) => return Err(format!("case {i} was accepted").into()),
            Err(e) => format!("{e:#}"),
        };
        if !(message.contains(named) && message.contains("broken-")) {
            return Err(format!("case {i}: the error does not name {named:?} and the file: {message}").into());
        }
    }
    Ok(())
}
