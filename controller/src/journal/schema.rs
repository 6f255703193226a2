//! The journal's schema and its migrations. A journal written by an older
//! controller is brought up to date when opened, each step in one transaction;
//! version 3 → 4 made the step log typed (a `data` column with each intent and
//! outcome as JSON, stages as stable codes), converting what older versions wrote
//! as text: the one place that reads that text.

use crate::dispense::status::Stage;
use crate::journal::error::{JournalError, Result};
use crate::journal::rows::to_json;
use crate::journal::entry::{Intent, Outcome, StepData};
use crate::rules::verify::ViolationId;
use hal::{BoothId, ErrorKind, SlotAddress, Station};
use rusqlite::{Connection, params};

/// The version this controller writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 8;

/// SQL migrations from each older version to the next, applied in order (the
/// step from 3 to 4 converts data, in [`typed_steps`]).
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

/// Version 6: heat charged per product and place instead of per unit. Every
/// cold-chain sample used to rewrite every unit in store (a clinic day's 2,400
/// units, once a minute); now it adds to one odometer per product (GTIN) and place
/// (the unit's state), and a unit's consumed heat is `heat_consumed + odometer −
/// heat_mark`: `heat_consumed` holds what it used in the places it left,
/// `heat_mark` the odometer's reading when it came to where it is. The triggers
/// keep that true whatever statement stocks a unit or moves it.
const HEAT_ODOMETER_SCHEMA: &str = "
CREATE TABLE heat_odometers (
    gtin  TEXT NOT NULL,
    state TEXT NOT NULL,
    total REAL NOT NULL,
    PRIMARY KEY (gtin, state)
);
ALTER TABLE stock_units ADD COLUMN heat_mark REAL NOT NULL DEFAULT 0;
CREATE INDEX stock_units_heat ON stock_units(gtin, state, heat_consumed - heat_mark);
CREATE TRIGGER stock_units_heat_stocked AFTER INSERT ON stock_units BEGIN
    UPDATE stock_units SET heat_mark = COALESCE((SELECT total FROM heat_odometers WHERE gtin = NEW.gtin AND state = NEW.state), 0)
    WHERE code = NEW.code;
END;
CREATE TRIGGER stock_units_heat_moved AFTER UPDATE OF state ON stock_units WHEN OLD.state <> NEW.state BEGIN
    UPDATE stock_units SET
        heat_consumed = heat_consumed + COALESCE((SELECT total FROM heat_odometers WHERE gtin = NEW.gtin AND state = OLD.state), 0) - heat_mark,
        heat_mark = COALESCE((SELECT total FROM heat_odometers WHERE gtin = NEW.gtin AND state = NEW.state), 0)
    WHERE code = NEW.code;
END;";

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
    left_store_at TEXT,
    heat_consumed REAL NOT NULL DEFAULT 0
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
    detail      TEXT NOT NULL,
    data        TEXT
);
CREATE INDEX steps_dispense ON steps(dispense_id, seq);
";

/// Secrets of this journal: the key of the patients' pseudonymous references
/// (version 7), made once from SQLite's randomness (seeded by the OS).
const SECRETS_SCHEMA: &str = "
CREATE TABLE secrets (
    name    TEXT PRIMARY KEY,
    secret  BLOB NOT NULL
);
";

/// The event feed's outbox (version 8): every event that matters outside the
/// workstation, written in the same transaction as the event itself, in order
/// (`seq` is the sequence number a consumer sees), with an id made once (what a
/// consumer deduplicates by). `data` holds the event's facts as JSON; the publisher
/// renders them as the message. `outbox_published` holds how far the broker has
/// acknowledged: one row, the last `seq` it took.
const OUTBOX_SCHEMA: &str = "
CREATE TABLE outbox (
    seq   INTEGER PRIMARY KEY AUTOINCREMENT,
    id    TEXT NOT NULL UNIQUE DEFAULT (lower(hex(randomblob(16)))),
    kind  TEXT NOT NULL,
    at    TEXT NOT NULL,
    data  TEXT NOT NULL
);
CREATE TABLE outbox_published (
    one   INTEGER PRIMARY KEY CHECK (one = 1),
    seq   INTEGER NOT NULL
);
INSERT INTO outbox_published (one, seq) VALUES (1, 0);
";

/// The key of the patients' pseudonymous references, made on first use.
pub(crate) fn patient_ref_key(conn: &Connection) -> Result<Vec<u8>> {
    conn.execute("INSERT OR IGNORE INTO secrets (name, secret) VALUES ('patient_ref', randomblob(32))", [])?;
    Ok(conn.query_row("SELECT secret FROM secrets WHERE name = 'patient_ref'", [], |r| r.get(0))?)
}

