//! The cold chain's tables: every probe reading (`temperatures`) and the alarms
//! with when their condition began (`alarms`).

use crate::journal::rows::Cached;
use crate::journal::connection::Journal;
use crate::journal::error::Result;
use crate::journal::rows::parse_time;
use crate::journal::outbox::EventKind;
use serde_json::json;
use chrono::{DateTime, Utc};
use rusqlite::params;

impl Journal {
    /// Records one cold-chain sample's readings in one transaction (`None`: the probe
    /// could not be read, which is recorded too).
    pub fn record_readings(&self, at: DateTime<Utc>, readings: &[(String, Option<f64>)]) -> Result<()> {
        self.write(|conn| {
            let tx = conn.transaction()?;
            for (probe, celsius) in readings {
                tx.exec("INSERT INTO temperatures (at, probe, celsius) VALUES (?1, ?2, ?3)", params![at.to_rfc3339(), probe, celsius])?;
            }
            // One event per sample, every probe in it (null: could not be read).
            self.enqueue(&tx, EventKind::Readings, || {
                let probes: Vec<_> = readings.iter().map(|(probe, celsius)| json!({ "probe": probe, "celsius": celsius })).collect();
                json!({ "sample_time": at.to_rfc3339(), "readings": probes })
            })?;
            tx.commit()?;
            Ok(())
        })
    }

    /// When the last reading was taken, if any.
    pub fn last_reading_at(&self) -> Result<Option<DateTime<Utc>>> {
        self.write(|conn| {
            let at: Option<String> = conn.row("SELECT MAX(at) FROM temperatures", [], |r| r.get(0))?;
            at.map(|t| parse_time(&t)).transpose()
        })
    }

    /// Every reading from `from` to `to` (both inclusive), oldest first: (time,
    /// probe, °C or unread). A nanosecond past `to` is the first instant after
    /// it, as times are written to the nanosecond.
    pub fn readings_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<(DateTime<Utc>, String, Option<f64>)>> {
        let mut readings = Vec::new();
        self.for_each_reading(from, to + chrono::Duration::nanoseconds(1), |at, probe, celsius| readings.push((at, probe.to_owned(), celsius)))?;
        Ok(readings)
    }

    /// Folds every reading from `from` (inclusive) to `until` (exclusive), oldest
    /// first, into `f` one at a time: a long history is never held whole.
    pub fn for_each_reading(&self, from: DateTime<Utc>, until: DateTime<Utc>, mut f: impl FnMut(DateTime<Utc>, &str, Option<f64>)) -> Result<u64> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached("SELECT at, probe, celsius FROM temperatures WHERE at >= ?1 AND at < ?2 ORDER BY at")?;
            let mut rows = stmt.query(params![from.to_rfc3339(), until.to_rfc3339()])?;
            let mut seen = 0;
            while let Some(row) = rows.next()? {
                let at: String = row.get(0)?;
                let probe: String = row.get(1)?;
                f(parse_time(&at)?, &probe, row.get(2)?);
                seen += 1;
            }
            Ok(seen)
        })
    }

    /// How many readings are recorded (all probes), for summaries and tests.
    pub fn reading_count(&self) -> Result<i64> {
        self.read(|conn| {
            Ok(conn.row("SELECT COUNT(*) FROM temperatures", [], |r| r.get(0))?)
        })
    }

    pub fn raise_alarm(&self, kind: &str, since: DateTime<Utc>, detail: &str) -> Result<i64> {
        self.write(|conn| {
            let tx = conn.transaction()?;
            tx.exec(
                "INSERT INTO alarms (kind, since, raised_at, detail) VALUES (?1, ?2, ?3, ?4)",
                params![kind, since.to_rfc3339(), self.now().to_rfc3339(), detail],
            )?;
            let id = tx.last_insert_rowid();
            self.enqueue(&tx, EventKind::Alarm, || json!({ "alarm": kind, "state": "raised", "since": since.to_rfc3339(), "detail": detail }))?;
            tx.commit()?;
            Ok(id)
        })
    }

    pub fn clear_alarm(&self, kind: &str, at: DateTime<Utc>) -> Result<()> {
        self.write(|conn| {
            let tx = conn.transaction()?;
            let cleared = tx.exec("UPDATE alarms SET cleared_at = ?2 WHERE kind = ?1 AND cleared_at IS NULL", params![kind, at.to_rfc3339()])?;
            if cleared > 0 {
                self.enqueue(&tx, EventKind::Alarm, || json!({ "alarm": kind, "state": "cleared", "clear_time": at.to_rfc3339() }))?;
            }
            tx.commit()?;
            Ok(())
        })
    }

    /// Alarms not yet cleared: (kind, since, detail).
    /// Every alarm raised since `since`, cleared or not: (kind, raised at, cleared at).
    pub fn alarms_since(&self, since: DateTime<Utc>) -> Result<Vec<(String, String, Option<String>)>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached("SELECT kind, raised_at, cleared_at FROM alarms WHERE raised_at >= ?1 ORDER BY id")?;
            let rows = stmt.query_map([since.to_rfc3339()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }

    pub fn active_alarms(&self) -> Result<Vec<(String, String, String)>> {
        self.write(|conn| {
            let mut stmt = conn.prepare_cached("SELECT kind, since, detail FROM alarms WHERE cleared_at IS NULL ORDER BY id")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }
}
