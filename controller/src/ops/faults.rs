//! The controller's defined faults: for every way a device can fail, a stable code,
//! the cause and remedy a crew reads, and the policy the controller follows.

use hal::ErrorKind;

/// What the controller does when the fault happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Repeated by the driver with bounded backoff; shows only if every retry fails.
    Retry,
    /// The unit in hand cannot be trusted: it goes to the reject bin and is quarantined.
    RejectUnit,
    /// Nothing moves until the cause is gone (an operator closes the door, releases the e-stop).
    WaitForOperator,
    /// The dispense stops and the workstation needs maintenance.
    Stop,
    /// No unit leaves the store until a crew clears the fault: the station itself
    /// is destroying stock (a dirty camera, a belt that jams every unit).
    StopPicking,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultDefinition {
    pub code: &'static str,
    pub cause: &'static str,
    pub remedy: &'static str,
    pub policy: Policy,
}

/// The definition for a device error's kind.
pub fn definition(kind: ErrorKind) -> FaultDefinition {
    let (code, cause, remedy, policy) = match kind {
        ErrorKind::Timeout => ("WS-TIMEOUT", "A device did not answer in time, after every retry", "Check the device's cable and power; it reconnects by itself", Policy::Retry),
        ErrorKind::Crc => ("WS-CRC", "Frames arrived damaged, after every retry", "Check the RS-485 cabling, termination and shielding", Policy::Retry),
        ErrorKind::NoResponse => ("WS-NO-RESPONSE", "A device is unreachable or lost the job (restart, power loss)", "Check the device's power and link; home it if it restarted", Policy::Stop),
        ErrorKind::Exception => ("WS-EXCEPTION", "A device refused a request it does not understand", "Check device firmware and register map versions", Policy::Stop),
        ErrorKind::Interlock => ("WS-INTERLOCK", "An interlock (e-stop, restock door, light curtain) is open", "Close the door / release the e-stop / clear the booth chute", Policy::WaitForOperator),
        ErrorKind::Jam => ("WS-JAM", "A unit did not reach the next photo-eye in time", "Clear the belt in maintenance mode; the unit is quarantined", Policy::RejectUnit),
        ErrorKind::GripFailure => ("WS-GRIP", "The picker could not grip or dropped a unit", "Remove the dropped unit in maintenance mode and reset the alarm", Policy::RejectUnit),
        ErrorKind::InvalidTarget => ("WS-TARGET", "A slot, booth or unit the controller addressed is not there", "Run a stock count; the journal and the store disagree", Policy::RejectUnit),
        ErrorKind::Busy => ("WS-BUSY", "A device is not ready for the command (not homed, tray occupied)", "Home the device or wait for the tray to be emptied", Policy::Stop),
        ErrorKind::WrongPosition => ("WS-POSITION", "A device ended somewhere other than where it was sent", "Check the photo-eyes and diverters; the unit is quarantined", Policy::RejectUnit),
        ErrorKind::NotHomed => ("WS-NOT-HOMED", "A device restarted (a power cut) and lost its reference", "The controller homes it and repeats the motion; if it repeats, check the supply", Policy::Retry),
        ErrorKind::HeartbeatLost => ("WS-HEARTBEAT", "A device stopped motion because the controller's heartbeat stopped", "Check the link; the device resumes once the heartbeat returns", Policy::Stop),
        _ => ("WS-DEVICE", "An unclassified device failure", "Read the device's alarm list with wsctl", Policy::Stop),
    };
    FaultDefinition { code, cause, remedy, policy }
}

/// A device error as a crew reads it: the fault code, what happened, what to do.
pub fn describe(error: &hal::DeviceError) -> String {
    let d = definition(error.kind());
    format!("{} {error} (remedy: {})", d.code, d.remedy)
}

/// Raised when several units in a row could not be read at the scan station.
pub const SCAN_STREAK: FaultDefinition = FaultDefinition {
    code: "WS-SCAN-STREAK",
    cause: "Several units in a row could not be read at the scan station; picking stopped so that no more stock is binned",
    remedy: "Clean the camera window and check the scan light, then clear this fault (wsctl clear) to resume picking",
    policy: Policy::StopPicking,
};

/// Raised when several units in a row were lost to jams, grip failures or wrong positions.
pub const HANDLING_STREAK: FaultDefinition = FaultDefinition {
    code: "WS-HANDLING-STREAK",
    cause: "Several units in a row were lost to jams, grip failures or wrong positions; picking stopped so that no more stock is binned",
    remedy: "Inspect the picker, the belt and its photo-eyes in maintenance mode, then clear this fault (wsctl clear) to resume picking",
    policy: Policy::StopPicking,
};

/// Whether an active fault of this code keeps every unit in the store.
pub fn stops_picking(code: &str) -> bool {
    [SCAN_STREAK, HANDLING_STREAK].iter().any(|d| d.code == code && d.policy == Policy::StopPicking)
}

/// Definition of the fault raised when a device's heartbeat stops changing.
pub const DEVICE_SILENT: FaultDefinition = FaultDefinition {
    code: "WS-SILENT",
    cause: "A field device's heartbeat stopped changing",
    remedy: "Check the device's power and its serial cable or network link",
    policy: Policy::WaitForOperator,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_own_code_cause_and_remedy() {
        let kinds = [
            ErrorKind::Timeout,
            ErrorKind::Crc,
            ErrorKind::NoResponse,
            ErrorKind::Exception,
            ErrorKind::Interlock,
            ErrorKind::Jam,
            ErrorKind::GripFailure,
            ErrorKind::InvalidTarget,
            ErrorKind::Busy,
            ErrorKind::WrongPosition,
            ErrorKind::HeartbeatLost,
            ErrorKind::NotHomed,
        ];
        let codes: std::collections::HashSet<_> = kinds.iter().map(|k| definition(*k).code).collect();
        assert_eq!(codes.len(), kinds.len());
        assert!(kinds.iter().all(|k| !definition(*k).cause.is_empty() && !definition(*k).remedy.is_empty()));
        assert_eq!(definition(ErrorKind::Jam).policy, Policy::RejectUnit);
        assert_eq!(definition(ErrorKind::Interlock).policy, Policy::WaitForOperator);
    }
}
