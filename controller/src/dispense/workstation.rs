//! The workstation as a whole, as a statig state machine:
//!
//! ```text
//! starting → homing → recovering → ready ⇄ dispensing        (superstate: operational)
//!            homing ─(failed)→ faulted
//! operational ─(interlock open)→ paused ─(closed)→ ready / dispensing
//! ready / faulted ─(maintenance entered)→ maintenance ─(exited)→ ready / dispensing
//! dispensing / paused ─(maintenance forced)→ maintenance   (motions wait until it ends)
//! starting ─(maintenance resumed after a restart)→ maintenance ─(exited)→ starting
//! ```
//! It gates what the clinic may do (no orders before homing) and is reported to
//! observers. The dispenses themselves are driven by [`crate::dispense::flow`].
#![allow(missing_debug_implementations)] // statig's generated superstate enum

use statig::prelude::*;

#[derive(Debug, Clone)]
pub enum WsEvent {
    HomingStarted,
    Homed,
    HomingFailed(String),
    /// Recovery has settled or resumed what the last run left unfinished.
    Recovered,
    DispenseStarted,
    DispenseEnded,
    InterlockOpened(String),
    InterlockClosed,
    /// A maintenance crew takes the workstation out of service (from ready or faulted).
    MaintenanceEntered(String),
    /// ...even with units in flight, whose motions then wait (the crew gave a reason).
    MaintenanceForced(String),
    MaintenanceExited,
    /// A restart found a crew's lease still running: the machine stays theirs (H-19).
    MaintenanceResumed(String),
}

/// Shared storage: how many dispenses are in flight, and the last fault text.
#[derive(Debug, Default, Clone)]
pub struct WorkstationMachine {
    pub in_flight: usize,
    pub fault: Option<String>,
    pub paused_by: Option<String>,
    /// Who took the workstation out of service.
    pub maintenance_by: Option<String>,
    /// Maintenance was resumed at start-up: handed back, the workstation goes on
    /// starting (homing, recovery) rather than straight to work.
    pub maintenance_from_start: bool,
}

#[state_machine(initial = "State::starting()", state(derive(Debug, Clone, PartialEq, Eq)))]
impl WorkstationMachine {
    /// Devices opened, not yet homed. HomingStarted → homing.
    #[state]
    fn starting(&mut self, event: &WsEvent) -> Outcome<State> {
        match event {
            WsEvent::HomingStarted => Transition(State::homing()),
            WsEvent::MaintenanceResumed(by) => {
                self.maintenance_from_start = true;
                self.enter_maintenance(by)
            }
            _ => Handled,
        }
    }

    /// Picker moving to its reference. Homed → recovering; HomingFailed → faulted.
    #[state]
    fn homing(&mut self, event: &WsEvent) -> Outcome<State> {
        match event {
            WsEvent::Homed => Transition(State::recovering()),
            WsEvent::HomingFailed(reason) => {
                self.fault = Some(reason.clone());
                Transition(State::faulted())
            }
            _ => Handled,
        }
    }

    /// Homed; what the last run left unfinished is being settled or resumed (its
    /// resumed dispenses counted), and no new order is taken until that is done:
    /// health says NOT_SERVING. Recovered → ready, dispensing, or paused.
    #[state]
    fn recovering(&mut self, event: &WsEvent) -> Outcome<State> {
        match event {
            WsEvent::Recovered => match self.paused_by {
                Some(_) => Transition(State::paused()),
                None => self.resume(),
            },
            WsEvent::DispenseStarted | WsEvent::DispenseEnded => {
                self.count(event);
                Handled
            }
            WsEvent::InterlockOpened(what) => {
                self.paused_by = Some(what.clone());
                Handled
            }
            WsEvent::InterlockClosed => {
                self.paused_by = None;
                Handled
            }
            _ => Handled,
        }
    }

    /// Nothing in flight. DispenseStarted → dispensing; MaintenanceEntered → maintenance.
    #[state(superstate = "operational")]
    fn ready(&mut self, event: &WsEvent) -> Outcome<State> {
        match event {
            WsEvent::DispenseStarted => {
                self.in_flight += 1;
                Transition(State::dispensing())
            }
            WsEvent::MaintenanceEntered(by) | WsEvent::MaintenanceForced(by) => self.enter_maintenance(by),
            _ => Super,
        }
    }

