//! The scenario's expectations checked against what the run measured. Always
//! checked: no wrong unit reached a booth (each delivery judged against the
//! dispense that carried it), every unit is where the journal says, no motion was
//! sent into an open interlock, and no patient
//! was refused or left waiting unless the scenario allows a share.

use crate::bound::Bound;
use crate::format::{Expect, Range};
use crate::measure::Metrics;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    /// What was expected and what was seen.
    pub detail: String,
}

fn check(name: impl Into<String>, passed: bool, detail: String) -> Check {
    Check { name: name.into(), passed, detail }
}

/// A check that passes when nothing was found: what it found is its detail.
fn none_found(name: &str, found: &[String], all_well: &str) -> Check {
    check(name, found.is_empty(), if found.is_empty() { all_well.to_owned() } else { found.join("; ") })
}

fn count(name: &str, range: Option<Range>, seen: u64) -> Option<Check> {
    range.map(|r| check(name, r.contains(seen), format!("expected {}, got {seen}", r.describe())))
}

/// The checks every run must pass whatever the scenario expects: the safety of
/// the patients and the machine (what a sweep reports per point).
pub fn safety_checks(m: &Metrics) -> Vec<Check> {
    vec![
        none_found("no wrong unit delivered", &m.wrong_units_delivered, "every tray held its dispense's verified unit"),
        none_found(
            "no inadmissible unit in a tray (ground truth)",
            &m.inadmissible_in_trays,
            "every unit in a tray was the ordered product, for the patient's age, in date, not recalled, not a copy, photographed on its way, within its time out of the fridge, never frozen",
        ),
        none_found("the clinic's mistakes shrugged off", &m.clinic_mistakes_mishandled, "every retry found its dispense, every double tap one answer, no wrong or late validation taken"),
        none_found("every unit accounted for", &m.unaccounted, "journal and physical record agree"),
        check(
            "no motion into an open interlock",
            m.motions_into_open_interlocks == 0,
            format!("{} motion command(s) the devices refused for an open interlock", m.motions_into_open_interlocks),
        ),
        none_found("every motion intended first", &m.motions_without_intent, "every carrier motion the machine started was its dispense's last intent in the journal"),
        none_found("no motion during someone else's maintenance", &m.motions_during_maintenance, "no motion but the crew's jogs while a crew was at work"),
    ]
}

pub fn checks(expect: &Expect, m: &Metrics, bound: &Bound, recalls: &[(String, f64)]) -> Vec<Check> {
    let mut out = safety_checks(m);
    for (outcome, share) in expect.patients.by_outcome() {
        let n = m.patients_by_outcome.get(outcome).copied().unwrap_or(0);
        let seen = if m.patients == 0 { 0.0 } else { n as f64 / m.patients as f64 };
        out.push(check(
            format!("patients {outcome}"),
            share.contains(seen),
            format!("expected {}, got {:.1} % ({n} of {})", share.describe(), seen * 100.0, m.patients),
        ));
    }
    out.extend(count("administered", expect.administered, m.administered));
    out.extend(count("rejected", expect.rejected, m.rejected));
    out.extend(count("failed", expect.failed, m.failed));
    out.extend(count("cancelled", expect.cancelled, m.cancelled));
    out.extend(count("dispenses ended by restarts", expect.ended_by_restarts, m.restarts.dispenses_ended));
    out.extend(count("units quarantined by restarts", expect.quarantined_by_restarts, m.restarts.units_quarantined));
    for (reason, range) in &expect.rejected_by {
        let seen = m.rejected_by.get(reason).copied().unwrap_or(0);
        out.push(check(format!("rejected for {reason}"), range.contains(seen), format!("expected {}, got {seen}", range.describe())));
    }
    if let Some(min) = expect.throughput_per_hour_min {
        out.push(check("throughput", m.throughput_per_hour >= min, format!("expected at least {min:.1}/h, got {:.1}/h", m.throughput_per_hour)));
    }
    if let Some(min) = expect.bound_fraction_min {
        let fraction = m.throughput_per_hour / bound.per_hour;
        out.push(check(
            "share of the mechanical bound",
            fraction >= min,
            format!("expected at least {:.1} %, got {:.1} % ({:.1}/h of {:.1}/h, bottleneck: {})", min * 100.0, fraction * 100.0, m.throughput_per_hour, bound.per_hour, bound.bottleneck),
        ));
    }
    if let Some(max) = expect.p95_patient_wait_s_max {
        out.push(check("p95 patient wait", m.patient_wait_s.p95 <= max, format!("expected at most {max:.0} s from check-in to dose, got {:.1} s", m.patient_wait_s.p95)));
    }
    if let Some(max) = expect.p95_order_to_booth_s_max {
        out.push(check("p95 order to booth", m.order_to_booth_s.p95 <= max, format!("expected at most {max:.0} s, got {:.1} s", m.order_to_booth_s.p95)));
    }
    for alarm in &expect.alarms {
        out.push(check(format!("alarm {alarm} raised"), m.cold_chain_alarms.contains(alarm), format!("raised: {:?}", m.cold_chain_alarms)));
    }
    for code in &expect.faults {
        out.push(check(format!("fault {code} on the board"), m.fault_codes.contains(code), format!("seen: {:?}", m.fault_codes)));
    }
    for lot in &expect.none_given_from {
        let recalled_at = recalls.iter().find(|(l, _)| l == lot).map(|(_, at)| *at);
        let after: Vec<f64> = m.administered_by_lot.get(lot).map(|ts| ts.iter().copied().filter(|t| recalled_at.is_none_or(|r| *t > r)).collect()).unwrap_or_default();
        let when = recalled_at.map_or_else(|| "never recalled, so at all".to_owned(), |r| format!("after its recall at minute {r:.0}"));
        out.push(check(format!("no unit of lot {lot} given {}", if recalled_at.is_some() { "after its recall" } else { "" }).trim().to_owned(), after.is_empty(), format!("{} given {when}", after.len())));
    }
    if let Some(min) = expect.garbled_frames_min {
        out.push(check("line noise acted", m.garbled_frames >= min, format!("expected at least {min} garbled frames, got {}", m.garbled_frames)));
    }
    for (product, range) in &expect.administered_by_product {
        let seen = m.administered_by_product.get(product).copied().unwrap_or(0);
        out.push(check(format!("{product} administered"), range.contains(seen), format!("expected {}, got {seen}", range.describe())));
    }
    if let Some(max) = expect.freeze_sensitive_given_within_s_max {
        let last = m.last_freeze_sensitive_given_after_s;
        let when = m.freeze_reached_min.map_or_else(|| "the cabinet never reached the freeze limit".to_owned(), |t| format!("the cabinet reached the freeze limit at minute {t:.0}"));
        out.push(check(
            "freeze-sensitive doses stop within the freeze window",
            last.is_none_or(|s| s <= max),
            format!("{when}; last freeze-sensitive dose {} (at most {max:.0} s)", last.map_or_else(|| "none after".to_owned(), |s| format!("{s:.0} s after"))),
        ));
    }
    if let Some(state) = &expect.final_state {
        out.push(check("final state", &m.final_state == state, format!("expected {state}, got {}", m.final_state)));
    }
    out
}
