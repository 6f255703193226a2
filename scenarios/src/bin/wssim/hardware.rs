//! `wssim hardware`: the simulated workstation's field devices on a pseudo-terminal
//! or a Modbus TCP port and the camera as an MJPEG stream until interrupted; writes
//! the devices file a controller config names and takes faults from a script and
//! from its HTTP control endpoint.

use anyhow::Context;
use serde::Deserialize;
use simulator::injection::parse_script;
use simulator::wire::{HardwarePlan, HardwareSim};
use simulator::{SimConfig, SimWorkstation};
use std::path::{Path, PathBuf};

/// `wssim hardware`'s config file. Relative paths are relative to it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HardwareFile {
    /// The loading manifest: which unit sits in which slot.
    stock: PathBuf,
    /// Where to write the devices file for the controller.
    devices_out: PathBuf,
    #[serde(default)]
    simulator: SimConfig,
    hardware: HardwarePlan,
    /// Listen beyond loopback (a closed test network): the fault endpoint and
    /// Modbus TCP have no authentication.
    #[serde(default)]
    allow_remote: bool,
}

pub async fn run(config: &Path, faults: Option<&Path>) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&config).with_context(|| format!("cannot read {}", config.display()))?;
    let file: HardwareFile = toml::from_str(&text).with_context(|| format!("{} is not a valid wssim config", config.display()))?;
    let base = config.parent().unwrap_or(Path::new("."));
    let stock_path = base.join(&file.stock);
    let stock = std::fs::read_to_string(&stock_path).with_context(|| format!("cannot read stock {}", stock_path.display()))?;
    let manifest = hal::manifest::parse(&stock).with_context(|| format!("stock {}", stock_path.display()))?;
    let script = match faults {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read fault script {}", path.display()))?;
            parse_script(&text).map_err(|e| anyhow::anyhow!("fault script {}: {e}", path.display()))?
        }
        None => Vec::new(),
    };

    let sim = SimWorkstation::new(file.simulator, &manifest);
    let hw = HardwareSim::start_reachable(sim, &file.hardware, file.allow_remote).await.context("starting the device servers")?;
    let devices_out = base.join(&file.devices_out);
    if let Some(dir) = devices_out.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(&devices_out, hw.wire_config_toml()).with_context(|| format!("cannot write {}", devices_out.display()))?;
    println!("wssim hardware: {} units loaded, running {}x real time", manifest.len(), hw.workstation().config().speed);
    println!("  cold store   {:?}", hw.store_endpoint());
    println!("  conveyor     {:?}", hw.conveyor_endpoint());
    println!("  camera       {}", hw.camera_url());
    if let Some(http) = hw.http_address() {
        println!("  control      curl -d 'door open' http://{http}/fault   (state: GET /state)");
    }
    println!("  devices file {}", devices_out.display());
    if !script.is_empty() {
        println!("  fault script {} faults", script.len());
        hw.run_script(script);
    }
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    println!("wssim: stopped");
    Ok(())
}
