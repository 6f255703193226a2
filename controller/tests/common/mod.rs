//! What the end-to-end tests share: the loading manifest, orders, and a clinic
//! client's start-and-watch helpers.
#![allow(dead_code)] // each test binary uses its own subset

pub mod broker;
pub mod daemon;
pub mod pki;

use controller::config::Config;
use controller::api::server::serve;
use controller::assemble::assemble_on;
use controller::config::HardwareConfig;
use controller::dispatch::Dispatcher;
use controller::journal::clock::Clock;
use simulator::{SimConfig, SimWorkstation};
use dispense_proto::v1 as pb;
use std::path::Path;
use dispense_proto::client::Authorized;
use dispense_proto::v1::dispensing_service_client::DispensingServiceClient;
use std::time::Duration;

/// A workstation assembled for a test: the controller, and the simulated
/// workstation when the config asks for in-process simulated hardware (the test
/// builds it and hands the controller its devices: the controller cannot).
#[derive(Debug)]
pub struct Assembled {
    pub dispatcher: Dispatcher,
    pub config: Config,
    pub simulator: Option<SimWorkstation>,
}

/// Assembles the workstation a config describes on the system clock.
pub async fn assemble(config: Config) -> anyhow::Result<Assembled> {
    assemble_with_clock(config, Clock::system()).await
}

/// Assembles the workstation a config describes, going by `clock`: on in-process
/// simulated devices for `kind = "simulated"`, else as the daemon does.
pub async fn assemble_with_clock(config: Config, clock: Clock) -> anyhow::Result<Assembled> {
    let HardwareConfig::Simulated { simulator } = &config.hardware else {
        let wire = controller::assemble::assemble(config).await?;
        return Ok(Assembled { dispatcher: wire.dispatcher, config: wire.config, simulator: None });
    };
    let sim = SimWorkstation::new(SimConfig::from_table(simulator).map_err(anyhow::Error::msg)?, &controller::assemble::load_manifest(&config)?);
    let assembled = assemble_on(config, clock, sim.devices()).await?;
    Ok(Assembled { dispatcher: assembled.dispatcher, config: assembled.config, simulator: Some(sim) })
}

/// A workstation on tokio's virtual time (call from a paused runtime), its clock
/// starting at `anchor` (RFC 3339): the repository's catalog, `stock` as its
/// manifest, `extra` config before `[server]` (e.g. `[site]`) and `booths` booths of
/// in-process simulated hardware at speed 1, `after` after `[stock]` (e.g.
/// `[coldchain]`). Nothing is served.
pub async fn on_virtual_time(dir: &Path, stock: &str, extra: &str, after: &str, booths: u8, anchor: &str) -> Assembled {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::copy(repo.join("config/catalog.toml"), dir.join("catalog.toml")).expect("catalog");
    std::fs::write(dir.join("stock.toml"), stock).expect("stock");
    let config = format!(
        "{extra}\n[server]\nlisten = \"127.0.0.1:0\"\n[journal]\npath = \"journal.db\"\n[catalog]\npath = \"catalog.toml\"\n[stock]\nmanifest = \"stock.toml\"\n{after}\n\
         [hardware]\nkind = \"simulated\"\n[hardware.simulator]\nspeed = 1.0\nbooths = {booths}\n{}",
        auth_section()
    );
    std::fs::write(dir.join("ws.toml"), config).expect("config");
    let anchor = chrono::DateTime::parse_from_rfc3339(anchor).expect("time").with_timezone(&chrono::Utc);
    assemble_with_clock(Config::load(&dir.join("ws.toml")).expect("config"), Clock::following_tokio(anchor)).await.expect("assembles")
}

/// A clinic's client: every call carries its token.
pub type Client = DispensingServiceClient<Authorized>;

/// The tokens the test configs accept, one per role (the text is the role's name
/// followed by "-token"; the config stores only hashes).
pub const CLINIC: &str = "clinic-token";
pub const PHARMACIST: &str = "pharmacist-token";
pub const MAINTENANCE: &str = "maintenance-token";
pub const OBSERVER: &str = "observer-token";

/// The `[auth]` section for those tokens: callers named "front-desk", "pharmacy",
/// "crew-1" and "wall-screen".
pub fn auth_section() -> String {
    [("front-desk", "clinic", CLINIC), ("pharmacy", "pharmacist", PHARMACIST), ("crew-1", "maintenance", MAINTENANCE), ("wall-screen", "observer", OBSERVER)]
        .iter()
        .map(|(name, role, token)| format!("[[auth.tokens]]\nname = \"{name}\"\nrole = \"{role}\"\nsha256 = \"{}\"\n", controller::api::auth::layer::token_hash(token)))
        .collect()
}

/// A channel to `address` (host:port) carrying `token`.
pub async fn channel(address: impl std::fmt::Display, token: &str) -> Authorized {
    dispense_proto::client::connect(&format!("http://{address}"), Some(token), None).await.expect("connect")
}

/// The clinic's dispensing client at `address`.
pub async fn clinic_client(address: impl std::fmt::Display) -> Client {
    DispensingServiceClient::new(channel(address, CLINIC).await)
}

pub const HEPB: &str = "06901234000016";
pub const IPV: &str = "06901234000030";
pub const MMR: &str = "06901234000061";