    /// Out of service for a crew: no orders; dispenses in flight (forced entry)
    /// make no motion. MaintenanceExited → ready, or dispensing if units are in flight.
    #[state]
    fn maintenance(&mut self, event: &WsEvent) -> Outcome<State> {
        match event {
            WsEvent::MaintenanceExited if self.maintenance_from_start => {
                self.maintenance_by = None;
                self.maintenance_from_start = false;
                Transition(State::starting())
            }
            WsEvent::MaintenanceExited => {
                self.maintenance_by = None;
                self.resume()
            }
            WsEvent::DispenseStarted | WsEvent::DispenseEnded => {
                self.count(event);
                Handled
            }
            _ => Handled,
        }
    }

    /// Units in flight. DispenseEnded (last one) → ready.
    #[state(superstate = "operational")]
    fn dispensing(&mut self, event: &WsEvent) -> Outcome<State> {
        match event {
            WsEvent::DispenseStarted => {
                self.in_flight += 1;
                Handled
            }
            WsEvent::DispenseEnded => {
                self.in_flight = self.in_flight.saturating_sub(1);
                if self.in_flight == 0 { Transition(State::ready()) } else { Handled }
            }
            WsEvent::MaintenanceForced(by) => self.enter_maintenance(by),
            _ => Super,
        }
    }

    /// InterlockOpened → paused (motion stops until it closes).
    #[superstate]
    fn operational(&mut self, event: &WsEvent) -> Outcome<State> {
        match event {
            WsEvent::InterlockOpened(what) => {
                self.paused_by = Some(what.clone());
                Transition(State::paused())
            }
            _ => Handled,
        }
    }

    /// An interlock is open; orders still queue. InterlockClosed → ready / dispensing.
    #[state]
    fn paused(&mut self, event: &WsEvent) -> Outcome<State> {
        match event {
            WsEvent::InterlockClosed => {
                self.paused_by = None;
                self.resume()
            }
            WsEvent::DispenseStarted | WsEvent::DispenseEnded => {
                self.count(event);
                Handled
            }
            WsEvent::MaintenanceForced(by) => self.enter_maintenance(by),
            _ => Handled,
        }
    }

    /// Homing failed; needs a maintenance crew, who enter maintenance, home, and exit.
    #[state]
    fn faulted(&mut self, event: &WsEvent) -> Outcome<State> {
        match event {
            WsEvent::MaintenanceEntered(by) | WsEvent::MaintenanceForced(by) => self.enter_maintenance(by),
            _ => Handled,
        }
    }
}

impl WorkstationMachine {
    /// Counts a dispense starting or ending (states that keep counting while away).
    fn count(&mut self, event: &WsEvent) {
        match event {
            WsEvent::DispenseStarted => self.in_flight += 1,
            WsEvent::DispenseEnded => self.in_flight = self.in_flight.saturating_sub(1),
            _ => {}
        }
    }

    /// Back to work: dispensing if units are in flight, else ready.
    fn resume(&self) -> Outcome<State> {
        if self.in_flight == 0 { Transition(State::ready()) } else { Transition(State::dispensing()) }
    }

    fn enter_maintenance(&mut self, by: &str) -> Outcome<State> {
        self.maintenance_by = Some(by.to_owned());
        Transition(State::maintenance())
    }
}

/// The workstation's state as the rest of the controller and its watchers see it:
/// compared as this enum, named (`name`) only for people and the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WorkstationState {
    Starting,
    Homing,
    Recovering,
    Ready,
    Dispensing,
    Paused,
    Faulted,
    Maintenance,
}

impl WorkstationState {
    pub fn name(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Homing => "homing",
            Self::Recovering => "recovering",
            Self::Ready => "ready",
            Self::Dispensing => "dispensing",
            Self::Paused => "paused",
            Self::Faulted => "faulted",
            Self::Maintenance => "maintenance",
        }
    }

    /// Whether the clinic may place orders now.
    pub fn accepts_orders(self) -> bool {
        matches!(self, Self::Ready | Self::Dispensing | Self::Paused)
    }
}

impl std::fmt::Display for WorkstationState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl State {
    pub fn kind(&self) -> WorkstationState {
        match self {
            State::Starting {} => WorkstationState::Starting,
            State::Homing {} => WorkstationState::Homing,
            State::Recovering {} => WorkstationState::Recovering,
            State::Ready {} => WorkstationState::Ready,
            State::Dispensing {} => WorkstationState::Dispensing,
            State::Paused {} => WorkstationState::Paused,
            State::Faulted {} => WorkstationState::Faulted,
            State::Maintenance {} => WorkstationState::Maintenance,
        }
    }

