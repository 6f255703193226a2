//! Orders and the clinic's confirmations: accepting an order (idempotently by
//! request id) and starting its runner, routing validations and administrations
//! to it, cancelling while queued, and answering questions about dispenses.

use crate::dispatch::dispatcher::Dispatcher;
use crate::dispatch::error::DispatchError;
use crate::dispense::cancel::CancelWindow;
use crate::dispense::claim::Claim;
use crate::dispense::confirmation::Confirmation;
use crate::dispense::core::{Live, lock};
use crate::dispense::runner::{DispenseRun, RESCAN_NOTICE, hold_on, unusable_in_tray};
use crate::dispense::flow::Resume;
use crate::dispense::status::{DispenseStatus, Stage};
use crate::dispense::workstation::WsEvent;
use crate::journal::Created;
use crate::rules::order::PatientOrder;
use hal::codes::UnitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// What `start` returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    pub dispense_id: String,
    pub duplicate: bool,
}

/// A watch on a dispense.
#[derive(Debug)]
pub enum Watch {
    Live(watch::Receiver<DispenseStatus>),
    Finished(DispenseStatus),
}

/// The longest batch number a GS1 code carries (AI 10), bytes.
const MAX_LOT_BYTES: usize = 20;

impl Dispatcher {
    /// Accepts an order. The same request id with the same order returns the same
    /// dispense and starts nothing.
    pub fn start(&self, request_id: &str, order: PatientOrder) -> Result<Started, DispatchError> {
        self.validate(request_id, &order)?;
        self.refuse_if_stopped()?;
        if self.is_stopping() {
            return Err(DispatchError::NotReady("stopping"));
        }
        let state = self.workstation_state();
        let accepts = self.core.accepts_orders();
        let status = DispenseStatus {
            id: String::new(),
            request_id: request_id.to_owned(),
            order,
            stage: Stage::Queued,
            unit: None,
            violations: Vec::new(),
            detail: String::new(),
            created_at: self.now(),
            at_booth_at: None,
            finished_at: None,
            administered_by: None,
            administered_site: None,
            booth_scan_required: false,
        };
        // A retry of an accepted order must find its dispense even while the
        // workstation is paused or faulted, so readiness is checked for new ids only.
        let in_flight = || lock(&self.core.live).values().filter(|l| !l.status.borrow().stage.is_final()).count();
        if !accepts || in_flight() >= self.core.settings.max_in_flight {
            if self.core.journal.find_request(request_id)?.is_none() {
                if !accepts {
                    return Err(DispatchError::NotReady(state.name()));
                }
                // Bounded: a flood of orders must not grow memory and the journal
                // without end; the caller is told when to try again.
                return Err(DispatchError::Busy { in_flight: in_flight() });
            }
        }
        // create_dispense is one transaction: concurrent retries find one dispense.
        let created = match self.core.journal.create_dispense(request_id, &status) {
            // It died as the order came (a simulated crash point): nothing was kept.
            Err(_) if self.core.journal.crashed() => return Err(DispatchError::NotReady("stopped")),
            created => created?,
        };
        match created {
            Created::Existing(id) => Ok(Started { dispense_id: id, duplicate: true }),
            Created::Conflict(id) => Err(DispatchError::RequestIdReused { request_id: request_id.to_owned(), dispense_id: id }),
            Created::New(id) => {
                let status = DispenseStatus { id: id.clone(), ..status };
                // Logs name the patient by pseudonym only (api::privacy).
                let o = &status.order;
                tracing::info!(dispense = %id, patient_ref = %self.core.journal.patient_ref(&o.patient_id), product = %o.product_id, booth = o.booth.0, "order accepted");
                let run = self.go_live(status, false);
                self.core.tasks.spawn(run.run());
                Ok(Started { dispense_id: id, duplicate: false })
            }
        }
    }

