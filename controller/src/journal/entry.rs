//! The step log's vocabulary: what kind of line a step is, and the typed intents
//! and outcomes it carries. Variant and field names are the stored format.

use crate::dispense::status::Stage;
use crate::rules::verify::ViolationId;
use chrono::{DateTime, Utc};
use hal::{ErrorKind, SlotAddress, Station};
use serde::{Deserialize, Serialize};

/// What a line of the step log records; stored as its stable name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StepKind {
    /// A command about to be sent (journalled before it is).
    Intent,
    /// What a command did.
    Outcome,
    /// A dispense entered a stage.
    Stage,
    /// A unit's stock record changed (stocked, picked, delivered…).
    Stock,
    /// A hold put on a unit, or lifted.
    Hold,
    /// What a check saw (frames, verification, a re-check at the gate).
    Evidence,
    /// A runner paused for an open interlock.
    Interlock,
    /// What a maintenance crew did.
    Maintenance,
    /// What recovery did after a restart.
    Recovery,
    /// A fault raised or cleared on the fault board.
    Fault,
    /// The cold-chain watch (e.g. a gap in the readings).
    ColdChain,
}

impl StepKind {
    pub const ALL: [StepKind; 11] = [
        Self::Intent,
        Self::Outcome,
        Self::Stage,
        Self::Stock,
        Self::Hold,
        Self::Evidence,
        Self::Interlock,
        Self::Maintenance,
        Self::Recovery,
        Self::Fault,
        Self::ColdChain,
    ];

    /// The name stored in the journal (stable across versions).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Intent => "intent",
            Self::Outcome => "outcome",
            Self::Stage => "stage",
            Self::Stock => "stock",
            Self::Hold => "hold",
            Self::Evidence => "evidence",
            Self::Interlock => "interlock",
            Self::Maintenance => "maintenance",
            Self::Recovery => "recovery",
            Self::Fault => "fault",
            Self::ColdChain => "coldchain",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl std::fmt::Display for StepKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A command as the journal keeps it: the persisted vocabulary of what the
/// controller asked the hardware (or the clinic) for. Variant and field names are
/// the stored format; rename them only with a schema migration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Intent {
    /// Choose and reserve a unit.
    Allocate,
    /// Pick the unit in `slot` to the hatch and put it on the belt.
    Pick { slot: SlotAddress },
    /// Run the unit's carrier to a station.
    Convey { to: Station },
    Scan,
    /// Check the unit whose code was read.
    Verify { code: String },
    AwaitValidation,
    AwaitAdministration,
    /// Settle the unit and end the dispense in `stage`.
    Finish { stage: Stage },
    /// Carry a held unit from its slot to the bin (maintenance).
    Eject { slot: SlotAddress },
    /// Home a device (at start-up, after a power cut, in maintenance).
    Home,
    /// Move a device by hand (maintenance): `what` names the axis or the belt.
    Jog { what: String, millimetres: i32 },
}

impl Intent {
    /// The step name shown in traces.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Allocate => "Allocate",
            Self::Pick { .. } => "Pick",
            Self::Convey { .. } => "Convey",
            Self::Scan => "Scan",
            Self::Verify { .. } => "Verify",
            Self::AwaitValidation => "AwaitValidation",
            Self::AwaitAdministration => "AwaitAdministration",
            Self::Finish { .. } => "Finish",
            Self::Eject { .. } => "Eject",
            Self::Home => "Home",
            Self::Jog { .. } => "Jog",
        }
    }

    /// For people.
    pub fn describe(&self) -> String {
        match self {
            Self::Allocate => "choose and reserve a unit (earliest expiry first)".into(),
            Self::Pick { slot } => format!("pick from {slot} to the hatch and onto the belt"),
            Self::Convey { to } => format!("run the unit to {}", station_name(*to)),
            Self::Scan => "read the unit's code at the scan station".into(),
            Self::Verify { code } => format!("verify {code} against the order and the records"),
            Self::AwaitValidation => "show the unit at the booth and wait for the guardian's validation".into(),
            Self::AwaitAdministration => "wait for the nurse's administration".into(),
            Self::Finish { stage } => format!("settle the unit; the dispense ends {}", stage.describe()),
            Self::Eject { slot } => format!("carry the held unit in {slot} to the reject bin"),
            Self::Home => "home the devices to their references".into(),
            Self::Jog { what, millimetres } => format!("jog the {what} {millimetres} mm"),
        }
    }
}

/// A station as people name it.
pub fn station_name(station: Station) -> String {
    match station {
        Station::Hatch => "the hatch".into(),
        Station::Scan => "the scan station".into(),
        Station::Booth(b) => format!("{b}'s tray"),
        Station::Gate(b) => format!("{b}'s gate"),
        Station::Reject => "the reject bin".into(),
    }
}

/// What a command did, as the journal keeps it (same rule as [`Intent`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Allocated { code: String, slot: SlotAddress },
    NoStock,
    Picked,
    Arrived,
    Read { symbology: String, code: String },
    Unreadable,
    /// Every check passed.
    Passed,
    Violations { ids: Vec<ViolationId> },
    Validated,
    Administered,
    Cancelled,
    /// Taken from its tray while the controller was down; no administration confirmed.
    Unconfirmed,
    /// A device failed the command.
    Fault { kind: ErrorKind },
    Finished,
}

impl Outcome {
    /// The step name shown in traces.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Allocated { .. } => "Allocated",
            Self::NoStock => "NoStock",
            Self::Picked => "Picked",
            Self::Arrived => "Arrived",
            Self::Read { .. } => "Read",
            Self::Unreadable => "Unreadable",
            Self::Passed => "Passed",
            Self::Violations { .. } => "Violations",
            Self::Validated => "Validated",
            Self::Administered => "Administered",
            Self::Cancelled => "Cancelled",
            Self::Unconfirmed => "Unconfirmed",
            Self::Fault { .. } => "Fault",
            Self::Finished => "Finished",
        }
    }
}

/// The typed part of a step, kept as JSON in the `data` column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepData {
    Intent(Intent),
    Outcome(Outcome),
}

/// One line of the step log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub dispense_id: Option<String>,
    pub unit_code: Option<String>,
    pub kind: StepKind,
    /// A short name for people (`Pick`, `picked`, `raised`…).
    pub step: String,
    /// What happened, for people.
    pub detail: String,
    /// The intent or outcome, typed, where the line is one.
    pub data: Option<StepData>,
}

impl Entry {
    pub fn intent(&self) -> Option<&Intent> {
        match &self.data {
            Some(StepData::Intent(intent)) => Some(intent),
            _ => None,
        }
    }

    pub fn outcome(&self) -> Option<&Outcome> {
        match &self.data {
            Some(StepData::Outcome(outcome)) => Some(outcome),
            _ => None,
        }
    }
}

