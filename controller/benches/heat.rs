//! The vial monitors' bookkeeping per cold-chain sample (run with `cargo bench -p
//! controller --bench heat [UNITS]`, default 500 units in store): integrating the
//! share of each place's temperature (cabinet, tunnel, room) and charging it to
//! every unit there in one transaction (WAL, synchronous=FULL), as the cold-chain
//! watch does every sample.

use controller::journal::Journal;
use controller::rules::heat_stability::HeatStability;
use controller::rules::inventory::UnitState;
use std::time::{Duration, Instant};

fn main() {
    let n: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(500);
    let samples = 200;
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = Journal::open(&dir.path().join("bench.db")).expect("journal");
    let manifest = hal::manifest::parse(&format!(
        "[[batch]]\ngtin = \"06901234000016\"\nlot = \"B\"\nexpiry = \"2027-06-30\"\nserial_prefix = \"S\"\ncount = {n}\nfirst_slot = \"R0-0-0\"\n"
    ))
    .expect("manifest");
    journal.import_manifest(&manifest).expect("import");
    let vvm30 = HeatStability::category("VVM30").expect("category");
    let mut times: Vec<Duration> = Vec::with_capacity(samples);
    for i in 0..samples {
        let celsius = 5.0 + (i % 10) as f64 * 0.3;
        let t = Instant::now();
        let share = vvm30.consumed(celsius, 10.0);
        let shares: Vec<_> = [UnitState::InStore, UnitState::Picked, UnitState::Delivered].into_iter().map(|state| ("06901234000016".to_owned(), state, share)).collect();
        journal.add_heat(&shares).expect("journalled");
        times.push(t.elapsed());
    }
    times.sort();
    let pct = |p: f64| times[((times.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1e3;
    let mean = times.iter().sum::<Duration>().as_secs_f64() * 1e3 / times.len() as f64;
    println!("vial monitors: {n} units, {samples} samples: mean {mean:.2} ms, p50 {:.2} ms, p99 {:.2} ms per sample ({:.1} µs per unit)", pct(0.5), pct(0.99), mean * 1e3 / n as f64);
    let record = journal.all_in_store().expect("units").remove(0);
    println!("after {samples} samples of 10 s at 5–8 °C a VVM30 unit has used {:.6} % of its budget", record.heat_consumed * 100.0);
}
