//! The core every runner and the dispatcher share: the journal, the devices, the
//! catalog and settings, the station's locks, the workstation machine and its
//! published state, the live dispenses and the booths' picture, maintenance mode's
//! lease. A runner reports its end on `ended`; the dispatcher forgets it then.

use crate::dispense::cancel::CancelWindow;
use crate::dispense::confirmation::Confirmation;
use crate::dispense::locks::Locks;
use crate::dispense::streaks::Streaks;
use crate::dispense::status::{DispenseStatus, Stage};
use crate::dispense::workstation::{WorkstationMachine, WorkstationState, WsEvent};
use crate::journal::Journal;
use crate::motion::{Gate, Holder};
use crate::ops::telemetry::Telemetry;
use crate::rules::catalog::Catalog;
use crate::tasks::Tasks;
use chrono::Utc;
use hal::{BoothId, Devices};
use statig::blocking::IntoStateMachineExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Tunables of the controller.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Frames the scan station grabs before the unit is declared unreadable.
    pub scan_max_frames: u32,
    /// Frames that must read the same code before it is taken.
    pub scan_agree: u32,
    /// How long after a unit starts leaving the scan station the next may run in.
    pub scan_clearance: Duration,
    /// How often a paused runner looks at the interlocks again.
    pub interlock_poll: Duration,
    /// How long after verification the jab is expected (expiry and out-of-fridge
    /// limits are judged at that time, not at the scan).
    pub expected_to_jab: Duration,
    /// How long the guardian has to validate at the booth; then the unit is
    /// rejected (it has been out of refrigeration and cannot go back).
    pub validation_timeout: Duration,
    /// Units lost the same way in a row before picking stops (H-08).
    pub stop_picking_after: u32,
    /// Dispenses in progress at most; a new order beyond is refused until some end.
    pub max_in_flight: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            max_in_flight: 500,
            scan_max_frames: 8,
            scan_agree: 2,
            scan_clearance: Duration::from_secs(1),
            interlock_poll: Duration::from_millis(50),
            expected_to_jab: Duration::from_secs(10 * 60),
            validation_timeout: Duration::from_secs(10 * 60),
            stop_picking_after: 3,
        }
    }
}

/// A dispense in progress: its published status, where confirmations go, its
/// cancel window.
#[derive(Debug)]
pub(crate) struct Live {
    pub status: watch::Sender<DispenseStatus>,
    pub confirmations: mpsc::UnboundedSender<Confirmation>,
    pub cancel: Arc<CancelWindow>,
    /// Which confirmations were already passed to the runner: each is acted on
    /// once, however often the clinic sends it (H-03).
    pub validation_sent: std::sync::atomic::AtomicBool,
    pub administration_sent: std::sync::atomic::AtomicBool,
    /// Resumed with its tray empty (taken while the controller was down): the
    /// nurse's confirmation records a dose already given, whatever holds came since.
    pub taken_while_down: bool,
}

/// State shared by the dispatcher and every runner.
pub(crate) struct Core {
    pub journal: Arc<Journal>,
    pub devices: Devices,
    pub catalog: Catalog,
    pub settings: Settings,
    pub locks: Locks,
    /// Units lost the same way in a row (H-08).
    pub streaks: Streaks,
    /// Every task of this controller (runners, watches, timers).
    pub tasks: Tasks,
    pub telemetry: Telemetry,
    machine: Mutex<statig::blocking::StateMachine<WorkstationMachine>>,
    state_tx: watch::Sender<WorkstationState>,
    pub live: Mutex<HashMap<String, Live>>,
    /// Each booth's holder and queue, recomputed whenever a dispense changes.
    pub booths: watch::Sender<BoothsPicture>,
    /// Who holds maintenance mode, and until when.
    pub maintenance: Mutex<Option<MaintenanceLease>>,
    /// A runner sends its dispense's id here when the dispense has ended.
    pub ended: mpsc::UnboundedSender<String>,
    /// Set by a graceful stop: no new order, no new service motion.
    pub stopping: std::sync::atomic::AtomicBool,
    /// Motions sent through the gate and not yet done (what a graceful stop waits for).
    pub motions: std::sync::atomic::AtomicUsize,
}

/// Every booth, and when that picture came about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoothsPicture {
    pub changed_at: chrono::DateTime<Utc>,
    pub booths: Vec<BoothView>,
}

/// One booth as watchers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoothView {
    pub booth: BoothId,
    /// The dispense holding it (the one at the booth, else the one whose unit is on
    /// its way to the booth's gate or waits there), its stage and patient.
    pub holder: Option<BoothHolder>,
    /// Dispenses queued for it.
    pub waiting: u32,
}

