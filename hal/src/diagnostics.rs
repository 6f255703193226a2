//! What a maintenance crew asks of a field device on a bus, as a small trait, so the
//! controller's diagnostics never hold a concrete driver: who it is, how its link
//! fares, its status and alarm bits, raw registers, the alarm latch, its heartbeat.

use crate::error::DeviceError;
use crate::modbus::field::{DeviceStatus, FieldDevice, Health, Identity};
use crate::modbus::link::LinkStats;
use async_trait::async_trait;
use tokio::sync::watch;

/// One field device as diagnostics see it.
#[async_trait]
pub trait FieldDiagnostics: Send + Sync {
    /// The device's name, e.g. `"cold store"` (also the fault board's source).
    fn name(&self) -> &'static str;
    /// Where it is reached, e.g. `rtu:/dev/ttyUSB0@115200 unit 1`.
    fn transport(&self) -> String;
    /// Requests, retries and failures on its link so far.
    fn stats(&self) -> LinkStats;
    /// Its heartbeat as last seen, now and on every change.
    fn health(&self) -> watch::Receiver<Health>;
    /// Stops our heartbeat to it (the device then stops motion, as after a crash).
    fn stop_heartbeat(&self);
    async fn identity(&self) -> Result<Identity, DeviceError>;
    /// The status word with its latched alarms.
    async fn status(&self) -> Result<DeviceStatus, DeviceError>;
    /// `count` raw registers from `address`: holding registers, or input registers.
    async fn read_registers(&self, holding: bool, address: u16, count: u16) -> Result<Vec<u16>, DeviceError>;
    /// Resets the device's latched alarm bits.
    async fn reset_alarms(&self) -> Result<(), DeviceError>;
}

#[async_trait]
impl FieldDiagnostics for FieldDevice {
    fn name(&self) -> &'static str {
        self.link().device()
    }

    fn transport(&self) -> String {
        self.link().transport().to_string()
    }

    fn stats(&self) -> LinkStats {
        self.link().stats()
    }

    fn health(&self) -> watch::Receiver<Health> {
        FieldDevice::health(self)
    }

    fn stop_heartbeat(&self) {
        FieldDevice::stop_heartbeat(self);
    }

    async fn identity(&self) -> Result<Identity, DeviceError> {
        FieldDevice::identity(self).await
    }

    async fn status(&self) -> Result<DeviceStatus, DeviceError> {
        FieldDevice::status(self).await
    }

    async fn read_registers(&self, holding: bool, address: u16, count: u16) -> Result<Vec<u16>, DeviceError> {
        if holding { self.link().read_holding(address, count).await } else { self.link().read_input(address, count).await }
    }

    async fn reset_alarms(&self) -> Result<(), DeviceError> {
        FieldDevice::reset_alarms(self).await
    }
}
