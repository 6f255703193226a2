//! The dispatcher: accepts orders (idempotently), starts a runner per dispense,
//! routes the clinic's confirmations, and answers questions about dispenses. It is
//! what the gRPC layer calls; it knows nothing of gRPC.

use crate::catalog::Catalog;
use crate::journal::{Created, Journal, JournalError};
use crate::order::{DispenseStatus, PatientOrder, Stage};
use crate::inventory::UnitState;
use crate::runner::{CancelWindow, Confirmation, DispenseRun};
use hal::codes::UnitCode;
use crate::telemetry::Telemetry;
use crate::workstation::{WorkstationMachine, WsEvent};
use chrono::Utc;
use hal::{BoothId, Devices};
use statig::blocking::IntoStateMachineExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Why a request was refused. `InvalidArgument` names the field.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("{field}: {reason}")]
    InvalidArgument { field: &'static str, reason: String },
    #[error("no dispense {0}")]
    NotFound(String),
    /// A unit, batch or hold that the journal does not have.
    #[error("{0}")]
    NoSuchStock(String),
    #[error(transparent)]
    Device(#[from] hal::DeviceError),
    #[error("request id {request_id} was already used for dispense {dispense_id} with a different order")]
    RequestIdReused { request_id: String, dispense_id: String },
    #[error("dispense {id} is {stage}, not {expected}")]
    WrongStage { id: String, stage: &'static str, expected: &'static str },
    #[error("dispense {id} is {stage}: only a queued dispense can be cancelled (once picked, a unit finishes its run; refuse it at validation)")]
    NotCancellable { id: String, stage: &'static str },
    #[error("the workstation is {0} and does not accept orders")]
    NotReady(&'static str),
    #[error("dispense {id}: do not give the unit: {why}; it is being rejected")]
    UnitHeld { id: String, why: String },
    #[error("maintenance mode is held by {holder} until {until}")]
    Locked { holder: String, until: chrono::DateTime<Utc> },
    #[error("{0} open: nothing moves until every interlock is closed")]
    InterlockOpen(String),
    #[error("the workstation is {state}; this needs it to be {wanted}")]
    WrongState { state: &'static str, wanted: &'static str },
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// Something that should not happen (e.g. an image that cannot be encoded).
    #[error("{0}")]
    Internal(String),
}

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
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            scan_max_frames: 8,
            scan_agree: 2,
            scan_clearance: Duration::from_secs(1),
            interlock_poll: Duration::from_millis(50),
            expected_to_jab: Duration::from_secs(10 * 60),
            validation_timeout: Duration::from_secs(10 * 60),
        }
    }
}

impl From<crate::stock::StockError> for DispatchError {
    fn from(e: crate::stock::StockError) -> Self {
        match e {
            crate::stock::StockError::Device(d) => DispatchError::Device(d),
            crate::stock::StockError::Journal(j) => DispatchError::Journal(j),
        }
    }
}

/// A dispense in progress: its published status and where confirmations go.
struct Live {
    status: watch::Sender<DispenseStatus>,
    confirmations: mpsc::UnboundedSender<Confirmation>,
    cancel: Arc<CancelWindow>,
}

