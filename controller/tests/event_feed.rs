//! The event feed against a real MQTT 5 broker (Debian `mosquitto`, installed by
//! scripts/setup.sh, on a free loopback port) and a city consumer with a
//! persistent session: the daemon, on simulated hardware over real wires, gives
//! doses while the broker is stopped and started again mid-day and while the
//! daemon itself is SIGKILLed mid-feed; in the end the consumer holds every event
//! the journal's outbox recorded, exactly once after deduplication by event id,
//! in the workstation's order.

use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod common;
use common::daemon::{clinic, count, spawn_daemon, wire_rig};

/// A mosquitto process with its config and persistence in a folder of its own.
struct Broker {
    child: Option<Child>,
    dir: PathBuf,
    port: u16,
}

impl Broker {
    fn start(dir: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("addr").port();
        let dir = dir.join("broker");
        std::fs::create_dir_all(&dir).expect("broker dir");
        // Persistence: the consumer's session and the messages queued for it outlive
        // a broker restart, as on a city's broker.
        // Run as root (CI), mosquitto would switch to its own user, which cannot write here.
        let user = String::from_utf8(Command::new("id").arg("-un").output().expect("id runs").stdout).expect("user name").trim().to_owned();
        let conf = format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\nuser {user}\npersistence true\npersistence_location {}/\nmax_queued_messages 0\nlog_dest stderr\nlog_type error\n",
            dir.display()
        );
        std::fs::write(dir.join("mosquitto.conf"), conf).expect("broker config");
        let mut broker = Self { child: None, dir, port };
        broker.run();
        broker
    }

    fn run(&mut self) {
        let program = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"].into_iter().find(|p| Path::new(p).exists()).expect("mosquitto is not installed: run scripts/setup.sh");
        let child = Command::new(program).arg("-c").arg(self.dir.join("mosquitto.conf")).spawn().expect("mosquitto starts");
        self.child = Some(child);
        let until = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < until, "mosquitto listens on {}", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the broker as an operator would (SIGTERM: it saves its sessions).
    fn stop(&mut self) {
        let mut child = self.child.take().expect("running");
        Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill runs");
        child.wait().expect("mosquitto ends");
    }

    fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One message as the consumer got it: its topic and body.
type Received = Arc<Mutex<Vec<(String, Value)>>>;

/// The city's consumer: a persistent MQTT 5 session subscribed to every
/// workstation's events at QoS 1, reconnecting by itself. Returns once subscribed.
async fn consumer(port: u16) -> Received {
    let mut options = MqttOptions::new("city-consumer", "127.0.0.1", port);
    options.set_clean_start(false).set_session_expiry_interval(Some(3_600)).set_keep_alive(Duration::from_secs(5));
    let (client, mut eventloop) = AsyncClient::new(options, 100);
    let received: Received = Arc::default();
    let kept = received.clone();
    let (subscribed_tx, mut subscribed) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(ack))) if !ack.session_present => {
                    client.subscribe("vaccination/#", QoS::AtLeastOnce).await.expect("subscribe");
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    let _ = subscribed_tx.send(true);
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let topic = String::from_utf8_lossy(&p.topic).into_owned();
                    let body: Value = serde_json::from_slice(&p.payload).expect("every message is JSON");
                    kept.lock().expect("received").push((topic, body));
                }
                Ok(_) => {}
                // The broker is away: try again shortly (poll reconnects).
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(10), subscribed.wait_for(|s| *s)).await.expect("subscribed in time").expect("consumer running");
    received
}

