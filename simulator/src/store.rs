//! The simulated cold store and picker: slot occupancy, travel time by distance, the hatch.

use crate::world::{CarrierMotion, Motion, PhysicalUnit, Plant};
use async_trait::async_trait;
use hal::devices::Result;
use hal::{ColdStore, DeviceError, ErrorKind, SlotAddress, TrackingId};
use std::sync::Arc;

const DEVICE: &str = "cold store";

#[derive(Debug)]
pub(crate) struct SimStore {
    shared: Arc<Plant>,
}

impl SimStore {
    pub fn new(shared: Arc<Plant>) -> Self {
        Self { shared }
    }

    /// Picking time grows linearly with the slot's distance from the hatch (at R0-0-0).
    fn pick_seconds(&self, slot: SlotAddress) -> f64 {
        let c = &self.shared.config;
        let far = f64::from(c.geometry().max_distance());
        let here = f64::from(slot.distance_from_hatch());
        let t = &c.timings;
        t.pick_min_s + (t.pick_max_s - t.pick_min_s) * if far > 0.0 { here / far } else { 0.0 }
    }
}

#[async_trait]
impl ColdStore for SimStore {
    async fn home(&self) -> Result<()> {
        self.shared.world().start_motion(DEVICE, "homing")?;
        let _motion = Motion::begin(&self.shared, None);
        self.shared.clock.sleep(2.0).await;
        Ok(())
    }

    async fn jog(&self, axis: hal::PickerAxis, millimetres: i32) -> Result<()> {
        // The gantry jogs at a crawl: 50 mm/s.
        let seconds = self.shared.world().start_jog(DEVICE, &format!("picker {axis:?} jog"), millimetres, hal::JOG_LIMIT_PICKER_MM, 50.0)?;
        let _motion = Motion::begin(&self.shared, None);
        self.shared.clock.sleep(seconds).await;
        Ok(())
    }

    async fn slot_occupied(&self, slot: SlotAddress) -> Result<bool> {
        Ok(self.shared.world().slots.contains_key(&slot))
    }

    async fn slots(&self) -> Result<Vec<SlotAddress>> {
        Ok(self.shared.config.geometry().slots_nearest_first())
    }

    async fn in_motion(&self) -> Result<bool> {
        Ok(self.shared.world().active_motions > 0)
    }

    async fn hatch(&self) -> Result<Option<TrackingId>> {
        Ok(self.shared.world().hatch.as_ref().map(|(c, _)| *c))
    }

    async fn occupied_slots(&self) -> Result<Vec<SlotAddress>> {
        Ok(self.shared.world().slots.keys().copied().collect())
    }

    async fn pick_to_hatch(&self, slot: SlotAddress, carrier: TrackingId) -> Result<()> {
        if !self.shared.config.geometry().contains(slot) {
            return Err(DeviceError::new(DEVICE, ErrorKind::InvalidTarget, format!("no slot {slot} in this store")));
        }
        {
            let mut world = self.shared.world();
            if world.hatch.is_some() {
                return Err(DeviceError::new(DEVICE, ErrorKind::Busy, "hatch already holds a unit"));
            }
            if !world.slots.contains_key(&slot) {
                return Err(DeviceError::new(DEVICE, ErrorKind::InvalidTarget, format!("slot {slot} is empty")));
            }
            world.start_motion(DEVICE, "pick")?;
            world.carrier_motions.push(CarrierMotion { at_s: self.shared.machine_seconds(), carrier, what: "pick" });
            world.picks_started += 1;
        }
        let _motion = Motion::begin(&self.shared, Some(carrier));
        self.shared.clock.sleep(self.pick_seconds(slot)).await;
        let mut world = self.shared.world();
        if world.faults.grip_failures_pending > 0 {
            world.faults.grip_failures_pending -= 1;
            if let Some(unit) = world.slots.remove(&slot) {
                world.dropped.push(unit);
            }
            return Err(DeviceError::new(DEVICE, ErrorKind::GripFailure, format!("the picker dropped the unit from {slot}")));
        }
        let unit = world
            .slots
            .remove(&slot)
            .ok_or_else(|| DeviceError::new(DEVICE, ErrorKind::GripFailure, format!("slot {slot} emptied during the pick")))?;
        let left_store_s = Some(self.shared.machine_seconds());
        world.hatch = Some((carrier, PhysicalUnit { left_store_s, frames: 0, ..unit }));
        Ok(())
    }

    async fn release_to_belt(&self, carrier: TrackingId) -> Result<()> {
        {
            let mut world = self.shared.world();
            match &world.hatch {
                Some((c, _)) if *c == carrier => {}
                Some((c, _)) => {
                    return Err(DeviceError::new(DEVICE, ErrorKind::InvalidTarget, format!("hatch holds {c}, not {carrier}")));
                }
                None => return Err(DeviceError::new(DEVICE, ErrorKind::InvalidTarget, "hatch is empty")),
            }
            world.start_motion(DEVICE, "hatch release")?;
            world.carrier_motions.push(CarrierMotion { at_s: self.shared.machine_seconds(), carrier, what: "hatch release" });
        }
        let _motion = Motion::begin(&self.shared, Some(carrier));
        self.shared.clock.sleep(self.shared.config.timings.hatch_s).await;
        let mut world = self.shared.world();
        let (carrier, unit) = world.hatch.take().ok_or_else(|| DeviceError::new(DEVICE, ErrorKind::InvalidTarget, "hatch emptied"))?;
        world.belt.insert(carrier, (hal::Station::Hatch, unit));
        Ok(())
    }
}
