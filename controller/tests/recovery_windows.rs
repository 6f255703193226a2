//! H-04: crash windows (SAFETY.md). A unit reserved for a dispense that did not
//! record it (a crash between the two writes, possible in journals written before
//! they became one transaction) is never left `picked` for ever: recovery asks the
//! store and puts it back in stock. And reserving now writes both at once. A unit
//! the journal says was delivered is looked for in its tray, not assumed there.

use controller::dispense::flow::Resume;
use controller::dispense::status::{DispenseStatus, Stage};
use controller::journal::Journal;
use controller::rules::inventory::UnitState;
use controller::rules::order::PatientOrder;
use hal::BoothId;
use simulator::{SimConfig, SimWorkstation};

mod common;

const STOCK: &str = "[[batch]]\ngtin = \"06901234000016\"\nlot = \"L1\"\nexpiry = \"2030-12-31\"\nserial_prefix = \"S\"\ncount = 2\nfirst_slot = \"R0-0-0\"\n";

fn queued(journal: &Journal, request: &str) -> DispenseStatus {
    queued_for(journal, request, BoothId(1))
}

fn queued_for(journal: &Journal, request: &str, booth: BoothId) -> DispenseStatus {
    let order = PatientOrder::new("P1", "Wang", "HepB", booth, 1, journal.clock().today() - chrono::Duration::days(300));
    common::queued_dispense(journal, request, order)
}

#[tokio::test]
async fn a_unit_reserved_by_a_dispense_that_never_recorded_it_goes_back_to_stock() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = hal::manifest::parse(STOCK).expect("stock");
    let journal = Journal::open(&dir.path().join("journal.db")).expect("journal");
    journal.import_manifest(&manifest).expect("import");
    let unit = journal.all_in_store().expect("stock").remove(0);
    let status = queued(&journal, "crash-after-the-stock-step");
    // The old crash window: the stock step committed, the dispense never updated.
    journal.set_unit_state(&unit.code, UnitState::Picked, &status.id).expect("reserved");

    let sim = SimWorkstation::new(SimConfig { speed: 50.0, booths: 2, ..SimConfig::default() }, &manifest);
    let report = controller::dispense::recovery::recover(&journal, &sim.devices(), true).await.expect("recovers");
    assert_eq!(journal.stock_record(&unit.code).expect("record").expect("known").state, UnitState::InStore, "{report:?}");
    assert!(report.returned_to_stock.contains(&unit.code), "{report:?}");
    // The dispense itself had no unit yet: it resumes queued, under its own id (H-16).
    let resumed: Vec<(String, Resume)> = report.resumed.iter().map(|(s, at)| (s.id.clone(), *at)).collect();
    assert_eq!(resumed, vec![(status.id.clone(), Resume::Queued)]);
}

#[tokio::test]
async fn reserving_writes_the_unit_and_the_dispense_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = Journal::open(&dir.path().join("journal.db")).expect("journal");
    journal.import_manifest(&hal::manifest::parse(STOCK).expect("stock")).expect("import");
    let unit = journal.all_in_store().expect("stock").remove(0);
    let mut status = queued(&journal, "reserve");
    status.unit = Some(controller::journal::unit_info(&unit));
    journal.reserve_unit(&unit.code, &status).expect("reserve");
    let stored = journal.dispense(&status.id).expect("read").expect("known");
    assert_eq!(stored.unit.map(|u| u.code), Some(unit.code.clone()), "the dispense knows its unit");
    let record = journal.stock_record(&unit.code).expect("record").expect("known");
    assert_eq!((record.state, record.dispense_id.as_deref()), (UnitState::Picked, Some(status.id.as_str())));
    assert!(journal.reserve_unit(&unit.code, &status).is_err(), "a unit is reserved once");
}

/// H-04, H-16: recovery asks each booth's tray sensor where a delivered unit is:
/// one still in its tray resumes awaiting validation, a booth scan of it required;
/// one whose tray is empty was taken out by hand and resumes awaiting the nurse's
/// word, not taken to be in the tray.
#[tokio::test]
async fn recovery_asks_the_tray_whether_a_delivered_unit_is_there() {
    use hal::Station;
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = hal::manifest::parse(STOCK).expect("stock");
    let journal = Journal::open(&dir.path().join("journal.db")).expect("journal");
    journal.import_manifest(&manifest).expect("import");
    // The simulated nurse never takes a unit: what is in a tray stays there.
    let mut config = SimConfig { speed: 50.0, booths: 2, ..SimConfig::default() };
    config.timings.nurse_pickup_s = 1e9;
    let sim = SimWorkstation::new(config, &manifest);
    let devices = sim.devices();
    devices.store.home().await.expect("home");
    devices.conveyor.home().await.expect("home");
    let mut delivered = Vec::new();
    for (booth, really_there) in [(BoothId(1), true), (BoothId(2), false)] {
        let unit = journal.all_in_store().expect("stock").remove(0);
        let mut status = queued_for(&journal, &format!("at-{booth}"), booth);
        status.unit = Some(controller::journal::unit_info(&unit));
        journal.reserve_unit(&unit.code, &status).expect("reserve");
        if really_there {
            let carrier = controller::dispense::carriers::carrier_of(&status.id);
            devices.store.pick_to_hatch(unit.slot, carrier).await.expect("pick");
            devices.store.release_to_belt(carrier).await.expect("release");
            devices.conveyor.convey(carrier, Station::Booth(booth)).await.expect("into the tray");
        } else {
            // Delivered, then taken out of the tray by hand before the restart.
            sim.inject(&simulator::injection::Fault::Remove(unit.slot)).expect("gone");
        }
        journal.set_unit_state(&unit.code, UnitState::Delivered, &status.id).expect("delivered");
        status.stage = Stage::AwaitingValidation;
        journal.record_stage(&status).expect("at the booth");
        delivered.push(unit.code);
    }
    let report = controller::dispense::recovery::recover(&journal, &devices, true).await.expect("recovers");
    let resumed: Vec<(Resume, bool)> = report.resumed.iter().map(|(s, at)| (*at, s.booth_scan_required)).collect();
    assert_eq!(resumed, vec![(Resume::InTray, true), (Resume::TakenFromTray, false)], "{report:?}");
    assert_eq!(report.taken_from_tray, vec![delivered[1].clone()], "only the unit not in its tray: {report:?}");
    for code in &delivered {
        let record = journal.stock_record(code).expect("record").expect("known");
        assert_eq!((record.state, record.hold), (UnitState::Delivered, None), "{code} stays delivered until the clinic's word");
    }
}
