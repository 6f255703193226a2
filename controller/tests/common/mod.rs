//! What the end-to-end tests share: the loading manifest, orders, and a clinic
//! client's start-and-watch helpers.
#![allow(dead_code)] // each test binary uses its own subset

pub mod daemon;

use controller::config::Config;
use controller::daemon::{Assembled, assemble, serve};
use dispense_proto::v1 as pb;
use std::path::Path;
use dispense_proto::v1::dispensing_service_client::DispensingServiceClient;
use std::time::Duration;
use tonic::transport::Channel;

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

pub async fn start(client: &mut DispensingServiceClient<Channel>, request_id: &str, order: pb::PatientOrder) -> pb::StartDispenseResponse {
    client.start_dispense(pb::StartDispenseRequest { request_id: request_id.into(), order: Some(order) }).await.expect("start").into_inner()
}

/// Watches until the dispense reaches `stage` (or any final stage) and returns it.
pub async fn wait_for(client: &mut DispensingServiceClient<Channel>, id: &str, stage: pb::DispenseStage) -> pb::Dispense {
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
pub async fn serve_workstation(dir: &Path, hardware: &str) -> (Assembled, DispensingServiceClient<Channel>) {
    let (assembled, address) = serve_workstation_at(dir, hardware).await;
    let client = DispensingServiceClient::connect(format!("http://{address}")).await.expect("connect");
    (assembled, client)
}

/// [`serve_workstation`], returning the server's address instead of a client.
pub async fn serve_workstation_at(dir: &Path, hardware: &str) -> (Assembled, std::net::SocketAddr) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    // A test may have written its own catalog (or stock) first.
    if !dir.join("catalog.toml").exists() {
        std::fs::copy(repo.join("config/catalog.toml"), dir.join("catalog.toml")).expect("copy catalog");
    }
    if !dir.join("stock.toml").exists() {
        std::fs::write(dir.join("stock.toml"), MANIFEST).expect("manifest");
    }
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[journal]\npath = \"var/journal.db\"\n[catalog]\npath = \"catalog.toml\"\n[stock]\nmanifest = \"stock.toml\"\n{hardware}"
    );
    std::fs::write(dir.join("ws.toml"), config).expect("config");
    let config = Config::load(&dir.join("ws.toml")).expect("config loads");
    let assembled = assemble(config).await.expect("workstation assembles");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(serve(assembled.dispatcher.clone(), listener, std::future::pending()));
    (assembled, addr)
}