/// Creates a new journal's tables, or migrates an older one to [`SCHEMA_VERSION`].
pub(crate) fn bring_up_to_date(conn: &Connection) -> Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version == 0 {
        conn.execute_batch(&format!("BEGIN; {SCHEMA} {COLD_CHAIN_SCHEMA} {HEAT_ODOMETER_SCHEMA} {SECRETS_SCHEMA} {OUTBOX_SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"))?;
        return Ok(());
    }
    if version > SCHEMA_VERSION {
        return Err(JournalError::Corrupt(format!("schema version {version} is newer than this controller ({SCHEMA_VERSION})")));
    }
    for (from, sql) in MIGRATIONS.iter().filter(|(from, _)| *from >= version) {
        conn.execute_batch(&format!("BEGIN; {sql} PRAGMA user_version = {}; COMMIT;", from + 1))?;
    }
    if version <= 3 {
        conn.execute_batch("BEGIN")?;
        match typed_steps(conn) {
            Ok(()) => conn.execute_batch("PRAGMA user_version = 4; COMMIT;")?,
            Err(e) => {
                conn.execute_batch("ROLLBACK")?;
                return Err(e);
            }
        }
    }
    if version <= 4 {
        // Version 4 → 5: each unit's consumed heat budget (the vial monitor).
        conn.execute_batch("BEGIN; ALTER TABLE stock_units ADD COLUMN heat_consumed REAL NOT NULL DEFAULT 0; PRAGMA user_version = 5; COMMIT;")?;
    }
    if version <= 5 {
        // Version 5 → 6: the odometers start at nought and every mark at nought,
        // so each unit keeps the heat it had.
        conn.execute_batch(&format!("BEGIN; {HEAT_ODOMETER_SCHEMA} PRAGMA user_version = 6; COMMIT;"))?;
    }
    if version <= 6 {
        // Version 6 → 7: the secrets table (the patient reference key).
        conn.execute_batch(&format!("BEGIN; {SECRETS_SCHEMA} PRAGMA user_version = 7; COMMIT;"))?;
    }
    if version <= 7 {
        // Version 7 → 8: the event feed's outbox (events from here on).
        conn.execute_batch(&format!("BEGIN; {OUTBOX_SCHEMA} PRAGMA user_version = 8; COMMIT;"))?;
    }
    Ok(())
}

/// Version 3 → 4: stages as codes, intents and outcomes as typed data.
fn typed_steps(conn: &Connection) -> Result<()> {
    conn.execute_batch("ALTER TABLE steps ADD COLUMN data TEXT;")?;
    for stage in Stage::ALL {
        conn.execute("UPDATE dispenses SET stage = ?1 WHERE stage = ?2", params![stage.code(), stage.describe()])?;
        conn.execute("UPDATE steps SET step = ?1 WHERE kind = 'stage' AND step = ?2", params![stage.code(), stage.describe()])?;
    }
    let rows: Vec<(i64, String, String, String, Option<String>)> = {
        let mut stmt = conn.prepare("SELECT seq, kind, step, detail, unit_code FROM steps WHERE kind IN ('intent', 'outcome')")?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?.collect::<rusqlite::Result<_>>()?
    };
    for (seq, kind, step, detail, unit) in rows {
        let data = if kind == "intent" {
            legacy::intent(&step, &detail, unit.as_deref()).map(StepData::Intent)
        } else {
            legacy::outcome(&step, &detail).map(StepData::Outcome)
        };
        // A line older versions wrote that says nothing typed stays text only.
        if let Some(data) = data {
            conn.execute("UPDATE steps SET data = ?1 WHERE seq = ?2", params![to_json(&data), seq])?;
        }
    }
    Ok(())
}

/// How versions up to 3 wrote intents and outcomes: the flow's command and event
/// as Rust's debug text (e.g. `Convey(Gate(BoothId(2)))`). Read here once, when
/// such a journal is migrated, and nowhere else.
mod legacy {
    use super::*;

    pub fn intent(step: &str, detail: &str, unit: Option<&str>) -> Option<Intent> {
        Some(match step {
            "Allocate" => Intent::Allocate,
            "Pick" => Intent::Pick { slot: slot_in_debug(detail)? },
            "Convey" => Intent::Convey { to: station(detail.strip_prefix("Convey(")?.strip_suffix(')')?)? },
            "Scan" => Intent::Scan,
            "Verify" => Intent::Verify { code: unit?.to_owned() },
            "AwaitValidation" => Intent::AwaitValidation,
            "AwaitAdministration" => Intent::AwaitAdministration,
            "Finish" => Intent::Finish { stage: stage(detail.strip_prefix("Finish(")?.strip_suffix(')')?)? },
            // Maintenance: "from R0-0-3 by crew-1".
            "Eject" => Intent::Eject { slot: detail.strip_prefix("from ")?.split(' ').next()?.parse().ok()? },
            _ => return None,
        })
    }

