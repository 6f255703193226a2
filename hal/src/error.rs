//! The one error type every device method returns, with a kind callers can match on.

use std::fmt;

/// What went wrong, independent of the device or transport behind it.
///
/// `#[non_exhaustive]` so new kinds (as the wire protocols arrive) do not break callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The device did not finish the operation in time.
    Timeout,
    /// A frame arrived with a bad checksum.
    Crc,
    /// The device did not answer at all.
    NoResponse,
    /// The device answered with an exception (refused the command).
    Exception,
    /// Motion refused because an interlock (e-stop, door, light curtain) is open.
    Interlock,
    /// A unit did not reach the next photo-eye in time.
    Jam,
    /// The picker could not grip, or dropped, the unit.
    GripFailure,
    /// The addressed slot, booth or carrier does not exist or holds nothing.
    InvalidTarget,
    /// The device is in a state where the command makes no sense (e.g. tray occupied).
    Busy,
    /// The device finished somewhere other than where it was sent (target ≠ actual).
    WrongPosition,
    /// The device stopped motion because the controller's heartbeat stopped reaching it.
    HeartbeatLost,
    /// The device has lost its reference (it restarted, e.g. after a power cut) and
    /// moves again only once homed.
    NotHomed,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            ErrorKind::Timeout => "timeout",
            ErrorKind::Crc => "checksum error",
            ErrorKind::NoResponse => "no response",
            ErrorKind::Exception => "device exception",
            ErrorKind::Interlock => "interlock open",
            ErrorKind::Jam => "jam",
            ErrorKind::GripFailure => "grip failure",
            ErrorKind::InvalidTarget => "invalid target",
            ErrorKind::Busy => "busy",
            ErrorKind::WrongPosition => "target and actual position differ",
            ErrorKind::HeartbeatLost => "controller heartbeat lost",
            ErrorKind::NotHomed => "not homed",
        };
        f.write_str(text)
    }
}

/// A failed device operation: which device, what kind of failure, and a human detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{device}: {kind}: {detail}")]
pub struct DeviceError {
    kind: ErrorKind,
    device: &'static str,
    detail: String,
}

impl DeviceError {
    pub fn new(device: &'static str, kind: ErrorKind, detail: impl Into<String>) -> Self {
        Self { kind, device, detail: detail.into() }
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The device that failed, e.g. `"conveyor"`.
    pub fn device(&self) -> &'static str {
        self.device
    }

    pub fn detail(&self) -> &str {
        &self.detail
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_device_kind_and_detail() {
        let e = DeviceError::new("conveyor", ErrorKind::Jam, "carrier 7 missed the scan eye");
        assert_eq!(e.to_string(), "conveyor: jam: carrier 7 missed the scan eye");
        assert_eq!(e.kind(), ErrorKind::Jam);
        assert_eq!(e.device(), "conveyor");
    }
}
