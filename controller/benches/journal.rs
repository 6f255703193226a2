//! Journal durability figures (run with `cargo bench -p controller --bench journal`):
//! commits per second and commit latency with the durability the controller uses
//! (SQLite WAL, synchronous=FULL: every commit reaches the disk before the hardware
//! command it records is sent), on a file in the system's temp directory.

use controller::rules::inventory::UnitState;
use controller::journal::Journal;
use std::time::{Duration, Instant};

fn report(what: &str, mut times: Vec<Duration>) {
    times.sort();
    let total: Duration = times.iter().sum();
    let pct = |p: f64| times[((times.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "{what:<44} n={:5}  {:8.0} commits/s  p50 {:.3} ms  p99 {:.3} ms",
        times.len(),
        times.len() as f64 / total.as_secs_f64(),
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3
    );
}

fn main() {
    let n: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(2_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = Journal::open(&dir.path().join("bench.db")).expect("journal");
    let manifest = hal::manifest::parse(&format!(
        "[[batch]]\ngtin = \"06901234000016\"\nlot = \"B\"\nexpiry = \"2027-06-30\"\nserial_prefix = \"S\"\ncount = {n}\nfirst_slot = \"R0-0-0\"\n"
    ))
    .expect("manifest");
    let t = Instant::now();
    journal.import_manifest(&manifest).expect("import");
    println!("journal on {} (WAL, synchronous=FULL); {n} units imported in one transaction in {:.1} ms", dir.path().display(), t.elapsed().as_secs_f64() * 1e3);
    let codes: Vec<String> = journal.all_in_store().expect("units").into_iter().map(|u| u.code).collect();

    let mut times = Vec::with_capacity(n);
    for (i, code) in codes.iter().enumerate() {
        let t = Instant::now();
        journal.set_unit_state(code, UnitState::Picked, &format!("D{i:06}")).expect("state");
        times.push(t.elapsed());
    }
    report("unit state change + its step (1 transaction)", times);

    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        journal.record_intent(&format!("D{i:06}"), None, &controller::journal::Intent::Pick { slot: hal::SlotAddress::new(0, 0, 0) }).expect("step");
        times.push(t.elapsed());
    }
    report("dispense step (intent/outcome)", times);

    let mut times = Vec::with_capacity(n);
    let readings = vec![("cabinet-a".to_owned(), Some(5.0)), ("cabinet-b".to_owned(), Some(5.1)), ("belt-tunnel".to_owned(), Some(6.0))];
    for _ in 0..n {
        let t = Instant::now();
        journal.record_readings(chrono::Utc::now(), &readings).expect("readings");
        times.push(t.elapsed());
    }
    report("cold-chain sample (3 readings, 1 transaction)", times);
}
