//! `wssim hunt` (issue 18): a fixed set of seeds runs in CI and passes, its summary
//! line carries seeds, dispenses, violations and a digest that a second hunt over
//! the same seeds reproduces; a failing world is shrunk to what still fails.

use std::process::Command;

/// The hunt's final JSON line.
fn summary(output: &std::process::Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("the last line is the JSON summary ({e}): {stdout}"))
}

#[test]
fn a_fixed_set_of_seeds_passes_and_replays_to_the_same_digest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hunt = || {
        Command::new(env!("CARGO_BIN_EXE_wssim"))
            .args(["hunt", "--seeds", "1..4", "--jobs", "2", "--json", "--keep"])
            .arg(dir.path())
            .output()
            .expect("wssim runs")
    };
    let first = hunt();
    let s = summary(&first);
    assert!(first.status.success(), "every seed passes: {}", String::from_utf8_lossy(&first.stdout));
    assert_eq!(s["seeds"], 4);
    assert_eq!(s["violations"], 0);
    assert!(s["dispenses"].as_u64().is_some_and(|d| d > 20), "{s}");
    assert_eq!(s["digest"].as_str().map(str::len), Some(64), "{s}");
    let again = summary(&hunt());
    assert_eq!(again["digest"], s["digest"], "two hunts over the same seeds behave alike");
}

#[test]
fn a_failing_world_is_shrunk_to_what_fails() {
    // An expectation no run can meet fails whatever happens; the faults and the
    // restart have nothing to do with it, so shrinking drops them all.
    let text = "name = \"doomed\"\nseed = 3\nduration_h = 0.25\n[workstation]\nsimulator = { booths = 2 }\ndevices = \"in-process\"\n\
        [[stock.batch]]\ngtin = \"06901234000016\"\nlot = \"L1\"\nexpiry = \"2030-01-31\"\nserial_prefix = \"S\"\ncount = 10\nfirst_slot = \"R0-0-0\"\n\
        [patients.arrivals]\nper_hour = 20\nmix = { HepB = 1 }\n\
        [[faults]]\nat_min = 2\nfault = \"door open\"\n\n[[faults]]\nat_min = 3\nfault = \"door close\"\n\n\
        [[actions]]\nat_min = 5\nrestart_controller_after_s = 10\n\n\
        [expect]\nadministered = { min = 1000 }\n";
    let judged = scenarios::hunt::judge(3, text);
    assert!(judged.violations.iter().any(|v| v.starts_with("administered")), "{:?}", judged.violations);
    let shrunk = scenarios::hunt::shrink(3, text);
    assert!(!shrunk.contains("[[faults]]") && !shrunk.contains("[[actions]]"), "{shrunk}");
    assert!(!scenarios::hunt::judge(3, &shrunk).violations.is_empty(), "the shrunk world still fails");
}
