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
use crate::rules::heat_stability::HeatStability;
use crate::rules::inventory::{Hold, UnitState};

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
    /// The air at the gates and the booths' trays, °C, for the vial monitor of a
    /// unit waiting there (no probe there).
    pub ambient_celsius: f64,
}

impl Default for ColdChainConfig {
    fn default() -> Self {
        Self { sample_s: 10.0, policy: ExcursionPolicy::Quarantine, rules: ColdChainRules::default(), ambient_celsius: 25.0 }
    }
}

/// Starts the watch in the background; it runs for the life of the process.
pub fn spawn(tasks: &crate::tasks::Tasks, devices: Devices, journal: Arc<Journal>, catalog: Arc<Catalog>, config: ColdChainConfig, telemetry: Telemetry) -> tokio::task::JoinHandle<()> {
    tasks.spawn(async move {
        if let Err(e) = account_for_downtime(&journal, &config, &telemetry) {
            tracing::error!("cold-chain watch: journal: {e}");
        }
        let mut watches = watches(&catalog, &config.rules);
        if let Err(e) = restore(&journal, &catalog, &config, &mut watches, &telemetry) {
            tracing::error!("cold-chain watch: the alarm clocks could not be rebuilt from the journal: {e}");
        }
        let mut ticker = tokio::time::interval(Duration::from_secs_f64(config.sample_s.max(0.01)));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let stabilities = stabilities(&catalog);
        let mut last: Option<chrono::DateTime<chrono::Utc>> = None;
        loop {
            ticker.tick().await;
            match sample_once(&devices, &journal, &catalog, &config, &mut watches, &telemetry).await {
                Ok(sample) => {
                    // The time since the last sample, at most a few periods (a gap while
                    // the controller was down is judged by the power rule).
                    let seconds = last.map_or(0.0, |l| ((sample.at - l).num_milliseconds() as f64 / 1000.0).clamp(0.0, config.sample_s * 5.0));
                    last = Some(sample.at);
                    if let Err(e) = charge_heat(&journal, &stabilities, &config, &sample, seconds) {
                        tracing::error!("cold-chain watch: the vial monitors could not be journalled: {e}");
                    }
                }
                Err(e) => tracing::error!("cold-chain watch: journal write failed: {e}"),
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

/// The alarm clocks as the journal's readings left them: the monitors replay the
/// readings of the longest rule's window, so a heat period that began before a
/// restart keeps its start. Then the journal's open alarms and the replay agree:
/// one the replay holds up but the journal does not is raised (its units held);
/// one the journal holds open but the replay does not is cleared; the ones still
/// up go back on the fault board.
fn restore(journal: &Journal, catalog: &Catalog, config: &ColdChainConfig, watches: &mut [Watch], telemetry: &Telemetry) -> Result<(), crate::journal::JournalError> {
    let r = &config.rules;
    let longest = [r.heat_s, r.freeze_s, r.disagree_s, r.probe_silence_s].into_iter().max().unwrap_or(0);
    // A little more than the longest rule, so a condition that has held for all of
    // it is seen to have.
    let window = longest + longest / 10 + 60;
    let now = journal.now();
    let readings = journal.readings_between(now - chrono::Duration::seconds(window), now)?;
    let mut samples: Vec<Sample> = Vec::new();
    for (at, probe, celsius) in readings.into_iter().filter(|(_, probe, _)| probe.starts_with("cabinet")) {
        match samples.last_mut() {
            Some(last) if last.at == at => last.cabinet.push((probe, celsius)),
            // The door is not journalled with the readings: its clock starts afresh.
            _ => samples.push(Sample { at, cabinet: vec![(probe, celsius)], door_open: false, powered: true }),
        }
    }
    for watch in watches.iter_mut() {
        for sample in &samples {
            // Changes during the replay were journalled when they happened.
            watch.monitor.observe(sample);
        }
    }
    let open: Vec<String> = journal.active_alarms()?.into_iter().map(|(kind, _, _)| kind).collect();
    for watch in watches.iter() {
        let up: Vec<(AlarmKind, chrono::DateTime<chrono::Utc>)> = watch.monitor.active().collect();
        for (kind, since) in &up {
            if !open.contains(&alarm_name(watch.product.as_ref(), *kind)) {
                let detail = format!("up in the readings before the restart, since {since}");
                apply(journal, catalog, config, watch.product.as_ref(), Change::Raised { kind: *kind, since: *since, detail }, telemetry)?;
            } else if watch.product.is_none() || kind.is_excursion() {
                telemetry.faults.raise(kind.fault(), &alarm_source(watch.product.as_ref()), "still up after a restart");
            }
        }
    }
    let cabinet_up: Vec<String> = watches
        .iter()
        .flat_map(|w| w.monitor.active().map(move |(kind, _)| alarm_name(w.product.as_ref(), kind)))
        .collect();
    for name in open.iter().filter(|name| !cabinet_up.contains(name) && name.as_str() != AlarmKind::PowerLost.as_str()) {
        journal.clear_alarm(name, now)?;
        tracing::info!(alarm = %name, "cold-chain alarm no longer up in the readings: cleared");
    }
    Ok(())
}

/// The journal's name of an alarm: the kind, or `kind:product` for a product's own.
fn alarm_name(product: Option<&(String, Vec<String>)>, kind: AlarmKind) -> String {
    match product {
        Some((id, _)) => format!("{}:{id}", kind.as_str()),
        None => kind.as_str().to_owned(),
    }
}

/// The fault board's source of an alarm: the cabinet, or `cabinet:product`.
fn alarm_source(product: Option<&(String, Vec<String>)>) -> String {
    match product {
        Some((id, _)) => format!("cabinet:{id}"),
        None => "cabinet".to_owned(),
    }
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

/// Each GTIN's vial monitor, for the products that have one.
fn stabilities(catalog: &Catalog) -> std::collections::HashMap<String, HeatStability> {
    catalog.products.iter().filter_map(|p| p.heat_stability.map(|s| (p, s))).flat_map(|(p, s)| p.gtins.iter().map(move |g| (g.clone(), s))).collect()
}

/// What one sample read: the cabinet probes and the belt tunnel's, `None` unread.
#[derive(Debug, Clone)]
struct Readings {
    at: chrono::DateTime<chrono::Utc>,
    cabinet: Option<f64>,
    tunnel: Option<f64>,
}

/// Charges each unit's vial monitor with `seconds` at the temperature where it is:
/// the warmest cabinet probe in the store, the belt tunnel's probe once picked, the
/// ambient air at a gate or in a tray; a place whose probe cannot be read counts at
/// the ambient (fail closed: the warmer). A unit that reaches its end point is held
/// wherever it is (the runner then refuses it at its gate or booth).
fn charge_heat(journal: &Journal, stabilities: &std::collections::HashMap<String, HeatStability>, config: &ColdChainConfig, r: &Readings, seconds: f64) -> Result<(), crate::journal::JournalError> {
    if seconds <= 0.0 || stabilities.is_empty() {
        return Ok(());
    }
    let ambient = config.ambient_celsius;
    // Where a unit is decides its temperature: the cabinet, the belt's tunnel, or
    // the room at a gate or in a tray.
    let places = [(UnitState::InStore, r.cabinet.unwrap_or(ambient)), (UnitState::Picked, r.tunnel.unwrap_or(ambient)), (UnitState::Delivered, ambient)];
    let mut shares: Vec<(String, UnitState, f64)> = Vec::new();
    for (gtin, stability) in stabilities {
        shares.extend(places.iter().map(|(state, celsius)| (gtin.clone(), *state, stability.consumed(*celsius, seconds))));
    }
    // A fixed order, so a run replays exactly.
    shares.sort_by(|a, b| (&a.0, a.1.as_str()).cmp(&(&b.0, b.1.as_str())));
    for code in journal.add_heat(&shares)? {
        tracing::warn!(unit = %code, "vial monitor at its end point: held");
        journal.hold_unit(&code, Hold::HeatBudget, "vial monitor at its end point (heat budget used up)", "cold-chain watch")?;
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
) -> Result<Readings, crate::journal::JournalError> {
    let at = journal.now();
    let mut readings = Vec::with_capacity(devices.probes.len());
    for probe in &devices.probes {
        readings.push((probe.name().to_owned(), probe.read_celsius().await.ok()));
    }
    journal.record_readings(at, &readings)?;
    telemetry.publish_temperatures(TemperatureSample { at, readings: readings.clone() });
    // The door counts as closed only when it can be read as closed.
    let door_open = devices.interlocks.read().await.map_or(true, |i| i.restock_door_open);
    let finite = |name: &str| readings.iter().filter(|(n, _)| n.starts_with(name)).filter_map(|(_, c)| c.filter(|c| c.is_finite())).fold(None, |w: Option<f64>, c| Some(w.map_or(c, |w| w.max(c))));
    let read = Readings { at, cabinet: finite("cabinet"), tunnel: finite("belt-tunnel") };
    let cabinet = readings.into_iter().filter(|(name, _)| name.starts_with("cabinet")).collect();
    let sample = Sample { at, cabinet, door_open, powered: true };
    for watch in watches.iter_mut() {
        for change in watch.monitor.observe(&sample) {
            apply(journal, catalog, config, watch.product.as_ref(), change, telemetry)?;
        }
    }
    Ok(read)
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
    let name = alarm_name(product, kind);
    // A product's own excursion is its own occurrence on the board.
    let source = alarm_source(product);
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
                let hold = if kind == AlarmKind::Freeze { Hold::FreezeExposed } else { Hold::ColdChain };
                let held = journal.hold_exposed(gtins.as_deref(), since, hold, &reason)?;
                tracing::warn!(alarm = %name, held, "exposed units quarantined pending review");
            }
            journal.raise_alarm(&name, since, &detail)?;
            telemetry.faults.raise(kind.fault(), &source, &detail);
        }
        Change::Cleared { at, .. } => {
            tracing::info!(alarm = %name, "cold-chain alarm cleared");
            journal.clear_alarm(&name, at)?;
            telemetry.faults.clear(&crate::ops::faultboard::FaultBoard::id(kind.fault().code, &source), None);
        }
    }
    Ok(())
}
