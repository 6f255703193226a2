//! Verification of a scanned unit against the order — the machine's part of
//! 三查七对一验证: pure functions that return *every* violation, each with a stable
//! id. A unit with any violation never reaches a booth.

use crate::rules::catalog::{Catalog, Product};
use crate::rules::inventory::{Hold, StockRecord, UnitState};
use crate::rules::order::{PatientOrder, PriorDose};
use chrono::{DateTime, NaiveDate, Utc};
use hal::codes::UnitCode;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Stable identifiers of failed checks, as the clinic software sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ViolationId {
    /// The code is not in the stock records: never stocked here, or fake.
    UnknownUnit,
    /// A known unit that is no longer stock (already sent to the reject bin).
    NotInStock,
    /// A known unit, but not the one the picker was sent for.
    NotThePickedUnit,
    /// The unit was already delivered or administered: a second physical unit with
    /// the same code is a counterfeit alarm.
    DuplicateUnit,
    /// The unit's product is not the product ordered.
    ProductMismatch,
    /// The product's specification (规格) is not the one ordered.
    SpecificationMismatch,
    /// The product's dose is not the one ordered.
    DoseMismatch,
    /// The ordered route is not the product's.
    RouteNotAllowed,
    /// The ordered injection site is not one the product may be given at.
    SiteNotAllowed,
    /// Expired at the expected time of administration.
    Expired,
    /// Its batch was recalled.
    Recalled,
    /// The unit is quarantined pending review.
    Quarantined,
    /// The unit was exposed to a cold-chain excursion.
    ColdChainBreach,
    /// A freeze-sensitive unit was in the cabinet through a freeze excursion.
    FreezeExposed,
    /// It would be out of refrigeration longer than the product allows by the jab.
    OutOfFridgeLimit,
    /// Its vial monitor reached the end point: the heat it lived through used up
    /// its budget, whatever its expiry.
    HeatBudgetExceeded,
    /// The patient's age is outside the product's eligible ages.
    AgeNotEligible,
    /// The dose number does not follow the patient's history of this product.
    DoseNumberMismatch,
    /// Too soon after the previous dose (of the series, or of another live vaccine).
    IntervalTooShort,
    /// The clinic has not attested the health and contraindication check.
    HealthCheckMissing,
    /// The label's lot or expiry differ from the stock record.
    LabelRecordMismatch,
    /// No code could be read from the unit.
    Unreadable,
    /// A device failed while the unit was on its way; it cannot be trusted.
    HandlingFault,
    /// The guardian did not validate in time, or a scan at the booth did not match.
    ValidationFailed,
    /// The unit's record could not be read when it was looked at again: what
    /// cannot be read is treated as unsafe (H-06).
    RecordUnreadable,
}

impl ViolationId {
    pub const ALL: [ViolationId; 25] = [
        ViolationId::UnknownUnit,
        ViolationId::NotInStock,
        ViolationId::NotThePickedUnit,
        ViolationId::DuplicateUnit,
        ViolationId::ProductMismatch,
        ViolationId::SpecificationMismatch,
        ViolationId::DoseMismatch,
        ViolationId::RouteNotAllowed,
        ViolationId::SiteNotAllowed,
        ViolationId::Expired,
        ViolationId::Recalled,
        ViolationId::Quarantined,
        ViolationId::ColdChainBreach,
        ViolationId::FreezeExposed,
        ViolationId::OutOfFridgeLimit,
        ViolationId::HeatBudgetExceeded,
        ViolationId::AgeNotEligible,
        ViolationId::DoseNumberMismatch,
        ViolationId::IntervalTooShort,
        ViolationId::HealthCheckMissing,
        ViolationId::LabelRecordMismatch,
        ViolationId::Unreadable,
        ViolationId::HandlingFault,
        ViolationId::ValidationFailed,
        ViolationId::RecordUnreadable,
    ];

