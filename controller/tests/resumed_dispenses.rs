//! H-16: a restart resumes every dispense whose safety can be established again
//! (SAFETY.md). The controller runs on virtual time over in-process simulated
//! hardware, is stopped as a crash stops it, and a new controller starts on the
//! same journal and the same physical workstation: the dispenses in flight carry
//! on under their ids, a unit that lay in its tray is identified again by a booth
//! scan before it may be given, a unit at its gate is checked again before it
//! drops, a unit at the scan station is read and verified again, and a dose the
//! nurse gave while the controller was down is recorded when she confirms it.

use controller::assemble::{assemble_on, prepare_on};
use controller::config::Config;
use controller::dispatch::{DispatchError, Dispatcher, Watch};
use controller::dispense::status::{DispenseStatus, Stage};
use controller::journal::clock::Clock;
use controller::journal::{Outcome, StepKind};
use controller::rules::inventory::UnitState;
use controller::rules::order::PatientOrder;
use hal::BoothId;
use simulator::{SimConfig, SimWorkstation};
use std::path::Path;
use std::time::Duration;

mod common;

/// A workstation on virtual time: two booths, the tests' manifest, the simulated
/// nurse taking a unit from its tray `nurse_pickup_s` after it dropped.
struct Rig {
    config: Config,
    clock: Clock,
    sim: SimWorkstation,
    dispatcher: Dispatcher,
}

