//! The register map of `hal/REGISTERS.md` as code: addresses, bits, task and result
//! codes, station codes and the alarm tables with cause and remedy. Controller
//! drivers and the simulator both use these, so they cannot drift apart.

use crate::error::ErrorKind;
use crate::types::{BoothId, Station};

pub const MAP_VERSION: u16 = 1;

/// Input registers of the common block.
pub mod ir {
    pub const DEVICE_TYPE: u16 = 0;
    pub const MAP_VERSION: u16 = 1;
    pub const FIRMWARE_MAJOR_MINOR: u16 = 2;
    pub const FIRMWARE_PATCH: u16 = 3;
    pub const SERIAL_NUMBER: u16 = 4;
    pub const SERIAL_NUMBER_LEN: u16 = 8;
    pub const DEVICE_HEARTBEAT: u16 = 12;
    pub const STATUS: u16 = 13;
    pub const ALARMS: u16 = 14;
    pub const TASK_SEQ_ECHO: u16 = 16;
    pub const TASK_REFUSAL: u16 = 17;
    /// First device-specific register.
    pub const DEVICE_SPECIFIC: u16 = 20;
    pub const JOB_SLOTS: u16 = 40;
    pub const JOB_SLOT_LEN: u16 = 4;
    pub const JOB_SLOT_COUNT: u16 = 16;
    /// One past the last input register either device serves (the store's slot
    /// occupancy block is the highest).
    pub const END: u16 = store::SLOT_OCCUPANCY + store::SLOT_OCCUPANCY_LEN;

    /// Cold store controller.
    pub mod store {
        pub const DOOR_OPEN: u16 = 20;
        pub const COMPRESSOR_ON: u16 = 21;
        pub const PROBE_A: u16 = 22;
        pub const PROBE_B: u16 = 23;
        pub const HATCH_FULL: u16 = 24;
        pub const HATCH_CARRIER: u16 = 25;
        pub const GEOMETRY: u16 = 27;
        /// One bit per slot: 32 registers, up to 512 slots.
        pub const SLOT_OCCUPANCY: u16 = 200;
        pub const SLOT_OCCUPANCY_LEN: u16 = 32;
    }

    /// Conveyor PLC.
    pub mod conveyor {
        pub const ESTOP: u16 = 20;
        pub const LIGHT_CURTAIN: u16 = 21;
        pub const TUNNEL_PROBE: u16 = 22;
        pub const BOOTH_COUNT: u16 = 23;
        pub const TRAYS: u16 = 24;
        pub const UNITS_ON_BELT: u16 = 25;
        pub const EYES: u16 = 26;
        /// Bit b−1 set when booth b's gate holds a unit.
        pub const GATES: u16 = 27;
        /// Units being carried: entries of (carrier high, carrier low, station code),
        /// carrier 0 for an empty entry.
        pub const BELT_TABLE: u16 = 104;
        pub const BELT_TABLE_ENTRIES: u16 = 24;
        pub const BELT_ENTRY_LEN: u16 = 3;
    }
}

/// Holding registers.
pub mod hr {
    pub const CONTROLLER_HEARTBEAT: u16 = 0;
    /// The task block: seq, code, four parameters, written with one function-16 request.
    pub const TASK_BLOCK: u16 = 1;
    pub const TASK_BLOCK_LEN: u16 = 6;
    pub const ALARM_RESET: u16 = 8;
    pub const TEXT: u16 = 16;
    /// 240 bytes: a display's four lines with room for long product names.
    pub const TEXT_LEN: u16 = 120;
    pub const END: u16 = TEXT + TEXT_LEN;
}

/// The bytes of text a booth display takes (product, lot, expiry and patient, one
/// line each, UTF-8).
pub const DISPLAY_TEXT_BYTES: usize = 2 * hr::TEXT_LEN as usize;

/// Bits of the status word (IR 13).
pub mod status {
    pub const READY: u16 = 1 << 0;
    pub const BUSY: u16 = 1 << 1;
    pub const TASK_RECEIVED: u16 = 1 << 2;
    pub const HOMED: u16 = 1 << 5;
    pub const ALARM: u16 = 1 << 6;
    pub const CONTROLLER_HEARTBEAT_LOST: u16 = 1 << 7;
    pub const INTERLOCK_OPEN: u16 = 1 << 8;
}

/// Which device answers at an address: IR 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceType {
    ColdStore = 1,
    Conveyor = 2,
}

