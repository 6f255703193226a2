//! What a run measured: the figures and the safety accounting drawn from the
//! dispenses, the samples (`sampling`), the journal and the simulator's physical
//! record.

use crate::run::Raw;
use controller::dispense::status::Stage;
use serde::Serialize;
use std::collections::BTreeMap;
use controller::journal::Outcome;

/// The run's figures.
#[derive(Debug, Clone, Serialize)]
pub struct Metrics {
    pub patients: usize,
    /// Every patient's outcome counted (given, rejected, failed, cancelled,
    /// refused, waiting): they sum to `patients`.
    pub patients_by_outcome: BTreeMap<String, u64>,
    pub orders: usize,
    pub administered: u64,
    pub rejected: u64,
    pub failed: u64,
    pub cancelled: u64,
    /// Rejected dispenses by violation id (a dispense counts once per id).
    pub rejected_by: BTreeMap<String, u64>,
    pub order_to_booth_s: Percentiles,
    /// The patient's side: from check-in (arrival) to their dose, seconds, over the
    /// patients given one (their first dose if reordered).
    pub patient_wait_s: Percentiles,
    /// Doses given per hour while patients arrived: from the first dose to the last
    /// arrival, so a saturated run measures the machine's steady rate, not its
    /// start-up or the drain of the queue after the last arrival.
    pub throughput_per_hour: f64,
    pub virtual_hours: f64,
    pub wall_s: f64,
    /// Virtual seconds per wall second.
    pub speedup: f64,
    pub cold_chain_alarms: Vec<String>,
    pub fault_codes: Vec<String>,
    pub final_state: String,
    /// Deliveries whose unit is not the verified unit of a dispense for that booth and product.
    pub wrong_units_delivered: Vec<String>,
    /// The oracle's verdict from ground truth alone — the simulator's record of which
    /// printed label dropped into which tray when, the clinic's own record of its
    /// orders, the catalog, the recalls and the site's calendar; never the journal:
    /// every unit in a tray that should not have been there.
    pub inadmissible_in_trays: Vec<String>,
    /// Administered doses by lot, with the time of administration (for recalls).
    pub administered_by_lot: BTreeMap<String, Vec<f64>>,
    /// Administered doses by product.
    pub administered_by_product: BTreeMap<String, u64>,
    /// When a cabinet probe first read at or below the freeze limit (−0.5 °C),
    /// minutes from the start; and how long after that the last freeze-sensitive
    /// dose was given, seconds (`None` if none was given after).
    pub freeze_reached_min: Option<f64>,
    /// The vial monitors at the end: the most heat budget any unit still in store
    /// had used (0 to 1), and the units held at their end point.
    pub heat_budget_used_max: f64,
    pub held_at_heat_end_point: u64,
    pub last_freeze_sensitive_given_after_s: Option<f64>,
    /// The clinic's mistakes the workstation did not shrug off: a retry that started
    /// a second dispense, a double tap answered two ways, a wrong or late validation
    /// that was taken (see [`crate::clinic`]).
    pub clinic_mistakes_mishandled: Vec<String>,
    /// Where the journal and the simulator's physical record disagree.
    pub unaccounted: Vec<String>,
    /// Motion commands a simulated device had to refuse because an interlock was
    /// open: the controller must never send one (H-05).
    pub motions_into_open_interlocks: u64,
    /// Motions other than the crew's own jogs that started while a maintenance crew
    /// was at work (the simulated machine records each): there must be none.
    pub motions_during_maintenance: Vec<String>,
    /// Motions of a dispense's carrier the machine started while the dispense's
    /// last intent in the journal was not that motion (a pick, a run on the belt, or
    /// settling the unit): every motion's intent must come first.
    pub motions_without_intent: Vec<String>,
    /// Chunks of bytes the line noise garbled on the field lines (over the wire only).
    pub garbled_frames: u64,
    /// What controller restarts cost.
    pub restarts: RestartFigures,
    /// SHA-256 of the run's event log (see [`crate::digest`]): the same scenario and
    /// seed give the same digest.
    pub digest: String,
    /// Lines in the event log.
    pub events: usize,
    /// The event log itself (written beside the report, not into it).
    #[serde(skip)]
    pub event_log: Vec<String>,
}