impl Rig {
    async fn new(dir: &Path, nurse_pickup_s: f64) -> Self {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        std::fs::copy(repo.join("config/catalog.toml"), dir.join("catalog.toml")).expect("catalog");
        std::fs::write(dir.join("stock.toml"), common::MANIFEST).expect("stock");
        let text = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[journal]\npath = \"journal.db\"\n[catalog]\npath = \"catalog.toml\"\n[stock]\nmanifest = \"stock.toml\"\n\
             [hardware]\nkind = \"simulated\"\n[hardware.simulator]\nspeed = 1.0\nbooths = 2\ntimings = {{ nurse_pickup_s = {nurse_pickup_s:.1} }}\n{}",
            common::auth_section()
        );
        std::fs::write(dir.join("ws.toml"), text).expect("config");
        let config = Config::load(&dir.join("ws.toml")).expect("config");
        let controller::config::HardwareConfig::Simulated { simulator } = &config.hardware else { panic!("simulated") };
        let sim = SimWorkstation::new(SimConfig::from_table(simulator).expect("sim"), &controller::assemble::load_manifest(&config).expect("manifest"));
        let anchor = chrono::DateTime::parse_from_rfc3339("2026-06-01T02:00:00Z").expect("time").with_timezone(&chrono::Utc);
        let clock = Clock::following_tokio(anchor);
        let dispatcher = assemble_on(config.clone(), clock.clone(), sim.devices()).await.expect("assembles").dispatcher;
        Self { config, clock, sim, dispatcher }
    }

    /// Stops the controller as a crash does, waits `down`, and starts a new one on
    /// the same journal and devices.
    async fn crash_and_restart(&mut self, down: Duration) {
        self.dispatcher.stop_as_if_crashed();
        tokio::time::sleep(down).await;
        self.dispatcher = assemble_on(self.config.clone(), self.clock.clone(), self.sim.devices()).await.expect("restarts").dispatcher;
    }

    fn order(&self, request: &str, booth: u8) -> String {
        let born = self.dispatcher.journal().clock().today() - chrono::Duration::days(300);
        let order = PatientOrder::new(&format!("P-{request}"), "Wang", "HepB", BoothId(booth), 1, born);
        self.dispatcher.start(request, order).expect("start").dispense_id
    }

    /// Waits (virtual time) until the dispense's status satisfies `done`.
    async fn until(&self, id: &str, done: impl Fn(&DispenseStatus) -> bool) -> DispenseStatus {
        for _ in 0..7_200 {
            let status = self.dispatcher.get(id).expect("status");
            if done(&status) {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        panic!("{id} never got there: {:?}", self.dispatcher.get(id));
    }

    /// Validates (with the booth scan when asked) and administers; the final status.
    async fn serve(&self, id: &str) -> DispenseStatus {
        let status = self.until(id, |s| s.stage == Stage::AwaitingValidation || s.stage.is_final()).await;
        if status.stage.is_final() {
            return status;
        }
        let scan = status.booth_scan_required.then(|| self.sim.tray_label(status.order.booth).expect("a unit in the tray"));
        self.dispatcher.confirm_validation(id, scan.as_deref()).expect("validated");
        self.until(id, |s| s.stage == Stage::AwaitingAdministration).await;
        self.dispatcher.confirm_administration(id, "nurse-1", None).expect("administered");
        self.until(id, |s| s.stage.is_final()).await
    }

    fn resumed(&self, id: &str) -> bool {
        self.dispatcher.journal().entries(id).expect("entries").iter().any(|e| e.kind == StepKind::Recovery && e.step == "resumed")
    }
}

/// A unit in its tray, the next patient's verified unit at the gate, and a third
/// order still queued: all three resume under their ids and are given; the unit in
/// the tray only after a booth scan identifies it, which the display asks for.
#[tokio::test(start_paused = true)]
async fn the_tray_the_gate_and_the_queue_resume_after_a_crash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = Rig::new(dir.path(), 120.0).await;
    let in_tray = rig.order("in-tray", 1);
    let at_gate = rig.order("at-gate", 1);
    let queued = rig.order("queued", 1);
    rig.until(&in_tray, |s| s.stage == Stage::AwaitingValidation).await;
    rig.until(&at_gate, |s| s.detail.contains("gate")).await;
    assert_eq!(rig.dispatcher.get(&queued).expect("queued").stage, Stage::Queued, "one unit ahead per booth");

    rig.crash_and_restart(Duration::from_secs(20)).await;
    let queue: Vec<(String, Stage)> = rig.dispatcher.queue().into_iter().map(|s| (s.id, s.stage)).collect();
    assert_eq!(queue, vec![(in_tray.clone(), Stage::AwaitingValidation), (at_gate.clone(), Stage::ToBooth), (queued.clone(), Stage::Queued)], "live again, same ids");
    assert!(matches!(rig.dispatcher.watch(&in_tray), Ok(Watch::Live(_))), "a client re-opens its watch");

    // The unit in the tray lay unwatched: a validation without a booth scan is refused.
    let status = rig.dispatcher.get(&in_tray).expect("status");
    assert!(status.booth_scan_required, "{status:?}");
    let mut display = None;
    for _ in 0..100 {
        display = rig.sim.booth_display(BoothId(1)).filter(|d| d.product_name.starts_with("SCAN AGAIN"));
        if display.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(display.is_some(), "the display asks for the scan: {:?}", rig.sim.booth_display(BoothId(1)));
    match rig.dispatcher.confirm_validation(&in_tray, None) {
        Err(DispatchError::InvalidArgument { field: "booth_scan", reason }) => assert!(reason.contains("restarted"), "{reason}"),
        other => panic!("a validation without the booth scan is refused: {other:?}"),
    }
    for id in [&in_tray, &at_gate, &queued] {
        let ended = rig.serve(id).await;
        assert_eq!(ended.stage, Stage::Administered, "{ended:?}");
        assert!(rig.resumed(id), "{id} was resumed, not ended");
    }
    assert!(rig.sim.reject_bin().is_empty(), "nothing binned: {:?}", rig.sim.reject_bin());
    assert_eq!(rig.sim.deliveries().len(), 3);
}

/// A verified unit resumed at its gate is checked again before it drops: its lot
/// recalled while the controller was down, it goes to the bin, never the tray.
#[tokio::test(start_paused = true)]
async fn a_unit_resumed_at_its_gate_is_checked_again_before_it_drops() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = Rig::new(dir.path(), 120.0).await;
    let first = rig.order("first", 1);
    let second = rig.order("second", 1);
    rig.until(&first, |s| s.stage == Stage::AwaitingValidation).await;
    let waiting = rig.until(&second, |s| s.detail.contains("gate")).await;
    let lot = waiting.unit.expect("its unit").lot;

    rig.crash_and_restart(Duration::from_secs(5)).await;
    rig.dispatcher.recall_batch(None, &lot, "supplier recall", "pharmacist-1").expect("recalled");
    // The first unit, in the tray, is of the same lot: held there, the nurse returns it.
    assert_eq!(rig.until(&first, |s| s.stage.is_final()).await.stage, Stage::Rejected);
    let ended = rig.until(&second, |s| s.stage.is_final()).await;
    assert_eq!(ended.stage, Stage::Rejected, "{ended:?}");
    assert!(rig.sim.deliveries().iter().all(|d| d.carrier != controller::dispense::carriers::carrier_of(&second)), "never dropped: {:?}", rig.sim.deliveries());
    assert_eq!(rig.sim.reject_bin().len(), 1, "binned from the gate");
}

