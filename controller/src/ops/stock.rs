//! Stock control beyond picking: stock-in at the restock door (each code checked
//! against the catalog and the delivery note, then given a free slot), the stock
//! count (盘点) comparing what the store's slot sensors see with what the journal
//! says, expiry warnings ahead of time, and recall / quarantine / release of holds
//! with a reason and an actor.

use crate::rules::catalog::Catalog;
use crate::rules::inventory::{Hold, StockRecord, UnitState};
use hal::codes::UnitCode;
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
/// Recalls a batch: every unit of the lot not yet given is held. A GTIN stands for
/// its whole product, so units stocked under the product's other GTINs are held
/// too (H-09); a GTIN no product has is taken as it is.
pub fn recall_batch(journal: &Journal, catalog: &Catalog, gtin: Option<&str>, lot: &str, reason: &str, actor: &str) -> Result<usize, JournalError> {
    let gtins: Option<Vec<String>> = gtin.map(|g| catalog.product_with_gtin(g).map_or_else(|| vec![g.to_owned()], |p| p.gtins.clone()));
    journal.hold_batch(gtins.as_deref(), lot, Hold::Recalled, reason, actor)
}

pub fn quarantine_unit(journal: &Journal, code: &str, reason: &str, actor: &str) -> Result<(), JournalError> {
    journal.hold_unit(code, Hold::Quarantined, reason, actor)
}

/// A delivery as its note describes it, with the codes read off the units.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub product_id: String,
    pub lot: String,
    pub expiry: NaiveDate,
    /// Measured on arrival (a cold box out of 2–8 °C refuses the whole delivery).
    pub arrival_celsius: Option<f64>,
    /// What the restock door's reader returned for each unit.
    pub codes: Vec<String>,
    /// The supplier's delivery note number, for the records.
    pub note: String,
}

/// What stock-in did with each unit.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StockInReport {
    /// Accepted codes and the slot each goes to.
    pub accepted: Vec<(String, String)>,
    /// Refused codes (as read) and why.
    pub rejected: Vec<(String, String)>,
}

/// Checks each unit of a delivery and gives the accepted ones the free slots nearest
/// the hatch. Refusals name the reason, as pharmacy robots do: unreadable code,
/// unknown product, not the delivered product, no expiry, label differs from the
/// note, expired, duplicate code, wrong temperature on arrival, store full.
pub async fn stock_in(journal: &Journal, catalog: &Catalog, store: &dyn ColdStore, delivery: &Delivery, day: NaiveDate, actor: &str) -> Result<StockInReport, StockError> {
    let mut report = StockInReport::default();
    let refuse_all = |why: String| delivery.codes.iter().map(|c| (c.clone(), why.clone())).collect::<Vec<_>>();
    if let Some(t) = delivery.arrival_celsius.filter(|t| !(2.0..=8.0).contains(t)) {
        report.rejected = refuse_all(format!("wrong temperature on arrival: {t:.1} °C (2–8 °C required)"));
        return Ok(report);
    }
    let Some(product) = catalog.product(&delivery.product_id) else {
        report.rejected = refuse_all(format!("unknown product {:?}", delivery.product_id));
        return Ok(report);
    };
    if delivery.expiry < day {
        report.rejected = refuse_all(format!("expired on {}", delivery.expiry));
        return Ok(report);
    }
    let occupied: BTreeSet<SlotAddress> = store.occupied_slots().await?.into_iter().collect();
    // A slot is taken by a unit in stock, and by one picked from it whose journey is
    // not settled yet: a recovery must never mistake a new unit for the old (H-09).
    let reserved = journal.units_in_state(UnitState::Picked)?;
    let recorded: BTreeSet<SlotAddress> = journal.all_in_store()?.into_iter().chain(reserved).map(|r| r.slot).collect();
    let mut free = store.slots().await?.into_iter().filter(|s| !occupied.contains(s) && !recorded.contains(s));
    let mut seen = BTreeSet::new();
    for text in &delivery.codes {
        let verdict = check_unit(journal, catalog, product, delivery, text, &mut seen)?;
        let code = match verdict {
            Ok(code) => code,
            Err(why) => {
                report.rejected.push((text.clone(), why));
                continue;
            }
        };
        let Some(slot) = free.next() else {
            report.rejected.push((text.clone(), "the store is full".into()));
            continue;
        };
        let record = StockRecord {
            code: code.clone(),
            gtin: product.gtins.first().cloned().unwrap_or_default(),
            lot: delivery.lot.clone(),
            expiry: delivery.expiry,
            slot,
            state: UnitState::InStore,
            dispense_id: None,
            hold: None,
            left_store_at: None,
            heat_consumed: 0.0,
        };
        let detail = format!("stock-in by {actor}, delivery note {}", delivery.note);
        if journal.stock_unit(&record, &detail)? {
            report.accepted.push((code, slot.to_string()));
        } else {
            report.rejected.push((text.clone(), "duplicate code: already in the journal".into()));
        }
    }
    Ok(report)
}

/// One unit's checks; `Ok` with its canonical code, or why it is refused.
fn check_unit(
    journal: &Journal,
    catalog: &Catalog,
    product: &crate::rules::catalog::Product,
    delivery: &Delivery,
    text: &str,
    seen: &mut BTreeSet<String>,
) -> Result<Result<String, String>, JournalError> {
    let code = match UnitCode::parse(text) {
        Ok(code) => code,
        Err(e) => return Ok(Err(format!("unreadable code: {e}"))),
    };
    // A code seen before is the most serious finding: check it first.
    let canonical = code.canonical();
    if !seen.insert(canonical.clone()) {
        return Ok(Err("duplicate code: twice in this delivery".into()));
    }
    if journal.stock_record(&canonical)?.is_some() {
        return Ok(Err("duplicate code: already in the journal (counterfeit?)".into()));
    }

    match catalog.product_of(&code) {
        None => return Ok(Err("unknown product: the code's product is not in the catalog".into())),
        Some(p) if p.id != product.id => return Ok(Err(format!("not the delivered product: the unit is {}, the note says {}", p.id, product.id))),
        Some(_) => {}
    }
    if let UnitCode::Gs1(label) = &code {
        let Some(expiry) = label.expiry else { return Ok(Err("no expiry on the label".into())) };
        if expiry != delivery.expiry || label.lot.as_deref().is_some_and(|lot| lot != delivery.lot) {
            return Ok(Err(format!(
                "label lot {} expiry {expiry} differ from the delivery note (lot {} expiry {})",
                label.lot.as_deref().unwrap_or("-"),
                delivery.lot,
                delivery.expiry
            )));
        }
    }
    Ok(Ok(canonical))
}
