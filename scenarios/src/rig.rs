//! Wiring the controller to simulated hardware in one process: the simulation
//! side reads a config's `[hardware.simulator]` (the controller keeps it unread),
//! builds the simulated workstation with the loading manifest in its slots and
//! hands the controller its devices. Used by `wssim serve`, the demo and the
//! scenario runner.

use controller::assemble::{Assembled, assemble_on, load_manifest};
use controller::config::{Config, HardwareConfig};
use controller::journal::clock::Clock;
use simulator::{SimConfig, SimWorkstation};

/// The `[hardware.simulator]` settings of a config for in-process simulated hardware.
pub fn sim_config(config: &Config) -> anyhow::Result<SimConfig> {
    match &config.hardware {
        HardwareConfig::Simulated { simulator } => SimConfig::from_table(simulator).map_err(anyhow::Error::msg),
        HardwareConfig::Wire { .. } => anyhow::bail!("[hardware] kind = \"wire\": this needs simulated hardware (kind = \"simulated\")"),
    }
}

/// The simulated workstation a config describes, loaded with its manifest.
pub fn simulated_workstation(config: &Config) -> anyhow::Result<SimWorkstation> {
    Ok(SimWorkstation::new(sim_config(config)?, &load_manifest(config)?))
}

/// A controller on the device models called in process, going by `clock`.
pub async fn assemble_in_process(config: Config, clock: Clock) -> anyhow::Result<(Assembled, SimWorkstation)> {
    let sim = simulated_workstation(&config)?;
    let assembled = assemble_on(config, clock, sim.devices()).await?;
    Ok((assembled, sim))
}
