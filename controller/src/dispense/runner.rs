//! Runs one dispense: drives the [`flow`](crate::dispense::flow) machine, executing each
//! command against the devices with the journal written first (intent) and after
//! (outcome), and publishing every stage change to watchers.

use crate::dispense::cancel::CancelWindow;
use crate::dispense::carriers::carrier_of;
use crate::dispense::claim::Claim;
use crate::dispense::confirmation::Confirmation;
use crate::dispense::core::Core;
use crate::dispense::flow::{Command, DispenseFlow, Event, Outbox, Resume, stage_of};
use crate::dispense::status::{DispenseStatus, Stage};
use crate::dispense::streaks::Loss;
use crate::ops::faults::{self, Policy};
use crate::dispense::workstation::WsEvent;
use crate::journal::{Intended, Intent, JournalError, StepKind, unit_info};
use crate::motion::{Authority, Motion, MotionError, Mover};
use crate::rules::inventory::{UnitState, choose_fefo};
use crate::rules::verify::{CHECKS, Evidence, JabTime, Violation, ViolationId, check_order, hold_violation, release_check, verify};
use crate::scan::{FrameError, Verdict, Vote, decode_frame};
use hal::{BoothDisplay, DeviceError, ErrorKind, Station, TrackingId};
use statig::blocking::IntoStateMachineExt;
use std::sync::Arc;
use tokio::sync::{OwnedMutexGuard, mpsc, watch};

pub(crate) struct DispenseRun {
    core: Arc<Core>,
    status: DispenseStatus,
    status_tx: watch::Sender<DispenseStatus>,
    confirmations: mpsc::UnboundedReceiver<Confirmation>,
    cancel: Arc<CancelWindow>,
    carrier: TrackingId,
    gate_guard: Option<OwnedMutexGuard<()>>,
    booth_guard: Option<OwnedMutexGuard<()>>,
    scan_guard: Option<OwnedMutexGuard<()>>,
    /// Where a dispense a restart interrupted picks up again (H-16).
    resume: Option<Resume>,
    /// Its unit waits in the store's hatch: the first belt run puts it on the belt.
    release_first: bool,
    /// The picker (and its hatch), held from a restart until that release.
    picker_guard: Option<OwnedMutexGuard<()>>,
    /// The command under way, as journalled: a motion repeated after homing is
    /// journalled again first, so every motion follows its intent.
    intent: Option<Intent>,
    /// A resumed dispense's station claims (gate, booth, scan station, picker),
    /// taken up before its first step.
    claims: Option<[Option<Claim>; 4]>,
    /// When the dispense entered its stage (for the stage latency metric).
    stage_since: tokio::time::Instant,
}

/// How often a motion refused by a device that lost its reference is repeated
/// after homing it.
const REPEATS: usize = 3;

/// Whether a unit waiting in its tray may no longer be given now: past its
/// product's time out of the fridge, or expired by the site's date, or its record
/// unreadable (H-02, H-06). The runner and the dispatcher both ask.
pub(crate) fn unusable_in_tray(core: &Core, code: &str, product_id: &str) -> Option<Violation> {
    let record = match core.journal.stock_record(code) {
        Ok(Some(record)) => record,
        Ok(None) => return Some(Violation::new(ViolationId::UnknownUnit, format!("{code} has no stock record"))),
        Err(e) => return Some(unreadable_record(&e)),
    };
    let product = core.catalog.product(product_id)?;
    let now = core.journal.now();
    let jab = JabTime { at: now, day: core.journal.clock().local_date(now) };
    release_check(&record, product, jab).into_iter().find(|v| matches!(v.id, ViolationId::OutOfFridgeLimit | ViolationId::Expired))
}

/// A unit whose record cannot be read is not given: what cannot be read is unsafe (H-06).
fn unreadable_record(e: &JournalError) -> Violation {
    Violation::new(ViolationId::RecordUnreadable, format!("the unit's record cannot be read ({e}): it is not given"))
}

/// The hold on a unit as the journal has it now, as the violation it is.
pub(crate) fn hold_on(journal: &crate::journal::Journal, code: &str) -> Result<Option<Violation>, JournalError> {
    Ok(journal.stock_record(code)?.as_ref().and_then(hold_violation))
}

/// What the booth display puts before the product's name when the unit must be
/// scanned again at the booth (it was in the tray while the controller restarted);
/// order validation leaves room for it.
pub(crate) const RESCAN_NOTICE: &str = "SCAN AGAIN: ";

/// How often a unit waiting at its gate looks at the booth's tray sensor.
const TRAY_POLL: std::time::Duration = std::time::Duration::from_millis(250);

impl DispenseRun {
    pub fn new(
        core: Arc<Core>,
        status: DispenseStatus,
        status_tx: watch::Sender<DispenseStatus>,
        confirmations: mpsc::UnboundedReceiver<Confirmation>,
        cancel: Arc<CancelWindow>,
    ) -> Self {
        let carrier = carrier_of(&status.id);
        Self { core, status, status_tx, confirmations, cancel, carrier, gate_guard: None, booth_guard: None, scan_guard: None, resume: None, release_first: false, picker_guard: None, intent: None, claims: None, stage_since: tokio::time::Instant::now() }
    }

    /// A dispense a restart interrupted, picking up `at` where its unit is, with the
    /// station locks its place holds (claimed before any new order could take them;
    /// one another resumed dispense holds is waited for before the first step).
    pub fn resuming(mut self, at: Resume, claims: [Option<Claim>; 4]) -> Self {
        self.resume = Some(at);
        self.release_first = at == Resume::FromHatch;
        self.claims = Some(claims);
        self
    }

