//! What the workstation publishes to watchers besides dispenses: the fault board,
//! the latest temperature sample, and the supervisor that keeps the board true to
//! the hardware (interlocks, each field device's alarm bits and heartbeat).

use crate::ops::faultboard::{FaultBoard, FaultKind};
use crate::journal::Journal;
use chrono::{DateTime, Utc};
use hal::Devices;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// One cold-chain sample: every probe, `None` where it could not be read.
#[derive(Debug, Clone, PartialEq)]
pub struct TemperatureSample {
    pub at: DateTime<Utc>,
    pub readings: Vec<(String, Option<f64>)>,
}

#[derive(Debug, Clone)]
pub struct Telemetry {
    pub faults: FaultBoard,
    temperatures: watch::Sender<Option<TemperatureSample>>,
    /// The event feed's state, once a feed is started (`[events]`).
    feed: Arc<std::sync::OnceLock<watch::Receiver<crate::feed::FeedState>>>,
}

/// The board's source name for the safety chain.
pub const INTERLOCKS: &str = "interlocks";

impl Telemetry {
    pub fn new(journal: Arc<Journal>) -> Self {
        Self { faults: FaultBoard::new(journal), temperatures: watch::channel(None).0, feed: Arc::default() }
    }

    /// Shows the started event feed's state to the API and the metrics.
    pub fn attach_feed(&self, state: watch::Receiver<crate::feed::FeedState>) {
        let _ = self.feed.set(state);
    }

    /// The event feed's state, if one runs.
    pub fn feed(&self) -> Option<crate::feed::FeedState> {
        self.feed.get().map(|state| state.borrow().clone())
    }

    pub fn publish_temperatures(&self, sample: TemperatureSample) {
        self.temperatures.send_replace(Some(sample));
    }

    pub fn temperatures(&self) -> watch::Receiver<Option<TemperatureSample>> {
        self.temperatures.subscribe()
    }
}

/// Polls the interlocks and every field device's alarms at `period`, raising and
/// clearing their faults; and turns each field device's heartbeat watch into the
/// device-silent fault. Runs for the life of the process.
pub fn supervise(tasks: &crate::tasks::Tasks, devices: Devices, board: FaultBoard, period: Duration) {
    for device in &devices.field {
        let (device, board) = (device.clone(), board.clone());
        tasks.spawn(async move {
            let mut health = device.health();
            let name = device.name();
            while health.changed().await.is_ok() {
                let silent = health.borrow_and_update().silent;
                let id = FaultBoard::id(crate::ops::faults::DEVICE_SILENT.code, name);
                if silent {
                    board.raise(crate::ops::faults::DEVICE_SILENT.into(), name, &format!("no heartbeat from {name} on {}", device.transport()));
                } else {
                    board.clear(&id, None);
                }
            }
        });
    }
    tasks.spawn(async move {
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let interlock = FaultKind::from(crate::ops::faults::definition(hal::ErrorKind::Interlock));
        let interlock_id = FaultBoard::id(interlock.code, INTERLOCKS);
        loop {
            ticker.tick().await;
            match devices.interlocks.read().await {
                Ok(status) if status.all_closed() => {
                    board.clear(&interlock_id, None);
                }
                Ok(status) => board.raise(interlock, INTERLOCKS, &format!("{} open", status.open_names().join(", "))),
                // A device that does not answer has its own fault (silent).
                Err(_) => {}
            }
            for device in &devices.field {
                let name = device.name();
                let Ok(status) = device.status().await else { continue };
                let codes: Vec<String> = status.alarms.iter().map(|a| a.code.to_owned()).collect();
                for alarm in &status.alarms {
                    board.raise(FaultKind { code: alarm.code, cause: alarm.cause, remedy: alarm.remedy }, name, &format!("alarm bit {} latched by {name}", alarm.bit));
                }
                // Device alarm codes are CS-xx / CV-xx.
                board.clear_unless("C", name, &codes);
            }
        }
    });
}

/// One probe over one stretch of time: what a chart of a long history plots.
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    pub probe: String,
    pub from: DateTime<Utc>,
    pub min: f64,
    pub mean: f64,
    pub max: f64,
    pub readings: u32,
    pub unread: u32,
}

