//! Maintenance mode: a crew member takes the workstation out of service under a
//! lease that lapses unless renewed, and only the holder may home, jog, eject or
//! bring it back.

use crate::dispatch::dispatcher::Dispatcher;
use crate::dispatch::error::DispatchError;
use crate::dispense::core::{MaintenanceLease, lock};
use crate::motion::{Authority, Motion};
use crate::dispense::workstation::WsEvent;
use crate::rules::inventory::UnitState;
use std::time::Duration;
use crate::journal::{Intent, StepKind};

impl Dispatcher {
    /// Takes the workstation out of service under `actor`'s lease, which lapses after
    /// `timeout` unless renewed (the holder entering again renews it). Refused with
    /// units in flight unless `force`d: their motions then wait until maintenance ends.
    pub fn enter_maintenance(&self, actor: &str, reason: &str, timeout: Duration, force: bool) -> Result<MaintenanceLease, DispatchError> {
        Self::require(&[("actor", actor), ("reason", reason)])?;
        self.refuse_if_stopped()?;
        let mut held = lock(&self.core.maintenance);
        if let Some(current) = held.as_mut().filter(|_| self.core.in_maintenance()) {
            if current.holder != actor {
                return Err(DispatchError::LeaseHeld { holder: current.holder.clone(), until: current.expires_at });
            }
            current.expires_at = self.now() + chrono::Duration::from_std(timeout).unwrap_or_default();
            current.generation += 1;
            let renewed = current.clone();
            drop(held);
            self.core.journal.note(None, StepKind::Maintenance, "renewed", &lease_note(reason, &renewed))?;
            self.arm_expiry(&renewed, timeout);
            return Ok(renewed);
        }
        let event = if force { WsEvent::MaintenanceForced(actor.to_owned()) } else { WsEvent::MaintenanceEntered(actor.to_owned()) };
        self.core.workstation_event(event);
        if !self.core.in_maintenance() {
            let wanted = if force { "ready, dispensing, paused or faulted" } else { "ready or faulted, with nothing in flight (or forced, with a reason)" };
            return Err(DispatchError::WrongState { state: self.workstation_state(), wanted });
        }
        let in_flight = self.core.in_flight();
        let entered = MaintenanceLease {
            holder: actor.to_owned(),
            reason: reason.to_owned(),
            expires_at: self.now() + chrono::Duration::from_std(timeout).unwrap_or_default(),
            generation: 0,
        };
        *held = Some(entered.clone());
        drop(held);
        let forced = if force && in_flight > 0 { format!(" (forced with {in_flight} in flight)") } else { String::new() };
        self.core.journal.note(None, StepKind::Maintenance, "entered", &lease_note(&format!("{reason}{forced}"), &entered))?;
        self.arm_expiry(&entered, timeout);
        Ok(entered)
    }

    /// After a restart: a crew's lease the journal still has running (entered or
    /// renewed, not exited, not yet lapsed) is taken up again, so the new controller
    /// moves nothing — homing included — until the crew hands the machine back
    /// (H-19). Returns the lease resumed, if any.
    pub fn resume_maintenance(&self) -> Result<Option<MaintenanceLease>, DispatchError> {
        let now = self.now();
        let notes = self.core.journal.entries_of_kind(StepKind::Maintenance, now - chrono::Duration::days(MAX_LEASE_DAYS))?;
        let Some(last) = notes.iter().rev().find(|e| e.dispense_id.is_none()) else { return Ok(None) };
        if !matches!(last.step.as_str(), "entered" | "renewed" | "resumed") {
            return Ok(None);
        }
        let Some((holder, expires_at)) = parse_lease_note(&last.detail, last.at) else {
            // A lease note it cannot read: the crew may still be at work (H-06).
            tracing::warn!(note = %last.detail, "unreadable maintenance note: treated as a lease for the longest time");
            return self.take_up(MaintenanceLease { holder: "unknown crew".into(), reason: "resumed after a restart".into(), expires_at: now + chrono::Duration::days(MAX_LEASE_DAYS), generation: 0 }).map(Some);
        };
        if expires_at <= now {
            return Ok(None);
        }
        self.take_up(MaintenanceLease { holder, reason: "resumed after a restart".into(), expires_at, generation: 0 }).map(Some)
    }

