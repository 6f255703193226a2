//! The journal: one SQLite file (WAL, synchronous commits) that is the source of
//! truth for stock records, dispenses and every step taken. Each hardware command is
//! written as an intent before it is sent and as an outcome after.

use crate::clock::Clock;
use crate::inventory::{StockRecord, UnitState};
use crate::inventory::Hold;
use crate::order::{DispenseStatus, PatientOrder, Stage, UnitInfo};
use chrono::{DateTime, NaiveDate, Utc};
use hal::manifest::ManifestUnit;
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("journal record is corrupt: {0}")]
    Corrupt(String),
}

pub type Result<T> = std::result::Result<T, JournalError>;

/// One line of the step log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub dispense_id: Option<String>,
    pub unit_code: Option<String>,
    /// `intent`, `outcome`, `stage`, `stock`, `confirmation`.
    pub kind: String,
    pub step: String,
    pub detail: String,
}

/// Which units [`Journal::list_stock`] returns; every criterion set must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StockFilter {
    /// Any of these GTINs (a product's).
    pub gtins: Option<Vec<String>>,
    pub lot: Option<String>,
    /// Expiring on or before this day.
    pub expires_by: Option<NaiveDate>,
    pub state: Option<UnitState>,
    pub held_only: bool,
    pub offset: usize,
    pub limit: usize,
}

/// What `create_dispense` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    New(String),
    /// The request id was seen before with the same order.
    Existing(String),
    /// The request id was seen before with a different order.
    Conflict(String),
}

#[derive(Debug)]
pub struct Journal {
    conn: Mutex<Connection>,
    clock: Clock,
    /// Bumped after every committed hold, so a unit waiting at a booth learns of
    /// its hold at once without asking the database every second.
    holds: tokio::sync::watch::Sender<u64>,
}

const SCHEMA_VERSION: i64 = 3;

/// The columns [`row_to_record`] reads, in its order.
const SELECT_RECORD: &str = "SELECT code, gtin, lot, expiry, slot, state, dispense_id, hold, hold_reason, left_store_at FROM stock_units";

/// Migrations from each older version to the next, applied in order.
const MIGRATIONS: &[(i64, &str)] = &[(
    1,
    "ALTER TABLE stock_units ADD COLUMN hold TEXT;
     ALTER TABLE stock_units ADD COLUMN hold_reason TEXT;
     ALTER TABLE stock_units ADD COLUMN left_store_at TEXT;",
), (2, COLD_CHAIN_SCHEMA)];

/// Every probe reading, and the cold-chain alarms with when their condition began.
const COLD_CHAIN_SCHEMA: &str = "
CREATE TABLE temperatures (
    at      TEXT NOT NULL,
    probe   TEXT NOT NULL,
    celsius REAL
);
CREATE INDEX temperatures_at ON temperatures(at);
CREATE TABLE alarms (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT NOT NULL,
    since      TEXT NOT NULL,
    raised_at  TEXT NOT NULL,
    cleared_at TEXT,
    detail     TEXT NOT NULL
);";

