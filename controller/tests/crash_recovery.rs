//! Crash safety: the workstation daemon runs as its own process against simulated
//! hardware on real wires (held by this test, so the physical world outlives the
//! controller), is killed with SIGKILL at many points of a stream of dispenses, and
//! restarted. After every restart: it is Ready, no dispense is left unfinished, the
//! journal has no gap, every unit is where the journal says (the store's slots hold
//! exactly the units it has in stock, every delivered unit is accounted for), and
//! no order is filled twice.

use dispense_proto::v1 as pb;
use dispense_proto::v1::dispensing_service_client::DispensingServiceClient;
use simulator::wire::{Exposure, HardwarePlan, HardwareSim};
use simulator::{SimConfig, SimWorkstation};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{MANIFEST, order};

/// The daemon process; killed (SIGKILL) when dropped.
struct Daemon {
    child: Child,
    address: String,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_daemon(config: &Path) -> Daemon {
    let mut child = Command::new(env!("CARGO_BIN_EXE_workstation"))
        .args(["serve", "--config"])
        .arg(config)
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("daemon starts");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let address = loop {
        let line = lines.next().expect("daemon output").expect("line");
        if let Some(addr) = line.split("serving dispense.v1 on ").nth(1) {
            break addr.trim().to_owned();
        }
        assert!(!line.starts_with("error"), "daemon failed: {line}");
    };
    // Keep draining stderr so the daemon never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    Daemon { child, address }
}

/// Plays the clinic for one dispense: validates and administers when asked.
async fn clinic(mut client: DispensingServiceClient<tonic::transport::Channel>, request_id: String, booth: u32) {
    let Ok(started) = client.start_dispense(pb::StartDispenseRequest { request_id, order: Some(order("HepB", booth)) }).await else { return };
    let id = started.into_inner().dispense_id;
    let Ok(stream) = client.watch_dispense(pb::WatchDispenseRequest { dispense_id: id.clone() }).await else { return };
    let mut stream = stream.into_inner();
    while let Ok(Some(update)) = stream.message().await {
        let Some(d) = update.dispense else { continue };
        match pb::DispenseStage::try_from(d.stage) {
            Ok(pb::DispenseStage::AwaitingValidation) => {
                let _ = client.confirm_validation(pb::ConfirmValidationRequest { dispense_id: id.clone(), booth_scan: String::new() }).await;
            }
            Ok(pb::DispenseStage::AwaitingAdministration) => {
                let _ = client.confirm_administration(pb::ConfirmAdministrationRequest { dispense_id: id.clone(), nurse_id: "N1".into() }).await;
            }
            _ => {}
        }
    }
}

fn count(conn: &rusqlite::Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).expect("query")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_controller_anywhere_loses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::copy(repo.join("config/catalog.toml"), dir.path().join("catalog.toml")).expect("catalog");
    // Plenty of HepB: the manifest's four units and a batch of 30 more.
    let manifest = format!("{MANIFEST}\n[[batch]]\ngtin = \"06901234000016\"\nlot = \"MANY\"\nexpiry = \"2028-06-30\"\nserial_prefix = \"M\"\ncount = 30\nfirst_slot = \"R3-0-0\"\n");
    std::fs::write(dir.path().join("stock.toml"), &manifest).expect("manifest");
    let units = hal::manifest::parse(&manifest).expect("manifest parses");
    let sim = SimWorkstation::new(SimConfig { speed: 25.0, booths: 4, ..SimConfig::default() }, &units);
    let plan = HardwarePlan { store: Exposure::Rtu { baud: 115_200 }, conveyor: Exposure::Tcp { bind: "127.0.0.1:0".parse().expect("addr") }, http: "127.0.0.1:0".parse().expect("addr") };
    let hardware = HardwareSim::start(sim, &plan).await.expect("hardware");
    std::fs::write(dir.path().join("devices.toml"), hardware.wire_config_toml()).expect("devices");
    let config = dir.path().join("ws.toml");
    std::fs::write(&config, "[server]\nlisten = \"127.0.0.1:0\"\n[journal]\npath = \"journal.db\"\n[catalog]\npath = \"catalog.toml\"\n[stock]\nmanifest = \"stock.toml\"\n[hardware]\nkind = \"wire\"\ndevices = \"devices.toml\"\n").expect("config");