/// State shared by the dispatcher and every runner.
pub(crate) struct Shared {
    pub journal: Arc<Journal>,
    pub devices: Devices,
    pub catalog: Catalog,
    pub settings: Settings,
    /// One dispense at each booth at a time: held from the drop into the tray until
    /// the dispense ends.
    pub booth_locks: HashMap<BoothId, Arc<tokio::sync::Mutex<()>>>,
    /// One unit on its way to each booth's gate, or waiting there: held from
    /// allocation until the unit leaves the gate. The next patient's unit is thus
    /// picked and travels while the patient before is served, and never two ahead.
    pub gate_locks: HashMap<BoothId, Arc<tokio::sync::Mutex<()>>>,
    /// One unit in the picker at a time.
    pub picker: tokio::sync::Mutex<()>,
    /// One runner homes a device that lost its reference (a power cut) at a time.
    pub homing: tokio::sync::Mutex<()>,
    /// Every task of this controller (runners, watches, timers).
    pub tasks: crate::tasks::Tasks,
    /// One unit at the scan station at a time: held from the run to the station
    /// until the unit leaves it.
    pub scan_station: Arc<tokio::sync::Mutex<()>>,
    /// Choosing and reserving a unit is one step, so two orders never get one unit.
    pub allocation: Mutex<()>,
    machine: Mutex<statig::blocking::StateMachine<WorkstationMachine>>,
    state_tx: watch::Sender<&'static str>,
    live: Mutex<HashMap<String, Live>>,
    pub telemetry: Telemetry,
    /// Each booth's holder and queue, recomputed whenever a dispense changes.
    booths: watch::Sender<BoothsPicture>,
    /// Who holds maintenance mode, and until when.
    maintenance: Mutex<Option<MaintenanceLock>>,
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
    pub holder: Option<(String, Stage, String)>,
    /// Dispenses queued for it.
    pub waiting: u32,
}

/// Maintenance mode's lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaintenanceLock {
    pub holder: String,
    pub reason: String,
    pub expires_at: chrono::DateTime<Utc>,
    /// Bumped at each renewal, so an old expiry timer knows it is stale.
    generation: u64,
}

impl Shared {
    pub fn workstation_event(&self, event: WsEvent) {
        let mut machine = lock(&self.machine);
        machine.handle(&event);
        let name = machine.state().name();
        self.state_tx.send_if_modified(|current| std::mem::replace(current, name) != name);
    }