const SCHEMA: &str = "
CREATE TABLE stock_units (
    code        TEXT PRIMARY KEY,
    gtin        TEXT NOT NULL,
    lot         TEXT NOT NULL,
    expiry      TEXT NOT NULL,
    slot        TEXT NOT NULL,
    state       TEXT NOT NULL,
    dispense_id TEXT,
    hold        TEXT,
    hold_reason TEXT,
    left_store_at TEXT
);
CREATE INDEX stock_units_pick ON stock_units(state, gtin, expiry);
CREATE TABLE dispenses (
    id          TEXT PRIMARY KEY,
    request_id  TEXT NOT NULL UNIQUE,
    order_json  TEXT NOT NULL,
    stage       TEXT NOT NULL,
    status_json TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE TABLE steps (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    at          TEXT NOT NULL,
    dispense_id TEXT,
    unit_code   TEXT,
    kind        TEXT NOT NULL,
    step        TEXT NOT NULL,
    detail      TEXT NOT NULL
);
CREATE INDEX steps_dispense ON steps(dispense_id, seq);
";

impl Journal {
    /// Opens (creating if need be) the journal file and brings its schema up to date.
    /// Opens (or creates) the journal; its lines are stamped by the system clock.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with_clock(path, Clock::system())
    }

    /// Opens the journal with the clock everything in the controller goes by.
    pub fn open_with_clock(path: &Path, clock: Clock) -> Result<Self> {
        let conn = Connection::open(path)?;
        // WAL lets readers run beside the writer; FULL makes each commit durable
        // before the hardware command it records is sent.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version == 0 {
            conn.execute_batch(&format!("BEGIN; {SCHEMA} {COLD_CHAIN_SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"))?;
        } else if version > SCHEMA_VERSION {
            return Err(JournalError::Corrupt(format!("schema version {version} is newer than this controller ({SCHEMA_VERSION})")));
        } else {
            for (from, sql) in MIGRATIONS.iter().filter(|(from, _)| *from >= version) {
                conn.execute_batch(&format!("BEGIN; {sql} PRAGMA user_version = {}; COMMIT;", from + 1))?;
            }
        }
        Ok(Self { conn: Mutex::new(conn), clock, holds: tokio::sync::watch::channel(0).0 })
    }

    /// The time by the controller's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Stocks the manifest's units that the journal does not know yet; returns how many.
    pub fn import_manifest(&self, units: &[ManifestUnit]) -> Result<usize> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut added = 0;
        for u in units {
            let code = hal::codes::UnitCode::Gs1(u.code.clone()).canonical();
            let expiry = u.code.expiry.map(|d| d.to_string()).unwrap_or_default();
            let inserted = tx.execute(
                "INSERT OR IGNORE INTO stock_units (code, gtin, lot, expiry, slot, state) VALUES (?1, ?2, ?3, ?4, ?5, 'in_store')",
                params![code, u.code.gtin, u.code.lot.clone().unwrap_or_default(), expiry, u.slot.to_string()],
            )?;
            if inserted == 1 {
                added += 1;
                insert_step(&tx, self.now(), None, Some(&code), "stock", "stocked", &format!("slot {}", u.slot))?;
            }
        }
        tx.commit()?;
        Ok(added)
    }

    /// Units in store of the given GTINs, earliest expiry first.
    pub fn units_in_store(&self, gtins: &[String]) -> Result<Vec<StockRecord>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            &format!("{SELECT_RECORD} WHERE state = 'in_store' ORDER BY expiry, slot"),
        )?;
        let rows = stmt.query_map([], row_to_record)?.collect::<rusqlite::Result<Vec<RecordRow>>>()?;
        rows.into_iter()
            .filter(|row| row.as_ref().map_or(true, |r| gtins.contains(&r.gtin)))
            .collect()
    }

    pub fn stock_record(&self, code: &str) -> Result<Option<StockRecord>> {
        let conn = self.conn();
        let row = conn
            .query_row(
                &format!("{SELECT_RECORD} WHERE code = ?1"),
                [code],
                row_to_record,
            )
            .optional()?;
        row.transpose()
    }

    /// Moves a unit to a new state, journalling the change in the same transaction.
    pub fn set_unit_state(&self, code: &str, state: UnitState, dispense_id: &str) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        // Leaving the store starts the unit's time out of refrigeration.
        let left = (state == UnitState::Picked).then(|| self.now().to_rfc3339());
        let changed = tx.execute(
            "UPDATE stock_units SET state = ?2, dispense_id = ?3, left_store_at = COALESCE(?4, left_store_at) WHERE code = ?1",
            params![code, state.as_str(), dispense_id, left],
        )?;
        if changed != 1 {
            return Err(JournalError::Corrupt(format!("no stock record {code}")));
        }
        insert_step(&tx, self.now(), Some(dispense_id), Some(code), "stock", state.as_str(), "")?;
        tx.commit()?;
        Ok(())
    }

    /// Stocks one unit received at the restock door; false when the code is already
    /// known (the journal never has one code twice).
    pub fn stock_unit(&self, record: &StockRecord, detail: &str) -> Result<bool> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let inserted = tx.execute(
            "INSERT OR IGNORE INTO stock_units (code, gtin, lot, expiry, slot, state) VALUES (?1, ?2, ?3, ?4, ?5, 'in_store')",
            params![record.code, record.gtin, record.lot, record.expiry.to_string(), record.slot.to_string()],
        )?;
        if inserted == 1 {
            insert_step(&tx, self.now(), None, Some(&record.code), "stock", "stocked", &format!("slot {}; {detail}", record.slot))?;
        }
        tx.commit()?;
        Ok(inserted == 1)
    }

    /// Units matching a filter, earliest expiry first, one page.
    pub fn list_stock(&self, filter: &StockFilter) -> Result<Vec<StockRecord>> {
        let mut clauses = vec!["1 = 1".to_owned()];
        let mut values: Vec<String> = Vec::new();
        let bind = |clause: &str, value: String, values: &mut Vec<String>| {
            values.push(value);
            clause.replace('?', &format!("?{}", values.len()))
        };
        if let Some(gtins) = &filter.gtins {
            let marks: Vec<String> = gtins.iter().map(|g| bind("?", g.clone(), &mut values)).collect();
            clauses.push(format!("gtin IN ({})", if marks.is_empty() { "NULL".to_owned() } else { marks.join(", ") }));
        }
        if let Some(lot) = &filter.lot {
            clauses.push(bind("lot = ?", lot.clone(), &mut values));
        }
        if let Some(day) = filter.expires_by {
            clauses.push(bind("expiry <= ?", day.to_string(), &mut values));
        }
        if let Some(state) = filter.state {
            clauses.push(bind("state = ?", state.as_str().to_owned(), &mut values));
        }
        if filter.held_only {
            clauses.push("hold IS NOT NULL".to_owned());
        }
        let sql = format!("{SELECT_RECORD} WHERE {} ORDER BY expiry, code LIMIT {} OFFSET {}", clauses.join(" AND "), filter.limit, filter.offset);
        let conn = self.conn();
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(values.iter()), row_to_record)?.collect::<rusqlite::Result<Vec<RecordRow>>>()?;
        rows.into_iter().collect()
    }

    /// Every unit the journal says is in the store (held or not), by slot.
    pub fn all_in_store(&self) -> Result<Vec<StockRecord>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            &format!("{SELECT_RECORD} WHERE state = 'in_store' ORDER BY slot"),
        )?;
        let rows = stmt.query_map([], row_to_record)?.collect::<rusqlite::Result<Vec<RecordRow>>>()?;
        rows.into_iter().collect()
    }

    /// Holds every unit of a batch that has not been given or binned yet (in the store
    /// or on its way: verification refuses it); returns how many.
    pub fn hold_batch(&self, gtin: Option<&str>, lot: &str, hold: Hold, reason: &str, actor: &str) -> Result<usize> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let codes: Vec<String> = {
            let mut stmt = tx.prepare(
                "SELECT code FROM stock_units WHERE lot = ?1 AND (?2 IS NULL OR gtin = ?2) AND state IN ('in_store', 'picked', 'delivered') ORDER BY code",
            )?;
            stmt.query_map(params![lot, gtin], |r| r.get(0))?.collect::<rusqlite::Result<Vec<_>>>()?
        };
        for code in &codes {
            tx.execute("UPDATE stock_units SET hold = ?2, hold_reason = ?3 WHERE code = ?1", params![code, hold.as_str(), reason])?;
            insert_step(&tx, self.now(), None, Some(code), "hold", hold.as_str(), &format!("batch {lot}: {reason} (by {actor})"))?;
        }
        tx.commit()?;
        self.holds_changed();
        Ok(codes.len())
    }

    /// Lifts a unit's hold after review, recording why and who.
    pub fn release_hold(&self, code: &str, reason: &str, actor: &str) -> Result<bool> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let changed = tx.execute("UPDATE stock_units SET hold = NULL, hold_reason = NULL WHERE code = ?1 AND hold IS NOT NULL", [code])?;
        if changed == 1 {
            insert_step(&tx, self.now(), None, Some(code), "hold", "released", &format!("{reason} (by {actor})"))?;
        }
        tx.commit()?;
        Ok(changed == 1)
    }

    /// Changes whenever a hold is committed.
    pub fn watch_holds(&self) -> tokio::sync::watch::Receiver<u64> {
        self.holds.subscribe()
    }

    fn holds_changed(&self) {
        self.holds.send_modify(|generation| *generation += 1);
    }

    /// Puts a unit on hold (recall, quarantine, cold-chain exposure) with the reason
    /// and who did it; held units are never picked and fail verification.
    pub fn hold_unit(&self, code: &str, hold: Hold, reason: &str, actor: &str) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let changed = tx.execute("UPDATE stock_units SET hold = ?2, hold_reason = ?3 WHERE code = ?1", params![code, hold.as_str(), reason])?;
        if changed != 1 {
            return Err(JournalError::Corrupt(format!("no stock record {code}")));
        }
        insert_step(&tx, self.now(), None, Some(code), "hold", hold.as_str(), &format!("{reason} (by {actor})"))?;
        tx.commit()?;
        self.holds_changed();
        Ok(())
    }

    /// Records one cold-chain sample's readings in one transaction (`None`: the probe
    /// could not be read, which is recorded too).
    pub fn record_readings(&self, at: DateTime<Utc>, readings: &[(String, Option<f64>)]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        for (probe, celsius) in readings {
            tx.execute("INSERT INTO temperatures (at, probe, celsius) VALUES (?1, ?2, ?3)", params![at.to_rfc3339(), probe, celsius])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// When the last reading was taken, if any.
    pub fn last_reading_at(&self) -> Result<Option<DateTime<Utc>>> {
        let at: Option<String> = self.conn().query_row("SELECT MAX(at) FROM temperatures", [], |r| r.get(0))?;
        at.map(|t| parse_time(&t)).transpose()
    }

    /// Every reading from `from` to `to`, oldest first: (time, probe, °C or unread).
    pub fn readings_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<(DateTime<Utc>, String, Option<f64>)>> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT at, probe, celsius FROM temperatures WHERE at >= ?1 AND at <= ?2 ORDER BY at")?;
        let rows = stmt
            .query_map(params![from.to_rfc3339(), to.to_rfc3339()], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, Option<f64>>(2)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter().map(|(at, probe, celsius)| Ok((parse_time(&at)?, probe, celsius))).collect()
    }

    /// How many readings are recorded (all probes), for summaries and tests.
    pub fn reading_count(&self) -> Result<i64> {
        Ok(self.conn().query_row("SELECT COUNT(*) FROM temperatures", [], |r| r.get(0))?)
    }

    pub fn raise_alarm(&self, kind: &str, since: DateTime<Utc>, detail: &str) -> Result<i64> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO alarms (kind, since, raised_at, detail) VALUES (?1, ?2, ?3, ?4)",
            params![kind, since.to_rfc3339(), self.now().to_rfc3339(), detail],
        )?;
        Ok(conn.last_insert_rowid())
    }

    pub fn clear_alarm(&self, kind: &str, at: DateTime<Utc>) -> Result<()> {
        self.conn().execute("UPDATE alarms SET cleared_at = ?2 WHERE kind = ?1 AND cleared_at IS NULL", params![kind, at.to_rfc3339()])?;
        Ok(())
    }

    /// Alarms not yet cleared: (kind, since, detail).
    /// Every alarm raised since `since`, cleared or not: (kind, raised at, cleared at).
    pub fn alarms_since(&self, since: DateTime<Utc>) -> Result<Vec<(String, String, Option<String>)>> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT kind, raised_at, cleared_at FROM alarms WHERE raised_at >= ?1 ORDER BY id")?;
        let rows = stmt.query_map([since.to_rfc3339()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    pub fn active_alarms(&self) -> Result<Vec<(String, String, String)>> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT kind, since, detail FROM alarms WHERE cleared_at IS NULL ORDER BY id")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Puts every unit in the store (of these GTINs, or all when `gtins` is `None`)
    /// on a cold-chain hold after an excursion; returns how many were held.
    pub fn hold_exposed(&self, gtins: Option<&[String]>, reason: &str) -> Result<usize> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let codes: Vec<(String, String)> = {
            let mut stmt = tx.prepare("SELECT code, gtin FROM stock_units WHERE state = 'in_store' AND hold IS NULL")?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<Vec<_>>>()?
        };
        let mut held = 0;
        for (code, gtin) in codes.iter().filter(|(_, g)| gtins.is_none_or(|list| list.contains(g))) {
            tx.execute("UPDATE stock_units SET hold = 'cold_chain', hold_reason = ?2 WHERE code = ?1", params![code, reason])?;
            insert_step(&tx, self.now(), None, Some(code), "hold", Hold::ColdChain.as_str(), &format!("{reason} ({gtin})"))?;
            held += 1;
        }
        tx.commit()?;
        self.holds_changed();
        Ok(held)
    }

    /// Counts units by state, for summaries.
    pub fn stock_counts(&self) -> Result<Vec<(String, i64)>> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT state, COUNT(*) FROM stock_units GROUP BY state ORDER BY state")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Records a new dispense, or finds the one this request id already made.
    pub fn create_dispense(&self, request_id: &str, status: &DispenseStatus) -> Result<Created> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let existing: Option<(String, String)> = tx
            .query_row("SELECT id, order_json FROM dispenses WHERE request_id = ?1", [request_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        if let Some((id, order_json)) = existing {
            let order: PatientOrder = from_json(&order_json)?;
            return Ok(if order == status.order { Created::Existing(id) } else { Created::Conflict(id) });
        }
        let seq: i64 = tx.query_row("SELECT COUNT(*) + 1 FROM dispenses", [], |r| r.get(0))?;
        let id = format!("D{seq:06}");
        let mut status = status.clone();
        status.id = id.clone();
        tx.execute(
            "INSERT INTO dispenses (id, request_id, order_json, stage, status_json, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![id, request_id, to_json(&status.order), stage_name(status.stage), to_json(&status), status.created_at.to_rfc3339()],
        )?;
        insert_step(&tx, self.now(), Some(&id), None, "stage", "accepted", &to_json(&status.order))?;
        tx.commit()?;
        Ok(Created::New(id))
    }

    /// Stores the dispense's new status and journals the stage it entered.
    pub fn record_stage(&self, status: &DispenseStatus) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "UPDATE dispenses SET stage = ?2, status_json = ?3 WHERE id = ?1",
            params![status.id, stage_name(status.stage), to_json(status)],
        )?;
        let unit = status.unit.as_ref().map(|u| u.code.as_str());
        insert_step(&tx, self.now(), Some(&status.id), unit, "stage", stage_name(status.stage), &status.detail)?;
        tx.commit()?;
        Ok(())
    }

    /// Dispenses that had not ended when the controller stopped, oldest first.
    pub fn unfinished_dispenses(&self) -> Result<Vec<DispenseStatus>> {
        let conn = self.conn();
        let finals = [Stage::Administered, Stage::Rejected, Stage::Failed, Stage::Cancelled].map(stage_name);
        let mut stmt = conn.prepare("SELECT status_json FROM dispenses WHERE stage NOT IN (?1, ?2, ?3, ?4) ORDER BY id")?;
        let rows = stmt.query_map(params![finals[0], finals[1], finals[2], finals[3]], |r| r.get::<_, String>(0))?.collect::<rusqlite::Result<Vec<_>>>()?;
        rows.iter().map(|json| from_json(json)).collect()
    }

    /// Records a step that belongs to no dispense (recovery, operator actions).
    pub fn note(&self, unit_code: Option<&str>, kind: &str, step: &str, detail: &str) -> Result<()> {
        insert_step(&self.conn(), self.now(), None, unit_code, kind, step, detail)
    }

    pub fn dispense(&self, id: &str) -> Result<Option<DispenseStatus>> {
        let conn = self.conn();
        let json: Option<String> = conn.query_row("SELECT status_json FROM dispenses WHERE id = ?1", [id], |r| r.get(0)).optional()?;
        json.map(|j| from_json(&j)).transpose()
    }

    /// Appends one step to the log.
    pub fn record(&self, dispense_id: &str, unit_code: Option<&str>, kind: &str, step: &str, detail: &str) -> Result<()> {
        insert_step(&self.conn(), self.now(), Some(dispense_id), unit_code, kind, step, detail)
    }

    /// Every step that concerns a unit: its own (stocked, held…) and those of the
    /// dispenses that took it, in order.
    pub fn unit_entries(&self, code: &str) -> Result<Vec<Entry>> {
        self.query_entries(
            "SELECT seq, at, dispense_id, unit_code, kind, step, detail FROM steps
             WHERE unit_code = ?1 OR dispense_id IN (SELECT dispense_id FROM steps WHERE unit_code = ?1 AND dispense_id IS NOT NULL)
             ORDER BY seq",
            [code],
        )
    }

    /// The dispenses of one patient, oldest first.
    pub fn patient_dispenses(&self, patient_id: &str) -> Result<Vec<DispenseStatus>> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT status_json FROM dispenses WHERE json_extract(order_json, '$.patient_id') = ?1 ORDER BY created_at, id")?;
        let rows = stmt.query_map([patient_id], |r| r.get::<_, String>(0))?.collect::<rusqlite::Result<Vec<_>>>()?;
        rows.iter().map(|json| from_json(json)).collect()
    }

    /// The step log of one dispense, in order.
    pub fn entries(&self, dispense_id: &str) -> Result<Vec<Entry>> {
        self.query_entries("SELECT seq, at, dispense_id, unit_code, kind, step, detail FROM steps WHERE dispense_id = ?1 ORDER BY seq", [dispense_id])
    }

    /// Every step from `from` to `to` (inclusive), in order: the service desk's export.
    pub fn entries_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<Entry>> {
        self.query_entries(
            "SELECT seq, at, dispense_id, unit_code, kind, step, detail FROM steps WHERE at >= ?1 AND at <= ?2 ORDER BY seq",
            params![from.to_rfc3339(), to.to_rfc3339()],
        )
    }

    /// Steps of one kind since a time, newest first (e.g. faults raised and cleared).
    pub fn entries_of_kind(&self, kind: &str, since: DateTime<Utc>) -> Result<Vec<Entry>> {
        self.query_entries(
            "SELECT seq, at, dispense_id, unit_code, kind, step, detail FROM steps WHERE kind = ?1 AND at >= ?2 ORDER BY seq DESC",
            params![kind, since.to_rfc3339()],
        )
    }

    fn query_entries(&self, sql: &str, key: impl rusqlite::Params) -> Result<Vec<Entry>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(sql)?;
        let rows = stmt
            .query_map(key, |r| {
                let at: String = r.get(1)?;
                Ok((r.get(0)?, at, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(seq, at, dispense_id, unit_code, kind, step, detail)| {
                Ok(Entry { seq, at: parse_time(&at)?, dispense_id, unit_code, kind, step, detail })
            })
            .collect()
    }
}

fn insert_step(conn: &Connection, at: DateTime<Utc>, dispense_id: Option<&str>, unit_code: Option<&str>, kind: &str, step: &str, detail: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO steps (at, dispense_id, unit_code, kind, step, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![at.to_rfc3339(), dispense_id, unit_code, kind, step, detail],
    )?;
    Ok(())
}

type RecordRow = Result<StockRecord>;

fn row_to_record(r: &rusqlite::Row<'_>) -> rusqlite::Result<RecordRow> {
    let (code, gtin, lot): (String, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?);
    let (expiry, slot, state, dispense_id): (String, String, String, Option<String>) = (r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?);
    let (hold, hold_reason, left_store_at): (Option<String>, Option<String>, Option<String>) = (r.get(7)?, r.get(8)?, r.get(9)?);
    Ok((|| {
        Ok(StockRecord {
            hold: match hold {
                Some(kind) => Some((
                    Hold::parse(&kind).ok_or_else(|| JournalError::Corrupt(format!("{code}: hold {kind:?}")))?,
                    hold_reason.unwrap_or_default(),
                )),
                None => None,
            },
            left_store_at: left_store_at
                .map(|t| chrono::DateTime::parse_from_rfc3339(&t).map(|t| t.with_timezone(&chrono::Utc)))
                .transpose()
                .map_err(|e| JournalError::Corrupt(format!("{code}: left_store_at: {e}")))?,
            expiry: NaiveDate::parse_from_str(&expiry, "%Y-%m-%d").map_err(|e| JournalError::Corrupt(format!("{code}: expiry {expiry:?}: {e}")))?,
            slot: slot.parse().map_err(|e| JournalError::Corrupt(format!("{code}: {e}")))?,
            state: UnitState::parse(&state).ok_or_else(|| JournalError::Corrupt(format!("{code}: state {state:?}")))?,
            code,
            gtin,
            lot,
            dispense_id,
        })
    })())
}

fn stage_name(stage: Stage) -> &'static str {
    stage.describe()
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    // Our own plain data types always serialise.
    serde_json::to_string(value).unwrap_or_else(|e| format!("{{\"unserialisable\":\"{e}\"}}"))
}