/// A unit caught at the scan station by the crash is read and verified again after
/// it (the devices kept track of it), then given.
#[tokio::test(start_paused = true)]
async fn a_unit_at_the_scan_station_is_read_and_verified_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = Rig::new(dir.path(), 120.0).await;
    let id = rig.order("scanning", 2);
    let Ok(Watch::Live(mut status)) = rig.dispatcher.watch(&id) else { panic!("live") };
    status.wait_for(|s| s.stage == Stage::Scanning).await.expect("scanning");
    rig.crash_and_restart(Duration::from_secs(2)).await;
    assert_eq!(rig.dispatcher.get(&id).expect("status").stage, Stage::Scanning);

    let ended = rig.serve(&id).await;
    assert_eq!(ended.stage, Stage::Administered, "{ended:?}");
    let entries = rig.dispatcher.journal().entries(&id).expect("entries");
    let resumed_at = entries.iter().position(|e| e.kind == StepKind::Recovery && e.step == "resumed").expect("resumed");
    let verified_after = entries[resumed_at..].iter().filter(|e| e.outcome() == Some(&Outcome::Passed)).count();
    assert_eq!(verified_after, 1, "verified again after the restart");
}

/// A unit a restart found in the store's hatch keeps the picker until it is on the
/// belt: an older order, whose reserved unit had not left its slot, waits for the
/// picker instead of meeting a full hatch and failing (found by `wssim hunt`, seed 3).
#[tokio::test(start_paused = true)]
async fn a_unit_in_the_hatch_keeps_the_picker_until_it_is_on_the_belt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = Rig::new(dir.path(), 120.0).await;
    rig.dispatcher.stop_as_if_crashed();
    // As the crash left it: D000001's unit reserved but still in its slot, D000002's
    // unit picked into the hatch (each waiting on the picker in turn).
    let journal = rig.dispatcher.journal();
    let born = journal.clock().today() - chrono::Duration::days(300);
    let mut ids = Vec::new();
    for (request, booth) in [("older", 1), ("in-hatch", 2)] {
        let mut status = common::queued_dispense(journal, request, PatientOrder::new(&format!("P-{request}"), "Wang", "HepB", BoothId(booth), 1, born));
        let id = status.id.clone();
        let unit = journal.all_in_store().expect("stock").into_iter().find(|u| u.lot == "EARLY").expect("a unit");
        status.unit = Some(controller::journal::unit_info(&unit));
        journal.reserve_unit(&unit.code, &status).expect("reserved");
        status.stage = Stage::Picking;
        journal.record_stage(&status).expect("picking");
        if request == "in-hatch" {
            rig.sim.devices().store.pick_to_hatch(unit.slot, controller::dispense::carriers::carrier_of(&id)).await.expect("into the hatch");
        }
        ids.push(id);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    rig.dispatcher = assemble_on(rig.config.clone(), rig.clock.clone(), rig.sim.devices()).await.expect("restarts").dispatcher;
    for id in &ids {
        let ended = rig.serve(id).await;
        assert_eq!(ended.stage, Stage::Administered, "{ended:?}");
    }
}

