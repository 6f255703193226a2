//! `wssim run FILE...`: scenario files on a virtual clock, a verdict per
//! expectation, and the reports.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `wssim run`: each file in turn with a progress line, a verdict per expectation,
/// and the reports. Exit 0 all passed, 1 an expectation failed, 2 a file could not run.
pub fn run(files: &[PathBuf], report: Option<&Path>, seed: Option<u64>) -> ExitCode {
    let mut failed = 0;
    let mut broken = 0;
    for file in files {
        // A bar on a terminal only: CI logs and pipes get the verdict lines alone.
        let bar = crate::progress::bar(0, &format!("{} {{wide_bar}} {{pos}}/{{len}} patients {{msg}}", file.display()));
        let progress = |t: std::time::Duration, done: usize, total: usize| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
            bar.set_message(format!("{:.1} virtual h", t.as_secs_f64() / 3600.0));
        };
        let outcome = scenarios::run_file(file, seed, &progress);
        bar.finish_and_clear();
        let r = match outcome {
            Ok(r) => r,
            Err(e) => {
                eprintln!("wssim: {e:#}");
                broken += 1;
                continue;
            }
        };
        let m = &r.metrics;
        println!(
            "{} {}: {} patients ({}); orders: {} administered, {} rejected, {} failed, {} cancelled; {:.1}/h ({:.1} % of the {:.1}/h bound, {}); p95 order to booth {:.0} s; p95 wait check-in to dose {:.0} s; {:.1} virtual h in {:.1} s",
            if r.passed { "PASS" } else { "FAIL" },
            r.scenario,
            m.patients,
            m.patients_by_outcome.iter().filter(|(_, n)| **n > 0).map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", "),
            m.administered,
            m.rejected,
            m.failed,
            m.cancelled,
            m.throughput_per_hour,
            r.bound_fraction * 100.0,
            r.bound.per_hour,
            r.bound.bottleneck,
            m.order_to_booth_s.p95,
            m.patient_wait_s.p95,
            m.virtual_hours,
            m.wall_s
        );
        println!("  digest sha256:{} ({} events)", m.digest, m.events);
        let restarts = &m.restarts;
        if restarts.restarts > 0 {
            println!(
                "  {} restarts: dispenses resumed {}, ended {}; units quarantined {}, strays binned {}; serving again after {} s",
                restarts.restarts,
                restarts.dispenses_resumed,
                restarts.dispenses_ended,
                restarts.units_quarantined,
                restarts.strays_binned,
                restarts.restart_to_serving_s.iter().map(|s| format!("{s:.1}")).collect::<Vec<_>>().join(", ")
            );
        }
        for c in r.checks.iter().filter(|c| !c.passed) {
            println!("  expectation failed: {}: {}", c.name, c.detail);
        }
        if !r.passed {
            failed += 1;
        }
        if let Some(dir) = report {
            let written = std::fs::create_dir_all(dir).and_then(|()| {
                let base = dir.join(r.scenario.replace(['/', ' '], "-"));
                std::fs::write(base.with_extension("json"), serde_json::to_string_pretty(&r).unwrap_or_default())?;
                std::fs::write(base.with_extension("html"), r.html())?;
                std::fs::write(base.with_extension("events.tsv"), r.metrics.event_log.join("\n") + "\n")?;
                Ok(base)
            });
            match written {
                Ok(base) => println!("  report {0}.html and {0}.json", base.display()),
                Err(e) => {
                    eprintln!("wssim: cannot write the report in {}: {e}", dir.display());
                    broken += 1;
                }
            }
        }
    }
    if broken > 0 {
        ExitCode::from(2)
    } else if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
