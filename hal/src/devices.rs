//! The device traits: one small trait per device, every method async and fallible.
//!
//! Methods that move things take effect physically; the controller checks the
//! interlocks before calling them, and a device must refuse motion with
//! [`ErrorKind::Interlock`](crate::ErrorKind::Interlock) when one is open anyway.

use crate::error::DeviceError;
use crate::types::{BoothDisplay, BoothId, Frame, InterlockStatus, SlotAddress, Station, TrackingId, TrayState};
use async_trait::async_trait;
use std::sync::Arc;

pub type Result<T> = std::result::Result<T, DeviceError>;

/// The refrigerated store and its picker (gantry + gripper) with the outlet hatch.
#[async_trait]
pub trait ColdStore: Send + Sync {
    /// Drives the picker to its reference position.
    async fn home(&self) -> Result<()>;
    /// Whether the slot's presence sensor sees a unit.
    async fn slot_occupied(&self, slot: SlotAddress) -> Result<bool>;
    /// Every slot whose presence sensor sees a unit (for the stock count).
    async fn occupied_slots(&self) -> Result<Vec<SlotAddress>>;
    /// Every slot the store has, nearest the hatch first (for stock-in).
    async fn slots(&self) -> Result<Vec<SlotAddress>>;
    /// Takes the unit from `slot` to the outlet hatch, tagging it as `carrier`.
    /// Returns when the unit is in the hatch.
    async fn pick_to_hatch(&self, slot: SlotAddress, carrier: TrackingId) -> Result<()>;
    /// Opens the hatch and puts the unit in it onto the belt (at [`Station::Hatch`]).
    async fn release_to_belt(&self, carrier: TrackingId) -> Result<()>;
    /// The carrier of the unit in the outlet hatch, if any (for recovery).
    async fn hatch(&self) -> Result<Option<TrackingId>>;
    /// Whether the picker or hatch is still carrying out a motion (one a controller
    /// that stopped may have left running).
    async fn in_motion(&self) -> Result<bool>;
    /// Moves one picker axis by `millimetres` (maintenance only; at most
    /// [`JOG_LIMIT_PICKER_MM`] either way).
    async fn jog(&self, axis: PickerAxis, millimetres: i32) -> Result<()>;
}

/// A picker axis a maintenance crew can jog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PickerAxis {
    /// Along the racks.
    X = 0,
    /// Up and down.
    Y = 1,
    /// Into the slot.
    Z = 2,
}

impl PickerAxis {
    pub fn from_code(code: u16) -> Option<Self> {
        [Self::X, Self::Y, Self::Z].into_iter().find(|a| *a as u16 == code)
    }
}

/// The furthest a single jog moves the picker, mm.
pub const JOG_LIMIT_PICKER_MM: i32 = 200;
/// The furthest a single jog moves the belt, mm.
pub const JOG_LIMIT_BELT_MM: i32 = 500;

/// The chilled belt with its photo-eyes and diverters.
#[async_trait]
pub trait Conveyor: Send + Sync {
    /// Runs the belt's homing routine (eyes checked, diverters to their rest position).
    async fn home(&self) -> Result<()>;
    /// Carries `carrier` from where it is to `to`, returning when the photo-eye at `to`
    /// has seen it (for a booth: when it has been diverted into the tray).
    async fn convey(&self, carrier: TrackingId, to: Station) -> Result<()>;
    /// Every unit on the belt and the station whose eye saw it last (for recovery).
    async fn units_on_belt(&self) -> Result<Vec<(TrackingId, Station)>>;
    /// Whether a belt run is still in progress.
    async fn in_motion(&self) -> Result<bool>;
    /// Runs the belt by `millimetres`, backwards if negative (maintenance only; at
    /// most [`JOG_LIMIT_BELT_MM`] either way).
    async fn jog(&self, millimetres: i32) -> Result<()>;
}

/// The scan station's camera (the rollers spin the vial between frames).
#[async_trait]
pub trait ScanCamera: Send + Sync {
    /// Grabs the next frame of whatever is at the scan station.
    async fn grab_frame(&self) -> Result<Frame>;
}

/// The jab booths: receiving tray with a presence sensor, a display.
#[async_trait]
pub trait Booths: Send + Sync {
    /// How many booths the workstation has (numbered 1..=count).
    fn count(&self) -> u8;
    /// Shows the guardian what is in the tray, for the validation.
    async fn show(&self, booth: BoothId, display: &BoothDisplay) -> Result<()>;
    /// Blanks the display once the dose is done.
    async fn clear(&self, booth: BoothId) -> Result<()>;
    /// What the tray's presence sensor sees.
    async fn tray(&self, booth: BoothId) -> Result<TrayState>;
}

/// One temperature probe (cabinet, belt tunnel).
#[async_trait]
pub trait TemperatureProbe: Send + Sync {
    /// A stable name for records, e.g. `"cabinet-a"`.
    fn name(&self) -> &str;
    async fn read_celsius(&self) -> Result<f64>;
}

/// The safety chain: e-stop, restock door, booth light curtains.
#[async_trait]
pub trait Interlocks: Send + Sync {
    async fn read(&self) -> Result<InterlockStatus>;
}

/// Every device of one workstation, as the controller receives them. Whether they are
/// real drivers or simulated models is decided by whoever builds this.
#[derive(Clone)]
pub struct Devices {
    pub store: Arc<dyn ColdStore>,
    pub conveyor: Arc<dyn Conveyor>,
    pub camera: Arc<dyn ScanCamera>,
    pub booths: Arc<dyn Booths>,
    pub probes: Vec<Arc<dyn TemperatureProbe>>,
    pub interlocks: Arc<dyn Interlocks>,
    /// The field devices on a bus, for diagnostics (status, alarms, raw registers);
    /// none where the devices are reached otherwise.
    pub field: Vec<Arc<dyn crate::diagnostics::FieldDiagnostics>>,
}

impl std::fmt::Debug for Devices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Devices")
            .field("booths", &self.booths.count())
            .field("probes", &self.probes.iter().map(|p| p.name().to_owned()).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}
