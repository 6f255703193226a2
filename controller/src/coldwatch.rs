//! The cold-chain watch: samples the cabinet probes, the belt tunnel probe and the
//! restock door at a fixed period, records every reading in the journal, feeds the
//! alarm monitor, journals alarms, and on an excursion puts the exposed units on
//! hold (freeze: the freeze-sensitive products; heat: every unit in the cabinet).

use crate::catalog::Catalog;
use crate::coldchain::{AlarmKind, Change, ColdChainRules, Monitor, Sample};
use crate::journal::Journal;
use chrono::Utc;
use hal::Devices;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

/// What happens to units exposed to an excursion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExcursionPolicy {
    /// Held (never picked, rejected at verification) pending a pharmacist's review.
    Quarantine,
    /// Only the alarm is recorded.
    Record,
}

/// `[coldchain]` in the config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ColdChainConfig {
    /// Seconds between samples (every reading is recorded).
    pub sample_s: f64,
    pub policy: ExcursionPolicy,
    pub rules: ColdChainRules,
}

impl Default for ColdChainConfig {
    fn default() -> Self {
        Self { sample_s: 10.0, policy: ExcursionPolicy::Quarantine, rules: ColdChainRules::default() }
    }
}

/// Starts the watch in the background; it runs for the life of the process.
pub fn spawn(devices: Devices, journal: Arc<Journal>, catalog: Arc<Catalog>, config: ColdChainConfig) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut monitor = Monitor::new(config.rules.clone());
        let mut ticker = tokio::time::interval(Duration::from_secs_f64(config.sample_s.max(0.01)));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if let Err(e) = sample_once(&devices, &journal, &catalog, &config, &mut monitor).await {
                tracing::error!("cold-chain watch: journal write failed: {e}");
            }
        }
    })
}

async fn sample_once(devices: &Devices, journal: &Journal, catalog: &Catalog, config: &ColdChainConfig, monitor: &mut Monitor) -> Result<(), crate::journal::JournalError> {
    let at = Utc::now();
    let mut readings = Vec::with_capacity(devices.probes.len());
    for probe in &devices.probes {
        readings.push((probe.name().to_owned(), probe.read_celsius().await.ok()));
    }
    journal.record_readings(at, &readings)?;
    // The door counts as closed only when it can be read as closed.
    let door_open = devices.interlocks.read().await.map_or(true, |i| i.restock_door_open);
    let cabinet = readings.into_iter().filter(|(name, _)| name.starts_with("cabinet")).collect();
    for change in monitor.observe(&Sample { at, cabinet, door_open, powered: true }) {
        match change {
            Change::Raised { kind, since, detail } => {
                tracing::warn!(alarm = kind.as_str(), %since, "cold-chain alarm: {detail}");
                journal.raise_alarm(kind.as_str(), since, &detail)?;
                if kind.is_excursion() && config.policy == ExcursionPolicy::Quarantine {
                    let reason = format!("{} excursion since {since}: {detail}", kind.as_str());
                    let held = match kind {
                        AlarmKind::Freeze => {
                            let gtins: Vec<String> = catalog.products.iter().filter(|p| p.freeze_sensitive).flat_map(|p| p.gtins.clone()).collect();
                            journal.hold_exposed(Some(&gtins), &reason)?
                        }
                        _ => journal.hold_exposed(None, &reason)?,
                    };
                    tracing::warn!(alarm = kind.as_str(), held, "exposed units quarantined pending review");
                }
            }
            Change::Cleared { kind, at } => {
                tracing::info!(alarm = kind.as_str(), "cold-chain alarm cleared");
                journal.clear_alarm(kind.as_str(), at)?;
            }
        }
    }
    Ok(())
}
