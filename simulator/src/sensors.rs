//! Simulated temperature probes and the safety interlock chain.

use crate::world::Shared;
use async_trait::async_trait;
use hal::devices::Result;
use hal::{InterlockStatus, Interlocks, TemperatureProbe};
use rand::Rng;
use std::sync::Arc;

/// The two independent cabinet probes and the belt-tunnel probe.
pub(crate) fn probes(shared: &Arc<Shared>) -> Vec<Arc<dyn TemperatureProbe>> {
    ["cabinet-a", "cabinet-b", "belt-tunnel"]
        .into_iter()
        .map(|name| Arc::new(SimProbe { name, shared: shared.clone() }) as Arc<dyn TemperatureProbe>)
        .collect()
}

#[derive(Debug)]
struct SimProbe {
    name: &'static str,
    shared: Arc<Shared>,
}

#[async_trait]
impl TemperatureProbe for SimProbe {
    fn name(&self) -> &str {
        self.name
    }

    async fn read_celsius(&self) -> Result<f64> {
        let jitter: f64 = self.shared.world().rng.random_range(-0.1..0.1);
        Ok(self.shared.config.cabinet_celsius + jitter)
    }
}

#[derive(Debug)]
pub(crate) struct SimInterlocks {
    shared: Arc<Shared>,
}

impl SimInterlocks {
    pub fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

#[async_trait]
impl Interlocks for SimInterlocks {
    async fn read(&self) -> Result<InterlockStatus> {
        Ok(self.shared.world().interlocks)
    }
}
