//! Value types exchanged with devices: slots, stations, carriers, frames, sensor states.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A cold-store slot: rack, row and column, all counted from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SlotAddress {
    pub rack: u8,
    pub row: u8,
    pub column: u8,
}

impl SlotAddress {
    pub const fn new(rack: u8, row: u8, column: u8) -> Self {
        Self { rack, row, column }
    }
}

impl fmt::Display for SlotAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "R{}-{}-{}", self.rack, self.row, self.column)
    }
}

impl std::str::FromStr for SlotAddress {
    type Err = String;

    /// Parses the `R<rack>-<row>-<column>` form that [`Display`](fmt::Display) writes.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("slot {s:?} is not of the form R<rack>-<row>-<column>, e.g. R0-2-7");
        let rest = s.strip_prefix('R').ok_or_else(bad)?;
        let parts: Vec<u8> = rest
            .split('-')
            .map(|p| p.parse::<u8>().map_err(|_| bad()))
            .collect::<Result<_, _>>()?;
        match parts.as_slice() {
            [rack, row, column] => Ok(Self::new(*rack, *row, *column)),
            _ => Err(bad()),
        }
    }
}

/// A jab booth, numbered from 1 as the clinic numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BoothId(pub u8);

impl fmt::Display for BoothId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "booth {}", self.0)
    }
}

/// The physical carrier of one unit while it travels, assigned by the controller at pick
/// time so that several units can be tracked on the belt at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TrackingId(pub u64);

impl fmt::Display for TrackingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "carrier {}", self.0)
    }
}

/// A place on the conveyor with a photo-eye.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Station {
    /// The outlet hatch of the cold store, where units enter the belt.
    Hatch,
    /// The scan station: rollers, light and camera.
    Scan,
    /// The diverter into a booth's receiving tray.
    Booth(BoothId),
    /// The reject / quarantine bin at the end of the belt.
    Reject,
}

impl fmt::Display for Station {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Station::Hatch => f.write_str("hatch"),
            Station::Scan => f.write_str("scan station"),
            Station::Booth(b) => write!(f, "{b}"),
            Station::Reject => f.write_str("reject bin"),
        }
    }
}

/// One 8-bit greyscale camera frame, row-major, `width * height` bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Frame({}x{})", self.width, self.height)
    }
}

/// The safety interlocks; motion is allowed only when all are closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct InterlockStatus {
    pub estop_pressed: bool,
    pub restock_door_open: bool,
    pub light_curtain_broken: bool,
}

impl InterlockStatus {
    pub fn all_closed(&self) -> bool {
        !(self.estop_pressed || self.restock_door_open || self.light_curtain_broken)
    }

    /// The open interlocks, by name, for messages and fault texts.
    pub fn open_names(&self) -> Vec<&'static str> {
        let mut open = Vec::new();
        if self.estop_pressed {
            open.push("e-stop");
        }
        if self.restock_door_open {
            open.push("restock door");
        }
        if self.light_curtain_broken {
            open.push("light curtain");
        }
        open
    }
}

/// What a booth's presence sensor sees in its receiving tray.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TrayState {
    Empty,
    Occupied,
}

/// What a booth's small display shows the guardian for the validation (一验证).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoothDisplay {
    pub patient_name: String,
    pub product_name: String,
    pub lot: String,
    /// Expiry as printed for people, `YYYY-MM-DD`.
    pub expiry: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_address_round_trips_through_text() {
        let slot = SlotAddress::new(3, 4, 9);
        assert_eq!(slot.to_string(), "R3-4-9");
        assert_eq!("R3-4-9".parse::<SlotAddress>(), Ok(slot));
    }

    #[test]
    fn malformed_slot_address_is_named() {
        let err = "3-4-9".parse::<SlotAddress>().unwrap_err();
        assert!(err.contains("\"3-4-9\""), "{err}");
        assert!("R3-4".parse::<SlotAddress>().is_err());
        assert!("R3-4-900".parse::<SlotAddress>().is_err());
    }

    #[test]
    fn interlocks_name_what_is_open() {
        let s = InterlockStatus { restock_door_open: true, ..Default::default() };
        assert!(!s.all_closed());
        assert_eq!(s.open_names(), vec!["restock door"]);
        assert!(InterlockStatus::default().all_closed());
    }
}
