//! The life of one dispense as a statig state machine. It is pure: entry actions put
//! the next [`Command`] in the [`Outbox`]; the runner journals and executes it and
//! feeds the outcome back as an [`Event`]. Every state has exactly one command in
//! flight, so a unit is always in a known place.
//!
//! ```text
//! queued → picking → on_belt → scanning → verifying → to_gate → at_gate → awaiting_validation
//!                       │           │          │          │         │     → awaiting_administration → administered
//!                       └───────────┴──────────┴──────────┴─────────┴──→ to_reject → rejected
//! queued/picking/to_reject/at booth ──(no stock, fault)──→ failed
//! queued ──(cancelled by the clinic)──→ cancelled
//! ```
//!
//! A dispense a restart interrupted starts again in the state its unit's place
//! calls for ([`Resume`]), not always in `queued`.
#![allow(missing_debug_implementations)] // statig's generated superstate enum

use crate::rules::inventory::StockRecord;
use crate::dispense::status::Stage;
use crate::journal::{self, Intent};
use crate::scan::Decoded;
use crate::rules::verify::{Violation, ViolationId};
use crate::ops::faults::describe;
use hal::{BoothId, DeviceError, SlotAddress, Station};
use statig::prelude::*;

/// What the runner must do next.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Wait for the booth's gate to be free, then choose and reserve a unit (FEFO).
    Allocate,
    /// Pick the unit to the hatch and put it on the belt.
    Pick { slot: SlotAddress },
    /// Run the unit's carrier to a station. To a booth's tray (from its gate) the
    /// runner first waits for the booth's previous patient and an empty tray, and
    /// checks the unit's holds again: `Violations` instead of `Arrived` if it may
    /// no longer be given.
    Convey(Station),
    /// Grab frames until the code is read or the attempts run out.
    Scan,
    /// Check the read code against the order and the records.
    Verify(Decoded),
    /// Show product, lot and expiry at the booth; wait for the guardian's validation.
    AwaitValidation,
    AwaitAdministration,
    /// Settle the unit's record and free the booth; the dispense ends in `Stage`.
    Finish(Stage),
}

/// The outcome of a command.
#[derive(Debug, Clone)]
pub enum Event {
    Allocated(StockRecord),
    NoStock(String),
    Picked,
    Arrived,
    Read(Decoded),
    /// The frames ran out (or disagreed); `why` says what was seen.
    Unreadable { why: String },
    Passed,
    Violations(Vec<Violation>),
    Validated,
    Administered { nurse_id: String, site: Option<String> },
    /// The clinic cancelled while the dispense was still queued.
    Cancelled { detail: String },
    /// A unit taken from its tray while the controller was down, whose
    /// administration nobody confirmed in time.
    Unconfirmed { detail: String },
    Fault(DeviceError),
    Finished,
}

impl Command {
    /// The command as the journal keeps it.
    pub fn intent(&self) -> Intent {
        match self {
            Command::Allocate => Intent::Allocate,
            Command::Pick { slot } => Intent::Pick { slot: *slot },
            Command::Convey(to) => Intent::Convey { to: *to },
            Command::Scan => Intent::Scan,
            Command::Verify(decoded) => Intent::Verify { code: decoded.code.canonical() },
            Command::AwaitValidation => Intent::AwaitValidation,
            Command::AwaitAdministration => Intent::AwaitAdministration,
            Command::Finish(stage) => Intent::Finish { stage: *stage },
        }
    }
}