    pub fn name(&self) -> &'static str {
        self.kind().name()
    }

    /// Whether the clinic may place orders now.
    pub fn accepts_orders(&self) -> bool {
        self.kind().accepts_orders()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_are_accepted_only_after_homing_and_counted() {
        let mut sm = WorkstationMachine::default().state_machine();
        assert!(!sm.state().accepts_orders());
        sm.handle(&WsEvent::HomingStarted);
        sm.handle(&WsEvent::DispenseStarted);
        assert_eq!(sm.state().name(), "homing", "no dispensing before homing");
        sm.handle(&WsEvent::Homed);
        sm.handle(&WsEvent::DispenseStarted);
        assert_eq!(sm.state().name(), "recovering", "no orders while recovering (the resumed dispense is counted)");
        assert!(!sm.state().accepts_orders());
        sm.handle(&WsEvent::Recovered);
        assert_eq!(sm.state().name(), "dispensing", "the resumed dispense is in flight");
        sm.handle(&WsEvent::DispenseStarted);
        sm.handle(&WsEvent::InterlockOpened("restock door".into()));
        assert_eq!(sm.state().name(), "paused");
        sm.handle(&WsEvent::DispenseEnded);
        sm.handle(&WsEvent::InterlockClosed);
        assert_eq!(sm.state().name(), "dispensing");
        sm.handle(&WsEvent::DispenseEnded);
        assert_eq!(sm.state().name(), "ready");
    }

    #[test]
    fn an_interlock_opened_while_recovering_pauses_once_recovered() {
        let mut sm = WorkstationMachine::default().state_machine();
        sm.handle(&WsEvent::HomingStarted);
        sm.handle(&WsEvent::Homed);
        sm.handle(&WsEvent::InterlockOpened("e-stop".into()));
        sm.handle(&WsEvent::Recovered);
        assert_eq!(sm.state().name(), "paused");
    }

    #[test]
    fn maintenance_is_entered_only_when_ready_and_refuses_orders() {
        let mut sm = WorkstationMachine::default().state_machine();
        sm.handle(&WsEvent::HomingStarted);
        sm.handle(&WsEvent::Homed);
        sm.handle(&WsEvent::Recovered);
        sm.handle(&WsEvent::DispenseStarted);
        sm.handle(&WsEvent::MaintenanceEntered("crew-1".into()));
        assert_eq!(sm.state().name(), "dispensing", "not with a unit in flight");
        sm.handle(&WsEvent::DispenseEnded);
        sm.handle(&WsEvent::MaintenanceEntered("crew-1".into()));
        assert_eq!(sm.state().name(), "maintenance");
        assert!(!sm.state().accepts_orders());
        sm.handle(&WsEvent::MaintenanceExited);
        assert_eq!(sm.state().name(), "ready");
    }

    #[test]
    fn forced_maintenance_keeps_counting_and_resumes_dispensing() {
        let mut sm = WorkstationMachine::default().state_machine();
        sm.handle(&WsEvent::HomingStarted);
        sm.handle(&WsEvent::Homed);
        sm.handle(&WsEvent::Recovered);
        sm.handle(&WsEvent::DispenseStarted);
        sm.handle(&WsEvent::DispenseStarted);
        sm.handle(&WsEvent::MaintenanceForced("crew-1".into()));
        assert_eq!(sm.state().name(), "maintenance");
        sm.handle(&WsEvent::DispenseEnded);
        sm.handle(&WsEvent::MaintenanceExited);
        assert_eq!(sm.state().name(), "dispensing", "one unit still in flight");
        sm.handle(&WsEvent::DispenseEnded);
        assert_eq!(sm.state().name(), "ready");
    }

    #[test]
    fn a_crew_can_take_a_faulted_workstation_into_maintenance() {
        let mut sm = WorkstationMachine::default().state_machine();
        sm.handle(&WsEvent::HomingStarted);
        sm.handle(&WsEvent::HomingFailed("picker: timeout".into()));
        sm.handle(&WsEvent::MaintenanceEntered("crew-1".into()));
        assert_eq!(sm.state().name(), "maintenance");
        sm.handle(&WsEvent::MaintenanceExited);
        assert_eq!(sm.state().name(), "ready");
    }

    #[test]
    fn failed_homing_faults() {
        let mut sm = WorkstationMachine::default().state_machine();
        sm.handle(&WsEvent::HomingStarted);
        sm.handle(&WsEvent::HomingFailed("picker: timeout".into()));
        assert_eq!(sm.state().name(), "faulted");
        assert!(!sm.state().accepts_orders());
        assert_eq!(sm.inner().fault.as_deref(), Some("picker: timeout"));
    }
}