    pub fn allocation_lock(&self) -> MutexGuard<'_, ()> {
        lock(&self.allocation)
    }

    /// Recomputes the booths from the live dispenses and publishes a change.
    pub fn dispense_changed(&self) {
        // Held to the end, so two changes publish in the order they happened.
        let live = lock(&self.live);
        let statuses: Vec<DispenseStatus> = live.values().map(|l| l.status.borrow().clone()).collect();
        let mut views: Vec<BoothView> = self.booth_locks.keys().map(|&booth| BoothView { booth, holder: None, waiting: 0 }).collect();
        views.sort_by_key(|v| v.booth);
        for s in statuses {
            let Some(view) = views.iter_mut().find(|v| v.booth == s.order.booth) else { continue };
            let at_booth = matches!(s.stage, Stage::AwaitingValidation | Stage::AwaitingAdministration);
            match s.stage {
                Stage::Queued => view.waiting += 1,
                // The dispense at the booth holds it; the next one, on its way or at the gate, only if none is.
                stage if !stage.is_final() && (at_booth || view.holder.is_none()) => view.holder = Some((s.id.clone(), stage, s.order.patient_name.clone())),
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
        *self.state_tx.borrow() == "maintenance"
    }

    pub fn in_flight(&self) -> usize {
        lock(&self.machine).inner().in_flight
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The controller's front door for orders and confirmations.
#[derive(Clone)]
pub struct Dispatcher {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher").field("state", &self.workstation_state()).finish_non_exhaustive()
    }
}

/// What `start` returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    pub dispense_id: String,
    pub duplicate: bool,
}

impl Dispatcher {
    pub fn new(journal: Arc<Journal>, devices: Devices, catalog: Catalog, settings: Settings) -> Self {
        let per_booth = || (1..=devices.booths.count()).map(|b| (BoothId(b), Arc::new(tokio::sync::Mutex::new(())))).collect::<HashMap<_, _>>();
        let (booth_locks, gate_locks) = (per_booth(), per_booth());
        let machine = WorkstationMachine::default().state_machine();
        let (state_tx, _) = watch::channel(machine.state().name());
        let dispatcher = Self {
            shared: Arc::new(Shared {
                devices,
                catalog,
                settings,
                booth_locks,
                gate_locks,
                picker: tokio::sync::Mutex::new(()),
                homing: tokio::sync::Mutex::new(()),
                tasks: crate::tasks::Tasks::default(),
                scan_station: Arc::new(tokio::sync::Mutex::new(())),
                allocation: Mutex::new(()),
                machine: Mutex::new(machine),
                state_tx,
                live: Mutex::new(HashMap::new()),
                booths: watch::channel(BoothsPicture { changed_at: journal.now(), booths: Vec::new() }).0,
                maintenance: Mutex::new(None),
                telemetry: Telemetry::new(journal.clone()),
                journal,
            }),
        };
        dispatcher.shared.dispense_changed();
        dispatcher
    }

    /// Homes the picker; the workstation accepts orders once this succeeds.
    pub async fn home(&self) -> Result<(), hal::DeviceError> {
        self.shared.workstation_event(WsEvent::HomingStarted);
        let devices = &self.shared.devices;
        // Picker and belt home one after the other: the picker first, so the hatch is clear.
        let homed = match devices.store.home().await {
            Ok(()) => devices.conveyor.home().await,
            Err(e) => Err(e),
        };
        match homed {
            Ok(()) => {
                self.shared.workstation_event(WsEvent::Homed);
                Ok(())
            }
            Err(e) => {
                self.shared.workstation_event(WsEvent::HomingFailed(e.to_string()));
                Err(e)
            }
        }
    }

    /// The workstation state's name, now and on every change.
    pub fn watch_state(&self) -> watch::Receiver<&'static str> {
        self.shared.state_tx.subscribe()
    }

    pub fn workstation_state(&self) -> &'static str {
        *self.shared.state_tx.borrow()
    }

    /// The controller's background tasks (for the watches the daemon starts).
    pub fn tasks(&self) -> &crate::tasks::Tasks {
        &self.shared.tasks
    }

    /// For scenario runs: stops this controller as a crash or a power cut would.
    /// Every task ends at its next await (the journal keeps what was written), the
    /// field devices stop receiving its heartbeat, and watchers of its dispenses see
    /// their streams end. A new controller on the same journal and devices recovers.
    pub fn stop_as_if_crashed(&self) {
        self.shared.tasks.stop_all();
        for device in &self.shared.devices.field {
            device.stop_heartbeat();
        }
        lock(&self.shared.live).clear();
    }

    pub fn journal(&self) -> &Journal {
        &self.shared.journal
    }

    /// The time by the controller's clock (the journal's).
    pub fn now(&self) -> chrono::DateTime<Utc> {
        self.shared.journal.now()
    }

    pub fn catalog(&self) -> &Catalog {
        &self.shared.catalog
    }

    pub fn devices(&self) -> &Devices {
        &self.shared.devices
    }

    /// The stock count: the store's slot sensors against the journal, and units
    /// expiring within `warn_days`.
    pub async fn stock_count(&self, warn_days: i64) -> Result<crate::stock::CountReport, DispatchError> {
        let today = self.now().date_naive();
        crate::stock::count(self.shared.devices.store.as_ref(), &self.shared.journal, today, warn_days).await.map_err(DispatchError::from)
    }

    /// Takes the workstation out of service under `actor`'s lock, which lapses after
    /// `timeout` unless renewed (the holder entering again renews it). Refused with
    /// units in flight unless `force`d: their motions then wait until maintenance ends.
    pub fn enter_maintenance(&self, actor: &str, reason: &str, timeout: Duration, force: bool) -> Result<MaintenanceLock, DispatchError> {
        Self::require(&[("actor", actor), ("reason", reason)])?;
        let mut held = lock(&self.shared.maintenance);
        if let Some(current) = held.as_mut().filter(|_| self.shared.in_maintenance()) {
            if current.holder != actor {
                return Err(DispatchError::Locked { holder: current.holder.clone(), until: current.expires_at });
            }
            current.expires_at = self.now() + chrono::Duration::from_std(timeout).unwrap_or_default();
            current.generation += 1;
            let renewed = current.clone();
            drop(held);
            self.arm_expiry(&renewed, timeout);
            return Ok(renewed);
        }
        let event = if force { WsEvent::MaintenanceForced(actor.to_owned()) } else { WsEvent::MaintenanceEntered(actor.to_owned()) };
        self.shared.workstation_event(event);
        if !self.shared.in_maintenance() {
            let wanted = if force { "ready, dispensing, paused or faulted" } else { "ready or faulted, with nothing in flight (or forced, with a reason)" };
            return Err(DispatchError::WrongState { state: self.workstation_state(), wanted });
        }
        let in_flight = self.shared.in_flight();
        let entered = MaintenanceLock {
            holder: actor.to_owned(),
            reason: reason.to_owned(),
            expires_at: self.now() + chrono::Duration::from_std(timeout).unwrap_or_default(),
            generation: 0,
        };
        *held = Some(entered.clone());
        drop(held);
        let forced = if force && in_flight > 0 { format!(" (forced with {in_flight} in flight)") } else { String::new() };
        self.shared.journal.note(None, "maintenance", "entered", &format!("{reason}{forced}; by {actor}, lock for {} s", timeout.as_secs()))?;
        self.arm_expiry(&entered, timeout);
        Ok(entered)
    }

    /// Ends maintenance when the lock lapses, unless it was renewed or released.
    fn arm_expiry(&self, armed: &MaintenanceLock, timeout: Duration) {
        let (dispatcher, armed) = (self.clone(), armed.clone());
        self.shared.tasks.spawn(async move {
            tokio::time::sleep(timeout).await;
            let still = lock(&dispatcher.shared.maintenance).as_ref().is_some_and(|l| l.generation == armed.generation && l.holder == armed.holder);
            if still && dispatcher.shared.in_maintenance() {
                tracing::warn!(holder = armed.holder, "maintenance lock lapsed; back in service");
                if let Err(e) = dispatcher.exit_maintenance(&armed.holder, "lock lapsed") {
                    tracing::error!("maintenance lock lapsed but could not exit: {e}");
                }
            }
        });
    }

    /// Who holds maintenance mode, if the workstation is in it.
    pub fn maintenance_lock(&self) -> Option<MaintenanceLock> {
        lock(&self.shared.maintenance).clone().filter(|_| self.shared.in_maintenance())
    }

    /// Returns to service; only the lock's holder may.
    pub fn exit_maintenance(&self, actor: &str, note: &str) -> Result<&'static str, DispatchError> {
        Self::require(&[("actor", actor)])?;
        self.require_lock(actor)?;
        *lock(&self.shared.maintenance) = None;
        self.shared.workstation_event(WsEvent::MaintenanceExited);
        self.shared.journal.note(None, "maintenance", "exited", &format!("{note}; by {actor}"))?;
        Ok(self.workstation_state())
    }

    /// In maintenance mode under `actor`'s lock, or why not.
    pub fn require_lock(&self, actor: &str) -> Result<(), DispatchError> {
        match self.maintenance_lock() {
            None => Err(DispatchError::WrongState { state: self.workstation_state(), wanted: "in maintenance mode" }),
            Some(l) if l.holder != actor => Err(DispatchError::Locked { holder: l.holder, until: l.expires_at }),
            Some(_) => Ok(()),
        }
    }

    /// Every interlock closed and readable, or why not (maintenance motions).
    pub async fn require_interlocks_closed(&self) -> Result<(), DispatchError> {
        let interlocks = self.shared.devices.interlocks.read().await?;
        if interlocks.all_closed() {
            return Ok(());
        }
        Err(DispatchError::InterlockOpen(interlocks.open_names().join(", ")))
    }

    /// Homes picker and belt in maintenance mode (e.g. after a power cut or a jam).
    pub async fn maintenance_home(&self, actor: &str) -> Result<(), DispatchError> {
        self.require_lock(actor)?;
        self.require_interlocks_closed().await?;
        self.shared.journal.note(None, "maintenance", "home", &format!("by {actor}"))?;
        self.home().await?;
        Ok(())
    }

    /// Jogs an axis in maintenance mode; `None` is the belt.
    pub async fn jog(&self, actor: &str, axis: Option<hal::PickerAxis>, millimetres: i32) -> Result<(), DispatchError> {
        self.require_lock(actor)?;
        let limit = if axis.is_some() { hal::JOG_LIMIT_PICKER_MM } else { hal::JOG_LIMIT_BELT_MM };
        if millimetres == 0 || millimetres.abs() > limit {
            return Err(DispatchError::InvalidArgument { field: "distance_mm", reason: format!("{millimetres} mm: must be 1 to {limit} mm either way") });
        }
        self.require_interlocks_closed().await?;
        let what = axis.map_or_else(|| "belt".to_owned(), |a| format!("picker {a:?}"));
        self.shared.journal.note(None, "maintenance", "jog", &format!("{what} {millimetres} mm by {actor}"))?;
        match axis {
            Some(a) => self.shared.devices.store.jog(a, millimetres).await?,
            None => self.shared.devices.conveyor.jog(millimetres).await?,
        }
        Ok(())
    }

    pub fn telemetry(&self) -> &Telemetry {
        &self.shared.telemetry
    }

    /// Each booth now and on every change.
    pub fn watch_booths(&self) -> watch::Receiver<BoothsPicture> {
        self.shared.booths.subscribe()
    }

    /// Dispenses not yet finished.
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight()
    }

    /// Carries a held unit from its slot to the reject bin; only in maintenance mode
    /// and never with an interlock open.
    pub async fn eject_held(&self, code: &str, actor: &str) -> Result<(), DispatchError> {
        Self::require(&[("code", code), ("actor", actor)])?;
        self.require_lock(actor)?;
        let code = Self::canonical(code)?;
        let record = self.shared.journal.stock_record(&code)?.ok_or_else(|| DispatchError::NoSuchStock(format!("unit {code} is not in the journal")))?;
        if record.hold.is_none() || record.state != UnitState::InStore {
            return Err(DispatchError::NoSuchStock(format!("unit {code} is not a held unit in the store")));
        }
        let devices = &self.shared.devices;
        self.require_interlocks_closed().await?;
        // Maintenance carriers live far above dispense numbers.
        let carrier = hal::TrackingId(3_000_000_000 + u64::from(self.now().timestamp_subsec_millis()));
        self.shared.journal.note(Some(&code), "intent", "Eject", &format!("from {} by {actor}", record.slot))?;
        devices.store.pick_to_hatch(record.slot, carrier).await?;
        devices.store.release_to_belt(carrier).await?;
        devices.conveyor.convey(carrier, hal::Station::Reject).await?;
        self.shared.journal.set_unit_state(&code, UnitState::Rejected, "maintenance")?;
        self.shared.journal.note(Some(&code), "outcome", "Ejected", &format!("in the reject bin; by {actor}"))?;
        Ok(())
    }

    /// Stock-in of a delivery at the restock door.
    pub async fn stock_in(&self, delivery: &crate::stock::Delivery, actor: &str) -> Result<crate::stock::StockInReport, DispatchError> {
        Self::require(&[("actor", actor), ("lot", &delivery.lot), ("note", &delivery.note)])?;
        if delivery.codes.is_empty() {
            return Err(DispatchError::InvalidArgument { field: "codes", reason: "a delivery has at least one unit".into() });
        }
        let today = self.now().date_naive();
        crate::stock::stock_in(&self.shared.journal, &self.shared.catalog, self.shared.devices.store.as_ref(), delivery, today, actor).await.map_err(DispatchError::from)
    }

    /// Recalls a batch; every unit not yet given is held and never picked.
    pub fn recall_batch(&self, gtin: Option<&str>, lot: &str, reason: &str, actor: &str) -> Result<usize, DispatchError> {
        Self::require(&[("lot", lot), ("reason", reason), ("actor", actor)])?;
        match crate::stock::recall_batch(&self.shared.journal, gtin, lot, reason, actor)? {
            0 => Err(DispatchError::NoSuchStock(format!("no unit of batch {lot} is in stock or on its way"))),
            held => Ok(held),
        }
    }

    pub fn quarantine_unit(&self, code: &str, reason: &str, actor: &str) -> Result<(), DispatchError> {
        Self::require(&[("code", code), ("reason", reason), ("actor", actor)])?;
        let code = Self::canonical(code)?;
        if self.shared.journal.stock_record(&code)?.is_none() {
            return Err(DispatchError::NoSuchStock(format!("unit {code} is not in the journal")));
        }
        Ok(crate::stock::quarantine_unit(&self.shared.journal, &code, reason, actor)?)
    }

    /// Lifts a hold after review (e.g. a pharmacist clears a cold-chain exposure).
    pub fn release_hold(&self, code: &str, reason: &str, actor: &str) -> Result<(), DispatchError> {
        Self::require(&[("code", code), ("reason", reason), ("actor", actor)])?;
        let code = Self::canonical(code)?;
        if !self.shared.journal.release_hold(&code, reason, actor)? {
            return Err(DispatchError::NoSuchStock(format!("unit {code} is not on hold")));
        }
        Ok(())
    }

    fn require(fields: &[(&'static str, &str)]) -> Result<(), DispatchError> {
        match fields.iter().find(|(_, v)| v.trim().is_empty()) {
            Some((field, _)) => Err(DispatchError::InvalidArgument { field, reason: "is required".into() }),
            None => Ok(()),
        }
    }

    fn canonical(code: &str) -> Result<String, DispatchError> {
        UnitCode::parse(code).map(|c| c.canonical()).map_err(|e| DispatchError::InvalidArgument { field: "code", reason: e.to_string() })
    }

    /// Accepts an order. The same request id with the same order returns the same
    /// dispense and starts nothing.
    pub fn start(&self, request_id: &str, order: PatientOrder) -> Result<Started, DispatchError> {
        self.validate(request_id, &order)?;
        if self.shared.tasks.stopped() {
            // Stopped as if crashed: nothing would run the order.
            return Err(DispatchError::NotReady("stopped"));
        }
        let state = self.workstation_state();
        let accepts = lock(&self.shared.machine).state().accepts_orders();
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
        };
        // A retry of an accepted order must find its dispense even while the
        // workstation is paused or faulted, so readiness is checked for new ids only.
        if !accepts && self.shared.journal.find_request(request_id)?.is_none() {
            return Err(DispatchError::NotReady(state));
        }
        // create_dispense is one transaction: concurrent retries find one dispense.
        match self.shared.journal.create_dispense(request_id, &status)? {
            Created::Existing(id) => Ok(Started { dispense_id: id, duplicate: true }),
            Created::Conflict(id) => Err(DispatchError::RequestIdReused { request_id: request_id.to_owned(), dispense_id: id }),
            Created::New(id) => {
                let status = DispenseStatus { id: id.clone(), ..status };
                let (status_tx, _) = watch::channel(status.clone());
                let (confirm_tx, confirm_rx) = mpsc::unbounded_channel();
                let cancel = Arc::new(CancelWindow::default());
                lock(&self.shared.live).insert(id.clone(), Live { status: status_tx.clone(), confirmations: confirm_tx, cancel: cancel.clone() });
                self.shared.workstation_event(WsEvent::DispenseStarted);
                self.shared.dispense_changed();
                let run = DispenseRun::new(self.shared.clone(), status, status_tx, confirm_rx, cancel);
                self.shared.tasks.spawn(run.run());
                Ok(Started { dispense_id: id, duplicate: false })
            }
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
        if self.shared.catalog.product(&order.product_id).is_none() {
            let known: Vec<&str> = self.shared.catalog.products.iter().map(|p| p.id.as_str()).collect();
            return invalid("order.product_id", format!("{:?} is not in the catalog (known: {})", order.product_id, known.join(", ")));
        }
        let booths = self.shared.devices.booths.count();
        if order.booth.0 == 0 || order.booth.0 > booths {
            return invalid("order.booth", format!("{} is not a booth of this workstation (1 to {booths})", order.booth.0));
        }
        if order.dose_number == 0 {
            return invalid("order.dose_number", "starts at 1".into());
        }
        let today = self.now().date_naive();
        if order.birth_date > today {
            return invalid("order.birth_date", format!("{} is in the future", order.birth_date));
        }
        for (i, dose) in order.history.iter().enumerate() {
            if self.shared.catalog.product(&dose.product_id).is_none() {
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
        if let Some(live) = lock(&self.shared.live).get(id) {
            return Ok(live.status.borrow().clone());
        }
        self.shared.journal.dispense(id)?.ok_or_else(|| DispatchError::NotFound(id.to_owned()))
    }

    /// Every dispense in progress, oldest first.
    pub fn queue(&self) -> Vec<DispenseStatus> {
        let mut all: Vec<DispenseStatus> = lock(&self.shared.live).values().map(|l| l.status.borrow().clone()).collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    /// A receiver of the dispense's status changes; `None` inside means it is finished
    /// and only the journal's final status remains.
    pub fn watch(&self, id: &str) -> Result<Watch, DispatchError> {
        if let Some(live) = lock(&self.shared.live).get(id) {
            return Ok(Watch::Live(live.status.subscribe()));
        }
        Ok(Watch::Finished(self.get(id)?))
    }

    /// The guardian validated; `booth_scan` is the code read again at the booth, if any.
    pub fn confirm_validation(&self, id: &str, booth_scan: Option<&str>) -> Result<(), DispatchError> {
        let booth_scan = booth_scan
            .map(|text| UnitCode::parse(text).map_err(|e| DispatchError::InvalidArgument { field: "booth_scan", reason: e.to_string() }))
            .transpose()?;
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
        let live = lock(&self.shared.live).get(id).map(|l| (l.cancel.clone(), l.status.subscribe()));
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

    fn confirm(&self, id: &str, expected: Stage, confirmation: Confirmation) -> Result<(), DispatchError> {
        let live = lock(&self.shared.live);
        let Some(dispense) = live.get(id) else {
            let status = self.shared.journal.dispense(id)?.ok_or_else(|| DispatchError::NotFound(id.to_owned()))?;
            return Err(DispatchError::WrongStage { id: id.to_owned(), stage: status.stage.describe(), expected: expected.describe() });
        };
        let (stage, unit) = {
            let status = dispense.status.borrow();
            (status.stage, status.unit.as_ref().map(|u| u.code.clone()))
        };
        if stage != expected {
            return Err(DispatchError::WrongStage { id: id.to_owned(), stage: stage.describe(), expected: expected.describe() });
        }
        // A unit put on hold at the booth is not given; its runner rejects it.
        if let Some(held) = unit.map(|code| crate::runner::hold_on(&self.shared.journal, &code)).transpose()?.flatten() {
            return Err(DispatchError::UnitHeld { id: id.to_owned(), why: held.message });
        }
        dispense
            .confirmations
            .send(confirmation)
            .map_err(|_| DispatchError::WrongStage { id: id.to_owned(), stage: "finishing", expected: expected.describe() })
    }

    /// Called by a runner when its dispense has ended.
    pub(crate) fn forget(shared: &Shared, id: &str) {
        lock(&shared.live).remove(id);
        shared.workstation_event(WsEvent::DispenseEnded);
        shared.dispense_changed();
    }
}

/// A watch on a dispense.
#[derive(Debug)]
pub enum Watch {
    Live(watch::Receiver<DispenseStatus>),
    Finished(DispenseStatus),
}
