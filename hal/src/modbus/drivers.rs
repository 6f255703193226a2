//! The device-trait drivers over Modbus: [`ModbusColdStore`], [`ModbusConveyor`]
//! (which also drives the booths), the probes and the interlock chain, and
//! [`WireDevices`], which opens them all from a [`WireConfig`].

use super::field::{FieldDevice, Task};
use super::link::{LinkTiming, ModbusLink, Transport};
use super::map::{self, DeviceType, ir, task};
use crate::devices::{Booths, ColdStore, Conveyor, Interlocks, Result, TemperatureProbe};
use crate::error::{DeviceError, ErrorKind};
use crate::types::{BoothDisplay, BoothId, InterlockStatus, SlotAddress, Station, StoreGeometry, TrackingId, TrayState};
use async_trait::async_trait;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OnceCell;

/// Where the field devices are, as `wssim hardware` writes it and the controller's
/// config names it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireConfig {
    pub store: Transport,
    pub conveyor: Transport,
    /// The camera: a device index (`"0"`) or a stream URL.
    pub camera: String,
    pub booths: u8,
    #[serde(default)]
    pub timing: LinkTiming,
    /// Longest a motion job may take before the controller gives up on it.
    #[serde(default = "default_job_deadline_s")]
    pub job_deadline_s: f64,
}

fn default_job_deadline_s() -> f64 {
    120.0
}

impl WireConfig {
    pub fn from_toml(text: &str) -> std::result::Result<Self, toml::de::Error> {
        toml::from_str(text)
    }
}

/// The carrier id in two registers; ids beyond 32 bits cannot be tracked by the devices.
fn carrier_registers(carrier: TrackingId) -> Result<[u16; 2]> {
    u32::try_from(carrier.0)
        .map(map::u32_to_registers)
        .map_err(|_| DeviceError::new("driver", ErrorKind::InvalidTarget, format!("{carrier} does not fit the devices' 32-bit carrier ids")))
}

/// The cold store controller: store, picker, hatch, door, cabinet probes.
#[derive(Debug)]
pub struct ModbusColdStore {
    device: Arc<FieldDevice>,
    geometry: OnceCell<StoreGeometry>,
    deadline: Duration,
}

impl ModbusColdStore {
    pub fn new(device: Arc<FieldDevice>, deadline: Duration) -> Self {
        Self { device, geometry: OnceCell::new(), deadline }
    }

    /// Racks, rows, columns as the device reports them (read once).
    async fn geometry(&self) -> Result<StoreGeometry> {
        self.geometry
            .get_or_try_init(|| async {
                let g = self.device.link().read_input(ir::store::GEOMETRY, 1).await?[0];
                Ok::<_, DeviceError>(StoreGeometry { racks: (g >> 12) as u8, rows: ((g >> 8) & 0xf) as u8, columns: (g & 0xff) as u8 })
            })
            .await
            .copied()
    }

    async fn slot_index(&self, slot: SlotAddress) -> Result<u16> {
        let g = self.geometry().await?;
        if !g.contains(slot) {
            return Err(self.device.link().error(ErrorKind::InvalidTarget, format!("no slot {slot} in a {}x{}x{} store", g.racks, g.rows, g.columns)));
        }
        // A geometry from the map's registers has at most 15x15x255 slots.
        Ok(g.index(slot) as u16)
    }

    fn task(&self, code: u16, params: [u16; 4]) -> Task<'static> {
        Task { code, params, text: None, deadline: self.deadline }
    }

    fn expect_at(&self, asked: u16, actual: u16, what: &str) -> Result<()> {
        if asked == actual {
            return Ok(());
        }
        Err(self.device.link().error(ErrorKind::WrongPosition, format!("{what}: asked for {asked}, device reports {actual}")))
    }
}

#[async_trait]
impl ColdStore for ModbusColdStore {
    async fn home(&self) -> Result<()> {
        self.device.reset_alarms().await?;
        self.device.run(self.task(task::HOME, [0; 4])).await.map(drop)
    }

    async fn slot_occupied(&self, slot: SlotAddress) -> Result<bool> {
        let index = self.slot_index(slot).await?;
        let register = ir::store::SLOT_OCCUPANCY + index / 16;
        let bits = self.device.link().read_input(register, 1).await?[0];
        Ok(bits & (1 << (index % 16)) != 0)
    }

    async fn in_motion(&self) -> Result<bool> {
        Ok(self.device.status().await?.has(super::map::status::BUSY))
    }

    async fn hatch(&self) -> Result<Option<TrackingId>> {
        let r = self.device.link().read_input(ir::store::HATCH_FULL, 3).await?;
        Ok((r[0] != 0).then(|| TrackingId(u64::from(map::registers_to_u32(r[1], r[2])))))
    }

    async fn slots(&self) -> Result<Vec<SlotAddress>> {
        Ok(self.geometry().await?.slots_nearest_first())
    }