/// A controller that starts with an interlock open waits for it to close before it
/// homes (the motion gate refuses homing meanwhile) instead of giving up: found by
/// `wssim hunt`, seed 73, where a restart during an open light curtain never came
/// back and every later order was refused.
#[tokio::test(start_paused = true)]
async fn a_restart_with_an_interlock_open_waits_for_it_to_close() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = Rig::new(dir.path(), 120.0).await;
    rig.dispatcher.stop_as_if_crashed();
    rig.sim.set_restock_door_open(true);
    let sim = rig.sim.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(90)).await;
        sim.set_restock_door_open(false);
    });
    let restarting = tokio::time::Instant::now();
    rig.dispatcher = assemble_on(rig.config.clone(), rig.clock.clone(), rig.sim.devices()).await.expect("comes back once the door closes").dispatcher;
    assert!(restarting.elapsed() >= Duration::from_secs(90), "it waited for the door");
    assert!(rig.dispatcher.workstation_state().accepts_orders());
    let id = rig.order("after-the-door", 1);
    assert_eq!(rig.serve(&id).await.stage, Stage::Administered);
}

/// Tray empty after the restart: the nurse took the unit while the controller was
/// down. Her confirmation records the dose; with none, the dispense ends and the
/// unit is quarantined as missing.
#[tokio::test(start_paused = true)]
async fn a_dose_given_while_the_controller_was_down_is_recorded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = Rig::new(dir.path(), 6.0).await;
    let given = rig.order("given", 1);
    let vanished = rig.order("vanished", 2);
    for id in [&given, &vanished] {
        rig.until(id, |s| s.stage == Stage::AwaitingValidation).await;
    }
    rig.crash_and_restart(Duration::from_secs(60)).await;
    for id in [&given, &vanished] {
        assert_eq!(rig.dispatcher.get(id).expect("status").stage, Stage::AwaitingAdministration, "{id}");
    }
    rig.dispatcher.confirm_administration(&given, "nurse-1", Some("left thigh")).expect("recorded");
    let ended = rig.until(&given, |s| s.stage.is_final()).await;
    assert_eq!((ended.stage, ended.administered_by.as_deref()), (Stage::Administered, Some("nurse-1")), "{ended:?}");
    let unit = |s: &DispenseStatus| rig.dispatcher.journal().stock_record(&s.unit.clone().expect("unit").code).expect("record").expect("known");
    assert_eq!(unit(&ended).state, UnitState::Administered);

    let missing = rig.until(&vanished, |s| s.stage.is_final()).await;
    assert_eq!(missing.stage, Stage::Failed, "{missing:?}");
    let record = unit(&missing);
    assert_eq!(record.state, UnitState::Rejected);
    assert!(record.hold.is_some_and(|(_, why)| why.contains("taken from its tray")), "quarantined as missing");
}

