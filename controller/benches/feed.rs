//! The event feed at city scale (run with `cargo bench -p controller --bench feed`,
//! release; mosquitto from scripts/setup.sh). Prints:
//!
//! 1. the outbox's cost per dispense on the controller: a dispense's journal
//!    writes (create, reserve, seven stages, the end) with the outbox off and on,
//!    on a durable journal (synchronous=FULL), alternated; and the publisher's
//!    position write (at most one a second);
//! 2. 500 workstations through one broker at a clinic day's peak rate — 2,000
//!    doses a day each given in 8 opening hours (each dose's end, and as many
//!    units stocked) plus cold-chain readings every 30 s — each with its own
//!    journal, outbox and publisher (its own MQTT connection), and one city
//!    consumer: events published per second and end-to-end latency (the event's
//!    journal time to its arrival at the consumer);
//! 3. (run first) the same 500 flat out: a backlog of events on every workstation
//!    as their feeds start at once (a broker back after an outage), and the time
//!    until the consumer has them all.
//!
//! The 500 journals here skip the host's fsync (they share this one disk; each
//! workstation has its own), so part 2 and 3 measure the feed, not the disk.

use controller::dispense::status::{DispenseStatus, Stage};
use controller::feed::{Feed, FeedHandle};
use controller::journal::Journal;
use controller::journal::clock::Clock;
use controller::ops::faultboard::FaultBoard;
use controller::rules::catalog::Catalog;
use controller::rules::inventory::UnitState;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "../tests/common/mod.rs"]
mod common;
use common::broker::{Broker, consumer};
use common::percentile;

const WORKSTATIONS: usize = 500;
const DOSES_PER_DAY: f64 = 2_000.0;
const OPENING_HOURS: f64 = 8.0;
const READINGS_EVERY_S: f64 = 30.0;
const PROBES: [&str; 4] = ["cabinet-a", "cabinet-b", "belt-tunnel", "ambient"];

fn manifest(n: usize, lot: &str) -> Vec<hal::manifest::ManifestUnit> {
    hal::manifest::parse(&format!("[[batch]]\ngtin = \"06901234000016\"\nlot = \"{lot}\"\nexpiry = \"2027-06-30\"\nserial_prefix = \"S\"\ncount = {n}\nfirst_slot = \"R0-0-0\"\n")).expect("manifest")
}

fn order(i: usize) -> controller::rules::order::PatientOrder {
    controller::rules::order::PatientOrder::new(&format!("P{i:07}"), "Bench Patient", "HepB", hal::BoothId(1 + (i % 6) as u8), 1, chrono::NaiveDate::from_ymd_opt(2026, 1, 1).expect("date"))
}

/// One dispense's journal writes, start to end, as the runner makes them.
fn dispense(journal: &Journal, i: usize, code: &str) {
    let now = journal.now();
    let mut status = DispenseStatus {
        id: String::new(),
        request_id: format!("bench-{i}"),
        order: order(i),
        stage: Stage::Queued,
        unit: None,
        violations: vec![],
        detail: String::new(),
        created_at: now,
        at_booth_at: None,
        finished_at: None,
        administered_by: None,
        administered_site: None,
        booth_scan_required: false,
    };
    status.id = match journal.create_dispense(&status.request_id, &status).expect("create") {
        controller::journal::Created::New(id) => id,
        other => panic!("{other:?}"),
    };
    let record = journal.stock_record(code).expect("read").expect("unit");
    status.unit = Some(controller::journal::unit_info(&record));
    journal.reserve_unit(code, &status).expect("reserve");
    for stage in [Stage::Picking, Stage::OnBelt, Stage::Scanning, Stage::Verifying, Stage::ToBooth, Stage::AwaitingValidation, Stage::AwaitingAdministration] {
        status.stage = stage;
        journal.record_stage(&status).expect("stage");
    }
    journal.set_unit_state(code, UnitState::Administered, &status.id).expect("given");
    status.stage = Stage::Administered;
    status.finished_at = Some(journal.now());
    status.administered_by = Some("N1".into());
    journal.record_stage(&status).expect("end");
}