    async fn occupied_slots(&self) -> Result<Vec<SlotAddress>> {
        let g = self.geometry().await?;
        let bits = self.device.link().read_input(ir::store::SLOT_OCCUPANCY, ir::store::SLOT_OCCUPANCY_LEN).await?;
        let occupied = |index: &usize| bits.get(index / 16).is_some_and(|word| word & (1 << (index % 16)) != 0);
        Ok((0..g.slot_count()).filter(occupied).filter_map(|i| g.slot_at(i)).collect())
    }

    async fn pick_to_hatch(&self, slot: SlotAddress, carrier: TrackingId) -> Result<()> {
        let index = self.slot_index(slot).await?;
        let [hi, lo] = carrier_registers(carrier)?;
        let done = self.device.run(self.task(task::PICK_TO_HATCH, [index, hi, lo, 0])).await?;
        self.expect_at(index, done.actual, &format!("pick from {slot}"))
    }

    async fn release_to_belt(&self, carrier: TrackingId) -> Result<()> {
        let [hi, lo] = carrier_registers(carrier)?;
        let done = self.device.run(self.task(task::RELEASE_TO_BELT, [0, hi, lo, 0])).await?;
        self.expect_at(map::station_code(Station::Hatch), done.actual, "hatch release")
    }

    async fn jog(&self, axis: crate::PickerAxis, millimetres: i32) -> Result<()> {
        let mm = jog_register(millimetres, crate::JOG_LIMIT_PICKER_MM, self.device.link())?;
        self.device.run(self.task(task::JOG_PICKER, [axis as u16, mm, 0, 0])).await.map(drop)
    }
}

/// A jog distance as its register (an i16 in two's complement), refused beyond the limit.
fn jog_register(millimetres: i32, limit: i32, link: &super::link::ModbusLink) -> Result<u16> {
    if millimetres.abs() > limit {
        return Err(link.error(ErrorKind::InvalidTarget, format!("a jog of {millimetres} mm is beyond the {limit} mm limit")));
    }
    // Within ±500 the value fits an i16; the register carries its bits.
    Ok(millimetres as i16 as u16)
}

/// The conveyor PLC: belt, diverters, booths (trays and displays).
#[derive(Debug)]
pub struct ModbusConveyor {
    device: Arc<FieldDevice>,
    booths: u8,
    deadline: Duration,
}

impl ModbusConveyor {
    pub fn new(device: Arc<FieldDevice>, booths: u8, deadline: Duration) -> Self {
        Self { device, booths, deadline }
    }

    fn check_booth(&self, booth: BoothId) -> Result<u16> {
        if booth.0 == 0 || booth.0 > self.booths {
            return Err(self.device.link().error(ErrorKind::InvalidTarget, format!("there is no {booth}")));
        }
        Ok(u16::from(booth.0))
    }
}

#[async_trait]
impl Conveyor for ModbusConveyor {
    async fn in_motion(&self) -> Result<bool> {
        Ok(self.device.status().await?.has(super::map::status::BUSY))
    }

    async fn units_on_belt(&self) -> Result<Vec<(TrackingId, Station)>> {
        use ir::conveyor::{BELT_ENTRY_LEN, BELT_TABLE, BELT_TABLE_ENTRIES};
        let table = self.device.link().read_input(BELT_TABLE, BELT_TABLE_ENTRIES * BELT_ENTRY_LEN).await?;
        table
            .chunks(usize::from(BELT_ENTRY_LEN))
            .filter(|e| e[0] != 0 || e[1] != 0)
            .map(|e| {
                let station = map::station_from_code(e[2])
                    .ok_or_else(|| self.device.link().error(ErrorKind::Exception, format!("belt table: unknown station code {}", e[2])))?;
                Ok((TrackingId(u64::from(map::registers_to_u32(e[0], e[1]))), station))
            })
            .collect()
    }

    async fn home(&self) -> Result<()> {
        self.device.reset_alarms().await?;
        self.device.run(Task { code: task::HOME, params: [0; 4], text: None, deadline: self.deadline }).await.map(drop)
    }

    async fn jog(&self, millimetres: i32) -> Result<()> {
        let mm = jog_register(millimetres, crate::JOG_LIMIT_BELT_MM, self.device.link())?;
        self.device.run(Task { code: task::JOG_BELT, params: [0, mm, 0, 0], text: None, deadline: self.deadline }).await.map(drop)
    }

    async fn convey(&self, carrier: TrackingId, to: Station) -> Result<()> {
        if let Station::Booth(b) | Station::Gate(b) = to {
            self.check_booth(b)?;
        }
        let code = map::station_code(to);
        let [hi, lo] = carrier_registers(carrier)?;
        let done = self.device.run(Task { code: task::CONVEY, params: [code, hi, lo, 0], text: None, deadline: self.deadline }).await?;
        if done.actual != code {
            let actual = map::station_from_code(done.actual).map_or_else(|| format!("code {}", done.actual), |s| s.to_string());
            return Err(self.device.link().error(ErrorKind::WrongPosition, format!("{carrier} sent to {to} but last seen at {actual}")));
        }
        Ok(())
    }
}