impl DeviceType {
    pub fn from_register(value: u16) -> Option<Self> {
        match value {
            1 => Some(Self::ColdStore),
            2 => Some(Self::Conveyor),
            _ => None,
        }
    }

    pub fn alarms(self) -> &'static [Alarm] {
        match self {
            Self::ColdStore => STORE_ALARMS,
            Self::Conveyor => CONVEYOR_ALARMS,
        }
    }
}

/// Task codes (HR `TASK_CODE`).
pub mod task {
    pub const HOME: u16 = 1;
    pub const PICK_TO_HATCH: u16 = 2;
    pub const RELEASE_TO_BELT: u16 = 3;
    /// Store: params [axis (0 x, 1 y, 2 z), millimetres as i16].
    pub const JOG_PICKER: u16 = 4;
    pub const CONVEY: u16 = 2;
    pub const SHOW: u16 = 3;
    pub const CLEAR: u16 = 4;
    /// Conveyor: params [0, millimetres as i16].
    pub const JOG_BELT: u16 = 5;
}

/// A job slot's `state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Idle = 0,
    Running = 1,
    Done = 2,
    Failed = 3,
}

impl JobState {
    pub fn from_register(value: u16) -> Option<Self> {
        [Self::Idle, Self::Running, Self::Done, Self::Failed].into_iter().find(|s| *s as u16 == value)
    }
}

/// A job's result code, with the error kind the controller reports for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobResult {
    Ok = 0,
    Interlock = 1,
    Jam = 2,
    GripFailure = 3,
    InvalidTarget = 4,
    Busy = 5,
    HeartbeatLost = 6,
    NotHomed = 7,
    UnknownTask = 8,
    PowerLost = 9,
}

impl JobResult {
    const ALL: [Self; 10] = [
        Self::Ok,
        Self::Interlock,
        Self::Jam,
        Self::GripFailure,
        Self::InvalidTarget,
        Self::Busy,
        Self::HeartbeatLost,
        Self::NotHomed,
        Self::UnknownTask,
        Self::PowerLost,
    ];

    pub fn from_register(value: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|r| *r as u16 == value)
    }

    pub fn error_kind(self) -> Option<ErrorKind> {
        Some(match self {
            Self::Ok => return None,
            Self::Interlock => ErrorKind::Interlock,
            Self::Jam => ErrorKind::Jam,
            Self::GripFailure => ErrorKind::GripFailure,
            Self::InvalidTarget => ErrorKind::InvalidTarget,
            Self::Busy => ErrorKind::Busy,
            Self::NotHomed => ErrorKind::NotHomed,
            Self::HeartbeatLost => ErrorKind::HeartbeatLost,
            Self::UnknownTask => ErrorKind::Exception,
            Self::PowerLost => ErrorKind::NoResponse,
        })
    }

    pub fn from_error_kind(kind: ErrorKind) -> Self {
        match kind {
            ErrorKind::Interlock => Self::Interlock,
            ErrorKind::Jam => Self::Jam,
            ErrorKind::GripFailure => Self::GripFailure,
            ErrorKind::InvalidTarget => Self::InvalidTarget,
            ErrorKind::HeartbeatLost => Self::HeartbeatLost,
            ErrorKind::NotHomed => Self::NotHomed,
            ErrorKind::Exception => Self::UnknownTask,
            _ => Self::Busy,
        }
    }
}

/// Station codes of the conveyor (task parameter and job `actual`).
pub fn station_code(station: Station) -> u16 {
    match station {
        Station::Hatch => 0,
        Station::Scan => 1,
        Station::Booth(b) => 10 + u16::from(b.0),
        Station::Gate(b) => 100 + u16::from(b.0),
        Station::Reject => 99,
    }
}

pub fn station_from_code(code: u16) -> Option<Station> {
    match code {
        0 => Some(Station::Hatch),
        1 => Some(Station::Scan),
        99 => Some(Station::Reject),
        11..=98 => u8::try_from(code - 10).ok().map(|b| Station::Booth(BoothId(b))),
        101..=198 => u8::try_from(code - 100).ok().map(|b| Station::Gate(BoothId(b))),
        _ => None,
    }
}

