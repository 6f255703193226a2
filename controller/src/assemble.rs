//! Assembles a workstation from its config (catalog, journal, devices, dispatcher):
//! starts the cold-chain watch and the supervisor ([`prepare`]); then
//! ([`Assembled::start`]) waits for motions a stopped run left going, homes, and
//! recovers what it left unfinished, resuming what it can. The daemon serves its
//! API between the two, so health says NOT_SERVING while it recovers.

use crate::config::{Config, HardwareConfig};
use crate::dispatch::{DispatchError, Dispatcher, Settings};
use crate::journal::Journal;
use crate::journal::clock::Clock;
use crate::rules::catalog::Catalog;
use anyhow::Context;
use hal::modbus::drivers::{WireConfig, WireDevices};
use std::sync::Arc;
use std::time::Duration;

/// A workstation ready to serve.
#[derive(Debug)]
pub struct Assembled {
    pub dispatcher: Dispatcher,
    pub config: Config,
    /// The event feed, when `[events]` names a broker.
    pub feed: Option<crate::feed::FeedHandle>,
}

/// Opens the devices the config names (field devices over their wires and the
/// camera), imports the loading manifest, homes and recovers. A config for
/// in-process simulated hardware is refused: only the simulation side can build
/// those devices (see [`assemble_on`]).
pub async fn assemble(config: Config) -> anyhow::Result<Assembled> {
    let assembled = prepare(config).await?;
    assembled.start().await?;
    Ok(assembled)
}

/// [`assemble`] up to homing: the devices open, the journal and the watches
/// running, nothing moved yet; [`Assembled::start`] does the rest.
pub async fn prepare(config: Config) -> anyhow::Result<Assembled> {
    let devices = match &config.hardware {
        HardwareConfig::Wire { devices, frame_timeout_ms } => open_wire(devices, *frame_timeout_ms).await?,
        HardwareConfig::Simulated { .. } => anyhow::bail!(
            "[hardware] kind = \"simulated\": the workstation binary drives real devices only; run this config with `wssim serve --config FILE` (the simulator in process), or point [hardware] at a devices file (kind = \"wire\")"
        ),
    };
    prepare_on(config, Clock::system(), devices)
}

/// [`assemble`] on devices the caller has built (simulated models, or field
/// devices over in-memory Modbus lines), going by `clock` (a scenario's virtual
/// day, or the system's).
pub async fn assemble_on(config: Config, clock: Clock, devices: hal::Devices) -> anyhow::Result<Assembled> {
    let assembled = prepare_on(config, clock, devices)?;
    assembled.start().await?;
    Ok(assembled)
}

/// [`assemble_on`] up to homing (call within a runtime: it starts the watches).
pub fn prepare_on(config: Config, clock: Clock, devices: hal::Devices) -> anyhow::Result<Assembled> {
    let clock = clock.in_zone(config.site.time_zone);
    let catalog = Catalog::load(&config.catalog.path)?;
    let manifest = load_manifest(&config)?;
    if let Some(dir) = config.journal.path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create journal folder {}", dir.display()))?;
    }
    let journal = Arc::new(Journal::open_with(&config.journal.path, clock, config.journal.host_fsync).with_context(|| format!("journal {}", config.journal.path.display()))?);
    // Before anything is read from it: one controller per journal (H-21).
    journal.claim(&config.journal.path)?;
    // Before the first event (the manifest's stock-in): with a feed, every event goes to the outbox.
    if config.events.is_some() {
        journal.enable_outbox();
    }
    let added = journal.import_manifest(&manifest)?;
    tracing::info!(added, total = manifest.len(), "loading manifest imported");
    let settings = Settings {
        scan_max_frames: config.scan.max_frames,
        scan_agree: config.scan.agree,
        scan_clearance: Duration::from_secs_f64(config.scan.clearance_s),
        expected_to_jab: Duration::from_secs(config.checks.expected_to_jab_s),
        validation_timeout: Duration::from_secs(config.checks.validation_timeout_s),
        stop_picking_after: config.checks.stop_picking_after,
        max_in_flight: config.server.limits.max_in_flight,
        ..Settings::default()
    };
    let dispatcher = Dispatcher::new(journal.clone(), devices.clone(), catalog.clone(), settings);
    let telemetry = dispatcher.telemetry().clone();
    let catalog = Arc::new(catalog);
    let feed = match &config.events {
        Some(events) => {
            let feed = crate::feed::Feed { journal: journal.clone(), catalog: catalog.clone(), faults: telemetry.faults.clone(), config: events.clone() };
            let handle = feed.spawn().context("[events]")?;
            telemetry.attach_feed(handle.state());
            Some(handle)
        }
        None => None,
    };
    crate::coldchain::watch::spawn(dispatcher.tasks(), devices.clone(), journal, catalog, config.coldchain.clone(), telemetry.clone());
    crate::ops::telemetry::supervise(dispatcher.tasks(), devices, telemetry.faults, SUPERVISION_PERIOD);
    Ok(Assembled { dispatcher, config, feed })
}

