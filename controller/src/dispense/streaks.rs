//! Units lost the same way one after another (unreadable at the scan station,
//! jammed or dropped in handling) mean the station, not the units, is at fault:
//! after `Settings::stop_picking_after` in a row the runner raises a fault whose
//! policy is `StopPicking`, and no unit leaves the store until a crew clears it
//! (H-08). A unit that gets through resets its streak.

use std::sync::atomic::{AtomicU32, Ordering};

/// How a unit was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Loss {
    /// The scan station could not read it.
    Unreadable,
    /// A jam, a grip failure or a wrong position took it (policy `RejectUnit`).
    Handling,
}

/// The current streak of each kind of loss.
#[derive(Debug, Default)]
pub(crate) struct Streaks {
    unreadable: AtomicU32,
    handling: AtomicU32,
}

impl Streaks {
    fn counter(&self, loss: Loss) -> &AtomicU32 {
        match loss {
            Loss::Unreadable => &self.unreadable,
            Loss::Handling => &self.handling,
        }
    }

    /// One more unit lost this way; the streak's length now.
    pub fn lost(&self, loss: Loss) -> u32 {
        self.counter(loss).fetch_add(1, Ordering::SeqCst) + 1
    }

    /// A unit got through: the streak is broken.
    pub fn passed(&self, loss: Loss) {
        self.counter(loss).store(0, Ordering::SeqCst);
    }
}
