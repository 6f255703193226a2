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
    chrono::DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(u32::MAX))
        .filter(|_| (0..1_000_000_000).contains(&t.nanos))
        .ok_or_else(|| bad_request(field, format!("{}s {}ns is not a valid time", t.seconds, t.nanos)))
}

/// The time range of a request: its end defaults to `now`, its start to
/// `default_span` before the end. Times outside what the journal can hold are
/// refused naming the field; a span reaching before the earliest time is cut
/// there (no arithmetic on request data can overflow); a start after the end is
/// refused naming `start_time`.
pub(crate) fn time_range(
    start: Option<&prost_types::Timestamp>,
    end: Option<&prost_types::Timestamp>,
    now: chrono::DateTime<chrono::Utc>,
    default_span: chrono::Duration,
) -> Result<(chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>), Status> {
    let end = end.map(|t| from_timestamp("end_time", t)).transpose()?.unwrap_or(now);
    let start = match start {
        Some(t) => from_timestamp("start_time", t)?,
        None => end.checked_sub_signed(default_span).unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC),
    };
    if start > end {
        return Err(bad_request("start_time", format!("{start} is after end_time ({end})")));
    }
    Ok((start, end))
}

/// A protobuf duration as whole seconds, or an error naming the field (negative,
/// or nanos outside what a duration may carry).
pub(crate) fn duration_seconds(field: &str, d: &prost_types::Duration) -> Result<u64, Status> {
    if d.seconds < 0 || d.nanos < 0 || d.nanos >= 1_000_000_000 {
        return Err(bad_request(field, format!("{}s {}ns is not a duration of zero or more", d.seconds, d.nanos)));
    }
    Ok(d.seconds.unsigned_abs())
}
