//! The run's event log and its digest: every line the journal wrote (time on the
//! virtual clock, dispense, unit, kind, step, detail, typed intent or outcome), in
//! order, hashed with SHA-256. Two runs of one scenario and seed that behave alike
//! have the same digest; `wssim run` prints it. Patients' pseudonyms are keyed by
//! a secret each journal makes at random, so the log numbers them in order of first
//! appearance instead (`pt#1`, `pt#2`…): the same patients, the same log.

use controller::journal::{Entry, Journal, JournalError};
use sha2::{Digest, Sha256};

/// The event log of a run from `from` to `to`, one line per journal entry.
pub fn event_log(journal: &Journal, from: chrono::DateTime<chrono::Utc>, to: chrono::DateTime<chrono::Utc>) -> Result<Vec<String>, JournalError> {
    // A day either side: the manifest is imported, and the last samples taken, at the edges.
    let entries = journal.entries_between(from - chrono::Duration::days(1), to + chrono::Duration::days(1))?;
    let mut seen: Vec<String> = Vec::new();
    Ok(entries.iter().map(|e| numbered_pseudonyms(&line(e), &mut seen)).collect())
}

/// `text` with each pseudonym (`pt-` and 12 hex digits) replaced by its number in
/// `seen`, the pseudonyms met so far.
fn numbered_pseudonyms(text: &str, seen: &mut Vec<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("pt-") {
        let candidate = rest[at + 3..].get(..12).filter(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()));
        out.push_str(&rest[..at]);
        match candidate {
            Some(hex) => {
                let n = seen.iter().position(|s| s == hex).unwrap_or_else(|| {
                    seen.push(hex.to_owned());
                    seen.len() - 1
                });
                out.push_str(&format!("pt#{}", n + 1));
                rest = &rest[at + 15..];
            }
            None => {
                out.push_str("pt-");
                rest = &rest[at + 3..];
            }
        }
    }
    out.push_str(rest);
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonyms_are_numbered_in_order_of_first_appearance() {
        let mut seen = Vec::new();
        assert_eq!(numbered_pseudonyms("HepB dose 1 for booth 2, patient pt-0123456789ab", &mut seen), "HepB dose 1 for booth 2, patient pt#1");
        assert_eq!(numbered_pseudonyms("pt-ffffffffffff then pt-0123456789ab; pt-short", &mut seen), "pt#2 then pt#1; pt-short");
    }
}