impl Event {
    /// The event as the journal keeps it.
    pub fn outcome(&self) -> journal::Outcome {
        match self {
            Event::Allocated(unit) => journal::Outcome::Allocated { code: unit.code.clone(), slot: unit.slot },
            Event::NoStock(_) => journal::Outcome::NoStock,
            Event::Picked => journal::Outcome::Picked,
            Event::Arrived => journal::Outcome::Arrived,
            Event::Read(decoded) => journal::Outcome::Read { symbology: decoded.symbology.clone(), code: decoded.code.canonical() },
            Event::Unreadable { .. } => journal::Outcome::Unreadable,
            Event::Passed => journal::Outcome::Passed,
            Event::Violations(found) => journal::Outcome::Violations { ids: found.iter().map(|v| v.id).collect() },
            Event::Validated => journal::Outcome::Validated,
            Event::Administered { .. } => journal::Outcome::Administered,
            Event::Cancelled { .. } => journal::Outcome::Cancelled,
            Event::Unconfirmed { .. } => journal::Outcome::Unconfirmed,
            Event::Fault(e) => journal::Outcome::Fault { kind: e.kind() },
            Event::Finished => journal::Outcome::Finished,
        }
    }
}

/// Where the state machine puts the next command.
#[derive(Debug, Default)]
pub struct Outbox(Option<Command>);

impl Outbox {
    fn push(&mut self, command: Command) {
        debug_assert!(self.0.is_none(), "one command at a time");
        self.0 = Some(command);
    }

    pub fn take(&mut self) -> Option<Command> {
        self.0.take()
    }
}

/// The dispense's memory across states.
#[derive(Debug, Clone)]
pub struct DispenseFlow {
    pub booth: BoothId,
    pub unit: Option<StockRecord>,
    pub violations: Vec<Violation>,
    pub detail: String,
    /// The nurse who gave the dose, and where.
    pub administered_by: Option<String>,
    pub administered_site: Option<String>,
}

impl DispenseFlow {
    pub fn new(booth: BoothId) -> Self {
        Self { booth, unit: None, violations: Vec::new(), detail: String::new(), administered_by: None, administered_site: None }
    }
}

#[state_machine(initial = "State::queued()", state(derive(Debug, Clone, PartialEq, Eq)))]
impl DispenseFlow {
    /// Waiting for the booth and a unit. Allocated → picking; NoStock → failed.
    #[state(entry_action = "enter_queued")]
    fn queued(&mut self, event: &Event) -> Outcome<State> {
        match event {
            Event::Allocated(unit) => {
                self.unit = Some(unit.clone());
                Transition(State::picking())
            }
            Event::NoStock(reason) => {
                self.detail = reason.clone();
                Transition(State::failed())
            }
            Event::Cancelled { detail } => {
                self.detail = detail.clone();
                Transition(State::cancelled())
            }
            // The patient's own checks failed: nothing was picked.
            Event::Violations(found) => {
                self.violations = found.clone();
                Transition(State::rejected())
            }
            _ => Handled,
        }
    }

    #[action]
    fn enter_queued(context: &mut Outbox) {
        context.push(Command::Allocate);
    }

    /// Picker to hatch, hatch to belt. Picked → on_belt; Fault → failed.
    #[state(entry_action = "enter_picking")]
    fn picking(&mut self, event: &Event) -> Outcome<State> {
        match event {
            Event::Picked => Transition(State::on_belt()),
            Event::Fault(e) => {
                self.detail = format!("pick failed: {}", describe(e));
                Transition(State::failed())
            }
            _ => Handled,
        }
    }

    #[action]
    fn enter_picking(&mut self, context: &mut Outbox) {
        match &self.unit {
            Some(unit) => context.push(Command::Pick { slot: unit.slot }),
            None => context.push(Command::Finish(Stage::Failed)),
        }
    }

    /// On the belt to the scan station. Arrived → scanning; Fault → to_reject.
    #[state(superstate = "travelling", entry_action = "enter_on_belt")]
    fn on_belt(event: &Event) -> Outcome<State> {
        match event {
            Event::Arrived => Transition(State::scanning()),
            _ => Super,
        }
    }

    #[action]
    fn enter_on_belt(context: &mut Outbox) {
        context.push(Command::Convey(Station::Scan));
    }

    /// Reading the code. Read → verifying; Unreadable → to_reject; Fault → to_reject.
    #[state(superstate = "travelling", entry_action = "enter_scanning")]
    fn scanning(&mut self, event: &Event) -> Outcome<State> {
        match event {
            Event::Read(decoded) => Transition(State::verifying(decoded.clone())),
            Event::Unreadable { why } => {
                self.violations.push(Violation::new(ViolationId::Unreadable, why.clone()));
                Transition(State::to_reject())
            }
            _ => Super,
        }
    }

