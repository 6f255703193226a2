//! The sampler a scenario run keeps beside the controller: the queue and the
//! booths, once a virtual minute.

use controller::dispatch::Dispatcher;
use controller::dispense::status::Stage;
use serde::Serialize;
use std::sync::Mutex;
use std::time::Duration;

/// The workstation at one moment of the run.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Virtual seconds since opening.
    pub t_s: f64,
    pub queued: usize,
    pub in_flight: usize,
    pub booths_busy: usize,
    pub booths: usize,
}

/// The share of booth time busy over `samples` (0 to 1; 0 with no sample): each
/// sample's booths in use over its booths.
pub fn booth_utilisation<'a>(samples: impl Iterator<Item = &'a Sample>) -> f64 {
    let (busy, seats) = samples.fold((0.0, 0.0), |(b, t), s| (b + s.booths_busy as f64, t + s.booths.max(1) as f64));
    if seats > 0.0 { busy / seats } else { 0.0 }
}

/// A sampler running beside the scenario.
#[derive(Debug)]
pub struct Measure {
    samples: std::sync::Arc<Mutex<Vec<Sample>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Measure {
    /// Samples whichever controller is current (a restart replaces it).
    pub fn start(current: tokio::sync::watch::Receiver<Dispatcher>, every: Duration) -> Self {
        let samples: std::sync::Arc<Mutex<Vec<Sample>>> = Default::default();
        let kept = samples.clone();
        let opened = tokio::time::Instant::now();
        let task = tokio::spawn(async move {
            let mut ticker = tokio::time::interval(every);
            loop {
                ticker.tick().await;
                let dispatcher = current.borrow().clone();
                let queue = dispatcher.queue();
                let booths = dispatcher.watch_booths().borrow().clone();
                let sample = Sample {
                    t_s: opened.elapsed().as_secs_f64(),
                    queued: queue.iter().filter(|d| d.stage == Stage::Queued).count(),
                    in_flight: queue.len(),
                    booths_busy: booths.booths.iter().filter(|b| b.holder.is_some()).count(),
                    booths: booths.booths.len(),
                };
                kept.lock().unwrap_or_else(|p| p.into_inner()).push(sample);
            }
        });
        Self { samples, task }
    }

    pub fn stop(&self) -> Vec<Sample> {
        self.task.abort();
        self.samples.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