/// Health says NOT_SERVING while the workstation homes and recovers, and no order
/// is taken, until recovery has resumed what was in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_not_serving_until_recovery_is_done() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;
    let dir = tempfile::tempdir().expect("tempdir");
    let rig = Rig::new(dir.path(), 120.0).await;
    let config = rig.config.clone();
    // Gone as a dead process is: its claim on the journal with it (H-21).
    rig.dispatcher.stop_as_if_crashed();
    drop(rig);
    let sim = SimWorkstation::new(SimConfig { speed: 50.0, booths: 2, ..SimConfig::default() }, &controller::assemble::load_manifest(&config).expect("manifest"));
    let assembled = prepare_on(config.clone(), Clock::system(), sim.devices()).expect("prepared");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let (dispatcher, server_config) = (assembled.dispatcher.clone(), assembled.config.clone());
    tokio::spawn(async move { controller::api::server::serve(dispatcher, &server_config, listener, std::future::pending()).await });
    let channel = tonic::transport::Channel::from_shared(format!("http://{address}")).expect("uri").connect().await.expect("connect");
    let mut health = HealthClient::new(channel);
    let check = HealthCheckRequest { service: controller::api::server::SERVICE_NAME.into() };
    let mut answer = ServingStatus::Unknown;
    for _ in 0..500 {
        if let Ok(reply) = health.check(check.clone()).await {
            answer = reply.into_inner().status();
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(answer, ServingStatus::NotServing, "not before homing and recovery");
    let born = assembled.dispatcher.journal().clock().today() - chrono::Duration::days(300);
    let refused = assembled.dispatcher.start("too-early", PatientOrder::new("P1", "Wang", "HepB", BoothId(1), 1, born));
    assert!(matches!(refused, Err(DispatchError::NotReady(_))), "{refused:?}");

    assembled.start().await.expect("homes and recovers");
    for _ in 0..500 {
        answer = health.check(check.clone()).await.expect("health").into_inner().status();
        if answer == ServingStatus::Serving {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(answer, ServingStatus::Serving, "serving once recovered");
}

/// H-19: a restart during a crew's maintenance keeps the machine theirs. The new
/// controller comes up in maintenance under the same lease and moves nothing — not
/// even homing — until the crew hands the workstation back; then it homes, recovers
/// and serves.
#[tokio::test(start_paused = true)]
async fn a_restart_during_maintenance_moves_nothing_until_the_crew_is_done() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = Rig::new(dir.path(), 120.0).await;
    rig.dispatcher.enter_maintenance("crew-7", "belt cleaning", Duration::from_secs(1800), false).expect("maintenance");
    rig.sim.set_crew_present(true);
    rig.dispatcher.stop_as_if_crashed();
    tokio::time::sleep(Duration::from_secs(20)).await;

    let assembled = prepare_on(rig.config.clone(), rig.clock.clone(), rig.sim.devices()).expect("prepares");
    let dispatcher = assembled.dispatcher.clone();
    let starting = tokio::spawn(async move { assembled.start().await.map(|()| assembled) });
    tokio::time::sleep(Duration::from_secs(300)).await;
    assert_eq!(dispatcher.workstation_state(), controller::dispense::workstation::WorkstationState::Maintenance, "still the crew's after the restart");
    assert_eq!(dispatcher.maintenance_lease().map(|l| l.holder).as_deref(), Some("crew-7"));
    assert!(rig.sim.motions_during_maintenance().is_empty(), "nothing moved while the crew worked: {:?}", rig.sim.motions_during_maintenance());
    assert!(dispatcher.start("during-maintenance", PatientOrder::new("P1", "Li", "HepB", BoothId(1), 1, dispatcher.journal().clock().today() - chrono::Duration::days(300))).is_err(), "no orders");

    rig.sim.set_crew_present(false);
    dispatcher.exit_maintenance("crew-7", "done").expect("handed back");
    rig.dispatcher = starting.await.expect("joined").expect("homes and recovers once handed back").dispatcher;
    assert!(rig.dispatcher.workstation_state().accepts_orders());
    let id = rig.order("after-maintenance", 1);
    assert_eq!(rig.serve(&id).await.stage, Stage::Administered);
}

/// H-20: a unit taken from its tray while the controller was down, and past its time
/// out of the fridge by the time the controller is back (found by `wssim hunt`, seed
/// 96: a restart during a crew's maintenance kept it down long), is not asked for
/// again: the dispense ends rejected (OutOfFridgeLimit) and an administration sent
/// now is refused.
#[tokio::test(start_paused = true)]
async fn a_unit_taken_while_down_and_now_too_long_out_is_not_given() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = Rig::new(dir.path(), 6.0).await;
    let id = rig.order("too-long-out", 1);
    rig.until(&id, |s| s.stage == Stage::AwaitingValidation).await;
    rig.crash_and_restart(Duration::from_secs(35 * 60)).await;
    let refused = rig.dispatcher.confirm_administration(&id, "nurse-1", None);
    assert!(matches!(refused, Err(DispatchError::UnitHeld { .. }) | Err(DispatchError::WrongStage { .. })), "refused: {refused:?}");
    let ended = rig.until(&id, |s| s.stage.is_final()).await;
    assert_eq!(ended.stage, Stage::Rejected, "{ended:?}");
    assert!(ended.violations.iter().any(|v| v.id == controller::rules::verify::ViolationId::OutOfFridgeLimit), "{ended:?}");
}
