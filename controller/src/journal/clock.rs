//! The controller's sense of the date and time. Everything it records or judges by
//! time (journal lines, expiry at the expected jab, time out of refrigeration,
//! cold-chain durations, lock expiry) asks the journal's clock, never the system
//! directly, so a scenario can run a clinic day on tokio's virtual time and every
//! judgement follows that time.

use chrono::{DateTime, Utc};
use std::sync::Arc;

#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>);

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Clock({})", self.now())
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::system()
    }
}

impl Clock {
    /// The system's wall clock: the real workstation.
    pub fn system() -> Self {
        Self(Arc::new(Utc::now))
    }

    /// `anchor` now, then advancing with tokio's clock, which a paused runtime
    /// advances virtually: a scenario's day passes as fast as the CPU allows.
    pub fn following_tokio(anchor: DateTime<Utc>) -> Self {
        let start = tokio::time::Instant::now();
        Self(Arc::new(move || anchor + chrono::Duration::from_std(start.elapsed()).unwrap_or_default()))
    }

    pub fn now(&self) -> DateTime<Utc> {
        (self.0)()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_tokio_clock_follows_virtual_time() {
        let anchor = DateTime::parse_from_rfc3339("2026-03-02T08:00:00Z").expect("time").with_timezone(&Utc);
        let clock = Clock::following_tokio(anchor);
        assert_eq!(clock.now(), anchor);
        tokio::time::sleep(std::time::Duration::from_secs(10 * 3600)).await;
        assert_eq!(clock.now(), anchor + chrono::Duration::hours(10), "ten virtual hours, no real wait");
    }
}