    /// Holds the stations a resumed dispense claimed (see [`Claim`]).
    async fn take_up_claims(&mut self) {
        let Some([gate, booth, scan, picker]) = self.claims.take() else { return };
        let id = self.status.id.clone();
        let hold = |claim: Option<Claim>| async { match claim { Some(claim) => Some(claim.hold(&id).await), None => None } };
        self.gate_guard = hold(gate).await;
        self.booth_guard = hold(booth).await;
        self.scan_guard = hold(scan).await;
        self.picker_guard = hold(picker).await;
    }

    /// Holds the scan station (one unit there at a time) unless it already does.
    async fn hold_scan_station(&mut self) {
        if self.scan_guard.is_none() {
            self.scan_guard = Some(self.core.locks.scan_station.clone().lock_owned().await);
        }
    }

    /// Taken from its tray while the controller was down: only the nurse's word is awaited.
    fn taken_while_down(&self) -> bool {
        self.resume == Some(Resume::TakenFromTray)
    }

    /// The dispense to its end, inside a `dispense` span carrying its id: every
    /// log line the run writes names the dispense.
    pub fn run(self) -> impl std::future::Future<Output = ()> + Send {
        let span = tracing::info_span!("dispense", id = %self.status.id);
        tracing::Instrument::instrument(self.to_the_end(), span)
    }

    async fn to_the_end(mut self) {
        self.take_up_claims().await;
        if let Err(e) = self.drive().await {
            if self.core.journal.crashed() {
                // A simulated crash between two journal writes: a dead controller
                // publishes nothing more; the next one recovers from the file.
                return;
            }
            // The journal could not be written: stop touching hardware at once.
            tracing::error!(dispense = %self.status.id, error = %e, "journal failure; dispense stopped");
            self.status.stage = Stage::Failed;
            self.status.detail = format!("journal failure, dispense stopped: {e}");
            self.status.finished_at = Some(self.core.journal.now());
            // The journal may still take the end (a record it could not read need not
            // stop it writing); if not, a restart's recovery settles the dispense.
            if let Err(again) = self.core.journal.record_stage(&self.status) {
                tracing::error!(dispense = %self.status.id, error = %again, "the failed dispense's end could not be journalled");
            }
            self.status_tx.send_replace(self.status.clone());
        }
        self.booth_guard = None;
        self.gate_guard = None;
        self.scan_guard = None;
        // The dispatcher forgets the dispense on hearing of its end; if it is gone
        // (stopped as if crashed) there is no one left to tell.
        let _ = self.core.ended.send(self.status.id.clone());
    }

    async fn drive(&mut self) -> Result<(), JournalError> {
        let mut outbox = Outbox::default();
        let mut flow = DispenseFlow::new(self.status.order.booth);
        if self.resume.is_some()
            && let Some(unit) = &self.status.unit
        {
            // A resumed unit is the one the journal reserved; verification compares
            // the code it reads again with this record.
            flow.unit = self.core.journal.stock_record(&unit.code)?;
        }
        let mut machine = flow.uninitialized_state_machine();
        if let Some(at) = self.resume {
            *machine.state_mut() = at.state();
        }
        let mut machine = machine.init_with_context(&mut outbox);
        while let Some(command) = outbox.take() {
            let intent = command.intent();
            let intended = self.core.journal.record_intent(&self.status.id, self.unit_code(), &intent)?;
            self.intent = Some(intent);
            let event = self.execute(&command, &intended, machine.inner()).await?;
            self.core.journal.record_outcome(&self.status.id, self.unit_code(), &event.outcome(), &describe(&event))?;
            machine.handle_with_context(&event, &mut outbox);
            let finishing = matches!(command, Command::Finish(_));
            // A final stage is published only once Finish has settled the unit's
            // record and freed the booth, so a client that sees it sees it all.
            if finishing || !stage_of(machine.state()).is_final() {
                self.publish(&machine)?;
            }
            if finishing {
                return Ok(());
            }
        }
        // The flow ignored an event it did not expect and has nothing to do: a bug.
        // Fail loudly rather than leave the dispense hanging.
        let detail = format!("internal: dispense flow stalled in {:?}", machine.state());
        tracing::error!(dispense = %self.status.id, "{detail}");
        // Its unit is settled all the same: nothing is left where the records lose it.
        self.finish(Stage::Failed, None).await?;
        self.status.stage = Stage::Failed;
        self.status.detail = detail;
        self.status.finished_at = Some(self.core.journal.now());
        self.core.journal.record_stage(&self.status)?;
        self.status_tx.send_replace(self.status.clone());
        Ok(())
    }

    /// Journals a line of this dispense's log (not an intent or an outcome).
    fn journal(&self, kind: StepKind, step: &str, detail: &str) -> Result<(), JournalError> {
        self.core.journal.record(&self.status.id, self.unit_code(), kind, step, detail)
    }

    fn unit_code(&self) -> Option<&str> {
        self.status.unit.as_ref().map(|u| u.code.as_str())
    }

