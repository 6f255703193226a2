//! Helpers every table family shares: the step log's insert, JSON columns, times.

use crate::journal::error::{JournalError, Result};
use crate::journal::entry::{StepData, StepKind};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};

/// Appends one line to the step log.
#[allow(clippy::too_many_arguments)] // one argument per column
pub(crate) fn insert_step(conn: &Connection, at: DateTime<Utc>, dispense_id: Option<&str>, unit_code: Option<&str>, kind: StepKind, step: &str, detail: &str, data: Option<&StepData>) -> Result<()> {
    conn.exec(
        "INSERT INTO steps (at, dispense_id, unit_code, kind, step, detail, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![at.to_rfc3339(), dispense_id, unit_code, kind.as_str(), step, detail, data.map(to_json)],
    )?;
    Ok(())
}

pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> String {
    // Our own plain data types always serialise.
    serde_json::to_string(value).unwrap_or_else(|e| format!("{{\"unserialisable\":\"{e}\"}}"))
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(json: &str) -> Result<T> {
    serde_json::from_str(json).map_err(|e| JournalError::Corrupt(e.to_string()))
}

pub(crate) fn parse_time(s: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc)).map_err(|e| JournalError::Corrupt(format!("time {s:?}: {e}")))
}

/// Statements by their text, prepared once per connection and kept (SQLite's
/// parser was a tenth of a dispense's cost): the journal runs the same few dozen
/// statements over and over. `Connection::execute` and `query_row` prepare anew
/// on every call; these take the connection's statement cache.
pub(crate) trait Cached {
    fn exec<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;
    fn row<T, P: rusqlite::Params, F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>;
}

impl Cached for Connection {
    fn exec<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    fn row<T, P: rusqlite::Params, F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T> {
        self.prepare_cached(sql)?.query_row(params, f)
    }
}
