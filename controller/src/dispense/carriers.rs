//! Carriers: the tracking id the devices know a unit by, and carrying a unit to the
//! reject bin from wherever it is.

use crate::journal::Intended;
use crate::motion::{Authority, Gate, Motion, MotionError};
use hal::{Station, TrackingId};

/// The tracking id the devices know a dispense's unit by: the dispense's number, so
/// it stays unique across restarts and recovery can match units to dispenses.
pub fn carrier_of(dispense_id: &str) -> TrackingId {
    TrackingId(dispense_id.trim_start_matches('D').parse().unwrap_or(u64::MAX))
}

/// The dispense a carrier belongs to (the inverse of [`carrier_of`]); `None` for a
/// carrier no dispense numbers (maintenance's, strays).
pub fn dispense_of(carrier: TrackingId) -> Option<String> {
    (carrier.0 < 1_000_000_000).then(|| format!("D{:06}", carrier.0))
}

/// Carries a unit to the reject bin, in service, from the hatch (onto the belt
/// first) or from wherever it is on the belt (a gate included); its intent was
/// journalled.
pub async fn carry_to_bin(gate: &Gate<'_>, intended: &Intended, carrier: TrackingId, in_hatch: bool) -> Result<(), MotionError> {
    let to_bin = Motion::Convey { carrier, to: Station::Reject };
    let run: &[Motion] = if in_hatch { &[Motion::Release { carrier }, to_bin] } else { &[to_bin] };
    gate.send_all(Authority::Service, intended, run).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_carrier_names_its_dispense_and_back() {
        assert_eq!(carrier_of("D000042"), TrackingId(42));
        assert_eq!(dispense_of(carrier_of("D000042")).as_deref(), Some("D000042"));
        assert_eq!(dispense_of(TrackingId(3_000_000_123)), None, "a maintenance carrier");
    }
}
