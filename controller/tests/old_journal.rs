//! A journal written by the controller before the step log was typed (schema
//! version 3) is migrated when opened and recovers with nothing lost.
//!
//! `fixtures/journal-v3.db` was made with that controller (commit 830682c): ten
//! HepB units (FX0001…FX0010 in R0-0-0…R0-0-9) on in-process simulated hardware
//! with four booths, eight dispenses, then the controller stopped as if crashed:
//! D000001 administered at booth 1; D000002 validated, awaiting administration
//! (booth 2); D000003 and D000004 at booths 3 and 1 awaiting validation; D000005
//! and D000006 waiting at the gates of booths 2 and 3; D000007 queued with no unit;
//! D000008 just released onto the belt at the hatch. The simulated nurse had taken
//! every delivered unit from its tray. This test rebuilds that physical state on a
//! fresh simulator, opens the old journal with today's code and recovers.

use controller::dispense::flow::Resume;
use controller::dispense::status::Stage;
use controller::journal::{Intent, Journal, Outcome, SCHEMA_VERSION, StepKind};
use controller::rules::inventory::UnitState;
use hal::{BoothId, SlotAddress, Station, TrackingId};
use simulator::injection::Fault;
use simulator::{SimConfig, SimWorkstation};

const STOCK: &str = r#"
[[batch]]
gtin = "06901234000016"
lot = "FIX1"
expiry = "2030-12-31"
serial_prefix = "FX"
count = 10
first_slot = "R0-0-0"
"#;

fn code(serial: u32) -> String {
    format!("(01)06901234000016(17)301231(10)FIX1(21)FX{serial:04}")
}

fn count(conn: &rusqlite::Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).expect("query")
}

#[tokio::test]
async fn a_version_3_journal_is_migrated_and_recovers_with_nothing_lost() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("journal.db");
    std::fs::copy(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/journal-v3.db"), &path).expect("fixture");
    let (steps_before, intents_before) = {
        let conn = rusqlite::Connection::open(&path).expect("open");
        assert_eq!(count(&conn, "PRAGMA user_version"), 3, "the fixture is an old journal");
        (count(&conn, "SELECT COUNT(*) FROM steps"), count(&conn, "SELECT COUNT(*) FROM steps WHERE kind IN ('intent', 'outcome')"))
    };

    // The physical workstation as the crash left it.
    let sim = SimWorkstation::new(SimConfig { speed: 50.0, booths: 4, ..SimConfig::default() }, &hal::manifest::parse(STOCK).expect("stock"));
    let devices = sim.devices();
    devices.store.home().await.expect("home");
    devices.conveyor.home().await.expect("home");
    for delivered in ["R0-0-0", "R0-0-1", "R0-0-2", "R0-0-4"] {
        sim.inject(&Fault::Remove(delivered.parse().expect("slot"))).expect("taken from the tray by the nurse");
    }
    for (slot, carrier, to) in [(SlotAddress::new(0, 0, 3), 5, Some(Station::Gate(BoothId(2)))), (SlotAddress::new(0, 0, 5), 6, Some(Station::Gate(BoothId(3)))), (SlotAddress::new(0, 0, 6), 8, None)] {
        devices.store.pick_to_hatch(slot, TrackingId(carrier)).await.expect("pick");
        devices.store.release_to_belt(TrackingId(carrier)).await.expect("release");
        if let Some(to) = to {
            devices.conveyor.convey(TrackingId(carrier), to).await.expect("to its gate");
        }
    }

    let journal = Journal::open(&path).expect("the old journal opens");
    let report = controller::dispense::recovery::recover(&journal, &devices, true).await.expect("recovers");

    // Migrated: the schema, the stage codes, every intent and outcome typed.
    let conn = rusqlite::Connection::open(&path).expect("open");
    assert_eq!(count(&conn, "PRAGMA user_version"), SCHEMA_VERSION);
    let codes: Vec<String> = Stage::ALL.iter().map(|s| format!("'{}'", s.code())).collect();
    assert_eq!(count(&conn, &format!("SELECT COUNT(*) FROM dispenses WHERE stage NOT IN ({})", codes.join(", "))), 0, "every stage is a code");
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM steps WHERE kind IN ('intent', 'outcome') AND data IS NULL"), 0, "every old intent and outcome is typed");
    assert_eq!(count(&conn, &format!("SELECT COUNT(*) FROM steps WHERE seq <= {steps_before}")), steps_before, "no old line lost");
    assert_eq!(count(&conn, &format!("SELECT COUNT(*) FROM steps WHERE seq <= {steps_before} AND kind IN ('intent', 'outcome')")), intents_before);
    // Waiting at its gate, the unit's last command before the crash is the run
    // into the tray (the runner waits for the booth inside it); recovery's run to
    // the bin comes after.
    let last_intent = journal.entries("D000005").expect("entries").iter().rev().filter(|e| (e.seq as i64) <= steps_before as i64).find_map(|e| e.intent().cloned());
    assert_eq!(last_intent, Some(Intent::Convey { to: Station::Booth(BoothId(2)) }), "the old text became the typed run");
    let d1 = journal.entries("D000001").expect("entries");
    assert!(d1.iter().any(|e| e.outcome() == Some(&Outcome::Passed)), "verification passed, typed");
    assert!(d1.iter().any(|e| e.kind == StepKind::Stage && e.step == "awaiting_administration"), "stage lines as codes");

    // Recovered (H-16): every unfinished dispense resumes where its unit is, none
    // is ended and nothing goes to the bin; every unit is where the journal says.
    assert_eq!(report.settled, 7, "{report:?}");
    let resumed: Vec<(String, Resume)> = report.resumed.iter().map(|(s, at)| (s.id.clone(), *at)).collect();
    let expected = [
        ("D000002", Resume::TakenFromTray),
        ("D000003", Resume::TakenFromTray),
        ("D000004", Resume::TakenFromTray),
        ("D000005", Resume::AtGate),
        ("D000006", Resume::AtGate),
        ("D000007", Resume::Queued),
        ("D000008", Resume::OnBelt),
    ];
    assert_eq!(resumed, expected.map(|(id, at)| (id.to_owned(), at)).to_vec(), "{report:?}");
    assert!(report.ended.is_empty() && report.binned.is_empty(), "{report:?}");
    // The delivered units' trays read empty (the nurse took them): their dispenses
    // wait for the nurse's word, not for a validation of a unit no longer there.
    let mut taken = report.taken_from_tray.clone();
    taken.sort();
    assert_eq!(taken, vec![code(1), code(3), code(5)], "{report:?}");
    assert!(report.lost.is_empty() && report.strays.is_empty() && report.returned_to_stock.is_empty(), "{report:?}");
    assert!(sim.reject_bin().is_empty(), "nothing binned");
    let state = |serial| journal.stock_record(&code(serial)).expect("record").expect("known").state;
    assert_eq!(state(2), UnitState::Administered, "the dose given stays given");
    assert_eq!([4, 6, 7].map(state), [UnitState::Picked; 3], "on the belt, still reserved by their dispenses");
    assert_eq!([8, 9, 10].map(state), [UnitState::InStore; 3]);
    assert_eq!(sim.occupied_slots(), 3, "the slots hold exactly the units in stock");
    assert_eq!(journal.dispense("D000001").expect("d1").expect("known").stage, Stage::Administered);
    let at_gate = journal.dispense("D000005").expect("d5").expect("known");
    assert_eq!((at_gate.stage, at_gate.booth_scan_required), (Stage::ToBooth, false), "{at_gate:?}");
    assert!(at_gate.detail.contains("resumed"), "{}", at_gate.detail);
}
