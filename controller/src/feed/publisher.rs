//! The publisher: reads the outbox in order and publishes each event to the MQTT 5
//! broker at QoS 1 (rumqttc), with a window of events awaiting the broker's
//! acknowledgement; records how far the broker acknowledged (the journal's
//! `outbox_published`), so a restart — after a crash too — publishes again from
//! there. At least once: a consumer removes the repeats by event id. Every broker
//! outage starts a fresh connection from the last acknowledged event, so nothing
//! is skipped and the order stays the journal's. Raises the backlog fault while
//! events pile up, and prunes what the broker took once past the retention.

use crate::feed::message::{Identity, body};
use crate::feed::state::FeedState;
use crate::feed::settings::EventsConfig;
use crate::journal::Journal;
use crate::ops::faultboard::{FaultBoard, FaultKind};
use crate::rules::catalog::Catalog;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet, PubAckReason, PublishProperties};
use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions};
use rumqttc::Outgoing;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Events published and not yet acknowledged, at most (MQTT's receive maximum
/// of most brokers is well above it).
const WINDOW: usize = 64;

/// How often the acknowledged position is written down at most: a crash repeats
/// at most this much of the feed (the consumer drops the repeats).
const MARK_EVERY: Duration = Duration::from_secs(1);

/// How often the backlog is judged and the retention applied.
const HOUSEKEEPING: Duration = Duration::from_secs(1);

/// How long an event may wait for the broker's acknowledgement before the
/// connection is given up and made again.
const ACK_TIMEOUT: Duration = Duration::from_secs(30);

/// How often the outbox is pruned past the retention.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// Waits between attempts to reach the broker: from the first to the longest.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(250), Duration::from_secs(10));

/// The fault raised while events wait for the broker too long or too many. It
/// stops nothing: vaccination goes on, the outbox keeps the events, and the
/// publisher retries by itself.
pub const FEED_BACKLOG: crate::ops::faults::FaultDefinition = crate::ops::faults::FaultDefinition {
    code: "WS-FEED-BACKLOG",
    cause: "Events for the city's broker are piling up in the outbox: the broker is unreachable or refuses them",
    remedy: "Check the network to the broker, its address and this workstation's credentials; nothing is lost, the feed catches up by itself",
    policy: crate::ops::faults::Policy::Retry,
};

/// A running feed: ask it to flush and stop, and read its state.
#[derive(Debug, Clone)]
pub struct FeedHandle {
    stop: watch::Sender<Option<Instant>>,
    state: watch::Receiver<FeedState>,
}

impl FeedHandle {
    pub fn state(&self) -> watch::Receiver<FeedState> {
        self.state.clone()
    }

    /// Asks the feed to publish what the outbox holds, until `deadline` at most,
    /// then to disconnect; returns once it stopped, with its last state.
    pub async fn flush_and_stop(&self, deadline: Duration) -> FeedState {
        let _ = self.stop.send(Some(Instant::now() + deadline));
        let mut state = self.state.clone();
        // The sender goes with the task: the channel closes when it ends.
        while state.changed().await.is_ok() {}
        state.borrow().clone()
    }
}

/// Everything the publisher needs.
#[derive(Debug, Clone)]
pub struct Feed {
    pub journal: Arc<Journal>,
    pub catalog: Arc<Catalog>,
    pub faults: FaultBoard,
    pub config: EventsConfig,
}

/// Why a connection ended.
enum Ended {
    /// Asked to stop, and the outbox is flushed (or the deadline passed).
    Stopped,
    /// The broker went away or refused an event; whether it had been reached.
    Lost(String, bool),
}

impl Feed {
    /// Starts the publisher on the runtime. The outbox must already be on.
    pub fn spawn(self) -> anyhow::Result<FeedHandle> {
        let options = self.options()?;
        let (stop, stop_rx) = watch::channel(None);
        let acknowledged = self.journal.published_seq()?;
        let (state_tx, state) = watch::channel(FeedState { acknowledged, ..FeedState::default() });
        tokio::spawn(self.run(options, stop_rx, state_tx));
        Ok(FeedHandle { stop, state })
    }

    fn identity(&self) -> Identity {
        Identity { site: self.config.site.clone(), workstation: self.config.workstation.clone() }
    }

    /// The MQTT options: a clean start each connection (the outbox, not the
    /// broker's session, is what remembers), credentials and TLS as configured.
    fn options(&self) -> anyhow::Result<MqttOptions> {
        let broker = self.config.broker().map_err(anyhow::Error::msg)?;
        let mut options = MqttOptions::new(format!("workstation-{}-{}", self.config.site, self.config.workstation), broker.host, broker.port);
        options.set_clean_start(true).set_keep_alive(Duration::from_secs(15)).set_connection_timeout(5);
        options.set_outgoing_inflight_upper_limit(u16::try_from(WINDOW).unwrap_or(u16::MAX));
        if let Some(user) = &self.config.username {
            let password = match &self.config.password_file {
                Some(file) => std::fs::read_to_string(file).map_err(|e| anyhow::anyhow!("[events] password_file {}: {e}", file.display()))?.trim_end().to_owned(),
                None => String::new(),
            };
            options.set_credentials(user.clone(), password);
        }
        if broker.tls {
            let read = |path: &std::path::Path| std::fs::read(path).map_err(|e| anyhow::anyhow!("[events] {}: {e}", path.display()));
            let ca = self.config.ca.as_deref().ok_or_else(|| anyhow::anyhow!("[events] broker {} is mqtts: set [events] ca to the CA its certificate chains to", self.config.broker))?;
            let client_auth = match (&self.config.client_cert, &self.config.client_key) {
                (Some(cert), Some(key)) => Some((read(cert)?, read(key)?)),
                _ => None,
            };
            options.set_transport(rumqttc::Transport::Tls(rumqttc::TlsConfiguration::Simple { ca: read(ca)?, alpn: None, client_auth }));
        }
        Ok(options)
    }

    async fn run(self, options: MqttOptions, mut stop: watch::Receiver<Option<Instant>>, state: watch::Sender<FeedState>) {
        let mut backoff = BACKOFF.0;
        let mut housekeeping = Housekeeping::default();
        loop {
            let (client, eventloop) = AsyncClient::new(options.clone(), WINDOW);
            match self.connection(&client, eventloop, &mut stop, &state, &mut housekeeping).await {
                Ended::Stopped => break,
                Ended::Lost(why, was_connected) => {
                    state.send_modify(|s| {
                        s.connected = false;
                        s.failures += 1;
                        s.last_failure = Some(why.clone());
                    });
                    if was_connected {
                        backoff = BACKOFF.0;
                        tracing::warn!(broker = %self.config.broker, "event feed: broker lost ({why}); the outbox keeps every event");
                    } else {
                        tracing::debug!(broker = %self.config.broker, "event feed: broker not reached ({why})");
                    }
                    self.housekeeping(&mut housekeeping);
                    // Stopping while the broker is away: nothing more can be flushed.
                    if stop.borrow().is_some() {
                        break;
                    }
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        _ = stop.changed() => {}
                    }
                    backoff = (backoff * 2).min(BACKOFF.1);
                }
            }
        }
        if let Err(e) = self.journal.mark_published(state.borrow().acknowledged) {
            tracing::error!("event feed: the acknowledged position was not recorded: {e}");
        }
    }

    /// One connection: publishes from the last acknowledged event on, until the
    /// broker goes away or the feed is asked to stop.
    async fn connection(&self, client: &AsyncClient, eventloop: EventLoop, stop: &mut watch::Receiver<Option<Instant>>, state: &watch::Sender<FeedState>, housekeeping: &mut Housekeeping) -> Ended {
        let identity = self.identity();
        let signal = self.journal.outbox_signal();
        let acknowledged = state.borrow().acknowledged;
        // Events handed to the client, oldest first.
        let mut window: VecDeque<Pending> = VecDeque::new();
        let (mut events, _driver) = drive(eventloop);
        let mut handed = acknowledged;
        let mut marked = (acknowledged, Instant::now());
        let mut connected = false;
        // Whether the outbox may hold events not yet handed: on connecting, when a
        // write adds one, when acknowledgements make room.
        let mut look = false;
        // The first judgement a second in: a backlog found at start is the connection's to clear.
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + HOUSEKEEPING, HOUSEKEEPING);
        loop {
            if connected && look && window.len() < WINDOW {
                look = false;
                match self.journal.events_after(handed, WINDOW - window.len()) {
                    Ok(events) => {
                        for event in events {
                            let payload = body(&event, &identity, &self.journal, &self.catalog).to_string();
                            let properties = PublishProperties {
                                content_type: Some("application/json".into()),
                                user_properties: vec![("event-id".into(), event.id.clone()), ("sequence".into(), event.seq.to_string())],
                                ..PublishProperties::default()
                            };
                            if let Err(e) = client.try_publish_with_properties(identity.topic(event.kind), QoS::AtLeastOnce, false, payload, properties) {
                                return Ended::Lost(format!("the client refused an event: {e}"), connected);
                            }
                            window.push_back(Pending { seq: event.seq, pkid: None, acked: false, handed: Instant::now() });
                            handed = event.seq;
                        }
                    }
                    Err(e) => tracing::error!("event feed: the outbox could not be read: {e}"),
                }
            }
            let deadline = *stop.borrow();
            if let Some(deadline) = deadline {
                let drained = window.is_empty() && self.journal.last_event_seq().is_ok_and(|last| last <= state.borrow().acknowledged);
                if drained || Instant::now() >= deadline {
                    if connected && client.try_disconnect().is_ok() {
                        // Let the DISCONNECT go out before the connection's task ends.
                        let _ = tokio::time::timeout(Duration::from_secs(1), async {
                            while let Some(Ok(event)) = events.recv().await {
                                if matches!(event, Event::Outgoing(Outgoing::Disconnect)) {
                                    break;
                                }
                            }
                        })
                        .await;
                    }
                    return Ended::Stopped;
                }
            }
            tokio::select! {
                polled = events.recv() => match polled {
                    None => return Ended::Lost("the connection's task ended".into(), connected),
                    Some(Ok(Event::Incoming(Packet::ConnAck(_)))) => {
                        (connected, look) = (true, true);
                        state.send_modify(|s| s.connected = true);
                        tracing::info!(broker = %self.config.broker, from = acknowledged, "event feed: broker reached; publishing from the last acknowledged event");
                    }
                    Some(Ok(Event::Outgoing(Outgoing::Publish(pkid)))) => {
                        // Sent in the order handed: the first without a packet id is this one.
                        if let Some(entry) = window.iter_mut().find(|p| p.pkid.is_none()) {
                            entry.pkid = Some(pkid);
                        }
                    }
                    Some(Ok(Event::Incoming(Packet::PubAck(ack)))) => {
                        if !matches!(ack.reason, PubAckReason::Success | PubAckReason::NoMatchingSubscribers) {
                            return Ended::Lost(format!("the broker refused an event: {:?}", ack.reason), connected);
                        }
                        if let Some(entry) = window.iter_mut().find(|p| p.pkid == Some(ack.pkid) && !p.acked) {
                            entry.acked = true;
                        }
                        look = true;
                        let (mut newest, mut taken) = (None, 0);
                        while window.front().is_some_and(|p| p.acked) {
                            newest = window.pop_front().map(|p| p.seq);
                            taken += 1;
                        }
                        if let Some(seq) = newest {
                            state.send_modify(|s| {
                                s.published += taken;
                                s.acknowledged = seq;
                            });
                            crate::ops::metrics::recorded().feed_published.inc_by(taken);
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Ended::Lost(e.to_string(), connected),
                },
                () = signal.notified(), if window.len() < WINDOW => look = true,
                _ = tick.tick() => {
                    self.housekeeping(housekeeping);
                    // A broker that takes an event and never answers: start again from the last acknowledged.
                    if window.front().is_some_and(|p| p.handed.elapsed() > ACK_TIMEOUT) {
                        return Ended::Lost(format!("no acknowledgement in {ACK_TIMEOUT:?}"), connected);
                    }
                }
                _ = stop.changed() => {}
            }
            // Written down at most once a second (and at the end): a crash repeats at most that much.
            let acknowledged = state.borrow().acknowledged;
            if acknowledged > marked.0 && marked.1.elapsed() >= MARK_EVERY {
                match self.journal.mark_published(acknowledged) {
                    Ok(()) => marked = (acknowledged, Instant::now()),
                    Err(e) => tracing::error!("event feed: the acknowledged position was not recorded: {e}"),
                }
            }
        }
    }

    /// Judges the backlog (raising or clearing its fault) and, now and then,
    /// prunes what the broker took past the retention.
    fn housekeeping(&self, done: &mut Housekeeping) {
        let source = "event feed";
        match self.journal.outbox_backlog() {
            Ok(backlog) => {
                let now = self.journal.now();
                let age = backlog.oldest.map(|t| (now - t).to_std().unwrap_or_default()).unwrap_or_default();
                if backlog.events > self.config.backlog_fault_events || age > self.config.backlog_age_limit() {
                    let detail = format!("{} events wait for the broker {}, the oldest for {} s", backlog.events, self.config.broker, age.as_secs());
                    self.faults.raise(FaultKind::from(FEED_BACKLOG), source, &detail);
                } else {
                    self.faults.clear(&FaultBoard::id(FEED_BACKLOG.code, source), None);
                }
            }
            Err(e) => tracing::error!("event feed: the backlog could not be read: {e}"),
        }
        if done.pruned.is_some_and(|at| at.elapsed() < PRUNE_EVERY) {
            return;
        }
        let before = self.journal.now() - chrono::Duration::from_std(self.config.retention()).unwrap_or(chrono::Duration::days(7));
        match self.journal.prune_outbox(before) {
            Ok(pruned) => {
                done.pruned = Some(Instant::now());
                tracing::debug!(pruned, "event feed: outbox pruned past the retention");
            }
            Err(e) => tracing::error!("event feed: the outbox could not be pruned: {e}"),
        }
    }
}

/// An event handed to the MQTT client and not yet acknowledged.
#[derive(Debug)]
struct Pending {
    seq: i64,
    /// Its packet id, once the client sent it.
    pkid: Option<u16>,
    acked: bool,
    handed: Instant,
}

/// The MQTT connection's task, ended when dropped.
struct Driver(tokio::task::JoinHandle<()>);

impl Drop for Driver {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Drives the MQTT connection in a task of its own and hands over what happens,
/// ending at the first error. Its `poll` must never be cancelled half-way (a
/// connect cut off before the broker's answer makes the next poll connect again
/// beside it), so the publisher waits on this channel, not on the poll.
fn drive(mut eventloop: EventLoop) -> (tokio::sync::mpsc::Receiver<Result<Event, rumqttc::v5::ConnectionError>>, Driver) {
    let (tx, rx) = tokio::sync::mpsc::channel(WINDOW * 2);
    let task = tokio::spawn(async move {
        loop {
            let polled = eventloop.poll().await;
            let failed = polled.is_err();
            if tx.send(polled).await.is_err() || failed {
                break;
            }
        }
    });
    (rx, Driver(task))
}

/// When the housekeeping last pruned the outbox.
#[derive(Debug, Default)]
struct Housekeeping {
    pruned: Option<Instant>,
}
