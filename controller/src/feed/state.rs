//! What the event feed is doing, as its publisher reports it: for the metrics,
//! `GetStatus` (and wsctl's fleet table) and the graceful stop. A leaf: the
//! workstation's telemetry holds it without depending on the publisher.

/// What the feed is doing, for the metrics and the graceful stop.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedState {
    pub connected: bool,
    /// The last event the broker acknowledged.
    pub acknowledged: i64,
    /// Events published since start (repeats after an outage included).
    pub published: u64,
    /// Connections that failed or were lost since start, and why the last one.
    pub failures: u64,
    pub last_failure: Option<String>,
}
