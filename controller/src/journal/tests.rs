//! The journal's unit tests: import, request ids, unit states, migrations, holds.

use super::*;
use crate::dispense::status::{DispenseStatus, Stage};
use crate::rules::inventory::{Hold, UnitState};
use crate::rules::order::PatientOrder;
use chrono::Utc;
use hal::BoothId;
use rusqlite::Connection;
use hal::manifest::ManifestUnit;

fn manifest() -> Vec<ManifestUnit> {
    hal::manifest::parse(
        r#"
        [[batch]]
        gtin = "06901234000016"
        lot = "L1"
        expiry = "2027-06-30"
        serial_prefix = "S"
        count = 3
        first_slot = "R0-0-0"
        "#,
    )
    .expect("manifest")
}

fn status(product: &str) -> DispenseStatus {
    DispenseStatus {
        id: String::new(),
        request_id: "r".into(),
        order: PatientOrder::new("P", "N", product, BoothId(1), 1, chrono::NaiveDate::from_ymd_opt(2026, 1, 1).expect("date")),
        stage: Stage::Queued,
        unit: None,
        violations: vec![],
        detail: String::new(),
        created_at: Utc::now(),
        at_booth_at: None,
        finished_at: None,
        administered_by: None,
        administered_site: None,
        booth_scan_required: false,
    }
}

#[test]
fn manifest_import_is_idempotent_and_survives_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("j.db");
    let journal = Journal::open(&path).expect("open");
    assert_eq!(journal.import_manifest(&manifest()).expect("import"), 3);
    assert_eq!(journal.import_manifest(&manifest()).expect("again"), 0);
    drop(journal);
    let journal = Journal::open(&path).expect("reopen");
    let mode: String = journal.conn().pragma_query_value(None, "journal_mode", |r| r.get(0)).expect("pragma");
    assert_eq!(mode, "wal");
    let units = journal.units_in_store(&["06901234000016".into()]).expect("units");
    assert_eq!(units.len(), 3);
    assert!(journal.units_in_store(&["06901234000030".into()]).expect("units").is_empty());
}

#[test]
fn request_ids_are_unique_and_conflicts_detected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = Journal::open(&dir.path().join("j.db")).expect("open");
    let Created::New(id) = journal.create_dispense("r", &status("HepB")).expect("create") else { panic!("new") };
    assert_eq!(journal.create_dispense("r", &status("HepB")).expect("again"), Created::Existing(id.clone()));
    assert_eq!(journal.create_dispense("r", &status("IPV")).expect("conflict"), Created::Conflict(id.clone()));
    assert_eq!(journal.dispense(&id).expect("read").expect("found").order.product_id, "HepB");
    assert_eq!(journal.find_request("r").expect("find"), Some(id));
    assert_eq!(journal.find_request("other").expect("find"), None);
}

#[test]
fn unit_state_changes_are_journalled_and_unknown_units_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = Journal::open(&dir.path().join("j.db")).expect("open");
    journal.import_manifest(&manifest()).expect("import");
    let code = journal.units_in_store(&["06901234000016".into()]).expect("units")[0].code.clone();
    journal.set_unit_state(&code, UnitState::Picked, "D000001").expect("pick");
    let record = journal.stock_record(&code).expect("read").expect("found");
    assert_eq!((record.state, record.dispense_id.as_deref()), (UnitState::Picked, Some("D000001")));
    assert_eq!(journal.entries("D000001").expect("entries").last().map(|e| e.step.as_str()), Some("picked"));
    assert!(matches!(journal.set_unit_state("nope", UnitState::Picked, "D1"), Err(JournalError::Corrupt(_))));
}

#[test]
fn a_version_1_journal_is_migrated_and_keeps_its_units() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("old.db");
    {
        // The schema as version 1 wrote it.
        let conn = Connection::open(&path).expect("open");
        conn.execute_batch(
            "CREATE TABLE stock_units (code TEXT PRIMARY KEY, gtin TEXT NOT NULL, lot TEXT NOT NULL, expiry TEXT NOT NULL,
                 slot TEXT NOT NULL, state TEXT NOT NULL, dispense_id TEXT);
             CREATE TABLE dispenses (id TEXT PRIMARY KEY, request_id TEXT NOT NULL UNIQUE, order_json TEXT NOT NULL,
                 stage TEXT NOT NULL, status_json TEXT NOT NULL, created_at TEXT NOT NULL);
             CREATE TABLE steps (seq INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, dispense_id TEXT, unit_code TEXT,
                 kind TEXT NOT NULL, step TEXT NOT NULL, detail TEXT NOT NULL);
             INSERT INTO stock_units VALUES ('(01)06901234000016(21)OLD', '06901234000016', 'L0', '2027-01-31', 'R0-0-0', 'in_store', NULL);
             PRAGMA user_version = 1;",
        )
        .expect("old schema");
    }
    let journal = Journal::open(&path).expect("migrates");
    let record = journal.stock_record("(01)06901234000016(21)OLD").expect("read").expect("kept");
    assert_eq!((record.hold, record.left_store_at), (None, None));
    journal.record_readings(Utc::now(), &[("cabinet-a".into(), Some(5.0))]).expect("cold-chain tables exist");
    let version: i64 = journal.conn().pragma_query_value(None, "user_version", |r| r.get(0)).expect("version");
    assert_eq!(version, SCHEMA_VERSION);
}

