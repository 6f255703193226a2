//! H-02: the last check is made at the instant of the drop, after every wait
//! (SAFETY.md). A unit waits at its gate, the tray empties, but the restock door
//! stays open past the unit's out-of-fridge limit: when the door closes, the unit
//! goes to the bin, never into the tray. Runs on virtual time.

use controller::dispense::status::{DispenseStatus, Stage};
use controller::dispatch::Dispatcher;
use controller::rules::order::PatientOrder;
use controller::rules::verify::ViolationId;
use hal::BoothId;
use std::time::Duration;

mod common;

async fn until(dispatcher: &Dispatcher, id: &str, done: impl Fn(&DispenseStatus) -> bool) -> DispenseStatus {
    for _ in 0..3_600 {
        let status = dispatcher.get(id).expect("status");
        if done(&status) {
            return status;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    panic!("{id} never got there: {:?}", dispatcher.get(id));
}

/// The workstation on virtual time, two booths, the tests' manifest.
async fn workstation(dir: &std::path::Path) -> common::Assembled {
    common::on_virtual_time(dir, common::MANIFEST, "", "", 2, "2026-06-01T02:00:00Z").await
}

#[tokio::test(start_paused = true)]
async fn a_unit_kept_at_its_gate_past_its_limit_never_drops_into_the_tray() {
    let dir = tempfile::tempdir().expect("tempdir");
    let assembled = workstation(dir.path()).await;
    let (dispatcher, sim) = (assembled.dispatcher.clone(), assembled.simulator.clone().expect("simulated"));
    let born = dispatcher.journal().clock().today() - chrono::Duration::days(300);
    let first = dispatcher.start("first", PatientOrder::new("P1", "First", "HepB", BoothId(1), 1, born)).expect("start").dispense_id;
    let second = dispatcher.start("second", PatientOrder::new("P2", "Second", "HepB", BoothId(1), 1, born)).expect("start").dispense_id;
    until(&dispatcher, &first, |s| s.stage == Stage::AwaitingValidation).await;
    until(&dispatcher, &second, |s| s.detail.contains("gate")).await;

    // The door opens; the patient before is served and the tray empties.
    sim.set_restock_door_open(true);
    dispatcher.confirm_validation(&first, None).expect("validated");
    until(&dispatcher, &first, |s| s.stage == Stage::AwaitingAdministration).await;
    dispatcher.confirm_administration(&first, "nurse-1", None).expect("administered");
    until(&dispatcher, &first, |s| s.stage.is_final()).await;
    // The door stays open 40 minutes: past HepB's 30 minutes out of the fridge.
    tokio::time::sleep(Duration::from_secs(40 * 60)).await;
    sim.set_restock_door_open(false);

    let ended = until(&dispatcher, &second, |s| s.stage.is_final() || s.stage == Stage::AwaitingValidation).await;
    assert_eq!(ended.stage, Stage::Rejected, "{ended:?}");
    assert!(ended.violations.iter().any(|v| v.id == ViolationId::OutOfFridgeLimit), "{ended:?}");
    let into_booth_1 = sim.deliveries().iter().filter(|d| d.booth == BoothId(1)).count();
    assert_eq!(into_booth_1, 1, "only the first patient's unit ever reached the tray: {:?}", sim.deliveries());
}

/// H-02: a unit waiting in its tray goes on being judged. Validated, then left there
/// past its out-of-fridge limit with no administration: the dispense ends rejected,
/// the nurse's late confirmation is refused with a defined reason, and the booth's
/// display says not to give it.
#[tokio::test(start_paused = true)]
async fn a_unit_left_in_its_tray_past_its_limit_is_not_given() {
    let dir = tempfile::tempdir().expect("tempdir");
    let assembled = workstation(dir.path()).await;
    let (dispatcher, sim) = (assembled.dispatcher.clone(), assembled.simulator.clone().expect("simulated"));
    let born = dispatcher.journal().clock().today() - chrono::Duration::days(300);
    let id = dispatcher.start("slow-nurse", PatientOrder::new("P1", "Wang", "HepB", BoothId(2), 1, born)).expect("start").dispense_id;
    until(&dispatcher, &id, |s| s.stage == Stage::AwaitingValidation).await;
    dispatcher.confirm_validation(&id, None).expect("validated");
    until(&dispatcher, &id, |s| s.stage == Stage::AwaitingAdministration).await;

    tokio::time::sleep(Duration::from_secs(35 * 60)).await;
    let ended = until(&dispatcher, &id, |s| s.stage.is_final()).await;
    assert_eq!(ended.stage, Stage::Rejected, "{ended:?}");
    assert!(ended.violations.iter().any(|v| v.id == ViolationId::OutOfFridgeLimit), "{ended:?}");
    assert!(dispatcher.confirm_administration(&id, "nurse-1", None).is_err(), "the late administration is refused");
    let display = sim.booth_display(BoothId(2)).expect("the display shows a warning");
    assert!(display.product_name.starts_with("DO NOT GIVE"), "{display:?}");
}
