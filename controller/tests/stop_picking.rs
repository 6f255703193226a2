//! H-08: a failing station stops destroying stock (SAFETY.md). With the camera
//! blurred, after three units in a row are unreadable no further unit leaves the
//! store: a fault with cause and remedy is raised, the orders wait (not failed),
//! and once a crew cleans the camera and clears the fault they are served.

use controller::dispense::status::Stage;
use controller::rules::order::PatientOrder;
use hal::BoothId;
use simulator::injection::{CameraFault, Fault};
use std::time::Duration;

mod common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_unreadable_units_in_a_row_stop_the_picking_until_the_fault_is_cleared() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("stock.toml"),
        "[[batch]]\ngtin = \"06901234000016\"\nlot = \"HB1\"\nexpiry = \"2030-12-31\"\nserial_prefix = \"H\"\ncount = 14\nfirst_slot = \"R0-0-0\"\n",
    )
    .expect("stock");
    let (assembled, _client) = common::serve_workstation(dir.path(), "[hardware]\nkind = \"simulated\"\n[hardware.simulator]\nspeed = 40.0\nbooths = 4\n").await;
    let (dispatcher, sim) = (assembled.dispatcher.clone(), assembled.simulator.clone().expect("simulated"));
    sim.inject(&Fault::Camera(CameraFault::Blur)).expect("blur");
    let born = dispatcher.journal().clock().today() - chrono::Duration::days(300);
    let ids: Vec<String> = (0..12u8)
        .map(|n| dispatcher.start(&format!("blur-{n}"), PatientOrder::new(&format!("P{n}"), "Patient", "HepB", BoothId(n % 4 + 1), 1, born)).expect("start").dispense_id)
        .collect();

    // Three unreadable units in a row raise the fault.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !dispatcher.telemetry().faults.active().iter().any(|f| f.code == "WS-SCAN-STREAK") {
        assert!(tokio::time::Instant::now() < deadline, "no fault after {} units binned", sim.reject_bin().len());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let fault = dispatcher.telemetry().faults.active().into_iter().find(|f| f.code == "WS-SCAN-STREAK").expect("fault");
    assert!(fault.remedy.contains("camera window"), "a remedy the crew can act on: {fault:?}");
    // Units already on their way finish their run; then nothing more leaves the store.
    let settle = tokio::time::Instant::now() + Duration::from_secs(30);
    while dispatcher.queue().iter().any(|s| s.unit.is_some()) {
        assert!(tokio::time::Instant::now() < settle, "units in flight settle: {:?}", dispatcher.queue());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (picks, _) = sim.motion_counts();
    tokio::time::sleep(Duration::from_secs(3)).await; // 2 machine minutes at 40x
    assert_eq!(sim.motion_counts().0, picks, "no unit picked while the fault stands");
    // Three in a row, and the units already on their way to the other booths' gates
    // (one per booth at most): without the control all twelve orders bin twelve.
    assert!(sim.reject_bin().len() <= 3 + 3, "{:?}", sim.reject_bin());
    assert!(sim.occupied_slots() >= 8, "the store is not emptied: {} of 14 left", sim.occupied_slots());
    let waiting: Vec<_> = dispatcher.queue();
    assert!(!waiting.is_empty() && waiting.iter().all(|s| s.stage == Stage::Queued), "the orders wait: {waiting:?}");
    assert!(waiting.iter().any(|s| s.detail.contains("WS-SCAN-STREAK")), "the clinic sees why: {waiting:?}");

    // The crew cleans the camera and clears the fault: the orders are served.
    sim.inject(&Fault::Camera(CameraFault::Clear)).expect("clean");
    dispatcher.telemetry().faults.clear(&fault.id, Some(("crew-1", "camera window cleaned")));
    // Each booth's first waiting order reaches its tray (the one behind it waits for
    // that patient, whom nobody serves here); none of them fails.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let now: Vec<_> = waiting.iter().map(|w| dispatcher.get(&w.id).expect("status")).collect();
        assert!(now.iter().all(|s| !s.stage.is_final()), "served after the fault was cleared, none failed: {now:?}");
        if now.iter().any(|s| s.stage == Stage::AwaitingValidation) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "served after the fault was cleared: {now:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(waiting.iter().all(|w| ids.contains(&w.id)));
}
