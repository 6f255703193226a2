//! Carriers: the tracking id the devices know a unit by, and carrying a unit to the
//! reject bin from wherever it is.

use hal::{Devices, DeviceError, Station, TrackingId};

/// The tracking id the devices know a dispense's unit by: the dispense's number, so
/// it stays unique across restarts and recovery can match units to dispenses.
pub fn carrier_of(dispense_id: &str) -> TrackingId {
    TrackingId(dispense_id.trim_start_matches('D').parse().unwrap_or(u64::MAX))
}

/// Carries a unit to the reject bin from the hatch (onto the belt first) or from
/// wherever it is on the belt (a gate included).
pub async fn carry_to_bin(devices: &Devices, carrier: TrackingId, in_hatch: bool) -> Result<(), DeviceError> {
    if in_hatch {
        devices.store.release_to_belt(carrier).await?;
    }
    devices.conveyor.convey(carrier, Station::Reject).await
}
