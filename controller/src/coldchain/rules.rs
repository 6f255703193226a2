//! Cold-chain alarms as a pure state machine over samples: each sample (the probes'
//! readings, the restock door, mains power) may raise or clear alarms. Defaults are
//! the WHO 30-day recorder's (DOMAIN.md): high above 8 °C, heat above 8 °C
//! continuously for 10 h, freeze at or below −0.5 °C for 60 min, door open over
//! 5 min, power lost over 24 h; plus the two cabinet probes disagreeing and a probe
//! that gives no reading. A missing or non-finite reading is *unknown*, never
//! "fine": it clears no alarm and restarts no clock; with one probe left the other
//! decides; with none, an excursion's clock runs on (fail closed).

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The thresholds; every duration in seconds so a test or a stricter clinic can
/// shorten them.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ColdChainRules {
    pub high_celsius: f64,
    pub heat_s: i64,
    pub freeze_celsius: f64,
    pub freeze_s: i64,
    pub door_s: i64,
    pub power_s: i64,
    /// The two cabinet probes disagree by more than this…
    pub disagree_celsius: f64,
    /// …for this long.
    pub disagree_s: i64,
    /// A cabinet probe without a reading this long raises `ProbeLost`.
    pub probe_silence_s: i64,
}

impl Default for ColdChainRules {
    fn default() -> Self {
        Self {
            high_celsius: 8.0,
            heat_s: 10 * 3600,
            freeze_celsius: -0.5,
            freeze_s: 3600,
            door_s: 5 * 60,
            power_s: 24 * 3600,
            disagree_celsius: 1.0,
            disagree_s: 10 * 60,
            probe_silence_s: 60,
        }
    }
}

impl ColdChainRules {
    /// These rules tightened by a product's own limits (never loosened).
    pub fn tightened(&self, product: &crate::rules::catalog::ProductColdChain) -> Self {
        Self {
            heat_s: product.heat_s.map_or(self.heat_s, |s| s.min(self.heat_s)),
            freeze_celsius: product.freeze_celsius.map_or(self.freeze_celsius, |c| c.max(self.freeze_celsius)),
            freeze_s: product.freeze_s.map_or(self.freeze_s, |s| s.min(self.freeze_s)),
            ..self.clone()
        }
    }
}

/// What can go wrong with the cold chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AlarmKind {
    /// A cabinet probe reads above the high limit (immediate).
    High,
    /// Above the high limit continuously for the heat time: an excursion.
    Heat,
    /// At or below the freeze limit for the freeze time: an excursion.
    Freeze,
    DoorOpen,
    PowerLost,
    ProbesDisagree,
    /// A cabinet probe gave no finite reading for the silence time.
    ProbeLost,
}

impl AlarmKind {
    /// An excursion exposes the units in the cabinet: they are put on hold.
    pub fn is_excursion(self) -> bool {
        matches!(self, AlarmKind::Heat | AlarmKind::Freeze)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AlarmKind::High => "high",
            AlarmKind::Heat => "heat",
            AlarmKind::Freeze => "freeze",
            AlarmKind::DoorOpen => "door_open",
            AlarmKind::PowerLost => "power_lost",
            AlarmKind::ProbesDisagree => "probes_disagree",
            AlarmKind::ProbeLost => "probe_lost",
        }
    }

    /// The fault a crew sees on the board: code, cause, remedy.
    pub fn fault(self) -> crate::ops::faultboard::FaultKind<'static> {
        let (code, cause, remedy) = match self {
            AlarmKind::High => ("CC-HIGH", "A cabinet probe reads above the high limit", "Check the door seal and the compressor; watch for a heat excursion"),
            AlarmKind::Heat => ("CC-HEAT", "The cabinet stayed above the high limit for the heat time: an excursion", "Exposed units are held; a pharmacist reviews them; repair the cooling"),
            AlarmKind::Freeze => ("CC-FREEZE", "The cabinet stayed at or below the freeze limit: an excursion", "Freeze-sensitive units are held; check the thermostat"),
            AlarmKind::DoorOpen => ("CC-DOOR", "The restock door stayed open too long", "Close the restock door"),
            AlarmKind::PowerLost => ("CC-POWER", "Nobody watched the cabinet for longer than the power rule", "Check the cabinet's recorder; review the units"),
            AlarmKind::ProbesDisagree => ("CC-PROBES", "The cabinet probes disagree", "Calibrate or replace the probe that is off"),
            AlarmKind::ProbeLost => (
                "CC-PROBE",
                "A cabinet probe gives no reading",
                "Check the probe and the cold store's line; while no probe reads, an excursion's clock runs on and its units are held when it ends",
            ),
        };
        crate::ops::faultboard::FaultKind { code, cause, remedy }
    }
}

