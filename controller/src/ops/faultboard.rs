//! The board of active faults: what is wrong now, each with its code, cause and
//! remedy, published to every watcher and journalled when raised and when cleared
//! (so past faults come back from the journal). A condition raises its fault again
//! while it lasts; the board journals only the first time.

use crate::journal::{Journal, JournalError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tokio::sync::watch;

/// One fault occurrence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActiveFault {
    /// `CODE@source`: one occurrence per code and source at a time.
    pub id: String,
    pub code: String,
    pub source: String,
    pub cause: String,
    pub remedy: String,
    pub detail: String,
    pub raised_at: DateTime<Utc>,
    pub cleared_at: Option<DateTime<Utc>>,
    pub cleared_by: Option<String>,
}

/// What a fault is, before it is raised.
#[derive(Debug, Clone, Copy)]
pub struct FaultKind<'a> {
    pub code: &'a str,
    pub cause: &'a str,
    pub remedy: &'a str,
}

impl From<crate::ops::faults::FaultDefinition> for FaultKind<'static> {
    fn from(d: crate::ops::faults::FaultDefinition) -> Self {
        Self { code: d.code, cause: d.cause, remedy: d.remedy }
    }
}

/// The journal kind of fault lines.
pub const JOURNAL_KIND: crate::journal::StepKind = crate::journal::StepKind::Fault;

#[derive(Debug, Clone)]
pub struct FaultBoard {
    journal: Arc<Journal>,
    active: watch::Sender<Vec<ActiveFault>>,
}

impl FaultBoard {
    pub fn new(journal: Arc<Journal>) -> Self {
        Self { journal, active: watch::channel(Vec::new()).0 }
    }

    /// The id of a fault's occurrence: `CODE@source`.
    pub fn id(code: &str, source: &str) -> String {
        format!("{code}@{source}")
    }

    /// Raises a fault; if it is already active only its detail is updated.
    pub fn raise(&self, kind: FaultKind<'_>, source: &str, detail: &str) {
        let id = Self::id(kind.code, source);
        let mut raised = None;
        self.active.send_if_modified(|faults| {
            if let Some(existing) = faults.iter_mut().find(|f| f.id == id) {
                let changed = existing.detail != detail;
                existing.detail = detail.to_owned();
                return changed;
            }
            let fault = ActiveFault {
                id: id.clone(),
                code: kind.code.to_owned(),
                source: source.to_owned(),
                cause: kind.cause.to_owned(),
                remedy: kind.remedy.to_owned(),
                detail: detail.to_owned(),
                raised_at: self.journal.now(),
                cleared_at: None,
                cleared_by: None,
            };
            raised = Some(fault.clone());
            faults.push(fault);
            true
        });
        if let Some(fault) = raised {
            tracing::warn!(fault = fault.id, cause = fault.cause, remedy = fault.remedy, "fault raised: {detail}");
            self.journal_line("raised", &fault);
        }
    }

    /// Clears an active fault: by a person (`by`, with a reason) or because its
    /// condition ended (`None`). Returns it as cleared, or `None` if it was not active.
    pub fn clear(&self, id: &str, by: Option<(&str, &str)>) -> Option<ActiveFault> {
        let mut cleared = None;
        self.active.send_if_modified(|faults| {
            let Some(at) = faults.iter().position(|f| f.id == id) else { return false };
            let mut fault = faults.remove(at);
            fault.cleared_at = Some(self.journal.now());
            if let Some((actor, reason)) = by {
                fault.cleared_by = Some(actor.to_owned());
                fault.detail = format!("{} — cleared: {reason}", fault.detail);
            }
            cleared = Some(fault);
            true
        });
        if let Some(fault) = &cleared {
            tracing::info!(fault = fault.id, by = ?fault.cleared_by, "fault cleared");
            self.journal_line("cleared", fault);
        }
        cleared
    }

    /// Clears every active fault of a code and source prefix whose condition is gone.
    pub fn clear_unless(&self, code_prefix: &str, source: &str, still: &[String]) {
        let gone: Vec<String> = self
            .active()
            .into_iter()
            .filter(|f| f.source == source && f.code.starts_with(code_prefix) && !still.contains(&f.code))
            .map(|f| f.id)
            .collect();
        for id in gone {
            self.clear(&id, None);
        }
    }

    pub fn active(&self) -> Vec<ActiveFault> {
        self.active.borrow().clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<Vec<ActiveFault>> {
        self.active.subscribe()
    }

    /// Faults cleared since `since`, newest first, from the journal.
    pub fn past(&self, since: DateTime<Utc>) -> Result<Vec<ActiveFault>, JournalError> {
        let entries = self.journal.entries_of_kind(JOURNAL_KIND, since)?;
        Ok(entries.into_iter().filter(|e| e.step == "cleared").filter_map(|e| serde_json::from_str(&e.detail).ok()).collect())
    }

    /// Up to `limit` faults cleared since `since`, newest first, before the
    /// journal line `before_seq` (from the start if `None`): one page, each with
    /// its journal line's number (where the next page starts).
    pub fn past_page(&self, since: DateTime<Utc>, before_seq: Option<i64>, limit: usize) -> Result<Vec<(i64, ActiveFault)>, JournalError> {
        let entries = self.journal.entries_named_page(JOURNAL_KIND, "cleared", since, before_seq, limit)?;
        Ok(entries.into_iter().filter_map(|e| Some((e.seq, serde_json::from_str(&e.detail).ok()?))).collect())
    }

    fn journal_line(&self, step: &str, fault: &ActiveFault) {
        let json = serde_json::to_string(fault).unwrap_or_default();
        if let Err(e) = self.journal.record_fault(step, &json) {
            tracing::error!("fault {} not journalled: {e}", fault.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raised_once_cleared_once_and_remembered() {
        let dir = tempfile::tempdir().expect("tempdir");
        let journal = Arc::new(Journal::open(&dir.path().join("j.db")).expect("journal"));
        let board = FaultBoard::new(journal.clone());
        let kind = FaultKind { code: "WS-JAM", cause: "jam", remedy: "clear it" };
        let watcher = board.subscribe();
        board.raise(kind, "conveyor", "unit 7 stuck");
        board.raise(kind, "conveyor", "unit 7 stuck");
        assert!(watcher.has_changed().expect("open"));
        assert_eq!(board.active().len(), 1);
        assert!(board.clear("WS-JAM@nowhere", None).is_none());
        let cleared = board.clear("WS-JAM@conveyor", Some(("crew-1", "belt cleared"))).expect("was active");
        assert_eq!(cleared.cleared_by.as_deref(), Some("crew-1"));
        assert!(board.active().is_empty());
        let past = board.past(Utc::now() - chrono::Duration::hours(1)).expect("journal");
        assert_eq!(past.len(), 1);
        assert!(past[0].detail.contains("belt cleared"));
        let raised = journal.entries_of_kind(JOURNAL_KIND, Utc::now() - chrono::Duration::hours(1)).expect("journal");
        assert_eq!(raised.iter().filter(|e| e.step == "raised").count(), 1, "raised once, however often the condition repeats");
    }
}
