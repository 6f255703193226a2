//! Runs one scenario: the whole controller (dispatcher, runners, journal, cold-chain
//! watch, fault board) driving the simulated workstation, on a paused tokio
//! runtime whose clock jumps from one timer to the next, so a clinic day takes as
//! long as the CPU needs for it. A simulated clinic places the orders and plays the
//! guardians and nurses.

use crate::clinic::Visit;
use crate::format::{Behaviour, DeviceLink, Scenario};
use crate::sampling::{Measure, Sample};
use anyhow::Context;
use chrono::{DateTime, Utc};
use controller::journal::clock::Clock;
use controller::config::Config;
use controller::assemble::{Assembled, assemble_on};
use hal::modbus::drivers::{WireConfig, WireDevices};
use hal::modbus::link::{LinkTiming, Transport};
use simulator::wire::{Endpoint, HardwareSim};
use controller::dispense::status::DispenseStatus;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The product catalog every scenario uses (the national schedule's products).
const CATALOG: &str = include_str!("../../config/catalog.toml");

/// How long the run waits with patients still waiting and no dispense ending
/// anywhere before it calls them stuck (counted as waiting): longer than any wait
/// the workstation means (a validation timeout, a unit's time out of the fridge, a
/// crew's coming), so a waiting patient is a stuck dispense, not a slow one.
const STALL: Duration = Duration::from_secs(3600);

/// The longest the run waits after the last arrival while dispenses still end (an
/// overloaded day drains its queue).
const MAX_SETTLE: Duration = Duration::from_secs(12 * 3600);

/// How a patient's visit ended, as the clinic counts it: every patient has exactly
/// one, so none vanishes from the figures (H-10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PatientOutcome {
    /// The dose was given.
    Given,
    /// The last dispense ended rejected (the guardian refused, a check failed and
    /// the re-orders ran out).
    Rejected,
    /// The last dispense failed.
    Failed,
    /// The clinic cancelled the order.
    Cancelled,
    /// The workstation refused the order itself.
    Refused,
    /// Still waiting when the run ended.
    Waiting,
}

impl PatientOutcome {
    pub const ALL: [PatientOutcome; 6] = [Self::Given, Self::Rejected, Self::Failed, Self::Cancelled, Self::Refused, Self::Waiting];

    pub fn name(self) -> &'static str {
        match self {
            Self::Given => "given",
            Self::Rejected => "rejected",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Refused => "refused",
            Self::Waiting => "waiting",
        }
    }

    /// A finished visit's outcome: refused if the workstation refused an order,
    /// else how its last dispense ended.
    fn of(finals: &[DispenseStatus], refused: bool) -> Self {
        use controller::dispense::status::Stage;
        match finals.last().map(|d| d.stage) {
            _ if refused => Self::Refused,
            Some(Stage::Administered) => Self::Given,
            Some(Stage::Rejected) => Self::Rejected,
            Some(Stage::Cancelled) => Self::Cancelled,
            _ => Self::Failed,
        }
    }
}

/// The run's raw results, for [`crate::measure`] and the reports.
#[derive(Debug)]
pub struct Raw {
    pub start: DateTime<Utc>,
    /// When the clinic opened (patients' arrival times count from here).
    pub opened_at: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub visits: Vec<Visit>,
    /// Each patient's outcome, in visit order.
    pub patients: Vec<PatientOutcome>,
    pub finals: Vec<DispenseStatus>,
    pub samples: Vec<Sample>,
    pub assembled: Assembled,
    /// The simulated workstation, its physical record the accounting compares with.
    pub sim: simulator::SimWorkstation,
    pub wall: Duration,
    /// The journal's folder, kept until the reports are written.
    pub dir: tempfile::TempDir,
    /// Chunks of bytes the line noise garbled (over the wire only).
    pub garbled_frames: u64,
    /// For each controller restart, the virtual seconds from starting the new
    /// controller to its taking orders again (homing and recovery included).
    pub restart_to_serving_s: Vec<f64>,
    /// The clinic's own record of what it ordered, by dispense id. The oracle
    /// judges the trays against this, not against the journal.
    pub ordered: BTreeMap<String, crate::clinic::Ordered>,
    /// The clinic's mistakes the workstation did not shrug off (see [`crate::clinic`]).
    pub mishandled: Vec<String>,
    /// The clinic's record of the doses it gave: dispense id → when the workstation
    /// took the nurse's administration (the jab).
    pub given: BTreeMap<String, DateTime<Utc>>,
    /// The virtual instant the simulator's machine clock counts from.
    pub sim_epoch: DateTime<Utc>,
    /// Each lot the pharmacy recalled, and when.
    pub recalls: Vec<(String, DateTime<Utc>)>,
}

