//! The workstation daemon as a separate process on simulated hardware over real
//! wires (held by the caller, so the physical world outlives the daemon), and a
//! clinic that drives one dispense: shared by the crash test and the restart bench.

use super::{Client, MANIFEST, auth_section, order};
use dispense_proto::v1 as pb;
use simulator::wire::{Exposure, HardwarePlan, HardwareSim};
use simulator::{SimConfig, SimWorkstation};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Catalog, a stock of 34 HepB units, simulated hardware at 25x on a pty and a TCP
/// port, its devices file and a daemon config, all in `dir`.
pub async fn wire_rig(dir: &Path) -> (HardwareSim, PathBuf) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::copy(repo.join("config/catalog.toml"), dir.join("catalog.toml")).expect("catalog");
    let manifest = format!("{MANIFEST}\n[[batch]]\ngtin = \"06901234000016\"\nlot = \"MANY\"\nexpiry = \"2028-06-30\"\nserial_prefix = \"M\"\ncount = 30\nfirst_slot = \"R3-0-0\"\n");
    std::fs::write(dir.join("stock.toml"), &manifest).expect("manifest");
    let units = hal::manifest::parse(&manifest).expect("manifest parses");
    let sim = SimWorkstation::new(SimConfig { speed: 25.0, booths: 4, ..SimConfig::default() }, &units);
    let plan = HardwarePlan { store: Exposure::Rtu { baud: 115_200 }, conveyor: Exposure::Tcp { bind: "127.0.0.1:0".parse().expect("addr") }, http: "127.0.0.1:0".parse().expect("addr") };
    let hardware = HardwareSim::start(sim, &plan).await.expect("hardware");
    std::fs::write(dir.join("devices.toml"), hardware.wire_config_toml()).expect("devices");
    let config = dir.join("ws.toml");
    std::fs::write(&config, format!("[server]\nlisten = \"127.0.0.1:0\"\n[journal]\npath = \"journal.db\"\n[catalog]\npath = \"catalog.toml\"\n[stock]\nmanifest = \"stock.toml\"\n[hardware]\nkind = \"wire\"\ndevices = \"devices.toml\"\n{}", auth_section())).expect("config");
    (hardware, config)
}