    /// The stable identifier: the variant's name.
    pub fn as_str(self) -> &'static str {
        match self {
            ViolationId::UnknownUnit => "UnknownUnit",
            ViolationId::NotInStock => "NotInStock",
            ViolationId::NotThePickedUnit => "NotThePickedUnit",
            ViolationId::DuplicateUnit => "DuplicateUnit",
            ViolationId::ProductMismatch => "ProductMismatch",
            ViolationId::SpecificationMismatch => "SpecificationMismatch",
            ViolationId::DoseMismatch => "DoseMismatch",
            ViolationId::RouteNotAllowed => "RouteNotAllowed",
            ViolationId::SiteNotAllowed => "SiteNotAllowed",
            ViolationId::Expired => "Expired",
            ViolationId::Recalled => "Recalled",
            ViolationId::Quarantined => "Quarantined",
            ViolationId::ColdChainBreach => "ColdChainBreach",
            ViolationId::OutOfFridgeLimit => "OutOfFridgeLimit",
            ViolationId::HeatBudgetExceeded => "HeatBudgetExceeded",
            ViolationId::FreezeExposed => "FreezeExposed",
            ViolationId::AgeNotEligible => "AgeNotEligible",
            ViolationId::DoseNumberMismatch => "DoseNumberMismatch",
            ViolationId::IntervalTooShort => "IntervalTooShort",
            ViolationId::HealthCheckMissing => "HealthCheckMissing",
            ViolationId::LabelRecordMismatch => "LabelRecordMismatch",
            ViolationId::Unreadable => "Unreadable",
            ViolationId::HandlingFault => "HandlingFault",
            ViolationId::ValidationFailed => "ValidationFailed",
            ViolationId::RecordUnreadable => "RecordUnreadable",
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

/// The checks [`verify`] makes, in order, as the journal records them.
pub const CHECKS: &[&str] = &[
    "health check attested",
    "age",
    "dose number",
    "intervals",
    "product",
    "specification",
    "dose",
    "route",
    "site",
    "stock record",
    "not used before",
    "the picked unit",
    "expiry",
    "recall",
    "quarantine",
    "cold chain",
    "time out of refrigeration",
    "label against record",
];

/// Two live injectable vaccines given on different days must be this far apart.
const LIVE_INTERVAL_DAYS: i64 = 28;

/// When the jab is expected: the instant (for time out of refrigeration) and the
/// site's local calendar date then (for expiry, age and intervals: never the UTC
/// date, SAFETY.md H-01).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JabTime {
    pub at: DateTime<Utc>,
    pub day: NaiveDate,
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
    /// When the jab is expected (now plus the usual time to the booth and validation).
    pub expected_administration: JabTime,
}

/// The violation a held unit is: its batch recalled, itself quarantined, or exposed
/// to a cold-chain excursion. Checked at verification and again while the unit
/// waits at the booth, since a hold can come at any moment.
pub fn hold_violation(r: &StockRecord) -> Option<Violation> {
    match &r.hold {
        Some((Hold::Recalled, why)) => Some(Violation::new(ViolationId::Recalled, format!("batch {} recalled: {why}", r.lot))),
        Some((Hold::Quarantined, why)) => Some(Violation::new(ViolationId::Quarantined, format!("quarantined: {why}"))),
        Some((Hold::ColdChain, why)) => Some(Violation::new(ViolationId::ColdChainBreach, format!("cold-chain excursion: {why}"))),
        Some((Hold::FreezeExposed, why)) => Some(Violation::new(ViolationId::FreezeExposed, format!("frozen in the cabinet: {why}"))),
        // The unit's own budget says it (HeatBudgetExceeded); the hold only keeps it from being used.
        Some((Hold::HeatBudget, _)) => None,
        None => None,
    }
}

/// The violation of a unit at or past its vial monitor's end point.
pub fn heat_violation(r: &StockRecord) -> Option<Violation> {
    (r.heat_consumed >= crate::rules::inventory::HEAT_END_POINT)
        .then(|| Violation::new(ViolationId::HeatBudgetExceeded, format!("vial monitor at its end point: {:.0} % of the heat budget used", r.heat_consumed * 100.0)))
}

/// The violation of a unit out of refrigeration longer than its product allows by
/// the expected jab.
fn out_of_fridge_violation(r: &StockRecord, product: &Product, expected_administration: DateTime<Utc>) -> Option<Violation> {
    let out = expected_administration - r.left_store_at?;
    let limit = chrono::Duration::minutes(i64::from(product.out_of_fridge_limit_min));
    (out > limit).then(|| Violation::new(ViolationId::OutOfFridgeLimit, format!("{} min out of refrigeration by the jab; {} allows {}", out.num_minutes(), product.id, limit.num_minutes())))
}

/// What can have changed while a verified unit waited at its booth's gate: a hold
/// (recall, quarantine, cold-chain excursion), its time out of refrigeration, its
/// expiry. Checked again the moment before it drops into the tray.
pub fn release_check(r: &StockRecord, product: &Product, jab: JabTime) -> Vec<Violation> {
    let mut found: Vec<Violation> = hold_violation(r).into_iter().chain(out_of_fridge_violation(r, product, jab.at)).chain(heat_violation(r)).collect();
    if r.expiry < jab.day {
        found.push(Violation::new(ViolationId::Expired, format!("expired on {}", r.expiry)));
    }
    found
}

/// Every violation of the evidence; empty means the unit may go to the booth. The
/// patient's own checks ([`check_order`]) come first, then the unit's.
pub fn verify(e: &Evidence<'_>) -> Vec<Violation> {
    let mut violations = check_order(e.order, e.catalog, e.expected_administration.day);
    let day = e.expected_administration.day;
    let scanned_code = e.scanned.canonical();
    let ordered: Option<&Product> = e.catalog.product(&e.order.product_id);
    let actual = e.catalog.product_of(e.scanned);
    let mut push = |id, message: String| violations.push(Violation::new(id, message));

    match (ordered, actual) {
        (Some(o), Some(a)) if o.id == a.id => {}
        (Some(o), Some(a)) => push(ViolationId::ProductMismatch, format!("ordered {} but the unit is {}", o.id, a.id)),
        (_, None) => push(ViolationId::ProductMismatch, format!("the unit's product code is not in the catalog (ordered {})", e.order.product_id)),
        (None, Some(a)) => push(ViolationId::ProductMismatch, format!("ordered product {:?} is not in the catalog; the unit is {}", e.order.product_id, a.id)),
    }
    // The seven verifications compare the order with what this unit is.
    if let Some(product) = actual {
        check_product_facts(e.order, product, &mut push);
    }

    match e.record {
        None => push(ViolationId::UnknownUnit, format!("{scanned_code} is not in the stock records")),
        Some(r) => {
            let used = matches!(r.state, UnitState::Delivered | UnitState::Administered)
                || (r.state == UnitState::Picked && r.dispense_id.as_deref() != Some(e.dispense_id));
            if used {
                push(ViolationId::DuplicateUnit, format!("{scanned_code} is already {} (dispense {})", r.state.as_str(), r.dispense_id.as_deref().unwrap_or("-")));
            } else if r.state == UnitState::Rejected {
                push(ViolationId::NotInStock, format!("{scanned_code} was sent to the reject bin (dispense {})", r.dispense_id.as_deref().unwrap_or("-")));
            } else if r.code != e.picked_code {
                push(ViolationId::NotThePickedUnit, format!("read {scanned_code}, but the picker was sent for {}", e.picked_code));
            }
            if r.expiry < day {
                push(ViolationId::Expired, format!("expired on {}", r.expiry));
            }
            for v in hold_violation(r).into_iter().chain(heat_violation(r)) {
                push(v.id, v.message);
            }
            if let Some(v) = actual.or(ordered).and_then(|product| out_of_fridge_violation(r, product, e.expected_administration.at)) {
                push(v.id, v.message);
            }
        }
    }

    if let UnitCode::Gs1(label) = e.scanned {
        if let Some(expiry) = label.expiry
            && expiry < day
            && !violations.iter().any(|v| v.id == ViolationId::Expired)
        {
            violations.push(Violation::new(ViolationId::Expired, format!("label says it expired on {expiry}")));
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

/// Specification, dose, route and site as ordered, against the product's facts.
fn check_product_facts(order: &PatientOrder, product: &Product, push: &mut impl FnMut(ViolationId, String)) {
    if let Some(spec) = &order.specification
        && spec != &product.specification
    {
        push(ViolationId::SpecificationMismatch, format!("ordered {spec}, {} is {}", product.id, product.specification));
    }
    let product_ul = (product.dose_ml * 1000.0).round() as u32;
    if let Some(ul) = order.dose_ul
        && ul != product_ul
    {
        push(ViolationId::DoseMismatch, format!("ordered {} mL, {} is {} mL", f64::from(ul) / 1000.0, product.id, product.dose_ml));
    }
    if let Some(route) = &order.route
        && route != &product.route
    {
        push(ViolationId::RouteNotAllowed, format!("route {route} ordered, {} is given {}", product.id, product.route));
    }
    if let Some(site) = &order.site
        && !product.sites.contains(site)
    {
        push(ViolationId::SiteNotAllowed, format!("site {site:?} ordered, {} is given at {}", product.id, product.sites.join(" or ")));
    }
}

/// The patient's checks, which need no unit: run before anything is picked (so no
/// unit is spent on a child who may not have it) and again at verification.
pub fn check_order(order: &PatientOrder, catalog: &Catalog, day: NaiveDate) -> Vec<Violation> {
    let mut v = Vec::new();
    if !order.health_check_attested {
        v.push(Violation::new(ViolationId::HealthCheckMissing, "the clinic has not attested the health and contraindication check"));
    }
    let Some(product) = catalog.product(&order.product_id) else { return v };
    let age = (day - order.birth_date).num_days();
    let too_old = product.max_age_days.is_some_and(|max| age > i64::from(max));
    if age < i64::from(product.min_age_days) || too_old {
        let range = match product.max_age_days {
            Some(max) => format!("{} to {max} days", product.min_age_days),
            None => format!("from {} days", product.min_age_days),
        };
        v.push(Violation::new(ViolationId::AgeNotEligible, format!("{age} days old; {} is for ages {range}", product.id)));
    }
    let earlier: Vec<&PriorDose> = order.history.iter().filter(|h| h.product_id == product.id).collect();
    let expected = earlier.len() as u32 + 1;
    if order.dose_number != expected || order.dose_number > product.doses {
        v.push(Violation::new(
            ViolationId::DoseNumberMismatch,
            format!("dose {} ordered; history has {} dose(s) of {} (series of {})", order.dose_number, earlier.len(), product.id, product.doses),
        ));
    }
    if let Some(last) = earlier.iter().map(|h| h.date).max() {
        let since = (day - last).num_days();
        if since < i64::from(product.min_interval_days) {
            v.push(Violation::new(ViolationId::IntervalTooShort, format!("{since} days since the last {}; at least {} needed", product.id, product.min_interval_days)));
        }
    }
    if product.live && product.route != "PO" {
        let recent_live = order.history.iter().filter(|h| h.product_id != product.id).find(|h| {
            let since = (day - h.date).num_days();
            let live_injectable = catalog.product(&h.product_id).is_some_and(|p| p.live && p.route != "PO");
            live_injectable && since > 0 && since < LIVE_INTERVAL_DAYS
        });
        if let Some(h) = recent_live {
            v.push(Violation::new(
                ViolationId::IntervalTooShort,
                format!("{} (live) {} days after {} (live); two live vaccines not given the same day need {LIVE_INTERVAL_DAYS}", product.id, (day - h.date).num_days(), h.product_id),
            ));
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A jab at `at`, on the UTC date (these tests run at UTC noon).
    fn jab(at: DateTime<Utc>) -> JabTime {
        JabTime { at, day: at.date_naive() }
    }
    use hal::codes::Gs1Code;
    use hal::{BoothId, SlotAddress};
    use std::path::Path;

    const HEPB: &str = "06901234000016";
    const MMR: &str = "06901234000061";
    const JE: &str = "06901234000078";

    /// The seeded catalog of the repository: the rules run on the real product facts.
    fn catalog() -> Catalog {
        Catalog::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/catalog.toml")).expect("seeded catalog")
    }

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("date")
    }

    /// The day of every check: 2026-11-24 at noon.
    fn noon() -> DateTime<Utc> {
        day(2026, 11, 24).and_hms_opt(12, 0, 0).expect("time").and_utc()
    }

    /// A HepB dose 1 for a child born yesterday: valid as it stands.
    fn order() -> PatientOrder {
        PatientOrder::new("P1", "Li", "HepB", BoothId(1), 1, day(2026, 11, 23))
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
            hold: None,
            left_store_at: Some(noon() - chrono::Duration::minutes(2)),
            heat_consumed: 0.0,
        }
    }

    fn ids(v: &[Violation]) -> Vec<ViolationId> {
        v.iter().map(|v| v.id).collect()
    }

    #[test]
    fn the_check_at_the_gate_finds_what_changed_while_the_unit_waited() {
        let catalog = catalog();
        let hepb = catalog.product("HepB").expect("HepB");
        let waited = record_of(&good_label(), UnitState::Picked, Some("D1"));
        assert!(release_check(&waited, hepb, jab(noon())).is_empty(), "nothing changed");
        let mut recalled = waited.clone();
        recalled.hold = Some((Hold::Recalled, "notice 7".into()));
        assert_eq!(ids(&release_check(&recalled, hepb, jab(noon()))), [ViolationId::Recalled]);
        // Out of the store since two minutes before noon: by the jab an hour later, over 30 min.
        let late = noon() + chrono::Duration::minutes(60);
        assert_eq!(ids(&release_check(&waited, hepb, jab(late))), [ViolationId::OutOfFridgeLimit]);
        let cooked = StockRecord { heat_consumed: 1.02, ..waited.clone() };
        assert_eq!(ids(&release_check(&cooked, hepb, jab(noon()))), [ViolationId::HeatBudgetExceeded], "past its vial monitor's end point");
        let warm = StockRecord { heat_consumed: 0.98, ..waited.clone() };
        assert!(release_check(&warm, hepb, jab(noon())).is_empty(), "short of it: usable");
        let expired = record_of(&label(HEPB, day(2026, 11, 23), "S2"), UnitState::Picked, Some("D1"));
        assert!(ids(&release_check(&expired, hepb, jab(noon()))).contains(&ViolationId::Expired));
    }

    /// One case: a change to the good order, scanned unit or record, and the
    /// violations it must produce (exactly those).
    struct Case {
        name: &'static str,
        order: fn(&mut PatientOrder),
        scanned: fn() -> UnitCode,
        record: fn(&UnitCode) -> Option<StockRecord>,
        expect: &'static [ViolationId],
    }

    fn good_label() -> UnitCode {
        label(HEPB, day(2027, 6, 30), "S1")
    }

    fn picked(code: &UnitCode) -> Option<StockRecord> {
        Some(record_of(code, UnitState::Picked, Some("D1")))
    }

    fn same(_: &mut PatientOrder) {}

    fn run(case: &Case) -> Vec<Violation> {
        let catalog = catalog();
        let mut order = order();
        (case.order)(&mut order);
        let scanned = (case.scanned)();
        let record = (case.record)(&scanned);
        let picked_code = good_label().canonical();
        verify(&Evidence {
            order: &order,
            catalog: &catalog,
            scanned: &scanned,
            record: record.as_ref(),
            picked_code: &picked_code,
            dispense_id: "D1",
            expected_administration: jab(noon()),
        })
    }

    const CASES: &[Case] = &[
        Case { name: "the right unit passes", order: same, scanned: good_label, record: picked, expect: &[] },
        Case {
            name: "all seven verifications as ordered pass",
            order: |o| {
                o.specification = Some("10 µg / 0.5 mL".into());
                o.dose_ul = Some(500);
                o.route = Some("IM".into());
                o.site = Some("anterolateral thigh".into());
            },
            scanned: good_label,
            record: picked,
            expect: &[],
        },
        Case { name: "unknown code", order: same, scanned: good_label, record: |_| None, expect: &[ViolationId::UnknownUnit] },
        Case {
            name: "a unit already sent to the reject bin",
            order: same,
            scanned: good_label,
            record: |c| Some(record_of(c, UnitState::Rejected, Some("D0"))),
            expect: &[ViolationId::NotInStock],
        },
        Case {
            name: "a used code seen again is a duplicate",
            order: same,
            scanned: good_label,
            record: |c| Some(record_of(c, UnitState::Administered, Some("D0"))),
            expect: &[ViolationId::DuplicateUnit],
        },
        Case {
            name: "another dispense's unit",
            order: same,
            scanned: good_label,
            record: |c| Some(record_of(c, UnitState::Picked, Some("D7"))),
            expect: &[ViolationId::DuplicateUnit],
        },
        Case {
            name: "not the unit the picker was sent for",
            order: same,
            scanned: || label(HEPB, day(2027, 6, 30), "S2"),
            record: |c| Some(record_of(c, UnitState::InStore, None)),
            expect: &[ViolationId::NotThePickedUnit],
        },
        Case {
            name: "product differs from the order",
            order: same,
            scanned: || label(MMR, day(2027, 6, 30), "M1"),
            record: picked,
            expect: &[ViolationId::ProductMismatch, ViolationId::NotThePickedUnit],
        },
        Case { name: "specification differs", order: |o| o.specification = Some("20 µg / 1.0 mL".into()), scanned: good_label, record: picked, expect: &[ViolationId::SpecificationMismatch] },
        Case { name: "dose differs", order: |o| o.dose_ul = Some(1000), scanned: good_label, record: picked, expect: &[ViolationId::DoseMismatch] },
        Case { name: "route not the product's", order: |o| o.route = Some("SC".into()), scanned: good_label, record: picked, expect: &[ViolationId::RouteNotAllowed] },
        Case { name: "site not allowed", order: |o| o.site = Some("gluteus".into()), scanned: good_label, record: picked, expect: &[ViolationId::SiteNotAllowed] },
        Case {
            name: "expired at the expected time of administration",
            order: same,
            scanned: || label(HEPB, day(2026, 11, 23), "S1"),
            record: picked,
            expect: &[ViolationId::NotThePickedUnit, ViolationId::Expired],
        },
        Case {
            name: "batch recalled",
            order: same,
            scanned: good_label,
            record: |c| picked(c).map(|r| StockRecord { hold: Some((Hold::Recalled, "supplier notice 42".into())), ..r }),
            expect: &[ViolationId::Recalled],
        },
        Case {
            name: "unit quarantined",
            order: same,
            scanned: good_label,
            record: |c| picked(c).map(|r| StockRecord { hold: Some((Hold::Quarantined, "dropped".into())), ..r }),
            expect: &[ViolationId::Quarantined],
        },
        Case {
            name: "cold-chain breach on this unit",
            order: same,
            scanned: good_label,
            record: |c| picked(c).map(|r| StockRecord { hold: Some((Hold::ColdChain, "cabinet 9.4 °C for 3 h".into())), ..r }),
            expect: &[ViolationId::ColdChainBreach],
        },
        Case {
            name: "in the cabinet through a freeze excursion",
            order: same,
            scanned: good_label,
            record: |c| picked(c).map(|r| StockRecord { hold: Some((Hold::FreezeExposed, "at or below -0.5 °C for 60 min".into())), ..r }),
            expect: &[ViolationId::FreezeExposed],
        },
        Case {
            name: "vial monitor at its end point",
            order: same,
            scanned: good_label,
            record: |c| picked(c).map(|r| StockRecord { heat_consumed: 1.0, ..r }),
            expect: &[ViolationId::HeatBudgetExceeded],
        },
        Case {
            name: "out of refrigeration too long by the jab",
            order: same,
            scanned: good_label,
            record: |c| picked(c).map(|r| StockRecord { left_store_at: Some(noon() - chrono::Duration::minutes(31)), ..r }),
            expect: &[ViolationId::OutOfFridgeLimit],
        },
        Case { name: "too young", order: |o| o.product_id = "IPV".into(), scanned: || label("06901234000030", day(2027, 6, 30), "I1"), record: |c| Some(record_of(c, UnitState::Picked, Some("D1"))), expect: &[ViolationId::AgeNotEligible, ViolationId::NotThePickedUnit] },
        Case {
            name: "too old for BCG",
            order: |o| {
                o.product_id = "BCG".into();
                o.birth_date = day(2026, 1, 1);
            },
            scanned: || label("06901234000023", day(2027, 6, 30), "B1"),
            record: |c| Some(record_of(c, UnitState::Picked, Some("D1"))),
            expect: &[ViolationId::AgeNotEligible, ViolationId::NotThePickedUnit],
        },
        Case { name: "dose number skips one", order: |o| o.dose_number = 2, scanned: good_label, record: picked, expect: &[ViolationId::DoseNumberMismatch] },
        Case {
            name: "dose 2 too soon after dose 1",
            order: |o| {
                o.birth_date = day(2026, 10, 1);
                o.dose_number = 2;
                o.history = vec![PriorDose { product_id: "HepB".into(), dose_number: 1, date: day(2026, 11, 1) }];
            },
            scanned: good_label,
            record: picked,
            expect: &[ViolationId::IntervalTooShort],
        },
        Case {
            name: "dose beyond the series",
            order: |o| {
                o.birth_date = day(2025, 1, 1);
                o.dose_number = 4;
                o.history = (1..=3).map(|n| PriorDose { product_id: "HepB".into(), dose_number: n, date: day(2025, n, 2) }).collect();
            },
            scanned: good_label,
            record: picked,
            expect: &[ViolationId::DoseNumberMismatch],
        },
        Case {
            name: "two live vaccines 10 days apart",
            order: |o| {
                o.product_id = "JE-L".into();
                o.birth_date = day(2026, 1, 1);
                o.history = vec![PriorDose { product_id: "MMR".into(), dose_number: 1, date: day(2026, 11, 14) }];
            },
            scanned: || label(JE, day(2027, 6, 30), "J1"),
            record: |c| Some(record_of(c, UnitState::Picked, Some("D1"))),
            expect: &[ViolationId::IntervalTooShort, ViolationId::NotThePickedUnit],
        },
        Case { name: "health check not attested", order: |o| o.health_check_attested = false, scanned: good_label, record: picked, expect: &[ViolationId::HealthCheckMissing] },
        Case {
            name: "label disagrees with the record",
            order: same,
            scanned: good_label,
            record: |c| picked(c).map(|r| StockRecord { lot: "OTHER".into(), ..r }),
            expect: &[ViolationId::LabelRecordMismatch],
        },
    ];

    #[test]
    fn every_rule_fires_exactly_when_broken() {
        for case in CASES {
            assert_eq!(ids(&run(case)), case.expect, "{}", case.name);
        }
    }

    #[test]
    fn every_unit_rule_has_a_case() {
        // Unreadable, HandlingFault, ValidationFailed and RecordUnreadable come from the
        // flow and the runner, not from verify.
        let covered: std::collections::HashSet<ViolationId> = CASES.iter().flat_map(|c| c.expect.iter().copied()).collect();
        for id in ViolationId::ALL {
            let from_flow = matches!(id, ViolationId::Unreadable | ViolationId::HandlingFault | ViolationId::ValidationFailed | ViolationId::RecordUnreadable);
            assert!(covered.contains(&id) || from_flow, "no case for {id}");
        }
    }

    #[test]
    fn every_violation_is_reported_not_just_the_first() {
        let case = Case {
            name: "many at once",
            order: |o| o.health_check_attested = false,
            scanned: || label(MMR, day(2026, 1, 31), "S9"),
            record: |_| None,
            expect: &[],
        };
        assert_eq!(ids(&run(&case)), [ViolationId::HealthCheckMissing, ViolationId::ProductMismatch, ViolationId::UnknownUnit, ViolationId::Expired]);
    }

    #[test]
    fn ids_are_stable_names() {
        for id in ViolationId::ALL {
            assert_eq!(format!("{id:?}"), id.as_str());
        }
    }
}
