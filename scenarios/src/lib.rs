//! Scenario simulations of the whole workstation on a virtual clock: the file
//! format, the runner, the throughput bound, the expectations and the reports, the
//! hunt for failing worlds and the capacity-planning sweep.

pub mod bound;
pub mod clinic;
pub mod demo;
pub mod digest;
pub mod expect;
pub mod format;
pub mod hunt;
pub mod measure;
pub mod parallel;
pub mod plots;
pub mod report;
pub mod rig;
pub mod run;
pub mod sampling;
pub mod sweep;

use std::path::Path;
use std::time::Duration;

/// Loads, runs and judges one scenario file; `seed` overrides the file's.
pub fn run_file(path: &Path, seed: Option<u64>, progress: &(dyn Fn(Duration, usize, usize) + Sync)) -> anyhow::Result<report::Report> {
    let scenario = format::Scenario::load(path)?;
    run_scenario(&scenario, seed, progress).map_err(|e| anyhow::anyhow!("{}: {e:#}", path.display()))
}

/// Runs and judges one scenario; `seed` overrides its own.
pub fn run_scenario(scenario: &format::Scenario, seed: Option<u64>, progress: &(dyn Fn(Duration, usize, usize) + Sync)) -> anyhow::Result<report::Report> {
    let seed = seed.unwrap_or(scenario.seed);
    let raw = run::run(scenario, seed, progress)?;
    let metrics = measure::metrics(&raw, scenario.duration_h)?;
    let sim = rig::sim_config(&raw.assembled.config)?;
    let mean = |r: [f64; 2]| (r[0] + r[1]) / 2.0;
    let bound = bound::bound(&sim, mean(scenario.clinic.validation_s), mean(scenario.clinic.administration_s), raw.assembled.config.scan.agree);
    let recalls: Vec<(String, f64)> = scenario.actions.iter().filter_map(|a| a.recall_lot.clone().map(|lot| (lot, a.at_min))).collect();
    let checks = expect::checks(&scenario.expect, &metrics, &bound, &recalls);
    report::Report::new(scenario, seed, &raw, metrics, bound, checks)
}