/// Bit of a station in the conveyor's `EYES` register (a booth's gate has its
/// own eye, in `GATES`).
pub fn eye_bit(station: Station) -> u16 {
    match station {
        Station::Hatch => 1,
        Station::Scan => 1 << 1,
        Station::Booth(b) => 1u16.checked_shl(1 + u32::from(b.0)).unwrap_or(0),
        Station::Gate(_) => 0,
        Station::Reject => 1 << 15,
    }
}

/// Bit of a booth in the `TRAYS` and `GATES` registers.
pub fn booth_bit(booth: BoothId) -> u16 {
    1u16.checked_shl(u32::from(booth.0.saturating_sub(1))).unwrap_or(0)
}

/// One alarm bit with the text a crew needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Alarm {
    pub bit: u8,
    pub code: &'static str,
    pub cause: &'static str,
    pub remedy: &'static str,
}

pub mod store_alarm {
    pub const DOOR_DURING_MOTION: u8 = 0;
    pub const GRIP_FAILURE: u8 = 1;
    pub const CABINET_HIGH: u8 = 2;
    pub const PROBES_DISAGREE: u8 = 3;
    pub const COMPRESSOR_FAULT: u8 = 4;
    pub const HEARTBEAT_LOST: u8 = 5;
    pub const POWER_RESTORED: u8 = 6;
}

pub mod conveyor_alarm {
    pub const ESTOP: u8 = 0;
    pub const JAM: u8 = 1;
    pub const CURTAIN_DURING_MOTION: u8 = 2;
    pub const EYE_STUCK: u8 = 3;
    pub const HEARTBEAT_LOST: u8 = 4;
    pub const POWER_RESTORED: u8 = 5;
}

pub const STORE_ALARMS: &[Alarm] = &[
    Alarm { bit: 0, code: "CS-01", cause: "Restock door opened while motion was requested", remedy: "Close the restock door; the request can be repeated" },
    Alarm { bit: 1, code: "CS-02", cause: "Picker lost or could not grip a unit", remedy: "Open the store in maintenance mode, remove the dropped unit, reset the alarm" },
    Alarm { bit: 2, code: "CS-03", cause: "Cabinet above 8 °C", remedy: "Check the door seal and the compressor; exposed units go to review" },
    Alarm { bit: 3, code: "CS-04", cause: "Cabinet probes disagree by more than 1.0 °C", remedy: "Check both probes against a reference thermometer; replace the drifting one" },
    Alarm { bit: 4, code: "CS-05", cause: "Compressor not running while cooling is needed", remedy: "Check the compressor's supply and breaker; call refrigeration service" },
    Alarm { bit: 5, code: "CS-06", cause: "Controller heartbeat lost: motion stopped", remedy: "Check the cable/network to the controller and that it is running" },
    Alarm { bit: 6, code: "CS-07", cause: "Device restarted after a power loss; axes not homed", remedy: "Home the picker; check the supply if it repeats" },
];

pub const CONVEYOR_ALARMS: &[Alarm] = &[
    Alarm { bit: 0, code: "CV-01", cause: "Emergency stop pressed", remedy: "Make the area safe, release the e-stop, reset the alarm" },
    Alarm { bit: 1, code: "CV-02", cause: "A unit did not reach the next photo-eye in time (jam)", remedy: "Clear the belt in maintenance mode; the unit goes to quarantine" },
    Alarm { bit: 2, code: "CV-03", cause: "Booth light curtain broken while motion was requested", remedy: "Keep hands out of the booth chute; the request can be repeated" },
    Alarm { bit: 3, code: "CV-04", cause: "A photo-eye reports blocked with no unit expected (stuck sensor)", remedy: "Clean or replace the photo-eye" },
    Alarm { bit: 4, code: "CV-05", cause: "Controller heartbeat lost: motion stopped", remedy: "Check the cable/network to the controller and that it is running" },
    Alarm { bit: 5, code: "CV-06", cause: "Device restarted after a power loss; belt not homed", remedy: "Home the belt; check the supply if it repeats" },
];

/// The alarms set in a 32-bit alarm word.
pub fn active_alarms(device: DeviceType, word: u32) -> Vec<&'static Alarm> {
    device.alarms().iter().filter(|a| word & (1 << a.bit) != 0).collect()
}

