//! Every scenario in `scenarios/library/` is a test case: it runs on the virtual
//! clock and must meet all its expectations (and the two safety checks every run
//! has: no wrong unit delivered, every unit accounted for).

use std::path::PathBuf;

#[test]
fn every_scenario_in_the_library_meets_its_expectations() {
    let library = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("library");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&library).expect("library").filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "toml")).collect();
    files.sort();
    assert!(files.len() >= 10, "the library has its scenarios: {files:?}");
    // Two at a time: each scenario is single-threaded on its own virtual clock.
    let queue = std::sync::Mutex::new(files.clone());
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                while let Some(file) = queue.lock().expect("queue").pop() {
                    let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                    match scenarios::run_file(&file, None, &|_, _, _| {}) {
                        Ok(report) => {
                            eprintln!("{} {name}: {} administered, {} rejected, {} failed in {:.1} virtual h ({:.1} s)", if report.passed { "PASS" } else { "FAIL" }, report.metrics.administered, report.metrics.rejected, report.metrics.failed, report.metrics.virtual_hours, report.metrics.wall_s);
                            for c in report.checks.iter().filter(|c| !c.passed) {
                                failures.lock().expect("failures").push(format!("{name}: {}: {}", c.name, c.detail));
                            }
                            assert!(report.checks.iter().any(|c| c.name == "no wrong unit delivered"), "the safety checks always run");
                        }
                        Err(e) => failures.lock().expect("failures").push(format!("{name}: {e:#}")),
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().expect("failures");
    assert!(failures.is_empty(), "expectations failed:\n{}", failures.join("\n"));
}

#[test]
fn a_broken_scenario_file_is_refused_naming_the_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        ("name = \"x\"\nduration_h = 1\n[stock]\n[patients.arrivals]\nper_hour = 5\nmix = { HepB = 1 }\n[expect]\nadministerd = 3\n", "administerd"),
        ("name = \"x\"\nduration_h = 1\n[stock]\n[patients]\n", "patients"),
        ("name = \"x\"\nduration_h = 1\n[stock]\n[patients.arrivals]\nper_hour = 5\nmix = { HepB = 1 }\n[[faults]]\nat_min = 1\nfault = \"gremlins\"\n", "gremlins"),
        ("name = \"x\"\nduration_h = 1\n[stock]\n[[stock.batch]]\ngtin = \"06901234000016\"\nlot = \"L\"\nexpiry = \"2030-01-31\"\nserial_prefix = \"S\"\ncount = 2\nfirst_slot = \"R9-0-0\"\n[patients.arrivals]\nper_hour = 5\nmix = { HepB = 1 }\n", "R9-0-0"),
        ("name = \"x\"\nduration_h = 1\n[stock]\n[patients.arrivals]\nper_hour = 5\nmix = { Unobtainium = 1 }\n", "Unobtainium"),
    ];
    for (i, (text, named)) in cases.iter().enumerate() {
        let file = dir.path().join(format!("broken-{i}.toml"));
        std::fs::write(&file, text).expect("write");
        let error = scenarios::run_file(&file, None, &|_, _, _| {}).expect_err("refused");
        let message = format!("{error:#}");
        assert!(message.contains(named) && message.contains("broken-"), "case {i}: {message}");
    }
}