#[test]
fn an_excursion_holds_the_exposed_units_and_alarms_are_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = Journal::open(&dir.path().join("j.db")).expect("open");
    journal.import_manifest(&manifest()).expect("import");
    let other = ["06901234000030".to_owned()];
    let since = Utc::now() - chrono::Duration::hours(1);
    assert_eq!(journal.hold_exposed(Some(&other), since, Hold::FreezeExposed, "freeze").expect("hold"), 0, "no unit of that product");
    assert_eq!(journal.hold_exposed(None, since, Hold::ColdChain, "heat since 08:00").expect("hold"), 3);
    assert_eq!(journal.hold_exposed(None, since, Hold::FreezeExposed, "again").expect("hold"), 0, "held units are not held twice");
    let held = journal.stock_record(&journal.units_in_store(&["06901234000016".into()]).expect("units")[0].code).expect("read").expect("record");
    assert_eq!(held.hold, Some((Hold::ColdChain, "heat since 08:00".into())));

    journal.raise_alarm("heat", Utc::now(), "above 8 °C").expect("raise");
    assert_eq!(journal.active_alarms().expect("alarms").len(), 1);
    journal.clear_alarm("heat", Utc::now()).expect("clear");
    assert!(journal.active_alarms().expect("alarms").is_empty());
}

/// Issue 16: an excursion holds every unit that was in the cabinet during it,
/// wherever it is now (picked, at a gate, in a tray); a unit that left the store
/// before it began, or was already given, is not held.
/// A journal with the manifest's three units: the first picked, the second picked
/// and then moved to `second`; their codes.
fn two_units_out(second: UnitState) -> (tempfile::TempDir, Journal, Vec<String>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = Journal::open(&dir.path().join("j.db")).expect("open");
    journal.import_manifest(&manifest()).expect("import");
    let codes: Vec<String> = journal.all_in_store().expect("stock").into_iter().map(|u| u.code).collect();
    journal.set_unit_state(&codes[0], UnitState::Picked, "D000001").expect("picked");
    journal.set_unit_state(&codes[1], UnitState::Picked, "D000002").expect("picked");
    journal.set_unit_state(&codes[1], second, "D000002").expect("moved on");
    (dir, journal, codes)
}

#[test]
fn an_excursion_holds_exposed_units_wherever_they_are() {
    let held = |journal: &Journal, code: &str| journal.stock_record(code).expect("read").expect("record").hold.is_some();
    let (_dir, journal, codes) = two_units_out(UnitState::Delivered);
    let began_before_they_left = Utc::now() - chrono::Duration::minutes(5);
    assert_eq!(journal.hold_exposed(None, began_before_they_left, Hold::FreezeExposed, "freeze").expect("hold"), 3, "in store, picked and in a tray");
    assert!(codes.iter().all(|c| held(&journal, c)));
    let kind = journal.stock_record(&codes[1]).expect("read").expect("record").hold.map(|(h, _)| h);
    assert_eq!(kind, Some(Hold::FreezeExposed), "held as the excursion says");

    let (_dir, journal, codes) = two_units_out(UnitState::Administered);
    let began_after_they_left = Utc::now() + chrono::Duration::minutes(5);
    assert_eq!(journal.hold_exposed(None, began_after_they_left, Hold::ColdChain, "heat").expect("hold"), 1, "only the unit still in the cabinet");
    assert!(!held(&journal, &codes[0]) && !held(&journal, &codes[1]) && held(&journal, &codes[2]));
}