    /// Copies the flow's state into the status; journals and publishes a change.
    fn publish(&mut self, machine: &statig::blocking::InitializedStateMachine<DispenseFlow>) -> Result<(), JournalError> {
        let flow = machine.inner();
        let mut next = self.status.clone();
        next.stage = stage_of(machine.state());
        next.violations = flow.violations.clone();
        next.administered_by.clone_from(&flow.administered_by);
        next.administered_site.clone_from(&flow.administered_site);
        if !flow.detail.is_empty() {
            next.detail = flow.detail.clone();
        }
        if next.stage == Stage::AwaitingValidation && next.at_booth_at.is_none() {
            next.at_booth_at = Some(self.core.journal.now());
        }
        if next.stage.is_final() && next.finished_at.is_none() {
            next.finished_at = Some(self.core.journal.now());
        }
        if next != self.status {
            if next.stage != self.status.stage {
                crate::ops::metrics::stage_left(self.status.stage.code(), self.stage_since.elapsed().as_secs_f64());
                self.stage_since = tokio::time::Instant::now();
            }
            self.status = next;
            self.core.journal.record_stage(&self.status)?;
            self.status_tx.send_replace(self.status.clone());
            self.core.dispense_changed();
        }
        Ok(())
    }

    /// A device failure as the flow's event, raised on the fault board for the crew
    /// (an open interlock is the supervisor's to show, and only pauses). Its
    /// policy decides what follows: a fault that costs the unit (`RejectUnit`)
    /// counts towards stopping the picking (H-08).
    fn fault(&self, e: DeviceError) -> Event {
        if e.kind() != ErrorKind::Interlock {
            let definition = faults::definition(e.kind());
            let detail = format!("dispense {}: {e}", self.status.id);
            self.core.telemetry.faults.raise(definition.into(), e.device(), &detail);
            if definition.policy == Policy::RejectUnit {
                self.lost(Loss::Handling, &format!("{} {e}", definition.code));
            }
        }
        Event::Fault(e)
    }

    /// One more unit lost this way; at the limit, picking stops until a crew
    /// clears the fault.
    fn lost(&self, loss: Loss, what: &str) {
        let streak = self.core.streaks.lost(loss);
        if streak >= self.core.settings.stop_picking_after {
            let (definition, source) = match loss {
                Loss::Unreadable => (faults::SCAN_STREAK, "scan station"),
                Loss::Handling => (faults::HANDLING_STREAK, "conveyor"),
            };
            self.core.telemetry.faults.raise(definition.into(), source, &format!("{streak} units in a row lost; the last, dispense {}: {what}", self.status.id));
        }
    }

    /// Waits while a fault that stops picking is active, telling the clinic why;
    /// the streak starts again once the crew clears it. `Some` if cancelled meanwhile.
    async fn while_picking_stopped(&mut self) -> Option<String> {
        let mut board = self.core.telemetry.faults.subscribe();
        let mut waited = false;
        loop {
            let stopping = board.borrow_and_update().iter().find(|f| faults::stops_picking(&f.code)).map(|f| format!("waiting: {} {} ({})", f.code, f.cause, f.remedy));
            let Some(why) = stopping else { break };
            if !waited {
                self.set_detail(why);
                waited = true;
            }
            // `biased`: branches are tried in order, so a simulated run replays exactly.
            tokio::select! {
                biased;
                changed = board.changed() => if changed.is_err() { break },
                () = self.cancel.requested.notified() => return Some(self.cancel.close().unwrap_or_default()),
            }
        }
        if waited {
            self.core.streaks.passed(Loss::Unreadable);
            self.core.streaks.passed(Loss::Handling);
            self.set_detail(String::new());
        }
        None
    }

    /// Updates the detail line watchers see, without a stage change.
    fn set_detail(&mut self, detail: String) {
        self.status.detail = detail;
        self.status_tx.send_replace(self.status.clone());
    }

    async fn execute(&mut self, command: &Command, intended: &Intended, flow: &DispenseFlow) -> Result<Event, JournalError> {
        let event = match command {
            Command::Allocate => self.allocate().await?,
            Command::Pick { slot } => {
                // Take the picker before looking at the interlocks, as convey does with
                // the scan station: a door opened while waiting for the picker must
                // pause this dispense, not fail it.
                let core = self.core.clone();
                let _picker = core.locks.picker.lock().await;
                // Two motions, each sent only with every interlock closed at that moment
                // (H-05): an e-stop pressed during the pick holds the unit in the hatch.
                let carrier = self.carrier;
                let picked = match self.motion(intended, Motion::Pick { slot: *slot, carrier }).await? {
                    Ok(()) => self.motion(intended, Motion::Release { carrier }).await?,
                    failed => failed,
                };
                match picked {
                    Ok(()) => Event::Picked,
                    Err(e) => self.fault(e),
                }
            }
            Command::Convey(to) => self.convey(intended, *to).await?,
            Command::Scan => {
                // Resumed at the scan station, it takes the station here.
                self.hold_scan_station().await;
                let event = self.scan().await?;
                match &event {
                    Event::Read(_) => self.core.streaks.passed(Loss::Unreadable),
                    Event::Unreadable { why } => self.lost(Loss::Unreadable, why),
                    _ => {}
                }
                event
            }
            Command::Verify(decoded) => {
                let record = self.core.journal.stock_record(&decoded.code.canonical())?;
                let picked = flow.unit.as_ref().map(|u| u.code.clone()).unwrap_or_default();
                let violations = verify(&Evidence {
                    order: &self.status.order,
                    catalog: &self.core.catalog,
                    scanned: &decoded.code,
                    record: record.as_ref(),
                    picked_code: &picked,
                    dispense_id: &self.status.id,
                    expected_administration: self.expected_administration(),
                });
                let verdict = if violations.is_empty() {
                    "all passed".to_owned()
                } else {
                    violations.iter().map(|v| v.id.as_str()).collect::<Vec<_>>().join(", ")
                };
                self.journal(StepKind::Evidence, "checks", &format!("checks {}: {verdict}", CHECKS.join(", ")))?;
                if violations.is_empty() { Event::Passed } else { Event::Violations(violations) }
            }
            Command::AwaitValidation => {
                if let Err(e) = self.show_at_booth(flow).await {
                    return Ok(self.fault(e));
                }
                self.await_validation().await
            }
            Command::AwaitAdministration if self.taken_while_down() => self.await_word_on_taken_unit().await,
            Command::AwaitAdministration => self.await_confirmation().await,
            Command::Finish(stage) => {
                let why = flow.violations.first().map(|v| v.message.clone());
                self.finish(*stage, why).await?;
                Event::Finished
            }
        };
        Ok(event)
    }

