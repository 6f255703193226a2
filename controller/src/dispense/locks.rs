//! The station's locks, owned in one place so the protocol between runners reads
//! in one file: which resource each guards, and from when to when it is held.

use hal::BoothId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Mutex as AsyncMutex;

/// Mutual exclusion between runners (never a maintenance lease, see `MaintenanceLease`).
#[derive(Debug)]
pub(crate) struct Locks {
    /// One dispense at each booth at a time: held from the drop into the tray until
    /// the dispense ends.
    pub booths: HashMap<BoothId, Arc<AsyncMutex<()>>>,
    /// One unit on its way to each booth's gate, or waiting there: held from
    /// allocation until the unit leaves the gate. The next patient's unit is thus
    /// picked and travels while the patient before is served, and never two ahead.
    pub gates: HashMap<BoothId, Arc<AsyncMutex<()>>>,
    /// One unit in the picker at a time (and the hatch it fills: a unit a restart
    /// found there keeps it until released onto the belt).
    pub picker: Arc<AsyncMutex<()>>,
    /// One runner homes a device that lost its reference (a power cut) at a time.
    pub homing: AsyncMutex<()>,
    /// One unit at the scan station at a time: held from the run to the station
    /// until the unit leaves it.
    pub scan_station: Arc<AsyncMutex<()>>,
    /// Choosing and reserving a unit is one step, so two orders never get one unit.
    allocation: Mutex<()>,
}

impl Locks {
    pub fn new(booths: u8) -> Self {
        let per_booth = || (1..=booths).map(|b| (BoothId(b), Arc::new(AsyncMutex::new(())))).collect::<HashMap<_, _>>();
        Self {
            booths: per_booth(),
            gates: per_booth(),
            picker: Arc::new(AsyncMutex::new(())),
            homing: AsyncMutex::new(()),
            scan_station: Arc::new(AsyncMutex::new(())),
            allocation: Mutex::new(()),
        }
    }

    /// Held while a unit is chosen and reserved.
    pub fn allocation(&self) -> MutexGuard<'_, ()> {
        self.allocation.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