impl Assembled {
    /// Waits for motions a stopped run left going, homes, and recovers what it left
    /// unfinished (H-16): the workstation is `recovering` (no new orders, health
    /// NOT_SERVING) until the resumed dispenses are running again.
    pub async fn start(&self) -> anyhow::Result<()> {
        let dispatcher = &self.dispatcher;
        // A crew still at work when the last run stopped keeps the machine: nothing
        // below moves until they hand it back (H-19).
        dispatcher.resume_maintenance().context("reading the maintenance lease")?;
        // A motion the previous run left going must end before anything else moves.
        let t = std::time::Instant::now();
        crate::dispense::recovery::wait_until_still(dispatcher.devices(), Duration::from_secs(120)).await.context("waiting for the devices to stop")?;
        let waited = t.elapsed();
        // Homing resets a device's power-loss alarm: ask first whether they kept track.
        let tracking_kept = crate::dispense::recovery::tracking_kept(dispatcher.devices()).await;
        // The motion gate refuses homing while an interlock is open: wait for it
        // rather than give up (found by `wssim hunt`, seed 73: a restart during an
        // open light curtain never came back).
        let t = std::time::Instant::now();
        loop {
            until_homing_may_start(dispatcher).await;
            match dispatcher.home(crate::motion::Authority::Service, "start-up").await {
                Ok(()) => break,
                // An interlock opened (or a crew took the machine) between the wait
                // and the motion: wait again rather than give up (found by `wssim
                // hunt`, seed 451: an e-stop pressed as the restarted controller
                // homed kept the workstation down for good).
                Err(e @ (DispatchError::InterlockOpen(_) | DispatchError::MotionRefused(_))) => tracing::warn!("start-up: homing refused ({e}); waiting again"),
                Err(DispatchError::Device(e)) if e.kind() == hal::ErrorKind::Interlock => tracing::warn!("start-up: homing refused by a device ({e}); waiting again"),
                Err(e) => return Err(anyhow::Error::new(e).context("homing the picker and the belt")),
            }
        }
        let homing = t.elapsed();
        // Settle what the last run left unfinished before any new order is taken.
        let started = std::time::Instant::now();
        let mut report = crate::dispense::recovery::recover(dispatcher.journal(), dispatcher.devices(), tracking_kept).await.context("recovery")?;
        let resumed = std::mem::take(&mut report.resumed);
        let resumed_count = resumed.len();
        dispatcher.resume(resumed);
        dispatcher.recovered();
        tracing::info!(
            waited_ms = waited.as_millis() as u64,
            homing_ms = homing.as_millis() as u64,
            recovery_ms = started.elapsed().as_millis() as u64,
            settled = report.settled,
            "startup phases"
        );
        if report.settled > 0 || !report.strays.is_empty() {
            tracing::warn!(
                settled = report.settled,
                resumed = resumed_count,
                ended = report.ended.len(),
                tracking_kept,
                binned = report.binned.len(),
                returned = report.returned_to_stock.len(),
                taken_from_tray = report.taken_from_tray.len(),
                lost = report.lost.len(),
                strays = report.strays.len(),
                "recovered in {:?}",
                started.elapsed()
            );
        }
        Ok(())
    }
}