/// The dispense holding a booth and whom it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoothHolder {
    pub dispense_id: String,
    pub stage: Stage,
    pub patient_id: String,
    pub patient_name: String,
}

/// Maintenance mode's lease: one crew member holds the workstation out of service
/// until it lapses (renewed by entering again) or they exit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaintenanceLease {
    pub holder: String,
    pub reason: String,
    pub expires_at: chrono::DateTime<Utc>,
    /// Bumped at each renewal, so an old expiry timer knows it is stale.
    pub(crate) generation: u64,
}

impl Core {
    /// A new core and the receiver of its runners' ends.
    pub fn new(journal: Arc<Journal>, devices: Devices, catalog: Catalog, settings: Settings) -> (Self, mpsc::UnboundedReceiver<String>) {
        let locks = Locks::new(devices.booths.count());
        let machine = WorkstationMachine::default().state_machine();
        let (state_tx, _) = watch::channel(machine.state().kind());
        let (ended, ends) = mpsc::unbounded_channel();
        let core = Self {
            devices,
            catalog,
            settings,
            locks,
            streaks: Streaks::default(),
            tasks: Tasks::default(),
            machine: Mutex::new(machine),
            state_tx,
            live: Mutex::new(HashMap::new()),
            booths: watch::channel(BoothsPicture { changed_at: journal.now(), booths: Vec::new() }).0,
            maintenance: Mutex::new(None),
            telemetry: Telemetry::new(journal.clone()),
            journal,
            ended,
            stopping: Default::default(),
            motions: Default::default(),
        };
        (core, ends)
    }

    pub fn workstation_event(&self, event: WsEvent) {
        let mut machine = lock(&self.machine);
        machine.handle(&event);
        let state = machine.state().kind();
        self.state_tx.send_if_modified(|current| std::mem::replace(current, state) != state);
    }

    /// The workstation's state now.
    pub fn state(&self) -> WorkstationState {
        *self.state_tx.borrow()
    }

    /// Wakes the watchers of the state (health) without a change of state: a
    /// graceful stop began.
    pub fn notify_state(&self) {
        self.state_tx.send_modify(|_| {});
    }

    /// The workstation's state, now and on every change.
    pub fn watch_state(&self) -> watch::Receiver<WorkstationState> {
        self.state_tx.subscribe()
    }

    /// Whether the workstation machine takes orders now.
    pub fn accepts_orders(&self) -> bool {
        lock(&self.machine).state().accepts_orders()
    }

    /// Recomputes the booths from the live dispenses and publishes a change.
    pub fn dispense_changed(&self) {
        // Held to the end, so two changes publish in the order they happened.
        let live = lock(&self.live);
        let statuses: Vec<DispenseStatus> = live.values().map(|l| l.status.borrow().clone()).collect();
        let mut views: Vec<BoothView> = (1..=self.devices.booths.count()).map(|b| BoothView { booth: BoothId(b), holder: None, waiting: 0 }).collect();
        for s in statuses {
            let Some(view) = views.iter_mut().find(|v| v.booth == s.order.booth) else { continue };
            let at_booth = matches!(s.stage, Stage::AwaitingValidation | Stage::AwaitingAdministration);
            match s.stage {
                Stage::Queued => view.waiting += 1,
                // The dispense at the booth holds it; the next one, on its way or at the gate, only if none is.
                stage if !stage.is_final() && (at_booth || view.holder.is_none()) => view.holder = Some(BoothHolder { dispense_id: s.id.clone(), stage, patient_id: s.order.patient_id.clone(), patient_name: s.order.patient_name.clone() }),
                _ => {}
            }
        }
        self.booths.send_if_modified(|current| {
            if current.booths == views {
                return false;
            }
            *current = BoothsPicture { changed_at: self.journal.now(), booths: views };
            true
        });
    }

    pub fn in_maintenance(&self) -> bool {
        self.state() == WorkstationState::Maintenance
    }

    pub fn in_flight(&self) -> usize {
        lock(&self.machine).inner().in_flight
    }

    /// Who holds maintenance mode, if the workstation is in it.
    pub fn lease(&self) -> Option<MaintenanceLease> {
        lock(&self.maintenance).clone().filter(|_| self.in_maintenance())
    }

    /// The gate every motion command passes (H-05).
    pub fn gate(&self) -> Gate<'_> {
        Gate::new(&self.devices, self)
    }
}

impl Holder for Core {
    fn crew(&self) -> Option<String> {
        self.lease().map(|l| l.holder)
    }

    fn stopping(&self) -> bool {
        self.stopping.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn motions(&self) -> Option<&std::sync::atomic::AtomicUsize> {
        Some(&self.motions)
    }
}

/// A std mutex's guard, taken even if a panicking holder poisoned it (the data is
/// plain and stays consistent).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
