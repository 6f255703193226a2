//! What each field device does with its tasks and shows in its device-specific
//! registers, on top of the physical models (store, conveyor, booths, sensors).

use crate::sensors::read_probe;
use crate::world::Plant;
use crate::{booths::SimBooths, conveyor::SimConveyor, store::SimStore};
use futures::future::BoxFuture;
use hal::modbus::map::{self, DeviceType, JobResult, conveyor_alarm, ir, store_alarm, task};
use hal::{BoothDisplay, BoothId, Booths, ColdStore, Conveyor, DeviceError, SlotAddress, Station, TrackingId};
use std::sync::Arc;

/// A job a task started: whether it moves anything (stopped by the safety chain and
/// the heartbeat watchdog), and the work, ending with the `actual` position or a
/// result code and where things ended up.
pub(crate) struct Job {
    pub motion: bool,
    pub run: BoxFuture<'static, Result<u16, (JobResult, u16)>>,
}

pub(crate) trait FieldModel: Send + Sync + std::fmt::Debug {
    fn kind(&self) -> DeviceType;
    fn firmware(&self) -> (u8, u8, u16);
    fn serial_number(&self) -> &str;
    /// Fills the device-specific input registers.
    fn fill_inputs(&self, regs: &mut [u16]);
    /// An interlock that stops this device's motion is open.
    fn interlock_open(&self) -> bool;
    /// Counts a motion task refused because an interlock was open (the tests' and
    /// scenarios' proof that the controller never sends one).
    fn refused_for_interlock(&self) {
        self.world_handle().world().motions_refused_for_interlock += 1;
    }
    /// The simulated world this model reads.
    fn world_handle(&self) -> &Plant;
    /// Alarm bits whose condition holds now (latched by the core), judged from the
    /// device-specific registers [`FieldModel::fill_inputs`] has just filled.
    fn alarm_conditions(&self, regs: &[u16]) -> u32;
    /// Alarm bits that keep the device from being READY.
    fn stopping_alarms(&self) -> u32;
    fn alarm_for(&self, result: JobResult) -> Option<u8>;
    fn heartbeat_alarm(&self) -> u8;
    fn power_restored_alarm(&self) -> u8;
    /// Whether a task code moves anything; `None` for an unknown code.
    fn is_motion(&self, code: u16) -> Option<bool>;
    fn is_home(&self, code: u16) -> bool {
        code == task::HOME
    }
    fn start(&self, code: u16, params: [u16; 4], text: String) -> Result<Job, JobResult>;
}

fn carrier(params: [u16; 4]) -> TrackingId {
    TrackingId(u64::from(map::registers_to_u32(params[1], params[2])))
}

fn failed(e: &DeviceError) -> JobResult {
    JobResult::from_error_kind(e.kind())
}

#[derive(Debug)]
pub(crate) struct StoreModel {
    shared: Arc<Plant>,
    store: Arc<SimStore>,
}

impl StoreModel {
    pub fn new(shared: Arc<Plant>) -> Self {
        Self { store: Arc::new(SimStore::new(shared.clone())), shared }
    }

    fn slot_of(&self, index: u16) -> Option<SlotAddress> {
        self.shared.config.geometry().slot_at(usize::from(index))
    }
}

impl FieldModel for StoreModel {
    fn world_handle(&self) -> &Plant {
        &self.shared
    }

    fn kind(&self) -> DeviceType {
        DeviceType::ColdStore
    }
    fn firmware(&self) -> (u8, u8, u16) {
        (2, 4, 1)
    }
    fn serial_number(&self) -> &str {
        "SIM-CS-0001"
    }

    fn fill_inputs(&self, regs: &mut [u16]) {
        let probe_a = read_probe(&self.shared, "cabinet-a");
        let probe_b = read_probe(&self.shared, "cabinet-b");
        let c = &self.shared.config;
        let world = self.shared.world();
        regs[usize::from(ir::store::DOOR_OPEN)] = u16::from(world.interlocks.restock_door_open);
        regs[usize::from(ir::store::COMPRESSOR_ON)] = u16::from(world.thermal.compressor_on);
        regs[usize::from(ir::store::PROBE_A)] = probe_a.map_or(map::PROBE_FAULT, map::celsius_to_register);
        regs[usize::from(ir::store::PROBE_B)] = probe_b.map_or(map::PROBE_FAULT, map::celsius_to_register);
        regs[usize::from(ir::store::HATCH_FULL)] = u16::from(world.hatch.is_some());
        let [hi, lo] = map::u32_to_registers(world.hatch.as_ref().map_or(0, |(c, _)| c.0 as u32));
        regs[usize::from(ir::store::HATCH_CARRIER)] = hi;
        regs[usize::from(ir::store::HATCH_CARRIER + 1)] = lo;
        regs[usize::from(ir::store::GEOMETRY)] = (u16::from(c.racks) << 12) | (u16::from(c.rows & 0xf) << 8) | u16::from(c.columns);
        for slot in world.slots.keys() {
            let index = c.geometry().index(*slot);
            if let Some(r) = regs.get_mut(usize::from(ir::store::SLOT_OCCUPANCY) + index / 16) {
                *r |= 1 << (index % 16);
            }
        }
    }