    fn take_up(&self, lease: MaintenanceLease) -> Result<MaintenanceLease, DispatchError> {
        *lock(&self.core.maintenance) = Some(lease.clone());
        self.core.workstation_event(WsEvent::MaintenanceResumed(lease.holder.clone()));
        self.core.journal.note(None, StepKind::Maintenance, "resumed", &lease_note("after a restart", &lease))?;
        let remaining = (lease.expires_at - self.now()).to_std().unwrap_or_default();
        self.arm_expiry(&lease, remaining);
        tracing::warn!(holder = %lease.holder, until = %lease.expires_at, "a crew's maintenance lease survived the restart: nothing moves until it ends");
        Ok(lease)
    }

    /// Ends maintenance when the lease lapses, unless it was renewed or released.
    fn arm_expiry(&self, armed: &MaintenanceLease, timeout: Duration) {
        let (dispatcher, armed) = (self.clone(), armed.clone());
        self.core.tasks.spawn(async move {
            tokio::time::sleep(timeout).await;
            let still = lock(&dispatcher.core.maintenance).as_ref().is_some_and(|l| l.generation == armed.generation && l.holder == armed.holder);
            if still && dispatcher.core.in_maintenance() {
                tracing::warn!(holder = armed.holder, "maintenance lease lapsed; back in service");
                if let Err(e) = dispatcher.exit_maintenance(&armed.holder, "lease lapsed") {
                    tracing::error!("maintenance lease lapsed but could not exit: {e}");
                }
            }
        });
    }

    /// Who holds maintenance mode, if the workstation is in it.
    pub fn maintenance_lease(&self) -> Option<MaintenanceLease> {
        self.core.lease()
    }

    /// Returns to service; only the lease's holder may.
    pub fn exit_maintenance(&self, actor: &str, note: &str) -> Result<crate::dispense::workstation::WorkstationState, DispatchError> {
        Self::require(&[("actor", actor)])?;
        self.require_lease(actor)?;
        *lock(&self.core.maintenance) = None;
        self.core.workstation_event(WsEvent::MaintenanceExited);
        self.core.journal.note(None, StepKind::Maintenance, "exited", &format!("{note}; by {actor}"))?;
        Ok(self.workstation_state())
    }

    /// In maintenance mode under `actor`'s lease, or why not.
    pub fn require_lease(&self, actor: &str) -> Result<(), DispatchError> {
        match self.maintenance_lease() {
            None => Err(DispatchError::WrongState { state: self.workstation_state(), wanted: "in maintenance mode" }),
            Some(l) if l.holder != actor => Err(DispatchError::LeaseHeld { holder: l.holder, until: l.expires_at }),
            Some(_) => Ok(()),
        }
    }

    /// Homes picker and belt in maintenance mode (e.g. after a power cut or a jam).
    pub async fn maintenance_home(&self, actor: &str) -> Result<(), DispatchError> {
        self.require_lease(actor)?;
        self.home(Authority::Crew(actor), &format!("by {actor}")).await
    }

    /// Jogs an axis in maintenance mode; `None` is the belt.
    pub async fn jog(&self, actor: &str, axis: Option<hal::PickerAxis>, millimetres: i32) -> Result<(), DispatchError> {
        self.require_lease(actor)?;
        let limit = if axis.is_some() { hal::JOG_LIMIT_PICKER_MM } else { hal::JOG_LIMIT_BELT_MM };
        if millimetres == 0 || millimetres.abs() > limit {
            return Err(DispatchError::InvalidArgument { field: "distance_mm", reason: format!("{millimetres} mm: must be 1 to {limit} mm either way") });
        }
        let (motion, what) = match axis {
            Some(axis) => (Motion::JogPicker { axis, millimetres }, format!("picker {axis:?}")),
            None => (Motion::JogBelt { millimetres }, "belt".to_owned()),
        };
        let gate = self.core.gate();
        gate.check(Authority::Crew(actor), motion).await?;
        let intended = self.core.journal.note_intent(None, &Intent::Jog { what, millimetres }, &format!("by {actor}"))?;
        gate.send(Authority::Crew(actor), &intended, motion).await?;
        Ok(())
    }

