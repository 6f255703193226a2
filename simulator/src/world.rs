//! The physical state of the simulated workstation (the plant), shared by every
//! device model: units in slots, hatch, belt, trays and bin, interlocks, faults,
//! the cabinet's temperature, and the motions under way.

use crate::clock::SimClock;
use crate::config::SimConfig;
use crate::injection::CameraFault;
use crate::thermal::Thermal;
use hal::{BoothDisplay, BoothId, InterlockStatus, SlotAddress, Station, TrackingId};
use rand::rngs::SmallRng;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

/// A physical unit: what is printed on it, and what it lived through (the ground
/// truth tests judge a dose by, never the controller's records).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PhysicalUnit {
    pub label: String,
    /// When the picker took it out of the refrigerated store, machine seconds.
    pub left_store_s: Option<f64>,
    /// Frames the scan-station camera took of it since it left the store.
    pub frames: u32,
}

impl PhysicalUnit {
    pub fn labelled(label: impl Into<String>) -> Self {
        Self { label: label.into(), ..Self::default() }
    }
}

/// A unit that reached a booth tray: the physical truth tests check against.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub booth: BoothId,
    pub label: String,
    /// The carrier that brought it: which dispense, for the controller.
    pub carrier: TrackingId,
    /// When it dropped into the tray, machine seconds since the simulator started.
    pub at_s: f64,
    /// When it left the refrigerated store, machine seconds.
    pub left_store_s: Option<f64>,
    /// Frames the camera took of it on its way (none: it was never read).
    pub frames: u32,
}

/// A motion that moved a carrier, as the machine started it.
#[derive(Debug, Clone, PartialEq)]
pub struct CarrierMotion {
    /// Machine seconds since the simulator started.
    pub at_s: f64,
    pub carrier: TrackingId,
    /// `pick`, `hatch release` or `belt run`.
    pub what: &'static str,
}

#[derive(Debug)]
pub(crate) struct World {
    pub slots: BTreeMap<SlotAddress, PhysicalUnit>,
    pub hatch: Option<(TrackingId, PhysicalUnit)>,
    /// Units on the belt and the station whose photo-eye saw them last.
    pub belt: HashMap<TrackingId, (Station, PhysicalUnit)>,
    /// Where each carrier's last belt run ended (what the eyes saw last).
    pub last_stop: HashMap<TrackingId, Station>,
    pub trays: BTreeMap<BoothId, PhysicalUnit>,
    pub displays: BTreeMap<BoothId, BoothDisplay>,
    pub reject_bin: Vec<PhysicalUnit>,
    pub deliveries: Vec<Delivery>,
    pub interlocks: InterlockStatus,
    /// Motion commands that started; none may start with an interlock open.
    pub motions_started: u64,
    /// Motion commands that reached a device while an interlock was open (refused
    /// here, as real firmware must; the controller should never send them).
    pub motions_refused_for_interlock: u64,
    /// Maintenance jogs carried out.
    pub jogs: u64,
    /// A maintenance crew is working at the machine (told by the test that plays it).
    pub crew_present: bool,
    /// Motions other than the crew's jogs that started while a crew was at work:
    /// the controller must never send one (each named with what it was).
    pub motions_during_maintenance: Vec<String>,
    /// Every motion that moved a carrier, as the firmware saw it start (for the
    /// check that each was intended in the journal first).
    pub carrier_motions: Vec<CarrierMotion>,
    /// Motions under way, and the carriers moving on the belt (a unit cannot be
    /// sent two places at once).
    pub active_motions: u32,
    pub moving: std::collections::HashSet<TrackingId>,
    /// Carriers that set off from the scan station and have not reached another
    /// eye: out of the camera's view even when their run stopped half-way (a
    /// jam, a controller that stopped beating, a power cut), though the belt's
    /// table still says the scan station, the last eye that saw them.
    pub left_scan: std::collections::HashSet<TrackingId>,
    pub frames_grabbed: u64,
    pub picks_started: u64,
    pub runs_started: u64,
    /// Units the picker dropped inside the store.
    pub dropped: Vec<PhysicalUnit>,
    pub faults: ActiveFaults,
    pub thermal: Thermal,
    pub rng: SmallRng,
}

