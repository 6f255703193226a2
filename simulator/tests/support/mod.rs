//! What the simulator's tests share.
#![allow(dead_code)] // each test binary uses its own subset


use hal::SlotAddress;
use hal::codes::Gs1Code;
use hal::manifest::ManifestUnit;

/// A HepB unit (lot L1, expiry 2027-01-31) with this serial in this slot.
pub fn unit(slot: SlotAddress, serial: &str) -> ManifestUnit {
    ManifestUnit {
        slot,
        code: Gs1Code { gtin: "06901234000016".into(), expiry: chrono::NaiveDate::from_ymd_opt(2027, 1, 31), lot: Some("L1".into()), serial: Some(serial.into()) },
        physical_label: None,
    }
}
