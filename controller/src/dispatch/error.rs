//! Why the dispatcher refused a request: each a defined case the API maps to a
//! status (`InvalidArgument` names the field).

use crate::dispense::workstation::WorkstationState;
use crate::journal::JournalError;
use chrono::Utc;

/// Why a request was refused. `InvalidArgument` names the field.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("{field}: {reason}")]
    InvalidArgument { field: &'static str, reason: String },
    #[error("no dispense {0}")]
    NotFound(String),
    /// A unit, batch or hold that the journal does not have.
    #[error("{0}")]
    NoSuchStock(String),
    #[error(transparent)]
    Device(#[from] hal::DeviceError),
    #[error("request id {request_id} was already used for dispense {dispense_id} with a different order")]
    RequestIdReused { request_id: String, dispense_id: String },
    #[error("dispense {id} is {stage}, not {expected}")]
    WrongStage { id: String, stage: &'static str, expected: &'static str },
    #[error("dispense {id} is {stage}: only a queued dispense can be cancelled (once picked, a unit finishes its run; refuse it at validation)")]
    NotCancellable { id: String, stage: &'static str },
    #[error("the workstation is {0} and does not accept orders")]
    NotReady(&'static str),
    #[error("{in_flight} dispenses are in progress, the most this workstation takes; try again once some have ended")]
    Busy { in_flight: usize },
    #[error("dispense {id}: do not give the unit: {why}; it is being rejected")]
    UnitHeld { id: String, why: String },
    #[error("maintenance mode is held by {holder} until {until}")]
    LeaseHeld { holder: String, until: chrono::DateTime<Utc> },
    #[error("{0} open: nothing moves until every interlock is closed")]
    InterlockOpen(String),
    /// The motion gate did not send a motion (H-05); says why.
    #[error("motion refused: {0}")]
    MotionRefused(String),
    #[error("the workstation is {state}; this needs it to be {wanted}")]
    WrongState { state: WorkstationState, wanted: &'static str },
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// Something that should not happen (e.g. an image that cannot be encoded).
    #[error("{0}")]
    Internal(String),
}

impl From<crate::motion::MotionError> for DispatchError {
    fn from(e: crate::motion::MotionError) -> Self {
        match e {
            crate::motion::MotionError::Refused(refusal) => refusal.into(),
            crate::motion::MotionError::Device(d) => DispatchError::Device(d),
        }
    }
}

impl From<crate::motion::Refusal> for DispatchError {
    fn from(refusal: crate::motion::Refusal) -> Self {
        match refusal {
            crate::motion::Refusal::InterlockOpen(names) => DispatchError::InterlockOpen(names),
            other => DispatchError::MotionRefused(other.to_string()),
        }
    }
}

impl From<crate::ops::stock::StockError> for DispatchError {
    fn from(e: crate::ops::stock::StockError) -> Self {
        match e {
            crate::ops::stock::StockError::Device(d) => DispatchError::Device(d),
            crate::ops::stock::StockError::Journal(j) => DispatchError::Journal(j),
        }
    }
}
