//! H-05: no motion is commanded while an interlock is open (SAFETY.md). The e-stop
//! is pressed while a unit is being picked: the unit waits in the hatch, and the
//! next motion (onto the belt) is sent only once the e-stop is released, never with
//! it pressed (the simulated devices count every motion command they had to refuse).

use controller::dispense::status::Stage;
use controller::rules::order::PatientOrder;
use hal::BoothId;
use std::time::Duration;

mod common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_task_reaches_a_device_while_the_estop_is_pressed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (assembled, _client) = common::serve_workstation(dir.path(), "[hardware]\nkind = \"simulated\"\n[hardware.simulator]\nspeed = 10.0\nbooths = 2\n").await;
    let (dispatcher, sim) = (assembled.dispatcher.clone(), assembled.simulator.clone().expect("simulated"));
    let born = dispatcher.journal().clock().today() - chrono::Duration::days(300);
    let id = dispatcher.start("estop", PatientOrder::new("P1", "Wang", "HepB", BoothId(1), 1, born)).expect("start").dispense_id;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while sim.motion_counts().0 == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the pick started");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    sim.set_estop(true); // mid-pick
    let refused_by_the_stop = sim.motions_refused_for_interlock();
    tokio::time::sleep(Duration::from_secs(2)).await; // 20 machine seconds pressed
    assert_eq!(sim.motions_refused_for_interlock(), refused_by_the_stop, "no motion command sent while the e-stop is pressed");
    sim.set_estop(false);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let status = dispatcher.get(&id).expect("status");
        if status.stage.is_final() || status.stage == Stage::AwaitingValidation {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{status:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(sim.motions_refused_for_interlock(), refused_by_the_stop, "nor after");
    assert_eq!(dispatcher.get(&id).expect("status").stage, Stage::AwaitingValidation, "the dispense went on once released");
}

/// A workstation on simulated hardware with one dispense whose unit stands still on
/// the belt, the machine forced into maintenance by `crew-1` around it.
async fn unit_on_the_belt_in_forced_maintenance(dir: &std::path::Path) -> (common::Assembled, simulator::SimWorkstation) {
    let (assembled, _client) = common::serve_workstation(dir, "[hardware]\nkind = \"simulated\"\n[hardware.simulator]\nspeed = 10.0\nbooths = 2\n").await;
    let (dispatcher, sim) = (assembled.dispatcher.clone(), assembled.simulator.clone().expect("simulated"));
    let born = dispatcher.journal().clock().today() - chrono::Duration::days(300);
    dispatcher.start("on-the-belt", PatientOrder::new("P1", "Wang", "HepB", BoothId(1), 1, born)).expect("start");
    let conveyor = sim.devices().conveyor;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while conveyor.units_on_belt().await.expect("belt").is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "the unit reached the belt");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    dispatcher.enter_maintenance("crew-1", "belt looks dirty", Duration::from_secs(600), true).expect("forced");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while conveyor.in_motion().await.expect("belt") {
        assert!(tokio::time::Instant::now() < deadline, "the belt came to rest");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(!conveyor.units_on_belt().await.expect("belt").is_empty(), "the unit waits on the belt");
    (assembled, sim)
}

/// H-05: in forced maintenance with a unit on the belt, the crew's belt motions
/// (jog, homing, the self-test's) are refused by the controller; the picker may move.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_crew_never_moves_the_belt_under_a_unit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (assembled, sim) = unit_on_the_belt_in_forced_maintenance(dir.path()).await;
    let dispatcher = assembled.dispatcher.clone();
    let started = sim.motions_started();
    let jog = dispatcher.jog("crew-1", None, 10).await.expect_err("a belt jog under a unit");
    assert!(jog.to_string().contains("on the belt"), "says why: {jog}");
    let home = dispatcher.maintenance_home("crew-1").await.expect_err("homing under a unit");
    assert!(home.to_string().contains("on the belt"), "says why: {home}");
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    controller::ops::maintenance::self_test(&dispatcher, "crew-1", tx).await.expect("self-test");
    let mut steps = Vec::new();
    while let Ok(step) = rx.try_recv() {
        steps.push(step);
    }
    for name in ["home picker and belt", "belt jog ±10 mm"] {
        let step = steps.iter().find(|s| s.name == name).expect("step");
        assert_eq!(step.outcome, controller::ops::maintenance::Outcome::Skipped, "{step:?}");
        assert!(step.detail.contains("on the belt"), "{step:?}");
    }
    // Only the picker's jog out and back moved.
    assert_eq!(sim.motions_started(), started + 2, "nothing moved for the belt: {steps:?}");
    dispatcher.jog("crew-1", Some(hal::PickerAxis::X), 10).await.expect("the picker may jog");
    assert_eq!(sim.motions_started(), started + 3);
}

/// H-05: a self-test whose maintenance lease lapses part-way moves nothing more:
/// each motion is checked against the lease at the moment it is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lapsed_lease_moves_nothing_more() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (assembled, _client) = common::serve_workstation(dir.path(), "[hardware]\nkind = \"simulated\"\n[hardware.simulator]\nspeed = 10.0\nbooths = 2\n").await;
    let (dispatcher, sim) = (assembled.dispatcher.clone(), assembled.simulator.clone().expect("simulated"));
    dispatcher.enter_maintenance("crew-1", "self-test", Duration::from_millis(500), false).expect("enter");
    // The crew's screen reads one step and then stalls: the test runs on.
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    let test = tokio::spawn({
        let dispatcher = dispatcher.clone();
        async move { controller::ops::maintenance::self_test(&dispatcher, "crew-1", tx).await }
    });
    let first = rx.recv().await.expect("first step");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while dispatcher.maintenance_lease().is_some() {
        assert!(tokio::time::Instant::now() < deadline, "the lease lapsed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started = sim.motions_started();
    let mut steps = vec![first];
    while let Some(step) = rx.recv().await {
        steps.push(step);
    }
    let _ = test.await.expect("self-test task");
    assert_eq!(sim.motions_started(), started, "no motion after the lease lapsed: {steps:?}");
    let home = steps.iter().find(|s| s.name == "home picker and belt").expect("home step");
    assert!(home.detail.contains("lease") || home.detail.contains("maintenance"), "{home:?}");
}

/// H-05: the gate itself, with no controller around it: a motion asked while the
/// e-stop is pressed never reaches the device.
#[tokio::test]
async fn the_gate_refuses_before_the_device_does() {
    use controller::motion::{Authority, Gate, InService, Motion, Mover};
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = controller::journal::Journal::open(&dir.path().join("journal.db")).expect("journal");
    let sim = simulator::SimWorkstation::new(simulator::SimConfig { speed: 50.0, booths: 2, ..simulator::SimConfig::default() }, &[]);
    let devices = sim.devices();
    let gate = Gate::new(&devices, &InService);
    sim.set_estop(true);
    let intended = journal.note_intent(None, &controller::journal::Intent::Home, "test").expect("journalled");
    let refused = gate.send(Authority::Service, &intended, Motion::Home(Mover::Picker)).await.expect_err("refused");
    assert!(refused.to_string().contains("e-stop"), "{refused}");
    assert_eq!(sim.motions_refused_for_interlock(), 0, "the device never saw it");
    sim.set_estop(false);
    gate.send(Authority::Service, &intended, Motion::Home(Mover::Picker)).await.expect("homes");
    let crew = gate.send(Authority::Crew("crew-1"), &intended, Motion::Home(Mover::Picker)).await.expect_err("no lease");
    assert!(crew.to_string().contains("maintenance"), "{crew}");
}