    #[action]
    fn enter_scanning(context: &mut Outbox) {
        context.push(Command::Scan);
    }

    /// Checking the unit. Passed → to_gate; Violations → to_reject.
    #[state(superstate = "travelling", entry_action = "enter_verifying")]
    fn verifying(decoded: &Decoded, event: &Event) -> Outcome<State> {
        let _ = decoded;
        match event {
            Event::Passed => Transition(State::to_gate()),
            _ => Super,
        }
    }

    #[action]
    fn enter_verifying(decoded: &Decoded, context: &mut Outbox) {
        context.push(Command::Verify(decoded.clone()));
    }

    /// Verified; on the belt to the booth's gate, where it waits beside the booth
    /// while the patient before is served. Arrived → at_gate; Fault → to_reject.
    #[state(superstate = "travelling", entry_action = "enter_to_gate")]
    fn to_gate(event: &Event) -> Outcome<State> {
        match event {
            Event::Arrived => Transition(State::at_gate()),
            _ => Super,
        }
    }

    #[action]
    fn enter_to_gate(&mut self, context: &mut Outbox) {
        context.push(Command::Convey(Station::Gate(self.booth)));
    }

    /// At the gate; dropped into the tray once the booth is free. Arrived →
    /// awaiting_validation; Violations (a hold or the time out of refrigeration
    /// found at release) → to_reject; Fault → to_reject.
    #[state(superstate = "travelling", entry_action = "enter_at_gate")]
    fn at_gate(event: &Event) -> Outcome<State> {
        match event {
            Event::Arrived => Transition(State::awaiting_validation()),
            _ => Super,
        }
    }

    #[action]
    fn enter_at_gate(&mut self, context: &mut Outbox) {
        context.push(Command::Convey(Station::Booth(self.booth)));
    }

    /// A unit on the belt that failed a check (at verification, or again at the
    /// gate), or that a device failure has touched, cannot be given:
    /// Violations → to_reject; Fault → to_reject.
    #[superstate]
    fn travelling(&mut self, event: &Event) -> Outcome<State> {
        match event {
            Event::Violations(found) => {
                self.violations.extend(found.iter().cloned());
                Transition(State::to_reject())
            }
            Event::Fault(e) => {
                self.violations.push(Violation::new(ViolationId::HandlingFault, describe(e)));
                Transition(State::to_reject())
            }
            _ => Handled,
        }
    }

    /// In the tray; the guardian validates. Validated → awaiting_administration;
    /// Violations (timeout, booth scan of another unit) → rejected; Fault → failed.
    #[state(superstate = "at_booth", entry_action = "enter_awaiting_validation")]
    fn awaiting_validation(&mut self, event: &Event) -> Outcome<State> {
        match event {
            Event::Validated => Transition(State::awaiting_administration()),
            Event::Violations(found) => {
                self.violations = found.clone();
                Transition(State::rejected())
            }
            _ => Super,
        }
    }

    #[action]
    fn enter_awaiting_validation(context: &mut Outbox) {
        context.push(Command::AwaitValidation);
    }

    /// Administered → administered; Fault → failed.
    #[state(superstate = "at_booth", entry_action = "enter_awaiting_administration")]
    fn awaiting_administration(&mut self, event: &Event) -> Outcome<State> {
        match event {
            Event::Administered { nurse_id, site } => {
                self.detail = match site {
                    Some(site) => format!("administered by {nurse_id} ({site})"),
                    None => format!("administered by {nurse_id}"),
                };
                self.administered_by = Some(nurse_id.clone());
                self.administered_site.clone_from(site);
                Transition(State::administered())
            }
            // The unit was put on hold while it waited: it is not given.
            Event::Violations(found) => {
                self.violations = found.clone();
                Transition(State::rejected())
            }
            _ => Super,
        }
    }

