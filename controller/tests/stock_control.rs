//! Stock control on simulated hardware: a recalled batch is never picked (FEFO takes
//! the next valid one), a quarantined unit neither, a released hold makes a unit
//! pickable again, and the stock count finds a unit taken out by hand and one put
//! in by hand, and warns of expiries.

use dispense_proto::v1 as pb;
use controller::dispense::workstation::WorkstationState;
use hal::SlotAddress;
use simulator::injection::Fault;

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
    let trace = controller::ops::trace::unit_trace(dispatcher.journal(), &late[0].code).expect("journal").expect("unit");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_in_checks_every_unit_against_the_catalog_and_the_note() {
    use controller::ops::stock::Delivery;
    let dir = tempfile::tempdir().expect("tempdir");
    let hardware = "[hardware]\nkind = \"simulated\"\n[hardware.simulator]\nspeed = 40.0\nbooths = 4\n";
    let (assembled, mut client) = serve_workstation(dir.path(), hardware).await;
    let dispatcher = &assembled.dispatcher;
    let sim = assembled.simulator.clone().expect("simulated");
    let expiry = chrono::NaiveDate::from_ymd_opt(2027, 1, 31).expect("date");
    let gs1 = |serial: &str| format!("]d20106901234000016172701311025A{}21{serial}", '\u{1d}');
    let delivery = Delivery {
        product_id: "HepB".into(),
        lot: "25A".into(),
        expiry,
        arrival_celsius: Some(4.5),
        note: "DN-0042".into(),
        codes: vec![
            gs1("N1"),
            gs1("N2"),
            gs1("N1"),                                                            // twice in the delivery
            "(01)06901234000016(17)270331(10)EARLY(21)HE0001".into(),             // already stocked
            "(01)06901234000030(17)270131(10)25A(21)X1".into(),                   // IPV, not HepB
            "(01)06901234000016(17)270228(10)25A(21)N3".into(),                   // label expiry differs
            "(01)06901234000016(10)25A(21)N4".into(),                             // no expiry
            "(01)06901234000017(17)270131".into(),                                // bad check digit
            "86000010000000000777".into(),                                        // HepB's 20-digit code
        ],
    };
    let report = dispatcher.stock_in(&delivery, "storekeeper-1").await.expect("stock-in");
    let accepted: Vec<&str> = report.accepted.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(accepted, ["(01)06901234000016(17)270131(10)25A(21)N1", "(01)06901234000016(17)270131(10)25A(21)N2", "86000010000000000777"]);
    let why: Vec<&str> = report.rejected.iter().map(|(_, w)| w.as_str()).collect();
    for expected in ["twice in this delivery", "already in the journal", "not the delivered product", "differ from the delivery note", "no expiry", "unreadable code"] {
        assert!(why.iter().any(|w| w.contains(expected)), "{expected} missing from {why:?}");
    }
    assert_eq!(report.rejected.len(), 6);
    let slots: Vec<&str> = report.accepted.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(slots.len(), 3);
    assert!(slots.iter().all(|s| s.parse::<hal::SlotAddress>().is_ok()), "{slots:?}");

    // The storekeeper puts each accepted unit in its slot: the count agrees.
    for (code, slot) in &report.accepted {
        let label = hal::codes::UnitCode::parse(code).map(|c| match c {
            hal::codes::UnitCode::Gs1(g) => g.element_string(),
            hal::codes::UnitCode::Cn20(c) => c.digits,
        }).expect("parses");
        sim.inject(&Fault::Place(slot.parse().expect("slot"), label)).expect("placed");
    }
    assert!(dispatcher.stock_count(30).await.expect("count").discrepancies.is_empty());

    // Warm on arrival: the whole delivery is refused.
    let warm = Delivery { arrival_celsius: Some(11.0), codes: vec![gs1("W1")], ..delivery.clone() };
    let refused = dispatcher.stock_in(&warm, "storekeeper-1").await.expect("stock-in");
    assert!(refused.accepted.is_empty() && refused.rejected[0].1.contains("wrong temperature on arrival"), "{refused:?}");
    let expired = Delivery { expiry: chrono::NaiveDate::from_ymd_opt(2020, 1, 31).expect("date"), codes: vec![gs1("E1")], ..delivery.clone() };
    assert!(dispatcher.stock_in(&expired, "storekeeper-1").await.expect("stock-in").rejected[0].1.contains("expired"));
    assert!(dispatcher.stock_in(&Delivery { codes: vec![], ..delivery.clone() }, "s").await.is_err(), "an empty delivery is a bad request");

    // The new units are stock like any other: the 2027-01-31 units go first (FEFO).
    let id = start(&mut client, "new-stock", order("HepB", 1)).await.dispense_id;
    let at_booth = wait_for(&mut client, &id, pb::DispenseStage::AwaitingValidation).await;
    assert_eq!(at_booth.unit.expect("unit").lot, "25A");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_units_are_ejected_to_the_bin_only_in_maintenance_and_with_the_door_closed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hardware = "[hardware]\nkind = \"simulated\"\n[hardware.simulator]\nspeed = 40.0\nbooths = 4\n";
    let (assembled, mut client) = serve_workstation(dir.path(), hardware).await;
    let dispatcher = &assembled.dispatcher;
    let sim = assembled.simulator.clone().expect("simulated");
    let unit = dispatcher.journal().units_in_store(&[common::HEPB.to_owned()]).expect("units").remove(0);
    dispatcher.quarantine_unit(&unit.code, "vial cracked", "pharmacist-1").expect("quarantine");

    let refused = dispatcher.eject_held(&unit.code, "crew-1").await.expect_err("not in maintenance");
    assert!(refused.to_string().contains("needs it to be in maintenance mode"), "{refused}");
    dispatcher.enter_maintenance("crew-1", "remove cracked vial", std::time::Duration::from_secs(600), false).expect("maintenance");
    assert_eq!(dispatcher.workstation_state(), WorkstationState::Maintenance);
    let order_refused = client.start_dispense(pb::StartDispenseRequest { request_id: "during-maintenance".into(), order: Some(order("HepB", 1)) }).await;
    assert_eq!(order_refused.expect_err("no orders").code(), tonic::Code::Unavailable);

    sim.set_restock_door_open(true);
    let motions = sim.motions_started();
    assert!(dispatcher.eject_held(&unit.code, "crew-1").await.is_err(), "never with an interlock open");
    assert_eq!(sim.motions_started(), motions);
    sim.set_restock_door_open(false);
    let other = dispatcher.journal().units_in_store(&[common::HEPB.to_owned()]).expect("units").into_iter().find(|u| u.hold.is_none()).expect("a sound unit");
    assert!(dispatcher.eject_held(&other.code, "crew-1").await.is_err(), "only held units are ejected");

    dispatcher.eject_held(&unit.code, "crew-1").await.expect("eject");
    assert_eq!(sim.reject_bin().len(), 1, "the unit is physically in the bin");
    let record = dispatcher.journal().stock_record(&unit.code).expect("journal").expect("record");
    assert_eq!(record.state, controller::rules::inventory::UnitState::Rejected);
    assert!(dispatcher.stock_count(30).await.expect("count").discrepancies.is_empty());

    dispatcher.exit_maintenance("crew-1", "done").expect("back in service");
    let id = start(&mut client, "after-maintenance", order("HepB", 1)).await.dispense_id;
    let at_booth = wait_for(&mut client, &id, pb::DispenseStage::AwaitingValidation).await;
    assert_ne!(at_booth.unit.expect("unit").code, unit.code);
}
