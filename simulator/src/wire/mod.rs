//! Hardware mode: the simulated workstation behind exactly the real wires. Each field
//! device serves the register map of `hal/REGISTERS.md` over Modbus RTU on a
//! pseudo-terminal or Modbus TCP on a port; the camera is an MJPEG stream; faults
//! are injected from scripts or the HTTP control endpoint. [`HardwareSim::in_memory`]
//! serves the same framing over in-memory streams for runs on a virtual clock.

mod core;
pub use core::HeartbeatRecord;
mod http;
mod line;
mod memory;
mod models;
mod service;

pub use self::core::DeviceCore;
pub use http::encode_jpeg;
pub use line::LineControl;

use crate::camera::SimCamera;
use crate::injection::{Fault, Line, ScriptedFault, Trigger};
use crate::workstation::SimWorkstation;
use models::{ConveyorModel, StoreModel};
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// How one field device is exposed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "transport", rename_all = "lowercase", deny_unknown_fields)]
pub enum Exposure {
    /// Modbus RTU on a new pseudo-terminal (the path is printed and written out).
    Rtu {
        #[serde(default = "default_baud")]
        baud: u32,
    },
    /// Modbus TCP on this address (port 0 picks a free one).
    Tcp { bind: SocketAddr },
}

fn default_baud() -> u32 {
    115_200
}

/// Where each device goes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HardwarePlan {
    pub store: Exposure,
    pub conveyor: Exposure,
    /// The camera stream and control endpoint.
    pub http: SocketAddr,
}

/// Where a running hardware simulator can be reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Rtu { path: String, baud: u32, unit: u8 },
    Tcp { address: SocketAddr, unit: u8 },
    /// In memory ([`HardwareSim::in_memory`]): the controller's link opens it directly.
    Memory(hal::modbus::link::MemoryPort),
}

pub const STORE_UNIT: u8 = 1;
pub const CONVEYOR_UNIT: u8 = 2;

/// The running hardware simulator.
#[derive(Debug, Clone)]
pub struct HardwareSim {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    sim: SimWorkstation,
    store: Arc<DeviceCore>,
    conveyor: Arc<DeviceCore>,
    store_line: Arc<LineControl>,
    conveyor_line: Arc<LineControl>,
    store_endpoint: Endpoint,
    conveyor_endpoint: Endpoint,
    /// The camera stream and control endpoint; none in memory.
    http: Option<SocketAddr>,
}

impl HardwareSim {
    /// Starts both device servers and the HTTP endpoint (needs a tokio runtime).
    pub async fn start(sim: SimWorkstation, plan: &HardwarePlan) -> std::io::Result<Self> {
        Self::start_reachable(sim, plan, false).await
    }

