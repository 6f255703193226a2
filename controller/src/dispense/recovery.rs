//! Recovery after the controller stopped without warning (power cut, crash, kill):
//! every dispense the journal has not finished is settled by asking the devices
//! where its unit is, so that each unit ends in a known state and no order is
//! filled twice. Runs once at start, after homing and before orders are taken.
//!
//! - unit in the hatch or on the belt → carried to the reject bin, quarantined;
//! - unit in a booth tray → quarantined where it is (the nurse returns it);
//! - unit still in its slot (the pick never happened) → back in stock;
//! - unit nowhere → quarantined as lost, for a person to find;
//! - no unit yet → nothing to settle.
//!
//! Each such dispense ends `Failed` with what was done (or `Administered` /
//! `Rejected` when its unit's record already says so); units on the belt that no
//! unfinished dispense claims are binned too.

use crate::rules::inventory::{Hold, UnitState};
use crate::journal::{Entry, Intent, Journal, JournalError};
use crate::dispense::status::{DispenseStatus, Stage};
use crate::dispense::carriers::{carrier_of, carry_to_bin};
use crate::motion::{Gate, InService};
use hal::{Devices, DeviceError, Station, TrackingId};
use std::collections::BTreeMap;
use crate::journal::StepKind;

/// What recovery did, for the log and the tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Dispenses that were not finished.
    pub settled: usize,
    pub binned: Vec<String>,
    pub returned_to_stock: Vec<String>,
    pub quarantined_in_tray: Vec<String>,
    /// Delivered, but their tray reads empty: taken out by hand (H-04).
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

/// Settles every unfinished dispense; see the module's documentation.
pub async fn recover(journal: &Journal, devices: &Devices) -> Result<RecoveryReport, RecoveryError> {
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
            None => "no unit had been allocated".to_owned(),
            Some(unit) => {
                let record = journal.stock_record(&unit.code)?;
                let state = record.as_ref().map(|r| r.state);
                let last_run_to = last_belt_run(journal, &status.id)?;
                if hatch == Some(carrier) || on_belt.contains_key(&carrier) {
                    on_belt.remove(&carrier);
                    hatch_claimed |= hatch == Some(carrier);
                    bin(&gate, journal, carrier, hatch == Some(carrier), &unit.code, &status.id).await?;
                    report.binned.push(unit.code.clone());
                    "its unit was on the way: carried to the reject bin and quarantined".to_owned()
                } else if state == Some(UnitState::Delivered) || (state == Some(UnitState::Picked) && matches!(last_run_to, Some(Station::Booth(_)))) {
                    // A belt run ends at its target or stops on the belt (a jam): a unit
                    // sent to a booth that is no longer on the belt was diverted into the
                    // tray. Whether it is still there, the tray's sensor says (H-04); a
                    // sensor that cannot be read counts as occupied, the safe side.
                    let booth = status.order.booth;
                    journal.set_unit_state(&unit.code, UnitState::Rejected, &status.id)?;
                    if let Err(e) = devices.booths.clear(booth).await {
                        tracing::warn!("recovery: booth display not cleared: {e}");
                    }
                    match devices.booths.tray(booth).await {
                        Ok(hal::TrayState::Empty) => {
                            journal.hold_unit(&unit.code, Hold::Quarantined, &format!("not in its tray at {booth} after a restart: taken out by hand; ask the nurse whether it was given"), "recovery")?;
                            report.taken_from_tray.push(unit.code.clone());
                            format!("its unit is not in {booth}'s tray: taken out by hand, quarantined; ask the nurse whether it was given")
                        }
                        tray => {
                            let sensor = match tray {
                                Err(e) => format!(" (tray sensor unreadable: {e}; taken to be there)"),
                                Ok(_) => String::new(),
                            };
                            journal.hold_unit(&unit.code, Hold::Quarantined, &format!("in a booth tray when the controller restarted{sensor}"), "recovery")?;
                            report.quarantined_in_tray.push(unit.code.clone());
                            format!("its unit is in {booth}'s tray and is quarantined: the nurse returns it{sensor}")
                        }
                    }
                } else if state == Some(UnitState::Picked) && last_run_to == Some(Station::Reject) {
                    // Sent to the bin and no longer on the belt: it is in the bin.
                    journal.set_unit_state(&unit.code, UnitState::Rejected, &status.id)?;
                    report.binned.push(unit.code.clone());
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
                        "its unit had not left its slot: back in stock".to_owned()
                    } else {
                        journal.set_unit_state(&unit.code, UnitState::Rejected, &status.id)?;
                        journal.hold_unit(&unit.code, Hold::Quarantined, "not found anywhere after a restart", "recovery")?;
                        report.lost.push(unit.code.clone());
                        "its unit was not found in its slot, the hatch or on the belt: quarantined as lost".to_owned()
                    }
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
        settle(journal, status, ends, &outcome)?;
    }
    // A unit still marked picked belongs to no open dispense now: a crash between
    // reserving it and recording it on its dispense (journals written before the
    // two were one transaction, H-04). Where is it?
    let picked = journal.units_in_state(UnitState::Picked)?;
    for record in picked {
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
fn last_belt_run(journal: &Journal, dispense_id: &str) -> Result<Option<Station>, JournalError> {
    let entries = journal.entries(dispense_id)?;
    // Homing after a power cut repeats the run it interrupted: it is no run itself.
    Ok(entries.iter().rev().filter_map(Entry::intent).find(|intent| **intent != Intent::Home).and_then(|intent| match intent {
        Intent::Convey { to } => Some(*to),
        _ => None,
    }))
}

/// How the detail of a dispense that recovery ended begins.
const RESTART_DETAIL: &str = "controller restarted";

/// Ends a dispense (failed, unless its unit's record already says how it ended),
/// saying what recovery did with its unit.
fn settle(journal: &Journal, mut status: DispenseStatus, ends: Stage, outcome: &str) -> Result<(), JournalError> {
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

