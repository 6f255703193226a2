//! The controller's sense of the date and time. Everything it records or judges by
//! time (journal lines, expiry at the expected jab, time out of refrigeration,
//! cold-chain durations, lease expiry) asks the journal's clock, never the system
//! directly, so a scenario can run a clinic day on tokio's virtual time and every
//! judgement follows that time. Instants are UTC; every judgement by date (expiry,
//! "today", age, intervals, FEFO validity) is made on the site's local calendar
//! date ([`Clock::local_date`]), never the UTC date (SAFETY.md, H-01).

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use std::sync::Arc;

/// The site's time zone when the config names none: mainland China (UTC+8, no
/// daylight saving).
pub const DEFAULT_ZONE: Tz = chrono_tz::Asia::Shanghai;

#[derive(Clone)]
pub struct Clock {
    now: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>,
    zone: Tz,
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Clock({} in {})", self.now(), self.zone)
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
        Self { now: Arc::new(Utc::now), zone: DEFAULT_ZONE }
    }

    /// `anchor` now, then advancing with tokio's clock, which a paused runtime
    /// advances virtually: a scenario's day passes as fast as the CPU allows.
    pub fn following_tokio(anchor: DateTime<Utc>) -> Self {
        let start = tokio::time::Instant::now();
        Self { now: Arc::new(move || anchor + chrono::Duration::from_std(start.elapsed()).unwrap_or_default()), zone: DEFAULT_ZONE }
    }

    /// The same clock at a site in `zone`.
    pub fn in_zone(self, zone: Tz) -> Self {
        Self { zone, ..self }
    }

    pub fn now(&self) -> DateTime<Utc> {
        (self.now)()
    }

    /// The site's time zone.
    pub fn zone(&self) -> Tz {
        self.zone
    }

    /// The site's calendar date at an instant.
    pub fn local_date(&self, at: DateTime<Utc>) -> NaiveDate {
        at.with_timezone(&self.zone).date_naive()
    }

    /// The site's calendar date now.
    pub fn today(&self) -> NaiveDate {
        self.local_date(self.now())
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

    #[tokio::test(start_paused = true)]
    async fn dates_are_the_sites_local_dates() {
        // 01:30 in Shanghai on the 25th is still the 24th in UTC.
        let anchor = DateTime::parse_from_rfc3339("2026-11-24T17:30:00Z").expect("time").with_timezone(&Utc);
        let clock = Clock::following_tokio(anchor).in_zone(chrono_tz::Asia::Shanghai);
        assert_eq!(clock.today(), NaiveDate::from_ymd_opt(2026, 11, 25).expect("date"));
        assert_eq!(clock.clone().in_zone(chrono_tz::UTC).today(), NaiveDate::from_ymd_opt(2026, 11, 24).expect("date"));
    }
}
