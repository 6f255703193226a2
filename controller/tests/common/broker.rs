//! A real MQTT broker for the event feed's tests and bench: mosquitto (Debian's,
//! installed by scripts/setup.sh) on a free loopback port with its config and
//! persistence in a folder of its own, and the city's consumer.

use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A mosquitto process with its config and persistence in a folder of its own.
pub struct Broker {
    child: Option<Child>,
    dir: PathBuf,
    pub port: u16,
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("addr").port()
}

impl Broker {
    /// A broker with one plain, anonymous listener on loopback.
    pub fn start(dir: &Path) -> Self {
        Self::start_with(dir, "")
    }

    /// [`Self::start`] with more listeners (each with its own settings), written
    /// after the plain one.
    pub fn start_with(dir: &Path, listeners: &str) -> Self {
        let port = free_port();
        let dir = dir.join("broker");
        std::fs::create_dir_all(&dir).expect("broker dir");
        // Persistence: the consumer's session and the messages queued for it outlive
        // a broker restart, as on a city's broker.
        // Run as root (CI), mosquitto would switch to its own user, which cannot write here.
        let user = String::from_utf8(Command::new("id").arg("-un").output().expect("id runs").stdout).expect("user name").trim().to_owned();
        let conf = format!(
            "per_listener_settings true\nuser {user}\npersistence true\npersistence_location {}/\nmax_queued_messages 0\nlog_dest stderr\nlog_type error\nlistener {port} 127.0.0.1\nallow_anonymous true\n{listeners}",
            dir.display()
        );
        std::fs::write(dir.join("mosquitto.conf"), conf).expect("broker config");
        let mut broker = Self { child: None, dir, port };
        broker.run();
        broker
    }

    pub fn run(&mut self) {
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
    pub fn stop(&mut self) {
        let mut child = self.child.take().expect("running");
        Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill runs");
        child.wait().expect("mosquitto ends");
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    pub fn url(&self) -> String {
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

/// One message as the consumer got it.
#[derive(Debug, Clone)]
pub struct Message {
    pub topic: String,
    pub body: Value,
    /// When it arrived.
    pub arrived: chrono::DateTime<chrono::Utc>,
}

/// What the consumer got, in order of arrival.
pub type Received = Arc<Mutex<Vec<Message>>>;

/// The city's consumer: a persistent MQTT 5 session subscribed to every
/// workstation's events at QoS 1, reconnecting by itself. Returns once subscribed.
pub async fn consumer(port: u16) -> Received {
    let mut options = MqttOptions::new("city-consumer", "127.0.0.1", port);
    options.set_clean_start(false).set_session_expiry_interval(Some(3_600)).set_keep_alive(Duration::from_secs(5));
    let (client, mut eventloop) = AsyncClient::new(options, 1_000);
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
                    kept.lock().expect("received").push(Message { topic, body, arrived: chrono::Utc::now() });
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