    /// Carries a held unit from its slot to the reject bin; only in maintenance mode
    /// and never with an interlock open.
    pub async fn eject_held(&self, code: &str, actor: &str) -> Result<(), DispatchError> {
        Self::require(&[("code", code), ("actor", actor)])?;
        self.require_lease(actor)?;
        let code = Self::canonical(code)?;
        let record = self.core.journal.stock_record(&code)?.ok_or_else(|| DispatchError::NoSuchStock(format!("unit {code} is not in the journal")))?;
        if record.hold.is_none() || record.state != UnitState::InStore {
            return Err(DispatchError::NoSuchStock(format!("unit {code} is not a held unit in the store")));
        }
        // Maintenance carriers live far above dispense numbers.
        let carrier = hal::TrackingId(3_000_000_000 + u64::from(self.now().timestamp_subsec_millis()));
        let run = [Motion::Pick { slot: record.slot, carrier }, Motion::Release { carrier }, Motion::Convey { carrier, to: hal::Station::Reject }];
        let gate = self.core.gate();
        gate.check(Authority::Crew(actor), run[0]).await?;
        let intended = self.core.journal.note_intent(Some(&code), &Intent::Eject { slot: record.slot }, &format!("from {} by {actor}", record.slot))?;
        gate.send_all(Authority::Crew(actor), &intended, &run).await?;
        self.core.journal.set_unit_state(&code, UnitState::Rejected, "maintenance")?;
        self.core.journal.note(Some(&code), StepKind::Outcome, "Ejected", &format!("in the reject bin; by {actor}"))?;
        Ok(())
    }
}

/// How far back a restart looks for a crew's lease (no lease is that long).
const MAX_LEASE_DAYS: i64 = 7;

/// The journal's note of a lease: why, who, until when (read back by
/// [`parse_lease_note`] after a restart).
fn lease_note(why: &str, lease: &MaintenanceLease) -> String {
    format!("{why}; by {}; lease until {}", lease.holder, lease.expires_at.to_rfc3339())
}

/// The holder and the end of a lease from its note, written `at`: this version's
/// note, or an older one's (`…; by HOLDER, lease for N s`).
fn parse_lease_note(note: &str, at: chrono::DateTime<chrono::Utc>) -> Option<(String, chrono::DateTime<chrono::Utc>)> {
    if let Some((rest, until)) = note.rsplit_once("; lease until ") {
        let (_, holder) = rest.rsplit_once("; by ")?;
        let until = chrono::DateTime::parse_from_rfc3339(until.trim()).ok()?.with_timezone(&chrono::Utc);
        return Some((holder.to_owned(), until));
    }
    let (rest, seconds) = note.rsplit_once(", lease for ")?;
    let (_, holder) = rest.rsplit_once("; by ")?;
    let seconds: i64 = seconds.strip_suffix(" s")?.trim().parse().ok()?;
    Some((holder.to_owned(), at + chrono::Duration::seconds(seconds)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_note_is_read_back_in_either_version() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-06-01T08:00:00Z").expect("time").with_timezone(&chrono::Utc);
        let lease = MaintenanceLease { holder: "crew; 7".into(), reason: "belt".into(), expires_at: at + chrono::Duration::minutes(30), generation: 0 };
        assert_eq!(parse_lease_note(&lease_note("belt cleaning", &lease), at), Some(("crew; 7".to_owned(), lease.expires_at)));
        assert_eq!(parse_lease_note("belt cleaning; by crew-7, lease for 1800 s", at), Some(("crew-7".to_owned(), at + chrono::Duration::minutes(30))));
        assert_eq!(parse_lease_note("exited by hand", at), None);
    }
}
