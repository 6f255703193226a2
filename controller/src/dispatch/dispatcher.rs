//! The dispatcher: the controller's front door. It owns the [`Core`] the runners
//! share, forgets a dispense when its runner reports the end, and hands out the
//! controller's parts; orders, maintenance mode and stock are in their own files.

use crate::dispense::core::{BoothsPicture, Core, Settings, lock};
use crate::dispense::workstation::{WorkstationState, WsEvent};
use crate::dispatch::error::DispatchError;
use crate::journal::{Intent, Journal};
use crate::motion::{Authority, Motion, Mover};
use crate::ops::telemetry::Telemetry;
use crate::rules::catalog::Catalog;
use chrono::Utc;
use hal::codes::UnitCode;
use hal::Devices;
use std::sync::Arc;
use tokio::sync::watch;

/// The controller's front door for orders and confirmations.
#[derive(Clone)]
pub struct Dispatcher {
    pub(crate) core: Arc<Core>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher").field("state", &self.workstation_state()).finish_non_exhaustive()
    }
}


impl Dispatcher {
    pub fn new(journal: Arc<Journal>, devices: Devices, catalog: Catalog, settings: Settings) -> Self {
        let (core, mut ends) = Core::new(journal, devices, catalog, settings);
        let dispatcher = Self { core: Arc::new(core) };
        // Runners report their end here: forget the dispense, so the workstation
        // counts it out and the booths' picture drops it.
        let core = dispatcher.core.clone();
        dispatcher.core.tasks.spawn(async move {
            while let Some(id) = ends.recv().await {
                if let Some(live) = lock(&core.live).remove(&id) {
                    let status = live.status.borrow();
                    crate::ops::metrics::dispense_ended(status.stage.code(), status.violations.first().map(|v| v.id.as_str()));
                }
                core.workstation_event(WsEvent::DispenseEnded);
                core.dispense_changed();
            }
        });
        dispatcher.core.dispense_changed();
        dispatcher
    }

    /// Homes the picker, then the belt (so the hatch is clear), on `by`'s behalf,
    /// through the motion gate; the workstation accepts orders once this succeeds.
    pub async fn home(&self, by: Authority<'_>, why: &str) -> Result<(), DispatchError> {
        let both = [Motion::Home(Mover::Picker), Motion::Home(Mover::Belt)];
        let gate = self.core.gate();
        for motion in both {
            gate.check(by, motion).await?;
        }
        let intended = self.core.journal.note_intent(None, &Intent::Home, why)?;
        self.core.workstation_event(WsEvent::HomingStarted);
        match gate.send_all(by, &intended, &both).await {
            Ok(()) => {
                self.core.workstation_event(WsEvent::Homed);
                Ok(())
            }
            Err(e) => {
                self.core.workstation_event(WsEvent::HomingFailed(e.to_string()));
                Err(e.into())
            }
        }
    }

    /// Recovery is done and the resumed dispenses run: new orders are taken.
    pub fn recovered(&self) {
        self.core.workstation_event(WsEvent::Recovered);
    }

    /// The workstation's state, now and on every change.
    pub fn watch_state(&self) -> watch::Receiver<WorkstationState> {
        self.core.watch_state()
    }

    pub fn workstation_state(&self) -> WorkstationState {
        self.core.state()
    }

    /// The controller's background tasks (for the watches the daemon starts).
    pub fn tasks(&self) -> &crate::tasks::Tasks {
        &self.core.tasks
    }

    /// For scenario runs: stops this controller as a crash or a power cut would.
    /// Every task ends at its next await (the journal keeps what was written), the
    /// field devices stop receiving its heartbeat, and watchers of its dispenses see
    /// their streams end. A new controller on the same journal and devices recovers.
    pub fn stop_as_if_crashed(&self) {
        self.core.tasks.stop_all();
        for device in &self.core.devices.field {
            device.stop_heartbeat();
        }
        lock(&self.core.live).clear();
        // As the process's death would: the journal is free for the next controller.
        self.core.journal.give_up_claim();
    }

    /// Whether a graceful stop has begun: no new order, no new motion.
    pub fn is_stopping(&self) -> bool {
        self.core.stopping.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Stops the controller gracefully (SIGTERM, SIGINT): refuses new orders (health
    /// NOT_SERVING), lets the motions under way finish — no new one starts, so each
    /// unit comes to rest where the next start's recovery finds it (H-16) — for up
    /// to `deadline`, then ends every task, stops the devices' heartbeat and
    /// journals the stop. Returns how many dispenses were left in flight and
    /// whether every motion had finished.
    pub async fn stop_gracefully(&self, deadline: std::time::Duration) -> Result<(usize, bool), DispatchError> {
        self.core.stopping.store(true, std::sync::atomic::Ordering::SeqCst);
        self.core.notify_state();
        let in_flight = self.in_flight();
        self.core.journal.note(None, crate::journal::StepKind::Maintenance, "controller stopping", &format!("graceful stop: no new orders or motions; {in_flight} dispenses in flight"))?;
        let until = tokio::time::Instant::now() + deadline;
        while self.core.motions.load(std::sync::atomic::Ordering::SeqCst) > 0 && tokio::time::Instant::now() < until {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let settled = self.core.motions.load(std::sync::atomic::Ordering::SeqCst) == 0;
        self.core.tasks.stop_all();
        for device in &self.core.devices.field {
            device.stop_heartbeat();
        }
        // Watchers of the dispenses see their streams end (the next start resumes them).
        lock(&self.core.live).clear();
        let how = if settled { "every motion finished" } else { "motions still running at the deadline" };
        self.core.journal.note(None, crate::journal::StepKind::Maintenance, "controller stopped", &format!("graceful stop: {how}; {in_flight} dispenses left for the next start to resume"))?;
        self.core.journal.checkpoint()?;
        Ok((in_flight, settled))
    }

    /// Whether this controller is stopped (or, in simulation, died at a crash
    /// point): it acts on nothing more and refuses requests as not ready.
    pub fn is_stopped(&self) -> bool {
        self.core.tasks.stopped() || self.core.journal.crashed()
    }

    pub fn journal(&self) -> &Journal {
        &self.core.journal
    }

    /// The journal, shared: for streams that outlive the call that opened them.
    pub fn journal_handle(&self) -> std::sync::Arc<Journal> {
        self.core.journal.clone()
    }

    /// The time by the controller's clock (the journal's).
    pub fn now(&self) -> chrono::DateTime<Utc> {
        self.core.journal.now()
    }

    pub fn catalog(&self) -> &Catalog {
        &self.core.catalog
    }

    pub fn devices(&self) -> &Devices {
        &self.core.devices
    }

    pub fn telemetry(&self) -> &Telemetry {
        &self.core.telemetry
    }

    /// Each booth now and on every change.
    pub fn watch_booths(&self) -> watch::Receiver<BoothsPicture> {
        self.core.booths.subscribe()
    }

    /// Dispenses not yet finished.
    pub fn in_flight(&self) -> usize {
        self.core.in_flight()
    }

    pub(crate) fn require(fields: &[(&'static str, &str)]) -> Result<(), DispatchError> {
        match fields.iter().find(|(_, v)| v.trim().is_empty()) {
            Some((field, _)) => Err(DispatchError::InvalidArgument { field, reason: "is required".into() }),
            None => Ok(()),
        }
    }

    pub(crate) fn canonical(code: &str) -> Result<String, DispatchError> {
        UnitCode::parse(code).map(|c| c.canonical()).map_err(|e| DispatchError::InvalidArgument { field: "code", reason: e.to_string() })
    }
}