    /// When the jab is expected: now plus the usual time to the booth and the
    /// validation, and the site's calendar date then.
    fn expected_administration(&self) -> JabTime {
        let at = self.core.journal.now() + chrono::Duration::from_std(self.core.settings.expected_to_jab).unwrap_or_default();
        JabTime { at, day: self.core.journal.clock().local_date(at) }
    }

    /// Waits for the booth's gate, then chooses and reserves the earliest-expiry unit.
    async fn allocate(&mut self) -> Result<Event, JournalError> {
        let booth = self.status.order.booth;
        let lock = self.core.locks.gates[&booth].clone();
        let guard = match lock.clone().try_lock_owned() {
            Ok(guard) => guard,
            Err(_) => {
                self.set_detail(format!("waiting for {booth}: the units of the patients before are on their way"));
                // Queued: a cancel ends the wait at once.
                tokio::select! {
                    biased;
                    guard = lock.lock_owned() => guard,
                    () = self.cancel.requested.notified() => {
                        return Ok(Event::Cancelled { detail: self.cancel.close().unwrap_or_default() });
                    }
                }
            }
        };
        self.gate_guard = Some(guard);
        // No unit leaves the store while the station itself is losing them (H-08).
        if let Some(detail) = self.while_picking_stopped().await {
            return Ok(Event::Cancelled { detail });
        }
        // The last moment to cancel: nothing has been reserved yet.
        if let Some(detail) = self.cancel.close() {
            return Ok(Event::Cancelled { detail });
        }
        let Some(product) = self.core.catalog.product(&self.status.order.product_id) else {
            return Ok(Event::NoStock(format!("product {} left the catalog", self.status.order.product_id)));
        };
        let today = self.expected_administration().day;
        // The patient's own checks need no unit: refuse before one leaves the store.
        let refused = check_order(&self.status.order, &self.core.catalog, today);
        if !refused.is_empty() {
            return Ok(Event::Violations(refused));
        }
        let _one_allocation_at_a_time = self.core.locks.allocation();
        let candidates = self.core.journal.earliest_usable_in_store(&product.gtins, today)?;
        let Some(unit) = choose_fefo(&candidates, &product.gtins, today).cloned() else {
            return Ok(Event::NoStock(format!("no {} unit in store that is valid on {today}", product.id)));
        };
        self.status.unit = Some(unit_info(&unit));
        self.status.detail.clear();
        self.core.journal.reserve_unit(&unit.code, &self.status)?;
        Ok(Event::Allocated(unit))
    }

    /// Sends one of this dispense's motions through the gate once every interlock
    /// is closed and no crew holds the machine (H-05); the gate's own refusal (the
    /// machine changed since the wait) sends it back to waiting.
    async fn send(&mut self, intended: &Intended, motion: Motion) -> Result<Result<(), DeviceError>, JournalError> {
        loop {
            if let Err(e) = self.interlocks_closed().await? {
                return Ok(Err(e));
            }
            match self.core.gate().send(Authority::Service, intended, motion).await {
                Ok(()) => return Ok(Ok(())),
                Err(MotionError::Device(e)) => return Ok(Err(e)),
                Err(MotionError::Refused(why)) => self.refused_at_the_gate(motion, &why).await,
            }
        }
    }

    async fn refused_at_the_gate(&self, motion: Motion, why: &crate::motion::Refusal) {
        tracing::info!(dispense = %self.status.id, "{motion:?} refused at the gate ({why}): waiting again");
        tokio::time::sleep(self.core.settings.interlock_poll).await;
    }

    /// [`Self::send`]; a motion refused by a device that lost its reference is
    /// repeated after homing it.
    async fn motion(&mut self, intended: &Intended, motion: Motion) -> Result<Result<(), DeviceError>, JournalError> {
        let first = self.send(intended, motion).await?;
        self.repeated_after_homing(intended, motion, first).await
    }

    /// `first`, the outcome of a motion, or, while the device refused it for want
    /// of homing (it came back from a power cut), the outcome of sending it again
    /// after homing the device, at most [`REPEATS`] times.
    async fn repeated_after_homing(&mut self, intended: &Intended, motion: Motion, first: Result<(), DeviceError>) -> Result<Result<(), DeviceError>, JournalError> {
        let mut result = first;
        for _ in 0..REPEATS {
            match &result {
                Err(e) if self.rehomed(motion.mover(), e).await? => {
                    // Homing was journalled in between: the motion's intent again, then the motion.
                    let again;
                    let token = match &self.intent {
                        Some(intent) => {
                            again = self.core.journal.record_intent(&self.status.id, self.unit_code(), intent)?;
                            &again
                        }
                        None => intended,
                    };
                    result = self.send(token, motion).await?;
                }
                _ => break,
            }
        }
        Ok(result)
    }

