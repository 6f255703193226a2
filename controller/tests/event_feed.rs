//! The event feed against a real MQTT 5 broker (Debian `mosquitto`, installed by
//! scripts/setup.sh, on a free loopback port) and a city consumer with a
//! persistent session: the daemon, on simulated hardware over real wires, gives
//! doses while the broker is stopped and started again mid-day and while the
//! daemon itself is SIGKILLed mid-feed; in the end the consumer holds every event
//! the journal's outbox recorded, exactly once after deduplication by event id,
//! in the workstation's order (H-26).

use std::process::Command;
use std::time::{Duration, Instant};

mod common;
use common::broker::{Broker, Received, consumer};
use common::daemon::{clinic, count, spawn_daemon, wire_rig};

/// Polls `done` until it holds, up to `within`.
async fn until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "waited {within:?} for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn has_dispense_end(received: &Received, id: &str) -> bool {
    received.lock().expect("received").iter().any(|m| m.body["kind"] == "dispense" && m.body["data"]["dispense"]["id"] == id)
}

/// The outbox as the journal holds it: (event id, sequence), in order.
fn journalled(conn: &rusqlite::Connection) -> Vec<(String, i64)> {
    conn.prepare("SELECT id, seq FROM outbox ORDER BY seq").expect("sql").query_map([], |r| Ok((r.get(0)?, r.get(1)?))).expect("rows").map(|r| r.expect("row")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_arrives_exactly_once_in_order_across_a_broker_outage_and_a_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut broker = Broker::start(dir.path());
    let received = consumer(broker.port).await;
    let (_hardware, config) = wire_rig(dir.path()).await;
    let text = std::fs::read_to_string(&config).expect("config");
    let metrics_port = common::broker::free_port();
    std::fs::write(
        &config,
        format!("{text}\n[telemetry]\nmetrics_listen = \"127.0.0.1:{metrics_port}\"\n[coldchain]\nsample_s = 0.25\n[events]\nbroker = \"{}\"\nsite = \"futian-03\"\nworkstation = \"ws-07\"\nbacklog_fault_events = 5\n", broker.url()),
    )
    .expect("config");
    let mut daemon = spawn_daemon(&config);
    let conn = rusqlite::Connection::open(dir.path().join("journal.db")).expect("journal");
    let client = common::clinic_client(&daemon.address).await;

    // A dose while the broker is up: its end comes with its immunization record.
    clinic(client.clone(), "feed-1".into(), 1).await;
    until("the first dose's event", Duration::from_secs(20), || has_dispense_end(&received, "D000001")).await;
    {
        let received = received.lock().expect("received");
        let first = received.iter().find(|m| m.body["kind"] == "dispense").expect("a dispense event");
        let (topic, end) = (&first.topic, &first.body);
        assert_eq!(topic, "vaccination/futian-03/ws-07/dispense");
        let immunization = &end["data"]["immunization"];
        assert_eq!(immunization["resourceType"], "Immunization");
        assert_eq!(immunization["status"], "completed");
        assert_eq!(immunization["lotNumber"], end["data"]["dispense"]["unit"]["lot"]);
        assert!(end["data"]["dispense"]["patient_ref"].as_str().is_some_and(|r| r.starts_with("pt-")), "{end}");
        assert!(received.iter().any(|m| m.topic.ends_with("/stock") && m.body["data"]["source"] == "loading manifest"), "the manifest's stock-in");
        assert!(received.iter().any(|m| m.topic.ends_with("/readings") && m.body["data"]["readings"].as_array().is_some_and(|r| !r.is_empty())), "cold-chain readings");
    }

    // The broker stops mid-day: doses go on, their events wait in the outbox, and
    // the backlog is a fault.
    broker.stop();
    clinic(client.clone(), "feed-2".into(), 2).await;
    let backlog_fault = "SELECT COUNT(*) FROM steps WHERE kind = 'fault' AND step = 'raised' AND detail LIKE '%WS-FEED-BACKLOG%'";
    until("the backlog fault", Duration::from_secs(30), || count(&conn, backlog_fault) > 0).await;
    assert!(!has_dispense_end(&received, "D000002"), "nothing reaches the consumer while the broker is away");
    // The fleet's monitoring sees the backlog and the fault.
    let metrics = common::daemon::scrape(&format!("127.0.0.1:{metrics_port}"), false);
    let backlog: f64 = metrics.lines().find_map(|l| l.strip_prefix("workstation_feed_backlog_events ")).and_then(|v| v.parse().ok()).expect("the backlog gauge");
    assert!(backlog >= 5.0, "backlog {backlog}");
    assert!(metrics.contains("workstation_faults_active{code=\"WS-FEED-BACKLOG\"} 1"), "{metrics}");
    // And a crew or the fleet table asking the workstation (GetStatus).
    let mut maintenance = dispense_proto::v1::maintenance_service_client::MaintenanceServiceClient::new(common::channel(&daemon.address, common::OBSERVER).await);
    let feed = maintenance.get_status(dispense_proto::v1::GetStatusRequest {}).await.expect("status").into_inner().event_feed.expect("a feed is configured");
    assert!(!feed.connected && feed.waiting_events >= 5 && feed.oldest_waiting_time.is_some() && !feed.last_failure.is_empty(), "{feed:?}");
    // The fault stops nothing: a dose is given while it is raised.
    let _ = tokio::time::timeout(Duration::from_secs(60), clinic(client.clone(), "feed-3".into(), 3)).await;
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM dispenses WHERE id = 'D000003' AND stage = 'administered'"), 1, "vaccination goes on without the broker");
    let metrics = common::daemon::scrape(&format!("127.0.0.1:{metrics_port}"), false);
    assert!(metrics.contains("workstation_faults_active{code=\"WS-FEED-BACKLOG\"} 1"), "the fault stood all the while: {metrics}");
    broker.run();
    until("the outage's events", Duration::from_secs(30), || has_dispense_end(&received, "D000002") && has_dispense_end(&received, "D000003")).await;
    let feed = maintenance.get_status(dispense_proto::v1::GetStatusRequest {}).await.expect("status").into_inner().event_feed.expect("a feed");
    assert!(feed.connected && feed.acknowledged_sequence > 0, "{feed:?}");
    // The backlog drained, its fault clears by itself, and the city hears both.
    let cleared = backlog_fault.replace("'raised'", "'cleared'");
    until("the backlog fault to clear", Duration::from_secs(30), || count(&conn, &cleared) > 0).await;
    until("the backlog fault's events", Duration::from_secs(20), || {
        let received = received.lock().expect("received");
        let states = |state: &str| received.iter().any(|m| m.body["kind"] == "fault" && m.body["data"]["state"] == state && m.body["data"]["fault"].to_string().contains("WS-FEED-BACKLOG"));
        states("raised") && states("cleared")
    })
    .await;

    // SIGKILL mid-feed, once the next dose's end is out: the broker acknowledged
    // more than the journal had written down, so the restart publishes some again.
    clinic(client.clone(), "feed-4".into(), 4).await;
    until("the fourth dose's event", Duration::from_secs(20), || has_dispense_end(&received, "D000004")).await;
    Command::new("kill").args(["-KILL", &daemon.pid().to_string()]).status().expect("kill runs");
    let _ = tokio::task::block_in_place(|| daemon.wait_exit(Duration::from_secs(10))).expect("killed");
    drop(daemon);
    let mut daemon = spawn_daemon(&config);
    let client = common::clinic_client(&daemon.address).await;
    clinic(client, "feed-5".into(), 1).await;
    // A graceful stop flushes the feed.
    Command::new("kill").args(["-TERM", &daemon.pid().to_string()]).status().expect("kill runs");
    let exit = tokio::task::block_in_place(|| daemon.wait_exit(Duration::from_secs(60))).expect("the daemon exited by itself");
    assert!(exit.success(), "{exit:?}");
    let journal = journalled(&conn);
    until("every journalled event", Duration::from_secs(20), || {
        let got: std::collections::HashSet<String> = received.lock().expect("received").iter().map(|m| m.body["id"].as_str().unwrap_or_default().to_owned()).collect();
        journal.iter().all(|(id, _)| got.contains(id))
    })
    .await;

    // Deduplicated by id, the consumer's events are the outbox's, in its order.
    let received = received.lock().expect("received").clone();
    let mut seen = std::collections::HashSet::new();
    let unique: Vec<(String, i64)> = received
        .iter()
        .filter(|m| seen.insert(m.body["id"].as_str().unwrap_or_default().to_owned()))
        .map(|m| (m.body["id"].as_str().unwrap_or_default().to_owned(), m.body["sequence"].as_i64().unwrap_or(-1)))
        .collect();
    assert_eq!(unique.len(), journal.len(), "as many events as the journal recorded");
    assert_eq!(unique, journal, "the same events, each once, in the workstation's order");
    let ends = count(&conn, "SELECT COUNT(*) FROM dispenses WHERE stage = 'administered'");
    assert_eq!(ends, 5);
    let kinds = |kind: &str| received.iter().filter(|m| m.body["kind"] == kind).map(|m| m.body["id"].as_str().unwrap_or_default().to_owned()).collect::<std::collections::HashSet<_>>().len();
    assert_eq!(kinds("dispense"), 5, "one end per dispense");
    eprintln!(
        "event feed: {} events journalled, {} messages received ({} repeats), {} after dedup; by kind: dispense {}, stock {}, readings {}, fault {}, alarm {}, hold {}",
        journal.len(),
        received.len(),
        received.len() - unique.len(),
        unique.len(),
        kinds("dispense"),
        kinds("stock"),
        kinds("readings"),
        kinds("fault"),
        kinds("alarm"),
        kinds("hold")
    );
}

/// `mqtts` with a username and password: the feed reaches a TLS listener that
/// wants both, verifying the broker's certificate against the configured CA;
/// with a wrong password it is refused and publishes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_speaks_tls_with_credentials_and_a_wrong_password_delivers_nothing() {
    use controller::feed::{EventsConfig, Feed};
    use controller::journal::Journal;
    use std::sync::Arc;
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let pki = common::pki::Pki::new("city broker CA");
    let server = pki.server();
    for (name, pem) in [("ca.pem", pki.ca_pem()), ("broker.pem", server.cert), ("broker.key", server.key)] {
        std::fs::write(d.join(name), pem).expect("pem");
    }
    let passwords = d.join("passwd");
    let made = Command::new("mosquitto_passwd").args(["-b", "-c"]).arg(&passwords).args(["ws-01", "s3cret"]).status().expect("mosquitto_passwd runs");
    assert!(made.success());
    std::fs::write(d.join("right"), "s3cret\n").expect("password");
    std::fs::write(d.join("wrong"), "guess\n").expect("password");
    let tls_port = common::broker::free_port();
    let broker = Broker::start_with(
        d,
        &format!(
            "listener {tls_port} 127.0.0.1\nallow_anonymous false\npassword_file {}\ncafile {}\ncertfile {}\nkeyfile {}\n",
            passwords.display(),
            d.join("ca.pem").display(),
            d.join("broker.pem").display(),
            d.join("broker.key").display()
        ),
    );
    let received = consumer(broker.port).await;
    let catalog = Arc::new(controller::rules::catalog::Catalog::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/catalog.toml")).expect("catalog"));
    let feed = |workstation: &str, password: &str| {
        let journal = Arc::new(Journal::open(&d.join(format!("{workstation}.db"))).expect("journal"));
        journal.enable_outbox();
        for _ in 0..3 {
            journal.record_readings(journal.now(), &[("cabinet-a".into(), Some(4.4))]).expect("readings");
        }
        let text = format!(
            "broker = \"mqtts://localhost:{tls_port}\"\nsite = \"tls-site\"\nworkstation = \"{workstation}\"\nusername = \"ws-01\"\npassword_file = \"{password}\"\nca = \"ca.pem\"\n"
        );
        let mut config: EventsConfig = toml::from_str(&text).expect("events config");
        config.resolve(d);
        let handle = Feed { journal: journal.clone(), catalog: catalog.clone(), faults: controller::ops::faultboard::FaultBoard::new(journal.clone()), config }.spawn().expect("feed");
        (journal, handle)
    };
    let from = |workstation: &str| received.lock().expect("received").iter().filter(|m| m.topic == format!("vaccination/tls-site/{workstation}/readings")).count();

    let (_journal, good) = feed("ws-01", "right");
    until("three events over TLS", Duration::from_secs(20), || from("ws-01") == 3).await;
    assert!(good.state().borrow().connected);

    let (journal, bad) = feed("ws-02", "wrong");
    let state = bad.state();
    until("the broker refusing the wrong password twice", Duration::from_secs(20), || state.borrow().failures >= 2).await;
    let failure = state.borrow().last_failure.clone().unwrap_or_default();
    assert!(failure.to_lowercase().contains("refused") || failure.contains("BadUserNamePassword") || failure.contains("NotAuthorized"), "{failure}");
    assert_eq!(from("ws-02"), 0, "nothing delivered with the wrong password");
    assert_eq!(journal.outbox_backlog().expect("backlog").events, 3, "and nothing taken as published");
}
