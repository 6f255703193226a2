//! Recovery after the controller stopped without warning (power cut, crash, kill):
//! every dispense the journal has not finished is looked at, its unit found by
//! asking the devices, and the dispense **resumed** wherever its safety can be
//! established again (H-16); only the rest are ended. Runs once at start, after
//! homing and before new orders are taken.
//!
//! - no unit yet → resumes queued (same dispense id);
//! - unit still in its slot (the pick never happened) → back in stock, resumes queued;
//! - unit in the hatch or on the belt, where the devices kept track of their
//!   carriers through the stop (they did not lose power) → resumes: put on the
//!   belt, scanned and verified again; at its booth's gate, verified before the
//!   stop → resumes there, checked again before it drops;
//! - unit in the hatch or on the belt whose tracking lapsed (a power loss), or on
//!   its way to the bin → carried to the reject bin, quarantined; the dispense ends;
//! - unit in its booth's tray → resumes awaiting validation, a booth scan of it
//!   required; tray empty → resumes awaiting the nurse's word that it was given;
//! - unit nowhere → quarantined as lost; the dispense ends.
//!
//! An ended dispense ends `Failed` with what was done (`Rejected` when its unit
//! had already failed a check, `Administered` when its record already says so);
//! units on the belt that no unfinished dispense claims are binned too.

use crate::rules::inventory::{Hold, UnitState};
use crate::journal::{Entry, Intent, Journal, JournalError, Outcome};
use crate::dispense::status::{DispenseStatus, Stage};
use crate::dispense::carriers::{carrier_of, carry_to_bin};
use crate::dispense::flow::Resume;
use crate::motion::{Gate, InService};
use hal::{Devices, DeviceError, Station, TrackingId};
use std::collections::BTreeMap;
use crate::journal::StepKind;

/// What recovery did, for the log and the tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Dispenses that were not finished.
    pub settled: usize,
    /// Dispenses to resume, oldest first, with where each picks up again; their
    /// status already says so in the journal.
    pub resumed: Vec<(DispenseStatus, Resume)>,
    /// Dispenses recovery ended.
    pub ended: Vec<String>,
    pub binned: Vec<String>,
    pub returned_to_stock: Vec<String>,
    /// Delivered, but their tray reads empty: taken out by hand (H-04); their
    /// dispenses resume awaiting the nurse's word.
    pub taken_from_tray: Vec<String>,
    pub lost: Vec<String>,
    /// Carriers on the belt that no dispense claimed, binned.
    pub strays: Vec<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("asking the devices where units are: {0}")]
    Device(#[from] DeviceError),
    #[error("the devices were still moving after {0:?}")]
    StillMoving(std::time::Duration),
}