/// The daemon process; killed (SIGKILL) when dropped.
pub struct Daemon {
    child: Child,
    pub address: String,
    /// What it logged up to serving.
    pub startup_log: Vec<String>,
    /// What it logged after.
    pub log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Daemon {
    /// The daemon's process id (for its memory figures).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the process to end by itself, up to `deadline`; its exit status.
    pub fn wait_exit(&mut self, deadline: std::time::Duration) -> Option<std::process::ExitStatus> {
        let until = std::time::Instant::now() + deadline;
        while std::time::Instant::now() < until {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `workstation serve` and returns once it has recovered and takes orders.
pub fn spawn_daemon(config: &Path) -> Daemon {
    spawn_daemon_with(config, &[], "controller::assemble=info,error")
}

/// [`spawn_daemon`] with more arguments and a log filter; what it logs after
/// start-up is kept in [`Daemon::log`].
pub fn spawn_daemon_with(config: &Path, args: &[&str], filter: &str) -> Daemon {
    let mut child = Command::new(env!("CARGO_BIN_EXE_workstation"))
        .args(args)
        .args(["serve", "--config"])
        .arg(config)
        .env("RUST_LOG", filter)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("daemon starts");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let mut startup_log = Vec::new();
    // It serves (health NOT_SERVING) before it homes and recovers; it is ready once
    // it says it recovered.
    let mut address = None;
    let address = loop {
        let Some(line) = lines.next() else { panic!("the daemon ended before it recovered: {}", startup_log.join("\n")) };
        let line = line.expect("line");
        if let Some(addr) = line.split("serving dispense.v1 on ").nth(1) {
            address = Some(addr.trim().to_owned());
        }
        assert!(!line.starts_with("error"), "daemon failed: {line}");
        let recovered = line.ends_with(": recovered");
        startup_log.push(line);
        if recovered {
            break address.expect("it serves before it recovers");
        }
    };
    // Keep draining stderr so the daemon never blocks on a full pipe.
    let log: std::sync::Arc<std::sync::Mutex<Vec<String>>> = std::sync::Arc::default();
    let kept = log.clone();
    std::thread::spawn(move || lines.map_while(Result::ok).for_each(|l| kept.lock().unwrap_or_else(|p| p.into_inner()).push(l)));
    Daemon { child, address, startup_log, log }
}

/// Plays the clinic for one dispense: validates and administers when asked.
pub async fn clinic(mut client: Client, request_id: String, booth: u32) {
    let Ok(started) = client.start_dispense(pb::StartDispenseRequest { request_id, order: Some(order("HepB", booth)) }).await else { return };
    follow(client, started.into_inner().dispense_id, None).await;
}

/// Plays the clinic coming back after a restart to a dispense it had started:
/// re-opens its watch and answers what it waits for, with a booth scan of the unit
/// in the tray when the workstation asks for one (H-16).
pub async fn returning_clinic(client: Client, id: String, world: SimWorkstation) {
    follow(client, id, Some(world)).await;
}

/// Watches a dispense to its end, validating and administering when asked; with
/// the physical `world`, a validation the workstation wants scanned carries the
/// label lying in the tray.
async fn follow(mut client: Client, id: String, world: Option<SimWorkstation>) {
    let Ok(stream) = client.watch_dispense(pb::WatchDispenseRequest { dispense_id: id.clone() }).await else { return };
    let mut stream = stream.into_inner();
    while let Ok(Some(update)) = stream.message().await {
        let Some(d) = update.dispense else { continue };
        match pb::DispenseStage::try_from(d.stage) {
            Ok(pb::DispenseStage::AwaitingValidation) => {
                let booth = hal::BoothId(d.order.as_ref().map_or(0, |o| o.booth) as u8);
                let booth_scan = world.as_ref().filter(|_| d.booth_scan_required).and_then(|w| w.tray_label(booth)).unwrap_or_default();
                let _ = client.confirm_validation(pb::ConfirmValidationRequest { dispense_id: id.clone(), booth_scan }).await;
            }
            Ok(pb::DispenseStage::AwaitingAdministration) => {
                let _ = client.confirm_administration(pb::ConfirmAdministrationRequest { dispense_id: id.clone(), nurse_id: "N1".into(), ..Default::default() }).await;
            }
            _ => {}
        }
    }
}

/// One number from the journal (a `SELECT COUNT(*)…`).
pub fn count(conn: &rusqlite::Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).expect("query")
}

/// The dispenses the journal has not seen end, by id.
pub fn open_dispenses(conn: &rusqlite::Connection) -> Vec<String> {
    conn.prepare("SELECT id FROM dispenses WHERE stage NOT IN ('administered', 'rejected', 'failed', 'cancelled')")
        .expect("sql")
        .query_map([], |r| r.get(0))
        .expect("rows")
        .map(|r| r.expect("row"))
        .collect()
}

/// `GET /metrics` over a plain socket, as an OpenMetrics scraper (Prometheus) or
/// a plain one: the body.
pub fn scrape(address: &str, openmetrics: bool) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).expect("metrics port");
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10))).expect("timeout");
    let accept = if openmetrics { "Accept: application/openmetrics-text; version=1.0.0\r\n" } else { "" };
    write!(stream, "GET /metrics HTTP/1.1\r\nHost: {address}\r\n{accept}Connection: close\r\n\r\n").expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let kind = if openmetrics { "content-type: application/openmetrics-text" } else { "content-type: text/plain; version=0.0.4" };
    assert!(response.to_ascii_lowercase().contains(kind), "{response}");
    response.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default()
}