    /// Registers a dispense as live (its status watchable, confirmations routed to
    /// it) and returns its runner, not yet started.
    fn go_live(&self, status: DispenseStatus, taken_while_down: bool) -> DispenseRun {
        let (status_tx, _) = watch::channel(status.clone());
        let (confirm_tx, confirm_rx) = mpsc::unbounded_channel();
        let cancel = Arc::new(CancelWindow::default());
        let live = Live { status: status_tx.clone(), confirmations: confirm_tx, cancel: cancel.clone(), validation_sent: AtomicBool::new(false), administration_sent: AtomicBool::new(false), taken_while_down };
        lock(&self.core.live).insert(status.id.clone(), live);
        self.core.workstation_event(WsEvent::DispenseStarted);
        self.core.dispense_changed();
        DispenseRun::new(self.core.clone(), status, status_tx, confirm_rx, cancel)
    }

    /// Starts again the dispenses recovery resumed (H-16), oldest first, under the
    /// same ids. Each claims the station locks its unit's place holds before any
    /// runner starts, so no other dispense can take its gate, tray or scan station;
    /// a lock another resumed dispense already holds (no consistent journal makes
    /// two units claim one place) is waited for, never done without.
    pub fn resume(&self, resumed: Vec<(DispenseStatus, Resume)>) {
        let mut runs = Vec::new();
        for (status, at) in resumed {
            let booth = status.order.booth;
            let take = |lock: &Arc<tokio::sync::Mutex<()>>| Some(Claim::of(lock));
            let gate = || self.core.locks.gates.get(&booth).and_then(take);
            let guards = match at {
                Resume::Queued => [None, None, None, None],
                // Its unit fills the hatch: no pick until it is released onto the belt.
                Resume::FromHatch => [gate(), None, None, take(&self.core.locks.picker)],
                Resume::OnBelt | Resume::AtGate => [gate(), None, None, None],
                Resume::AtScan => [gate(), None, take(&self.core.locks.scan_station), None],
                Resume::InTray | Resume::TakenFromTray => [None, self.core.locks.booths.get(&booth).and_then(take), None, None],
            };
            tracing::info!(dispense = %status.id, "resumed after a restart: {}", at.describe());
            runs.push(self.go_live(status, at == Resume::TakenFromTray).resuming(at, guards));
        }
        for run in runs {
            self.core.tasks.spawn(run.run());
        }
    }

    fn validate(&self, request_id: &str, order: &PatientOrder) -> Result<(), DispatchError> {
        let invalid = |field, reason: String| Err(DispatchError::InvalidArgument { field, reason });
        if request_id.trim().is_empty() || request_id.len() > 64 {
            return invalid("request_id", "must be 1 to 64 characters".into());
        }
        if order.patient_id.trim().is_empty() {
            return invalid("order.patient_id", "is required".into());
        }
        if self.core.catalog.product(&order.product_id).is_none() {
            let known: Vec<&str> = self.core.catalog.products.iter().map(|p| p.id.as_str()).collect();
            return invalid("order.product_id", format!("{:?} is not in the catalog (known: {})", order.product_id, known.join(", ")));
        }
        // The booth display shows product, lot, expiry and the patient's name: a name
        // it cannot hold is refused now, not found out after the unit dropped (H-09).
        if let Some(product) = self.core.catalog.product(&order.product_id) {
            let fixed = RESCAN_NOTICE.len() + format!("{} {}", product.name, product.specification).len() + MAX_LOT_BYTES + "YYYY-MM-DD".len() + 3;
            let room = hal::modbus::map::DISPLAY_TEXT_BYTES.saturating_sub(fixed);
            if order.patient_name.len() > room {
                return invalid("order.patient_name", format!("{} bytes: the booth display holds {room} for the name", order.patient_name.len()));
            }
        }
        let booths = self.core.devices.booths.count();
        if order.booth.0 == 0 || order.booth.0 > booths {
            return invalid("order.booth", format!("{} is not a booth of this workstation (1 to {booths})", order.booth.0));
        }
        if order.dose_number == 0 {
            return invalid("order.dose_number", "starts at 1".into());
        }
        let today = self.core.journal.clock().today();
        if order.birth_date > today {
            return invalid("order.birth_date", format!("{} is in the future", order.birth_date));
        }
        for (i, dose) in order.history.iter().enumerate() {
            if self.core.catalog.product(&dose.product_id).is_none() {
                return Err(DispatchError::InvalidArgument { field: "order.history.product_id", reason: format!("entry {i}: {:?} is not in the catalog", dose.product_id) });
            }
            if dose.date > today || dose.date < order.birth_date {
                return Err(DispatchError::InvalidArgument { field: "order.history.date", reason: format!("entry {i}: {} is not between birth and today", dose.date) });
            }
        }
        Ok(())
    }

