//! How `wsctl` fails: a message for the crew and an exit code for scripts.

use std::fmt;
use std::process::ExitCode;

/// The exit codes, documented in `wsctl --help`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The command ran and found a problem (a self-test step failed).
    CheckFailed = 1,
    /// The workstation refused the caller (no or unknown token, wrong role).
    Refused = 3,
    /// Not now: not in maintenance mode, an interlock open, the lock held by someone else.
    NotNow = 4,
    /// Bad input, or what was named does not exist.
    BadInput = 5,
    /// The workstation cannot be reached or a device does not answer.
    Unreachable = 6,
    /// Anything else (an internal error, a file that cannot be written).
    Other = 7,
}

#[derive(Debug)]
pub struct Failure {
    pub exit: Exit,
    pub message: String,
}

impl Failure {
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        Self { exit, message: message.into() }
    }

    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.exit as u8)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<tonic::Status> for Failure {
    fn from(status: tonic::Status) -> Self {
        use tonic::Code;
        let exit = match status.code() {
            Code::Unauthenticated | Code::PermissionDenied => Exit::Refused,
            Code::FailedPrecondition | Code::ResourceExhausted | Code::AlreadyExists | Code::Aborted => Exit::NotNow,
            Code::InvalidArgument | Code::NotFound | Code::OutOfRange => Exit::BadInput,
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => Exit::Unreachable,
            _ => Exit::Other,
        };
        let code = format!("{:?}", status.code());
        Self::new(exit, format!("{} ({code})", status.message()))
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Self::new(Exit::Other, e.to_string())
    }
}

impl From<serde_json::Error> for Failure {
    fn from(e: serde_json::Error) -> Self {
        Self::new(Exit::Other, e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, Failure>;
