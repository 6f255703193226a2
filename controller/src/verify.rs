//! Verification of a scanned unit against the order (the machine's part of
//! 三查七对): a pure function that returns *every* violation, each with a stable id.
//! A unit with any violation never reaches a booth.

use crate::catalog::{Catalog, Product};
use crate::inventory::{StockRecord, UnitState};
use crate::order::PatientOrder;
use chrono::NaiveDate;
use hal::codes::UnitCode;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Stable identifiers of failed checks, as the clinic software sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ViolationId {
    /// The code is not in the stock records: never stocked here, or fake.
    UnknownUnit,
    /// A known unit, but not the one the picker was sent for.
    NotThePickedUnit,
    /// The unit was already delivered or administered: a second physical unit with
    /// the same code is a counterfeit alarm.
    DuplicateUnit,
    /// The unit's product is not the product ordered.
    ProductMismatch,
    /// Expired on the day of administration.
    Expired,
    /// The label's lot or expiry differ from the stock record.
    LabelRecordMismatch,
    /// No code could be read from the unit.
    Unreadable,
    /// A device failed while the unit was on its way; it cannot be trusted.
    HandlingFault,
}

impl ViolationId {
    pub fn as_str(self) -> &'static str {
        match self {
            ViolationId::UnknownUnit => "UnknownUnit",
            ViolationId::NotThePickedUnit => "NotThePickedUnit",
            ViolationId::DuplicateUnit => "DuplicateUnit",
            ViolationId::ProductMismatch => "ProductMismatch",
            ViolationId::Expired => "Expired",
            ViolationId::LabelRecordMismatch => "LabelRecordMismatch",
            ViolationId::Unreadable => "Unreadable",
            ViolationId::HandlingFault => "HandlingFault",
        }
    }
}

impl fmt::Display for ViolationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One failed check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    pub id: ViolationId,
    pub message: String,
}

impl Violation {
    pub fn new(id: ViolationId, message: impl Into<String>) -> Self {
        Self { id, message: message.into() }
    }
}

/// What verification looks at.
#[derive(Debug)]
pub struct Evidence<'a> {
    pub order: &'a PatientOrder,
    pub catalog: &'a Catalog,
    /// What the camera read.
    pub scanned: &'a UnitCode,
    /// The stock record of the scanned code, if there is one.
    pub record: Option<&'a StockRecord>,
    /// The canonical code of the unit the picker was sent for.
    pub picked_code: &'a str,
    /// The dispense doing the checking (its own unit is `Picked` by it).
    pub dispense_id: &'a str,
    pub administration_day: NaiveDate,
}

/// Every violation of the evidence; empty means the unit may go to the booth.
pub fn verify(e: &Evidence<'_>) -> Vec<Violation> {
    let mut violations = Vec::new();
    let scanned_code = e.scanned.canonical();
    let ordered: Option<&Product> = e.catalog.product(&e.order.product_id);
    let actual = e.catalog.product_of(e.scanned);

    match (ordered, actual) {
        (Some(o), Some(a)) if o.id == a.id => {}
        (Some(o), Some(a)) => violations.push(Violation::new(
            ViolationId::ProductMismatch,
            format!("ordered {} but the unit is {}", o.id, a.id),
        )),
        (_, None) => violations.push(Violation::new(
            ViolationId::ProductMismatch,
            format!("the unit's product code is not in the catalog (ordered {})", e.order.product_id),
        )),
        (None, Some(a)) => violations.push(Violation::new(
            ViolationId::ProductMismatch,
            format!("ordered product {:?} is not in the catalog; the unit is {}", e.order.product_id, a.id),
        )),
    }

    match e.record {
        None => violations.push(Violation::new(ViolationId::UnknownUnit, format!("{scanned_code} is not in the stock records"))),
        Some(r) => {
            let used = matches!(r.state, UnitState::Delivered | UnitState::Administered)
                || (r.state == UnitState::Picked && r.dispense_id.as_deref() != Some(e.dispense_id));
            if used {
                violations.push(Violation::new(
                    ViolationId::DuplicateUnit,
                    format!("{scanned_code} is already {} (dispense {})", r.state.as_str(), r.dispense_id.as_deref().unwrap_or("-")),
                ));
            } else if r.code != e.picked_code {
                violations.push(Violation::new(
                    ViolationId::NotThePickedUnit,
                    format!("read {scanned_code}, but the picker was sent for {}", e.picked_code),
                ));
            }
            if r.expiry < e.administration_day {
                violations.push(Violation::new(ViolationId::Expired, format!("expired on {}", r.expiry)));
            }
        }
    }

    if let UnitCode::Gs1(label) = e.scanned {
        if let Some(expiry) = label.expiry {
            if expiry < e.administration_day && !violations.iter().any(|v| v.id == ViolationId::Expired) {
                violations.push(Violation::new(ViolationId::Expired, format!("label says it expired on {expiry}")));
            }
        }
        if let Some(r) = e.record {
            let lot_differs = label.lot.as_deref().is_some_and(|lot| lot != r.lot);
            let expiry_differs = label.expiry.is_some_and(|d| d != r.expiry);
            if lot_differs || expiry_differs {
                violations.push(Violation::new(
                    ViolationId::LabelRecordMismatch,
                    format!(
                        "label lot {} expiry {}, record lot {} expiry {}",
                        label.lot.as_deref().unwrap_or("-"),
                        label.expiry.map_or("-".to_owned(), |d| d.to_string()),
                        r.lot,
                        r.expiry
                    ),
                ));
            }
        }
    }
    violations
}