    /// The dispense's current status, live or from the journal.
    pub fn get(&self, id: &str) -> Result<DispenseStatus, DispatchError> {
        if let Some(live) = lock(&self.core.live).get(id) {
            return Ok(live.status.borrow().clone());
        }
        self.core.journal.dispense(id)?.ok_or_else(|| DispatchError::NotFound(id.to_owned()))
    }

    /// Every dispense in progress, oldest first.
    pub fn queue(&self) -> Vec<DispenseStatus> {
        // A dispense whose end is published is out of the queue, though its runner
        // may not have let go yet (a fresh-clone CI run under load listed one
        // already administered).
        let mut all: Vec<DispenseStatus> = lock(&self.core.live).values().map(|l| l.status.borrow().clone()).filter(|s| !s.stage.is_final()).collect();
        // Ids are `D` and a zero-padded sequence that may outgrow its padding.
        all.sort_by_key(|s| (s.id.len(), s.id.clone()));
        all
    }

    /// A receiver of the dispense's status changes; `None` inside means it is finished
    /// and only the journal's final status remains.
    pub fn watch(&self, id: &str) -> Result<Watch, DispatchError> {
        if let Some(live) = lock(&self.core.live).get(id) {
            return Ok(Watch::Live(live.status.subscribe()));
        }
        Ok(Watch::Finished(self.get(id)?))
    }

    /// The guardian validated; `booth_scan` is the code read again at the booth, if any.
    pub fn confirm_validation(&self, id: &str, booth_scan: Option<&str>) -> Result<(), DispatchError> {
        let booth_scan = booth_scan
            .map(|text| UnitCode::parse(text).map_err(|e| DispatchError::InvalidArgument { field: "booth_scan", reason: e.to_string() }))
            .transpose()?;
        // A unit that lay in its tray while the controller restarted is identified
        // again before it may be given (H-16).
        let scan_required = lock(&self.core.live).get(id).is_some_and(|live| live.status.borrow().booth_scan_required);
        if scan_required && booth_scan.is_none() {
            return Err(DispatchError::InvalidArgument {
                field: "booth_scan",
                reason: format!("required for {id}: its unit was in the tray while the controller restarted; scan it again at the booth"),
            });
        }
        self.confirm(id, Stage::AwaitingValidation, Confirmation::Validated { booth_scan })
    }

    /// The nurse gave the dose; `site` is where, if the clinic says.
    pub fn confirm_administration(&self, id: &str, nurse_id: &str, site: Option<&str>) -> Result<(), DispatchError> {
        if nurse_id.trim().is_empty() {
            return Err(DispatchError::InvalidArgument { field: "nurse_id", reason: "is required".into() });
        }
        let confirmation = Confirmation::Administered { nurse_id: nurse_id.to_owned(), site: site.map(str::to_owned) };
        self.confirm(id, Stage::AwaitingAdministration, confirmation)
    }

