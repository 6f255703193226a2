//! A graceful stop (SIGTERM, as systemd sends): the daemon, driving simulated
//! hardware over real wires with dispenses in flight, stops taking orders, lets
//! the motions under way finish, stops, journals it and exits 0; started again, it
//! resumes every dispense and none is ended or any unit quarantined for the stop.

use dispense_proto::v1 as pb;
use std::time::{Duration, Instant};

mod common;
use common::daemon::{clinic, count, returning_clinic, spawn_daemon, wire_rig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_gracefully_and_the_next_start_resumes_everything() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (hardware, config) = wire_rig(dir.path()).await;
    let mut daemon = spawn_daemon(&config);
    let client = common::clinic_client(&daemon.address).await;
    for booth in 1..=3u32 {
        tokio::spawn(clinic(client.clone(), format!("stop-{booth}"), booth));
    }
    // Stop with units on the move: once a unit is on the belt.
    let conn = rusqlite::Connection::open(dir.path().join("journal.db")).expect("journal");
    let moving = "SELECT COUNT(*) FROM dispenses WHERE stage IN ('picking', 'on_belt', 'scanning', 'verifying', 'to_booth')";
    let until = Instant::now() + Duration::from_secs(30);
    while count(&conn, moving) == 0 {
        assert!(Instant::now() < until, "a unit started moving");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = std::process::Command::new("kill").args(["-TERM", &daemon.pid().to_string()]).status().expect("kill runs");
    assert!(status.success());
    let exit = tokio::task::block_in_place(|| daemon.wait_exit(Duration::from_secs(60))).expect("the daemon exited by itself");
    assert!(exit.success(), "a graceful stop exits 0: {exit:?}");
    let stopped: String = conn.query_row("SELECT detail FROM steps WHERE kind = 'maintenance' AND step = 'controller stopped'", [], |r| r.get(0)).expect("the stop is journalled");
    assert!(stopped.contains("every motion finished"), "{stopped}");
    let left = count(&conn, "SELECT COUNT(*) FROM dispenses WHERE stage NOT IN ('administered', 'rejected', 'failed', 'cancelled')");
    assert!(left > 0, "the stop came with dispenses in flight");
    drop(daemon);

    let daemon = spawn_daemon(&config);
    let client = common::clinic_client(&daemon.address).await;
    let open: Vec<String> = common::daemon::open_dispenses(&conn);
    for id in open {
        tokio::spawn(returning_clinic(client.clone(), id, hardware.workstation().clone()));
    }
    let until = Instant::now() + Duration::from_secs(60);
    while count(&conn, "SELECT COUNT(*) FROM dispenses WHERE stage <> 'administered'") > 0 {
        assert!(Instant::now() < until, "every dispense was given after the restart");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM steps WHERE kind = 'recovery' AND step = 'settled'"), 0, "no dispense ended for the stop");
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM steps WHERE kind = 'hold' AND detail LIKE '%(by recovery)'"), 0, "no unit quarantined for the stop");
    let mut dispensing = pb::dispensing_service_client::DispensingServiceClient::new(common::channel(&daemon.address, common::CLINIC).await);
    let queue = dispensing.list_queue(pb::ListQueueRequest::default()).await.expect("serving").into_inner();
    assert!(queue.dispenses.is_empty());
}

/// `--log-format json`: one JSON object per line, and every line a dispense's
/// runner writes carries the dispense's span with its id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_the_dispense_span() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_hardware, config) = wire_rig(dir.path()).await;
    let daemon = common::daemon::spawn_daemon_with(&config, &["--log-format", "json"], "controller=debug");
    let client = common::clinic_client(&daemon.address).await;
    clinic(client, "logged-1".into(), 1).await;
    let until = Instant::now() + Duration::from_secs(10);
    let in_span = loop {
        let lines = daemon.log.lock().expect("log").clone();
        let json: Vec<serde_json::Value> = lines.iter().filter(|l| l.starts_with('{')).map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"))).collect();
        let in_span: Vec<&serde_json::Value> = json.iter().filter(|v| v["span"]["name"] == "dispense").collect();
        if !in_span.is_empty() || Instant::now() > until {
            assert!(json.iter().all(|v| v["level"].is_string() && v["timestamp"].is_string()), "every line a JSON event");
            break in_span.into_iter().cloned().collect::<Vec<_>>();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(!in_span.is_empty(), "the runner's lines carry its span");
    assert!(in_span.iter().all(|v| v["span"]["id"] == "D000001"), "{in_span:?}");
    let accepted = daemon.log.lock().expect("log").iter().any(|l| l.contains("order accepted") && l.contains("\"patient_ref\":\"pt-"));
    assert!(accepted, "the order's log line names the patient by pseudonym");
}
