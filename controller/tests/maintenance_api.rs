//! The maintenance service over the wire-level simulator: device status with
//! identities and firmware, the maintenance lock and its timeout, jog and home only
//! under the lock with every interlock closed, the self-test, faults with cause and
//! remedy and their clearing, raw registers, the camera snapshot and the log export.

use dispense_proto::client::Authorized;
use controller::dispense::workstation::WorkstationState;
use dispense_proto::v1 as pb;
use dispense_proto::v1::maintenance_service_client::MaintenanceServiceClient;
use futures::StreamExt;
use simulator::injection::Fault;
use simulator::wire::{Exposure, HardwarePlan, HardwareSim};
use simulator::{SimConfig, SimWorkstation};
use std::time::Duration;
use tonic::Code;
use tonic_types::StatusExt;

mod common;
use common::{MAINTENANCE, MANIFEST, serve_configured};

/// A second maintenance caller, to contend for the lock.
const CREW_2: &str = "crew-2-token";

struct Rig {
    assembled: common::Assembled,
    hardware: HardwareSim,
    address: std::net::SocketAddr,
    _dir: tempfile::TempDir,
}

async fn rig() -> Rig {
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = hal::manifest::parse(MANIFEST).expect("manifest parses");
    let sim = SimWorkstation::new(SimConfig { speed: 40.0, booths: 4, ..SimConfig::default() }, &manifest);
    let plan = HardwarePlan { store: Exposure::Rtu { baud: 115_200 }, conveyor: Exposure::Tcp { bind: "127.0.0.1:0".parse().expect("addr") }, http: "127.0.0.1:0".parse().expect("addr") };
    let hardware = HardwareSim::start(sim, &plan).await.expect("hardware simulator");
    std::fs::write(dir.path().join("devices.toml"), hardware.wire_config_toml()).expect("devices file");
    let crew_2 = format!("[[auth.tokens]]\nname = \"crew-2\"\nrole = \"maintenance\"\nsha256 = \"{}\"\n", controller::api::auth::layer::token_hash(CREW_2));
    let (assembled, address) = serve_configured(dir.path(), "", "[hardware]\nkind = \"wire\"\ndevices = \"devices.toml\"\n", &crew_2).await;
    Rig { assembled, hardware, address, _dir: dir }
}

async fn crew(address: std::net::SocketAddr, token: &str) -> MaintenanceServiceClient<Authorized> {
    MaintenanceServiceClient::new(common::channel(address, token).await)
}

