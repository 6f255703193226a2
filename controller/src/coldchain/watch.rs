//! The cold-chain watch: samples the cabinet probes, the belt tunnel probe and the
//! restock door at a fixed period, records every reading in the journal, feeds the
//! alarm monitor, journals alarms, and on an excursion puts the exposed units on
//! hold (freeze: the freeze-sensitive products; heat: every unit in the cabinet).

use crate::rules::catalog::Catalog;
use crate::coldchain::rules::{AlarmKind, Change, ColdChainRules, Monitor, Sample};
use crate::journal::Journal;
use crate::ops::telemetry::{Telemetry, TemperatureSample};
use hal::Devices;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use crate::journal::StepKind;

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
pub fn spawn(tasks: &crate::tasks::Tasks, devices: Devices, journal: Arc<Journal>, catalog: Arc<Catalog>, config: ColdChainConfig, telemetry: Telemetry) -> tokio::task::JoinHandle<()> {
    tasks.spawn(async move {
        if let Err(e) = account_for_downtime(&journal, &config, &telemetry) {
            tracing::error!("cold-chain watch: journal: {e}");
        }
        let mut watches = watches(&catalog, &config.rules);
        let mut ticker = tokio::time::interval(Duration::from_secs_f64(config.sample_s.max(0.01)));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if let Err(e) = sample_once(&devices, &journal, &catalog, &config, &mut watches, &telemetry).await {
                tracing::error!("cold-chain watch: journal write failed: {e}");
            }
        }
    })
}

/// One alarm monitor: the cabinet's (every alarm, every unit), or a product's own
/// stricter limits (its excursions only, its units only).
#[derive(Debug)]
struct Watch {
    monitor: Monitor,
    product: Option<(String, Vec<String>)>,
}

fn watches(catalog: &Catalog, rules: &ColdChainRules) -> Vec<Watch> {
    let mut all = vec![Watch { monitor: Monitor::new(rules.clone()), product: None }];
    for p in &catalog.products {
        if let Some(own) = &p.cold_chain {
            all.push(Watch { monitor: Monitor::new(rules.tightened(own)), product: Some((p.id.clone(), p.gtins.clone())) });
        }
    }
    all
}

/// The controller was off between its last reading and now: nobody watched the
/// cabinet. The gap is recorded; longer than the power rule, it raises the
/// power-lost alarm (the controller and the cabinet share the supply).
fn account_for_downtime(journal: &Journal, config: &ColdChainConfig, telemetry: &Telemetry) -> Result<(), crate::journal::JournalError> {
    let Some(last) = journal.last_reading_at()? else { return Ok(()) };
    let now = journal.now();
    let gap = now - last;
    if gap.num_milliseconds() as f64 <= config.sample_s * 2_000.0 {
        return Ok(());
    }
    let detail = format!("no readings from {last} to {now} ({} s): the controller was not running", gap.num_seconds());
    journal.note(None, StepKind::ColdChain, "unwatched", &detail)?;
    if gap.num_seconds() >= config.rules.power_s {
        tracing::warn!("cold-chain alarm: {detail}");
        journal.raise_alarm(AlarmKind::PowerLost.as_str(), last, &detail)?;
        telemetry.faults.raise(AlarmKind::PowerLost.fault(), "cabinet", &detail);
    }
    Ok(())
}

async fn sample_once(
    devices: &Devices,
    journal: &Journal,
    catalog: &Catalog,
    config: &ColdChainConfig,
    watches: &mut [Watch],
    telemetry: &Telemetry,
) -> Result<(), crate::journal::JournalError> {
    let at = journal.now();
    let mut readings = Vec::with_capacity(devices.probes.len());
    for probe in &devices.probes {
        readings.push((probe.name().to_owned(), probe.read_celsius().await.ok()));
    }
    journal.record_readings(at, &readings)?;
    telemetry.publish_temperatures(TemperatureSample { at, readings: readings.clone() });
    // The door counts as closed only when it can be read as closed.
    let door_open = devices.interlocks.read().await.map_or(true, |i| i.restock_door_open);
    let cabinet = readings.into_iter().filter(|(name, _)| name.starts_with("cabinet")).collect();
    let sample = Sample { at, cabinet, door_open, powered: true };
    for watch in watches.iter_mut() {
        for change in watch.monitor.observe(&sample) {
            apply(journal, catalog, config, watch.product.as_ref(), change, telemetry)?;
        }
    }
    Ok(())
}

/// Journals one alarm change and, on an excursion under the quarantine policy,
/// holds the exposed units.
fn apply(
    journal: &Journal,
    catalog: &Catalog,
    config: &ColdChainConfig,
    product: Option<&(String, Vec<String>)>,
    change: Change,
    telemetry: &Telemetry,
) -> Result<(), crate::journal::JournalError> {
    let kind = match &change {
        Change::Raised { kind, .. } | Change::Cleared { kind, .. } => *kind,
    };
    // A product's own monitor speaks only of its excursions; the cabinet's covers the rest.
    if product.is_some() && !kind.is_excursion() {
        return Ok(());
    }
    let name = match product {
        Some((id, _)) => format!("{}:{id}", kind.as_str()),
        None => kind.as_str().to_owned(),
    };
    // A product's own excursion is its own occurrence on the board.
    let source = match product {
        Some((id, _)) => format!("cabinet:{id}"),
        None => "cabinet".to_owned(),
    };
    match change {
        Change::Raised { since, detail, .. } => {
            tracing::warn!(alarm = %name, %since, "cold-chain alarm: {detail}");
            // The exposed units are held before the alarm is published, so whoever
            // sees the alarm never sees an exposed unit still available.
            if kind.is_excursion() && config.policy == ExcursionPolicy::Quarantine {
                let reason = format!("{name} excursion since {since}: {detail}");
                let gtins: Option<Vec<String>> = match (product, kind) {
                    (Some((_, gtins)), _) => Some(gtins.clone()),
                    (None, AlarmKind::Freeze) => Some(catalog.products.iter().filter(|p| p.freeze_sensitive).flat_map(|p| p.gtins.clone()).collect()),
                    (None, _) => None,
                };
                let held = journal.hold_exposed(gtins.as_deref(), since, &reason)?;
                tracing::warn!(alarm = %name, held, "exposed units quarantined pending review");
            }
            journal.raise_alarm(&name, since, &detail)?;
            telemetry.faults.raise(kind.fault(), &source, &detail);
        }
        Change::Cleared { at, .. } => {
            tracing::info!(alarm = %name, "cold-chain alarm cleared");
            journal.clear_alarm(&name, at)?;
            telemetry.faults.clear(&format!("{}@{source}", kind.fault().code), None);
        }
    }
    Ok(())
}