impl Raw {
    /// The virtual instant of a reading of the simulator's machine clock (seconds
    /// since it started).
    pub fn machine_time(&self, machine_s: f64) -> DateTime<Utc> {
        self.sim_epoch + chrono::Duration::microseconds((machine_s * 1e6) as i64)
    }
}

/// Builds the patients: the explicit list, then the seeded arrival process.
pub fn visits(scenario: &Scenario, catalog: &controller::rules::catalog::Catalog, booths: u8, seed: u64) -> anyhow::Result<Vec<Visit>> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let youngest = |product: &str| -> anyhow::Result<u32> {
        let p = catalog.product(product).with_context(|| format!("patients: product {product:?} is not in the catalog"))?;
        Ok(p.min_age_days + 30)
    };
    let mut out = Vec::new();
    for p in &scenario.patients.list {
        out.push(Visit {
            number: 0,
            at: Duration::from_secs_f64(p.at_min * 60.0),
            age_days: match p.age_days {
                Some(a) => a,
                None => youngest(&p.product)?,
            },
            product: p.product.clone(),
            booth: p.booth.unwrap_or(0),
            behaviour: p.behaviour,
        });
    }
    if let Some(a) = &scenario.patients.arrivals {
        let total: f64 = a.mix.values().sum();
        let horizon = scenario.duration_h * 3600.0;
        let mut t = 0.0;
        loop {
            // Exponential gaps: a Poisson process of the given rate.
            t += -(1.0 - rng.random::<f64>()).ln() * 3600.0 / a.per_hour;
            if t >= horizon {
                break;
            }
            let mut pick = rng.random::<f64>() * total;
            let product = a.mix.iter().find(|(_, w)| {
                pick -= **w;
                pick <= 0.0
            });
            let product = product.map_or_else(|| a.mix.keys().next().cloned().unwrap_or_default(), |(p, _)| p.clone());
            let roll = rng.random::<f64>();
            let behaviour = if roll < a.no_show {
                Behaviour::NoShow
            } else if roll < a.no_show + a.refuses {
                Behaviour::Refuses
            } else if roll < a.no_show + a.refuses + a.cancels {
                Behaviour::Cancels
            } else {
                Behaviour::Normal
            };
            // Drawn only when asked for, so older scenarios keep their patients.
            let age_days = if a.ineligible > 0.0 && rng.random::<f64>() < a.ineligible { not_for(catalog, &product, &mut rng)? } else { youngest(&product)? };
            out.push(Visit { number: 0, at: Duration::from_secs_f64(t), age_days, product, booth: 0, behaviour });
        }
    }
    out.sort_by_key(|v| v.at);
    for (i, v) in out.iter_mut().enumerate() {
        v.number = i + 1;
        if v.booth == 0 {
            // Round robin: the clinic spreads patients over the booths.
            v.booth = (i % usize::from(booths.max(1))) as u8 + 1;
        }
    }
    Ok(out)
}

/// An age the product is not for: up to a month too young, or, for a product with
/// no lower age, up to a month past its upper age; a product for every age gets an
/// eligible one (nothing makes its patient ineligible by age).
fn not_for(catalog: &controller::rules::catalog::Catalog, product: &str, rng: &mut SmallRng) -> anyhow::Result<u32> {
    let p = catalog.product(product).with_context(|| format!("patients: product {product:?} is not in the catalog"))?;
    let by = rng.random_range(1..=30);
    Ok(match (p.min_age_days, p.max_age_days) {
        (min, _) if min > 0 => min.saturating_sub(by),
        (_, Some(max)) => max + by,
        (min, None) => min + 30,
    })
}

