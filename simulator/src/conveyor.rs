//! The simulated belt: units travel at belt speed between photo-eyes; a booth diverter
//! refuses a unit while its tray is occupied; a booth's gate holds one waiting unit
//! beside the belt; the simulated nurse empties trays.

use crate::world::{CarrierMotion, Delivery, Motion, Plant};
use async_trait::async_trait;
use hal::devices::Result;
use hal::{Conveyor, DeviceError, ErrorKind, Station, TrackingId};
use std::sync::Arc;

const DEVICE: &str = "conveyor";

#[derive(Debug)]
pub(crate) struct SimConveyor {
    shared: Arc<Plant>,
}

impl SimConveyor {
    pub fn new(shared: Arc<Plant>) -> Self {
        Self { shared }
    }

    /// Metres from the hatch along the belt.
    fn position(&self, station: Station) -> f64 {
        let c = &self.shared.config;
        let t = &c.timings;
        match station {
            Station::Hatch => 0.0,
            Station::Scan => t.scan_position_m,
            Station::Booth(b) | Station::Gate(b) => t.first_booth_m + t.booth_spacing_m * f64::from(b.0.saturating_sub(1)),
            Station::Reject => t.first_booth_m + t.booth_spacing_m * f64::from(c.booths),
        }
    }
}

#[async_trait]
impl Conveyor for SimConveyor {
    async fn in_motion(&self) -> Result<bool> {
        Ok(self.shared.world().active_motions > 0)
    }

    async fn units_on_belt(&self) -> Result<Vec<(TrackingId, Station)>> {
        let mut units: Vec<_> = self.shared.world().belt.iter().map(|(c, (at, _))| (*c, *at)).collect();
        units.sort_by_key(|(c, _)| *c);
        Ok(units)
    }

    async fn home(&self) -> Result<()> {
        self.shared.world().start_motion(DEVICE, "belt homing")?;
        let _motion = Motion::begin(&self.shared, None);
        self.shared.clock.sleep(1.0).await;
        Ok(())
    }

    async fn jog(&self, millimetres: i32) -> Result<()> {
        let mm_per_s = self.shared.config.timings.belt_speed_mps * 1000.0;
        let seconds = self.shared.world().start_jog(DEVICE, "belt jog", millimetres, hal::JOG_LIMIT_BELT_MM, mm_per_s)?;
        let _motion = Motion::begin(&self.shared, None);
        self.shared.clock.sleep(seconds).await;
        Ok(())
    }

    async fn convey(&self, carrier: TrackingId, to: Station) -> Result<()> {
        let from = {
            let mut world = self.shared.world();
            let Some((from, _)) = world.belt.get(&carrier) else {
                return Err(DeviceError::new(DEVICE, ErrorKind::InvalidTarget, format!("{carrier} is not on the belt")));
            };
            let from = *from;
            if world.moving.contains(&carrier) {
                return Err(DeviceError::new(DEVICE, ErrorKind::Busy, format!("{carrier} is already moving")));
            }
            if let Station::Booth(b) | Station::Gate(b) = to
                && (b.0 == 0 || b.0 > self.shared.config.booths)
            {
                return Err(DeviceError::new(DEVICE, ErrorKind::InvalidTarget, format!("there is no {b}")));
            }
            if let Station::Booth(b) = to
                && world.trays.contains_key(&b)
            {
                return Err(DeviceError::new(DEVICE, ErrorKind::Busy, format!("{b} tray is occupied")));
            }
            if let Station::Gate(b) = to
                && world.belt.values().any(|(at, _)| *at == to)
            {
                return Err(DeviceError::new(DEVICE, ErrorKind::Busy, format!("{b} gate already holds a unit")));
            }
            match from {
                // Off the belt in the booth's spur: down into the tray, or back onto the belt to the bin.
                Station::Gate(b) if to == Station::Booth(b) || to == Station::Reject => {}
                Station::Gate(_) => return Err(DeviceError::new(DEVICE, ErrorKind::InvalidTarget, format!("{carrier} at {from} can go only into its tray or to the reject bin, not to {to}"))),
                _ if self.position(to) <= self.position(from) => {
                    return Err(DeviceError::new(DEVICE, ErrorKind::InvalidTarget, format!("{carrier} at {from} cannot run back to {to}")));
                }
                _ => {}
            }
            world.start_motion(DEVICE, "belt run")?;
            world.carrier_motions.push(CarrierMotion { at_s: self.shared.machine_seconds(), carrier, what: "belt run" });
            world.runs_started += 1;
            if from == Station::Scan {
                world.left_scan.insert(carrier);
            }
            from
        };
        let _motion = Motion::begin(&self.shared, Some(carrier));
        let timings = &self.shared.config.timings;
        let seconds = match (from, to) {
            (Station::Gate(_), Station::Booth(_)) => timings.gate_drop_s,
            _ => (self.position(to) - self.position(from)) / timings.belt_speed_mps,
        };
        let (jammed, misrouted) = {
            let mut world = self.shared.world();
            let jammed = world.faults.jams_pending > 0;
            world.faults.jams_pending = world.faults.jams_pending.saturating_sub(1);
            // A stuck diverter lets a unit meant for a booth ride on to the bin (a
            // unit already at its gate is past the diverter).
            let diverted = matches!(to, Station::Booth(_) | Station::Gate(_)) && !matches!(from, Station::Gate(_));
            let misrouted = !jammed && diverted && world.faults.diverter_stuck;
            (jammed, misrouted)
        };
        if jammed {
            // The unit sticks on the way; the next eye never sees it.
            self.shared.clock.sleep(seconds).await;
            return Err(DeviceError::new(DEVICE, ErrorKind::Jam, format!("{carrier} did not reach the {to} eye")));
        }
        self.shared.clock.sleep(seconds).await;

        let asked = to;
        let to = if misrouted { Station::Reject } else { to };
        let mut world = self.shared.world();
        world.last_stop.insert(carrier, to);
        world.left_scan.remove(&carrier);
        let (_, unit) = world
            .belt
            .remove(&carrier)
            .ok_or_else(|| DeviceError::new(DEVICE, ErrorKind::Jam, format!("{carrier} vanished from the belt")))?;
        match to {
            Station::Booth(booth) => {
                world.deliveries.push(Delivery { booth, label: unit.label.clone(), carrier, at_s: self.shared.machine_seconds(), left_store_s: unit.left_store_s, frames: unit.frames });
                world.trays.insert(booth, unit);
                let shared = self.shared.clone();
                tokio::spawn(async move {
                    shared.clock.sleep(shared.config.timings.nurse_pickup_s).await;
                    shared.world().trays.remove(&booth);
                });
            }
            Station::Reject => world.reject_bin.push(unit),
            Station::Hatch | Station::Scan | Station::Gate(_) => {
                world.belt.insert(carrier, (to, unit));
            }
        }
        if to != asked {
            return Err(DeviceError::new(DEVICE, ErrorKind::WrongPosition, format!("{carrier} sent to {asked} ended at {to}")));
        }
        Ok(())
    }
}
