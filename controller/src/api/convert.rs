//! Conversions between proto field types and domain types (dates, times, optional
//! text), each failing with an error that names the field.

use crate::api::errors::bad_request;
use chrono::NaiveDate;
use tonic::Status;

/// A field's text as a date, or an error naming the field.
pub(crate) fn parse_date(field: &str, text: &str) -> Result<NaiveDate, Status> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| bad_request(field, format!("{text:?} is not a date (YYYY-MM-DD)")))
}

/// Trimmed text, `None` when empty (proto3 strings have no "unset").
pub(crate) fn optional(text: String) -> Option<String> {
    let text = text.trim().to_owned();
    (!text.is_empty()).then_some(text)
}

pub(crate) fn timestamp(t: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: t.timestamp(), nanos: t.timestamp_subsec_nanos() as i32 }
}

/// A protobuf timestamp as a time, or an error naming the field.
pub(crate) fn from_timestamp(field: &str, t: &prost_types::Timestamp) -> Result<chrono::DateTime<chrono::Utc>, Status> {
    chrono::DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(u32::MAX)).ok_or_else(|| bad_request(field, "is not a valid time".into()))
}