/// Polls `done` until it holds, up to `within`.
async fn until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "waited {within:?} for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn has_dispense_end(received: &Received, id: &str) -> bool {
    received.lock().expect("received").iter().any(|(_, b)| b["kind"] == "dispense" && b["data"]["dispense"]["id"] == id)
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
    std::fs::write(
        &config,
        format!("{text}\n[coldchain]\nsample_s = 0.25\n[events]\nbroker = \"{}\"\nsite = \"futian-03\"\nworkstation = \"ws-07\"\nbacklog_fault_events = 5\n", broker.url()),
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
        let (topic, end) = received.iter().find(|(_, b)| b["kind"] == "dispense").expect("a dispense event");
        assert_eq!(topic, "vaccination/futian-03/ws-07/dispense");
        let immunization = &end["data"]["immunization"];
        assert_eq!(immunization["resourceType"], "Immunization");
        assert_eq!(immunization["status"], "completed");
        assert_eq!(immunization["lotNumber"], end["data"]["dispense"]["unit"]["lot"]);
        assert!(end["data"]["dispense"]["patient_ref"].as_str().is_some_and(|r| r.starts_with("pt-")), "{end}");
        assert!(received.iter().any(|(t, b)| t.ends_with("/stock") && b["data"]["source"] == "loading manifest"), "the manifest's stock-in");
        assert!(received.iter().any(|(t, b)| t.ends_with("/readings") && b["data"]["readings"].as_array().is_some_and(|r| !r.is_empty())), "cold-chain readings");
    }

    // The broker stops mid-day: doses go on, their events wait in the outbox, and
    // the backlog is a fault.
    broker.stop();
    clinic(client.clone(), "feed-2".into(), 2).await;
    let backlog_fault = "SELECT COUNT(*) FROM steps WHERE kind = 'fault' AND step = 'raised' AND detail LIKE '%WS-FEED-BACKLOG%'";
    until("the backlog fault", Duration::from_secs(30), || count(&conn, backlog_fault) > 0).await;
    assert!(!has_dispense_end(&received, "D000002"), "nothing reaches the consumer while the broker is away");
    broker.run();
    until("the outage's events", Duration::from_secs(30), || has_dispense_end(&received, "D000002")).await;

    // SIGKILL mid-feed, once the next dose's end is out: the broker acknowledged
    // more than the journal had written down, so the restart publishes some again.
    clinic(client.clone(), "feed-3".into(), 3).await;
    until("the third dose's event", Duration::from_secs(20), || has_dispense_end(&received, "D000003")).await;
    Command::new("kill").args(["-KILL", &daemon.pid().to_string()]).status().expect("kill runs");
    let _ = tokio::task::block_in_place(|| daemon.wait_exit(Duration::from_secs(10))).expect("killed");
    drop(daemon);
    let mut daemon = spawn_daemon(&config);
    let client = common::clinic_client(&daemon.address).await;
    clinic(client, "feed-4".into(), 4).await;
    // A graceful stop flushes the feed.
    Command::new("kill").args(["-TERM", &daemon.pid().to_string()]).status().expect("kill runs");
    let exit = tokio::task::block_in_place(|| daemon.wait_exit(Duration::from_secs(60))).expect("the daemon exited by itself");
    assert!(exit.success(), "{exit:?}");
    let journal = journalled(&conn);
    until("every journalled event", Duration::from_secs(20), || {
        let got: std::collections::HashSet<String> = received.lock().expect("received").iter().map(|(_, b)| b["id"].as_str().unwrap_or_default().to_owned()).collect();
        journal.iter().all(|(id, _)| got.contains(id))
    })
    .await;

    // Deduplicated by id, the consumer's events are the outbox's, in its order.
    let received = received.lock().expect("received").clone();
    let mut seen = std::collections::HashSet::new();
    let unique: Vec<(String, i64)> = received
        .iter()
        .filter(|(_, b)| seen.insert(b["id"].as_str().unwrap_or_default().to_owned()))
        .map(|(_, b)| (b["id"].as_str().unwrap_or_default().to_owned(), b["sequence"].as_i64().unwrap_or(-1)))
        .collect();
    assert_eq!(unique.len(), journal.len(), "as many events as the journal recorded");
    assert_eq!(unique, journal, "the same events, each once, in the workstation's order");
    let ends = count(&conn, "SELECT COUNT(*) FROM dispenses WHERE stage = 'administered'");
    assert_eq!(ends, 4);
    let kinds = |kind: &str| received.iter().filter(|(_, b)| b["kind"] == kind).map(|(_, b)| b["id"].as_str().unwrap_or_default().to_owned()).collect::<std::collections::HashSet<_>>().len();
    assert_eq!(kinds("dispense"), 4, "one end per dispense");
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
