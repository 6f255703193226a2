//! Stock control on simulated hardware: a recalled batch is never picked (FEFO takes
//! the next valid one), a quarantined unit neither, a released hold makes a unit
//! pickable again, and the stock count finds a unit taken out by hand and one put
//! in by hand, and warns of expiries.

use dispense_proto::v1 as pb;
use hal::SlotAddress;
use simulator::faults::Fault;

mod common;
use common::{order, serve_workstation, start, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recall_quarantine_release_and_the_stock_count() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hardware = "[hardware]\nkind = \"simulated\"\n[hardware.simulator]\nspeed = 40.0\nbooths = 4\n";
    let (assembled, mut client) = serve_workstation(dir.path(), hardware).await;
    let dispatcher = &assembled.dispatcher;
    let sim = assembled.simulator.clone().expect("simulated");

    // Bad requests name the field; unknown stock is not found.
    assert!(dispatcher.recall_batch(None, "EARLY", "", "pharmacist-1").expect_err("no reason").to_string().starts_with("reason"));
    assert!(dispatcher.recall_batch(None, "NOSUCH", "supplier notice", "pharmacist-1").expect_err("no batch").to_string().contains("NOSUCH"));
    assert!(dispatcher.quarantine_unit("(01)06901234000016(21)NOPE", "damaged", "p1").is_err());

    // The earliest batch is recalled: FEFO passes it over.
    assert_eq!(dispatcher.recall_batch(Some(common::HEPB), "EARLY", "supplier notice 2026-17", "pharmacist-1").expect("recall"), 2);
    let id = start(&mut client, "after-recall", order("HepB", 1)).await.dispense_id;
    let at_booth = wait_for(&mut client, &id, pb::DispenseStage::AwaitingValidation).await;
    let unit = at_booth.unit.expect("unit");
    assert_eq!(unit.lot, "LATE", "the recalled batch is never picked");

    // The other LATE unit is quarantined, then released after review.
    let late: Vec<_> = dispatcher.journal().units_in_store(&[common::HEPB.to_owned()]).expect("units").into_iter().filter(|u| u.lot == "LATE").collect();
    assert_eq!(late.len(), 1);
    dispatcher.quarantine_unit(&late[0].code, "cap loose", "pharmacist-1").expect("quarantine");
    let id = start(&mut client, "none-left", order("HepB", 2)).await.dispense_id;
    wait_for(&mut client, &id, pb::DispenseStage::Failed).await;
    dispatcher.release_hold(&late[0].code, "cap checked, sound", "pharmacist-2").expect("release");
    assert!(dispatcher.release_hold(&late[0].code, "again", "pharmacist-2").is_err(), "not on hold any more");
    let trace = controller::trace::unit_trace(dispatcher.journal(), &late[0].code).expect("journal").expect("unit");
    assert!(trace.events.iter().any(|e| e.step == "released" && e.detail.contains("pharmacist-2")), "who released it is recorded");

    // The stock count: one unit taken out by hand, one unknown unit put in.
    let report = dispatcher.stock_count(30).await.expect("count");
    assert!(report.discrepancies.is_empty(), "{:?}", report.discrepancies);
    let (mmr_slot, free_slot) = (SlotAddress::new(1, 0, 0), SlotAddress::new(3, 3, 3));
    sim.inject(&Fault::Remove(mmr_slot)).expect("remove");
    sim.inject(&Fault::Place(free_slot, "0106901234000030".into())).expect("place");
    let report = dispatcher.stock_count(30).await.expect("count");
    let found: Vec<String> = report.discrepancies.iter().map(|d| format!("{d:?}")).collect();
    assert_eq!(report.discrepancies.len(), 2, "{found:?}");
    assert!(found.iter().any(|d| d.contains("Missing") && d.contains("R1-0-0")), "{found:?}");
    assert!(found.iter().any(|d| d.contains("Unrecorded") && d.contains("R3-3-3")), "{found:?}");
    assert_eq!(report.held, 2, "the recalled units are still in the store, held");
    let far = dispatcher.stock_count(3_000).await.expect("count");
    assert_eq!(far.expiring.len(), far.in_journal, "with a long window every unit warns");
    assert!(report.expiring.is_empty(), "nothing expires within 30 days");
}
