//! The step log (table `steps`): every command to hardware as an intent before it
//! is sent and its outcome after, stage changes, stock and hold events, operator
//! actions. What recovery, the runner and the scenario accounting read back is
//! typed (`entry`): the line's kind is a `StepKind`, and an intent or an outcome
//! carries its `StepData` as JSON in the `data` column. `step` and `detail` are
//! for people and are never parsed.

use crate::journal::connection::Journal;
use crate::journal::entry::{Entry, Intent, Outcome, StepData, StepKind};
use crate::journal::error::{JournalError, Result};
use crate::journal::rows::{from_json, insert_step, parse_time};
use chrono::{DateTime, Utc};
use rusqlite::params;

/// Proof that an intent was journalled: the motion gate sends nothing without one
/// (H-05), and only this module makes them, each by writing an intent.
#[derive(Debug)]
pub struct Intended {
    _journalled: (),
}

/// The columns [`Journal::query_entries`] reads, in its order.
const SELECT_ENTRY: &str = "SELECT seq, at, dispense_id, unit_code, kind, step, detail, data FROM steps";

impl Journal {
    /// Records a step that belongs to no dispense (recovery, operator actions).
    pub fn note(&self, unit_code: Option<&str>, kind: StepKind, step: &str, detail: &str) -> Result<()> {
        self.write(|conn| {
            insert_step(&*conn, self.now(), None, unit_code, kind, step, detail, None)
        })
    }

    /// Records a fault raised or cleared (`step`), the fault as JSON text (`fault`,
    /// the line's detail as before), and its event for the feed, in one transaction.
    pub fn record_fault(&self, step: &str, fault: &str) -> Result<()> {
        self.write(|conn| {
            let tx = conn.transaction()?;
            insert_step(&tx, self.now(), None, None, StepKind::Fault, step, fault, None)?;
            self.enqueue(&tx, crate::journal::outbox::EventKind::Fault, || {
                let fault: serde_json::Value = serde_json::from_str(fault).unwrap_or_else(|_| serde_json::Value::String(fault.to_owned()));
                serde_json::json!({ "state": step, "fault": fault })
            })?;
            tx.commit()?;
            Ok(())
        })
    }

    /// Records an intent that belongs to no dispense (maintenance motions).
    pub fn note_intent(&self, unit_code: Option<&str>, intent: &Intent, detail: &str) -> Result<Intended> {
        self.write(|conn| {
            insert_step(&*conn, self.now(), None, unit_code, StepKind::Intent, intent.name(), detail, Some(&StepData::Intent(intent.clone())))?;
            Ok(Intended { _journalled: () })
        })
    }

    /// Appends one step to a dispense's log.
    pub fn record(&self, dispense_id: &str, unit_code: Option<&str>, kind: StepKind, step: &str, detail: &str) -> Result<()> {
        self.write(|conn| {
            insert_step(&*conn, self.now(), Some(dispense_id), unit_code, kind, step, detail, None)
        })
    }

    /// Journals a dispense's command before it is sent.
    pub fn record_intent(&self, dispense_id: &str, unit_code: Option<&str>, intent: &Intent) -> Result<Intended> {
        self.write(|conn| {
            insert_step(&*conn, self.now(), Some(dispense_id), unit_code, StepKind::Intent, intent.name(), &intent.describe(), Some(&StepData::Intent(intent.clone())))?;
            Ok(Intended { _journalled: () })
        })
    }

    /// Journals what a dispense's command did; `detail` says it for people.
    pub fn record_outcome(&self, dispense_id: &str, unit_code: Option<&str>, outcome: &Outcome, detail: &str) -> Result<()> {
        self.write(|conn| {
            insert_step(&*conn, self.now(), Some(dispense_id), unit_code, StepKind::Outcome, outcome.name(), detail, Some(&StepData::Outcome(outcome.clone())))
        })
    }

    /// Every step that concerns a unit: its own (stocked, held…) and those of the
    /// dispenses that took it, in order.
    pub fn unit_entries(&self, code: &str) -> Result<Vec<Entry>> {
        self.query_entries(
            &format!("{SELECT_ENTRY} WHERE unit_code = ?1 OR dispense_id IN (SELECT dispense_id FROM steps WHERE unit_code = ?1 AND dispense_id IS NOT NULL) ORDER BY seq"),
            [code],
        )
    }

    /// The step log of one dispense, in order.
    pub fn entries(&self, dispense_id: &str) -> Result<Vec<Entry>> {
        self.query_entries(&format!("{SELECT_ENTRY} WHERE dispense_id = ?1 ORDER BY seq"), [dispense_id])
    }

    /// Every step from `from` to `to` (inclusive), in order: the service desk's export.
    pub fn entries_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<Entry>> {
        self.query_entries(&format!("{SELECT_ENTRY} WHERE at >= ?1 AND at <= ?2 ORDER BY seq"), params![from.to_rfc3339(), to.to_rfc3339()])
    }

    /// Up to `limit` steps from `from` to `to` (inclusive) after the step `after_seq`,
    /// in order: one page of an export.
    pub fn entries_page(&self, from: DateTime<Utc>, to: DateTime<Utc>, after_seq: i64, limit: usize) -> Result<Vec<Entry>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.query_entries(&format!("{SELECT_ENTRY} WHERE seq > ?3 AND at >= ?1 AND at <= ?2 ORDER BY seq LIMIT ?4"), params![from.to_rfc3339(), to.to_rfc3339(), after_seq, limit])
    }

    /// Up to `limit` steps of one kind and name since a time, before the step
    /// `before_seq` (all if `None`), newest first: one page of a history.
    pub fn entries_named_page(&self, kind: StepKind, step: &str, since: DateTime<Utc>, before_seq: Option<i64>, limit: usize) -> Result<Vec<Entry>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.query_entries(
            &format!("{SELECT_ENTRY} WHERE kind = ?1 AND step = ?2 AND at >= ?3 AND seq < ?4 ORDER BY seq DESC LIMIT ?5"),
            params![kind.as_str(), step, since.to_rfc3339(), before_seq.unwrap_or(i64::MAX), limit],
        )
    }

    /// Steps of one kind since a time, newest first (e.g. faults raised and cleared).
    pub fn entries_of_kind(&self, kind: StepKind, since: DateTime<Utc>) -> Result<Vec<Entry>> {
        self.query_entries(&format!("{SELECT_ENTRY} WHERE kind = ?1 AND at >= ?2 ORDER BY seq DESC"), params![kind.as_str(), since.to_rfc3339()])
    }

    fn query_entries(&self, sql: &str, key: impl rusqlite::Params) -> Result<Vec<Entry>> {
        self.read(|conn| {
            type Row = (i64, String, Option<String>, Option<String>, String, String, String, Option<String>);
            let mut stmt = conn.prepare_cached(sql)?;
            let rows = stmt
                .query_map(key, |r| -> rusqlite::Result<Row> { Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?)) })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            rows.into_iter()
                .map(|(seq, at, dispense_id, unit_code, kind, step, detail, data)| {
                    let kind = StepKind::parse(&kind).ok_or_else(|| JournalError::Corrupt(format!("step {seq}: kind {kind:?}")))?;
                    let data = data.map(|json| from_json(&json)).transpose()?;
                    Ok(Entry { seq, at: parse_time(&at)?, dispense_id, unit_code, kind, step, detail, data })
                })
                .collect()
        })
    }
}