    fn interlock_open(&self) -> bool {
        let i = self.shared.world().interlocks;
        i.restock_door_open || i.estop_pressed
    }

    fn alarm_conditions(&self, regs: &[u16]) -> u32 {
        // The readings this image reports, not a second draw of the probes.
        let probe = |register: u16| Some(regs[usize::from(register)]).filter(|r| *r != map::PROBE_FAULT).map(map::register_to_celsius);
        let (a, b) = (probe(ir::store::PROBE_A), probe(ir::store::PROBE_B));
        let world = self.shared.world();
        let mut bits = 0;
        if a.into_iter().chain(b).any(|c| c > 8.0) {
            bits |= 1 << store_alarm::CABINET_HIGH;
        }
        if a.zip(b).is_some_and(|(a, b)| (a - b).abs() > 1.0) {
            bits |= 1 << store_alarm::PROBES_DISAGREE;
        }
        if world.faults.compressor == crate::thermal::Compressor::Failed && world.thermal.cabinet_c > 5.5 {
            bits |= 1 << store_alarm::COMPRESSOR_FAULT;
        }
        bits
    }

    fn stopping_alarms(&self) -> u32 {
        1 << store_alarm::GRIP_FAILURE
    }

    fn alarm_for(&self, result: JobResult) -> Option<u8> {
        match result {
            JobResult::Interlock => Some(store_alarm::DOOR_DURING_MOTION),
            JobResult::GripFailure => Some(store_alarm::GRIP_FAILURE),
            JobResult::HeartbeatLost => Some(store_alarm::HEARTBEAT_LOST),
            _ => None,
        }
    }
    fn heartbeat_alarm(&self) -> u8 {
        store_alarm::HEARTBEAT_LOST
    }
    fn power_restored_alarm(&self) -> u8 {
        store_alarm::POWER_RESTORED
    }

    fn is_motion(&self, code: u16) -> Option<bool> {
        matches!(code, task::HOME | task::PICK_TO_HATCH | task::RELEASE_TO_BELT | task::JOG_PICKER).then_some(true)
    }

    fn start(&self, code: u16, params: [u16; 4], _text: String) -> Result<Job, JobResult> {
        let store = self.store.clone();
        let run: BoxFuture<'static, _> = match code {
            task::HOME => Box::pin(async move { store.home().await.map(|()| 0).map_err(|e| (failed(&e), 0)) }),
            task::PICK_TO_HATCH => {
                let index = params[0];
                let slot = self.slot_of(index).ok_or(JobResult::InvalidTarget)?;
                let carrier = carrier(params);
                Box::pin(async move { store.pick_to_hatch(slot, carrier).await.map(|()| index).map_err(|e| (failed(&e), index)) })
            }
            task::JOG_PICKER => {
                let axis = hal::PickerAxis::from_code(params[0]).ok_or(JobResult::InvalidTarget)?;
                let mm = i32::from(params[1] as i16);
                Box::pin(async move { store.jog(axis, mm).await.map(|()| 0).map_err(|e| (failed(&e), 0)) })
            }
            task::RELEASE_TO_BELT => {
                let carrier = carrier(params);
                let hatch = map::station_code(Station::Hatch);
                Box::pin(async move { store.release_to_belt(carrier).await.map(|()| hatch).map_err(|e| (failed(&e), hatch)) })
            }
            _ => return Err(JobResult::UnknownTask),
        };
        Ok(Job { motion: true, run })
    }
}

#[derive(Debug)]
pub(crate) struct ConveyorModel {
    shared: Arc<Plant>,
    conveyor: Arc<SimConveyor>,
    booths: Arc<SimBooths>,
}

impl ConveyorModel {
    pub fn new(shared: Arc<Plant>) -> Self {
        Self { conveyor: Arc::new(SimConveyor::new(shared.clone())), booths: Arc::new(SimBooths::new(shared.clone())), shared }
    }

    /// Where the belt's eyes last saw a carrier.
    fn last_seen(shared: &Plant, carrier: TrackingId) -> Option<u16> {
        let world = shared.world();
        let at = world.belt.get(&carrier).map(|(at, _)| *at).or_else(|| world.last_stop.get(&carrier).copied());
        at.map(map::station_code)
    }
}

impl FieldModel for ConveyorModel {
    fn world_handle(&self) -> &Plant {
        &self.shared
    }

    fn kind(&self) -> DeviceType {
        DeviceType::Conveyor
    }
    fn firmware(&self) -> (u8, u8, u16) {
        (1, 7, 3)
    }
    fn serial_number(&self) -> &str {
        "SIM-CV-0001"
    }