    /// Cancels a dispense that is still queued and returns its final status;
    /// refused once a unit is reserved.
    pub async fn cancel(&self, id: &str, reason: &str, actor: &str) -> Result<DispenseStatus, DispatchError> {
        Self::require(&[("dispense_id", id), ("reason", reason), ("actor", actor)])?;
        self.refuse_if_stopped()?;
        let live = lock(&self.core.live).get(id).map(|l| (l.cancel.clone(), l.status.subscribe()));
        let Some((window, mut status)) = live else {
            let finished = self.get(id)?;
            return Err(DispatchError::NotCancellable { id: id.to_owned(), stage: finished.stage.describe() });
        };
        if !window.request(format!("cancelled by {actor}: {reason}")) {
            let stage = status.borrow().stage.describe();
            return Err(DispatchError::NotCancellable { id: id.to_owned(), stage });
        }
        // The runner ends at once: it was waiting for its booth, or about to reserve.
        let ended = tokio::time::timeout(Duration::from_secs(10), status.wait_for(|s| s.stage.is_final())).await;
        match ended {
            Ok(Ok(s)) => Ok(s.clone()),
            _ => self.get(id),
        }
    }

    /// Refuses what a stopped controller (or one dying past a simulated crash point)
    /// would not act on: the clinic sends it again to the controller that comes back,
    /// so it is never answered as taken.
    pub(crate) fn refuse_if_stopped(&self) -> Result<(), DispatchError> {
        if self.is_stopped() {
            return Err(DispatchError::NotReady("stopped"));
        }
        Ok(())
    }

    /// Passes a confirmation to the dispense's runner, once (H-03): the same
    /// confirmation again, while the runner is still taking the first or after it
    /// moved on, gets the same answer and is not passed twice.
    fn confirm(&self, id: &str, expected: Stage, confirmation: Confirmation) -> Result<(), DispatchError> {
        self.refuse_if_stopped()?;
        let live = lock(&self.core.live);
        let Some(dispense) = live.get(id) else {
            let status = self.core.journal.dispense(id)?.ok_or_else(|| DispatchError::NotFound(id.to_owned()))?;
            if already_confirmed(expected, status.stage) {
                return Ok(());
            }
            return Err(DispatchError::WrongStage { id: id.to_owned(), stage: status.stage.describe(), expected: expected.describe() });
        };
        let (stage, unit) = {
            let status = dispense.status.borrow();
            (status.stage, status.unit.as_ref().map(|u| u.code.clone()))
        };
        if stage != expected {
            if already_confirmed(expected, stage) {
                return Ok(());
            }
            return Err(DispatchError::WrongStage { id: id.to_owned(), stage: stage.describe(), expected: expected.describe() });
        }
        // A unit put on hold at the booth, or past its time out of the fridge or its
        // expiry while it waited there, is not given; its runner rejects it.
        if let Some(code) = unit.as_ref() {
            let product_id = dispense.status.borrow().order.product_id.clone();
            // A unit taken from its tray while the controller was down: a hold that came
            // since does not stop the record of a dose given then, but a unit past its
            // time out of the fridge is not to be given now (H-20).
            let held = if dispense.taken_while_down { None } else { hold_on(&self.core.journal, code)? };
            let refused = held.or_else(|| unusable_in_tray(&self.core, code, &product_id));
            if let Some(refused) = refused {
                return Err(DispatchError::UnitHeld { id: id.to_owned(), why: refused.message });
            }
        }
        let sent = if expected == Stage::AwaitingValidation { &dispense.validation_sent } else { &dispense.administration_sent };
        if sent.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        dispense
            .confirmations
            .send(confirmation)
            .map_err(|_| DispatchError::WrongStage { id: id.to_owned(), stage: "finishing", expected: expected.describe() })
    }
}

/// Whether a confirmation the dispense waited for at `expected` was already taken:
/// it has moved past that stage the way the confirmation moves it.
fn already_confirmed(expected: Stage, now: Stage) -> bool {
    match expected {
        Stage::AwaitingValidation => matches!(now, Stage::AwaitingAdministration | Stage::Administered),
        Stage::AwaitingAdministration => now == Stage::Administered,
        _ => false,
    }
}
