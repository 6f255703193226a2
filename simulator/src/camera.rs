//! The simulated scan-station camera: renders the label of the unit at the scan
//! station, one frame per roller step, as real pixels.

use crate::label::{encode_symbol, render_frame};
use crate::world::Shared;
use async_trait::async_trait;
use hal::devices::Result;
use hal::{DeviceError, ErrorKind, Frame, ScanCamera, Station};
use std::sync::Arc;

#[derive(Debug)]
pub(crate) struct SimCamera {
    shared: Arc<Shared>,
}

impl SimCamera {
    pub fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

#[async_trait]
impl ScanCamera for SimCamera {
    async fn grab_frame(&self) -> Result<Frame> {
        self.shared.clock.sleep(self.shared.config.timings.frame_s).await;
        let mut world = self.shared.world();
        let label = world.belt.values().find(|(at, _)| *at == Station::Scan).map(|(_, unit)| unit.label.clone());
        let symbol = label
            .map(|l| encode_symbol(&l))
            .transpose()
            .map_err(|e| DeviceError::new("camera", ErrorKind::Exception, format!("label cannot be printed: {e}")))?;
        world.frames_grabbed += 1;
        let phase = world.frames_grabbed - 1;
        Ok(render_frame(symbol.as_ref(), phase, &mut world.rng))
    }
}