/// The simulation's crash point: the next N commits are kept, the one after and
/// every later one rolled back (an error to the writer), the crash is signalled
/// once, and what was kept is what a new journal on the file reads.
#[tokio::test]
async fn a_crash_point_keeps_n_commits_and_loses_the_rest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("j.db");
    let journal = Journal::open(&path).expect("open");
    journal.import_manifest(&manifest()).expect("import");
    let codes: Vec<String> = journal.all_in_store().expect("stock").into_iter().map(|u| u.code).collect();
    let fired = journal.crash_after(2);
    journal.set_unit_state(&codes[0], UnitState::Picked, "D000001").expect("first kept");
    journal.set_unit_state(&codes[1], UnitState::Picked, "D000002").expect("second kept");
    assert!(!journal.crashed());
    assert!(journal.set_unit_state(&codes[2], UnitState::Picked, "D000003").is_err(), "the third is lost");
    assert!(journal.crashed());
    tokio::time::timeout(std::time::Duration::from_secs(1), fired.notified()).await.expect("the crash is signalled");
    assert!(journal.note(None, StepKind::Recovery, "after", "later").is_err(), "and every write after it");
    drop(journal);
    let reopened = Journal::open(&path).expect("reopen");
    let state = |code: &str| reopened.stock_record(code).expect("read").expect("record").state;
    assert_eq!([state(&codes[0]), state(&codes[1]), state(&codes[2])], [UnitState::Picked, UnitState::Picked, UnitState::InStore]);
}

/// Allocation reads only the earliest usable expiry's units: FEFO must choose
/// exactly what it chooses from the product's whole stock, whatever the mix of
/// expiries, holds, spent monitors, states and other products.
#[test]
fn the_narrowed_read_chooses_what_the_whole_stock_would() {
    use crate::rules::inventory::choose_fefo;
    use rand::{Rng, SeedableRng};
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = Journal::open(&dir.path().join("j.db")).expect("open");
    let batches: String = (0..12)
        .map(|b| {
            // Two products, each expiry shared by both (ties decided by heat across products).
            let gtin = if b % 2 == 0 { "06901234000030" } else { "06901234000016" };
            format!("[[batch]]\ngtin = \"{gtin}\"\nlot = \"L{b}\"\nexpiry = \"2027-0{}-10\"\nserial_prefix = \"S{b}-\"\ncount = 10\nfirst_slot = \"R{b}-0-0\"\n", 1 + (b / 2) % 4)
        })
        .collect();
    journal.import_manifest(&hal::manifest::parse(&batches).expect("manifest")).expect("import");
    let gtins = vec!["06901234000016".to_owned(), "06901234000030".to_owned()];
    let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
    let mut compared = 0;
    for round in 0..60 {
        let codes: Vec<String> = journal.list_stock(&StockFilter::default(), None, 10_000).expect("list").into_iter().map(|r| r.code).collect();
        for code in &codes {
            let (state, hold, heat) = (
                ["in_store", "in_store", "in_store", "picked", "administered"][rng.random_range(0..5)],
                rng.random_bool(0.2).then_some("recalled"),
                [0.1, 0.3, 0.3, 0.5, 1.2][rng.random_range(0..5)],
            );
            journal.conn().execute("UPDATE stock_units SET state = ?2, hold = ?3, heat_consumed = ?4 WHERE code = ?1", rusqlite::params![code, state, hold, heat]).expect("update");
        }
        // The odometers run too (schema 6): heat is not the column alone.
        journal.add_heat(&[(gtins[0].clone(), UnitState::InStore, 0.01), (gtins[1].clone(), UnitState::InStore, 0.02)]).expect("charge");
        let today = chrono::NaiveDate::from_ymd_opt(2027, 1 + round % 5, 5 + round % 20).expect("date");
        for wanted in [&gtins[..1], &gtins[1..], &gtins[..]] {
            let all = journal.units_in_store(wanted).expect("all");
            let narrowed = journal.earliest_usable_in_store(wanted, today).expect("narrowed");
            assert_eq!(choose_fefo(&narrowed, wanted, today).map(|r| &r.code), choose_fefo(&all, wanted, today).map(|r| &r.code), "round {round}, {wanted:?}, on {today}");
            compared += usize::from(!narrowed.is_empty());
        }
    }
    assert!(compared > 60, "most rounds had a unit to choose ({compared})");
}