#[async_trait]
impl Booths for ModbusConveyor {
    fn count(&self) -> u8 {
        self.booths
    }

    async fn show(&self, booth: BoothId, display: &BoothDisplay) -> Result<()> {
        let b = self.check_booth(booth)?;
        let text = format!("{}\n{}\n{}\n{}", display.product_name, display.lot, display.expiry, display.patient_name);
        let deadline = Duration::from_secs(5);
        self.device.run(Task { code: task::SHOW, params: [b, 0, 0, 0], text: Some(&text), deadline }).await.map(drop)
    }

    async fn clear(&self, booth: BoothId) -> Result<()> {
        let b = self.check_booth(booth)?;
        self.device.run(Task { code: task::CLEAR, params: [b, 0, 0, 0], text: None, deadline: Duration::from_secs(5) }).await.map(drop)
    }

    async fn tray(&self, booth: BoothId) -> Result<TrayState> {
        self.check_booth(booth)?;
        let trays = self.device.link().read_input(ir::conveyor::TRAYS, 1).await?[0];
        Ok(if trays & map::booth_bit(booth) != 0 { TrayState::Occupied } else { TrayState::Empty })
    }
}

/// A temperature probe read from one input register.
#[derive(Debug)]
pub struct ModbusProbe {
    name: &'static str,
    device: Arc<FieldDevice>,
    register: u16,
}

#[async_trait]
impl TemperatureProbe for ModbusProbe {
    fn name(&self) -> &str {
        self.name
    }

    async fn read_celsius(&self) -> Result<f64> {
        match self.device.link().read_input(self.register, 1).await?[0] {
            map::PROBE_FAULT => Err(DeviceError::new(self.name, ErrorKind::Exception, "the probe reports a sensor fault")),
            value => Ok(map::register_to_celsius(value)),
        }
    }
}

/// The safety chain: the door from the store controller, e-stop and light curtains
/// from the conveyor PLC. Unreadable counts as an error, never as "closed".
#[derive(Debug)]
pub struct ModbusInterlocks {
    store: Arc<FieldDevice>,
    conveyor: Arc<FieldDevice>,
}

#[async_trait]
impl Interlocks for ModbusInterlocks {
    async fn read(&self) -> Result<InterlockStatus> {
        let door = self.store.link().read_input(ir::store::DOOR_OPEN, 1).await?[0];
        let safety = self.conveyor.link().read_input(ir::conveyor::ESTOP, 2).await?;
        Ok(InterlockStatus { estop_pressed: safety[0] != 0, restock_door_open: door != 0, light_curtain_broken: safety[1] != 0 })
    }
}

/// Both field devices and the drivers built on them (everything but the camera,
/// which the caller opens from `WireConfig::camera`).
#[derive(Debug, Clone)]
pub struct WireDevices {
    pub store_device: Arc<FieldDevice>,
    pub conveyor_device: Arc<FieldDevice>,
    pub store: Arc<ModbusColdStore>,
    pub conveyor: Arc<ModbusConveyor>,
    pub probes: Vec<Arc<ModbusProbe>>,
    pub interlocks: Arc<ModbusInterlocks>,
}

impl WireDevices {
    /// Starts both links (lazily connected; heartbeats begin at once).
    pub fn open(config: &WireConfig) -> Self {
        let deadline = Duration::from_secs_f64(config.job_deadline_s);
        let store_device = Arc::new(FieldDevice::start(ModbusLink::new("cold store", config.store.clone(), config.timing), DeviceType::ColdStore));
        let conveyor_device = Arc::new(FieldDevice::start(ModbusLink::new("conveyor", config.conveyor.clone(), config.timing), DeviceType::Conveyor));
        let probe = |name, device: &Arc<FieldDevice>, register| Arc::new(ModbusProbe { name, device: device.clone(), register });
        let probes = vec![
            probe("cabinet-a", &store_device, ir::store::PROBE_A),
            probe("cabinet-b", &store_device, ir::store::PROBE_B),
            probe("belt-tunnel", &conveyor_device, ir::conveyor::TUNNEL_PROBE),
        ];
        Self {
            store: Arc::new(ModbusColdStore::new(store_device.clone(), deadline)),
            conveyor: Arc::new(ModbusConveyor::new(conveyor_device.clone(), config.booths, deadline)),
            interlocks: Arc::new(ModbusInterlocks { store: store_device.clone(), conveyor: conveyor_device.clone() }),
            probes,
            store_device,
            conveyor_device,
        }
    }

    /// The drivers as the controller's [`Devices`](crate::Devices), with a camera.
    pub fn into_devices(self, camera: Arc<dyn crate::ScanCamera>) -> crate::Devices {
        crate::Devices {
            store: self.store,
            conveyor: self.conveyor.clone(),
            camera,
            booths: self.conveyor,
            probes: self.probes.into_iter().map(|p| p as Arc<dyn TemperatureProbe>).collect(),
            interlocks: self.interlocks,
            field: vec![self.store_device as Arc<dyn crate::diagnostics::FieldDiagnostics>, self.conveyor_device],
        }
    }
}
