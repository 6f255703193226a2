//! The dispenses (table `dispenses`): each order with its request id, its stage as
//! a stable code and its whole status as JSON.

use crate::journal::rows::Cached;
use crate::dispense::status::{DispenseStatus, Stage};
use crate::journal::connection::Journal;
use crate::journal::error::{JournalError, Result};
use crate::journal::rows::{from_json, insert_step, to_json};
use crate::journal::entry::StepKind;
use crate::journal::outbox::EventKind;
use crate::rules::inventory::UnitState;
use crate::rules::order::PatientOrder;
use rusqlite::{OptionalExtension, params};

/// What `create_dispense` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    New(String),
    /// The request id was seen before with the same order.
    Existing(String),
    /// The request id was seen before with a different order.
    Conflict(String),
}


impl Journal {
    /// Records a new dispense, or finds the one this request id already made.
    pub fn create_dispense(&self, request_id: &str, status: &DispenseStatus) -> Result<Created> {
        self.write(|conn| {
            let tx = conn.transaction()?;
            let existing: Option<(String, String)> = tx
                .row("SELECT id, order_json FROM dispenses WHERE request_id = ?1", [request_id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            if let Some((id, order_json)) = existing {
                let order: PatientOrder = from_json(&order_json)?;
                return Ok(if order == status.order { Created::Existing(id) } else { Created::Conflict(id) });
            }
            let seq: i64 = tx.row("SELECT COUNT(*) + 1 FROM dispenses", [], |r| r.get(0))?;
            let id = format!("D{seq:06}");
            let mut status = status.clone();
            status.id = id.clone();
            tx.exec(
                "INSERT INTO dispenses (id, request_id, order_json, stage, status_json, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![id, request_id, to_json(&status.order), status.stage.code(), to_json(&status), status.created_at.to_rfc3339()],
            )?;
            // The order itself is in the dispense's row; the step log, which crews
            // export, names the patient by pseudonym only (journals before version 7
            // have the order here, withheld when shown: see api::privacy).
            let o = &status.order;
            let line = format!("{} dose {} for {}, patient {}", o.product_id, o.dose_number, o.booth, self.patient_ref(&o.patient_id));
            insert_step(&tx, self.now(), Some(&id), None, StepKind::Stage, "accepted", &line, None)?;
            tx.commit()?;
            Ok(Created::New(id))
        })
    }

    /// Stores the dispense's new status and journals the stage it entered.
    pub fn record_stage(&self, status: &DispenseStatus) -> Result<()> {
        self.write(|conn| {
            let tx = conn.transaction()?;
            tx.exec(
                "UPDATE dispenses SET stage = ?2, status_json = ?3 WHERE id = ?1",
                params![status.id, status.stage.code(), to_json(status)],
            )?;
            let unit = status.unit.as_ref().map(|u| u.code.as_str());
            insert_step(&tx, self.now(), Some(&status.id), unit, StepKind::Stage, status.stage.code(), &status.detail, None)?;
            if status.stage.is_final() {
                // The feed renders the end (and an administered dose's immunization) from the status.
                self.enqueue(&tx, EventKind::Dispense, || serde_json::to_value(status).unwrap_or_else(|e| serde_json::json!({ "unserialisable": e.to_string() })))?;
            }
            tx.commit()?;
            Ok(())
        })
    }

    /// Reserves a unit for a dispense: the unit leaves stock (`picked`, its time out
    /// of refrigeration starting) and the dispense's status records it, in one
    /// transaction, so no crash can leave a unit reserved by a dispense that does
    /// not know it (H-04). `status` carries the unit.
    pub fn reserve_unit(&self, code: &str, status: &DispenseStatus) -> Result<()> {
        self.write(|conn| {
            let tx = conn.transaction()?;
            let now = self.now();
            let changed = tx.exec(
                "UPDATE stock_units SET state = ?2, dispense_id = ?3, left_store_at = ?4 WHERE code = ?1 AND state = ?5",
                params![code, UnitState::Picked.as_str(), status.id, now.to_rfc3339(), UnitState::InStore.as_str()],
            )?;
            if changed != 1 {
                return Err(JournalError::Corrupt(format!("unit {code} is not in the store to reserve")));
            }
            tx.exec("UPDATE dispenses SET status_json = ?2 WHERE id = ?1", params![status.id, to_json(status)])?;
            insert_step(&tx, now, Some(&status.id), Some(code), StepKind::Stock, UnitState::Picked.as_str(), "", None)?;
            tx.commit()?;
            Ok(())
        })
    }

    /// Dispenses that had not ended when the controller stopped, oldest first.
    pub fn unfinished_dispenses(&self) -> Result<Vec<DispenseStatus>> {
        self.write(|conn| {
            let finals = [Stage::Administered, Stage::Rejected, Stage::Failed, Stage::Cancelled].map(Stage::code);
            let mut stmt = conn.prepare_cached("SELECT status_json FROM dispenses WHERE stage NOT IN (?1, ?2, ?3, ?4) ORDER BY id")?;
            let rows = stmt.query_map(params![finals[0], finals[1], finals[2], finals[3]], |r| r.get::<_, String>(0))?.collect::<rusqlite::Result<Vec<_>>>()?;
            rows.iter().map(|json| from_json(json)).collect()
        })
    }

    pub fn dispense(&self, id: &str) -> Result<Option<DispenseStatus>> {
        self.write(|conn| {
            let json: Option<String> = conn.row("SELECT status_json FROM dispenses WHERE id = ?1", [id], |r| r.get(0)).optional()?;
            json.map(|j| from_json(&j)).transpose()
        })
    }

    /// The dispenses of one patient, oldest first.
    pub fn patient_dispenses(&self, patient_id: &str) -> Result<Vec<DispenseStatus>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached("SELECT status_json FROM dispenses WHERE json_extract(order_json, '$.patient_id') = ?1 ORDER BY created_at, id")?;
            let rows = stmt.query_map([patient_id], |r| r.get::<_, String>(0))?.collect::<rusqlite::Result<Vec<_>>>()?;
            rows.iter().map(|json| from_json(json)).collect()
        })
    }

    /// The dispense a request id created, if any.
    pub fn find_request(&self, request_id: &str) -> Result<Option<String>> {
        self.write(|conn| {
            Ok(conn.row("SELECT id FROM dispenses WHERE request_id = ?1", [request_id], |r| r.get(0)).optional()?)
        })
    }
}