fn from_json<T: serde::de::DeserializeOwned>(json: &str) -> Result<T> {
    serde_json::from_str(json).map_err(|e| JournalError::Corrupt(e.to_string()))
}

fn parse_time(s: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc)).map_err(|e| JournalError::Corrupt(format!("time {s:?}: {e}")))
}

/// The unit info a status shows, from its stock record.
pub fn unit_info(record: &StockRecord) -> UnitInfo {
    UnitInfo { code: record.code.clone(), gtin: record.gtin.clone(), lot: record.lot.clone(), expiry: record.expiry, slot: record.slot.to_string() }
}

impl Journal {
    /// The dispense a request id created, if any.
    pub fn find_request(&self, request_id: &str) -> Result<Option<String>> {
        let conn = self.conn();
        Ok(conn.query_row("SELECT id FROM dispenses WHERE request_id = ?1", [request_id], |r| r.get(0)).optional()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hal::BoothId;

    fn manifest() -> Vec<ManifestUnit> {
        hal::manifest::parse(
            r#"
            [[batch]]
            gtin = "06901234000016"
            lot = "L1"
            expiry = "2027-06-30"
            serial_prefix = "S"
            count = 3
            first_slot = "R0-0-0"
            "#,
        )
        .expect("manifest")
    }

    fn status(product: &str) -> DispenseStatus {
        DispenseStatus {
            id: String::new(),
            request_id: "r".into(),
            order: PatientOrder::new("P", "N", product, BoothId(1), 1, chrono::NaiveDate::from_ymd_opt(2026, 1, 1).expect("date")),
            stage: Stage::Queued,
            unit: None,
            violations: vec![],
            detail: String::new(),
            created_at: Utc::now(),
            at_booth_at: None,
            finished_at: None,
            administered_by: None,
            administered_site: None,
        }
    }

    #[test]
    fn manifest_import_is_idempotent_and_survives_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("j.db");
        let journal = Journal::open(&path).expect("open");
        assert_eq!(journal.import_manifest(&manifest()).expect("import"), 3);
        assert_eq!(journal.import_manifest(&manifest()).expect("again"), 0);
        drop(journal);
        let journal = Journal::open(&path).expect("reopen");
        let mode: String = journal.conn().pragma_query_value(None, "journal_mode", |r| r.get(0)).expect("pragma");
        assert_eq!(mode, "wal");
        let units = journal.units_in_store(&["06901234000016".into()]).expect("units");
        assert_eq!(units.len(), 3);
        assert!(journal.units_in_store(&["06901234000030".into()]).expect("units").is_empty());
    }

    #[test]
    fn request_ids_are_unique_and_conflicts_detected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let journal = Journal::open(&dir.path().join("j.db")).expect("open");
        let Created::New(id) = journal.create_dispense("r", &status("HepB")).expect("create") else { panic!("new") };
        assert_eq!(journal.create_dispense("r", &status("HepB")).expect("again"), Created::Existing(id.clone()));
        assert_eq!(journal.create_dispense("r", &status("IPV")).expect("conflict"), Created::Conflict(id.clone()));
        assert_eq!(journal.dispense(&id).expect("read").expect("found").order.product_id, "HepB");
        assert_eq!(journal.find_request("r").expect("find"), Some(id));
        assert_eq!(journal.find_request("other").expect("find"), None);
    }

