//! Simulated temperature probes and the safety interlock chain.

use crate::world::Plant;
use async_trait::async_trait;
use hal::devices::Result;
use hal::{InterlockStatus, Interlocks, TemperatureProbe};
use rand::Rng;
use std::sync::Arc;

/// The two independent cabinet probes and the belt-tunnel probe.
pub(crate) fn probes(shared: &Arc<Plant>) -> Vec<Arc<dyn TemperatureProbe>> {
    ["cabinet-a", "cabinet-b", "belt-tunnel"]
        .into_iter()
        .map(|name| Arc::new(SimProbe { name, shared: shared.clone() }) as Arc<dyn TemperatureProbe>)
        .collect()
}

#[derive(Debug)]
struct SimProbe {
    name: &'static str,
    shared: Arc<Plant>,
}

#[async_trait]
impl TemperatureProbe for SimProbe {
    fn name(&self) -> &str {
        self.name
    }

    async fn read_celsius(&self) -> Result<f64> {
        read_probe(&self.shared, self.name).ok_or_else(|| hal::DeviceError::new(self.name, hal::ErrorKind::Exception, "the probe reports a sensor fault"))
    }
}

/// What a probe reads now: the cabinet's temperature (the belt tunnel runs a degree
/// warmer), sensor noise, and probe B's injected offset; `None` for a failed probe.
pub(crate) fn read_probe(shared: &Plant, name: &str) -> Option<f64> {
    let mut world = shared.world_now();
    if world.faults.probes_failed.contains(name) {
        return None;
    }
    let jitter: f64 = world.rng.random_range(-0.1..0.1);
    let base = world.thermal.cabinet_c + jitter;
    Some(match name {
        "cabinet-b" => base + world.faults.probe_b_offset,
        "belt-tunnel" => base + 1.0,
        _ => base,
    })
}

#[derive(Debug)]
pub(crate) struct SimInterlocks {
    shared: Arc<Plant>,
}

impl SimInterlocks {
    pub fn new(shared: Arc<Plant>) -> Self {
        Self { shared }
    }
}

#[async_trait]
impl Interlocks for SimInterlocks {
    async fn read(&self) -> Result<InterlockStatus> {
        Ok(self.shared.world().interlocks)
    }
}
