//! The one way a motion command reaches a device (H-05). A motion is sent only with
//! its intent already in the journal (an [`Intended`] exists only once one was
//! written), every interlock closed and readable at that moment, and the machine
//! held by whoever asks: the service while no crew holds it, or the crew member
//! holding the maintenance lease. A crew never moves the belt under a unit. Nothing
//! else in the controller calls a device's motion methods (`tests/layout.rs` checks).

use crate::journal::Intended;
use hal::{DeviceError, Devices, PickerAxis, SlotAddress, Station, TrackingId};

/// The device a motion is asked of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mover {
    /// The cold store's picker and hatch.
    Picker,
    Belt,
}

/// A motion command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Motion {
    /// Drive to the reference switches (after a power cut, at start-up, in maintenance).
    Home(Mover),
    /// Take the unit in `slot` to the hatch.
    Pick { slot: SlotAddress, carrier: TrackingId },
    /// Put the unit in the hatch onto the belt.
    Release { carrier: TrackingId },
    /// Run a unit on the belt to a station.
    Convey { carrier: TrackingId, to: Station },
    /// Move one picker axis by hand (maintenance).
    JogPicker { axis: PickerAxis, millimetres: i32 },
    /// Move the belt by hand (maintenance).
    JogBelt { millimetres: i32 },
}

impl Motion {
    pub fn mover(&self) -> Mover {
        match self {
            Self::Home(mover) => *mover,
            Self::Pick { .. } | Self::Release { .. } | Self::JogPicker { .. } => Mover::Picker,
            Self::Convey { .. } | Self::JogBelt { .. } => Mover::Belt,
        }
    }

    /// Moves the whole belt without a unit of its own to carry: every unit on it
    /// would be dragged off its station.
    fn drags_the_belt(&self) -> bool {
        matches!(self, Self::Home(Mover::Belt) | Self::JogBelt { .. })
    }
}

/// On whose behalf a motion is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authority<'a> {
    /// Dispensing, recovery and start-up: only while no crew holds the machine.
    Service,
    /// A crew member: only while holding the maintenance lease.
    Crew(&'a str),
}

/// Who holds the machine now.
pub trait Holder: Sync {
    /// The crew member holding the maintenance lease, or `None` in service.
    fn crew(&self) -> Option<String>;

    /// The controller is stopping gracefully: the service starts no new motion.
    fn stopping(&self) -> bool {
        false
    }

    /// Where the motions under way are counted, if anywhere (a graceful stop
    /// waits for them to finish).
    fn motions(&self) -> Option<&std::sync::atomic::AtomicUsize> {
        None
    }
}

/// Counts one motion under way for as long as it lives.
struct Moving<'a>(Option<&'a std::sync::atomic::AtomicUsize>);

impl<'a> Moving<'a> {
    fn start(counter: Option<&'a std::sync::atomic::AtomicUsize>) -> Self {
        if let Some(c) = counter {
            c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        Self(counter)
    }
}

impl Drop for Moving<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.0 {
            c.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

/// A machine no crew can hold (start-up recovery, before any request is served).
#[derive(Debug)]
pub struct InService;

impl Holder for InService {
    fn crew(&self) -> Option<String> {
        None
    }
}

/// Why the gate did not send a motion; the device never saw it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{0} open")]
    InterlockOpen(String),
    #[error("the interlocks cannot be read ({0})")]
    InterlocksUnreadable(String),
    /// Someone else holds the machine (a crew in service time, or no lease).
    #[error("{0}")]
    NotHolder(String),
    #[error("{0} unit(s) on the belt: the belt moves by hand only when it is empty")]
    BeltOccupied(usize),
    #[error("what is on the belt cannot be read ({0})")]
    BeltUnreadable(String),
}

#[derive(Debug, thiserror::Error)]
pub enum MotionError {
    #[error("motion refused: {0}")]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Device(#[from] DeviceError),
}

/// The gate every motion passes.
pub struct Gate<'a> {
    devices: &'a Devices,
    holder: &'a dyn Holder,
}

impl std::fmt::Debug for Gate<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate").field("crew", &self.holder.crew()).finish_non_exhaustive()
    }
}

impl<'a> Gate<'a> {
    pub fn new(devices: &'a Devices, holder: &'a dyn Holder) -> Self {
        Self { devices, holder }
    }

    /// Sends `motion` if it may be sent now (see [`Gate::check`]).
    pub async fn send(&self, by: Authority<'_>, _intended: &Intended, motion: Motion) -> Result<(), MotionError> {
        let _moving = Moving::start(self.holder.motions());
        self.check(by, motion).await?;
        let (store, conveyor) = (&self.devices.store, &self.devices.conveyor);
        match motion {
            Motion::Home(Mover::Picker) => store.home().await?,
            Motion::Home(Mover::Belt) => conveyor.home().await?,
            Motion::Pick { slot, carrier } => store.pick_to_hatch(slot, carrier).await?,
            Motion::Release { carrier } => store.release_to_belt(carrier).await?,
            Motion::Convey { carrier, to } => conveyor.convey(carrier, to).await?,
            Motion::JogPicker { axis, millimetres } => store.jog(axis, millimetres).await?,
            Motion::JogBelt { millimetres } => conveyor.jog(millimetres).await?,
        }
        Ok(())
    }

    /// Sends each motion in turn, once all of them may be sent: a sequence the gate
    /// would stop half-way is not started.
    pub async fn send_all(&self, by: Authority<'_>, intended: &Intended, motions: &[Motion]) -> Result<(), MotionError> {
        for motion in motions {
            self.check(by, *motion).await?;
        }
        for motion in motions {
            self.send(by, intended, *motion).await?;
        }
        Ok(())
    }

    /// Why `motion` may not be sent now, if it may not: an interlock open or
    /// unreadable; the machine held by someone else; a crew's belt motion with a
    /// unit on the belt (or the belt unreadable).
    pub async fn check(&self, by: Authority<'_>, motion: Motion) -> Result<(), Refusal> {
        if by == Authority::Service && self.holder.stopping() {
            return Err(Refusal::NotHolder("the controller is stopping".into()));
        }
        let not_holder = match (by, self.holder.crew()) {
            (Authority::Service, Some(crew)) => Some(format!("maintenance in progress: {crew} holds the machine")),
            (Authority::Crew(actor), None) => Some(format!("{actor} holds no maintenance lease (never taken, lapsed or released)")),
            (Authority::Crew(actor), Some(crew)) if crew != actor => Some(format!("{crew} holds the maintenance lease, not {actor}")),
            _ => None,
        };
        if let Some(why) = not_holder {
            return Err(Refusal::NotHolder(why));
        }
        let interlocks = self.devices.interlocks.read().await.map_err(|e| Refusal::InterlocksUnreadable(e.to_string()))?;
        if !interlocks.all_closed() {
            return Err(Refusal::InterlockOpen(interlocks.open_names().join(", ")));
        }
        if matches!(by, Authority::Crew(_)) && motion.drags_the_belt() {
            let on_belt = self.devices.conveyor.units_on_belt().await.map_err(|e| Refusal::BeltUnreadable(e.to_string()))?;
            if !on_belt.is_empty() {
                return Err(Refusal::BeltOccupied(on_belt.len()));
            }
        }
        Ok(())
    }
}