    pub fn outcome(step: &str, detail: &str) -> Option<Outcome> {
        Some(match step {
            // "Allocated CODE from R0-0-3"
            "Allocated" => {
                let (code, slot) = detail.strip_prefix("Allocated ")?.rsplit_once(" from ")?;
                Outcome::Allocated { code: code.to_owned(), slot: slot.parse().ok()? }
            }
            // "Read ]d2 CODE"
            "Read" => {
                let (symbology, code) = detail.strip_prefix("Read ")?.split_once(' ')?;
                Outcome::Read { symbology: symbology.to_owned(), code: code.to_owned() }
            }
            "NoStock" => Outcome::NoStock,
            "Picked" => Outcome::Picked,
            "Arrived" => Outcome::Arrived,
            "Unreadable" => Outcome::Unreadable,
            "Passed" => Outcome::Passed,
            "Violations" => Outcome::Violations { ids: words_after(detail, "id: ").filter_map(violation).collect() },
            "Validated" => Outcome::Validated,
            "Administered" => Outcome::Administered,
            "Cancelled" => Outcome::Cancelled,
            "Fault" => Outcome::Fault { kind: words_after(detail, "kind: ").find_map(error_kind)? },
            "Finished" => Outcome::Finished,
            _ => return None,
        })
    }

    /// `Hatch`, `Scan`, `Reject`, `Gate(BoothId(2))`, `Booth(BoothId(2))`.
    fn station(text: &str) -> Option<Station> {
        let booth = |inner: &str| inner.strip_prefix("BoothId(")?.strip_suffix(')')?.parse().ok().map(BoothId);
        match text {
            "Hatch" => Some(Station::Hatch),
            "Scan" => Some(Station::Scan),
            "Reject" => Some(Station::Reject),
            _ => {
                if let Some(inner) = text.strip_prefix("Gate(").and_then(|t| t.strip_suffix(')')) {
                    booth(inner).map(Station::Gate)
                } else {
                    booth(text.strip_prefix("Booth(")?.strip_suffix(')')?).map(Station::Booth)
                }
            }
        }
    }

    /// `SlotAddress { rack: 0, row: 1, column: 3 }` anywhere in the text.
    fn slot_in_debug(text: &str) -> Option<SlotAddress> {
        let number = |field: &str| words_after(text, field).next()?.parse().ok();
        Some(SlotAddress::new(number("rack: ")?, number("row: ")?, number("column: ")?))
    }

    fn stage(text: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|s| format!("{s:?}") == text)
    }

    fn violation(name: &str) -> Option<ViolationId> {
        serde_json::from_value(serde_json::Value::String(name.to_owned())).ok()
    }

    fn error_kind(name: &str) -> Option<ErrorKind> {
        serde_json::from_value(serde_json::Value::String(name.to_owned())).ok()
    }

    /// The word after each occurrence of `marker`.
    fn words_after<'a>(text: &'a str, marker: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        text.match_indices(marker).filter_map(move |(at, _)| text[at + marker.len()..].split(|c: char| !c.is_alphanumeric() && c != '_').next())
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn old_debug_text_is_read_once_into_typed_data() {
            assert_eq!(intent("Convey", "Convey(Booth(BoothId(2)))", None), Some(Intent::Convey { to: Station::Booth(BoothId(2)) }));
            assert_eq!(intent("Convey", "Convey(Gate(BoothId(12)))", None), Some(Intent::Convey { to: Station::Gate(BoothId(12)) }));
            assert_eq!(intent("Convey", "Convey(Reject)", None), Some(Intent::Convey { to: Station::Reject }));
            assert_eq!(intent("Pick", "Pick { slot: SlotAddress { rack: 1, row: 2, column: 3 } }", None), Some(Intent::Pick { slot: SlotAddress::new(1, 2, 3) }));
            assert_eq!(intent("Finish", "Finish(Rejected)", None), Some(Intent::Finish { stage: Stage::Rejected }));
            assert_eq!(intent("Verify", "Verify(Decoded { .. })", Some("(01)1")), Some(Intent::Verify { code: "(01)1".into() }));
            assert_eq!(intent("Eject", "from R0-1-2 by crew-1", None), Some(Intent::Eject { slot: SlotAddress::new(0, 1, 2) }));
            assert_eq!(intent("Levitate", "Levitate", None), None);
            assert_eq!(outcome("Allocated", "Allocated (01)06901234000016(21)X from R0-0-3"), Some(Outcome::Allocated { code: "(01)06901234000016(21)X".into(), slot: SlotAddress::new(0, 0, 3) }));
            assert_eq!(outcome("Read", "Read ]d2 (01)1"), Some(Outcome::Read { symbology: "]d2".into(), code: "(01)1".into() }));
            assert_eq!(
                outcome("Violations", "Violations([Violation { id: Expired, message: \"x\" }, Violation { id: ProductMismatch, message: \"y\" }])"),
                Some(Outcome::Violations { ids: vec![ViolationId::Expired, ViolationId::ProductMismatch] })
            );
            assert_eq!(outcome("Fault", "Fault(DeviceError { device: \"conveyor\", kind: Jam, detail: \"x\" })"), Some(Outcome::Fault { kind: ErrorKind::Jam }));
        }
    }
}