/// The vial monitors' odometers (schema 6) give every unit the heat a per-unit
/// ledger would: units stocked at different moments, moved between places at
/// random, charged at random; each reported once, when it reaches its end point.
#[test]
fn odometers_charge_each_unit_as_a_ledger_would() {
    use rand::{Rng, SeedableRng};
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = Journal::open(&dir.path().join("j.db")).expect("open");
    let gtin = "06901234000016".to_owned();
    let places = [UnitState::InStore, UnitState::Picked, UnitState::Delivered];
    let mut rng = rand::rngs::SmallRng::seed_from_u64(11);
    // The reference: each unit's place and heat, charged one by one.
    let mut ledger: std::collections::BTreeMap<String, (UnitState, f64)> = Default::default();
    let mut reported: Vec<String> = Vec::new();
    for round in 0..120 {
        if round % 20 == 0 {
            let batch = format!("[[batch]]\ngtin = \"{gtin}\"\nlot = \"L{round}\"\nexpiry = \"2027-06-30\"\nserial_prefix = \"S{round}-\"\ncount = 5\nfirst_slot = \"R{}-0-0\"\n", round / 20);
            for unit in journal.import_manifest(&hal::manifest::parse(&batch).expect("manifest")).map(|_| journal.units_in_store(&[gtin.clone()]).expect("units")).expect("import") {
                ledger.entry(unit.code).or_insert((UnitState::InStore, 0.0));
            }
        }
        for (code, (place, _)) in ledger.iter_mut() {
            if rng.random_bool(0.1) {
                let to = places[rng.random_range(0..3)];
                journal.conn().execute("UPDATE stock_units SET state = ?2 WHERE code = ?1", rusqlite::params![code, to.as_str()]).expect("move");
                *place = to;
            }
        }
        let shares: Vec<(String, UnitState, f64)> = places.iter().map(|p| (gtin.clone(), *p, rng.random_range(0.0..0.02))).collect();
        let mut expected: Vec<String> = Vec::new();
        for (code, (place, heat)) in ledger.iter_mut() {
            let share = shares.iter().find(|s| s.1 == *place).map_or(0.0, |s| s.2);
            if *heat < 1.0 && *heat + share >= 1.0 {
                expected.push(code.clone());
            }
            *heat += share;
        }
        let spent = journal.add_heat(&shares).expect("charge");
        reported.extend(spent.iter().cloned());
        let mut near_the_line: Vec<&String> = expected.iter().collect();
        near_the_line.retain(|c| (ledger[*c].1 - 1.0).abs() > 1e-9);
        for code in near_the_line {
            assert!(spent.contains(code), "round {round}: {code} reached its end point unreported");
        }
        for (code, (_, heat)) in &ledger {
            let record = journal.stock_record(code).expect("read").expect("record");
            assert!((record.heat_consumed - heat).abs() < 1e-9, "round {round}: {code} has {} of heat, the ledger {heat}", record.heat_consumed);
        }
    }
    let mut once = reported.clone();
    once.sort();
    once.dedup();
    assert_eq!(once.len(), reported.len(), "a unit reported twice: {reported:?}");
    assert!(reported.len() > 5, "some units reached their end point ({})", reported.len());
}

/// A slow read (each row as slow as a cold disk) running on both workers of a
/// two-worker runtime at once must not stall the runtime's other tasks (in the
/// daemon: the devices' heartbeats, which stop motion after 1 s), and a write must
/// go through beside it (WAL readers do not hold the writer).
#[test]
fn slow_reads_hold_neither_the_runtime_nor_the_writer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = std::sync::Arc::new(Journal::open(&dir.path().join("j.db")).expect("journal"));
    let t0 = Utc::now() - chrono::Duration::minutes(10);
    for i in 0..4 {
        journal.record_readings(t0 + chrono::Duration::seconds(i), &[("cabinet-a".into(), Some(5.0))]).expect("reading");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    runtime.block_on(async {
        // A ticker standing in for the heartbeat: the longest gap between its ticks.
        let ticking = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let ticker = tokio::spawn({
            let ticking = ticking.clone();
            async move {
                let mut longest = std::time::Duration::ZERO;
                let mut last = std::time::Instant::now();
                while ticking.load(std::sync::atomic::Ordering::SeqCst) {
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                    longest = longest.max(last.elapsed());
                    last = std::time::Instant::now();
                }
                longest
            }
        });
        let slow_read = |journal: std::sync::Arc<Journal>| {
            tokio::spawn(async move {
                journal.for_each_reading(t0, Utc::now(), |_, _, _| std::thread::sleep(std::time::Duration::from_millis(150))).expect("read")
            })
        };
        let (a, b) = (slow_read(journal.clone()), slow_read(journal.clone()));
        // Both reads are under way (each takes 4 x 150 ms); a write now must not wait for them.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let wrote = std::time::Instant::now();
        let writer = journal.clone();
        tokio::spawn(async move { writer.record_readings(Utc::now(), &[("cabinet-b".into(), Some(5.1))]) }).await.expect("task").expect("write");
        let write_took = wrote.elapsed();
        assert_eq!((a.await.expect("read a"), b.await.expect("read b")), (4, 4));
        ticking.store(false, std::sync::atomic::Ordering::SeqCst);
        let longest = ticker.await.expect("ticker");
        assert!(longest < std::time::Duration::from_millis(300), "the runtime stalled {longest:?} while the journal read");
        assert!(write_took < std::time::Duration::from_millis(300), "the write waited {write_took:?} for the reads");
    });
}