/// The workstation's config for a scenario, written into `dir`.
fn write_config(scenario: &Scenario, dir: &std::path::Path, seed: u64) -> anyhow::Result<Config> {
    std::fs::write(dir.join("catalog.toml"), CATALOG)?;
    let stock = toml::to_string(&scenario.stock).context("stock")?;
    let units = hal::manifest::parse(&stock).context("stock")?;
    std::fs::write(dir.join("stock.toml"), &stock)?;
    let mut simulator = match &scenario.workstation.simulator {
        Some(toml::Value::Table(t)) => t.clone(),
        Some(_) => anyhow::bail!("workstation.simulator must be a table"),
        None => toml::Table::new(),
    };
    let geometry = toml::Value::Table(simulator.clone()).try_into::<simulator::SimConfig>().context("workstation.simulator")?.geometry();
    if let Some(outside) = units.iter().find(|u| !geometry.contains(u.slot)) {
        anyhow::bail!("stock: slot {} is outside the store ({} racks x {} rows x {} columns)", outside.slot, geometry.racks, geometry.rows, geometry.columns);
    }
    // The virtual clock makes real time unnecessary: devices run at speed 1.
    simulator.insert("speed".into(), toml::Value::Float(1.0));
    simulator.insert("seed".into(), toml::Value::Integer(i64::try_from(seed).unwrap_or(i64::MAX)));
    // The booths stand in the simulated room: the controller's vial monitors charge
    // a unit waiting there at the room's temperature.
    let ambient = toml::Value::Table(simulator.clone()).try_into::<simulator::SimConfig>().context("workstation.simulator")?.ambient_celsius;
    let text = format!(
        "[site]\ntime_zone = \"{}\"\n[server]\nlisten = \"127.0.0.1:0\"\n[journal]\npath = \"journal.db\"\nhost_fsync = false\n[catalog]\npath = \"catalog.toml\"\n[stock]\nmanifest = \"stock.toml\"\n\
         [checks]\nvalidation_timeout_s = {}\n[coldchain]\nsample_s = {}\nambient_celsius = {ambient:?}\n[hardware]\nkind = \"simulated\"\n[hardware.simulator]\n{}\n\
         [[auth.tokens]]\nname = \"scenario\"\nrole = \"observer\"\nsha256 = \"{}\"\n",
        scenario.site.time_zone.name(),
        scenario.workstation.validation_timeout_s.unwrap_or(600),
        scenario.workstation.coldchain_sample_s.unwrap_or(60.0),
        toml::to_string(&simulator)?,
        "0".repeat(64)
    );
    std::fs::write(dir.join("ws.toml"), text)?;
    Config::load(&dir.join("ws.toml")).map_err(|e| anyhow::anyhow!("workstation: {e}"))
}

/// Runs the scenario to the end; `progress` is called with the virtual time passed.
pub fn run(scenario: &Scenario, seed: u64, progress: &(dyn Fn(Duration, usize, usize) + Sync)) -> anyhow::Result<Raw> {
    // One thread, virtual time, and tokio's own randomness (select! fairness, the
    // wake order of watch channels) seeded from the scenario's: a run replays exactly.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .rng_seed(tokio::runtime::RngSeed::from_bytes(&seed.to_le_bytes()))
        .build()?;
    let wall = std::time::Instant::now();
    let dir = tempfile::tempdir()?;
    let config = write_config(scenario, dir.path(), seed)?;
    let mut raw = runtime.block_on(drive(scenario, config, dir, seed, progress))?;
    raw.wall = wall.elapsed();
    Ok(raw)
}