/// A manifest with two HepB lots (FEFO must take the earlier one) and an MMR unit
/// whose printed label is really an IPV unit.
pub const MANIFEST: &str = r#"
[[batch]]
gtin = "06901234000016"
lot = "LATE"
expiry = "2028-12-31"
serial_prefix = "HL"
count = 2
first_slot = "R0-0-0"

[[batch]]
gtin = "06901234000016"
lot = "EARLY"
expiry = "2027-03-31"
serial_prefix = "HE"
count = 2
first_slot = "R2-4-8"

[[unit]]
slot = "R1-0-0"
gtin = "06901234000061"
lot = "MMRLOT"
expiry = "2027-05-31"
serial = "MM0001"
physical_label = "0106901234000030172705311099X\u001d21FAKE01"
"#;

/// Dose 1 of `product` for a 300-day-old child (eligible for every product the
/// tests order), health check attested.
pub fn order(product: &str, booth: u32) -> pb::PatientOrder {
    let born = chrono::Utc::now().date_naive() - chrono::Duration::days(300);
    pb::PatientOrder {
        patient_id: "P0001".into(),
        patient_name: "Wang Xiaoming".into(),
        product_id: product.into(),
        booth,
        dose_number: 1,
        birth_date: born.to_string(),
        health_check_attested: true,
        ..Default::default()
    }
}

pub async fn start(client: &mut Client, request_id: &str, order: pb::PatientOrder) -> pb::StartDispenseResponse {
    client.start_dispense(pb::StartDispenseRequest { request_id: request_id.into(), order: Some(order) }).await.expect("start").into_inner()
}

/// Watches until the dispense reaches `stage` (or any final stage) and returns it.
pub async fn wait_for(client: &mut Client, id: &str, stage: pb::DispenseStage) -> pb::Dispense {
    let watch = async {
        let mut stream = client.watch_dispense(pb::WatchDispenseRequest { dispense_id: id.into() }).await.expect("watch").into_inner();
        let mut last = None;
        while let Some(update) = stream.message().await.expect("stream") {
            let d = update.dispense.expect("dispense");
            if d.stage == stage as i32 || d.finished {
                return d;
            }
            last = Some(d);
        }
        panic!("stream ended before {stage:?}; last {last:?}");
    };
    tokio::time::timeout(Duration::from_secs(30), watch).await.expect("dispense progressed in time")
}


/// Writes the catalog and [`MANIFEST`] (unless the test wrote its own) and a config
/// with this `[hardware]` section into `dir`, assembles the workstation, serves it on
/// loopback and connects a client.
pub async fn serve_workstation(dir: &Path, hardware: &str) -> (Assembled, Client) {
    let (assembled, address) = serve_workstation_at(dir, hardware).await;
    let client = clinic_client(address).await;
    (assembled, client)
}

/// [`serve_workstation`], returning the server's address instead of a client.
pub async fn serve_workstation_at(dir: &Path, hardware: &str) -> (Assembled, std::net::SocketAddr) {
    serve_configured(dir, "", hardware, "").await
}

/// [`serve_workstation_at`] with more config: `server_extra` under `[server]` (e.g.
/// `[server.tls]`, `[server.limits]`), `auth_extra` after the test tokens.
pub async fn serve_configured(dir: &Path, server_extra: &str, hardware: &str, auth_extra: &str) -> (Assembled, std::net::SocketAddr) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    // A test may have written its own catalog (or stock) first.
    if !dir.join("catalog.toml").exists() {
        std::fs::copy(repo.join("config/catalog.toml"), dir.join("catalog.toml")).expect("copy catalog");
    }
    if !dir.join("stock.toml").exists() {
        std::fs::write(dir.join("stock.toml"), MANIFEST).expect("manifest");
    }
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n{server_extra}\n[journal]\npath = \"var/journal.db\"\n[catalog]\npath = \"catalog.toml\"\n[stock]\nmanifest = \"stock.toml\"\n{hardware}\n{}\n{auth_extra}",
        auth_section()
    );
    std::fs::write(dir.join("ws.toml"), config).expect("config");
    let config = Config::load(&dir.join("ws.toml")).expect("config loads");
    let assembled = assemble(config).await.expect("workstation assembles");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (dispatcher, config) = (assembled.dispatcher.clone(), assembled.config.clone());
    tokio::spawn(async move { serve(dispatcher, &config, listener, std::future::pending()).await });
    (assembled, addr)
}

/// A queued dispense written straight into `journal` (as a controller would have
/// before it stopped), with its id.
pub fn queued_dispense(journal: &controller::journal::Journal, request: &str, order: controller::rules::order::PatientOrder) -> controller::dispense::status::DispenseStatus {
    let mut status = controller::dispense::status::DispenseStatus {
        id: String::new(),
        request_id: request.into(),
        order,
        stage: controller::dispense::status::Stage::Queued,
        unit: None,
        violations: Vec::new(),
        detail: String::new(),
        created_at: journal.now(),
        at_booth_at: None,
        finished_at: None,
        administered_by: None,
        administered_site: None,
        booth_scan_required: false,
    };
    let controller::journal::Created::New(id) = journal.create_dispense(request, &status).expect("create") else { panic!("{request} is new") };
    status.id = id;
    status
}

/// The `p` quantile (0 to 1) of sorted figures, NaN for none: the benchmarks' summaries.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}
