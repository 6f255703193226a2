//! The run's event log and its digest: every line the journal wrote (time on the
//! virtual clock, dispense, unit, kind, step, detail, typed intent or outcome), in
//! order, hashed with SHA-256. Two runs of one scenario and seed that behave alike
//! have the same digest; `wssim run` prints it.

use controller::journal::{Entry, Journal, JournalError};
use sha2::{Digest, Sha256};

/// The event log of a run from `from` to `to`, one line per journal entry.
pub fn event_log(journal: &Journal, from: chrono::DateTime<chrono::Utc>, to: chrono::DateTime<chrono::Utc>) -> Result<Vec<String>, JournalError> {
    // A day either side: the manifest is imported, and the last samples taken, at the edges.
    let entries = journal.entries_between(from - chrono::Duration::days(1), to + chrono::Duration::days(1))?;
    Ok(entries.iter().map(line).collect())
}

fn line(e: &Entry) -> String {
    let data = e.data.as_ref().and_then(|d| serde_json::to_string(d).ok()).unwrap_or_default();
    format!(
        "{}\t{}\t{}\t{}\t{}\t{}\t{}",
        e.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        e.dispense_id.as_deref().unwrap_or("-"),
        e.unit_code.as_deref().unwrap_or("-"),
        e.kind.as_str(),
        e.step,
        e.detail.replace(['\t', '\n'], " "),
        data
    )
}

/// SHA-256 of the event log, hex.
pub fn digest(log: &[String]) -> String {
    let mut hash = Sha256::new();
    for line in log {
        hash.update(line.as_bytes());
        hash.update(b"\n");
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}