/// The outbox holds an event exactly when the journal holds the event: added in
/// its transaction, gone with it when that transaction does not commit.
#[test]
fn each_event_is_in_the_outbox_with_its_own_transaction_and_never_without_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = Journal::open(&dir.path().join("j.db")).expect("journal");
    journal.import_manifest(&manifest()[..1]).expect("import while off");
    assert_eq!(journal.last_event_seq().expect("read"), 0, "nothing is added while the feed is off");
    journal.enable_outbox();
    journal.import_manifest(&manifest()).expect("import");
    journal.record_readings(Utc::now(), &[("cabinet-a".into(), Some(4.5)), ("belt".into(), None)]).expect("readings");
    journal.hold_batch(None, "L1", Hold::Recalled, "maker's recall", "pharmacist").expect("recall");
    let mut s = status("HepB");
    s.id = match journal.create_dispense("r1", &s).expect("create") {
        Created::New(id) => id,
        other => panic!("{other:?}"),
    };
    journal.record_stage(&s).expect("not final: no event");
    s.stage = Stage::Cancelled;
    journal.record_stage(&s).expect("final");
    let events = journal.events_after(0, 100).expect("outbox");
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["stock", "stock", "readings", "hold", "hold", "hold", "dispense"], "two new units, one sample, three held, one end");
    assert!(events.windows(2).all(|w| w[1].seq == w[0].seq + 1), "consecutive sequence numbers");
    assert_eq!(events.iter().map(|e| &e.id).collect::<std::collections::HashSet<_>>().len(), events.len(), "ids unique");
    assert_eq!(journal.outbox_backlog().expect("backlog").events, 7);
    journal.mark_published(events[2].seq).expect("mark");
    journal.mark_published(events[1].seq).expect("never back");
    assert_eq!(journal.published_seq().expect("read"), events[2].seq);
    assert_eq!(journal.prune_outbox(Utc::now() + chrono::Duration::days(1)).expect("prune"), 3, "only what the broker took is pruned");
    assert_eq!(journal.outbox_backlog().expect("backlog").events, 4);
    // A crash before the commit: neither the unit nor its event is kept.
    journal.crash_after(0);
    let stocked: serde_json::Value = serde_json::from_str(&events[0].data).expect("json");
    let known = journal.stock_record(stocked["unit"].as_str().expect("the event names its unit")).expect("read").expect("unit");
    let record = crate::rules::inventory::StockRecord { code: "(01)06901234000016(21)NEW".into(), slot: "R1-0-0".parse().expect("slot"), ..known };
    assert!(journal.stock_unit(&record, "restock door").is_err(), "the commit was refused");
    assert_eq!(journal.last_event_seq().expect("read"), events.last().expect("some").seq, "no event for what did not happen");
}

/// A range of readings includes both its ends (a fraction of a second too), and
/// a fold's range excludes its end: the cold-chain window and the history pages
/// each get what they ask for.
#[test]
fn reading_ranges_have_the_ends_they_promise() {
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = Journal::open(&dir.path().join("j.db")).expect("journal");
    let t0 = Utc::now();
    let times = [t0, t0 + chrono::Duration::milliseconds(250), t0 + chrono::Duration::milliseconds(1250), t0 + chrono::Duration::seconds(2)];
    for (i, at) in times.iter().enumerate() {
        journal.record_readings(*at, &[(format!("p{i}"), Some(5.0))]).expect("reading");
    }
    let probes = |v: Vec<(chrono::DateTime<Utc>, String, Option<f64>)>| v.into_iter().map(|(_, p, _)| p).collect::<Vec<_>>();
    assert_eq!(probes(journal.readings_between(times[1], times[2]).expect("read")), ["p1", "p2"], "both ends");
    assert_eq!(probes(journal.readings_between(times[0], times[3]).expect("read")), ["p0", "p1", "p2", "p3"]);
    let mut folded = Vec::new();
    journal.for_each_reading(times[1], times[3], |_, p, _| folded.push(p.to_owned())).expect("fold");
    assert_eq!(folded, ["p1", "p2"], "the fold stops before its end");
}
