//! What the workstation publishes to watchers besides dispenses: the fault board,
//! the latest temperature sample, and the supervisor that keeps the board true to
//! the hardware (interlocks, each field device's alarm bits and heartbeat).

use crate::faultboard::{FaultBoard, FaultKind};
use crate::journal::Journal;
use chrono::{DateTime, Utc};
use hal::Devices;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// One cold-chain sample: every probe, `None` where it could not be read.
#[derive(Debug, Clone, PartialEq)]
pub struct TemperatureSample {
    pub at: DateTime<Utc>,
    pub readings: Vec<(String, Option<f64>)>,
}

#[derive(Debug, Clone)]
pub struct Telemetry {
    pub faults: FaultBoard,
    temperatures: watch::Sender<Option<TemperatureSample>>,
}

/// The board's source name for the safety chain.
pub const INTERLOCKS: &str = "interlocks";

impl Telemetry {
    pub fn new(journal: Arc<Journal>) -> Self {
        Self { faults: FaultBoard::new(journal), temperatures: watch::channel(None).0 }
    }

    pub fn publish_temperatures(&self, sample: TemperatureSample) {
        self.temperatures.send_replace(Some(sample));
    }

    pub fn temperatures(&self) -> watch::Receiver<Option<TemperatureSample>> {
        self.temperatures.subscribe()
    }
}

/// Polls the interlocks and every field device's alarms at `period`, raising and
/// clearing their faults; and turns each field device's heartbeat watch into the
/// device-silent fault. Runs for the life of the process.
pub fn supervise(devices: Devices, board: FaultBoard, period: Duration) {
    for device in &devices.field {
        let (device, board) = (device.clone(), board.clone());
        tokio::spawn(async move {
            let mut health = device.health();
            let name = device.link().device();
            while health.changed().await.is_ok() {
                let silent = health.borrow_and_update().silent;
                let id = format!("{}@{name}", crate::faults::DEVICE_SILENT.code);
                if silent {
                    board.raise(crate::faults::DEVICE_SILENT.into(), name, &format!("no heartbeat from {name} on {}", device.link().transport()));
                } else {
                    board.clear(&id, None);
                }
            }
        });
    }
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let interlock = FaultKind::from(crate::faults::definition(hal::ErrorKind::Interlock));
        let interlock_id = format!("{}@{INTERLOCKS}", interlock.code);
        loop {
            ticker.tick().await;
            match devices.interlocks.read().await {
                Ok(status) if status.all_closed() => {
                    board.clear(&interlock_id, None);
                }
                Ok(status) => board.raise(interlock, INTERLOCKS, &format!("{} open", status.open_names().join(", "))),
                // A device that does not answer has its own fault (silent).
                Err(_) => {}
            }
            for device in &devices.field {
                let name = device.link().device();
                let Ok(status) = device.status().await else { continue };
                let codes: Vec<String> = status.alarms.iter().map(|a| a.code.to_owned()).collect();
                for alarm in &status.alarms {
                    board.raise(FaultKind { code: alarm.code, cause: alarm.cause, remedy: alarm.remedy }, name, &format!("alarm bit {} latched by {name}", alarm.bit));
                }
                // Device alarm codes are CS-xx / CV-xx.
                board.clear_unless("C", name, &codes);
            }
        }
    });
}
