//! Crash safety: the workstation daemon runs as its own process against simulated
//! hardware on real wires (held by this test, so the physical world outlives the
//! controller), is killed with SIGKILL at many points of a stream of dispenses, and
//! restarted. After every restart it resumes what was in flight (H-16): the clinic
//! comes back, re-opens each dispense still open and answers what it waits for (a
//! validation with a booth scan where the unit lay in its tray). Then: no dispense
//! is left unfinished, none that was queued was ended, the journal has no gap,
//! every unit is where the journal says (the store's slots hold exactly the units
//! it has in stock, every delivered unit is accounted for), and no order is filled
//! twice.

use dispense_proto::v1 as pb;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

mod common;
use common::daemon::{clinic, count, returning_clinic, spawn_daemon, wire_rig};
use common::order;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_controller_anywhere_loses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (hardware, config) = wire_rig(dir.path()).await;

    // Kill points spread over a dispense's life: picking, on the belt, scanning, on
    // the way to the booth, at the booth, and between dispenses.
    let kill_after_ms = [150, 400, 700, 1_000, 1_300, 1_700, 2_100, 2_600, 3_200, 250, 900, 1_500];
    let mut request_ids = Vec::new();
    let mut phases = BTreeSet::new();
    let mut resumed_total = 0;
    let mut restart_to_serving = Vec::new();
    for (round, delay) in kill_after_ms.iter().enumerate() {
        let daemon = spawn_daemon(&config);
        let client = common::clinic_client(&daemon.address).await;
        for booth in 1..=3u32 {
            let request_id = format!("round{round}-booth{booth}");
            request_ids.push(request_id.clone());
            tokio::spawn(clinic(client.clone(), request_id, booth));
        }
        tokio::time::sleep(Duration::from_millis(*delay)).await;
        drop(daemon); // SIGKILL, mid-flight

        // Restart: recovery settles everything, then the daemon is Ready.
        let restarted_at = Instant::now();
        let daemon = spawn_daemon(&config);
        let ready_after = restarted_at.elapsed();
        restart_to_serving.push(ready_after.as_secs_f64());
        let mut client = common::clinic_client(&daemon.address).await;
        let conn = rusqlite::Connection::open(dir.path().join("journal.db")).expect("journal");
        // The clinic comes back to every dispense the restart resumed.
        let open: Vec<String> = common::daemon::open_dispenses(&conn);
        resumed_total += open.len();
        for id in open {
            tokio::spawn(returning_clinic(client.clone(), id, hardware.workstation().clone()));
        }
        let unfinished = "SELECT COUNT(*) FROM dispenses WHERE stage NOT IN ('administered', 'rejected', 'failed', 'cancelled')";
        let deadline = Instant::now() + Duration::from_secs(60);
        while count(&conn, unfinished) > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(count(&conn, unfinished), 0, "round {round}: every resumed dispense ended");
        assert_eq!(count(&conn, "SELECT COUNT(*) FROM steps WHERE kind = 'recovery' AND step = 'settled' AND detail LIKE '%was queued%'"), 0, "round {round}: no queued dispense was ended by a restart");
        assert_eq!(count(&conn, "SELECT MAX(seq) - MIN(seq) + 1 - COUNT(*) FROM steps"), 0, "round {round}: no gap in the journal");
        let world = hardware.workstation();
        let in_store = count(&conn, "SELECT COUNT(*) FROM stock_units WHERE state = 'in_store'");
        assert_eq!(world.occupied_slots() as i64, in_store, "round {round}: the slots hold exactly the units in stock");
        let given_or_in_tray = count(&conn, "SELECT COUNT(*) FROM stock_units WHERE state IN ('administered', 'delivered') OR hold_reason LIKE '%taken from its tray%'");
        if world.deliveries().len() as i64 != given_or_in_tray {
            let delivered: Vec<String> = world.deliveries().iter().map(|d| d.label.clone()).collect();
            let mut stmt = conn.prepare("SELECT code, state, COALESCE(hold_reason, '') FROM stock_units WHERE state NOT IN ('in_store')").expect("sql");
            let rows: Vec<String> = stmt.query_map([], |r| Ok(format!("{} {} {}", r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))).expect("rows").map(|r| r.expect("row")).collect();
            let mut stmt = conn.prepare("SELECT dispense_id, kind, step, detail FROM steps WHERE dispense_id IS NOT NULL ORDER BY seq").expect("sql");
            let steps: Vec<String> = stmt.query_map([], |r| Ok(format!("{} {} {} {}", r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?))).expect("rows").map(|r| r.expect("row")).collect();
            panic!("round {round}: every unit that reached a tray is accounted for: {} deliveries, {given_or_in_tray} in the journal\ndelivered {delivered:#?}\nunits {rows:#?}\nsteps {steps:#?}", delivered.len());
        }
        let binned = count(&conn, "SELECT COUNT(*) FROM stock_units WHERE state = 'rejected' AND (hold_reason IS NULL OR hold_reason NOT LIKE '%taken from its tray%')");
        assert_eq!(world.reject_bin().len() as i64 + world.dropped().len() as i64, binned, "round {round}: every rejected unit is in the bin");
        for row in conn.prepare("SELECT detail FROM steps WHERE kind = 'recovery' AND detail LIKE 'controller restarted%'").expect("sql").query_map([], |r| r.get::<_, String>(0)).expect("rows") {
            let detail = row.expect("row");
            if let Some(phase) = detail.split("was ").nth(1).and_then(|rest| rest.split(';').next()) {
                phases.insert(phase.to_owned());
            }
        }
        // Ready again, and a retried request never fills an order twice.
        let first = &request_ids[request_ids.len() - 3];
        let again = client.start_dispense(pb::StartDispenseRequest { request_id: first.clone(), order: Some(order("HepB", 1)) }).await;
        if let Ok(again) = again {
            assert!(again.into_inner().duplicate, "round {round}: {first} already had its dispense");
        }
        assert!(ready_after < Duration::from_secs(20), "round {round}: ready after {ready_after:?}");
        drop(daemon);
    }
    assert!(phases.len() >= 3, "the kills landed in several phases of a dispense: {phases:?}");
    assert!(resumed_total > 0, "restarts resumed dispenses");
    let conn = rusqlite::Connection::open(dir.path().join("journal.db")).expect("journal");
    let ended = count(&conn, "SELECT COUNT(*) FROM steps WHERE kind = 'recovery' AND step = 'settled'");
    let quarantined = count(&conn, "SELECT COUNT(DISTINCT unit_code) FROM steps WHERE kind = 'hold' AND detail LIKE '%(by recovery)'");
    restart_to_serving.sort_by(f64::total_cmp);
    eprintln!(
        "{} kills: {resumed_total} dispenses resumed, {ended} ended, {quarantined} units quarantined; restart to serving (process start, homing at 25x, recovery) median {:.2} s, max {:.2} s; phases {phases:?}",
        kill_after_ms.len(),
        restart_to_serving[restart_to_serving.len() / 2],
        restart_to_serving[restart_to_serving.len() - 1]
    );
}
