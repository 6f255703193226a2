//! H-09: smaller paths to a wrong unit (SAFETY.md). Stock-in never gives away the
//! slot of a unit picked but not yet settled; a recall by one of a product's GTINs
//! holds the units stocked under its others.

use controller::journal::Journal;
use controller::ops::stock::{Delivery, recall_batch, stock_in};
use controller::rules::catalog::Catalog;
use controller::rules::inventory::{Hold, UnitState};
use simulator::injection::Fault;
use simulator::{SimConfig, SimWorkstation};
use std::path::Path;

mod common;

const STOCK: &str = "[[batch]]\ngtin = \"06901234000016\"\nlot = \"L1\"\nexpiry = \"2030-12-31\"\nserial_prefix = \"S\"\ncount = 2\nfirst_slot = \"R0-0-0\"\n";

fn catalog() -> Catalog {
    Catalog::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/catalog.toml")).expect("catalog")
}

#[tokio::test]
async fn stock_in_does_not_give_away_the_slot_of_a_picked_unit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = hal::manifest::parse(STOCK).expect("stock");
    let journal = Journal::open(&dir.path().join("journal.db")).expect("journal");
    journal.import_manifest(&manifest).expect("import");
    let sim = SimWorkstation::new(SimConfig { speed: 50.0, booths: 2, ..SimConfig::default() }, &manifest);
    // The unit in R0-0-0 was picked: physically gone, its journey not settled.
    let picked = journal.all_in_store().expect("stock").into_iter().find(|u| u.slot.to_string() == "R0-0-0").expect("unit");
    journal.set_unit_state(&picked.code, UnitState::Picked, "D000001").expect("picked");
    sim.inject(&Fault::Remove(picked.slot)).expect("out of its slot");

    let delivery = Delivery {
        product_id: "HepB".into(),
        lot: "L2".into(),
        expiry: chrono::NaiveDate::from_ymd_opt(2030, 12, 31).expect("date"),
        arrival_celsius: Some(5.0),
        codes: vec!["(01)06901234000016(17)301231(10)L2(21)NEW1".into()],
        note: "DN-1".into(),
    };
    let report = stock_in(&journal, &catalog(), sim.devices().store.as_ref(), &delivery, journal.clock().today(), "pharmacy").await.expect("stock-in");
    assert_eq!(report.accepted.len(), 1, "{report:?}");
    assert_ne!(report.accepted[0].1, "R0-0-0", "the picked unit's slot stays its own until settled: {report:?}");
}

#[test]
fn a_recall_by_one_gtin_holds_the_units_of_the_products_other_gtins() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut catalog = catalog();
    let hepb = catalog.products.iter_mut().find(|p| p.id == "HepB").expect("HepB");
    hepb.gtins.push("06901234000092".into());
    let journal = Journal::open(&dir.path().join("journal.db")).expect("journal");
    let two_gtins = "[[batch]]\ngtin = \"06901234000016\"\nlot = \"L1\"\nexpiry = \"2030-12-31\"\nserial_prefix = \"A\"\ncount = 1\nfirst_slot = \"R0-0-0\"\n\n\
                     [[batch]]\ngtin = \"06901234000092\"\nlot = \"L1\"\nexpiry = \"2030-12-31\"\nserial_prefix = \"B\"\ncount = 1\nfirst_slot = \"R0-0-1\"\n";
    journal.import_manifest(&hal::manifest::parse(two_gtins).expect("stock")).expect("import");
    let held = recall_batch(&journal, &catalog, Some("06901234000016"), "L1", "recall notice 7", "pharmacy").expect("recall");
    assert_eq!(held, 2, "both units of the lot, under either GTIN");
    assert!(journal.all_in_store().expect("stock").iter().all(|u| matches!(u.hold, Some((Hold::Recalled, _)))));
}

/// H-09: a patient name the booth display cannot hold is refused with the order,
/// naming the field, before any unit leaves the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_too_long_for_the_booth_display_is_refused_with_the_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (assembled, _client) = common::serve_workstation(dir.path(), "[hardware]\nkind = \"simulated\"\n[hardware.simulator]\nspeed = 40.0\nbooths = 2\n").await;
    let dispatcher = assembled.dispatcher.clone();
    let born = dispatcher.journal().clock().today() - chrono::Duration::days(300);
    let long = "王".repeat(80);
    let refused = dispatcher.start("long-name", controller::rules::order::PatientOrder::new("P1", &long, "HepB", hal::BoothId(1), 1, born));
    match refused {
        Err(controller::dispatch::DispatchError::InvalidArgument { field, reason }) => assert_eq!(field, "order.patient_name", "{reason}"),
        other => panic!("refused naming the field: {other:?}"),
    }
    assert_eq!(assembled.simulator.as_ref().expect("sim").motion_counts().0, 0, "nothing picked");
    dispatcher.start("short-name", controller::rules::order::PatientOrder::new("P1", "王小明", "HepB", hal::BoothId(1), 1, born)).expect("a name that fits");
}