/// Waits until no device is still carrying out a motion a stopped controller left
/// running (a device finishes its job, or stops it when our heartbeat stays away):
/// homing and recovery must not move a unit that is already moving.
pub async fn wait_until_still(devices: &Devices, timeout: std::time::Duration) -> Result<(), RecoveryError> {
    let started = tokio::time::Instant::now();
    loop {
        if !devices.store.in_motion().await? && !devices.conveyor.in_motion().await? {
            return Ok(());
        }
        if started.elapsed() > timeout {
            return Err(RecoveryError::StillMoving(timeout));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Whether the field devices kept track of their carriers through the stop: none
/// of them came back from a power loss (its alarm, which homing resets, so read
/// before homing). A device that cannot be read counts as having lost track: what
/// cannot be read is unsafe. Devices with no bus to ask (in-process models) cannot
/// lose power on their own.
pub async fn tracking_kept(devices: &Devices) -> bool {
    for device in &devices.field {
        match device.status().await {
            Ok(status) if !status.power_restored() => {}
            Ok(_) => {
                tracing::warn!(device = device.name(), "came back from a power loss: its carrier tracking is not trusted");
                return false;
            }
            Err(e) => {
                tracing::warn!(device = device.name(), "status unreadable ({e}): its carrier tracking is not trusted");
                return false;
            }
        }
    }
    true
}

/// Settles every unfinished dispense, resuming those it can; see the module's
/// documentation. `tracking_kept`: see [`tracking_kept`].
pub async fn recover(journal: &Journal, devices: &Devices, tracking_kept: bool) -> Result<RecoveryReport, RecoveryError> {
    let unfinished = journal.unfinished_dispenses()?;
    let hatch = devices.store.hatch().await?;
    let mut on_belt: BTreeMap<TrackingId, Station> = devices.conveyor.units_on_belt().await?.into_iter().collect();
    let mut report = RecoveryReport { settled: unfinished.len(), ..RecoveryReport::default() };
    let mut hatch_claimed = false;
    // Start-up: no request is served yet, so no crew can hold the machine.
    let gate = Gate::new(devices, &InService);
    for status in unfinished {
        let carrier = carrier_of(&status.id);
        let mut ends = Stage::Failed;
        let outcome = match status.unit.clone() {
            None => {
                resume(journal, status, Resume::Queued, "no unit had been allocated", &mut report)?;
                continue;
            }
            Some(unit) => {
                let record = journal.stock_record(&unit.code)?;
                let state = record.as_ref().map(|r| r.state);
                let entries = journal.entries(&status.id)?;
                let last_run_to = last_belt_run(&entries);
                let in_hatch = hatch == Some(carrier);
                let belt_station = on_belt.get(&carrier).copied();
                if in_hatch || belt_station.is_some() {
                    on_belt.remove(&carrier);
                    hatch_claimed |= in_hatch;
                    let resumes = match (in_hatch, belt_station) {
                        _ if !tracking_kept || state != Some(UnitState::Picked) || last_run_to == Some(Station::Reject) => None,
                        (true, _) => Some(Resume::FromHatch),
                        (false, Some(Station::Hatch)) => Some(Resume::OnBelt),
                        (false, Some(Station::Scan)) => Some(Resume::AtScan),
                        (false, Some(Station::Gate(b))) if b == status.order.booth && verified(&entries) => Some(Resume::AtGate),
                        _ => None,
                    };
                    if let Some(at) = resumes {
                        let place = if in_hatch { "the hatch".to_owned() } else { crate::journal::station_name(belt_station.unwrap_or(Station::Hatch)) };
                        let why = format!("its unit is in {place} and the devices kept track of it");
                        resume(journal, status, at, &why, &mut report)?;
                        continue;
                    }
                    bin(&gate, journal, carrier, in_hatch, &unit.code, &status.id).await?;
                    report.binned.push(unit.code.clone());
                    if !status.violations.is_empty() {
                        // It had failed a check and was on its way to the bin.
                        ends = Stage::Rejected;
                    }
                    if tracking_kept {
                        "its unit was on the way to the bin: carried there and quarantined".to_owned()
                    } else {
                        "its unit was on the way, but the devices lost track of it in a power loss: carried to the reject bin and quarantined".to_owned()
                    }
                } else if state == Some(UnitState::Delivered) || (state == Some(UnitState::Picked) && matches!(last_run_to, Some(Station::Booth(_)))) {
                    // A belt run ends at its target or stops on the belt (a jam): a unit
                    // sent to a booth that is no longer on the belt was diverted into the
                    // tray. Whether it is still there, the tray's sensor says (H-04); a
                    // sensor that cannot be read counts as occupied, the safe side: the
                    // booth scan the validation then needs identifies what is there.
                    let booth = status.order.booth;
                    if state == Some(UnitState::Picked) {
                        journal.set_unit_state(&unit.code, UnitState::Delivered, &status.id)?;
                    }
                    // The flow may have heard the clinic's last word and not yet ended.
                    match word_at_booth(&entries) {
                        Some(Outcome::Administered) => {
                            journal.set_unit_state(&unit.code, UnitState::Administered, &status.id)?;
                            settle(journal, status, Stage::Administered, "its administration had been confirmed", &mut report)?;
                            continue;
                        }
                        Some(Outcome::Violations { .. }) => {
                            journal.set_unit_state(&unit.code, UnitState::Rejected, &status.id)?;
                            if let Err(e) = devices.booths.clear(booth).await {
                                tracing::warn!("recovery: booth display not cleared: {e}");
                            }
                            settle(journal, status, Stage::Rejected, "its unit had been refused at the booth: the nurse returns it", &mut report)?;
                            continue;
                        }
                        _ => {}
                    }
                    let (at, why) = match devices.booths.tray(booth).await {
                        Ok(hal::TrayState::Empty) => {
                            report.taken_from_tray.push(unit.code.clone());
                            (Resume::TakenFromTray, format!("its unit is not in {booth}'s tray: taken out by hand"))
                        }
                        Ok(_) => (Resume::InTray, format!("its unit is in {booth}'s tray")),
                        Err(e) => (Resume::InTray, format!("{booth}'s tray sensor is unreadable ({e}): its unit is taken to be there")),
                    };
                    resume(journal, status, at, &why, &mut report)?;
                    continue;
                } else if state == Some(UnitState::Picked) && last_run_to == Some(Station::Reject) {
                    // Sent to the bin and no longer on the belt: it is in the bin.
                    journal.set_unit_state(&unit.code, UnitState::Rejected, &status.id)?;
                    report.binned.push(unit.code.clone());
                    if !status.violations.is_empty() {
                        ends = Stage::Rejected;
                    }
                    "its unit had reached the reject bin".to_owned()
                } else if state == Some(UnitState::Picked) {
                    let slot = record.as_ref().map(|r| r.slot);
                    let in_slot = match slot {
                        Some(slot) => devices.store.slot_occupied(slot).await?,
                        None => false,
                    };
                    if in_slot {
                        journal.set_unit_state(&unit.code, UnitState::InStore, &status.id)?;
                        report.returned_to_stock.push(unit.code.clone());
                        let mut status = status;
                        status.unit = None;
                        resume(journal, status, Resume::Queued, &format!("its unit {} had not left its slot: back in stock", unit.code), &mut report)?;
                        continue;
                    }
                    journal.set_unit_state(&unit.code, UnitState::Rejected, &status.id)?;
                    journal.hold_unit(&unit.code, Hold::Quarantined, "not found anywhere after a restart", "recovery")?;
                    report.lost.push(unit.code.clone());
                    "its unit was not found in its slot, the hatch or on the belt: quarantined as lost".to_owned()
                } else {
                    // The flow had settled the unit but not yet recorded its own end:
                    // an administered dose stays administered, a binned unit rejected.
                    ends = match state {
                        Some(UnitState::Administered) => Stage::Administered,
                        Some(UnitState::Rejected) => Stage::Rejected,
                        _ => Stage::Failed,
                    };
                    format!("its unit is {}", state.map_or("unknown to the journal", UnitState::as_str))
                }
            }
        };
        settle(journal, status, ends, &outcome, &mut report)?;
    }
    // A unit still marked picked belongs to no open dispense now: a crash between
    // reserving it and recording it on its dispense (journals written before the
    // two were one transaction, H-04). Where is it?
    let picked = journal.units_in_state(UnitState::Picked)?;
    // (A unit a resumed dispense carries on with is its own, not an orphan.)
    let carried_on: Vec<String> = report.resumed.iter().filter_map(|(status, _)| status.unit.as_ref().map(|u| u.code.clone())).collect();
    for record in picked.into_iter().filter(|r| !carried_on.contains(&r.code)) {
        let dispense = record.dispense_id.clone().unwrap_or_default();
        if devices.store.slot_occupied(record.slot).await? {
            journal.set_unit_state(&record.code, UnitState::InStore, &dispense)?;
            report.returned_to_stock.push(record.code.clone());
        } else {
            journal.set_unit_state(&record.code, UnitState::Rejected, &dispense)?;
            journal.hold_unit(&record.code, Hold::Quarantined, "reserved but not found in its slot after a restart", "recovery")?;
            report.lost.push(record.code.clone());
        }
        journal.note(Some(&record.code), StepKind::Recovery, "orphan", &format!("picked for {dispense}, which did not record it: settled after a restart"))?;
    }
    // Whatever else is in the hatch or rides the belt belongs to no live order.
    let stray_in_hatch = hatch.filter(|_| !hatch_claimed).map(|c| (c, true));
    for (carrier, in_hatch) in stray_in_hatch.into_iter().chain(on_belt.into_keys().map(|c| (c, false))) {
        let place = if in_hatch { "in the hatch" } else { "on the belt" };
        let intended = journal.note_intent(None, &Intent::Convey { to: Station::Reject }, &format!("stray {carrier} {place}"))?;
        if let Err(e) = carry_to_bin(&gate, &intended, carrier, in_hatch).await {
            tracing::error!("recovery: stray carrier {carrier} left on the belt: {e}");
        }
        journal.note(None, StepKind::Recovery, "stray", &format!("{carrier} {place} with no open dispense: carried to the reject bin"))?;
        report.strays.push(carrier.0);
    }
    Ok(report)
}

/// When the dispense's last command sent was a belt run, where it was sent.
fn last_belt_run(entries: &[Entry]) -> Option<Station> {
    // Homing after a power cut repeats the run it interrupted: it is no run itself.
    entries.iter().rev().filter_map(Entry::intent).find(|intent| **intent != Intent::Home).and_then(|intent| match intent {
        Intent::Convey { to } => Some(*to),
        _ => None,
    })
}

/// Whether the dispense's unit passed every check after its last read (and no
/// check failed since): only such a unit may wait at a gate to be resumed.
fn verified(entries: &[Entry]) -> bool {
    let last_verdict = entries.iter().rev().filter_map(Entry::outcome).find(|o| matches!(o, Outcome::Passed | Outcome::Violations { .. } | Outcome::Read { .. } | Outcome::Unreadable));
    last_verdict == Some(&Outcome::Passed)
}

/// The last word on a unit in its tray, if any came after it arrived there: an
/// administration confirmed, or a refusal (a check failed, the validation timed out).
fn word_at_booth(entries: &[Entry]) -> Option<&Outcome> {
    let outcomes: Vec<&Outcome> = entries.iter().filter_map(Entry::outcome).collect();
    let arrived = outcomes.iter().rposition(|o| **o == Outcome::Arrived)?;
    outcomes[arrived + 1..].iter().rev().find(|o| matches!(o, Outcome::Administered | Outcome::Violations { .. })).copied()
}

/// Marks a dispense as resumed at `at` in the journal (its stage and detail say
/// where it picks up) and hands it to the dispatcher through the report.
fn resume(journal: &Journal, mut status: DispenseStatus, at: Resume, why: &str, report: &mut RecoveryReport) -> Result<(), JournalError> {
    let was = status.stage.describe();
    status.detail = format!("{RESTART_DETAIL} while the dispense was {was}; {why}; resumed: {}", at.describe());
    let unit = status.unit.as_ref().map(|u| u.code.clone());
    journal.record(&status.id, unit.as_deref(), StepKind::Recovery, "resumed", &status.detail)?;
    status.stage = at.stage();
    status.booth_scan_required = at == Resume::InTray;
    journal.record_stage(&status)?;
    report.resumed.push((status, at));
    Ok(())
}

/// How the detail of a dispense that recovery ended begins.
const RESTART_DETAIL: &str = "controller restarted";

/// Ends a dispense (failed, unless its unit's record already says how it ended),
/// saying what recovery did with its unit, and counts it in the report.
fn settle(journal: &Journal, mut status: DispenseStatus, ends: Stage, outcome: &str, report: &mut RecoveryReport) -> Result<(), JournalError> {
    report.ended.push(status.id.clone());
    status.detail = format!("{RESTART_DETAIL} while the dispense was {}; {outcome}", status.stage.describe());
    let unit = status.unit.as_ref().map(|u| u.code.as_str());
    journal.record(&status.id, unit, StepKind::Recovery, "settled", &status.detail)?;
    status.stage = ends;
    status.finished_at = Some(journal.now());
    journal.record_stage(&status)
}

async fn bin(gate: &Gate<'_>, journal: &Journal, carrier: TrackingId, in_hatch: bool, code: &str, dispense: &str) -> Result<(), RecoveryError> {
    let intended = journal.record_intent(dispense, Some(code), &Intent::Convey { to: Station::Reject })?;
    let moved = carry_to_bin(gate, &intended, carrier, in_hatch).await;
    journal.set_unit_state(code, UnitState::Rejected, dispense)?;
    let reason = match &moved {
        Ok(()) => "carried to the reject bin after a restart".to_owned(),
        Err(e) => format!("left on the belt after a restart ({e}): remove by hand"),
    };
    journal.hold_unit(code, Hold::Quarantined, &reason, "recovery")?;
    if let Err(e) = moved {
        tracing::error!("recovery: {code}: {e}");
    }
    Ok(())
}