/// One sample of everything the cold chain depends on.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub at: DateTime<Utc>,
    /// The cabinet probes' readings; `None` for a probe that could not be read.
    pub cabinet: Vec<(String, Option<f64>)>,
    pub door_open: bool,
    pub powered: bool,
}

/// An alarm raised or cleared by a sample.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Raised { kind: AlarmKind, since: DateTime<Utc>, detail: String },
    Cleared { kind: AlarmKind, at: DateTime<Utc> },
}

/// The monitor's memory: since when each condition holds, and which alarms are up.
#[derive(Debug, Clone, Default)]
pub struct Monitor {
    rules: ColdChainRules,
    since: BTreeMap<AlarmKind, DateTime<Utc>>,
    active: BTreeMap<AlarmKind, DateTime<Utc>>,
    /// Each cabinet probe's last finite reading (or when it was first seen).
    last_read: BTreeMap<String, DateTime<Utc>>,
    /// Since when no cabinet probe has read.
    blind_since: Option<DateTime<Utc>>,
}

impl Monitor {
    pub fn new(rules: ColdChainRules) -> Self {
        Self { rules, since: BTreeMap::new(), active: BTreeMap::new(), last_read: BTreeMap::new(), blind_since: None }
    }

    /// The alarms up now, with when their condition began.
    pub fn active(&self) -> impl Iterator<Item = (AlarmKind, DateTime<Utc>)> + '_ {
        self.active.iter().map(|(k, t)| (*k, *t))
    }

    /// Takes one sample; returns the alarms it raised and cleared.
    pub fn observe(&mut self, sample: &Sample) -> Vec<Change> {
        let r = &self.rules;
        let readings: Vec<f64> = sample.cabinet.iter().filter_map(|(_, c)| c.filter(|v| v.is_finite())).collect();
        for (name, reading) in &sample.cabinet {
            if reading.is_some_and(f64::is_finite) {
                self.last_read.insert(name.clone(), sample.at);
            } else {
                self.last_read.entry(name.clone()).or_insert(sample.at);
            }
        }
        let silent: Vec<&str> = self.last_read.iter().filter(|(_, t)| sample.at - **t >= Duration::seconds(r.probe_silence_s)).map(|(n, _)| n.as_str()).collect();
        let blind = readings.is_empty();
        let blind_since = if blind {
            *self.blind_since.get_or_insert(sample.at)
        } else {
            self.blind_since = None;
            sample.at
        };
        let warmest = readings.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let coldest = readings.iter().copied().fold(f64::INFINITY, f64::min);
        let spread = if readings.len() >= 2 { warmest - coldest } else { 0.0 };
        let show = |v: f64| format!("{v:.2} °C");
        let known = |holds: bool| (!blind).then_some(holds);
        // (kind, condition holds now — `None` when it cannot be known —, how long it
        // must hold, what to say)
        let conditions = [
            (AlarmKind::High, known(warmest > r.high_celsius), 0, format!("cabinet at {} (limit {})", show(warmest), show(r.high_celsius))),
            (AlarmKind::Heat, known(warmest > r.high_celsius), r.heat_s, format!("above {} for {} s (now {})", show(r.high_celsius), r.heat_s, show(warmest))),
            (AlarmKind::Freeze, known(coldest <= r.freeze_celsius), r.freeze_s, format!("at or below {} for {} s (now {})", show(r.freeze_celsius), r.freeze_s, show(coldest))),
            (AlarmKind::DoorOpen, Some(sample.door_open), r.door_s, format!("restock door open over {} s", r.door_s)),
            (AlarmKind::PowerLost, Some(!sample.powered), r.power_s, format!("mains power lost over {} s", r.power_s)),
            (
                AlarmKind::ProbesDisagree,
                (readings.len() >= 2).then_some(spread > r.disagree_celsius),
                r.disagree_s,
                format!("cabinet probes {} apart (limit {})", show(spread), show(r.disagree_celsius)),
            ),
            (AlarmKind::ProbeLost, Some(!silent.is_empty()), 0, format!("no reading from {} for {} s or more", silent.join(", "), r.probe_silence_s)),
        ];
        let mut changes = Vec::new();
        for (kind, holds, hold_s, detail) in conditions {
            let Some(holds) = holds else {
                // Unknown: no clock clears or restarts. An excursion's clock runs on
                // through the blindness — from its start, or from the last reading —
                // and raises at its time (fail closed).
                if kind.is_excursion() && !self.active.contains_key(&kind) {
                    let since = self.since.get(&kind).copied().unwrap_or(blind_since).min(blind_since);
                    if sample.at - since >= Duration::seconds(hold_s) {
                        self.active.insert(kind, since);
                        let detail = format!("no cabinet probe has read since {blind_since}: taken as an excursion after {hold_s} s (fail closed)");
                        changes.push(Change::Raised { kind, since, detail });
                    }
                }
                continue;
            };
            if !holds {
                self.since.remove(&kind);
                if self.active.remove(&kind).is_some() {
                    changes.push(Change::Cleared { kind, at: sample.at });
                }
                continue;
            }
            let since = *self.since.entry(kind).or_insert(sample.at);
            if !self.active.contains_key(&kind) && sample.at - since >= Duration::seconds(hold_s) {
                self.active.insert(kind, since);
                changes.push(Change::Raised { kind, since, detail });
            }
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_795_000_000, 0).expect("time") + Duration::minutes(minutes)
    }

    fn sample(minutes: i64, a: f64, b: f64, door_open: bool, powered: bool) -> Sample {
        Sample { at: at(minutes), cabinet: vec![("cabinet-a".into(), Some(a)), ("cabinet-b".into(), Some(b))], door_open, powered }
    }

    fn raised(changes: &[Change]) -> Vec<AlarmKind> {
        changes.iter().filter_map(|c| if let Change::Raised { kind, .. } = c { Some(*kind) } else { None }).collect()
    }

    fn cleared(changes: &[Change]) -> Vec<AlarmKind> {
        changes.iter().filter_map(|c| if let Change::Cleared { kind, .. } = c { Some(*kind) } else { None }).collect()
    }

    #[test]
    fn normal_storage_raises_nothing() {
        let mut m = Monitor::new(ColdChainRules::default());
        for minute in 0..600 {
            assert!(m.observe(&sample(minute, 5.0, 5.2, false, true)).is_empty());
        }
    }

    #[test]
    fn high_is_immediate_and_heat_needs_ten_hours_continuous() {
        let mut m = Monitor::new(ColdChainRules::default());
        assert_eq!(raised(&m.observe(&sample(0, 8.5, 8.4, false, true))), [AlarmKind::High]);
        assert!(raised(&m.observe(&sample(599, 8.5, 8.4, false, true))).is_empty(), "9 h 59 min is not yet heat");
        let ten_hours = m.observe(&sample(600, 8.5, 8.4, false, true));
        assert_eq!(raised(&ten_hours), [AlarmKind::Heat]);
        assert!(matches!(&ten_hours[0], Change::Raised { since, .. } if *since == at(0)), "the excursion began at the first warm sample");
        assert_eq!(cleared(&m.observe(&sample(601, 6.0, 6.1, false, true))), [AlarmKind::High, AlarmKind::Heat]);
    }

    #[test]
    fn a_dip_below_the_limit_restarts_the_heat_clock() {
        let mut m = Monitor::new(ColdChainRules::default());
        m.observe(&sample(0, 9.0, 9.0, false, true));
        m.observe(&sample(300, 7.9, 7.9, false, true));
        m.observe(&sample(301, 9.0, 9.0, false, true));
        assert!(raised(&m.observe(&sample(700, 9.0, 9.0, false, true))).is_empty(), "only 6 h 39 min continuous");
        assert_eq!(raised(&m.observe(&sample(901, 9.0, 9.0, false, true))), [AlarmKind::Heat]);
    }

    #[test]
    fn freeze_door_power_and_disagreement_each_wait_their_time() {
        let mut m = Monitor::new(ColdChainRules::default());
        m.observe(&sample(0, -0.5, 0.2, true, false));
        assert!(raised(&m.observe(&sample(5, -0.6, 0.0, true, false))).contains(&AlarmKind::DoorOpen), "door after 5 min");
        assert!(raised(&m.observe(&sample(60, -0.6, 0.0, true, false))).contains(&AlarmKind::Freeze), "freeze after 60 min at or below -0.5");
        assert!(raised(&m.observe(&sample(24 * 60, -0.6, 0.0, true, false))).contains(&AlarmKind::PowerLost), "power after 24 h");

        let mut m = Monitor::new(ColdChainRules::default());
        m.observe(&sample(0, 4.0, 5.5, false, true));
        assert_eq!(raised(&m.observe(&sample(10, 4.0, 5.5, false, true))), [AlarmKind::ProbesDisagree]);
    }

    #[test]
    fn an_unreadable_probe_does_not_hide_the_other() {
        let mut m = Monitor::new(ColdChainRules::default());
        let s = Sample { at: at(0), cabinet: vec![("cabinet-a".into(), None), ("cabinet-b".into(), Some(9.0))], door_open: false, powered: true };
        assert_eq!(raised(&m.observe(&s)), [AlarmKind::High]);
    }

    fn blind(minutes: i64) -> Sample {
        Sample { at: at(minutes), cabinet: vec![("cabinet-a".into(), None), ("cabinet-b".into(), Some(f64::NAN))], door_open: false, powered: true }
    }

    /// Issue 16: one failed read in a heat period neither clears the alarms nor
    /// restarts the heat clock (before, the warmest reading became −∞).
    #[test]
    fn a_failed_read_restarts_no_clock_and_clears_no_alarm() {
        let mut m = Monitor::new(ColdChainRules::default());
        assert_eq!(raised(&m.observe(&sample(0, 9.0, 9.0, false, true))), [AlarmKind::High]);
        assert!(cleared(&m.observe(&blind(300))).is_empty(), "a blind sample clears nothing");
        let ten_hours = m.observe(&sample(600, 9.0, 9.0, false, true));
        assert_eq!(raised(&ten_hours), [AlarmKind::Heat], "the clock ran on from minute 0");
    }

    /// With no probe reading at all, an excursion's clock runs on (fail closed) and a
    /// probe that stays silent raises its own alarm; readings back clear it.
    #[test]
    fn blindness_is_an_alarm_and_ends_in_an_excursion() {
        let mut m = Monitor::new(ColdChainRules { probe_silence_s: 120, ..ColdChainRules::default() });
        m.observe(&sample(0, 5.0, 5.0, false, true));
        assert!(raised(&m.observe(&blind(1))).is_empty(), "not yet silent long enough");
        assert_eq!(raised(&m.observe(&blind(2))), [AlarmKind::ProbeLost]);
        assert_eq!(raised(&m.observe(&blind(61))), [AlarmKind::Freeze], "blind for the freeze time: freeze-sensitive units held");
        assert_eq!(raised(&m.observe(&blind(601))), [AlarmKind::Heat], "blind for the heat time: every unit held");
        let back = m.observe(&sample(602, 5.0, 5.0, false, true));
        assert_eq!(cleared(&back), [AlarmKind::Heat, AlarmKind::Freeze, AlarmKind::ProbeLost]);
    }

    /// With one probe lost the other decides, and no disagreement is judged.
    #[test]
    fn one_probe_lost_the_other_decides() {
        let mut m = Monitor::new(ColdChainRules::default());
        m.observe(&sample(0, 4.0, 5.5, false, true));
        let one = |minutes, b| Sample { at: at(minutes), cabinet: vec![("cabinet-a".into(), None), ("cabinet-b".into(), Some(b))], door_open: false, powered: true };
        assert_eq!(raised(&m.observe(&one(5, 5.5))), [AlarmKind::ProbeLost]);
        let later = m.observe(&one(10, 5.5));
        assert!(later.is_empty(), "a disagreement cannot be judged with one probe: neither raised nor cleared: {later:?}");
        assert_eq!(raised(&m.observe(&one(11, 9.0))), [AlarmKind::High], "the probe left decides");
        let both = m.observe(&sample(12, 9.0, 9.1, false, true));
        assert_eq!(cleared(&both), [AlarmKind::ProbeLost]);
    }

    #[test]
    fn a_product_can_only_tighten_the_cabinet_rules() {
        let cabinet = ColdChainRules::default();
        let strict = crate::rules::catalog::ProductColdChain { heat_s: Some(3600), freeze_celsius: Some(0.0), freeze_s: Some(600) };
        let lax = crate::rules::catalog::ProductColdChain { heat_s: Some(99 * 3600), freeze_celsius: Some(-5.0), freeze_s: Some(99_999) };
        let t = cabinet.tightened(&strict);
        assert_eq!((t.heat_s, t.freeze_celsius, t.freeze_s), (3600, 0.0, 600));
        let l = cabinet.tightened(&lax);
        assert_eq!((l.heat_s, l.freeze_celsius, l.freeze_s), (cabinet.heat_s, cabinet.freeze_celsius, cabinet.freeze_s));
    }

    #[test]
    fn only_heat_and_freeze_are_excursions() {
        let kinds = [AlarmKind::High, AlarmKind::Heat, AlarmKind::Freeze, AlarmKind::DoorOpen, AlarmKind::PowerLost, AlarmKind::ProbesDisagree];
        let excursions: Vec<_> = kinds.into_iter().filter(|k| k.is_excursion()).collect();
        assert_eq!(excursions, [AlarmKind::Heat, AlarmKind::Freeze]);
    }
}