fn reason(status: &tonic::Status) -> String {
    status.get_error_details().error_info().map(|i| i.reason.clone()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_crew_reads_status_takes_the_lock_jogs_and_self_tests() {
    let Rig { assembled, hardware, address, _dir } = rig().await;
    let sim = hardware.workstation().clone();
    let mut crew1 = crew(address, MAINTENANCE).await;
    let mut crew2 = crew(address, CREW_2).await;

    let status = crew1.get_status(pb::GetStatusRequest {}).await.expect("status").into_inner();
    assert_eq!(status.state, pb::WorkstationState::Ready as i32);
    assert_eq!(status.devices.len(), 2, "{status:?}");
    for device in &status.devices {
        assert!(device.alive && !device.firmware.is_empty() && device.serial_number.starts_with("SIM-"), "{device:?}");
        assert_eq!(device.map_version, u32::from(hal::modbus::map::MAP_VERSION));
        assert!(device.homed && device.requests > 0 && device.last_heartbeat_time.is_some(), "{device:?}");
    }
    assert!(status.devices.iter().any(|d| d.name == "conveyor" && d.transport.starts_with("tcp")), "{:?}", status.devices);
    let interlocks = status.interlocks.expect("interlocks");
    assert!(interlocks.readable && !interlocks.restock_door_open);

    // Motions need maintenance mode.
    let jog = |mm| pb::JogRequest { axis: pb::Axis::Belt as i32, distance_mm: mm };
    let refused = crew1.jog(jog(50)).await.expect_err("not in maintenance");
    assert_eq!(reason(&refused), "WRONG_WORKSTATION_STATE");
    assert_eq!(reason(&crew1.self_test(pb::SelfTestRequest {}).await.expect_err("not in maintenance")), "WRONG_WORKSTATION_STATE");

    let lock = crew1.enter_maintenance(pb::EnterMaintenanceRequest { reason: "monthly check".into(), timeout: Some(prost_types::Duration { seconds: 600, nanos: 0 }), force: false }).await.expect("enter");
    assert_eq!(lock.into_inner().lease.expect("lease").holder, "crew-1");
    let taken = crew2.enter_maintenance(pb::EnterMaintenanceRequest { reason: "me too".into(), ..Default::default() }).await.expect_err("locked");
    assert_eq!(reason(&taken), "MAINTENANCE_LOCKED");
    assert!(taken.message().contains("crew-1"), "{taken:?}");
    assert_eq!(reason(&crew2.jog(jog(50)).await.expect_err("not the holder")), "MAINTENANCE_LOCKED");

    let jogs = sim.jogs();
    crew1.jog(jog(50)).await.expect("belt jog");
    crew1.jog(pb::JogRequest { axis: pb::Axis::PickerY as i32, distance_mm: -20 }).await.expect("picker jog");
    assert_eq!(sim.jogs(), jogs + 2, "both jogs reached the devices over the wire");
    let far = crew1.jog(jog(9_999)).await.expect_err("too far");
    assert_eq!(far.get_error_details().bad_request().expect("BadRequest").field_violations[0].field, "distance_mm");
    let axis = crew1.jog(pb::JogRequest { axis: 0, distance_mm: 10 }).await.expect_err("no axis");
    assert_eq!(axis.code(), Code::InvalidArgument);

    hardware.inject(&Fault::Door(true)).expect("door");
    let open = crew1.jog(jog(50)).await.expect_err("door open");
    assert_eq!(reason(&open), "INTERLOCK_OPEN");
    assert_eq!(reason(&crew1.home(pb::HomeRequest {}).await.expect_err("door open")), "INTERLOCK_OPEN");
    assert_eq!(sim.jogs(), jogs + 2, "nothing moved with the door open");
    hardware.inject(&Fault::Door(false)).expect("door");
    crew1.home(pb::HomeRequest {}).await.expect("home");

    let steps: Vec<pb::SelfTestResponse> = crew1.self_test(pb::SelfTestRequest {}).await.expect("self-test").into_inner().map(|s| s.expect("step")).collect().await;
    let total = steps.first().expect("steps").steps as usize;
    assert_eq!(steps.len(), total);
    assert!(steps.iter().enumerate().all(|(i, s)| s.step as usize == i + 1));
    for name in ["cold store: identity", "conveyor: heartbeat", "interlocks closed", "cabinet probes agree", "scan camera", "home picker and belt", "belt jog ±10 mm"] {
        let step = steps.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("{name} missing from {steps:?}"));
        assert!(step.passed, "{step:?}");
    }

    // The same self-test finds a probe that is off.
    hardware.inject(&Fault::ProbeOffset(3.0)).expect("probe offset");
    let steps: Vec<pb::SelfTestResponse> = crew1.self_test(pb::SelfTestRequest {}).await.expect("self-test").into_inner().map(|s| s.expect("step")).collect().await;
    let agree = steps.iter().find(|s| s.name == "cabinet probes agree").expect("step");
    assert!(!agree.passed && !agree.skipped, "{agree:?}");
    hardware.inject(&Fault::ProbeOffset(0.0)).expect("probe offset");

    let back = crew1.exit_maintenance(pb::ExitMaintenanceRequest {}).await.expect("exit").into_inner();
    assert_eq!(back.state, pb::WorkstationState::Ready as i32);

    // A lease nobody renews lapses and the workstation returns to service.
    crew2.enter_maintenance(pb::EnterMaintenanceRequest { reason: "quick look".into(), timeout: Some(prost_types::Duration { seconds: 1, nanos: 0 }), force: false }).await.expect("enter");
    let mut state = WorkstationState::Maintenance;
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        state = assembled.dispatcher.workstation_state();
        if state == WorkstationState::Ready {
            break;
        }
    }
    assert_eq!(state, WorkstationState::Ready, "the lease lapsed");
    let notes = assembled.dispatcher.journal().entries_of_kind(controller::journal::StepKind::Maintenance, chrono::Utc::now() - chrono::Duration::minutes(5)).expect("journal");
    assert!(notes.iter().any(|e| e.detail.contains("lease lapsed") && e.detail.contains("crew-2")), "{notes:?}");
    // Every motion's intent is journalled before it is sent (H-05).
    let intents = assembled.dispatcher.journal().entries_of_kind(controller::journal::StepKind::Intent, chrono::Utc::now() - chrono::Duration::minutes(5)).expect("journal");
    assert!(intents.iter().any(|e| e.step == "Jog" && e.detail.contains("crew-1")), "{intents:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_registers_snapshot_and_logs() {
    let Rig { assembled, hardware, address, _dir } = rig().await;
    let mut crew1 = crew(address, MAINTENANCE).await;

    // An e-stop pressed and released: the interlock fault clears by itself, the
    // conveyor's latched alarm stays until the crew clears it with a reason.
    hardware.inject(&Fault::Estop(true)).expect("estop");
    let mut active = Vec::new();
    for _ in 0..200 {
        active = crew1.list_faults(pb::ListFaultsRequest::default()).await.expect("faults").into_inner().active;
        if active.iter().any(|f| f.id == "CV-01@conveyor") && active.iter().any(|f| f.id == "WS-INTERLOCK@interlocks") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let latched = active.iter().find(|f| f.id == "CV-01@conveyor").unwrap_or_else(|| panic!("{active:?}"));
    assert!(!latched.cause.is_empty() && !latched.remedy.is_empty(), "{latched:?}");
    hardware.inject(&Fault::Estop(false)).expect("estop");
    for _ in 0..200 {
        active = crew1.list_faults(pb::ListFaultsRequest::default()).await.expect("faults").into_inner().active;
        if active.iter().all(|f| f.id != "WS-INTERLOCK@interlocks") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(active.iter().all(|f| f.id != "WS-INTERLOCK@interlocks"), "{active:?}");
    assert!(active.iter().any(|f| f.id == "CV-01@conveyor"), "latched until cleared: {active:?}");
    let no_reason = crew1.clear_fault(pb::ClearFaultRequest { fault_id: "CV-01@conveyor".into(), reason: String::new() }).await.expect_err("reason");
    assert_eq!(no_reason.code(), Code::InvalidArgument);
    let unknown = crew1.clear_fault(pb::ClearFaultRequest { fault_id: "XX@nowhere".into(), reason: "x".into() }).await.expect_err("unknown");
    assert_eq!(unknown.code(), Code::NotFound);
    // H-09: a device's latched alarm is reset only by the crew member holding the
    // machine in maintenance mode, never while it serves patients.
    let in_service = crew1.clear_fault(pb::ClearFaultRequest { fault_id: "CV-01@conveyor".into(), reason: "e-stop released, belt inspected".into() }).await.expect_err("not in maintenance");
    assert_eq!(in_service.code(), Code::FailedPrecondition, "{in_service:?}");
    assert!(in_service.message().contains("maintenance"), "says why: {in_service:?}");
    let conveyor = assembled.dispatcher.devices().field.iter().find(|d| d.name() == "conveyor").expect("conveyor").clone();
    let latched = conveyor.status().await.expect("status").alarms;
    assert!(latched.iter().any(|a| a.code == "CV-01"), "the device's latch was left alone: {latched:?}");
    crew1.enter_maintenance(pb::EnterMaintenanceRequest { reason: "reset the belt alarm".into(), timeout: Some(prost_types::Duration { seconds: 60, nanos: 0 }), force: false }).await.expect("enter");
    let cleared = crew1.clear_fault(pb::ClearFaultRequest { fault_id: "CV-01@conveyor".into(), reason: "e-stop released, belt inspected".into() }).await.expect("clear");
    assert_eq!(cleared.into_inner().fault.expect("fault").cleared_by, "crew-1");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let faults = loop {
        let faults = crew1.list_faults(pb::ListFaultsRequest { include_past: true, ..Default::default() }).await.expect("faults").into_inner();
        if faults.active.iter().all(|f| f.id != "CV-01@conveyor") || tokio::time::Instant::now() > deadline {
            break faults;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(faults.active.iter().all(|f| f.id != "CV-01@conveyor"), "the device's latch was reset too: {:?}", faults.active);
    assert!(faults.past.iter().any(|f| f.id == "CV-01@conveyor" && f.cleared_by == "crew-1"), "{:?}", faults.past);

    // Raw registers: IR 0–1 are the device type and the map version.
    let read = |device: &str, address, count| pb::ReadRegistersRequest { device: device.into(), table: pb::RegisterTable::Input as i32, address, count };
    let values = crew1.read_registers(read("store", 0, 2)).await.expect("read").into_inner().values;
    assert_eq!(values, [hal::modbus::map::DeviceType::ColdStore as u32, u32::from(hal::modbus::map::MAP_VERSION)]);
    let holding = pb::ReadRegistersRequest { table: pb::RegisterTable::Holding as i32, ..read("conveyor", 0, 1) };
    assert_eq!(crew1.read_registers(holding).await.expect("read").into_inner().values.len(), 1);
    assert_eq!(crew1.read_registers(read("store", 0, 200)).await.expect_err("too many").code(), Code::InvalidArgument);
    let toaster = crew1.read_registers(read("toaster", 0, 1)).await.expect_err("no such device");
    assert!(toaster.message().contains("cold store"), "names the devices there are: {toaster:?}");

    let shot = crew1.camera_snapshot(pb::CameraSnapshotRequest {}).await.expect("snapshot").into_inner();
    assert!(shot.png.starts_with(b"\x89PNG\r\n\x1a\n") && shot.width > 0 && shot.height > 0, "{} bytes", shot.png.len());

    let chunks: Vec<pb::ExportLogsResponse> = crew1.export_logs(pb::ExportLogsRequest::default()).await.expect("export").into_inner().map(|c| c.expect("chunk")).collect().await;
    let journal: Vec<u8> = chunks.iter().filter(|c| c.file_name == "journal.csv").flat_map(|c| c.data.clone()).collect();
    let journal = String::from_utf8(journal).expect("UTF-8");
    assert!(journal.starts_with("seq,at,dispense_id,patient_ref,unit_code,kind,step,detail"), "{journal}");
    assert!(journal.contains("CV-01@conveyor"), "the fault history is in the export");
    assert!(chunks.iter().any(|c| c.file_name == "controller.log"));
    let backwards = pb::ExportLogsRequest { start_time: Some(prost_types::Timestamp { seconds: 2_000_000_000, nanos: 0 }), end_time: Some(prost_types::Timestamp { seconds: 1_000_000_000, nanos: 0 }) };
    assert_eq!(crew1.export_logs(backwards).await.expect_err("from after to").code(), Code::InvalidArgument);
}
