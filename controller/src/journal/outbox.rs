//! The event feed's outbox (table `outbox`): each event that matters outside the
//! workstation, added by the journal write that records the event, in the same
//! transaction — so an event is in the outbox if and only if it happened, whatever
//! crash follows — and read back in order by the publisher (`feed`), which marks
//! how far the broker has acknowledged and prunes what it took once it is older
//! than the retention.

use crate::journal::connection::Journal;
use crate::journal::error::{JournalError, Result};
use crate::journal::rows::{Cached, parse_time};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};
use std::sync::atomic::Ordering;

/// What an event is about; the last segment of its MQTT topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A dispense ended (administered, rejected, failed, cancelled).
    Dispense,
    /// A unit was stocked.
    Stock,
    /// A unit was put on hold (recall, quarantine, cold chain) or released.
    Hold,
    /// One cold-chain sample: every probe's reading.
    Readings,
    /// A cold-chain alarm raised or cleared.
    Alarm,
    /// A fault raised or cleared.
    Fault,
}

impl EventKind {
    pub const ALL: [EventKind; 6] = [Self::Dispense, Self::Stock, Self::Hold, Self::Readings, Self::Alarm, Self::Fault];

    /// The stored name, and the topic's last segment.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dispense => "dispense",
            Self::Stock => "stock",
            Self::Hold => "hold",
            Self::Readings => "readings",
            Self::Alarm => "alarm",
            Self::Fault => "fault",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// One event as the outbox holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEvent {
    /// The workstation's sequence number: consecutive, in the order the events happened.
    pub seq: i64,
    /// Made once, when the event was written: what a consumer deduplicates by.
    pub id: String,
    pub kind: EventKind,
    pub at: DateTime<Utc>,
    /// The event's facts, as JSON.
    pub data: String,
}

/// What the broker has not acknowledged yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Backlog {
    pub events: i64,
    /// When the oldest of them happened.
    pub oldest: Option<DateTime<Utc>>,
}

impl Journal {
    /// Turns the outbox on: from now on every event is added to it. Off (the
    /// default) where no feed is configured, so that nothing piles up unread.
    pub fn enable_outbox(&self) {
        self.outbox_on.store(true, Ordering::SeqCst);
    }

    pub fn outbox_enabled(&self) -> bool {
        self.outbox_on.load(Ordering::SeqCst)
    }

    /// Notified after each write that added an event (the publisher waits on it).
    pub fn outbox_signal(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.outbox_added.clone()
    }

    /// Adds an event to the outbox on `conn`, inside the caller's transaction (a
    /// no-op while the outbox is off: `data` is made only when it is on, so a
    /// workstation or a simulation without a feed builds no event).
    pub(crate) fn enqueue(&self, conn: &Connection, kind: EventKind, data: impl FnOnce() -> serde_json::Value) -> Result<()> {
        if !self.outbox_enabled() {
            return Ok(());
        }
        conn.exec("INSERT INTO outbox (kind, at, data) VALUES (?1, ?2, ?3)", params![kind.as_str(), self.now().to_rfc3339(), data().to_string()])?;
        self.outbox_pending.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Up to `limit` events after `seq`, in order.
    pub fn events_after(&self, seq: i64, limit: usize) -> Result<Vec<OutboxEvent>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(|conn| {
            let mut stmt = conn.prepare_cached("SELECT seq, id, kind, at, data FROM outbox WHERE seq > ?1 ORDER BY seq LIMIT ?2")?;
            let rows = stmt
                .query_map(params![seq, limit], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?, r.get::<_, String>(4)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            rows.into_iter()
                .map(|(seq, id, kind, at, data)| {
                    let kind = EventKind::parse(&kind).ok_or_else(|| JournalError::Corrupt(format!("outbox event {seq}: kind {kind:?}")))?;
                    Ok(OutboxEvent { seq, id, kind, at: parse_time(&at)?, data })
                })
                .collect()
        })
    }

    /// The last event the broker acknowledged (0: none yet).
    pub fn published_seq(&self) -> Result<i64> {
        self.read(|conn| Ok(conn.row("SELECT seq FROM outbox_published WHERE one = 1", [], |r| r.get(0))?))
    }

    /// Records that the broker acknowledged every event up to `seq` (never moves back).
    pub fn mark_published(&self, seq: i64) -> Result<()> {
        self.write(|conn| {
            conn.exec("UPDATE outbox_published SET seq = MAX(seq, ?1) WHERE one = 1", [seq])?;
            Ok(())
        })
    }

    /// How many events wait for the broker, and since when.
    pub fn outbox_backlog(&self) -> Result<Backlog> {
        self.read(|conn| {
            let (events, oldest): (i64, Option<String>) = conn.row(
                "SELECT COUNT(*), MIN(at) FROM outbox WHERE seq > (SELECT seq FROM outbox_published WHERE one = 1)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            Ok(Backlog { events, oldest: oldest.map(|t| parse_time(&t)).transpose()? })
        })
    }

    /// The newest event's sequence number (0: none).
    pub fn last_event_seq(&self) -> Result<i64> {
        self.read(|conn| Ok(conn.row("SELECT COALESCE(MAX(seq), 0) FROM outbox", [], |r| r.get(0))?))
    }

    /// Deletes the events the broker acknowledged that happened before `before`;
    /// returns how many. Events still waiting are never deleted: the outbox is
    /// bounded by the retention once the broker is reachable, and its backlog is
    /// a fault while it is not.
    pub fn prune_outbox(&self, before: DateTime<Utc>) -> Result<usize> {
        self.write(|conn| {
            Ok(conn.exec(
                "DELETE FROM outbox WHERE seq <= (SELECT seq FROM outbox_published WHERE one = 1) AND at < ?1",
                [before.to_rfc3339()],
            )?)
        })
    }
}
