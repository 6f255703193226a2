//! The simulated clinic: for each patient it places the order and plays the
//! guardian and the nurse, with the mistakes a real clinic makes (`[clinic.mistakes]`),
//! and writes down every mistake the workstation did not shrug off — a retry that
//! started a second dispense, a double tap answered two ways, a wrong or late
//! validation that was taken.

use crate::format::{Behaviour, Mistakes};
use controller::dispatch::{DispatchError, Dispatcher, Watch};
use controller::dispense::status::{DispenseStatus, Stage};
use controller::rules::order::PatientOrder;
use hal::BoothId;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One patient as the clinic will send them.
#[derive(Debug, Clone)]
pub struct Visit {
    pub number: usize,
    pub at: Duration,
    pub product: String,
    pub age_days: u32,
    pub booth: u8,
    pub behaviour: Behaviour,
}

/// What the clinic ordered for a dispense: the oracle's record of the patient's side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ordered {
    pub product: String,
    pub booth: u8,
    pub born: chrono::NaiveDate,
    /// The patient (their visit's number): a patient's wait ends at their first dose.
    pub patient: usize,
}

/// The controller the clinic talks to now; a restart puts a new one here.
pub type Current = tokio::sync::watch::Receiver<Dispatcher>;

/// How often the clinic orders again for a patient whose unit was rejected.
const REORDERS: usize = 2;

/// How long the clinic waits for a controller that is down before it gives up an order.
pub(crate) const CONTROLLER_DOWN_WAIT: Duration = Duration::from_secs(300);

/// How long after the validation timeout a late guardian validates.
const LATE_BY: Duration = Duration::from_secs(30);

/// What every patient's visit shares: the clinic's habits and its two records.
#[derive(Debug, Clone)]
pub struct Desk {
    pub habits: Arc<crate::format::Clinic>,
    /// The workstation's validation timeout (a late validation comes after it).
    pub validation_timeout: Duration,
    pub sim: simulator::SimWorkstation,
    pub seed: u64,
    /// The clinic's record of what it ordered, by dispense id. The oracle judges
    /// the trays against this, not against the journal.
    pub ordered: Arc<Mutex<BTreeMap<String, Ordered>>>,
    /// The doses given: dispense id → when the workstation took the administration.
    pub given: Arc<Mutex<BTreeMap<String, chrono::DateTime<chrono::Utc>>>>,
    /// Mistakes the workstation did not shrug off, each with what happened.
    pub mishandled: Arc<Mutex<Vec<String>>>,
    /// When a dispense last ended (the run's measure of progress).
    pub last_ended: Arc<Mutex<tokio::time::Instant>>,
    /// Each booth's call: with [`crate::format::Ordering::WhenCalled`] a patient
    /// holds their booth's permit from being called to their dose (index booth − 1).
    pub booths: Arc<Vec<Arc<tokio::sync::Semaphore>>>,
}

impl Desk {
    fn mishandled(&self, what: String) {
        tracing::error!("clinic mistake mishandled: {what}");
        self.mishandled.lock().unwrap_or_else(|p| p.into_inner()).push(what);
    }
}

/// The mistakes made on one order, drawn from their shares.
#[derive(Debug, Clone, Copy, Default)]
struct Slips {
    retry: bool,
    double_tap: bool,
    booth_scan: bool,
    wrong_scan: bool,
    late: bool,
    unconfirmed: bool,
}

impl Slips {
    /// Draws every mistake (always six draws, so one share does not shift the others).
    fn roll(m: &Mistakes, rng: &mut SmallRng) -> Self {
        let mut p = |share: f64| rng.random::<f64>() < share;
        Self {
            retry: p(m.retries),
            double_tap: p(m.double_taps),
            booth_scan: p(m.booth_scans),
            wrong_scan: p(m.wrong_scans),
            late: p(m.late_validations),
            unconfirmed: p(m.unconfirmed_administrations),
        }
    }
}

/// Whether recovery, after a restart, ended the dispense (its journal says so).
fn ended_by_recovery(current: &Current, dispense_id: &str) -> bool {
    let dispatcher = current.borrow().clone();
    dispatcher.journal().entries(dispense_id).is_ok_and(|entries| entries.iter().any(|e| e.kind == controller::journal::StepKind::Recovery))
}