    /// [`HardwarePlan`] served as [`start`](Self::start) does, but listening on
    /// addresses beyond loopback when `allow_remote`: the fault endpoint takes
    /// anyone's faults and Modbus TCP anyone's motions, so only on a closed
    /// network, and only when its config says so (H-09).
    pub async fn start_reachable(sim: SimWorkstation, plan: &HardwarePlan, allow_remote: bool) -> std::io::Result<Self> {
        if !allow_remote {
            let tcp = match &plan.conveyor {
                Exposure::Tcp { bind } => Some(*bind),
                _ => None,
            }
            .into_iter()
            .chain(match &plan.store {
                Exposure::Tcp { bind } => Some(*bind),
                _ => None,
            });
            if let Some(open) = tcp.chain([plan.http]).find(|a| !a.ip().is_loopback()) {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    format!("{open} is not a loopback address: the simulator's fault control and Modbus TCP take commands from anyone who reaches them; set allow_remote = true in the wssim config to serve a closed network"),
                ));
            }
        }
        fits_register_map(&sim)?;
        let shared = sim.shared();
        let seed = sim.config().seed;
        let store = DeviceCore::new(Arc::new(StoreModel::new(shared.clone())), STORE_UNIT);
        let conveyor = DeviceCore::new(Arc::new(ConveyorModel::new(shared.clone())), CONVEYOR_UNIT);
        let (store_line, conveyor_line) = (Arc::new(LineControl::new(seed ^ 1)), Arc::new(LineControl::new(seed ^ 2)));
        let store_endpoint = expose(&plan.store, store.clone(), store_line.clone(), STORE_UNIT).await?;
        let conveyor_endpoint = expose(&plan.conveyor, conveyor.clone(), conveyor_line.clone(), CONVEYOR_UNIT).await?;
        let listener = tokio::net::TcpListener::bind(plan.http).await?;
        let http = listener.local_addr()?;
        let this = Self {
            inner: Arc::new(Inner { sim, store, conveyor, store_line, conveyor_line, store_endpoint, conveyor_endpoint, http: Some(http) }),
        };
        http::spawn(listener, Arc::new(SimCamera::new(shared)), Arc::new(this.clone()));
        Ok(this)
    }

    /// The two field devices over in-memory streams with the real framing (the
    /// store on RTU at 115200 baud, the conveyor on TCP), for a run on a virtual
    /// clock; the camera stays in process (`SimWorkstation::devices`).
    pub fn in_memory(sim: SimWorkstation) -> std::io::Result<Self> {
        fits_register_map(&sim)?;
        let shared = sim.shared();
        let seed = sim.config().seed;
        let store = DeviceCore::new(Arc::new(StoreModel::new(shared.clone())), STORE_UNIT);
        let conveyor = DeviceCore::new(Arc::new(ConveyorModel::new(shared)), CONVEYOR_UNIT);
        let (store_line, conveyor_line) = (Arc::new(LineControl::new(seed ^ 1)), Arc::new(LineControl::new(seed ^ 2)));
        let service = |core: &Arc<DeviceCore>, line: &Arc<LineControl>| service::ModbusService::new(core.clone(), line.clone());
        let store_endpoint = Endpoint::Memory(memory::port("cold store", hal::modbus::link::Framing::Rtu, STORE_UNIT, service(&store, &store_line), store_line.clone(), 115_200));
        let conveyor_endpoint = Endpoint::Memory(memory::port("conveyor", hal::modbus::link::Framing::Tcp, CONVEYOR_UNIT, service(&conveyor, &conveyor_line), conveyor_line.clone(), 115_200));
        Ok(Self { inner: Arc::new(Inner { sim, store, conveyor, store_line, conveyor_line, store_endpoint, conveyor_endpoint, http: None }) })
    }

    /// The controller's heartbeat as the store and the conveyor saw it.
    pub fn heartbeats(&self) -> [(&'static str, core::HeartbeatRecord); 2] {
        [("store", self.inner.store.heartbeats()), ("conveyor", self.inner.conveyor.heartbeats())]
    }

    pub fn workstation(&self) -> &SimWorkstation {
        &self.inner.sim
    }

    pub fn store_endpoint(&self) -> &Endpoint {
        &self.inner.store_endpoint
    }

    pub fn conveyor_endpoint(&self) -> &Endpoint {
        &self.inner.conveyor_endpoint
    }

    /// The camera's MJPEG stream (in memory there is none: the camera is read in process).
    pub fn camera_url(&self) -> String {
        self.inner.http.map_or_else(|| "in process".to_owned(), |http| format!("http://{http}/scan.mjpg"))
    }

    /// The control endpoint; none in memory.
    pub fn http_address(&self) -> Option<SocketAddr> {
        self.inner.http
    }

    pub fn line(&self, line: Line) -> &LineControl {
        match line {
            Line::Store => &self.inner.store_line,
            Line::Conveyor => &self.inner.conveyor_line,
        }
    }

    /// The devices file the controller's config names (`hal::modbus::drivers::WireConfig`).
    pub fn wire_config_toml(&self) -> String {
        let section = |name: &str, e: &Endpoint| match e {
            Endpoint::Rtu { path, baud, unit } => format!("[{name}]\ntransport = \"rtu\"\npath = \"{path}\"\nbaud = {baud}\nunit = {unit}\n"),
            Endpoint::Tcp { address, unit } => format!("[{name}]\ntransport = \"tcp\"\naddress = \"{address}\"\nunit = {unit}\n"),
            Endpoint::Memory(port) => format!("# [{name}] is in memory ({port:?}): no devices file can name it\n"),
        };
        format!(
            "# Written by wssim hardware: where each simulated device is.\nbooths = {}\ncamera = \"{}\"\n\n{}\n{}",
            self.inner.sim.config().booths,
            self.camera_url(),
            section("store", &self.inner.store_endpoint),
            section("conveyor", &self.inner.conveyor_endpoint)
        )
    }

    /// Injects any fault: line faults on the wires, the rest into the world.
    pub fn inject(&self, fault: &Fault) -> Result<(), String> {
        let i = &self.inner;
        let core = |line: &Line| match line {
            Line::Store => &i.store,
            Line::Conveyor => &i.conveyor,
        };
        match fault {
            Fault::Noise(line, rate) => self.line(*line).set_noise(*rate),
            Fault::Silent(line, seconds) => core(line).go_silent(Duration::from_secs_f64(*seconds)),
            Fault::Unplug(line, seconds) => self.line(*line).unplug(Duration::from_secs_f64(*seconds)),
            Fault::PowerLoss(seconds) => {
                i.store.power_cut(Duration::from_secs_f64(*seconds));
                i.conveyor.power_cut(Duration::from_secs_f64(*seconds));
            }
            other => i.sim.inject(other)?,
        }
        tracing::info!("fault injected: {fault:?}");
        Ok(())
    }
}