async fn drive(scenario: &Scenario, config: Config, dir: tempfile::TempDir, seed: u64, progress: &(dyn Fn(Duration, usize, usize) + Sync)) -> anyhow::Result<Raw> {
    // The scenario's own opening, never the day of the run (its stock's expiry dates are absolute).
    let start = scenario.site.opening().map_err(anyhow::Error::msg)?;
    let clock = Clock::following_tokio(start);
    let sim = crate::rig::simulated_workstation(&config)?;
    let sim_epoch = clock.now();
    let hardware = match scenario.workstation.devices {
        DeviceLink::InProcess => None,
        DeviceLink::Wire => Some(HardwareSim::in_memory(sim.clone()).map_err(|e| anyhow::anyhow!("workstation.simulator: {e} (or set devices = \"in-process\")"))?),
    };
    let assembled = start_controller(config.clone(), clock.clone(), &sim, hardware.as_ref()).await?;
    let dispatcher = assembled.dispatcher.clone();
    // The controller the clinic talks to; a restart puts a new one here.
    let (current_tx, current) = tokio::sync::watch::channel(dispatcher.clone());
    let restarted: Arc<std::sync::Mutex<Option<Assembled>>> = Arc::default();
    let restart_times: Arc<std::sync::Mutex<Vec<f64>>> = Arc::default();
    let booths = dispatcher.devices().booths.count();
    let visits = visits(scenario, dispatcher.catalog(), booths, seed)?;
    let opened = tokio::time::Instant::now();
    let opened_at = dispatcher.now();

    for f in &scenario.faults {
        let (sim, hardware, fault, f) = (sim.clone(), hardware.clone(), f.fault.parse::<simulator::injection::Fault>().map_err(|e| anyhow::anyhow!("{e}"))?, f.clone());
        tokio::spawn(async move {
            if let Some(min) = f.at_min {
                tokio::time::sleep_until(opened + Duration::from_secs_f64(min * 60.0)).await;
            } else {
                // Events are counted by the simulator; look once a virtual second.
                let wanted = (f.on_pick.unwrap_or(u64::MAX), f.on_convey.unwrap_or(u64::MAX));
                loop {
                    let (picks, runs) = sim.motion_counts();
                    if picks >= wanted.0 || runs >= wanted.1 {
                        break;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
            // Line faults (noise, a silent or unplugged device, a power cut) act on the wire.
            let injected = match &hardware {
                Some(hardware) => hardware.inject(&fault),
                None => sim.inject(&fault),
            };
            if let Err(why) = injected {
                tracing::error!("scenario fault {:?} not applied: {why}", f.fault);
            }
        });
    }

    let current_tx = Arc::new(current_tx);
    // One crash and restart at a time: a second one due while the first controller
    // is still dying (waiting for its crash point) or down waits, then takes the
    // controller that came back — never starts a second controller beside it.
    let one_restart_at_a_time = Arc::new(tokio::sync::Mutex::new(()));
    // Each recall with when a controller took it (the oracle judges from then).
    let recalls: Arc<std::sync::Mutex<Vec<(String, DateTime<Utc>)>>> = Arc::default();
    for a in &scenario.actions {
        let (mut current, a) = (current.clone(), a.clone());
        let (current_tx, restarted, config, clock, sim, hardware) = (current_tx.clone(), restarted.clone(), config.clone(), clock.clone(), sim.clone(), hardware.clone());
        let (restart_times, one_restart_at_a_time, recalls) = (restart_times.clone(), one_restart_at_a_time.clone(), recalls.clone());
        tokio::spawn(async move {
            tokio::time::sleep_until(opened + Duration::from_secs_f64(a.at_min * 60.0)).await;
            if let Some(lot) = &a.recall_lot {
                recall(&mut current, lot, &a.reason, &recalls).await;
            }
            if let Some(code) = &a.clear_fault {
                crew_clears(&mut current, code).await;
            }
            if let Some(minutes) = a.maintenance_min {
                crew_visit(&current, &sim, minutes).await;
            }
            if let Some(after) = a.restart_controller_after_s {
                let _alone = one_restart_at_a_time.lock().await;
                let dying = current.borrow().clone();
                if let Some(commits) = a.crash_after_commits {
                    // Dies between two journal writes: wait for the crash point (a
                    // controller that writes nothing more for an hour dies then).
                    let fired = dying.journal().crash_after(commits);
                    let _ = tokio::time::timeout(Duration::from_secs(3600), fired.notified()).await;
                }
                dying.stop_as_if_crashed();
                tokio::time::sleep(Duration::from_secs_f64(after)).await;
                let restarting = tokio::time::Instant::now();
                match start_controller(config, clock, &sim, hardware.as_ref()).await {
                    Ok(assembled) => {
                        restart_times.lock().unwrap_or_else(|p| p.into_inner()).push(restarting.elapsed().as_secs_f64());
                        current_tx.send_replace(assembled.dispatcher.clone());
                        *restarted.lock().unwrap_or_else(|p| p.into_inner()) = Some(assembled);
                    }
                    Err(e) => tracing::error!("the controller did not come back: {e:#}"),
                }
            }
        });
    }

    let measure = Arc::new(Measure::start(current.clone(), Duration::from_secs(60)));
    let desk = crate::clinic::Desk {
        habits: Arc::new(scenario.clinic.clone()),
        validation_timeout: Duration::from_secs(config.checks.validation_timeout_s),
        sim: sim.clone(),
        seed,
        ordered: Arc::default(),
        mishandled: Arc::default(),
        given: Arc::default(),
        last_ended: Arc::new(std::sync::Mutex::new(opened)),
        booths: Arc::new((0..booths).map(|_| Arc::new(tokio::sync::Semaphore::new(1))).collect()),
    };
    let mut patients = Vec::new();
    for v in &visits {
        let (mut current, desk, v) = (current.clone(), desk.clone(), v.clone());
        patients.push(tokio::spawn(async move {
            tokio::time::sleep_until(opened + v.at).await;
            crate::clinic::visit(&mut current, &v, &desk).await
        }));
    }
    let arrivals_end = opened + Duration::from_secs_f64(scenario.duration_h * 3600.0);
    // The instant the patients still waiting count as stuck, if no dispense ends before.
    let stalled_at = || {
        let last_ended = *desk.last_ended.lock().unwrap_or_else(|p| p.into_inner());
        arrivals_end.max(last_ended + STALL).min(arrivals_end + MAX_SETTLE)
    };
    let total = patients.len();
    let mut finals = Vec::new();
    let mut outcomes = Vec::new();
    for mut handle in patients {
        // Once stalled, a patient who has finished still counts as finished (the
        // timeout looks at the task before the clock); one who has not is waiting.
        let joined = loop {
            match tokio::time::timeout_at(stalled_at(), &mut handle).await {
                Ok(joined) => break Ok(joined),
                Err(e) if stalled_at() <= tokio::time::Instant::now() => break Err(e),
                Err(_) => {}
            }
        };
        match joined {
            Ok(joined) => {
                let (visit_finals, refused) = joined.context("a patient's task failed")?;
                outcomes.push(PatientOutcome::of(&visit_finals, refused));
                finals.extend(visit_finals);
                progress(opened.elapsed(), finals.len(), total);
            }
            Err(_) => {
                tracing::warn!("no dispense ended for an hour with patients still waiting: stuck");
                handle.abort();
                outcomes.push(PatientOutcome::Waiting);
            }
        }
    }
    // Let the last units settle in the trays and the cold chain take a last sample.
    tokio::time::sleep(Duration::from_secs(120)).await;
    let samples = measure.stop();
    let end = dispatcher.now();
    // After a restart the figures and the accounting are the new controller's.
    let assembled = restarted.lock().unwrap_or_else(|p| p.into_inner()).take().unwrap_or(assembled);
    let garbled_frames = hardware.as_ref().map_or(0, |h| h.line(simulator::injection::Line::Store).corrupted() + h.line(simulator::injection::Line::Conveyor).corrupted());
    let restart_to_serving_s = restart_times.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let ordered = desk.ordered.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let mishandled = desk.mishandled.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let given = desk.given.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let recalls = recalls.lock().unwrap_or_else(|p| p.into_inner()).clone();
    Ok(Raw { start, opened_at, end, visits, patients: outcomes, finals, samples, assembled, sim: sim.clone(), wall: Duration::ZERO, dir, garbled_frames, restart_to_serving_s, ordered, mishandled, given, sim_epoch, recalls })
}

/// A maintenance crew's visit: maintenance entered (forced: units in flight wait),
/// the belt and the picker jogged there and back, the workstation handed back
/// after `minutes`. The simulator is told the crew is at work, and counts any
/// motion but their jogs that starts meanwhile. A visit the workstation refuses
/// (it is down, recovering, or homing) does not happen.
async fn crew_visit(current: &crate::clinic::Current, sim: &simulator::SimWorkstation, minutes: f64) {
    const CREW: &str = "scenario crew";
    let stay = Duration::from_secs_f64(minutes * 60.0);
    let dispatcher = current.borrow().clone();
    // The lease outlasts the visit: the crew hands the workstation back itself.
    if let Err(e) = dispatcher.enter_maintenance(CREW, "scheduled maintenance", stay + Duration::from_secs(600), true) {
        tracing::warn!("the crew could not enter maintenance: {e}");
        return;
    }
    sim.set_crew_present(true);
    for (axis, millimetres) in [(None, 20), (Some(hal::PickerAxis::X), 10), (None, -20), (Some(hal::PickerAxis::X), -10)] {
        if let Err(e) = dispatcher.jog(CREW, axis, millimetres).await {
            tracing::warn!("the crew's jog was refused: {e}");
        }
    }
    tokio::time::sleep(stay).await;
    sim.set_crew_present(false);
    // Handed back to whichever controller runs now (one may have restarted meanwhile).
    let dispatcher = current.borrow().clone();
    if let Err(e) = dispatcher.exit_maintenance(CREW, "maintenance done") {
        tracing::warn!("the crew could not hand the workstation back: {e}");
    }
}

/// A controller on the simulated devices: behind its Modbus drivers over the
/// in-memory lines with the real framing (the store on RTU, the conveyor on TCP)
/// when `hardware` is given, else on the device models directly; the camera is read
/// in process. Started again after a restart, it recovers from the journal.
/// How long a crew that cleared a fault stays on site: a controller that takes
/// over meanwhile (the one it cleared on died before the clearing was kept) has
/// the fault cleared again.
const CREW_STAYS: Duration = Duration::from_secs(600);

/// A crew clears every active fault `code` on the controller that is up (one that
/// is down is waited for, as the clinic waits), and again on any controller that
/// takes over while it is on site. Found by `wssim hunt` (seed 451): a clearing
/// sent to a dying controller was lost, the next one still had the streak fault, and
/// the workstation rightly waited for a crew that had already left.
async fn crew_clears(current: &mut crate::clinic::Current, code: &str) {
    let leaves = tokio::time::Instant::now() + CREW_STAYS;
    loop {
        let d = current.borrow_and_update().clone();
        if !d.is_stopped() {
            let board = &d.telemetry().faults;
            for fault in board.active().into_iter().filter(|f| f.code == code) {
                board.clear(&fault.id, Some(("scenario crew", "cleared in maintenance")));
            }
        }
        if !matches!(tokio::time::timeout_at(leaves, current.changed()).await, Ok(Ok(()))) {
            return;
        }
    }
}

/// The pharmacist's recall of `lot`, sent again to the next controller while the
/// one it reached is down or died taking it (a dead controller answers nothing: the
/// request fails), as the clinic does with its orders; recorded once taken.
async fn recall(current: &mut crate::clinic::Current, lot: &str, reason: &str, recalls: &std::sync::Mutex<Vec<(String, DateTime<Utc>)>>) {
    loop {
        let d = current.borrow_and_update().clone();
        match d.recall_batch(None, lot, reason, "scenario pharmacist") {
            Ok(held) => {
                recalls.lock().unwrap_or_else(|p| p.into_inner()).push((lot.to_owned(), d.now()));
                tracing::info!(lot, held, "batch recalled");
                return;
            }
            Err(e) if matches!(e, controller::dispatch::DispatchError::NotReady(_)) || d.is_stopped() => {
                if !matches!(tokio::time::timeout(crate::clinic::CONTROLLER_DOWN_WAIT, current.changed()).await, Ok(Ok(()))) {
                    tracing::error!("recall of {lot} failed: {e}; no controller came back to take it");
                    return;
                }
            }
            Err(e) => {
                tracing::error!("recall of {lot} failed: {e}");
                return;
            }
        }
    }
}

async fn start_controller(config: Config, clock: Clock, sim: &simulator::SimWorkstation, hardware: Option<&HardwareSim>) -> anyhow::Result<Assembled> {
    let Some(hardware) = hardware else {
        return assemble_on(config, clock, sim.devices()).await;
    };
    let port = |endpoint: &Endpoint| match endpoint {
        Endpoint::Memory(port) => Ok(Transport::Memory(port.clone())),
        other => Err(anyhow::anyhow!("expected an in-memory line, got {other:?}")),
    };
    let wire = WireConfig {
        store: port(hardware.store_endpoint())?,
        conveyor: port(hardware.conveyor_endpoint())?,
        camera: String::new(),
        booths: sim.config().booths,
        timing: LinkTiming::default(),
        job_deadline_s: 120.0,
    };
    let drivers = WireDevices::open(&wire);
    controller::assemble::check_who_answers(&drivers).await?;
    let devices = drivers.into_devices(sim.devices().camera.clone());
    assemble_on(config, clock, devices).await
}