/// What controller restarts cost: recovery resumes every dispense whose safety it
/// can establish again and ends the rest (H-16).
#[derive(Debug, Clone, Default, Serialize)]
pub struct RestartFigures {
    pub restarts: usize,
    /// Virtual seconds from starting each new controller to its taking orders.
    pub restart_to_serving_s: Vec<f64>,
    /// Dispenses recovery resumed, and those it ended.
    pub dispenses_resumed: u64,
    pub dispenses_ended: u64,
    /// Units recovery put on hold (binned, lost, or taken from a tray and never
    /// confirmed), and stray carriers it binned.
    pub units_quarantined: u64,
    pub strays_binned: u64,
}

/// Each given patient's wait from arrival to their first dose, seconds.
fn patient_waits(raw: &Raw) -> Vec<f64> {
    let mut first_dose: BTreeMap<usize, chrono::DateTime<chrono::Utc>> = BTreeMap::new();
    for (id, at) in &raw.given {
        if let Some(ordered) = raw.ordered.get(id) {
            let earliest = first_dose.entry(ordered.patient).or_insert(*at);
            *earliest = (*earliest).min(*at);
        }
    }
    raw.visits
        .iter()
        .filter_map(|v| {
            let arrived = raw.opened_at + chrono::Duration::from_std(v.at).ok()?;
            first_dose.get(&v.number).map(|given| (*given - arrived).num_milliseconds() as f64 / 1000.0)
        })
        .collect()
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Percentiles {
    pub n: usize,
    pub p50: f64,
    pub p95: f64,
    pub max: f64,
    /// Every value, for the histogram.
    pub values: Vec<f64>,
}

impl Percentiles {
    pub fn of(mut values: Vec<f64>) -> Self {
        values.sort_by(f64::total_cmp);
        let at = |q: f64| if values.is_empty() { 0.0 } else { values[((values.len() - 1) as f64 * q).round() as usize] };
        Self { n: values.len(), p50: at(0.5), p95: at(0.95), max: values.last().copied().unwrap_or(0.0), values }
    }
}

/// Draws the figures and the accounting from a finished run.
pub fn metrics(raw: &Raw, duration_h: f64) -> anyhow::Result<Metrics> {
    let count = |stage: Stage| raw.finals.iter().filter(|d| d.stage == stage).count() as u64;
    let mut rejected_by = BTreeMap::new();
    for d in raw.finals.iter().filter(|d| d.stage == Stage::Rejected) {
        let mut ids: Vec<&str> = d.violations.iter().map(|v| v.id.as_str()).collect();
        ids.dedup();
        for id in ids {
            *rejected_by.entry(id.to_owned()).or_default() += 1;
        }
    }
    let to_booth = raw.finals.iter().filter_map(|d| d.at_booth_at.map(|t| (t - d.created_at).num_milliseconds() as f64 / 1000.0)).collect();
    let administered = count(Stage::Administered);
    let journal = raw.assembled.dispatcher.journal();
    let mut alarms: Vec<String> = journal.alarms_since(raw.start)?.into_iter().map(|a| a.0).collect();
    alarms.sort();
    alarms.dedup();
    let mut faults: Vec<String> = journal
        .entries_of_kind(controller::ops::faultboard::JOURNAL_KIND, raw.start)?
        .into_iter()
        .filter_map(|e| serde_json::from_str::<controller::ops::faultboard::ActiveFault>(&e.detail).ok())
        .map(|f| f.code)
        .collect();
    faults.sort();
    faults.dedup();
    let virtual_hours = (raw.end - raw.start).num_milliseconds() as f64 / 3_600_000.0;
    // Read once: the units left in store, and when the cabinet first froze.
    let in_store = journal.all_in_store()?;
    let froze = freeze_reached(raw)?;
    let events = crate::digest::event_log(journal, raw.start, raw.end)?;
    let patients_by_outcome = crate::run::PatientOutcome::ALL
        .iter()
        .map(|o| (o.name().to_owned(), raw.patients.iter().filter(|p| *p == o).count() as u64))
        .collect();
    Ok(Metrics {
        patients: raw.visits.len(),
        patients_by_outcome,
        orders: raw.finals.len(),
        administered,
        rejected: count(Stage::Rejected),
        failed: count(Stage::Failed),
        cancelled: count(Stage::Cancelled),
        rejected_by,
        order_to_booth_s: Percentiles::of(to_booth),
        patient_wait_s: Percentiles::of(patient_waits(raw)),
        throughput_per_hour: throughput(raw, duration_h),
        virtual_hours,
        wall_s: raw.wall.as_secs_f64(),
        speedup: virtual_hours * 3600.0 / raw.wall.as_secs_f64().max(1e-9),
        cold_chain_alarms: alarms,
        fault_codes: faults,
        final_state: raw.assembled.dispatcher.workstation_state().name().to_owned(),
        wrong_units_delivered: wrong_units(raw)?,
        inadmissible_in_trays: inadmissible_in_trays(raw),
        administered_by_lot: raw.finals.iter().filter(|d| d.stage == Stage::Administered).fold(BTreeMap::new(), |mut lots, d| {
            if let (Some(unit), Some(at)) = (&d.unit, d.finished_at) {
                lots.entry(unit.lot.clone()).or_insert_with(Vec::new).push((at - raw.start).num_milliseconds() as f64 / 60_000.0);
            }
            lots
        }),
        administered_by_product: raw.finals.iter().filter(|d| d.stage == Stage::Administered).fold(BTreeMap::new(), |mut products, d| {
            *products.entry(d.order.product_id.clone()).or_default() += 1;
            products
        }),
        heat_budget_used_max: in_store.iter().map(|u| u.heat_consumed).fold(0.0, f64::max),
        held_at_heat_end_point: in_store.iter().filter(|u| u.heat_consumed >= controller::rules::inventory::HEAT_END_POINT).count() as u64,
        freeze_reached_min: froze.map(|at| (at - raw.start).num_milliseconds() as f64 / 60_000.0),
        last_freeze_sensitive_given_after_s: froze.and_then(|at| last_freeze_sensitive_given_after(raw, at)),
        unaccounted: unaccounted(raw)?,
        clinic_mistakes_mishandled: raw.mishandled.clone(),
        motions_into_open_interlocks: raw.sim.motions_refused_for_interlock(),
        motions_during_maintenance: raw.sim.motions_during_maintenance(),
        motions_without_intent: motions_without_intent(raw)?,
        garbled_frames: raw.garbled_frames,
        restarts: restart_figures(raw)?,
        digest: crate::digest::digest(&events),
        events: events.len(),
        event_log: events,
    })
}

/// What the restarts cost, from the journal's recovery lines and holds.
fn restart_figures(raw: &Raw) -> anyhow::Result<RestartFigures> {
    let journal = raw.assembled.dispatcher.journal();
    let recovery = journal.entries_of_kind(controller::journal::StepKind::Recovery, raw.start)?;
    let lines = |step: &str| recovery.iter().filter(|e| e.step == step).count() as u64;
    let mut quarantined: Vec<String> = journal
        .entries_of_kind(controller::journal::StepKind::Hold, raw.start)?
        .into_iter()
        .filter(|e| e.detail.ends_with("(by recovery)"))
        .filter_map(|e| e.unit_code)
        .collect();
    quarantined.sort();
    quarantined.dedup();
    Ok(RestartFigures {
        restarts: raw.restart_to_serving_s.len(),
        restart_to_serving_s: raw.restart_to_serving_s.clone(),
        dispenses_resumed: lines("resumed"),
        dispenses_ended: lines("settled"),
        units_quarantined: quarantined.len() as u64,
        strays_binned: lines("stray"),
    })
}

/// The freeze limit of the cold-chain rules the scenarios run under (the default).
fn freeze_limit() -> f64 {
    controller::coldchain::rules::ColdChainRules::default().freeze_celsius
}

/// When a cabinet probe first read at or below the freeze limit.
fn freeze_reached(raw: &Raw) -> anyhow::Result<Option<chrono::DateTime<chrono::Utc>>> {
    let readings = raw.assembled.dispatcher.journal().readings_between(raw.start, raw.end)?;
    Ok(readings.into_iter().find(|(_, probe, c)| probe.starts_with("cabinet") && c.is_some_and(|c| c <= freeze_limit())).map(|(at, _, _)| at))
}

/// Seconds from the cabinet first reaching the freeze limit to the last
/// freeze-sensitive dose given after it.
fn last_freeze_sensitive_given_after(raw: &Raw, froze: chrono::DateTime<chrono::Utc>) -> Option<f64> {
    let catalog = raw.assembled.dispatcher.catalog();
    let sensitive = |product: &str| catalog.product(product).is_some_and(|p| p.freeze_sensitive);
    raw.finals
        .iter()
        .filter(|d| d.stage == Stage::Administered && sensitive(&d.order.product_id))
        .filter_map(|d| d.finished_at)
        .filter(|at| *at > froze)
        .map(|at| (at - froze).num_milliseconds() as f64 / 1000.0)
        .fold(None, |last: Option<f64>, s| Some(last.map_or(s, |l| l.max(s))))
}

/// Doses per hour from the first dose to the end of the arrivals (intervals between
/// doses in that window, over its length).
fn throughput(raw: &Raw, duration_h: f64) -> f64 {
    let arrivals_end = raw.opened_at + chrono::Duration::milliseconds((duration_h * 3_600_000.0) as i64);
    let mut given: Vec<_> = raw.finals.iter().filter(|d| d.stage == Stage::Administered).filter_map(|d| d.finished_at).filter(|t| *t <= arrivals_end).collect();
    given.sort();
    match given.first() {
        Some(first) if given.len() > 1 && arrivals_end > *first => (given.len() - 1) as f64 * 3_600_000.0 / (arrivals_end - *first).num_milliseconds() as f64,
        _ => 0.0,
    }
}

/// Every unit the simulator put in a tray is judged against the dispense that
/// carried it there (its carrier is the dispense's number): that dispense must be
/// for that booth and the ordered product, must have reserved exactly that unit, and
/// its verification must have passed every check (a unit is refused at the booth
/// only after that). A label that cannot be read, or a carrier no dispense owns, is
/// wrong: nothing is left unjudged (H-10).
fn wrong_units(raw: &Raw) -> anyhow::Result<Vec<String>> {
    let journal = raw.assembled.dispatcher.journal();
    let catalog = raw.assembled.dispatcher.catalog();
    let mut wrong = Vec::new();
    for delivery in raw.sim.deliveries() {
        let what = format!("{} in {} (by {})", delivery.label, delivery.booth, delivery.carrier);
        let Ok(code) = hal::codes::UnitCode::parse(&delivery.label) else {
            wrong.push(format!("{what}: a label no scan could have read"));
            continue;
        };
        let Some(dispense) = controller::dispense::carriers::dispense_of(delivery.carrier).map(|id| journal.dispense(&id)).transpose()?.flatten() else {
            wrong.push(format!("{what}: carried by no dispense"));
            continue;
        };
        let problem = if dispense.order.booth != delivery.booth {
            Some(format!("{} was for {}", dispense.id, dispense.order.booth))
        } else if dispense.unit.as_ref().is_none_or(|u| u.code != code.canonical()) {
            Some(format!("{} reserved {}", dispense.id, dispense.unit.as_ref().map_or("no unit", |u| u.code.as_str())))
        } else if !catalog.product_of(&code).is_some_and(|p| p.id == dispense.order.product_id) {
            Some(format!("{} ordered {}", dispense.id, dispense.order.product_id))
        } else if !passed_verification(raw, &dispense.id) {
            Some(format!("{} never passed verification", dispense.id))
        } else {
            None
        };
        if let Some(problem) = problem {
            wrong.push(format!("{what}: {problem}"));
        }
    }
    Ok(wrong)
}

/// How long a drop into a tray takes at most, seconds: a recall or midnight that
/// comes while a unit is already falling cannot stop it.
const DROP_S: i64 = 5;

/// What the controller cannot see sooner than its probes: a freeze is judged from
/// the cabinet's true temperature only once it lasted this much longer than the
/// rule's time (a sample period or two, and the minutes the record rounds to).
const FREEZE_MARGIN_S: i64 = 180;

/// The ground-truth oracle (see [`Metrics::inadmissible_in_trays`]).
fn inadmissible_in_trays(raw: &Raw) -> Vec<String> {
    let catalog = raw.assembled.dispatcher.catalog();
    let zone = raw.assembled.config.site.time_zone;
    let mut seen = std::collections::BTreeSet::new();
    let mut wrong = Vec::new();
    for delivery in raw.sim.deliveries() {
        let at = raw.machine_time(delivery.at_s);
        let what = format!("{} in {} at {}", delivery.label, delivery.booth, at.with_timezone(&zone).format("%Y-%m-%d %H:%M:%S %Z"));
        let Ok(code) = hal::codes::UnitCode::parse(&delivery.label) else {
            wrong.push(format!("{what}: a label no scan could read"));
            continue;
        };
        let order = controller::dispense::carriers::dispense_of(delivery.carrier).and_then(|id| raw.ordered.get(&id).map(|o| (id, o)));
        let Some((id, crate::clinic::Ordered { product, booth, born, .. })) = order else {
            wrong.push(format!("{what}: brought for no order the clinic placed"));
            continue;
        };
        let settled = at - chrono::Duration::seconds(DROP_S);
        let (lot, expiry) = match &code {
            hal::codes::UnitCode::Gs1(gs1) => (gs1.lot.clone(), gs1.expiry),
            hal::codes::UnitCode::Cn20(_) => (None, None),
        };
        let problem = if *booth != delivery.booth.0 {
            Some(format!("{id} was ordered for booth {booth}"))
        } else if !catalog.product_of(&code).is_some_and(|p| p.id == *product) {
            Some(format!("{id} ordered {product}"))
        } else if let Some(not_for) = catalog.product(product).and_then(|p| age_outside(p, *born, settled.with_timezone(&zone).date_naive())) {
            Some(format!("{id}: {not_for}"))
        } else if expiry.is_some_and(|e| e < settled.with_timezone(&zone).date_naive()) {
            Some(format!("expired on the site's calendar ({})", expiry.map(|e| e.to_string()).unwrap_or_default()))
        } else if let Some((_, recalled)) = raw.recalls.iter().find(|(l, t)| lot.as_ref() == Some(l) && *t < settled) {
            Some(format!("its lot was recalled at {}", recalled.with_timezone(&zone).format("%H:%M:%S")))
        } else if !seen.insert(code.canonical()) {
            Some("a code already delivered once (a copy)".to_owned())
        } else if delivery.frames == 0 {
            Some("the camera never saw it on its way from the store (never verified)".to_owned())
        } else {
            catalog.product_of(&code).and_then(|p| lived_through(raw, &delivery, raw.given.get(&id), p))
        };
        if let Some(problem) = problem {
            wrong.push(format!("{what}: {problem}"));
        }
    }
    wrong
}

/// Why a patient born on `born` may not have `product` on the site's date `on`
/// (the catalog's ages, judged here from the clinic's record, not the controller's).
fn age_outside(product: &controller::rules::catalog::Product, born: chrono::NaiveDate, on: chrono::NaiveDate) -> Option<String> {
    let age = (on - born).num_days();
    let too_young = age < i64::from(product.min_age_days);
    let too_old = product.max_age_days.is_some_and(|max| age > i64::from(max));
    let ages = match product.max_age_days {
        Some(max) => format!("{} to {max} days", product.min_age_days),
        None => format!("from {} days", product.min_age_days),
    };
    (too_young || too_old).then(|| format!("a patient {age} days old; {} is for ages {ages}", product.id))
}

/// What a delivered unit lived through that makes it unfit, by the simulator's
/// ground truth: too long out of the store by the drop into the tray or by the jab
/// (`given`, when the clinic's administration was taken), or frozen in the cabinet
/// before it left (a freeze-sensitive product, at or below the rule's limit for
/// longer than the rule's time).
fn lived_through(raw: &Raw, delivery: &simulator::Delivery, given: Option<&chrono::DateTime<chrono::Utc>>, product: &controller::rules::catalog::Product) -> Option<String> {
    let Some(left_s) = delivery.left_store_s else { return Some("no record of it leaving the store".to_owned()) };
    let left = raw.machine_time(left_s);
    let limit = chrono::Duration::minutes(i64::from(product.out_of_fridge_limit_min)) + chrono::Duration::seconds(DROP_S);
    let dropped = raw.machine_time(delivery.at_s);
    if dropped - left > limit {
        return Some(format!("dropped {} min after it left the store ({} allows {})", (dropped - left).num_minutes(), product.id, product.out_of_fridge_limit_min));
    }
    if let Some(given) = given.filter(|g| **g - left > limit) {
        return Some(format!("given {} min after it left the store ({} allows {})", (*given - left).num_minutes(), product.id, product.out_of_fridge_limit_min));
    }
    if product.freeze_sensitive {
        let rules = product.cold_chain.as_ref().map_or_else(|| raw.assembled.config.coldchain.rules.clone(), |own| raw.assembled.config.coldchain.rules.tightened(own));
        let frozen_min = raw.sim.minutes_at_or_below(rules.freeze_celsius, 0, (left_s / 60.0) as usize);
        if frozen_min as i64 * 60 >= rules.freeze_s + FREEZE_MARGIN_S {
            return Some(format!("frozen: {frozen_min} min at or below {} °C in the cabinet before it left ({} is freeze-sensitive)", rules.freeze_celsius, product.id));
        }
    }
    None
}

/// Every carrier motion the machine started (its own record, with the instant),
/// against the journal of the dispense that owns the carrier: the dispense's last
/// intent at that instant must be the motion — a pick (the pick and the hatch's
/// release), a run on the belt, or settling the unit (carrying it to the bin) — or
/// recovery, which moves what it resumes. A carrier no dispense owns (a stray) is
/// recovery's or a crew's, and not judged here.
fn motions_without_intent(raw: &Raw) -> anyhow::Result<Vec<String>> {
    use controller::journal::{Intent, StepKind};
    let journal = raw.assembled.dispatcher.journal();
    let mut entries: BTreeMap<String, Vec<controller::journal::Entry>> = BTreeMap::new();
    let mut wrong = Vec::new();
    for motion in raw.sim.carrier_motions() {
        let Some(id) = controller::dispense::carriers::dispense_of(motion.carrier) else { continue };
        if !entries.contains_key(&id) {
            entries.insert(id.clone(), journal.entries(&id)?);
        }
        // A millisecond's grace: the journal stamps to the millisecond.
        let at = raw.machine_time(motion.at_s) + chrono::Duration::milliseconds(1);
        let last = entries[&id].iter().filter(|e| e.at <= at && matches!(e.kind, StepKind::Intent | StepKind::Recovery)).last();
        let intended = last.is_some_and(|e| e.kind == StepKind::Recovery || matches!(e.intent(), Some(Intent::Pick { .. } | Intent::Convey { .. } | Intent::Finish { .. })));
        if !intended {
            let said = last.map_or_else(|| "nothing".to_owned(), |e| format!("{} ({})", e.step, e.at.format("%H:%M:%S%.3f")));
            wrong.push(format!("{} of {} ({id}) at {:.3} s: its last intent was {said}", motion.what, motion.carrier, motion.at_s));
        }
    }
    Ok(wrong)
}

/// Whether the journal holds the dispense's verification with every check passed.
fn passed_verification(raw: &Raw, dispense_id: &str) -> bool {
    raw.assembled.dispatcher.journal().entries(dispense_id).is_ok_and(|entries| entries.iter().any(|e| e.outcome() == Some(&Outcome::Passed)))
}

/// The journal's stock states against the physical record: what is in the slots,
/// the reject bin and the trays.
fn unaccounted(raw: &Raw) -> anyhow::Result<Vec<String>> {
    let sim = &raw.sim;
    let counts: BTreeMap<String, i64> = raw.assembled.dispatcher.journal().stock_counts()?.into_iter().collect();
    let journal = |state: &str| counts.get(state).copied().unwrap_or(0) as usize;
    let mut problems = Vec::new();
    let mut compare = |what: &str, journal_says: usize, physically: usize| {
        if journal_says != physically {
            problems.push(format!("{what}: journal {journal_says}, physically {physically}"));
        }
    };
    compare("in the store", journal("in_store"), sim.occupied_slots());
    let returned = returned(raw, sim)?;
    compare("delivered to a tray (given or returned)", journal("administered") + journal("delivered") + returned, sim.deliveries().len());
    compare("in the reject bin", journal("rejected").saturating_sub(returned), sim.reject_bin().len() + sim.dropped().len());
    if journal("picked") > 0 {
        problems.push(format!("{} unit(s) still marked picked at the end", journal("picked")));
    }
    Ok(problems)
}

/// Units that reached a tray and that the journal has as rejected: refused at the
/// booth, or quarantined there by recovery after a restart; the nurse returns them.
fn returned(raw: &Raw, sim: &simulator::SimWorkstation) -> anyhow::Result<usize> {
    let journal = raw.assembled.dispatcher.journal();
    let mut returned = 0;
    for delivery in sim.deliveries() {
        let Ok(code) = hal::codes::UnitCode::parse(&delivery.label) else { continue };
        if journal.stock_record(&code.canonical())?.is_some_and(|r| r.state == controller::rules::inventory::UnitState::Rejected) {
            returned += 1;
        }
    }
    Ok(returned)
}
