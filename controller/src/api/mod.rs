//! The gRPC face of the controller: one module per `dispense.v1` service, each
//! translating messages to domain calls and back. Shared here: how errors become
//! statuses (a `BadRequest` naming the field, an `ErrorInfo` with a stable reason,
//! a correlation id for the unexpected), the caller the gate admitted, timestamps.
//! The only modules that touch proto types.

pub mod dispensing;
pub mod maintenance;
pub mod monitoring;
pub mod stock;
pub mod trace;

use crate::access::Caller;
use crate::dispatcher::DispatchError;
use crate::gate::StreamPermit;
use chrono::NaiveDate;
use std::collections::HashMap;
use tonic::{Code, Request, Status};
use tonic_types::{ErrorDetails, StatusExt};

pub use dispensing::DispensingApi;

/// The domain of every `google.rpc.ErrorInfo` this API returns.
pub const ERROR_DOMAIN: &str = "dispense.workstation";

/// INVALID_ARGUMENT naming the field, in the message and as a `google.rpc.BadRequest`.
pub(crate) fn bad_request(field: &str, reason: String) -> Status {
    Status::with_error_details(Code::InvalidArgument, format!("{field}: {reason}"), ErrorDetails::with_bad_request_violation(field, reason))
}

/// A field's text as a date, or an error naming the field.
pub(crate) fn parse_date(field: &str, text: &str) -> Result<NaiveDate, Status> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| bad_request(field, format!("{text:?} is not a date (YYYY-MM-DD)")))
}

/// Trimmed text, `None` when empty (proto3 strings have no "unset").
pub(crate) fn optional(text: String) -> Option<String> {
    let text = text.trim().to_owned();
    (!text.is_empty()).then_some(text)
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
            let fault = crate::faults::definition(d.kind());
            defined(Code::Unavailable, "DEVICE_FAULT", format!("{} {d} (remedy: {})", fault.code, fault.remedy), HashMap::from([("fault_code".to_owned(), fault.code.to_owned())]))
        }
        DispatchError::RequestIdReused { .. } => info(Code::AlreadyExists, "REQUEST_ID_REUSED"),
        DispatchError::WrongStage { .. } => info(Code::FailedPrecondition, "WRONG_STAGE"),
        DispatchError::NotCancellable { .. } => info(Code::FailedPrecondition, "NOT_CANCELLABLE"),
        DispatchError::UnitHeld { .. } => info(Code::FailedPrecondition, "UNIT_HELD"),
        DispatchError::WrongState { .. } => info(Code::FailedPrecondition, "WRONG_WORKSTATION_STATE"),
        DispatchError::Locked { .. } => info(Code::FailedPrecondition, "MAINTENANCE_LOCKED"),
        DispatchError::InterlockOpen(_) => info(Code::FailedPrecondition, "INTERLOCK_OPEN"),
        DispatchError::NotReady(_) => info(Code::Unavailable, "WORKSTATION_NOT_READY"),
        DispatchError::Journal(j) => internal("the workstation's journal failed", j),
        DispatchError::Internal(what) => internal("an internal error", what),
    }
}

/// The caller the gate admitted (every method but the health check has one).
pub(crate) fn caller<T>(request: &Request<T>) -> Result<Caller, Status> {
    request.extensions().get::<Caller>().cloned().ok_or_else(|| Status::unauthenticated("no authenticated caller"))
}

/// The open-stream permit the gate took for a server stream.
pub(crate) fn stream_permit<T>(request: &mut Request<T>) -> Option<StreamPermit> {
    request.extensions_mut().remove::<StreamPermit>()
}

pub(crate) fn timestamp(t: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: t.timestamp(), nanos: t.timestamp_subsec_nanos() as i32 }
}

/// A protobuf timestamp as a time, or an error naming the field.
pub(crate) fn from_timestamp(field: &str, t: &prost_types::Timestamp) -> Result<chrono::DateTime<chrono::Utc>, Status> {
    chrono::DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(u32::MAX)).ok_or_else(|| bad_request(field, "is not a valid time".into()))
}
