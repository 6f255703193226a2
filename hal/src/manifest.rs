//! The loading manifest of the cold store: which unit (by its delivery data) sits in
//! which slot. The simulator loads it physically; the controller imports it as stock
//! records. A unit may carry a different `physical_label` than its delivery data says,
//! which is how a mislabelled unit is staged for testing the checks.

use crate::codes::Gs1Code;
use crate::types::SlotAddress;
use chrono::NaiveDate;
use serde::Deserialize;

/// One unit of the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestUnit {
    pub slot: SlotAddress,
    /// The delivery data: what the stock record says this unit is.
    pub code: Gs1Code,
    /// The element string actually printed on the unit, when it differs from `code`.
    pub physical_label: Option<String>,
}

impl ManifestUnit {
    /// What the camera will read on this unit.
    pub fn printed_label(&self) -> String {
        self.physical_label.clone().unwrap_or_else(|| self.code.element_string())
    }
}

/// Why a manifest could not be loaded, naming the entry.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The TOML parser's message (kept as text, so it is printed once).
    #[error("not valid TOML: {0}")]
    Toml(String),
    #[error("manifest {entry}: {problem}")]
    Entry { entry: String, problem: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestFile {
    #[serde(default)]
    batch: Vec<BatchEntry>,
    #[serde(default)]
    unit: Vec<UnitEntry>,
}

/// `count` units of one batch in consecutive columns from `first_slot`, serials
/// `serial_prefix` + a zero-padded counter from `first_serial`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchEntry {
    gtin: String,
    lot: String,
    expiry: NaiveDate,
    serial_prefix: String,
    #[serde(default = "one")]
    first_serial: u32,
    count: u32,
    first_slot: String,
}

fn one() -> u32 {
    1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnitEntry {
    slot: String,
    gtin: String,
    lot: String,
    expiry: NaiveDate,
    serial: String,
    physical_label: Option<String>,
}

/// Columns per row of the reference store; a batch wraps onto the next row.
pub const COLUMNS_PER_ROW: u8 = 10;

/// Parses a manifest and checks every entry (GTIN check digit, slot form, no slot used twice).
pub fn parse(text: &str) -> Result<Vec<ManifestUnit>, ManifestError> {
    let file: ManifestFile = toml::from_str(text).map_err(|e| ManifestError::Toml(e.to_string()))?;
    let mut units = Vec::new();
    for (i, b) in file.batch.iter().enumerate() {
        let entry = || format!("batch #{} (lot {})", i + 1, b.lot);
        let fail = |problem: String| ManifestError::Entry { entry: entry(), problem };
        let first: SlotAddress = b.first_slot.parse().map_err(fail)?;
        check_gtin(&b.gtin).map_err(fail)?;
        for n in 0..b.count {
            let linear = u32::from(first.column) + n;
            let row = u32::from(first.row) + linear / u32::from(COLUMNS_PER_ROW);
            let slot = SlotAddress::new(
                first.rack,
                u8::try_from(row).map_err(|_| fail(format!("runs past row 255 at unit {}", n + 1)))?,
                (linear % u32::from(COLUMNS_PER_ROW)) as u8,
            );
            let serial = format!("{}{:04}", b.serial_prefix, b.first_serial + n);
            units.push(ManifestUnit {
                slot,
                code: Gs1Code { gtin: b.gtin.clone(), expiry: Some(b.expiry), lot: Some(b.lot.clone()), serial: Some(serial) },
                physical_label: None,
            });
        }
    }
    for (i, u) in file.unit.iter().enumerate() {
        let fail = |problem: String| ManifestError::Entry { entry: format!("unit #{} (serial {})", i + 1, u.serial), problem };
        check_gtin(&u.gtin).map_err(fail)?;
        units.push(ManifestUnit {
            slot: u.slot.parse().map_err(fail)?,
            code: Gs1Code { gtin: u.gtin.clone(), expiry: Some(u.expiry), lot: Some(u.lot.clone()), serial: Some(u.serial.clone()) },
            physical_label: u.physical_label.clone(),
        });
    }
    let mut seen = std::collections::HashSet::new();
    for u in &units {
        if !seen.insert(u.slot) {
            return Err(ManifestError::Entry { entry: format!("slot {}", u.slot), problem: "holds two units".into() });
        }
    }
    Ok(units)
}

fn check_gtin(gtin: &str) -> Result<(), String> {
    let well_formed = gtin.len() == 14 && gtin.bytes().all(|b| b.is_ascii_digit());
    if !well_formed || crate::codes::gs1_check_digit(&gtin[..13]) != gtin.as_bytes()[13] - b'0' {
        return Err(format!("GTIN {gtin:?} is not 14 digits with a valid check digit"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_expand_into_consecutive_slots_wrapping_rows() {
        let units = parse(
            r#"
            [[batch]]
            gtin = "06901234000016"
            lot = "L1"
            expiry = "2027-06-30"
            serial_prefix = "S"
            count = 3
            first_slot = "R0-0-9"
            "#,
        )
        .expect("valid manifest");
        let slots: Vec<String> = units.iter().map(|u| u.slot.to_string()).collect();
        assert_eq!(slots, ["R0-0-9", "R0-1-0", "R0-1-1"]);
        assert_eq!(units[2].code.serial.as_deref(), Some("S0003"));
        assert_eq!(units[0].printed_label(), units[0].code.element_string());
    }

    #[test]
    fn bad_entries_are_named() {
        let err = parse(
            r#"
            [[unit]]
            slot = "R0-0-0"
            gtin = "06901234000017"
            lot = "L1"
            expiry = "2027-06-30"
            serial = "X1"
            "#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("unit #1 (serial X1)") && err.contains("check digit"), "{err}");

        let twice = r#"
            [[unit]]
            slot = "R0-0-0"
            gtin = "06901234000016"
            lot = "L1"
            expiry = "2027-06-30"
            serial = "A"
            [[unit]]
            slot = "R0-0-0"
            gtin = "06901234000016"
            lot = "L1"
            expiry = "2027-06-30"
            serial = "B"
        "#;
        assert!(parse(twice).unwrap_err().to_string().contains("slot R0-0-0: holds two units"));
        assert!(parse("[[unit]]\nslot = 3").unwrap_err().to_string().contains("TOML"));
    }
}