    fn fill_inputs(&self, regs: &mut [u16]) {
        let tunnel = read_probe(&self.shared, "belt-tunnel");
        let c = &self.shared.config;
        let world = self.shared.world();
        regs[usize::from(ir::conveyor::ESTOP)] = u16::from(world.interlocks.estop_pressed);
        regs[usize::from(ir::conveyor::LIGHT_CURTAIN)] = u16::from(world.interlocks.light_curtain_broken);
        regs[usize::from(ir::conveyor::TUNNEL_PROBE)] = tunnel.map_or(map::PROBE_FAULT, map::celsius_to_register);
        regs[usize::from(ir::conveyor::BOOTH_COUNT)] = u16::from(c.booths);
        regs[usize::from(ir::conveyor::TRAYS)] = world.trays.keys().copied().chain(world.faults.stuck_tray).fold(0, |bits, b| bits | map::booth_bit(b));
        regs[usize::from(ir::conveyor::GATES)] = world.belt.values().fold(0, |bits, (at, _)| match at {
            Station::Gate(b) => bits | map::booth_bit(*b),
            _ => bits,
        });
        regs[usize::from(ir::conveyor::UNITS_ON_BELT)] = world.belt.len() as u16;
        regs[usize::from(ir::conveyor::EYES)] = world.belt.values().fold(0, |eyes, (at, _)| eyes | map::eye_bit(*at));
        let mut carried: Vec<_> = world.belt.iter().map(|(c, (at, _))| (c.0, *at)).collect();
        carried.sort_by_key(|(c, _)| *c);
        for (i, (carrier, at)) in carried.into_iter().take(usize::from(ir::conveyor::BELT_TABLE_ENTRIES)).enumerate() {
            let [hi, lo] = map::u32_to_registers(carrier as u32);
            let entry = usize::from(ir::conveyor::BELT_TABLE) + i * usize::from(ir::conveyor::BELT_ENTRY_LEN);
            regs[entry..entry + 3].copy_from_slice(&[hi, lo, map::station_code(at)]);
        }
    }

    fn interlock_open(&self) -> bool {
        let i = self.shared.world().interlocks;
        i.estop_pressed || i.light_curtain_broken
    }

    fn alarm_conditions(&self, regs: &[u16]) -> u32 {
        if regs[usize::from(ir::conveyor::ESTOP)] != 0 { 1 << conveyor_alarm::ESTOP } else { 0 }
    }

    fn stopping_alarms(&self) -> u32 {
        (1 << conveyor_alarm::ESTOP) | (1 << conveyor_alarm::JAM)
    }

    fn alarm_for(&self, result: JobResult) -> Option<u8> {
        match result {
            JobResult::Interlock => Some(conveyor_alarm::CURTAIN_DURING_MOTION),
            JobResult::Jam => Some(conveyor_alarm::JAM),
            JobResult::HeartbeatLost => Some(conveyor_alarm::HEARTBEAT_LOST),
            _ => None,
        }
    }
    fn heartbeat_alarm(&self) -> u8 {
        conveyor_alarm::HEARTBEAT_LOST
    }
    fn power_restored_alarm(&self) -> u8 {
        conveyor_alarm::POWER_RESTORED
    }

    fn is_motion(&self, code: u16) -> Option<bool> {
        match code {
            task::HOME | task::CONVEY | task::JOG_BELT => Some(true),
            task::SHOW | task::CLEAR => Some(false),
            _ => None,
        }
    }

    fn start(&self, code: u16, params: [u16; 4], text: String) -> Result<Job, JobResult> {
        let (conveyor, booths, shared) = (self.conveyor.clone(), self.booths.clone(), self.shared.clone());
        let booth = BoothId(u8::try_from(params[0]).map_err(|_| JobResult::InvalidTarget)?);
        let (motion, run): (bool, BoxFuture<'static, _>) = match code {
            task::HOME => (true, Box::pin(async move { conveyor.home().await.map(|()| 0).map_err(|e| (failed(&e), 0)) })),
            task::CONVEY => {
                let to = map::station_from_code(params[0]).ok_or(JobResult::InvalidTarget)?;
                let carrier = carrier(params);
                let code = params[0];
                (
                    true,
                    Box::pin(async move {
                        match conveyor.convey(carrier, to).await {
                            Ok(()) => Ok(code),
                            // The PLC does not judge where a unit should be: it reports
                            // where its eyes saw it, and the controller compares.
                            Err(e) if e.kind() == hal::ErrorKind::WrongPosition => Ok(Self::last_seen(&shared, carrier).unwrap_or(u16::MAX)),
                            Err(e) => Err((failed(&e), Self::last_seen(&shared, carrier).unwrap_or(u16::MAX))),
                        }
                    }),
                )
            }
            task::SHOW => {
                let mut lines = text.split('\n').map(str::to_owned);
                let mut next = || lines.next().unwrap_or_default();
                let display = BoothDisplay { product_name: next(), lot: next(), expiry: next(), patient_name: next() };
                (false, Box::pin(async move { booths.show(booth, &display).await.map(|()| 0).map_err(|e| (failed(&e), 0)) }))
            }
            task::JOG_BELT => {
                let mm = i32::from(params[1] as i16);
                (true, Box::pin(async move { conveyor.jog(mm).await.map(|()| 0).map_err(|e| (failed(&e), 0)) }))
            }
            task::CLEAR => (false, Box::pin(async move { booths.clear(booth).await.map(|()| 0).map_err(|e| (failed(&e), 0)) })),
            _ => return Err(JobResult::UnknownTask),
        };
        Ok(Job { motion, run })
    }
}