/// Groups readings into at most `points` equal stretches of `[from, to]` per probe,
/// keeping each stretch's lowest, mean and highest reading (so a short excursion
/// still shows) and how often the probe could not be read. Stretches with no
/// sample are left out.
pub fn bucket(readings: &[(DateTime<Utc>, String, Option<f64>)], from: DateTime<Utc>, to: DateTime<Utc>, points: u32) -> Vec<Bucket> {
    let mut buckets = Buckets::new(from, to, points);
    for (at, probe, celsius) in readings {
        buckets.add(*at, probe, *celsius);
    }
    buckets.finish()
}

/// [`bucket`] one reading at a time, so a long history is never held whole: the
/// readings come in time order (probes interleaved) and only each probe's open
/// stretch is kept.
#[derive(Debug)]
pub struct Buckets {
    from: DateTime<Utc>,
    width_ms: f64,
    last: i64,
    open: std::collections::HashMap<String, (i64, Bucket, f64)>,
    done: Vec<Bucket>,
}

impl Buckets {
    pub fn new(from: DateTime<Utc>, to: DateTime<Utc>, points: u32) -> Self {
        let span = (to - from).num_milliseconds().max(1) as f64;
        let points = points.max(1);
        Self { from, width_ms: span / f64::from(points), last: i64::from(points) - 1, open: Default::default(), done: Vec::new() }
    }

    pub fn add(&mut self, at: DateTime<Utc>, probe: &str, celsius: Option<f64>) {
        let index = (((at - self.from).num_milliseconds() as f64) / self.width_ms).floor().clamp(0.0, self.last as f64) as i64;
        if self.open.get(probe).is_none_or(|(i, _, _)| *i != index) {
            let start = self.from + chrono::Duration::milliseconds((index as f64 * self.width_ms) as i64);
            let fresh = (index, Bucket { probe: probe.to_owned(), from: start, min: f64::INFINITY, mean: 0.0, max: f64::NEG_INFINITY, readings: 0, unread: 0 }, 0.0);
            if let Some((_, b, sum)) = self.open.insert(probe.to_owned(), fresh) {
                self.done.extend(finish(b, sum));
            }
        }
        if let Some((_, b, sum)) = self.open.get_mut(probe) {
            match celsius {
                Some(t) => {
                    b.min = b.min.min(t);
                    b.max = b.max.max(t);
                    b.readings += 1;
                    *sum += t;
                }
                None => b.unread += 1,
            }
        }
    }

    /// Every stretch, by probe and then time.
    pub fn finish(mut self) -> Vec<Bucket> {
        self.done.extend(self.open.into_values().filter_map(|(_, b, sum)| finish(b, sum)));
        self.done.sort_by(|a, b| a.probe.cmp(&b.probe).then(a.from.cmp(&b.from)));
        self.done
    }
}

fn finish(mut b: Bucket, sum: f64) -> Option<Bucket> {
    if b.readings == 0 {
        // Only failed reads: say so, with no temperature.
        (b.unread > 0).then(|| Bucket { min: f64::NAN, mean: f64::NAN, max: f64::NAN, ..b })
    } else {
        b.mean = sum / f64::from(b.readings);
        Some(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_keep_the_extremes_of_each_stretch_per_probe() {
        let t0 = Utc::now();
        let at = |s: i64| t0 + chrono::Duration::seconds(s);
        let mut readings = Vec::new();
        for s in 0..100 {
            // A 2-second spike to 9 °C in the middle of an otherwise steady 5 °C.
            let a = if (50..52).contains(&s) { 9.0 } else { 5.0 };
            readings.push((at(s), "cabinet-a".to_owned(), Some(a)));
            readings.push((at(s), "cabinet-b".to_owned(), if s < 10 { None } else { Some(5.5) }));
        }
        let buckets = bucket(&readings, t0, at(100), 10);
        let a: Vec<&Bucket> = buckets.iter().filter(|b| b.probe == "cabinet-a").collect();
        assert_eq!(a.len(), 10);
        assert_eq!(a.iter().map(|b| b.readings).sum::<u32>(), 100);
        assert_eq!(a[5].max, 9.0, "the spike survives");
        assert_eq!(a[4].max, 5.0);
        assert!((a[5].mean - 5.8).abs() < 1e-9, "{}", a[5].mean);
        let b: Vec<&Bucket> = buckets.iter().filter(|b| b.probe == "cabinet-b").collect();
        assert!(b[0].mean.is_nan() && b[0].unread == 10, "a stretch of failed reads is reported as such");
    }
}
