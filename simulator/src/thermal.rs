//! The cabinet's temperature with thermal inertia: heat leaks in (much faster with
//! the restock door open), a thermostat runs the compressor between 4.0 and 5.5 °C,
//! a failed compressor lets the cabinet warm slowly towards the room, and one stuck
//! on (a failed thermostat, the most common cold-chain failure in the field) cools it
//! steadily towards about −6 °C.
//!
//! The state is integrated lazily in one-second machine-time steps whenever it is
//! read, so an idle simulator burns no CPU on physics.

/// Fraction of the room/cabinet difference that leaks in per second, door closed/open.
const LEAK_CLOSED: f64 = 1.0 / 3600.0;
const LEAK_OPEN: f64 = 1.0 / 300.0;
/// Cooling of a running compressor, °C per second.
const COOLING: f64 = 0.02;
const THERMOSTAT_ON: f64 = 5.5;
const THERMOSTAT_OFF: f64 = 4.0;
/// Where a compressor that never stops holds the cabinet (closed door).
const STUCK_ON_FLOOR_C: f64 = -6.0;
/// Longest stretch integrated at once (a simulator left alone for days stops there).
const MAX_STEPS: u64 = 7 * 24 * 3600;

/// The compressor's condition.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Compressor {
    /// Run by the thermostat.
    #[default]
    Working,
    /// Never runs.
    Failed,
    /// Never stops.
    StuckOn,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Thermal {
    pub cabinet_c: f64,
    /// The room around the cabinet, the belt and the booths.
    pub room_c: f64,
    pub compressor_on: bool,
    /// Machine seconds up to which the state is integrated.
    pub at_s: f64,
    /// The coldest the cabinet was in each machine minute so far: the ground truth a
    /// test judges a unit's freeze exposure by (the controller sees only its probes).
    pub coldest_by_minute: Vec<f64>,
}

impl Thermal {
    pub fn new(cabinet_c: f64, room_c: f64) -> Self {
        Self { cabinet_c, room_c, compressor_on: false, at_s: 0.0, coldest_by_minute: Vec::new() }
    }

    /// Integrates up to `now_s` machine seconds.
    pub fn advance(&mut self, now_s: f64, door_open: bool, compressor: Compressor) {
        let mut steps = 0;
        while self.at_s + 1.0 <= now_s && steps < MAX_STEPS {
            let leak = if door_open { LEAK_OPEN } else { LEAK_CLOSED };
            if self.cabinet_c > THERMOSTAT_ON {
                self.compressor_on = true;
            } else if self.cabinet_c < THERMOSTAT_OFF {
                self.compressor_on = false;
            }
            let cooling = match compressor {
                Compressor::Working if self.compressor_on => COOLING,
                Compressor::Working | Compressor::Failed => 0.0,
                // Balances the closed door's leak at the floor.
                Compressor::StuckOn => LEAK_CLOSED * (self.room_c - STUCK_ON_FLOOR_C),
            };
            self.cabinet_c += leak * (self.room_c - self.cabinet_c) - cooling;
            self.at_s += 1.0;
            self.note_coldest();
            steps += 1;
        }
        if steps == MAX_STEPS {
            self.at_s = now_s;
            self.note_coldest();
        }
        match compressor {
            Compressor::Working => {}
            Compressor::Failed => self.compressor_on = false,
            Compressor::StuckOn => self.compressor_on = true,
        }
    }
}

impl Thermal {
    /// Keeps the minute's coldest temperature (minutes skipped unread hold the next).
    fn note_coldest(&mut self) {
        let minute = (self.at_s / 60.0) as usize;
        if self.coldest_by_minute.len() <= minute {
            self.coldest_by_minute.resize(minute + 1, self.cabinet_c);
        }
        let coldest = &mut self.coldest_by_minute[minute];
        *coldest = coldest.min(self.cabinet_c);
    }

    /// The longest run of whole minutes the cabinet spent at or below `limit_c`
    /// within the machine minutes `[from, to)`.
    pub fn longest_at_or_below(&self, limit_c: f64, from_min: usize, to_min: usize) -> usize {
        let to = to_min.min(self.coldest_by_minute.len());
        let (mut longest, mut run) = (0, 0);
        for &c in self.coldest_by_minute.get(from_min..to).unwrap_or_default() {
            run = if c <= limit_c { run + 1 } else { 0 };
            longest = longest.max(run);
        }
        longest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thermostat_holds_the_cabinet_between_its_limits() {
        let mut t = Thermal::new(5.0, 25.0);
        for minute in 1..=240 {
            t.advance(f64::from(minute) * 60.0, false, Compressor::Working);
            assert!((3.9..=5.6).contains(&t.cabinet_c), "{} °C at minute {minute}", t.cabinet_c);
        }
    }

    #[test]
    fn failed_compressor_warms_slowly_past_eight_degrees() {
        let mut t = Thermal::new(5.0, 25.0);
        t.advance(300.0, false, Compressor::Failed);
        assert!(t.cabinet_c < 8.0, "not within 5 minutes: {}", t.cabinet_c);
        t.advance(3600.0, false, Compressor::Failed);
        assert!(t.cabinet_c > 8.0, "within the hour: {}", t.cabinet_c);
        assert!(!t.compressor_on);
    }

    #[test]
    fn open_door_warms_faster_than_closed() {
        let (mut open, mut closed) = (Thermal::new(5.0, 25.0), Thermal::new(5.0, 25.0));
        open.advance(120.0, true, Compressor::Failed);
        closed.advance(120.0, false, Compressor::Failed);
        assert!(open.cabinet_c > closed.cabinet_c + 1.0);
    }

    #[test]
    fn a_compressor_stuck_on_freezes_the_cabinet_towards_six_below() {
        let mut t = Thermal::new(5.0, 25.0);
        t.advance(1800.0, false, Compressor::StuckOn);
        assert!(t.cabinet_c > -0.5, "not frozen within half an hour: {}", t.cabinet_c);
        t.advance(4.0 * 3600.0, false, Compressor::StuckOn);
        assert!(t.cabinet_c <= -0.5, "at or below the freeze limit within four hours: {}", t.cabinet_c);
        t.advance(48.0 * 3600.0, false, Compressor::StuckOn);
        assert!((-6.5..=-5.5).contains(&t.cabinet_c), "settles near -6: {}", t.cabinet_c);
        assert!(t.compressor_on);
        // The record of the coldest minute says so too: not frozen in the first half
        // hour, frozen for hours by the end.
        assert_eq!(t.longest_at_or_below(-0.5, 0, 30), 0);
        assert!(t.longest_at_or_below(-0.5, 0, 53 * 60) > 40 * 60, "{}", t.longest_at_or_below(-0.5, 0, 53 * 60));
    }
}