/// One patient: order, then guardian and nurse as the behaviour says. When the
/// workstation rejects the unit itself (unreadable, handling fault, a label that
/// does not match, a hold that came while it waited at the booth), or recovery
/// ended the dispense after a restart, the clinic orders again, as the demo's
/// clinic does. Every dispense's final status, and whether the workstation
/// refused an order.
pub async fn visit(current: &mut Current, v: &Visit, desk: &Desk) -> (Vec<DispenseStatus>, bool) {
    let mut rng = SmallRng::seed_from_u64(desk.seed ^ (v.number as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    // The mistakes from a stream of their own: a scenario without them plays as before.
    let mut slips = SmallRng::seed_from_u64(desk.seed ^ 0x736c_6970 ^ (v.number as u64).wrapping_mul(0xc2b2_ae3d_27d4_eb4f));
    // Ordered when called: the patient waits until their booth is free.
    let _called = match desk.habits.ordering {
        crate::format::Ordering::WhenCalled => match desk.booths.get(usize::from(v.booth).saturating_sub(1)) {
            Some(booth) => booth.clone().acquire_owned().await.ok(),
            None => None,
        },
        crate::format::Ordering::CheckIn => None,
    };
    let mut finals = Vec::new();
    for attempt in 0..=REORDERS {
        let slips = Slips::roll(&desk.habits.mistakes, &mut slips);
        let Some(status) = dispense(current, v, attempt, desk, slips, &mut rng).await else { return (finals, true) };
        *desk.last_ended.lock().unwrap_or_else(|p| p.into_inner()) = tokio::time::Instant::now();
        // The unit's fault, not the patient's: a unit was taken and the guardian did
        // not refuse it; or the controller went down and recovery ended the dispense.
        let unit_fault = status.stage == Stage::Rejected && status.unit.is_some() && status.violations.iter().all(|v| v.id != controller::rules::verify::ViolationId::ValidationFailed);
        let restarted = status.stage == Stage::Failed && ended_by_recovery(current, &status.id);
        finals.push(status);
        if !(unit_fault || restarted) {
            break;
        }
    }
    (finals, false)
}

/// A label that is not the delivered unit's: the unit in another booth's tray, or
/// else the delivered code with another serial.
fn wrong_label(sim: &simulator::SimWorkstation, booth: BoothId, delivered: &str) -> String {
    let other = (1..=sim.config().booths).map(BoothId).filter(|b| *b != booth).find_map(|b| sim.last_delivered(b)).filter(|l| l != delivered);
    other.unwrap_or_else(|| format!("{delivered}9"))
}

/// One order for the patient, followed to its end (across a controller restart).
async fn dispense(current: &mut Current, v: &Visit, attempt: usize, desk: &Desk, slips: Slips, rng: &mut SmallRng) -> Option<DispenseStatus> {
    let clinic = &desk.habits;
    let d = current.borrow().clone();
    let born = d.journal().clock().today() - chrono::Duration::days(i64::from(v.age_days));
    let order = PatientOrder::new(&format!("P{:05}", v.number), &format!("Patient {}", v.number), &v.product, BoothId(v.booth), 1, born);
    let request_id = format!("scenario-{}-{attempt}", v.number);
    let started = loop {
        let d = current.borrow_and_update().clone();
        match d.start(&request_id, order.clone()) {
            Ok(s) => break s,
            // The controller is down: the clinic waits for it to come back, a while.
            Err(DispatchError::NotReady(_)) if matches!(tokio::time::timeout(CONTROLLER_DOWN_WAIT, current.changed()).await, Ok(Ok(()))) => {}
            Err(e) => {
                tracing::warn!(patient = v.number, "order refused: {e}");
                return None;
            }
        }
    };
    let id = started.dispense_id;
    desk.ordered.lock().unwrap_or_else(|p| p.into_inner()).insert(id.clone(), Ordered { product: v.product.clone(), booth: v.booth, born, patient: v.number });
    if slips.retry {
        // The clinic's call timed out on its side: it sends the same order again.
        match current.borrow().clone().start(&request_id, order.clone()) {
            Ok(again) if again.dispense_id == id && again.duplicate => {}
            Ok(again) => desk.mishandled(format!("request {request_id}: its retry started {} beside {id}", again.dispense_id)),
            Err(DispatchError::NotReady(_)) => {}
            Err(e) => desk.mishandled(format!("request {request_id}: the retry of the same order was refused: {e}")),
        }
    }
    let mut between = |range: [f64; 2]| Duration::from_secs_f64(range[0] + rng.random::<f64>() * (range[1] - range[0]));
    if v.behaviour == Behaviour::Cancels {
        tokio::time::sleep(Duration::from_secs_f64(clinic.cancel_after_s)).await;
        let _ = d.cancel(&id, "the patient left before the picker took the unit", "scenario clinic").await;
    }
    let mut validated = false;
    let mut administered = false;
    // A validation that should have been refused and was taken (a wrong scan, a late word).
    let mut wrongly_taken: Option<String> = None;
    let mut talking_to = d.clone();
    loop {
        let d = current.borrow_and_update().clone();
        if !std::ptr::eq(d.journal(), talking_to.journal()) {
            // A new controller resumed the dispense: what it waits for is asked again.
            (validated, administered, wrongly_taken, talking_to) = (false, false, None, d.clone());
        }
        let status = match d.watch(&id) {
            Ok(Watch::Finished(s)) if s.stage.is_final() => return Some(s),
            // Not live and not finished: the controller is down; wait for the next one.
            Ok(Watch::Finished(_)) | Err(_) => {
                if current.changed().await.is_err() {
                    return d.get(&id).ok();
                }
                continue;
            }
            Ok(Watch::Live(mut rx)) => {
                let s = rx.borrow_and_update().clone();
                if !s.stage.is_final() && !needs_clinic(&s, validated, administered) {
                    let _ = rx.changed().await;
                }
                rx.borrow().clone()
            }
        };
        match status.stage {
            s if s.is_final() => return Some(status),
            Stage::AwaitingValidation if !validated => {
                validated = true;
                // A no-show or a refusing guardian never validates: the unit times out.
                if v.behaviour == Behaviour::Normal {
                    tokio::time::sleep(if slips.late { desk.validation_timeout + LATE_BY } else { between(clinic.validation_s) }).await;
                    // The nurse scans the unit she took from the tray when the workstation
                    // asks (or out of habit) — or, by mistake, another one.
                    let delivered = desk.sim.last_delivered(BoothId(v.booth));
                    let scan = match delivered {
                        Some(label) if slips.wrong_scan => Some(wrong_label(&desk.sim, BoothId(v.booth), &label)),
                        delivered if status.booth_scan_required || slips.booth_scan => delivered,
                        _ => None,
                    };
                    let answer = tap(desk, &id, "validation", slips.double_tap, || d.confirm_validation(&id, scan.as_deref()));
                    if answer.is_ok() {
                        wrongly_taken = match (slips.wrong_scan, slips.late) {
                            (true, _) => Some(format!("a validation with a booth scan of {} (not the delivered unit)", scan.unwrap_or_default())),
                            (_, true) => Some("a validation sent after the validation timeout".to_owned()),
                            _ => None,
                        };
                    }
                }
            }
            Stage::AwaitingAdministration if !administered => {
                administered = true;
                if let Some(word) = wrongly_taken.take() {
                    desk.mishandled(format!("{id}: {word} was taken: the workstation asked for the administration"));
                    // The nurse does not give a unit the workstation should have refused.
                    continue;
                }
                // A nurse who never says: the workstation must end the dispense itself.
                if slips.unconfirmed {
                    continue;
                }
                tokio::time::sleep(between(clinic.administration_s)).await;
                let nurse = format!("N{}", v.booth);
                if tap(desk, &id, "administration", slips.double_tap, || d.confirm_administration(&id, &nurse, None)).is_ok() {
                    desk.given.lock().unwrap_or_else(|p| p.into_inner()).insert(id.clone(), d.now());
                }
            }
            _ => {}
        }
    }
}

/// Sends a confirmation — twice at once when the nurse double-taps, and then both
/// taps must get the same answer — and returns the first tap's answer.
fn tap(desk: &Desk, id: &str, what: &str, twice: bool, send: impl Fn() -> Result<(), DispatchError>) -> Result<(), DispatchError> {
    let answer = send();
    if twice {
        let again = send();
        if again.is_ok() != answer.is_ok() {
            desk.mishandled(format!("{id}: a double-tapped {what} was answered {answer:?}, then {again:?}"));
        }
    }
    answer
}

/// Whether the clinic has something to do for this status now.
fn needs_clinic(s: &DispenseStatus, validated: bool, administered: bool) -> bool {
    matches!((s.stage, validated, administered), (Stage::AwaitingValidation, false, _) | (Stage::AwaitingAdministration, _, false))
}