    #[action]
    fn enter_awaiting_administration(context: &mut Outbox) {
        context.push(Command::AwaitAdministration);
    }

    #[superstate]
    fn at_booth(&mut self, event: &Event) -> Outcome<State> {
        match event {
            Event::Fault(e) => {
                self.detail = format!("booth fault with the unit in the tray: {}", describe(e));
                Transition(State::failed())
            }
            Event::Unconfirmed { detail } => {
                self.detail = detail.clone();
                Transition(State::failed())
            }
            _ => Handled,
        }
    }

    /// Failed a check; to the reject bin. Arrived → rejected; Fault → failed.
    #[state(entry_action = "enter_to_reject")]
    fn to_reject(&mut self, event: &Event) -> Outcome<State> {
        match event {
            Event::Arrived => Transition(State::rejected()),
            Event::Fault(e) => {
                self.detail = format!("unit could not reach the reject bin and is on the belt: {}", describe(e));
                Transition(State::failed())
            }
            _ => Handled,
        }
    }

    #[action]
    fn enter_to_reject(context: &mut Outbox) {
        context.push(Command::Convey(Station::Reject));
    }

    /// Final.
    #[state(entry_action = "enter_administered")]
    fn administered(context: &mut Outbox, event: &Event) -> Outcome<State> {
        // Nothing follows a final state. (statig takes the context type from the
        // handlers' signatures, which is why final states name it.)
        let _ = (context, event);
        Handled
    }

    #[action]
    fn enter_administered(context: &mut Outbox) {
        context.push(Command::Finish(Stage::Administered));
    }

    /// Final.
    #[state(entry_action = "enter_rejected")]
    fn rejected(context: &mut Outbox, event: &Event) -> Outcome<State> {
        // Nothing follows a final state. (statig takes the context type from the
        // handlers' signatures, which is why final states name it.)
        let _ = (context, event);
        Handled
    }

    #[action]
    fn enter_rejected(context: &mut Outbox) {
        context.push(Command::Finish(Stage::Rejected));
    }

    /// Final.
    #[state(entry_action = "enter_failed")]
    fn failed(context: &mut Outbox, event: &Event) -> Outcome<State> {
        // Nothing follows a final state. (statig takes the context type from the
        // handlers' signatures, which is why final states name it.)
        let _ = (context, event);
        Handled
    }

    #[action]
    fn enter_failed(context: &mut Outbox) {
        context.push(Command::Finish(Stage::Failed));
    }

    /// Final.
    #[state(entry_action = "enter_cancelled")]
    fn cancelled(context: &mut Outbox, event: &Event) -> Outcome<State> {
        let _ = (context, event);
        Handled
    }

    #[action]
    fn enter_cancelled(context: &mut Outbox) {
        context.push(Command::Finish(Stage::Cancelled));
    }
}

/// Where a dispense the last run left unfinished picks up again; recovery decides
/// from where its unit is (H-16).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// No unit yet, or its unit went back to stock: it waits for its booth again.
    Queued,
    /// Its unit waits in the store's hatch: put on the belt, then scanned and
    /// verified again.
    FromHatch,
    /// Its unit is on the belt short of the scan station: scanned and verified again.
    OnBelt,
    /// Its unit is at the scan station: scanned and verified again.
    AtScan,
    /// Its unit, verified, waits at its booth's gate: checked again before it drops.
    AtGate,
    /// Its unit is in the booth's tray: the validation must carry a booth scan of it.
    InTray,
    /// Its tray is empty: the nurse took the unit while the controller was down;
    /// a confirmed administration records it.
    TakenFromTray,
}

impl Resume {
    /// The state the flow starts in.
    pub fn state(self) -> State {
        match self {
            Resume::Queued => State::queued(),
            Resume::FromHatch | Resume::OnBelt => State::on_belt(),
            Resume::AtScan => State::scanning(),
            Resume::AtGate => State::at_gate(),
            Resume::InTray => State::awaiting_validation(),
            Resume::TakenFromTray => State::awaiting_administration(),
        }
    }