    // Kill points spread over a dispense's life: picking, on the belt, scanning, on
    // the way to the booth, at the booth, and between dispenses.
    let kill_after_ms = [150, 400, 700, 1_000, 1_300, 1_700, 2_100, 2_600, 3_200, 250, 900, 1_500];
    let mut request_ids = Vec::new();
    let mut phases = BTreeSet::new();
    for (round, delay) in kill_after_ms.iter().enumerate() {
        let daemon = spawn_daemon(&config);
        let client = DispensingServiceClient::connect(format!("http://{}", daemon.address)).await.expect("connect");
        for booth in 1..=3u32 {
            let request_id = format!("round{round}-booth{booth}");
            request_ids.push(request_id.clone());
            tokio::spawn(clinic(client.clone(), request_id, booth));
        }
        tokio::time::sleep(Duration::from_millis(*delay)).await;
        drop(daemon); // SIGKILL, mid-flight

        // Restart: recovery settles everything, then the daemon is Ready.
        let restarted_at = Instant::now();
        let daemon = spawn_daemon(&config);
        let ready_after = restarted_at.elapsed();
        let mut client = DispensingServiceClient::connect(format!("http://{}", daemon.address)).await.expect("reconnect");
        let conn = rusqlite::Connection::open(dir.path().join("journal.db")).expect("journal");
        assert_eq!(count(&conn, "SELECT COUNT(*) FROM dispenses WHERE stage NOT IN ('administered', 'rejected', 'failed')"), 0, "round {round}: nothing left unfinished");
        assert_eq!(count(&conn, "SELECT MAX(seq) - MIN(seq) + 1 - COUNT(*) FROM steps"), 0, "round {round}: no gap in the journal");
        let world = hardware.workstation();
        let in_store = count(&conn, "SELECT COUNT(*) FROM stock_units WHERE state = 'in_store'");
        assert_eq!(world.occupied_slots() as i64, in_store, "round {round}: the slots hold exactly the units in stock");
        let given_or_in_tray = count(&conn, "SELECT COUNT(*) FROM stock_units WHERE state IN ('administered', 'delivered') OR hold_reason LIKE '%booth tray%'");
        if world.deliveries().len() as i64 != given_or_in_tray {
            let delivered: Vec<String> = world.deliveries().iter().map(|d| d.label.clone()).collect();
            let mut stmt = conn.prepare("SELECT code, state, COALESCE(hold_reason, '') FROM stock_units WHERE state NOT IN ('in_store')").expect("sql");
            let rows: Vec<String> = stmt.query_map([], |r| Ok(format!("{} {} {}", r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))).expect("rows").map(|r| r.expect("row")).collect();
            let mut stmt = conn.prepare("SELECT dispense_id, kind, step, detail FROM steps WHERE dispense_id IS NOT NULL ORDER BY seq").expect("sql");
            let steps: Vec<String> = stmt.query_map([], |r| Ok(format!("{} {} {} {}", r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?))).expect("rows").map(|r| r.expect("row")).collect();
            panic!("round {round}: every unit that reached a tray is accounted for: {} deliveries, {given_or_in_tray} in the journal\ndelivered {delivered:#?}\nunits {rows:#?}\nsteps {steps:#?}", delivered.len());
        }
        let binned = count(&conn, "SELECT COUNT(*) FROM stock_units WHERE state = 'rejected' AND (hold_reason IS NULL OR hold_reason NOT LIKE '%booth tray%')");
        assert_eq!(world.reject_bin().len() as i64 + world.dropped().len() as i64, binned, "round {round}: every rejected unit is in the bin");
        for row in conn.prepare("SELECT detail FROM steps WHERE kind = 'stage' AND step = 'failed' AND detail LIKE 'controller restarted%'").expect("sql").query_map([], |r| r.get::<_, String>(0)).expect("rows") {
            let detail = row.expect("row");
            if let Some(phase) = detail.split("was ").nth(1).and_then(|rest| rest.split(';').next()) {
                phases.insert(phase.to_owned());
            }
        }
        // Ready again, and a retried request never fills an order twice.
        let first = &request_ids[request_ids.len() - 3];
        let again = client.start_dispense(pb::StartDispenseRequest { request_id: first.clone(), order: Some(order("HepB", 1)) }).await;
        if let Ok(again) = again {
            assert!(again.into_inner().duplicate, "round {round}: {first} already had its dispense");
        }
        assert!(ready_after < Duration::from_secs(20), "round {round}: ready after {ready_after:?}");
        drop(daemon);
    }
    assert!(phases.len() >= 3, "the kills landed in several phases of a dispense: {phases:?}");
}
