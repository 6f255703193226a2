//! The simulated booths: tray presence sensors and the guardian's display.

use crate::world::Plant;
use async_trait::async_trait;
use hal::devices::Result;
use hal::{BoothDisplay, BoothId, Booths, DeviceError, ErrorKind, TrayState};
use std::sync::Arc;

#[derive(Debug)]
pub(crate) struct SimBooths {
    shared: Arc<Plant>,
}

impl SimBooths {
    pub fn new(shared: Arc<Plant>) -> Self {
        Self { shared }
    }

    fn check(&self, booth: BoothId) -> Result<()> {
        if booth.0 == 0 || booth.0 > self.shared.config.booths {
            return Err(DeviceError::new("booths", ErrorKind::InvalidTarget, format!("there is no {booth}")));
        }
        Ok(())
    }
}

#[async_trait]
impl Booths for SimBooths {
    fn count(&self) -> u8 {
        self.shared.config.booths
    }

    async fn show(&self, booth: BoothId, display: &BoothDisplay) -> Result<()> {
        self.check(booth)?;
        self.shared.world().displays.insert(booth, display.clone());
        Ok(())
    }

    async fn clear(&self, booth: BoothId) -> Result<()> {
        self.check(booth)?;
        self.shared.world().displays.remove(&booth);
        Ok(())
    }

    async fn tray(&self, booth: BoothId) -> Result<TrayState> {
        self.check(booth)?;
        let world = self.shared.world();
        let occupied = world.trays.contains_key(&booth) || world.faults.stuck_tray == Some(booth);
        Ok(if occupied { TrayState::Occupied } else { TrayState::Empty })
    }
}
