//! Hardware abstraction layer: the device traits the controller drives, the value
//! types they exchange, and the label code formats printed on vaccine units.
//!
//! Like embedded-hal, every trait is small and every method is fallible with a
//! [`DeviceError`] whose [`ErrorKind`] tells the caller what went wrong without
//! knowing the device behind it. Nothing here knows of gRPC or SQLite.

pub mod camera;
pub mod codes;
pub mod devices;
pub mod diagnostics;
pub mod error;
pub mod manifest;
pub mod modbus;
pub mod types;

pub use devices::{Booths, ColdStore, Conveyor, Devices, Interlocks, JOG_LIMIT_BELT_MM, JOG_LIMIT_PICKER_MM, PickerAxis, ScanCamera, TemperatureProbe};
pub use error::{DeviceError, ErrorKind};
pub use types::{
    BoothDisplay, BoothId, Frame, InterlockStatus, SlotAddress, Station, StoreGeometry, TrackingId, TrayState,
};