    /// The stage the clinic sees once it resumed.
    pub fn stage(self) -> Stage {
        stage_of(&self.state())
    }

    /// What it waits for, for the journal and the dispense's detail.
    pub fn describe(self) -> &'static str {
        match self {
            Resume::Queued => "queued again for its booth",
            Resume::FromHatch => "its unit goes from the hatch onto the belt and is scanned and verified again",
            Resume::OnBelt | Resume::AtScan => "its unit is scanned and verified again",
            Resume::AtGate => "its verified unit is checked again before it drops into the tray",
            Resume::InTray => "its unit is in the tray: the guardian's validation must carry a booth scan of it",
            Resume::TakenFromTray => "its tray is empty: confirm the administration if the nurse gave it",
        }
    }
}

/// The clinic-facing stage of a state.
pub fn stage_of(state: &State) -> Stage {
    match state {
        State::Queued {} => Stage::Queued,
        State::Picking {} => Stage::Picking,
        State::OnBelt {} => Stage::OnBelt,
        State::Scanning {} => Stage::Scanning,
        State::Verifying { .. } => Stage::Verifying,
        State::ToGate {} | State::AtGate {} => Stage::ToBooth,
        State::AwaitingValidation {} => Stage::AwaitingValidation,
        State::AwaitingAdministration {} => Stage::AwaitingAdministration,
        State::ToReject {} => Stage::ToReject,
        State::Administered {} => Stage::Administered,
        State::Rejected {} => Stage::Rejected,
        State::Failed {} => Stage::Failed,
        State::Cancelled {} => Stage::Cancelled,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::inventory::UnitState;
    use hal::codes::UnitCode;
    use hal::ErrorKind;

    fn unit() -> StockRecord {
        StockRecord {
            code: "(01)06901234000016(21)A".into(),
            gtin: "06901234000016".into(),
            lot: "L".into(),
            expiry: chrono::NaiveDate::from_ymd_opt(2027, 1, 1).expect("date"),
            slot: SlotAddress::new(0, 1, 2),
            state: UnitState::InStore,
            dispense_id: None, hold: None, left_store_at: None, heat_consumed: 0.0,
        }
    }

    fn decoded() -> Decoded {
        let text = "0106901234000016".to_owned();
        Decoded { symbology: "]d2".into(), code: UnitCode::parse(&text).expect("parses"), text }
    }

    /// Feeds events and returns the commands the machine issued, in order.
    fn run(events: Vec<Event>) -> (Vec<Command>, Stage, DispenseFlow) {
        let mut outbox = Outbox::default();
        let mut sm = DispenseFlow::new(BoothId(3)).uninitialized_state_machine().init_with_context(&mut outbox);
        let mut commands = vec![outbox.take().expect("initial command")];
        for event in events {
            sm.handle_with_context(&event, &mut outbox);
            commands.extend(outbox.take());
        }
        let stage = stage_of(sm.state());
        (commands, stage, sm.inner().clone())
    }

    #[test]
    fn happy_path_issues_each_command_once_and_ends_administered() {
        let (commands, stage, _) = run(vec![
            Event::Allocated(unit()),
            Event::Picked,
            Event::Arrived,
            Event::Read(decoded()),
            Event::Passed,
            Event::Arrived,
            Event::Arrived,
            Event::Validated,
            Event::Administered { nurse_id: "N1".into(), site: None },
        ]);
        assert_eq!(
            commands,
            vec![
                Command::Allocate,
                Command::Pick { slot: SlotAddress::new(0, 1, 2) },
                Command::Convey(Station::Scan),
                Command::Scan,
                Command::Verify(decoded()),
                Command::Convey(Station::Gate(BoothId(3))),
                Command::Convey(Station::Booth(BoothId(3))),
                Command::AwaitValidation,
                Command::AwaitAdministration,
                Command::Finish(Stage::Administered),
            ]
        );
        assert_eq!(stage, Stage::Administered);
    }

    #[test]
    fn violations_send_the_unit_to_the_reject_bin_never_the_booth() {
        let v = Violation::new(ViolationId::ProductMismatch, "x");
        let (commands, stage, flow) =
            run(vec![Event::Allocated(unit()), Event::Picked, Event::Arrived, Event::Read(decoded()), Event::Violations(vec![v.clone()]), Event::Arrived]);
        assert!(!commands.iter().any(|c| matches!(c, Command::Convey(Station::Booth(_)))));
        assert_eq!(commands.last(), Some(&Command::Finish(Stage::Rejected)));
        assert_eq!(stage, Stage::Rejected);
        assert_eq!(flow.violations, vec![v]);
    }

    #[test]
    fn a_fault_on_the_belt_rejects_and_a_late_booth_arrival_is_ignored() {
        let fault = DeviceError::new("conveyor", ErrorKind::Jam, "missed eye");
        let (commands, stage, flow) = run(vec![Event::Allocated(unit()), Event::Picked, Event::Fault(fault), Event::Arrived, Event::Validated]);
        assert_eq!(commands[3], Command::Convey(Station::Reject));
        assert_eq!(stage, Stage::Rejected, "validation after rejection changes nothing");
        assert_eq!(flow.violations[0].id, ViolationId::HandlingFault);
    }

    #[test]
    fn a_unit_refused_at_the_gate_goes_to_the_bin_not_the_tray() {
        let held = Violation::new(ViolationId::Recalled, "batch L recalled");
        let (commands, stage, flow) = run(vec![
            Event::Allocated(unit()),
            Event::Picked,
            Event::Arrived,
            Event::Read(decoded()),
            Event::Passed,
            Event::Arrived,
            Event::Violations(vec![held.clone()]),
            Event::Arrived,
        ]);
        assert_eq!(commands[6], Command::Convey(Station::Booth(BoothId(3))), "it was at the gate");
        assert_eq!(commands[7], Command::Convey(Station::Reject));
        assert_eq!((stage, flow.violations), (Stage::Rejected, vec![held]));
        assert!(!commands.contains(&Command::AwaitValidation));
    }

    /// The first command of a resumed flow, and its stage.
    fn resumed(resume: Resume) -> (Command, Stage) {
        let mut outbox = Outbox::default();
        let mut flow = DispenseFlow::new(BoothId(3));
        flow.unit = Some(unit());
        let mut sm = flow.uninitialized_state_machine();
        *sm.state_mut() = resume.state();
        let sm = sm.init_with_context(&mut outbox);
        (outbox.take().expect("a command"), stage_of(sm.state()))
    }

    #[test]
    fn a_resumed_flow_starts_where_its_unit_is() {
        assert_eq!(resumed(Resume::Queued), (Command::Allocate, Stage::Queued));
        assert_eq!(resumed(Resume::FromHatch), (Command::Convey(Station::Scan), Stage::OnBelt));
        assert_eq!(resumed(Resume::AtScan), (Command::Scan, Stage::Scanning));
        assert_eq!(resumed(Resume::AtGate), (Command::Convey(Station::Booth(BoothId(3))), Stage::ToBooth));
        assert_eq!(resumed(Resume::InTray), (Command::AwaitValidation, Stage::AwaitingValidation));
        assert_eq!(resumed(Resume::TakenFromTray), (Command::AwaitAdministration, Stage::AwaitingAdministration));
    }

    #[test]
    fn unreadable_unit_and_missing_stock() {
        let (_, stage, flow) = run(vec![Event::Allocated(unit()), Event::Picked, Event::Arrived, Event::Unreadable { why: "no code read in 8 frames".into() }, Event::Arrived]);
        assert_eq!((stage, flow.violations[0].id), (Stage::Rejected, ViolationId::Unreadable));
        let (commands, stage, flow) = run(vec![Event::NoStock("no HepB in store".into())]);
        assert_eq!((stage, flow.detail.as_str()), (Stage::Failed, "no HepB in store"));
        assert_eq!(commands, vec![Command::Allocate, Command::Finish(Stage::Failed)]);
    }
}