impl HardwareSim {
    /// Fires each scripted fault when its trigger comes (machine time, or the n-th
    /// pick / belt run), in a background task; a fault that cannot be applied is logged.
    pub fn run_script(&self, script: Vec<ScriptedFault>) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut pending = script;
            while !pending.is_empty() {
                let now = this.inner.sim.machine_seconds();
                let (picks, runs) = this.inner.sim.motion_counts();
                let (due, later): (Vec<_>, Vec<_>) = pending.into_iter().partition(|s| match s.trigger {
                    Trigger::At(t) => now >= t,
                    Trigger::OnPick(n) => picks >= n,
                    Trigger::OnConvey(n) => runs >= n,
                });
                for s in due {
                    if let Err(why) = this.inject(&s.fault) {
                        tracing::error!("scripted fault {:?} not applied: {why}", s.fault);
                    }
                }
                pending = later;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    }
}

impl http::Control for HardwareSim {
    fn inject(&self, fault: &Fault) -> Result<(), String> {
        HardwareSim::inject(self, fault)
    }

    fn state(&self) -> String {
        let sim = &self.inner.sim;
        let interlocks = sim.interlocks();
        format!(
            "machine_seconds {:.1}\ncabinet_celsius {:.2}\nestop {}\nrestock_door_open {}\nlight_curtain_broken {}\ndelivered {}\nrejected {}\ndropped {}\noccupied_slots {}\nstore_line_corrupted {}\nconveyor_line_corrupted {}\n",
            sim.machine_seconds(),
            sim.cabinet_celsius(),
            interlocks.estop_pressed,
            interlocks.restock_door_open,
            interlocks.light_curtain_broken,
            sim.deliveries().len(),
            sim.reject_bin().len(),
            sim.dropped().len(),
            sim.occupied_slots(),
            self.inner.store_line.corrupted(),
            self.inner.conveyor_line.corrupted(),
        )
    }
}

/// The store's slots must fit the register map's occupancy block and address fields.
fn fits_register_map(sim: &SimWorkstation) -> std::io::Result<()> {
    let c = sim.config();
    let slots = c.geometry().slot_count();
    if c.racks > 15 || c.rows > 15 || slots > usize::from(hal::modbus::map::ir::store::SLOT_OCCUPANCY_LEN) * 16 {
        return Err(std::io::Error::other(format!(
            "a {}x{}x{} store does not fit the register map (at most 15 racks, 15 rows and 512 slots)",
            c.racks, c.rows, c.columns
        )));
    }
    Ok(())
}

async fn expose(how: &Exposure, core: Arc<DeviceCore>, line: Arc<LineControl>, unit: u8) -> std::io::Result<Endpoint> {
    Ok(match how {
        Exposure::Rtu { baud } => Endpoint::Rtu { path: line::serve_rtu(core, line, *baud)?, baud: *baud, unit },
        Exposure::Tcp { bind } => Endpoint::Tcp { address: line::serve_tcp(core, line, *bind).await?, unit },
    })
}