    /// A device that lost its reference (it came back from a power cut) refuses
    /// motion until homed: home it as every motion goes (intent journalled first,
    /// through the gate; one runner at a time, homing twice is harmless) and say
    /// how it went. True if the refused motion, which never started, may be repeated.
    async fn rehomed(&mut self, mover: Mover, e: &DeviceError) -> Result<bool, JournalError> {
        if e.kind() != ErrorKind::NotHomed {
            return Ok(false);
        }
        let core = self.core.clone();
        let _one_at_a_time = core.locks.homing.lock().await;
        // What cannot be journalled is not done (H-06): the run stops here.
        let intended = self.core.journal.record_intent(&self.status.id, self.unit_code(), &Intent::Home)?;
        let homed = self.send(&intended, Motion::Home(mover)).await?;
        let note = match &homed {
            Ok(()) => format!("{} had lost its reference ({e}): homed, the motion is repeated", e.device()),
            Err(h) => format!("{} had lost its reference ({e}) and homing failed: {h}", e.device()),
        };
        tracing::warn!(dispense = %self.status.id, "{note}");
        self.journal(StepKind::Evidence, "rehomed", &note)?;
        Ok(homed.is_ok())
    }

    async fn convey(&mut self, intended: &Intended, to: Station) -> Result<Event, JournalError> {
        if std::mem::take(&mut self.release_first) {
            // Resumed with its unit in the hatch: onto the belt first, the picker held
            // (since the restart) so that no other pick meets a full hatch.
            let _picker = match self.picker_guard.take() {
                Some(held) => held,
                None => self.core.locks.picker.clone().lock_owned().await,
            };
            if let Err(e) = self.motion(intended, Motion::Release { carrier: self.carrier }).await? {
                return Ok(self.fault(e));
            }
        }
        if to == Station::Scan {
            self.hold_scan_station().await;
        }
        if let Station::Booth(booth) = to {
            if let Some(refused) = self.wait_for_booth(booth).await? {
                return Ok(refused);
            }
        }
        let motion = Motion::Convey { carrier: self.carrier, to };
        let result = loop {
            if let Err(e) = self.interlocks_closed().await? {
                return Ok(self.fault(e));
            }
            if let Station::Booth(_) = to {
                if let Some(refused) = self.recheck_before_drop()? {
                    return Ok(refused);
                }
            }
            let core = self.core.clone();
            let gate = core.gate();
            let run = gate.send(Authority::Service, intended, motion);
            let result = match self.scan_guard.is_some() && to != Station::Scan {
                // Leaving the scan station: the next unit may run in once this one has
                // cleared it (the belt's spacing), long before it reaches its booth.
                true => {
                    tokio::pin!(run);
                    tokio::select! {
                        biased;
                        result = &mut run => result,
                        () = tokio::time::sleep(core.settings.scan_clearance) => {
                            self.scan_guard = None;
                            run.await
                        }
                    }
                }
                false => run.await,
            };
            match result {
                Ok(()) => break Ok(()),
                Err(MotionError::Device(e)) => break Err(e),
                Err(MotionError::Refused(why)) => self.refused_at_the_gate(motion, &why).await,
            }
        };
        let result = self.repeated_after_homing(intended, motion, result).await?;
        let event = match result {
            Ok(()) => Event::Arrived,
            // A unit that did not get away may still be at the scan station: it keeps it.
            Err(e) => return Ok(self.fault(e)),
        };
        if to != Station::Scan {
            self.scan_guard = None;
        }
        if matches!(event, Event::Arrived) && matches!(to, Station::Booth(_) | Station::Reject) {
            // The unit has left its gate (or never went there): the next patient's may come.
            self.gate_guard = None;
        }
        if matches!((&event, to), (Event::Arrived, Station::Booth(_))) {
            // A unit that got to its tray breaks a streak of handling losses.
            self.core.streaks.passed(Loss::Handling);
        }
        if let (Event::Arrived, Some(unit)) = (&event, &self.status.unit) {
            let state = match to {
                Station::Booth(_) => Some(UnitState::Delivered),
                Station::Reject => Some(UnitState::Rejected),
                Station::Hatch | Station::Scan | Station::Gate(_) => None,
            };
            if let Some(state) = state {
                self.core.journal.set_unit_state(&unit.code, state, &self.status.id)?;
            }
        }
        Ok(event)
    }

    /// At the gate: waits until the patient before has been served and the tray
    /// reads empty. `Some(event)` if the tray cannot be read.
    async fn wait_for_booth(&mut self, booth: hal::BoothId) -> Result<Option<Event>, JournalError> {
        let lock = self.core.locks.booths[&booth].clone();
        self.booth_guard = Some(match lock.clone().try_lock_owned() {
            Ok(guard) => guard,
            Err(_) => {
                self.set_detail(format!("waiting at {booth}'s gate while the patient before is served"));
                lock.lock_owned().await
            }
        });
        let mut told = false;
        loop {
            match self.core.devices.booths.tray(booth).await {
                Ok(hal::TrayState::Empty) => break,
                Ok(_) if !told => {
                    told = true;
                    self.set_detail(format!("waiting at {booth}'s gate for the tray to be emptied"));
                }
                Ok(_) => {}
                Err(e) => return Ok(Some(self.fault(e))),
            }
            tokio::time::sleep(TRAY_POLL).await;
        }
        Ok(None)
    }

