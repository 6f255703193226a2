//! End to end over the real wires: the hardware simulator serves the store on Modbus
//! RTU (pseudo-terminal), the conveyor on Modbus TCP and the camera as an MJPEG
//! stream; the daemon opens them from a devices file as it would a real machine,
//! and a tonic client plays the clinic.

use common::Assembled;
use dispense_proto::v1 as pb;
use hal::BoothId;
use simulator::injection::Fault;
use simulator::wire::{Exposure, HardwarePlan, HardwareSim};
use simulator::{SimConfig, SimWorkstation};
use std::time::Duration;

mod common;
use common::{IPV, MANIFEST, order, serve_workstation, start, wait_for};
use controller::journal::StepKind;

struct Rig {
    assembled: Assembled,
    hardware: HardwareSim,
    client: common::Client,
    _dir: tempfile::TempDir,
}

async fn rig() -> Rig {
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = hal::manifest::parse(MANIFEST).expect("manifest parses");
    let sim = SimWorkstation::new(SimConfig { speed: 40.0, booths: 4, ..SimConfig::default() }, &manifest);
    let plan = HardwarePlan {
        store: Exposure::Rtu { baud: 115_200 },
        conveyor: Exposure::Tcp { bind: "127.0.0.1:0".parse().expect("address") },
        http: "127.0.0.1:0".parse().expect("address"),
    };
    let hardware = HardwareSim::start(sim, &plan).await.expect("hardware simulator");
    std::fs::write(dir.path().join("devices.toml"), hardware.wire_config_toml()).expect("devices file");
    let (assembled, client) = serve_workstation(dir.path(), "[hardware]\nkind = \"wire\"\ndevices = \"devices.toml\"\n").await;
    Rig { assembled, hardware, client, _dir: dir }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispense_over_modbus_and_the_camera_stream_reaches_the_booth() {
    let Rig { assembled, hardware, mut client, _dir } = rig().await;
    assert!(assembled.simulator.is_none(), "the controller sees only wires");
    let id = start(&mut client, "wire-1", order("HepB", 2)).await.dispense_id;
    let at_booth = wait_for(&mut client, &id, pb::DispenseStage::AwaitingValidation).await;
    assert_eq!(at_booth.stage, pb::DispenseStage::AwaitingValidation as i32, "{at_booth:?}");
    let unit = at_booth.unit.expect("unit");
    assert_eq!(unit.lot, "EARLY", "FEFO over the wire too");

    let sim = hardware.workstation();
    let deliveries = sim.deliveries();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].booth, BoothId(2));
    // The stage is published as the flow enters it; the display task follows over the bus.
    let mut display = None;
    for _ in 0..500 {
        display = sim.booth_display(BoothId(2));
        if display.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let display = display.expect("the display was written over Modbus");
    assert_eq!((display.lot.as_str(), display.expiry.as_str(), display.patient_name.as_str()), ("EARLY", "2027-03-31", "Wang Xiaoming"));
    // The code was read from JPEG frames that OpenCV pulled off the MJPEG stream.
    let entries = assembled.dispatcher.journal().entries(&id).expect("journal");
    let read = entries.iter().find(|e| e.kind == StepKind::Outcome && e.step == "Read").expect("scan outcome");
    assert!(read.detail.contains(&unit.code), "{}", read.detail);

    client.confirm_validation(pb::ConfirmValidationRequest { dispense_id: id.clone(), booth_scan: String::new() }).await.expect("validation");
    wait_for(&mut client, &id, pb::DispenseStage::AwaitingAdministration).await;
    client.confirm_administration(pb::ConfirmAdministrationRequest { dispense_id: id.clone(), nurse_id: "N1".into(), ..Default::default() }).await.expect("administration");
    let done = wait_for(&mut client, &id, pb::DispenseStage::Administered).await;
    assert_eq!(done.stage, pb::DispenseStage::Administered as i32);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mislabelled_unit_is_rejected_over_the_wire() {
    let Rig { hardware, mut client, .. } = rig().await;
    let id = start(&mut client, "wire-mmr", order("MMR", 3)).await.dispense_id;
    let done = wait_for(&mut client, &id, pb::DispenseStage::Rejected).await;
    let ids: Vec<&str> = done.violations.iter().map(|v| v.id.as_str()).collect();
    assert_eq!(ids, ["ProductMismatch", "UnknownUnit"], "{done:?}");
    let sim = hardware.workstation();
    assert!(sim.deliveries().is_empty());
    assert!(sim.reject_bin().iter().any(|label| label.contains(IPV)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jam_on_the_way_to_the_booth_sends_the_unit_to_quarantine() {
    let Rig { hardware, mut client, .. } = rig().await;
    // Runs: hatch → scan is the first, scan → booth the second.
    hardware.run_script(simulator::injection::parse_script("on convey 1 jam").expect("script"));
    let id = start(&mut client, "wire-jam", order("HepB", 1)).await.dispense_id;
    let done = wait_for(&mut client, &id, pb::DispenseStage::Rejected).await;
    assert_eq!(done.stage, pb::DispenseStage::Rejected as i32, "{done:?}");
    let fault = done.violations.iter().find(|v| v.id == "HandlingFault").expect("handling fault");
    assert!(fault.message.starts_with("WS-JAM"), "{}", fault.message);
    assert!(hardware.workstation().deliveries().is_empty(), "never to a booth");
    assert_eq!(hardware.workstation().reject_bin().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_door_read_over_modbus_pauses_the_dispense_until_closed() {
    let Rig { hardware, mut client, .. } = rig().await;
    hardware.inject(&Fault::Door(true)).expect("door");
    let motions = hardware.workstation().motions_started();
    let id = start(&mut client, "wire-door", order("HepB", 1)).await.dispense_id;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(hardware.workstation().motions_started(), motions, "nothing moved with the door open");
    hardware.inject(&Fault::Door(false)).expect("door");
    let at_booth = wait_for(&mut client, &id, pb::DispenseStage::AwaitingValidation).await;
    assert_eq!(at_booth.stage, pb::DispenseStage::AwaitingValidation as i32, "{at_booth:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_label_swapped_by_fault_injection_never_reaches_the_booth() {
    let Rig { hardware, mut client, .. } = rig().await;
    // The earliest-expiry HepB unit now carries an IPV label (element string: GTIN,
    // expiry, serial last so no separator is needed).
    let swap = format!("mislabel R2-4-8 01{IPV}1727013121SWAP1");
    hardware.inject(&swap.parse::<Fault>().expect("fault")).expect("mislabel");
    let id = start(&mut client, "wire-swap", order("HepB", 2)).await.dispense_id;
    let done = wait_for(&mut client, &id, pb::DispenseStage::Rejected).await;
    let ids: Vec<&str> = done.violations.iter().map(|v| v.id.as_str()).collect();
    assert!(ids.contains(&"ProductMismatch"), "{done:?}");
    assert!(hardware.workstation().deliveries().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_store_pauses_the_dispense_which_goes_on_when_it_answers_again() {
    let Rig { assembled, hardware, mut client, _dir } = rig().await;
    hardware.inject(&"silent store 3".parse::<Fault>().expect("fault")).expect("silent");
    let motions = hardware.workstation().motions_started();
    let id = start(&mut client, "wire-silent", order("HepB", 3)).await.dispense_id;
    let at_booth = wait_for(&mut client, &id, pb::DispenseStage::AwaitingValidation).await;
    assert_eq!(at_booth.stage, pb::DispenseStage::AwaitingValidation as i32, "{at_booth:?}");
    // The journal, not a snapshot after a fixed sleep, says the runner waited for the
    // silent store before its first motion (a loaded machine may take longer to notice).
    let entries = assembled.dispatcher.journal().entries(&id).expect("journal");
    let waited = entries.iter().position(|e| e.kind == StepKind::Interlock && e.detail.contains("cold store not answering"));
    let waited = waited.unwrap_or_else(|| panic!("no wait for the silent store in the journal: {entries:#?}"));
    let picked = entries.iter().position(|e| e.kind == StepKind::Outcome && e.step == "Picked").expect("the pick done");
    assert!(waited < picked, "waited at {waited}, picked at {picked}");
    assert!(hardware.workstation().motions_started() > motions);
}
