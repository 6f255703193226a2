//! Stock control beyond picking: the stock count (盘点) comparing what the store's
//! slot sensors see with what the journal says, expiry warnings ahead of time, and
//! recall / quarantine / release of holds with a reason and an actor.

use crate::inventory::{Hold, StockRecord};
use crate::journal::{Journal, JournalError};
use chrono::NaiveDate;
use hal::{ColdStore, DeviceError, SlotAddress};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// A difference between the store and the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Discrepancy {
    /// The journal has this unit in the slot, but the slot's sensor sees nothing.
    Missing { slot: String, code: String },
    /// The slot's sensor sees a unit the journal does not have there.
    Unrecorded { slot: String },
}

/// A unit that expires within the warning window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Expiring {
    pub code: String,
    pub slot: String,
    pub expiry: NaiveDate,
    pub days_left: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CountReport {
    pub day: NaiveDate,
    pub in_journal: usize,
    pub occupied: usize,
    pub held: usize,
    pub discrepancies: Vec<Discrepancy>,
    pub expiring: Vec<Expiring>,
}

#[derive(Debug, thiserror::Error)]
pub enum StockError {
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error(transparent)]
    Journal(#[from] JournalError),
}

/// Counts the store: every slot sensor against the journal, and the units expiring
/// within `warn_days` of `day`.
pub async fn count(store: &dyn ColdStore, journal: &Journal, day: NaiveDate, warn_days: i64) -> Result<CountReport, StockError> {
    let occupied: BTreeSet<SlotAddress> = store.occupied_slots().await?.into_iter().collect();
    let recorded: Vec<StockRecord> = journal.all_in_store()?;
    let by_slot: BTreeMap<SlotAddress, &StockRecord> = recorded.iter().map(|r| (r.slot, r)).collect();
    let mut discrepancies: Vec<Discrepancy> = recorded
        .iter()
        .filter(|r| !occupied.contains(&r.slot))
        .map(|r| Discrepancy::Missing { slot: r.slot.to_string(), code: r.code.clone() })
        .collect();
    discrepancies.extend(occupied.iter().filter(|s| !by_slot.contains_key(s)).map(|s| Discrepancy::Unrecorded { slot: s.to_string() }));
    let expiring = recorded
        .iter()
        .filter(|r| (r.expiry - day).num_days() <= warn_days)
        .map(|r| Expiring { code: r.code.clone(), slot: r.slot.to_string(), expiry: r.expiry, days_left: (r.expiry - day).num_days() })
        .collect();
    Ok(CountReport {
        day,
        in_journal: recorded.len(),
        occupied: occupied.len(),
        held: recorded.iter().filter(|r| r.hold.is_some()).count(),
        discrepancies,
        expiring,
    })
}

/// Recalls a batch (its lot, of one GTIN or any): every unit not yet given is held.
pub fn recall_batch(journal: &Journal, gtin: Option<&str>, lot: &str, reason: &str, actor: &str) -> Result<usize, JournalError> {
    journal.hold_batch(gtin, lot, Hold::Recalled, reason, actor)
}

pub fn quarantine_unit(journal: &Journal, code: &str, reason: &str, actor: &str) -> Result<(), JournalError> {
    journal.hold_unit(code, Hold::Quarantined, reason, actor)
}
