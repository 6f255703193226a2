//! The physical state of the simulated workstation, shared by every device model,
//! and [`SimWorkstation`], which builds the devices and lets tests look inside.

use crate::clock::SimClock;
use crate::config::SimConfig;
use crate::{booths::SimBooths, camera::SimCamera, conveyor::SimConveyor, sensors, store::SimStore};
use hal::manifest::ManifestUnit;
use hal::{BoothDisplay, BoothId, Devices, InterlockStatus, SlotAddress, Station, TrackingId};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

/// A physical unit: all the simulator knows of it is what is printed on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhysicalUnit {
    pub label: String,
}

/// A unit that reached a booth tray: the physical truth tests check against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub booth: BoothId,
    pub label: String,
}

#[derive(Debug)]
pub(crate) struct World {
    pub slots: BTreeMap<SlotAddress, PhysicalUnit>,
    pub hatch: Option<(TrackingId, PhysicalUnit)>,
    /// Units on the belt and the station whose photo-eye saw them last.
    pub belt: HashMap<TrackingId, (Station, PhysicalUnit)>,
    pub trays: BTreeMap<BoothId, PhysicalUnit>,
    pub displays: BTreeMap<BoothId, BoothDisplay>,
    pub reject_bin: Vec<PhysicalUnit>,
    pub deliveries: Vec<Delivery>,
    pub interlocks: InterlockStatus,
    /// Motion commands that started; none may start with an interlock open.
    pub motions_started: u64,
    pub frames_grabbed: u64,
    pub rng: SmallRng,
}

/// What every device model holds: the world, the clock and the configuration.
#[derive(Debug)]
pub(crate) struct Shared {
    pub world: Mutex<World>,
    pub clock: SimClock,
    pub config: SimConfig,
}

impl Shared {
    pub fn world(&self) -> MutexGuard<'_, World> {
        // A panic while holding the lock is a simulator bug; keep the state usable.
        self.world.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The simulated workstation: build it from a config and a loading manifest, hand
/// [`SimWorkstation::devices`] to the controller, and inspect or disturb it from tests.
#[derive(Debug, Clone)]
pub struct SimWorkstation {
    shared: Arc<Shared>,
}

impl SimWorkstation {
    pub fn new(config: SimConfig, load: &[ManifestUnit]) -> Self {
        let slots = load.iter().map(|u| (u.slot, PhysicalUnit { label: u.printed_label() })).collect();
        let world = World {
            slots,
            hatch: None,
            belt: HashMap::new(),
            trays: BTreeMap::new(),
            displays: BTreeMap::new(),
            reject_bin: Vec::new(),
            deliveries: Vec::new(),
            interlocks: InterlockStatus::default(),
            motions_started: 0,
            frames_grabbed: 0,
            rng: SmallRng::seed_from_u64(config.seed),
        };
        let clock = SimClock::new(config.speed);
        Self { shared: Arc::new(Shared { world: Mutex::new(world), clock, config }) }
    }

    /// The device handles, as the controller receives real drivers.
    pub fn devices(&self) -> Devices {
        Devices {
            store: Arc::new(SimStore::new(self.shared.clone())),
            conveyor: Arc::new(SimConveyor::new(self.shared.clone())),
            camera: Arc::new(SimCamera::new(self.shared.clone())),
            booths: Arc::new(SimBooths::new(self.shared.clone())),
            probes: sensors::probes(&self.shared),
            interlocks: Arc::new(sensors::SimInterlocks::new(self.shared.clone())),
        }
    }

    pub fn clock(&self) -> SimClock {
        self.shared.clock
    }

    /// Every unit that reached a booth tray, in order.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.shared.world().deliveries.clone()
    }

    /// The labels of the units in the reject bin.
    pub fn reject_bin(&self) -> Vec<String> {
        self.shared.world().reject_bin.iter().map(|u| u.label.clone()).collect()
    }

    pub fn occupied_slots(&self) -> usize {
        self.shared.world().slots.len()
    }

    pub fn motions_started(&self) -> u64 {
        self.shared.world().motions_started
    }

    pub fn booth_display(&self, booth: BoothId) -> Option<BoothDisplay> {
        self.shared.world().displays.get(&booth).cloned()
    }

    /// Opens or closes the restock door (an interlock).
    pub fn set_restock_door_open(&self, open: bool) {
        self.shared.world().interlocks.restock_door_open = open;
    }

    pub fn set_estop(&self, pressed: bool) {
        self.shared.world().interlocks.estop_pressed = pressed;
    }
}

impl World {
    /// The real machine's rule: motion is refused while any interlock is open.
    pub fn start_motion(&mut self, device: &'static str, what: &str) -> Result<(), hal::DeviceError> {
        if !self.interlocks.all_closed() {
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