/// Part 1: what the outbox adds to a dispense's journal writes.
/// With `fsync`, as a workstation runs; without, the CPU's share alone (the disk's
/// wait, a tenth of a millisecond or more per commit, hides it otherwise).
fn outbox_cost(rounds: usize, per_round: usize, fsync: bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut per_dispense = [Vec::new(), Vec::new()];
    let (mut event_bytes, mut message_bytes) = (0, 0);
    let mut render = Vec::new();
    let catalog = Catalog::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/catalog.toml")).expect("catalog");
    let identity = controller::feed::Identity { site: "bench".into(), workstation: "ws".into() };
    for round in 0..rounds {
        for (on, times) in per_dispense.iter_mut().enumerate() {
            let journal = Journal::open_with(&dir.path().join(format!("cost-{round}-{on}.db")), Clock::system(), fsync).expect("journal");
            if on == 1 {
                journal.enable_outbox();
            }
            journal.import_manifest(&manifest(per_round, "COST")).expect("import");
            let codes: Vec<String> = journal.all_in_store().expect("units").into_iter().map(|u| u.code).collect();
            let before = journal.last_event_seq().expect("seq");
            let t = Instant::now();
            for (i, code) in codes.iter().enumerate() {
                dispense(&journal, i, code);
            }
            times.push(t.elapsed().as_secs_f64() / per_round as f64);
            if on == 1 {
                // What the publisher does per event, off the dispense's path: read it, render it.
                let t = Instant::now();
                let events = journal.events_after(before, per_round * 2).expect("events");
                let bodies: usize = events.iter().map(|e| controller::feed::body(e, &identity, &journal, &catalog).to_string().len()).sum();
                render.push(t.elapsed().as_secs_f64() / per_round as f64);
                assert_eq!(events.len(), per_round, "one event per dispense");
                event_bytes = events.iter().map(|e| e.data.len()).sum::<usize>() / events.len();
                message_bytes = bodies / events.len();
            }
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        percentile(v, 0.5)
    };
    let mut differences: Vec<f64> = per_dispense[1].iter().zip(&per_dispense[0]).map(|(on, off)| on - off).collect();
    let (off, on) = (median(&mut per_dispense[0]), median(&mut per_dispense[1]));
    differences.sort_by(f64::total_cmp);
    let durability = if fsync { "synchronous=FULL, as on a workstation" } else { "synchronous=OFF: the CPU's share alone" };
    println!("outbox cost per dispense ({durability}; {rounds} rounds of {per_round} dispenses, off/on alternated; medians):");
    println!(
        "  journal time per dispense: outbox off {:.2} ms, on {:.2} ms: {:+.3} ms ({:+.1} %; round by round {:+.3} to {:+.3} ms)",
        off * 1e3,
        on * 1e3,
        (on - off) * 1e3,
        (on - off) / off * 100.0,
        differences[0] * 1e3,
        differences[differences.len() - 1] * 1e3
    );
    if !fsync {
        return;
    }
    println!("  the end event's row: {event_bytes} bytes of JSON (the dispense's status); its message {message_bytes} bytes (summary + FHIR Immunization)");
    println!("  the publisher's read and render per event (its own task, off the dispense's path): {:.3} ms", median(&mut render) * 1e3);
    let journal = Journal::open(&dir.path().join("mark.db")).expect("journal");
    let mut marks: Vec<f64> = (1..=200)
        .map(|seq| {
            let t = Instant::now();
            journal.mark_published(seq).expect("mark");
            t.elapsed().as_secs_f64()
        })
        .collect();
    marks.sort_by(f64::total_cmp);
    println!("  the publisher's position write: p50 {:.2} ms (at most one a second, whatever the rate)", percentile(&marks, 0.5) * 1e3);
}

/// One simulated workstation: its journal, its feed, its stock to dispense from.
struct Station {
    journal: Arc<Journal>,
    feed: FeedHandle,
    codes: Vec<String>,
    given: usize,
    stocked: usize,
}

fn cpu_seconds(pid: u32) -> f64 {
    // utime + stime, in clock ticks (100 a second on Linux).
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let tick = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}

async fn city(seconds: f64, backlog_per_station: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = Broker::start(dir.path());
    let received = consumer(broker.port).await;
    let catalog = Arc::new(Catalog::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/catalog.toml")).expect("catalog"));
    let stock = (DOSES_PER_DAY * seconds / (OPENING_HOURS * 3600.0)).ceil() as usize + 2;
    let t = Instant::now();
    let mut journals = Vec::with_capacity(WORKSTATIONS);
    for n in 0..WORKSTATIONS {
        let journal = Arc::new(Journal::open_with(&dir.path().join(format!("ws-{n:03}.db")), Clock::system(), false).expect("journal"));
        journal.import_manifest(&manifest(stock, &format!("L{n}"))).expect("stock (before the feed: not counted)");
        journal.enable_outbox();
        // Part 3's backlog: events waiting before the feed starts, as after an outage.
        let readings: Vec<(String, Option<f64>)> = PROBES.iter().map(|p| ((*p).to_owned(), Some(4.7))).collect();
        for _ in 0..backlog_per_station {
            journal.record_readings(journal.now(), &readings).expect("readings");
        }
        let codes = journal.all_in_store().expect("units").into_iter().map(|u| u.code).collect();
        journals.push((n, journal, codes));
    }
    println!("\n{WORKSTATIONS} workstations (journal, outbox, publisher, MQTT connection each), one mosquitto, one city consumer; journals ready in {:.1} s", t.elapsed().as_secs_f64());

    // Part 3 first: every feed starts at once with its backlog (a broker back after an outage).
    let burst = WORKSTATIONS * backlog_per_station;
    let (broker_cpu, t) = (cpu_seconds(broker.pid()), Instant::now());
    let mut stations = Vec::with_capacity(WORKSTATIONS);
    for (n, journal, codes) in journals {
        let config: controller::feed::EventsConfig = toml::from_str(&format!("broker = \"{}\"\nsite = \"site-{:03}\"\nworkstation = \"ws-{n:03}\"", broker.url(), n / 4)).expect("events config");
        let feed = Feed { journal: journal.clone(), catalog: catalog.clone(), faults: FaultBoard::new(journal.clone()), config }.spawn().expect("feed");
        stations.push(Station { journal, feed, codes, given: 0, stocked: 0 });
    }
    let drained = Instant::now() + Duration::from_secs(300);
    let mut all_connected = None;
    while received.lock().expect("received").len() < burst {
        assert!(Instant::now() < drained, "the consumer got the backlog");
        if all_connected.is_none() && stations.iter().all(|s| s.feed.state().borrow().connected) {
            all_connected = Some(t.elapsed().as_secs_f64());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = t.elapsed().as_secs_f64();
    println!(
        "flat out: {burst} events waiting ({backlog_per_station} on each workstation) published and received in {took:.1} s from the feeds' start: {:.0} events/s through one broker (mosquitto {:.1} s CPU; every publisher connected after {:.1} s)",
        burst as f64 / took,
        cpu_seconds(broker.pid()) - broker_cpu,
        all_connected.unwrap_or(took)
    );

    // Part 2: the peak rate for `seconds`.
    let doses_per_s = DOSES_PER_DAY / (OPENING_HOURS * 3600.0) * WORKSTATIONS as f64;
    let readings_per_s = WORKSTATIONS as f64 / READINGS_EVERY_S;
    let rate = doses_per_s * 2.0 + readings_per_s;
    println!("peak rate: {doses_per_s:.1} doses/s (each an end event and a unit stocked) + {readings_per_s:.1} samples/s = {rate:.1} events/s, for {seconds:.0} s");
    let (broker_cpu, own_cpu) = (cpu_seconds(broker.pid()), cpu_seconds(std::process::id()));
    let start = Instant::now();
    let mut due = (0.0_f64, 0.0_f64);
    let (mut next_dose, mut next_sample) = (0_usize, 0_usize);
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut written = 0_usize;
    while start.elapsed().as_secs_f64() < seconds {
        tick.tick().await;
        due.0 += doses_per_s * 0.1;
        due.1 += readings_per_s * 0.1;
        while due.0 >= 1.0 {
            due.0 -= 1.0;
            let s = &mut stations[next_dose % WORKSTATIONS];
            next_dose += 1;
            let code = s.codes[s.given].clone();
            dispense(&s.journal, s.given, &code);
            s.given += 1;
            let record = controller::rules::inventory::StockRecord { code: format!("(01)06901234000016(21)IN{}", s.stocked), ..s.journal.stock_record(&code).expect("read").expect("unit") };
            s.journal.stock_unit(&record, "restock door").expect("stock-in");
            s.stocked += 1;
            written += 2;
        }
        while due.1 >= 1.0 {
            due.1 -= 1.0;
            let s = &stations[next_sample % WORKSTATIONS];
            next_sample += 1;
            let readings: Vec<(String, Option<f64>)> = PROBES.iter().map(|p| ((*p).to_owned(), Some(4.6))).collect();
            s.journal.record_readings(s.journal.now(), &readings).expect("readings");
            written += 1;
        }
    }
    let wrote_for = start.elapsed().as_secs_f64();
    let total: usize = stations.iter().map(|s| s.journal.last_event_seq().expect("seq") as usize).sum();
    let drained = Instant::now() + Duration::from_secs(60);
    let received_before = burst;
    while received.lock().expect("received").len() < total {
        assert!(Instant::now() < drained, "the consumer got every event ({} of {total})", received.lock().expect("received").len());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cpu = (cpu_seconds(broker.pid()) - broker_cpu, cpu_seconds(std::process::id()) - own_cpu);
    let mut latency: Vec<f64> = received
        .lock()
        .expect("received")
        .iter()
        .skip(received_before)
        .filter_map(|m| {
            let at = chrono::DateTime::parse_from_rfc3339(m.body["event_time"].as_str()?).ok()?;
            Some((m.arrived - at.with_timezone(&chrono::Utc)).num_microseconds()? as f64 / 1e6)
        })
        .collect();
    latency.sort_by(f64::total_cmp);
    println!(
        "  {written} events written in {wrote_for:.1} s ({:.1}/s), every one received; end-to-end latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        written as f64 / wrote_for,
        percentile(&latency, 0.5) * 1e3,
        percentile(&latency, 0.99) * 1e3,
        latency.last().copied().unwrap_or(f64::NAN) * 1e3
    );
    println!("  CPU over the run: mosquitto {:.1} s ({:.1} % of a core), the 500 controllers' feeds + writers + consumer {:.1} s", cpu.0, cpu.0 / wrote_for * 100.0, cpu.1);

    let acknowledged: u64 = stations.iter().map(|s| s.feed.state().borrow().published).sum();
    println!("  acknowledged by the broker: {acknowledged} events in all");
    for s in &stations {
        s.feed.flush_and_stop(Duration::from_secs(5)).await;
    }
}

fn main() {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into())).with_writer(std::io::stderr).init();
    let seconds: f64 = std::env::var("FEED_BENCH_S").ok().and_then(|s| s.parse().ok()).unwrap_or(60.0);
    outbox_cost(9, 200, true);
    outbox_cost(9, 200, false);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    runtime.block_on(city(seconds, 100));
}