    /// The last check before a unit drops into its tray, made at the instant of the
    /// drop after every wait (the patient before, the tray, an open interlock,
    /// maintenance): a hold, too long out of the fridge or expired by the jab's
    /// local date, and it goes to the bin instead (H-02). `Some(event)` if it may not drop.
    fn recheck_before_drop(&mut self) -> Result<Option<Event>, JournalError> {
        let Some(unit) = &self.status.unit else { return Ok(None) };
        let (record, product) = (self.core.journal.stock_record(&unit.code)?, self.core.catalog.product(&self.status.order.product_id));
        let found = match (record, product) {
            (Some(record), Some(product)) => release_check(&record, product, self.expected_administration()),
            _ => vec![Violation::new(ViolationId::UnknownUnit, format!("{} has no stock record or product at release", unit.code))],
        };
        if found.is_empty() {
            return Ok(None);
        }
        let ids: Vec<&str> = found.iter().map(|v| v.id.as_str()).collect();
        self.journal(StepKind::Evidence, "gate re-check", &format!("checked again at the gate: {}", ids.join(", ")))?;
        // Not dropped: the booth is the next patient's again.
        self.booth_guard = None;
        Ok(Some(Event::Violations(found)))
    }

    /// Grabs frames while the rollers turn the vial until the vote decides, or the
    /// frames run out (the unit is then rejected as unreadable).
    async fn scan(&mut self) -> Result<Event, JournalError> {
        let max = self.core.settings.scan_max_frames;
        let mut vote = Vote::new(self.core.settings.scan_agree);
        for frame_no in 1..=max {
            let frame = match self.core.devices.camera.grab_frame().await {
                Ok(frame) => frame,
                Err(e) => return Ok(self.fault(e)),
            };
            let read = decode_frame(&frame);
            if let Err(e @ FrameError::Unparseable { .. }) = &read {
                tracing::warn!(dispense = %self.status.id, frame_no, "{e}");
            }
            match vote.count(read) {
                Verdict::Undecided => {}
                Verdict::Read(decoded) => {
                    tracing::debug!(dispense = %self.status.id, frame_no, symbology = %decoded.symbology, "code read");
                    // The frame that decided the read, by its hash, for the unit's custody record.
                    let evidence = format!("frame {frame_no} of {}x{} fnv1a64:{:016x}", frame.width, frame.height, fnv1a64(&frame.pixels));
                    // The custody record is part of the read: unjournalled, the run stops.
                    self.journal(StepKind::Evidence, "frame", &evidence)?;
                    return Ok(Event::Read(decoded));
                }
                Verdict::Conflict(codes) => {
                    return Ok(Event::Unreadable { why: format!("different codes read off one unit: {}", codes.join(" and ")) });
                }
            }
        }
        Ok(Event::Unreadable { why: vote.summary(max) })
    }

    async fn show_at_booth(&self, flow: &DispenseFlow) -> Result<(), DeviceError> {
        let product = self.core.catalog.product(&self.status.order.product_id);
        let unit = flow.unit.as_ref();
        let name = product.map_or_else(|| self.status.order.product_id.clone(), |p| format!("{} {}", p.name, p.specification));
        let display = BoothDisplay {
            patient_name: self.status.order.patient_name.clone(),
            // Resumed in the tray: the guardian and the nurse read that it must be scanned.
            product_name: if self.status.booth_scan_required { format!("{RESCAN_NOTICE}{name}") } else { name },
            lot: unit.map(|u| u.lot.clone()).unwrap_or_default(),
            expiry: unit.map(|u| u.expiry.to_string()).unwrap_or_default(),
        };
        self.core.devices.booths.show(self.status.order.booth, &display).await
    }

    /// The guardian's validation (一验证), within the timeout; a second scan at the
    /// booth, if the clinic sent one, must be the delivered unit.
    async fn await_validation(&mut self) -> Event {
        let timeout = self.core.settings.validation_timeout;
        let failed = |message: String| Event::Violations(vec![Violation::new(ViolationId::ValidationFailed, message)]);
        match tokio::time::timeout(timeout, self.word_or_hold()).await {
            Err(_) => failed(format!("the guardian did not validate within {} s; the nurse puts the unit in the booth's return bin", timeout.as_secs())),
            Ok(Err(held)) => Event::Violations(vec![held]),
            // The dispatcher refuses this; should one come, the unit is not given unidentified.
            Ok(Ok(Some(Confirmation::Validated { booth_scan: None }))) if self.status.booth_scan_required => {
                failed("the unit was in its tray while the controller restarted and was not scanned again at the booth".to_owned())
            }
            Ok(Ok(Some(Confirmation::Validated { booth_scan: Some(scan) }))) => {
                let delivered = self.status.unit.as_ref().map(|u| u.code.clone()).unwrap_or_default();
                if scan.canonical() == delivered {
                    Event::Validated
                } else {
                    failed(format!("the booth scan read {}, but the delivered unit is {delivered}", scan.canonical()))
                }
            }
            Ok(Ok(other)) => Self::confirmation_event(other),
        }
    }

