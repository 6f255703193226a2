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

    /// Steps from the hatch (at R0-0-0): the picker's travel grows with it.
    pub fn distance_from_hatch(self) -> u16 {
        u16::from(self.rack) + u16::from(self.row) + u16::from(self.column)
    }
}

/// The store's shape, and the numbering of its slots that the devices use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreGeometry {
    pub racks: u8,
    pub rows: u8,
    pub columns: u8,
}

impl StoreGeometry {
    pub fn contains(self, slot: SlotAddress) -> bool {
        slot.rack < self.racks && slot.row < self.rows && slot.column < self.columns
    }

    pub fn slot_count(self) -> usize {
        usize::from(self.racks) * usize::from(self.rows) * usize::from(self.columns)
    }

    /// The slot's index, `(rack·rows + row)·columns + column` (the order of the
    /// occupancy bits and of the pick task's parameter).
    pub fn index(self, slot: SlotAddress) -> usize {
        (usize::from(slot.rack) * usize::from(self.rows) + usize::from(slot.row)) * usize::from(self.columns) + usize::from(slot.column)
    }

    /// The slot with this index, if the store has one.
    pub fn slot_at(self, index: usize) -> Option<SlotAddress> {
        let per_rack = usize::from(self.rows) * usize::from(self.columns);
        if per_rack == 0 || index >= self.slot_count() {
            return None;
        }
        let (rack, rest) = (index / per_rack, index % per_rack);
        let columns = usize::from(self.columns);
        Some(SlotAddress::new(u8::try_from(rack).ok()?, u8::try_from(rest / columns).ok()?, u8::try_from(rest % columns).ok()?))
    }

    /// The farthest slot's distance from the hatch.
    pub fn max_distance(self) -> u16 {
        SlotAddress::new(self.racks.saturating_sub(1), self.rows.saturating_sub(1), self.columns.saturating_sub(1)).distance_from_hatch()
    }

    /// Every slot, nearest the hatch first.
    pub fn slots_nearest_first(self) -> Vec<SlotAddress> {
        let mut all: Vec<SlotAddress> = (0..self.slot_count()).filter_map(|i| self.slot_at(i)).collect();
        all.sort_by_key(|s| (s.distance_from_hatch(), *s));
        all
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
    /// A booth's waiting spur: the diverter has pushed the unit off the belt, and a
    /// gate holds it above the tray until the tray is free. From here it drops into
    /// the tray (`Booth`) or rejoins the belt towards the reject bin (`Reject`); it
    /// lets the next patient's unit wait beside the booth instead of in the store.
    Gate(BoothId),
    /// The reject / quarantine bin at the end of the belt.
    Reject,
}

impl fmt::Display for Station {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Station::Hatch => f.write_str("hatch"),
            Station::Scan => f.write_str("scan station"),
            Station::Booth(b) => write!(f, "{b}"),
            Station::Gate(b) => write!(f, "{b} gate"),
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
    fn slot_indices_round_trip_and_stay_inside_the_store() {
        let g = StoreGeometry { racks: 4, rows: 5, columns: 10 };
        for i in 0..g.slot_count() {
            let slot = g.slot_at(i).expect("inside");
            assert!(g.contains(slot));
            assert_eq!(g.index(slot), i);
        }
        assert_eq!(g.slot_at(200), None);
        assert_eq!(g.index(SlotAddress::new(3, 4, 9)), 199);
        let nearest = g.slots_nearest_first();
        assert_eq!((nearest.len(), nearest[0], nearest[199]), (200, SlotAddress::new(0, 0, 0), SlotAddress::new(3, 4, 9)));
        assert_eq!(g.max_distance(), 16);
    }

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