/// Waits until the motion gate would let start-up homing through (every interlock
/// closed and readable, no crew holding the machine), saying once why it waits:
/// the gate's own check, so start-up waits for exactly what would refuse it.
async fn until_homing_may_start(dispatcher: &Dispatcher) {
    let core = &dispatcher.core;
    let gate = core.gate();
    let mut told = false;
    while let Err(why) = gate.check(crate::motion::Authority::Service, crate::motion::Motion::Home(crate::motion::Mover::Picker)).await {
        if !told {
            tracing::warn!("start-up: waiting before homing: {why}");
            told = true;
        }
        tokio::time::sleep(SUPERVISION_PERIOD).await;
    }
}

/// The loading manifest the config names (none: an empty store).
pub fn load_manifest(config: &Config) -> anyhow::Result<Vec<hal::manifest::ManifestUnit>> {
    let Some(path) = &config.stock.manifest else { return Ok(Vec::new()) };
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read manifest {}", path.display()))?;
    hal::manifest::parse(&text).with_context(|| format!("manifest {}", path.display()))
}

/// Opens the field devices and the camera a devices file names, and reports who
/// answers (device type, firmware, serial) before anything moves.
async fn open_wire(path: &std::path::Path, frame_timeout_ms: u64) -> anyhow::Result<hal::Devices> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read devices file {}", path.display()))?;
    let wire = WireConfig::from_toml(&text).with_context(|| format!("devices file {}", path.display()))?;
    let drivers = WireDevices::open(&wire);
    check_who_answers(&drivers).await?;
    let camera = hal::camera::OpenCvCamera::open(&wire.camera, Duration::from_millis(frame_timeout_ms));
    Ok(drivers.into_devices(Arc::new(camera)))
}

/// How long start-up keeps asking a device who it is while it does not answer or
/// its line garbles the answers: found by `wssim hunt` (seed 282), a controller
/// restarted while the devices were still without power asked once, got no answer
/// and never came up. Past this, start-up fails naming the device.
const IDENTIFY_FOR: Duration = Duration::from_secs(60);

/// Asks each field device who it is (device type, firmware, serial) and waits for
/// its heartbeat, before anything moves. A lost or garbled answer is asked again
/// for [`IDENTIFY_FOR`]; a device that answers wrongly is an error at once.
pub async fn check_who_answers(drivers: &WireDevices) -> anyhow::Result<()> {
    for device in [&drivers.store_device, &drivers.conveyor_device] {
        let asking = tokio::time::Instant::now();
        let identity = loop {
            match device.identity().await {
                Ok(identity) => break identity,
                Err(e) if matches!(e.kind(), hal::ErrorKind::Timeout | hal::ErrorKind::Crc | hal::ErrorKind::NoResponse) && asking.elapsed() < IDENTIFY_FOR => {
                    tracing::warn!(device = device.link().device(), "no clear answer to who it is ({e}); asking again");
                    tokio::time::sleep(device.link().timing().poll()).await;
                }
                Err(e) => return Err(anyhow::Error::new(e).context(format!("{} at {}", device.link().device(), device.link().transport()))),
            }
        };
        tracing::info!(device = device.link().device(), transport = %device.link().transport(), firmware = %identity.firmware, serial = %identity.serial_number, "field device found");
        device.wait_heartbeat(Duration::from_secs(5)).await?;
    }
    Ok(())
}

/// How often the supervisor reads the interlocks and the devices' alarms.
const SUPERVISION_PERIOD: Duration = Duration::from_millis(250);

