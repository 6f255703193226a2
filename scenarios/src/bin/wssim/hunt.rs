//! `wssim hunt --seeds A..B [--jobs N] [--json] [--keep DIR]`: a random world and
//! clinic day per seed, run and judged (see `scenarios::hunt`). A failing seed
//! prints the command that replays it and leaves its scenario, shrunk, in DIR.
//! Exit 0 when every seed passed, 1 when one failed, 2 on a bad argument.

use scenarios::hunt::{self, SeedOutcome};
use std::path::Path;
use std::process::ExitCode;

/// `A..B` (inclusive) or a single seed.
fn seeds(text: &str) -> Result<std::ops::RangeInclusive<u64>, String> {
    let number = |s: &str| s.trim().parse::<u64>().map_err(|_| format!("--seeds: `{s}` is not a seed (a whole number)"));
    match text.split_once("..") {
        Some((a, b)) => {
            let (a, b) = (number(a)?, number(b)?);
            if a > b {
                return Err(format!("--seeds: {a}..{b} is empty (the first seed is after the last)"));
            }
            Ok(a..=b)
        }
        None => number(text).map(|s| s..=s),
    }
}

/// `--worlds`: each seed's scenario, as TOML, separated by a comment line.
pub fn print_worlds(seed_text: &str) -> ExitCode {
    match seeds(seed_text) {
        Ok(range) => {
            for seed in range {
                println!("# ---- seed {seed}\n{}", hunt::generate(seed));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("wssim: {e}");
            ExitCode::from(2)
        }
    }
}

pub fn run(seed_text: &str, jobs: usize, json: bool, keep: &Path) -> ExitCode {
    let range = match seeds(seed_text) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("wssim: {e}");
            return ExitCode::from(2);
        }
    };
    let wall = std::time::Instant::now();
    let print = |o: &SeedOutcome| {
        if json {
            println!("{}", serde_json::to_string(o).unwrap_or_default());
        } else {
            let verdict = if o.violations.is_empty() { "pass" } else { "FAIL" };
            println!("seed {:>6} {verdict}: {} patients, {} dispenses, {:.1} virtual h, digest {}", o.seed, o.patients, o.dispenses, o.virtual_hours, &o.digest.get(..16).unwrap_or_default());
            for v in &o.violations {
                println!("  {v}");
            }
        }
    };
    let bar = if json { indicatif::ProgressBar::hidden() } else { crate::progress::bar(range.clone().count() as u64, "{elapsed_precise} [{bar:30}] {pos}/{len} seeds") };
    // The line printed with the bar out of the way; the bar moved after (inside
    // suspend the bar is locked).
    let each = |o: &SeedOutcome| {
        bar.suspend(|| print(o));
        bar.inc(1);
    };
    let outcomes = hunt::hunt(range, jobs, &each);
    bar.finish_and_clear();
    let failed: Vec<&SeedOutcome> = outcomes.iter().filter(|o| !o.violations.is_empty()).collect();
    for o in &failed {
        let shrunk = hunt::shrink(o.seed, &hunt::generate(o.seed));
        let file = keep.join(format!("hunt-{}.toml", o.seed));
        match std::fs::create_dir_all(keep).and_then(|()| std::fs::write(&file, &shrunk)) {
            Ok(()) => eprintln!("seed {} failed: replay with `wssim hunt --seeds {}..{}`; shrunk scenario {}", o.seed, o.seed, o.seed, file.display()),
            Err(e) => eprintln!("seed {} failed: replay with `wssim hunt --seeds {}..{}` (cannot write {}: {e})", o.seed, o.seed, o.seed, file.display()),
        }
    }
    let dispenses: usize = outcomes.iter().map(|o| o.dispenses).sum();
    let hours: f64 = outcomes.iter().map(|o| o.virtual_hours).sum();
    let wall_s = wall.elapsed().as_secs_f64();
    let summary = serde_json::json!({
        "seeds": outcomes.len(),
        "dispenses": dispenses,
        "violations": outcomes.iter().map(|o| o.violations.len()).sum::<usize>(),
        "failed_seeds": failed.iter().map(|o| o.seed).collect::<Vec<_>>(),
        "virtual_hours": hours,
        "wall_s": wall_s,
        "dispenses_per_s": dispenses as f64 / wall_s.max(1e-9),
        "digest": hunt::combined_digest(&outcomes),
    });
    if json {
        println!("{summary}");
    } else {
        println!(
            "{} seeds, {} failed; {dispenses} dispenses over {hours:.1} virtual hours in {wall_s:.1} s ({:.1} dispenses/s); digest {}",
            outcomes.len(),
            failed.len(),
            dispenses as f64 / wall_s.max(1e-9),
            summary["digest"].as_str().unwrap_or_default()
        );
    }
    if failed.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