/// Packs UTF-8 text into registers, two bytes each, NUL padded; text that does not
/// fit is cut at a character boundary.
pub fn text_to_registers(text: &str, registers: usize) -> Vec<u16> {
    let mut end = text.len().min(registers * 2);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut bytes = text.as_bytes()[..end].to_vec();
    bytes.resize(registers * 2, 0);
    bytes.chunks(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect()
}

/// The inverse of [`text_to_registers`] (stops at the first NUL).
pub fn registers_to_text(registers: &[u16]) -> String {
    let bytes: Vec<u8> = registers.iter().flat_map(|r| r.to_be_bytes()).take_while(|b| *b != 0).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Two registers, high word first.
pub fn u32_to_registers(value: u32) -> [u16; 2] {
    [(value >> 16) as u16, value as u16]
}

pub fn registers_to_u32(high: u16, low: u16) -> u32 {
    (u32::from(high) << 16) | u32::from(low)
}

/// Temperature as a register: signed hundredths of a degree.
/// What a probe register holds when its sensor is faulty (open or shorted): the
/// lowest 16-bit value, −327.68 °C, which no cabinet reaches.
pub const PROBE_FAULT: u16 = 0x8000;

pub fn celsius_to_register(celsius: f64) -> u16 {
    ((celsius * 100.0).round().clamp(f64::from(i16::MIN), f64::from(i16::MAX)) as i16) as u16
}

pub fn register_to_celsius(value: u16) -> f64 {
    f64::from(value as i16) / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_blocks_do_not_overlap() {
        let job_slots_end = ir::JOB_SLOTS + ir::JOB_SLOT_LEN * ir::JOB_SLOT_COUNT;
        assert!(ir::DEVICE_SPECIFIC < ir::JOB_SLOTS && ir::store::GEOMETRY < ir::JOB_SLOTS && ir::conveyor::GATES < ir::JOB_SLOTS);
        assert!(job_slots_end <= ir::conveyor::BELT_TABLE, "job slots end at {job_slots_end}");
        let belt_end = ir::conveyor::BELT_TABLE + ir::conveyor::BELT_TABLE_ENTRIES * ir::conveyor::BELT_ENTRY_LEN;
        assert!(belt_end <= ir::store::SLOT_OCCUPANCY, "belt table ends at {belt_end}");
        assert_eq!(ir::END, ir::store::SLOT_OCCUPANCY + ir::store::SLOT_OCCUPANCY_LEN);
        assert!(hr::TASK_BLOCK + hr::TASK_BLOCK_LEN <= hr::ALARM_RESET && hr::ALARM_RESET < hr::TEXT);
    }

    #[test]
    fn station_codes_round_trip() {
        for s in [Station::Hatch, Station::Scan, Station::Booth(BoothId(1)), Station::Booth(BoothId(6)), Station::Gate(BoothId(1)), Station::Gate(BoothId(6)), Station::Reject] {
            assert_eq!(station_from_code(station_code(s)), Some(s));
        }
        assert_eq!(station_from_code(7), None);
    }

    #[test]
    fn text_packs_utf8_and_cuts_on_a_character_boundary() {
        let regs = text_to_registers("刘洋 MMR", 48);
        assert_eq!(regs.len(), 48);
        assert_eq!(registers_to_text(&regs), "刘洋 MMR");
        // Three bytes per Chinese character: 4 bytes of room hold one character.
        assert_eq!(registers_to_text(&text_to_registers("刘洋", 2)), "刘");
    }

    #[test]
    fn temperatures_keep_sign_and_hundredths() {
        for t in [4.25, -0.5, 8.01, -20.0] {
            assert!((register_to_celsius(celsius_to_register(t)) - t).abs() < 1e-9);
        }
    }

    #[test]
    fn every_result_code_but_ok_maps_to_an_error_kind() {
        for r in JobResult::ALL {
            assert_eq!(JobResult::from_register(r as u16), Some(r));
            assert_eq!(r.error_kind().is_none(), r == JobResult::Ok);
        }
    }

    #[test]
    fn alarm_tables_have_unique_bits_and_text() {
        for table in [STORE_ALARMS, CONVEYOR_ALARMS] {
            for (i, a) in table.iter().enumerate() {
                assert_eq!(usize::from(a.bit), i);
                assert!(!a.cause.is_empty() && !a.remedy.is_empty());
            }
        }
        let word = (1 << store_alarm::GRIP_FAILURE) | (1 << store_alarm::POWER_RESTORED);
        let codes: Vec<_> = active_alarms(DeviceType::ColdStore, word).iter().map(|a| a.code).collect();
        assert_eq!(codes, ["CS-02", "CS-07"]);
    }
}
