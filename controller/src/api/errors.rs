//! How errors become gRPC statuses: a `BadRequest` naming the field, an `ErrorInfo`
//! with a stable reason, a correlation id for the unexpected.

use crate::dispatch::DispatchError;
use std::collections::HashMap;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The domain of every `google.rpc.ErrorInfo` this API returns.
pub const ERROR_DOMAIN: &str = "dispense.workstation";

/// When a caller refused for a full queue should try again: about the time a few
/// dispenses take to end at a busy workstation.
pub const QUEUE_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(30);

/// INVALID_ARGUMENT naming the field, in the message and as a `google.rpc.BadRequest`.
pub(crate) fn bad_request(field: &str, reason: String) -> Status {
    Status::with_error_details(Code::InvalidArgument, format!("{field}: {reason}"), ErrorDetails::with_bad_request_violation(field, reason))
}

/// A fresh id tying a client's error to the server's log line: time and a counter.
fn correlation_id() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{nanos:x}-{n}")
}

/// INTERNAL for something that should not happen: logged under a correlation id
/// that the client also gets, so the two can be matched.
pub(crate) fn internal(what: &str, error: &dyn std::fmt::Display) -> Status {
    let correlation = correlation_id();
    tracing::error!(error = %error, correlation, "{what}");
    Status::with_error_details(
        Code::Internal,
        format!("{what}; the error is logged under correlation id {correlation}"),
        ErrorDetails::with_error_info("INTERNAL", ERROR_DOMAIN, HashMap::from([("correlation_id".to_owned(), correlation)])),
    )
}

/// A status with a stable reason in a `google.rpc.ErrorInfo`.
pub(crate) fn defined(code: Code, reason: &str, message: String, metadata: HashMap<String, String>) -> Status {
    Status::with_error_details(code, message, ErrorDetails::with_error_info(reason, ERROR_DOMAIN, metadata))
}

/// A dispatcher error as a gRPC status: invalid arguments carry a `BadRequest`
/// naming the field; defined execution errors a `google.rpc.ErrorInfo` with a
/// stable reason (device errors also their fault code); journal failures are
/// unexpected and get a correlation id.
pub(crate) fn to_status(e: DispatchError) -> Status {
    let info = |code: Code, reason: &str| defined(code, reason, e.to_string(), HashMap::new());
    match &e {
        DispatchError::InvalidArgument { field, reason } => bad_request(field, reason.clone()),
        DispatchError::NotFound(_) => info(Code::NotFound, "DISPENSE_NOT_FOUND"),
        DispatchError::NoSuchStock(_) => info(Code::NotFound, "STOCK_NOT_FOUND"),
        DispatchError::Device(d) => {
            let fault = crate::ops::faults::definition(d.kind());
            defined(Code::Unavailable, "DEVICE_FAULT", format!("{} {d} (remedy: {})", fault.code, fault.remedy), HashMap::from([("fault_code".to_owned(), fault.code.to_owned())]))
        }
        DispatchError::RequestIdReused { .. } => info(Code::AlreadyExists, "REQUEST_ID_REUSED"),
        DispatchError::WrongStage { .. } => info(Code::FailedPrecondition, "WRONG_STAGE"),
        DispatchError::NotCancellable { .. } => info(Code::FailedPrecondition, "NOT_CANCELLABLE"),
        DispatchError::UnitHeld { .. } => info(Code::FailedPrecondition, "UNIT_HELD"),
        DispatchError::WrongState { .. } => info(Code::FailedPrecondition, "WRONG_WORKSTATION_STATE"),
        DispatchError::LeaseHeld { .. } => info(Code::FailedPrecondition, "MAINTENANCE_LOCKED"),
        DispatchError::InterlockOpen(_) => info(Code::FailedPrecondition, "INTERLOCK_OPEN"),
        DispatchError::MotionRefused(_) => info(Code::FailedPrecondition, "MOTION_REFUSED"),
        DispatchError::NotReady(_) => info(Code::Unavailable, "WORKSTATION_NOT_READY"),
        DispatchError::Busy { .. } => {
            let mut details = ErrorDetails::with_error_info("QUEUE_FULL", ERROR_DOMAIN, HashMap::new());
            details.set_retry_info(Some(QUEUE_RETRY_AFTER));
            Status::with_error_details(Code::ResourceExhausted, e.to_string(), details)
        }
        DispatchError::Journal(j) => internal("the workstation's journal failed", j),
        DispatchError::Internal(what) => internal("an internal error", what),
    }
}