#[cfg(test)]
mod tests {
    use super::*;
    use hal::codes::Gs1Code;
    use hal::{BoothId, SlotAddress};

    const HEPB: &str = "06901234000016";
    const MMR: &str = "06901234000078";

    fn catalog() -> Catalog {
        toml::from_str(&format!(
            r#"
            [[product]]
            id = "HepB"
            name = "HepB"
            specification = "10 µg"
            route = "IM"
            gtins = ["{HEPB}"]
            [[product]]
            id = "MMR"
            name = "MMR"
            specification = "0.5 mL"
            route = "SC"
            gtins = ["{MMR}"]
            "#
        ))
        .expect("catalog")
    }

    fn order() -> PatientOrder {
        PatientOrder { patient_id: "P1".into(), patient_name: "Li".into(), product_id: "HepB".into(), booth: BoothId(1), dose_number: 1 }
    }

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("date")
    }

    fn label(gtin: &str, expiry: NaiveDate, serial: &str) -> UnitCode {
        UnitCode::Gs1(Gs1Code { gtin: gtin.into(), expiry: Some(expiry), lot: Some("L1".into()), serial: Some(serial.into()) })
    }

    fn record_of(code: &UnitCode, state: UnitState, dispense: Option<&str>) -> StockRecord {
        let UnitCode::Gs1(c) = code else { panic!("gs1 only") };
        StockRecord {
            code: code.canonical(),
            gtin: c.gtin.clone(),
            lot: c.lot.clone().unwrap_or_default(),
            expiry: c.expiry.expect("expiry"),
            slot: SlotAddress::new(0, 0, 0),
            state,
            dispense_id: dispense.map(str::to_owned),
        }
    }

    fn ids(v: &[Violation]) -> Vec<ViolationId> {
        v.iter().map(|v| v.id).collect()
    }

    /// Verifies `scanned` for dispense D1 of a HepB order on 2026-11-24.
    fn check(scanned: &UnitCode, record: Option<&StockRecord>, picked_code: &str) -> Vec<Violation> {
        let (catalog, order) = (catalog(), order());
        verify(&Evidence {
            order: &order,
            catalog: &catalog,
            scanned,
            record,
            picked_code,
            dispense_id: "D1",
            administration_day: day(2026, 11, 24),
        })
    }

    #[test]
    fn the_right_unit_passes() {
        let scanned = label(HEPB, day(2027, 6, 30), "S1");
        let record = record_of(&scanned, UnitState::Picked, Some("D1"));
        let found = check(&scanned, Some(&record), &record.code);
        assert_eq!(found, vec![]);
    }

    #[test]
    fn every_violation_is_reported_not_just_the_first() {
        let scanned = label(MMR, day(2026, 1, 31), "S9");
        let found = check(&scanned, None, "(01)x");
        assert_eq!(ids(&found), vec![ViolationId::ProductMismatch, ViolationId::UnknownUnit, ViolationId::Expired]);
    }

    #[test]
    fn a_used_code_seen_again_is_a_duplicate() {
        let scanned = label(HEPB, day(2027, 6, 30), "S1");
        let record = record_of(&scanned, UnitState::Administered, Some("D0"));
        let found = check(&scanned, Some(&record), &record.code);
        assert_eq!(ids(&found), vec![ViolationId::DuplicateUnit]);
    }

    #[test]
    fn label_disagreeing_with_record_and_wrong_unit_are_caught() {
        let scanned = label(HEPB, day(2027, 6, 30), "S2");
        let mut record = record_of(&scanned, UnitState::InStore, None);
        record.lot = "OTHER".into();
        let found = check(&scanned, Some(&record), "(01)06901234000016(21)S1");
        assert_eq!(ids(&found), vec![ViolationId::NotThePickedUnit, ViolationId::LabelRecordMismatch]);
    }
}
