//! Stock records and the picking policy: earliest expiry first among units that
//! will still be valid on the day of administration.

use chrono::NaiveDate;
use hal::SlotAddress;
use serde::{Deserialize, Serialize};

/// Where a unit is in its life, from stock-in to the jab.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UnitState {
    InStore,
    /// Taken by a dispense; on its way.
    Picked,
    /// In a booth tray.
    Delivered,
    Administered,
    /// In the reject bin, quarantined.
    Rejected,
}

impl UnitState {
    pub fn as_str(self) -> &'static str {
        match self {
            UnitState::InStore => "in_store",
            UnitState::Picked => "picked",
            UnitState::Delivered => "delivered",
            UnitState::Administered => "administered",
            UnitState::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [UnitState::InStore, UnitState::Picked, UnitState::Delivered, UnitState::Administered, UnitState::Rejected]
            .into_iter()
            .find(|state| state.as_str() == s)
    }
}

/// Why a unit may not be used, whatever its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Hold {
    /// Its batch was recalled.
    Recalled,
    /// Quarantined pending review.
    Quarantined,
    /// Exposed to a cold-chain (heat) excursion.
    ColdChain,
    /// A freeze-sensitive unit that was in the cabinet through a freeze excursion.
    FreezeExposed,
    /// Its vial monitor reached the end point.
    HeatBudget,
}

impl Hold {
    pub fn as_str(self) -> &'static str {
        match self {
            Hold::Recalled => "recalled",
            Hold::Quarantined => "quarantined",
            Hold::ColdChain => "cold_chain",
            Hold::FreezeExposed => "freeze_exposed",
            Hold::HeatBudget => "heat_budget",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Hold::Recalled, Hold::Quarantined, Hold::ColdChain, Hold::FreezeExposed, Hold::HeatBudget].into_iter().find(|h| h.as_str() == s)
    }
}

/// What the journal knows of one unit.
#[derive(Debug, Clone, PartialEq)]
pub struct StockRecord {
    /// Canonical code (the unit's identity).
    pub code: String,
    pub gtin: String,
    pub lot: String,
    pub expiry: NaiveDate,
    pub slot: SlotAddress,
    pub state: UnitState,
    pub dispense_id: Option<String>,
    /// A hold and its reason; a held unit is never picked.
    pub hold: Option<(Hold, String)>,
    /// When it left the store (its time out of refrigeration starts).
    pub left_store_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The share of its heat budget (vial monitor) consumed, 0 to 1 and beyond.
    pub heat_consumed: f64,
}

/// At or past its vial monitor's end point: not used, whatever its expiry.
pub const HEAT_END_POINT: f64 = 1.0;

/// The unit to pick: in store, of one of the product's GTINs, not expired on the day
/// of administration and short of its vial monitor's end point; earliest expiry
/// first, then the more heat-exposed (WHO: use the more exposed usable vials first),
/// then the slot nearest the hatch.
pub fn choose_fefo<'a>(candidates: &'a [StockRecord], gtins: &[String], administration_day: NaiveDate) -> Option<&'a StockRecord> {
    candidates
        .iter()
        .filter(|r| r.state == UnitState::InStore && r.hold.is_none() && gtins.contains(&r.gtin) && r.expiry >= administration_day && r.heat_consumed < HEAT_END_POINT)
        .min_by(|a, b| a.expiry.cmp(&b.expiry).then(b.heat_consumed.total_cmp(&a.heat_consumed)).then(a.slot.cmp(&b.slot)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(code: &str, gtin: &str, expiry: (i32, u32, u32), column: u8, state: UnitState) -> StockRecord {
        StockRecord {
            code: code.into(),
            gtin: gtin.into(),
            lot: "L".into(),
            expiry: NaiveDate::from_ymd_opt(expiry.0, expiry.1, expiry.2).expect("valid date"),
            slot: SlotAddress::new(0, 0, column),
            state,
            dispense_id: None, hold: None, left_store_at: None, heat_consumed: 0.0,
        }
    }

    /// Issue 16: a unit past its vial monitor's end point is never chosen; among
    /// usable units of the same expiry the more exposed goes first (WHO).
    #[test]
    fn the_vial_monitor_excludes_spent_units_and_puts_the_more_exposed_first() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 24).expect("date");
        let g = ["G".to_owned()];
        let near = StockRecord { heat_consumed: 0.1, ..record("near", "G", (2027, 1, 31), 0, UnitState::InStore) };
        let exposed = StockRecord { heat_consumed: 0.6, ..record("exposed", "G", (2027, 1, 31), 5, UnitState::InStore) };
        let spent = StockRecord { heat_consumed: 1.0, ..record("spent", "G", (2026, 12, 31), 0, UnitState::InStore) };
        let later = record("later", "G", (2027, 6, 30), 0, UnitState::InStore);
        let all = [near, exposed, spent, later];
        assert_eq!(choose_fefo(&all, &g, today).map(|r| r.code.as_str()), Some("exposed"), "the spent unit is out; of one expiry the more exposed");
        assert_eq!(choose_fefo(&all[2..], &g, today).map(|r| r.code.as_str()), Some("later"), "a spent unit is never chosen");
    }

    #[test]
    fn earliest_valid_expiry_of_the_product_wins() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 24).expect("date");
        let stock = vec![
            record("late", "A", (2027, 6, 30), 0, UnitState::InStore),
            record("expired", "A", (2026, 11, 23), 1, UnitState::InStore),
            record("other-product", "B", (2026, 12, 1), 2, UnitState::InStore),
            record("already-picked", "A", (2026, 12, 1), 3, UnitState::Picked),
            record("soonest", "A", (2026, 11, 24), 4, UnitState::InStore),
        ];
        let chosen = choose_fefo(&stock, &["A".into()], today).expect("a unit");
        assert_eq!(chosen.code, "soonest", "expiring today is still valid today; expired yesterday is not");
        assert!(choose_fefo(&stock, &["C".into()], today).is_none());
    }

    #[test]
    fn state_names_round_trip() {
        for s in [UnitState::InStore, UnitState::Picked, UnitState::Delivered, UnitState::Administered, UnitState::Rejected] {
            assert_eq!(UnitState::parse(s.as_str()), Some(s));
        }
        assert_eq!(UnitState::parse("lost"), None);
    }
}