    #[test]
    fn unit_state_changes_are_journalled_and_unknown_units_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let journal = Journal::open(&dir.path().join("j.db")).expect("open");
        journal.import_manifest(&manifest()).expect("import");
        let code = journal.units_in_store(&["06901234000016".into()]).expect("units")[0].code.clone();
        journal.set_unit_state(&code, UnitState::Picked, "D000001").expect("pick");
        let record = journal.stock_record(&code).expect("read").expect("found");
        assert_eq!((record.state, record.dispense_id.as_deref()), (UnitState::Picked, Some("D000001")));
        assert_eq!(journal.entries("D000001").expect("entries").last().map(|e| e.step.as_str()), Some("picked"));
        assert!(matches!(journal.set_unit_state("nope", UnitState::Picked, "D1"), Err(JournalError::Corrupt(_))));
    }

    #[test]
    fn a_version_1_journal_is_migrated_and_keeps_its_units() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("old.db");
        {
            // The schema as version 1 wrote it.
            let conn = Connection::open(&path).expect("open");
            conn.execute_batch(
                "CREATE TABLE stock_units (code TEXT PRIMARY KEY, gtin TEXT NOT NULL, lot TEXT NOT NULL, expiry TEXT NOT NULL,
                     slot TEXT NOT NULL, state TEXT NOT NULL, dispense_id TEXT);
                 CREATE TABLE dispenses (id TEXT PRIMARY KEY, request_id TEXT NOT NULL UNIQUE, order_json TEXT NOT NULL,
                     stage TEXT NOT NULL, status_json TEXT NOT NULL, created_at TEXT NOT NULL);
                 CREATE TABLE steps (seq INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, dispense_id TEXT, unit_code TEXT,
                     kind TEXT NOT NULL, step TEXT NOT NULL, detail TEXT NOT NULL);
                 INSERT INTO stock_units VALUES ('(01)06901234000016(21)OLD', '06901234000016', 'L0', '2027-01-31', 'R0-0-0', 'in_store', NULL);
                 PRAGMA user_version = 1;",
            )
            .expect("old schema");
        }
        let journal = Journal::open(&path).expect("migrates");
        let record = journal.stock_record("(01)06901234000016(21)OLD").expect("read").expect("kept");
        assert_eq!((record.hold, record.left_store_at), (None, None));
        journal.record_readings(Utc::now(), &[("cabinet-a".into(), Some(5.0))]).expect("cold-chain tables exist");
        let version: i64 = journal.conn().pragma_query_value(None, "user_version", |r| r.get(0)).expect("version");
        assert_eq!(version, SCHEMA_VERSION);
    }

    #[test]
    fn an_excursion_holds_the_exposed_units_and_alarms_are_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let journal = Journal::open(&dir.path().join("j.db")).expect("open");
        journal.import_manifest(&manifest()).expect("import");
        let other = ["06901234000030".to_owned()];
        assert_eq!(journal.hold_exposed(Some(&other), "freeze").expect("hold"), 0, "no unit of that product");
        assert_eq!(journal.hold_exposed(None, "heat since 08:00").expect("hold"), 3);
        assert_eq!(journal.hold_exposed(None, "again").expect("hold"), 0, "held units are not held twice");
        let held = journal.stock_record(&journal.units_in_store(&["06901234000016".into()]).expect("units")[0].code).expect("read").expect("record");
        assert_eq!(held.hold, Some((Hold::ColdChain, "heat since 08:00".into())));

        journal.raise_alarm("heat", Utc::now(), "above 8 °C").expect("raise");
        assert_eq!(journal.active_alarms().expect("alarms").len(), 1);
        journal.clear_alarm("heat", Utc::now()).expect("clear");
        assert!(journal.active_alarms().expect("alarms").is_empty());
    }
}