    /// Resumed with its tray empty: the nurse took the unit while the controller
    /// was down. The clinic's confirmation records the dose that was given (no
    /// hold stops a record of what happened); none within the validation timeout
    /// ends the dispense, its unit quarantined as missing; a unit past its time out
    /// of the fridge ends it rejected, never asked for (H-20).
    async fn await_word_on_taken_unit(&mut self) -> Event {
        let timeout = self.core.settings.validation_timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Past its time out of the fridge (or its expiry) it is not to be given:
            // the dispense ends, the clinic told why (H-20).
            if let Some(unusable) = self.unusable_now() {
                return Event::Violations(vec![unusable]);
            }
            let until = deadline.min(tokio::time::Instant::now() + self.time_until_unusable());
            match tokio::time::timeout_at(until, self.confirmations.recv()).await {
                Err(_) if until < deadline => {}
                Err(_) => {
                    return Event::Unconfirmed {
                        detail: format!("taken from its tray while the controller was down, and no administration was confirmed within {} s: quarantined as missing", timeout.as_secs()),
                    };
                }
                Ok(Some(Confirmation::Validated { .. })) => {}
                Ok(word) => return Self::confirmation_event(word),
            }
        }
    }

    async fn await_confirmation(&mut self) -> Event {
        loop {
            match self.word_or_hold().await {
                // A validation sent again is the one already taken (H-03).
                Ok(Some(Confirmation::Validated { .. })) => {}
                Ok(word) => return Self::confirmation_event(word),
                Err(held) => return Event::Violations(vec![held]),
            }
        }
    }

    /// The clinic's next word, unless the unit waiting at the booth is put on hold
    /// first (a recall, a quarantine, a cold-chain excursion: looked for whenever a
    /// hold is committed, and again when the word arrives): a held unit is never given.
    async fn word_or_hold(&mut self) -> Result<Option<Confirmation>, Violation> {
        let mut holds = self.core.journal.watch_holds();
        if let Some(held) = self.held().or_else(|| self.unusable_now()) {
            return Err(held);
        }
        let until_unusable = self.time_until_unusable();
        let unusable = tokio::time::sleep(until_unusable);
        tokio::pin!(unusable);
        loop {
            tokio::select! {
                biased;
                word = self.confirmations.recv() => {
                    return match self.held().or_else(|| self.unusable_now()) {
                        Some(held) => Err(held),
                        None => Ok(word),
                    };
                }
                Ok(()) = holds.changed() => {
                    if let Some(held) = self.held() {
                        return Err(held);
                    }
                }
                // Its time out of the fridge ran out, or its expiry date passed, while
                // it waited in the tray (H-02).
                () = &mut unusable => {
                    if let Some(unusable) = self.unusable_now() {
                        return Err(unusable);
                    }
                    unusable.as_mut().reset(tokio::time::Instant::now() + self.time_until_unusable());
                }
            }
        }
    }

    /// Whether the unit in the tray may no longer be given now (see [`unusable_in_tray`]).
    fn unusable_now(&self) -> Option<Violation> {
        let code = &self.status.unit.as_ref()?.code;
        unusable_in_tray(&self.core, code, &self.status.order.product_id)
    }

    /// How long until the unit in the tray passes its out-of-fridge limit or its
    /// expiry (at most an hour: looked at again then).
    fn time_until_unusable(&self) -> std::time::Duration {
        let hour = std::time::Duration::from_secs(3600);
        let Some(unit) = &self.status.unit else { return hour };
        let Ok(Some(record)) = self.core.journal.stock_record(&unit.code) else { return std::time::Duration::ZERO };
        let now = self.core.journal.now();
        let limit = self.core.catalog.product(&self.status.order.product_id).map(|p| chrono::Duration::minutes(i64::from(p.out_of_fridge_limit_min)));
        let out_of_fridge = record.left_store_at.zip(limit).map(|(left, limit)| left + limit);
        // The first instant of the local day after the expiry date.
        let zone = self.core.journal.clock().zone();
        let expired = record.expiry.succ_opt().and_then(|d| d.and_hms_opt(0, 0, 0)).and_then(|t| t.and_local_timezone(zone).earliest()).map(|t| t.with_timezone(&chrono::Utc));
        let deadline = [out_of_fridge, expired].into_iter().flatten().min();
        deadline.map_or(hour, |d| (d - now).to_std().unwrap_or(std::time::Duration::ZERO).min(hour) + std::time::Duration::from_millis(1))
    }

    /// The hold on this dispense's unit, if it has one now. A record that cannot
    /// be read is held: what cannot be read is unsafe (H-06).
    fn held(&self) -> Option<Violation> {
        let code = &self.status.unit.as_ref()?.code;
        match hold_on(&self.core.journal, code) {
            Ok(held) => held,
            Err(e) => {
                tracing::error!(dispense = %self.status.id, "journal: {e}; the unit is not given");
                Some(unreadable_record(&e))
            }
        }
    }

    fn confirmation_event(confirmation: Option<Confirmation>) -> Event {
        match confirmation {
            Some(Confirmation::Validated { .. }) => Event::Validated,
            Some(Confirmation::Administered { nurse_id, site }) => Event::Administered { nurse_id, site },
            // The dispatcher holds the sender for as long as the dispense is live.
            None => Event::Fault(DeviceError::new("dispatcher", hal::ErrorKind::NoResponse, "confirmation channel closed")),
        }
    }

    /// Settles the unit's record and frees the booth.
    async fn finish(&mut self, stage: Stage, why: Option<String>) -> Result<(), JournalError> {
        if let Some(unit) = self.status.unit.clone() {
            let record = self.core.journal.stock_record(&unit.code)?;
            let settled = match (stage, record.map(|r| (r.state, r.slot))) {
                (Stage::Administered, _) => Some(UnitState::Administered),
                // Refused at the booth: the nurse returns it; it is never used.
                (Stage::Rejected, Some((UnitState::Delivered, _))) => Some(UnitState::Rejected),
                // A pick that failed may have left the unit in its slot (refused) or
                // in the hatch (the belt never took it): ask the devices.
                (Stage::Failed, Some((UnitState::Picked, slot))) => Some(self.after_failed_pick(slot).await?),
                // A unit that left the store and did not end in a tray or the bin is
                // not where the records say: quarantine it until someone looks.
                (Stage::Failed, Some((UnitState::Delivered, _))) => Some(UnitState::Rejected),
                _ => None,
            };
            if let Some(state) = settled {
                self.core.journal.set_unit_state(&unit.code, state, &self.status.id)?;
            }
            if stage == Stage::Failed && self.taken_while_down() {
                self.core.journal.hold_unit(&unit.code, crate::rules::inventory::Hold::Quarantined, "taken from its tray while the controller was down; no administration confirmed: ask the nurse", "recovery")?;
            }
        }
        if stage == Stage::Administered || self.status.at_booth_at.is_some() {
            let shown = if stage == Stage::Rejected && self.status.at_booth_at.is_some() {
                // Refused in the tray: the guardian and the nurse read why it is not given.
                let why = why.unwrap_or_else(|| "refused at the booth".to_owned());
                let warning = BoothDisplay { patient_name: self.status.order.patient_name.clone(), product_name: format!("DO NOT GIVE: {why}"), lot: String::new(), expiry: String::new() };
                self.core.devices.booths.show(self.status.order.booth, &warning).await
            } else {
                self.core.devices.booths.clear(self.status.order.booth).await
            };
            if let Err(e) = shown {
                tracing::warn!(dispense = %self.status.id, "booth display not updated: {e}");
            }
        }
        self.booth_guard = None;
        Ok(())
    }

    /// Where a failed dispense's picked unit is: still in its slot (back in stock),
    /// in the hatch or on the belt (carried to the bin), or unknown (rejected:
    /// quarantined until someone looks).
    async fn after_failed_pick(&mut self, slot: hal::SlotAddress) -> Result<UnitState, JournalError> {
        let store = self.core.devices.store.clone();
        let (state, note) = if store.slot_occupied(slot).await.unwrap_or(false) {
            (UnitState::InStore, format!("the unit never left {slot}: back in stock"))
        } else if store.hatch().await.ok().flatten() == Some(self.carrier) {
            (UnitState::Rejected, match self.carry_failed_unit(true).await? {
                Ok(()) => "the unit was in the hatch: carried to the reject bin".to_owned(),
                Err(e) => format!("the unit is in the hatch and could not be binned ({e}): remove it by hand"),
            })
        } else if let Some(at) = self.core.devices.conveyor.units_on_belt().await.ok().and_then(|on| on.into_iter().find(|(c, _)| *c == self.carrier)) {
            // Left on the belt (its run failed): it must not block the stations behind it.
            (UnitState::Rejected, match self.carry_failed_unit(false).await? {
                Ok(()) => format!("the unit was left at {}: carried to the reject bin", at.1),
                Err(e) => format!("the unit is left at {} and could not be binned ({e}): remove it by hand", at.1),
            })
        } else {
            (UnitState::Rejected, "the unit is not in its slot or the hatch: quarantined until someone looks".to_owned())
        };
        self.journal(StepKind::Evidence, "unit found", &note)?;
        Ok(state)
    }

    /// Carries a failed dispense's unit to the bin as every motion goes: its intent
    /// journalled first, then sent only once every interlock is closed and no crew
    /// holds the machine (H-05: an e-stop pressed mid-pick leaves the unit in the
    /// hatch until it is released). A device that lost its reference (the power cut
    /// that failed the dispense) is homed and the carry repeated, so the unit does
    /// not stay where it blocks every later unit (found by `wssim hunt`, seed 38: a
    /// unit left at its gate sent the next ten for that booth to the bin).
    async fn carry_failed_unit(&mut self, in_hatch: bool) -> Result<Result<(), DeviceError>, JournalError> {
        let intended = self.core.journal.record_intent(&self.status.id, self.unit_code(), &Intent::Convey { to: Station::Reject })?;
        if in_hatch {
            if let Err(e) = self.motion(&intended, Motion::Release { carrier: self.carrier }).await? {
                return Ok(Err(e));
            }
        }
        self.motion(&intended, Motion::Convey { carrier: self.carrier, to: Station::Reject }).await
    }

    /// Waits until every interlock is closed and readable, pausing the workstation
    /// meanwhile. A device that does not answer is waited for like an open door
    /// (policy: wait for an operator): nothing moves until the safety chain can be read.
    async fn interlocks_closed(&mut self) -> Result<Result<(), DeviceError>, JournalError> {
        let mut paused = false;
        loop {
            let reason = if self.core.in_maintenance() {
                // Forced maintenance: the crew has the machine; this unit waits.
                Some("maintenance in progress".to_owned())
            } else {
                match self.core.devices.interlocks.read().await {
                    Ok(status) if status.all_closed() => None,
                    Ok(status) => Some(format!("{} open", status.open_names().join(", "))),
                    Err(e) if matches!(e.kind(), ErrorKind::Timeout | ErrorKind::NoResponse) => {
                        Some(format!("{} not answering ({})", e.device(), crate::ops::faults::DEVICE_SILENT.code))
                    }
                    Err(e) => return Ok(Err(e)),
                }
            };
            let Some(reason) = reason else {
                if paused {
                    self.core.workstation_event(WsEvent::InterlockClosed);
                    self.set_detail(String::new());
                }
                return Ok(Ok(()));
            };
            if !paused {
                self.core.workstation_event(WsEvent::InterlockOpened(reason.clone()));
                self.set_detail(format!("paused: {reason}"));
                self.journal(StepKind::Interlock, "waiting", &format!("waiting: {reason}"))?;
                paused = true;
            }
            tokio::time::sleep(self.core.settings.interlock_poll).await;
        }
    }
}

/// FNV-1a, 64 bits: a stable fingerprint of a frame's pixels (not a security hash;
/// it ties the journal's record to the frame a log or snapshot kept).
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

fn describe(event: &Event) -> String {
    match event {
        Event::Allocated(unit) => format!("Allocated {} from {}", unit.code, unit.slot),
        Event::Read(d) => format!("Read {} {}", d.symbology, d.code.canonical()),
        other => format!("{other:?}"),
    }
}
