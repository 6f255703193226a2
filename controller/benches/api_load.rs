//! API load (run with `cargo bench -p controller --bench api_load`). The load tool is
//! this bench binary: tonic clients on tokio, against `workstation serve` as its own
//! process driving simulated field devices over real wires (the store on a
//! pseudo-terminal, the conveyor on Modbus TCP; 6 booths at 50x), its journal
//! holding a 1-million-row temperature history. It opens 200 `WatchBooths`
//! subscribers on 10 HTTP/2 connections; then, for 40 s, a clinic starts a dispense
//! every 200 ms and validates and administers each at its booth while a dashboard
//! reads the whole temperature history (ListTemperatures over every row) again and
//! again. Prints unary latency (every StartDispense, ConfirmValidation and
//! ConfirmAdministration), fan-out latency (from a booth picture's change on the
//! server to its arrival at the last of the 200 subscribers), the controller's
//! heartbeat as the two devices saw it (gaps between its changes; a device stops
//! motion after 1 s without one), the history reads and the server's memory.

#[path = "../tests/common/mod.rs"]
mod common;

use common::daemon::spawn_daemon;
use common::percentile;
use dispense_proto::v1 as pb;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

const SUBSCRIBERS: usize = 200;
const CONNECTIONS: usize = 10;
const START_EVERY: Duration = Duration::from_millis(200);
const RUN_FOR: Duration = Duration::from_secs(40);

/// VmRSS and VmHWM of a process, MiB.
fn memory(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = |key: &str| status.lines().find(|l| l.starts_with(key)).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse::<f64>().ok()).unwrap_or(f64::NAN);
    (kb("VmRSS:") / 1024.0, kb("VmHWM:") / 1024.0)
}

/// Rows of temperature history the journal holds before the run.
const HISTORY_ROWS: usize = 1_000_000;

/// Catalog, 500 units, the field devices (on their own runtime, so the bench's
/// clients do not delay what the devices see), a journal with the history, and
/// the daemon's config.
fn write_rig(dir: &std::path::Path, hardware_runtime: &tokio::runtime::Runtime) -> (std::path::PathBuf, simulator::wire::HardwareSim) {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::copy(repo.join("config/catalog.toml"), dir.join("catalog.toml")).expect("catalog");
    let manifest = "[[batch]]\ngtin = \"06901234000016\"\nlot = \"LOAD\"\nexpiry = \"2028-06-30\"\nserial_prefix = \"L\"\ncount = 500\nfirst_slot = \"R0-0-0\"\n";
    std::fs::write(dir.join("stock.toml"), manifest).expect("manifest");
    let units = hal::manifest::parse(manifest).expect("manifest parses");
    let sim = simulator::SimWorkstation::new(simulator::SimConfig { speed: 50.0, booths: 6, racks: 1, rows: 10, columns: 50, ..simulator::SimConfig::default() }, &units);
    let plan = simulator::wire::HardwarePlan {
        store: simulator::wire::Exposure::Rtu { baud: 115_200 },
        conveyor: simulator::wire::Exposure::Tcp { bind: "127.0.0.1:0".parse().expect("addr") },
        http: "127.0.0.1:0".parse().expect("addr"),
    };
    let hardware = hardware_runtime.block_on(simulator::wire::HardwareSim::start(sim, &plan)).expect("hardware");
    std::fs::write(dir.join("devices.toml"), hardware.wire_config_toml()).expect("devices");
    write_history(&dir.join("journal.db"));
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[server.limits]\nmax_streams_per_client = 1000\nrequests_per_s = 10000.0\nburst = 10000.0\nmax_concurrent_streams = 1000\n\
         [journal]\npath = \"journal.db\"\n[catalog]\npath = \"catalog.toml\"\n[stock]\nmanifest = \"stock.toml\"\n\
         [hardware]\nkind = \"wire\"\ndevices = \"devices.toml\"\n{}",
        common::auth_section()
    );
    std::fs::write(dir.join("ws.toml"), config).expect("config");
    (dir.join("ws.toml"), hardware)
}

/// A journal whose temperature history is [`HISTORY_ROWS`] readings of three
/// probes over the last days, written in one transaction.
fn write_history(path: &std::path::Path) {
    drop(controller::journal::Journal::open(path).expect("journal"));
    let mut conn = rusqlite::Connection::open(path).expect("journal");
    let tx = conn.transaction().expect("tx");
    {
        let mut insert = tx.prepare("INSERT INTO temperatures (at, probe, celsius) VALUES (?1, ?2, ?3)").expect("insert");
        let end = chrono::Utc::now() - chrono::Duration::minutes(1);
        let samples = HISTORY_ROWS / 3;
        for i in 0..samples {
            let at = (end - chrono::Duration::seconds((samples - i) as i64)).to_rfc3339();
            for (probe, c) in [("cabinet-a", 5.0), ("cabinet-b", 5.2), ("belt-tunnel", 7.5)] {
                insert.execute(rusqlite::params![at, probe, c + (i % 7) as f64 * 0.1]).expect("row");
            }
        }
    }
    tx.commit().expect("commit");
}