/// Faults injected into the physical world (line faults live with the wire servers).
#[derive(Debug, Default)]
pub(crate) struct ActiveFaults {
    pub jams_pending: u32,
    pub grip_failures_pending: u32,
    pub stuck_tray: Option<BoothId>,
    pub diverter_stuck: bool,
    pub compressor: crate::thermal::Compressor,
    pub probe_b_offset: f64,
    /// Cabinet probes that give no reading (a sensor fault).
    pub probes_failed: std::collections::BTreeSet<&'static str>,
    pub camera: CameraFault,
}

/// What every device model holds: the world, the clock and the configuration.
#[derive(Debug)]
pub(crate) struct Plant {
    pub world: Mutex<World>,
    pub clock: SimClock,
    pub config: SimConfig,
    pub started: tokio::time::Instant,
}

impl Plant {
    /// Machine seconds since the simulator was built.
    pub fn machine_seconds(&self) -> f64 {
        self.started.elapsed().as_secs_f64() * self.clock.speed()
    }

    /// The world with the cabinet temperature brought up to now.
    pub fn world_now(&self) -> MutexGuard<'_, World> {
        let now = self.machine_seconds();
        let mut world = self.world();
        let (door, compressor) = (world.interlocks.restock_door_open, world.faults.compressor);
        world.thermal.advance(now, door, compressor);
        world
    }

    pub fn world(&self) -> MutexGuard<'_, World> {
        // A panic while holding the lock is a simulator bug; keep the state usable.
        self.world.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A motion under way; ends (also when its future is dropped, e.g. stopped by the
/// safety chain) when this is dropped.
#[derive(Debug)]
pub(crate) struct Motion {
    shared: Arc<Plant>,
    carrier: Option<TrackingId>,
}

impl Motion {
    /// Counts a motion that `World::start_motion` allowed.
    pub fn begin(shared: &Arc<Plant>, carrier: Option<TrackingId>) -> Self {
        let mut world = shared.world();
        world.active_motions += 1;
        if let Some(c) = carrier {
            world.moving.insert(c);
        }
        Self { shared: shared.clone(), carrier }
    }
}

impl Drop for Motion {
    fn drop(&mut self) {
        let mut world = self.shared.world();
        world.active_motions = world.active_motions.saturating_sub(1);
        if let Some(c) = self.carrier {
            world.moving.remove(&c);
        }
    }
}

impl World {
    /// The real machine's rule: motion is refused while any interlock is open.
    /// Starts a maintenance jog: refused past `limit` mm like a motion with an
    /// interlock open; returns how long it takes in simulated seconds at `mm_per_s`.
    pub fn start_jog(&mut self, device: &'static str, what: &str, millimetres: i32, limit: i32, mm_per_s: f64) -> Result<f64, hal::DeviceError> {
        if millimetres.abs() > limit {
            return Err(hal::DeviceError::new(device, hal::ErrorKind::InvalidTarget, format!("{what} of {millimetres} mm is beyond the {limit} mm limit")));
        }
        self.admit_motion(device, what)?;
        self.jogs += 1;
        Ok(f64::from(millimetres.unsigned_abs()) / mm_per_s)
    }

    /// Starts a motion of the machine's own (not a crew's jog).
    pub fn start_motion(&mut self, device: &'static str, what: &str) -> Result<(), hal::DeviceError> {
        self.admit_motion(device, what)?;
        if self.crew_present {
            self.motions_during_maintenance.push(format!("{device}: {what}"));
        }
        Ok(())
    }

    fn admit_motion(&mut self, device: &'static str, what: &str) -> Result<(), hal::DeviceError> {
        if !self.interlocks.all_closed() {
            self.motions_refused_for_interlock += 1;
            return Err(hal::DeviceError::new(
                device,
                hal::ErrorKind::Interlock,
                format!("{what} refused: {} open", self.interlocks.open_names().join(", ")),
            ));
        }
        self.motions_started += 1;
        Ok(())
    }
}
