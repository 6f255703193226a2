//! [`SimWorkstation`]: builds the simulated workstation's plant and device models
//! from a config and a loading manifest, hands the devices to a controller, and lets
//! tests look inside or inject faults.

use crate::clock::SimClock;
use crate::config::SimConfig;
use crate::injection::Fault;
use crate::thermal::{Compressor, Thermal};
use crate::world::{ActiveFaults, Delivery, PhysicalUnit, Plant, World};
use crate::{booths::SimBooths, camera::SimCamera, conveyor::SimConveyor, sensors, store::SimStore};
use hal::manifest::ManifestUnit;
use hal::{BoothDisplay, BoothId, Devices, InterlockStatus};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// The simulated workstation: build it from a config and a loading manifest, hand
/// [`SimWorkstation::devices`] to the controller, and inspect or disturb it from tests.
#[derive(Debug, Clone)]
pub struct SimWorkstation {
    shared: Arc<Plant>,
}

impl SimWorkstation {
    pub fn new(config: SimConfig, load: &[ManifestUnit]) -> Self {
        let slots = load.iter().map(|u| (u.slot, PhysicalUnit::labelled(u.printed_label()))).collect();
        let world = World {
            slots,
            hatch: None,
            belt: HashMap::new(),
            last_stop: HashMap::new(),
            trays: BTreeMap::new(),
            displays: BTreeMap::new(),
            reject_bin: Vec::new(),
            deliveries: Vec::new(),
            interlocks: InterlockStatus::default(),
            motions_started: 0,
            motions_refused_for_interlock: 0,
            jogs: 0,
            crew_present: false,
            motions_during_maintenance: Vec::new(),
            carrier_motions: Vec::new(),
            active_motions: 0,
            moving: std::collections::HashSet::new(),
            left_scan: std::collections::HashSet::new(),
            frames_grabbed: 0,
            picks_started: 0,
            runs_started: 0,
            dropped: Vec::new(),
            faults: ActiveFaults::default(),
            thermal: Thermal::new(config.cabinet_celsius, config.ambient_celsius),
            rng: SmallRng::seed_from_u64(config.seed),
        };
        let clock = SimClock::new(config.speed);
        let started = tokio::time::Instant::now();
        Self { shared: Arc::new(Plant { world: Mutex::new(world), clock, config, started }) }
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
            field: Vec::new(),
        }
    }

    pub(crate) fn shared(&self) -> Arc<Plant> {
        self.shared.clone()
    }

    pub fn clock(&self) -> SimClock {
        self.shared.clock
    }

    /// Every unit that reached a booth tray, in order.
    /// The label of the unit that last dropped into a booth's tray: what the nurse
    /// holds (and scans) once it is taken out of the tray.
    pub fn last_delivered(&self, booth: BoothId) -> Option<String> {
        self.shared.world().deliveries.iter().rev().find(|d| d.booth == booth).map(|d| d.label.clone())
    }

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

    /// Motion commands a device received while an interlock was open.
    pub fn motions_refused_for_interlock(&self) -> u64 {
        self.shared.world().motions_refused_for_interlock
    }

    pub fn motions_started(&self) -> u64 {
        self.shared.world().motions_started
    }

    /// Tells the machine a maintenance crew is (or is no longer) at work on it.
    pub fn set_crew_present(&self, present: bool) {
        self.shared.world().crew_present = present;
    }

    /// Every motion that moved a carrier, in the order the machine started them.
    pub fn carrier_motions(&self) -> Vec<crate::world::CarrierMotion> {
        self.shared.world().carrier_motions.clone()
    }

    /// Motions other than the crew's jogs that started while a crew was at work.
    pub fn motions_during_maintenance(&self) -> Vec<String> {
        self.shared.world().motions_during_maintenance.clone()
    }

    /// The longest run of whole machine minutes within `[from_min, to_min)` the
    /// cabinet spent at or below `limit_c`, by its true temperature (not a probe's).
    pub fn minutes_at_or_below(&self, limit_c: f64, from_min: usize, to_min: usize) -> usize {
        self.shared.world_now().thermal.longest_at_or_below(limit_c, from_min, to_min)
    }

    /// Maintenance jogs carried out (refused ones are not counted).
    pub fn jogs(&self) -> u64 {
        self.shared.world().jogs
    }

    /// The label of the unit in a booth's tray, as a booth scanner reads it.
    pub fn tray_label(&self, booth: BoothId) -> Option<String> {
        self.shared.world().trays.get(&booth).map(|u| u.label.clone())
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

    pub fn config(&self) -> &SimConfig {
        &self.shared.config
    }

    pub fn machine_seconds(&self) -> f64 {
        self.shared.machine_seconds()
    }

    /// Picks and belt runs started so far (for event-triggered faults).
    pub fn motion_counts(&self) -> (u64, u64) {
        let world = self.shared.world();
        (world.picks_started, world.runs_started)
    }

    /// The units the picker dropped inside the store.
    pub fn dropped(&self) -> Vec<String> {
        self.shared.world().dropped.iter().map(|u| u.label.clone()).collect()
    }

    /// The true cabinet temperature (the probes read it with noise and any offset).
    pub fn cabinet_celsius(&self) -> f64 {
        self.shared.world_now().thermal.cabinet_c
    }

    pub fn interlocks(&self) -> InterlockStatus {
        self.shared.world().interlocks
    }

    /// Injects a fault into the physical world. Line faults (noise, silent, unplug,
    /// power loss) need the wire servers and are refused here with a reason.
    pub fn inject(&self, fault: &Fault) -> Result<(), String> {
        let mut world = self.shared.world_now();
        match fault {
            Fault::Jam => world.faults.jams_pending += 1,
            Fault::GripFailure => world.faults.grip_failures_pending += 1,
            Fault::DiverterStuck(stuck) => world.faults.diverter_stuck = *stuck,
            Fault::TrayStuck(booth) => {
                if let Some(b) = booth.filter(|b| b.0 == 0 || b.0 > self.shared.config.booths) {
                    return Err(format!("there is no {b}"));
                }
                world.faults.stuck_tray = *booth;
            }
            Fault::Door(open) => world.interlocks.restock_door_open = *open,
            Fault::Estop(on) => world.interlocks.estop_pressed = *on,
            Fault::LightCurtain(on) => world.interlocks.light_curtain_broken = *on,
            Fault::CompressorFailure(failed) => world.faults.compressor = if *failed { Compressor::Failed } else { Compressor::Working },
            Fault::CompressorStuckOn => world.faults.compressor = Compressor::StuckOn,
            Fault::ProbeFailure { a, b } => {
                world.faults.probes_failed.clear();
                world.faults.probes_failed.extend([(*a, "cabinet-a"), (*b, "cabinet-b")].into_iter().filter(|(on, _)| *on).map(|(_, name)| name));
            }
            Fault::ProbeOffset(offset) => world.faults.probe_b_offset = *offset,
            Fault::Camera(fault) => world.faults.camera = *fault,
            Fault::Mislabel(slot, label) => match world.slots.get_mut(slot) {
                Some(unit) => unit.label.clone_from(label),
                None => return Err(format!("slot {slot} is empty")),
            },
            Fault::Remove(slot) => {
                if world.slots.remove(slot).is_none() {
                    return Err(format!("slot {slot} is empty"));
                }
            }
            Fault::Place(slot, label) => {
                if !self.shared.config.geometry().contains(*slot) {
                    return Err(format!("no slot {slot} in this store"));
                }
                if world.slots.contains_key(slot) {
                    return Err(format!("slot {slot} is occupied"));
                }
                world.slots.insert(*slot, PhysicalUnit::labelled(label.clone()));
            }
            Fault::PowerLoss(_) | Fault::Noise(..) | Fault::Silent(..) | Fault::Unplug(..) => {
                return Err("this fault acts on the wire: run the simulator in hardware mode".into());
            }
        }
        Ok(())
    }
}