/// The clinic's side of one dispense, timing each unary call.
async fn visit(mut client: common::Client, n: usize, unary: Arc<Mutex<Vec<f64>>>) -> String {
    let timed = |t: Instant| unary.lock().expect("lock").push(t.elapsed().as_secs_f64() * 1e3);
    let booth = (n % 6) as u32 + 1;
    let t = Instant::now();
    let order = pb::PatientOrder { patient_id: format!("P{n:05}"), ..common::order("HepB", booth) };
    let started = match client.start_dispense(pb::StartDispenseRequest { request_id: format!("load-{n}"), order: Some(order) }).await {
        Ok(started) => started,
        Err(e) => return format!("start refused: {:?}", e.code()),
    };
    timed(t);
    let id = started.into_inner().dispense_id;
    let Ok(stream) = client.watch_dispense(pb::WatchDispenseRequest { dispense_id: id.clone() }).await else { return "watch refused".into() };
    let mut stream = stream.into_inner();
    let mut last = String::from("no progress");
    while let Ok(Some(update)) = stream.message().await {
        let Some(d) = update.dispense else { continue };
        last = if d.stage() == pb::DispenseStage::Failed { format!("Failed: {}", d.detail.chars().take(90).collect::<String>()) } else { format!("{:?}", d.stage()) };
        let t = Instant::now();
        match pb::DispenseStage::try_from(d.stage) {
            Ok(pb::DispenseStage::AwaitingValidation) => {
                if client.confirm_validation(pb::ConfirmValidationRequest { dispense_id: id.clone(), booth_scan: String::new() }).await.is_ok() {
                    timed(t);
                }
            }
            Ok(pb::DispenseStage::AwaitingAdministration) => {
                let given = pb::ConfirmAdministrationRequest { dispense_id: id.clone(), nurse_id: "N1".into(), ..Default::default() };
                if client.confirm_administration(given).await.is_ok() {
                    timed(t);
                }
            }
            _ => {}
        }
    }
    last
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let hardware_runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("hardware runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let written = Instant::now();
    let (config, hardware) = write_rig(dir.path(), &hardware_runtime);
    println!("rig: {HISTORY_ROWS} temperature rows written in {:.1} s", written.elapsed().as_secs_f64());
    runtime.block_on(async {
        let daemon = spawn_daemon(&config);
        let pid = daemon.pid();
        let (rss_idle, _) = memory(pid);

        // Each subscriber reports (change time, its lag) for every picture it receives.
        let receipts: Arc<Mutex<HashMap<i128, Vec<f64>>>> = Arc::default();
        let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(SUBSCRIBERS);
        for c in 0..CONNECTIONS {
            let channel = common::channel(&daemon.address, common::OBSERVER).await;
            for _ in 0..SUBSCRIBERS / CONNECTIONS {
                let mut client = pb::monitoring_service_client::MonitoringServiceClient::new(channel.clone());
                let (receipts, ready) = (receipts.clone(), ready_tx.clone());
                tokio::spawn(async move {
                    let mut stream = client.watch_booths(pb::WatchBoothsRequest {}).await.expect("subscribe").into_inner();
                    let mut first = true;
                    while let Ok(Some(picture)) = stream.message().await {
                        let at = picture.change_time.expect("change_time");
                        let changed = i128::from(at.seconds) * 1_000_000_000 + i128::from(at.nanos);
                        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).expect("clock").as_nanos() as i128;
                        if first {
                            first = false;
                            let _ = ready.send(()).await;
                            continue; // The picture as it was at subscription time, not a change.
                        }
                        receipts.lock().expect("lock").entry(changed).or_default().push((now - changed) as f64 / 1e6);
                    }
                });
            }
            let _ = c;
        }
        for _ in 0..SUBSCRIBERS {
            ready_rx.recv().await.expect("subscriber ready");
        }
        let (rss_subscribed, _) = memory(pid);

        let unary: Arc<Mutex<Vec<f64>>> = Arc::default();
        let clinic = common::clinic_client(&daemon.address).await;
        // A dashboard reading the whole history, again and again, while the clinic works.
        let reading = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let history_reads: Arc<Mutex<Vec<(f64, u64)>>> = Arc::default();
        let reader = {
            let (reading, reads) = (reading.clone(), history_reads.clone());
            let mut monitoring = pb::monitoring_service_client::MonitoringServiceClient::new(common::channel(&daemon.address, common::OBSERVER).await);
            tokio::spawn(async move {
                let start = prost_types::Timestamp { seconds: 0, nanos: 0 };
                while reading.load(std::sync::atomic::Ordering::Relaxed) {
                    let t = Instant::now();
                    let request = pb::ListTemperaturesRequest { start_time: Some(start), max_points: 2000, page_size: 2000, ..Default::default() };
                    match monitoring.list_temperatures(request).await {
                        Ok(r) => {
                            let rows: u64 = r.into_inner().buckets.iter().map(|b| u64::from(b.readings + b.unread)).sum();
                            reads.lock().expect("lock").push((t.elapsed().as_secs_f64(), rows));
                        }
                        Err(e) => eprintln!("history read failed: {e}"),
                    }
                }
            })
        };
        let beats_before = hardware.heartbeats();
        let started = Instant::now();
        let mut visits = Vec::new();
        let mut n = 0;
        while started.elapsed() < RUN_FOR {
            visits.push(tokio::spawn(visit(clinic.clone(), n, unary.clone())));
            n += 1;
            tokio::time::sleep(START_EVERY).await;
        }
        let (rss_loaded, _) = memory(pid);
        let outcomes = tokio::time::timeout(Duration::from_secs(120), futures::future::join_all(visits)).await;
        reading.store(false, std::sync::atomic::Ordering::Relaxed);
        let _ = reader.await;
        let beats_after = hardware.heartbeats();
        let drained = outcomes.is_ok();
        let mut ends: std::collections::BTreeMap<String, usize> = Default::default();
        for end in outcomes.unwrap_or_default() {
            *ends.entry(end.unwrap_or_else(|e| e.to_string())).or_default() += 1;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (rss_end, hwm) = memory(pid);

        let mut unary = unary.lock().expect("lock").clone();
        unary.sort_by(f64::total_cmp);
        let receipts = receipts.lock().expect("lock").clone();
        let mut to_last: Vec<f64> = receipts.values().filter(|lags| lags.len() == SUBSCRIBERS).map(|lags| lags.iter().cloned().fold(0.0, f64::max)).collect();
        to_last.sort_by(f64::total_cmp);
        let all: usize = receipts.values().map(Vec::len).sum();
        let partial = receipts.values().filter(|lags| lags.len() < SUBSCRIBERS).count();

        println!("load: {SUBSCRIBERS} WatchBooths subscribers on {CONNECTIONS} connections; {n} dispenses started, one every {} ms for {} s (all finished: {drained}; ends {ends:?})", START_EVERY.as_millis(), RUN_FOR.as_secs());
        println!("unary (StartDispense, ConfirmValidation, ConfirmAdministration)  n={}  p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms", unary.len(), percentile(&unary, 0.5), percentile(&unary, 0.99), unary.last().copied().unwrap_or(f64::NAN));
        println!(
            "fan-out, change to last of {SUBSCRIBERS} subscribers  events={}  p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms  ({} deliveries; {} pictures skipped by some subscriber as superseded)",
            to_last.len(),
            percentile(&to_last, 0.5),
            percentile(&to_last, 0.99),
            to_last.last().copied().unwrap_or(f64::NAN),
            all,
            partial
        );
        for ((device, before), (_, after)) in beats_before.iter().zip(beats_after.iter()) {
            // The run's gaps from the device's histogram (1 ms buckets), in order.
            let gaps: Vec<f64> = after.gaps_since(before).iter().enumerate().flat_map(|(ms, n)| std::iter::repeat_n(ms as f64, *n as usize)).collect();
            println!(
                "heartbeat at the {device}  changes={}  gap p50 {:.0} ms  p99 {:.0} ms  max {:.0} ms (1 ms buckets)  lost (motion stopped) {}",
                gaps.len(),
                percentile(&gaps, 0.5),
                percentile(&gaps, 0.99),
                gaps.last().copied().unwrap_or(f64::NAN),
                after.lost - before.lost
            );
        }
        let reads = history_reads.lock().expect("lock").clone();
        let mut took: Vec<f64> = reads.iter().map(|(s, _)| *s).collect();
        took.sort_by(f64::total_cmp);
        println!(
            "history reads (ListTemperatures over {} rows each)  n={}  p50 {:.2} s  max {:.2} s",
            reads.first().map_or(0, |(_, rows)| *rows),
            reads.len(),
            percentile(&took, 0.5),
            took.last().copied().unwrap_or(f64::NAN)
        );
        println!("server memory: RSS idle {rss_idle:.1} MiB, with subscribers {rss_subscribed:.1} MiB, under load {rss_loaded:.1} MiB, after {rss_end:.1} MiB, peak (VmHWM) {hwm:.1} MiB");
        drop(daemon);
    });
    drop(hardware);
    drop(hardware_runtime);
}
