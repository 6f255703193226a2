//! The scenario file (TOML): the workstation, the stock, the patients, the
//! faults, the clinic's behaviour and the expectations. `scenarios/README.md`
//! documents it with a commented example. A broken file is refused naming the
//! problem (serde names the field and line; `check` names what does not fit).

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Seeds arrivals, behaviour and the simulator; `wssim run --seed` overrides it.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// How long patients keep arriving, in hours; the run then lets the last ones finish.
    pub duration_h: f64,
    #[serde(default)]
    pub site: Site,
    #[serde(default)]
    pub workstation: Workstation,
    /// The loading manifest (`[[stock.batch]]`, `[[stock.unit]]`), as in `config/stock.toml`.
    pub stock: toml::Value,
    pub patients: Patients,
    #[serde(default)]
    pub clinic: Clinic,
    #[serde(default)]
    pub faults: Vec<ScheduledFault>,
    /// What the pharmacy does during the run.
    #[serde(default)]
    pub actions: Vec<Action>,
    #[serde(default)]
    pub expect: Expect,
}

/// Where and when the clinic day happens. Never the day of the run: the stock's
/// expiry dates are absolute, so a run must give the same result whenever it is made.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Site {
    /// The local date and time the clinic opens (default 2026-06-01T08:00:00).
    #[serde(default = "default_opens")]
    pub opens: chrono::NaiveDateTime,
    /// The site's IANA time zone (default Asia/Shanghai), as in the workstation's `[site]`.
    #[serde(default = "default_zone")]
    pub time_zone: chrono_tz::Tz,
}

impl Default for Site {
    fn default() -> Self {
        Self { opens: default_opens(), time_zone: default_zone() }
    }
}

impl Site {
    /// The instant the clinic opens; a local time the zone skips (a DST gap) is refused.
    pub fn opening(&self) -> Result<chrono::DateTime<chrono::Utc>, String> {
        self.opens
            .and_local_timezone(self.time_zone)
            .earliest()
            .map(|t| t.with_timezone(&chrono::Utc))
            .ok_or_else(|| format!("site.opens: {} does not exist in {} (a daylight-saving gap)", self.opens, self.time_zone))
    }
}

fn default_opens() -> chrono::NaiveDateTime {
    chrono::NaiveDate::from_ymd_opt(2026, 6, 1).and_then(|d| d.and_hms_opt(8, 0, 0)).unwrap_or_default()
}

fn default_zone() -> chrono_tz::Tz {
    chrono_tz::Asia::Shanghai
}

/// Something that happens to the clinic at a time: the pharmacy recalls a batch, or
/// the controller goes down (a crash, a power cut without UPS) and comes back.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Action {
    /// Minutes after opening.
    pub at_min: f64,
    /// Recall this lot (of any product): every unit not yet given is held.
    pub recall_lot: Option<String>,
    /// A maintenance crew clears every active fault with this code (e.g. after
    /// cleaning the camera window), as `wsctl clear` does.
    pub clear_fault: Option<String>,
    /// Stop the controller at once, as a crash would, and start a new one on the
    /// same journal and devices this many seconds later (it recovers, then serves).
    pub restart_controller_after_s: Option<f64>,
    /// With a restart: the controller does not stop at `at_min` but dies between
    /// two journal writes — its next this-many commits are kept, the one after and
    /// everything later lost (the journal's crash point).
    pub crash_after_commits: Option<u64>,
    /// A maintenance crew takes the workstation into maintenance (forced, units in
    /// flight or not), jogs the belt and the picker, and hands it back after this
    /// many minutes; the simulator counts any other motion that starts meanwhile.
    pub maintenance_min: Option<f64>,
    /// The recall notice, for the journal.
    #[serde(default = "default_recall_reason")]
    pub reason: String,
}

fn default_recall_reason() -> String {
    "recall notice".into()
}

fn default_seed() -> u64 {
    1
}

/// The machine: the simulator's geometry and timings, and the controller's checks.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workstation {
    /// The simulator's `[hardware.simulator]` table (booths, racks, rows, columns,
    /// cabinet_celsius, timings); what is left out keeps its default.
    #[serde(default)]
    pub simulator: Option<toml::Value>,
    /// Seconds the guardian has to validate (default 600).
    pub validation_timeout_s: Option<u64>,
    /// Seconds between cold-chain samples (default 60).
    pub coldchain_sample_s: Option<f64>,
    /// How the controller reaches the simulated devices: `wire` (default: the
    /// Modbus drivers over in-memory RTU and TCP lines, with every line fault) or
    /// `in-process` (the device models directly: for stores larger than the
    /// register map describes, and the fastest runs).
    #[serde(default)]
    pub devices: DeviceLink,
}

/// See [`Workstation::devices`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceLink {
    #[default]
    Wire,
    InProcess,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Patients {
    /// Explicit patients.
    #[serde(default)]
    pub list: Vec<Patient>,
    /// Or a seeded arrival process.
    pub arrivals: Option<Arrivals>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Patient {
    /// Minutes after opening.
    pub at_min: f64,
    pub product: String,
    /// Days old on the day (default: the product's youngest age plus 30 days).
    pub age_days: Option<u32>,
    /// The booth (default: the least busy, round robin).
    pub booth: Option<u8>,
    #[serde(default)]
    pub behaviour: Behaviour,
}

/// What the patient and the guardian do at the booth.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Behaviour {
    /// Validates and is vaccinated.
    #[default]
    Normal,
    /// Never comes to the booth: the unit times out at validation.
    NoShow,
    /// The guardian refuses at validation (the unit times out and is rejected).
    Refuses,
    /// The clinic cancels the order soon after placing it.
    Cancels,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Arrivals {
    /// Mean arrivals per hour (a Poisson process).
    pub per_hour: f64,
    /// Product id -> weight.
    pub mix: BTreeMap<String, f64>,
    /// Shares of patients who do not show, whose guardian refuses, whose order is cancelled.
    #[serde(default)]
    pub no_show: f64,
    #[serde(default)]
    pub refuses: f64,
    #[serde(default)]
    pub cancels: f64,
    /// Share of patients the ordered product is not for: too young for it (or too
    /// old, for a product with an upper age), as a busy front desk sometimes
    /// orders. The workstation must refuse them before a unit leaves the store.
    #[serde(default)]
    pub ineligible: f64,
}

/// How long the guardian and the nurse take (uniform between the two numbers, seconds).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Clinic {
    pub validation_s: [f64; 2],
    pub administration_s: [f64; 2],
    /// How long after ordering a cancelling clinic cancels.
    pub cancel_after_s: f64,
    /// The mistakes a real clinic makes (none by default).
    pub mistakes: Mistakes,
    /// When the clinic orders a patient's dose.
    pub ordering: Ordering,
}

impl Default for Clinic {
    fn default() -> Self {
        Self { validation_s: [20.0, 60.0], administration_s: [30.0, 90.0], cancel_after_s: 5.0, mistakes: Mistakes::default(), ordering: Ordering::default() }
    }
}

/// When the clinic orders a patient's dose: a planner's choice the sweep compares.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ordering {
    /// As the patient checks in: the workstation queues the order for the booth
    /// and may pick the unit while the booth still serves the patient before.
    #[default]
    CheckIn,
    /// When the patient is called to the booth (the booth's patient before has had
    /// their dose or left): no unit waits on the belt for a booth, but the patient
    /// waits for the pick and the run.
    WhenCalled,
}

impl Ordering {
    pub fn as_str(self) -> &'static str {
        match self {
            Ordering::CheckIn => "check_in",
            Ordering::WhenCalled => "when_called",
        }
    }
}

impl std::str::FromStr for Ordering {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "check_in" => Ok(Ordering::CheckIn),
            "when_called" => Ok(Ordering::WhenCalled),
            other => Err(format!("{other:?} is not an ordering (check_in or when_called)")),
        }
    }
}

/// Mistakes the clinic makes, each the share of orders it happens to. The
/// workstation must shrug each off: a retry finds its dispense, a double tap is
/// acted on once, a wrong or late word never gives a unit, a missing word never
/// leaves a dispense waiting forever.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Mistakes {
    /// The order is sent again with the same request id (a retry after a timeout).
    pub retries: f64,
    /// Each confirmation is sent twice at once.
    pub double_taps: f64,
    /// The nurse scans the unit in the tray at validation, asked or not.
    pub booth_scans: f64,
    /// The nurse scans another unit than the one in the tray.
    pub wrong_scans: f64,
    /// The guardian validates only after the validation timeout.
    pub late_validations: f64,
    /// The nurse never confirms the administration.
    pub unconfirmed_administrations: f64,
}

impl Mistakes {
    /// Each mistake's name in the file and its share.
    pub fn shares(&self) -> [(&'static str, f64); 6] {
        [
            ("retries", self.retries),
            ("double_taps", self.double_taps),
            ("booth_scans", self.booth_scans),
            ("wrong_scans", self.wrong_scans),
            ("late_validations", self.late_validations),
            ("unconfirmed_administrations", self.unconfirmed_administrations),
        ]
    }
}

/// A fault from the simulator's fault language, at a time or on an event.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduledFault {
    /// Minutes after opening.
    pub at_min: Option<f64>,
    /// When the picker starts its Nth pick.
    pub on_pick: Option<u64>,
    /// When the belt starts its Nth run.
    pub on_convey: Option<u64>,
    /// e.g. "jam", "compressor fail", "door open", "mislabel R1-0-0 (01)…".
    pub fault: String,
}

/// What the run must show. Unset expectations are not checked; the safety ones
/// (no wrong unit delivered, every unit accounted for) always are.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    pub administered: Option<Range>,
    pub failed: Option<Range>,
    pub cancelled: Option<Range>,
    /// Rejected dispenses in all.
    pub rejected: Option<Range>,
    /// Rejected dispenses with this violation id among their reasons.
    #[serde(default)]
    pub rejected_by: BTreeMap<String, Range>,
    /// Administered doses per hour while patients arrive, at least.
    pub throughput_per_hour_min: Option<f64>,
    /// Achieved throughput as a share of the mechanical bound, at least.
    pub bound_fraction_min: Option<f64>,
    /// 95th percentile of order to booth, seconds, at most.
    pub p95_order_to_booth_s_max: Option<f64>,
    /// The 95th percentile of the patients' wait from check-in to their dose, seconds.
    pub p95_patient_wait_s_max: Option<f64>,
    /// Frames garbled on the field lines (noise), at least: the fault did act.
    pub garbled_frames_min: Option<u64>,
    /// Cold-chain alarms raised (e.g. "high", "heat").
    #[serde(default)]
    pub alarms: Vec<String>,
    /// Lots of which no unit may be given after their recall.
    #[serde(default)]
    pub none_given_from: Vec<String>,
    /// Fault codes seen on the fault board (e.g. "WS-JAM", "CV-02").
    #[serde(default)]
    pub faults: Vec<String>,
    /// The workstation's state at the end (e.g. "ready").
    pub final_state: Option<String>,
    /// Administered doses by product (`{ MMR = { min = 10 } }`).
    #[serde(default)]
    pub administered_by_product: BTreeMap<String, Range>,
    /// The last freeze-sensitive dose given at most this many seconds after a
    /// cabinet probe first read at or below the freeze limit (none after: passes).
    pub freeze_sensitive_given_within_s_max: Option<f64>,
    /// Dispenses recovery ended after the controller restarts (it resumes the rest).
    pub ended_by_restarts: Option<Range>,
    /// Units recovery put on hold after the restarts (binned, lost, or taken from
    /// a tray and never confirmed).
    pub quarantined_by_restarts: Option<Range>,
    /// Shares of the patients by how their visit ended, each 0 to 1. Unless set
    /// here, no patient may be refused or left waiting.
    #[serde(default)]
    pub patients: PatientShares,
}

/// Shares of the patients by outcome (`given = { min = 0.9 }`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatientShares {
    pub given: Option<Share>,
    pub rejected: Option<Share>,
    pub failed: Option<Share>,
    pub cancelled: Option<Share>,
    pub refused: Option<Share>,
    pub waiting: Option<Share>,
}

impl PatientShares {
    /// Each outcome's expected share, by the outcome's name; refused and waiting
    /// default to none at all.
    pub fn by_outcome(&self) -> Vec<(&'static str, Share)> {
        let none = Share { min: None, max: Some(0.0) };
        [
            ("given", self.given),
            ("rejected", self.rejected),
            ("failed", self.failed),
            ("cancelled", self.cancelled),
            ("refused", self.refused.or(Some(none))),
            ("waiting", self.waiting.or(Some(none))),
        ]
        .into_iter()
        .filter_map(|(name, share)| share.map(|s| (name, s)))
        .collect()
    }
}

/// A share of the patients, 0 to 1: `{ min = 0.9 }`, `{ max = 0.05 }`, or both.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Share {
    pub min: Option<f64>,
    pub max: Option<f64>,
}

impl Share {
    pub fn contains(self, share: f64) -> bool {
        // A share is a ratio of counts: a hair of rounding is no miss.
        const EPS: f64 = 1e-9;
        self.min.is_none_or(|m| share >= m - EPS) && self.max.is_none_or(|m| share <= m + EPS)
    }

    pub fn describe(self) -> String {
        let pc = |x: f64| format!("{:.0} %", x * 100.0);
        match (self.min, self.max) {
            (Some(a), Some(b)) => format!("{} to {}", pc(a), pc(b)),
            (Some(a), None) => format!("at least {}", pc(a)),
            (None, Some(b)) => format!("at most {}", pc(b)),
            (None, None) => "any share".into(),
        }
    }
}

/// An exact count (`3`) or bounds (`{ min = 3, max = 5 }`).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Range {
    Exactly(u64),
    Between { min: Option<u64>, max: Option<u64> },
}

impl Range {
    pub fn contains(self, n: u64) -> bool {
        match self {
            Range::Exactly(x) => n == x,
            Range::Between { min, max } => min.is_none_or(|m| n >= m) && max.is_none_or(|m| n <= m),
        }
    }

    pub fn describe(self) -> String {
        match self {
            Range::Exactly(x) => format!("exactly {x}"),
            Range::Between { min: Some(a), max: Some(b) } => format!("{a} to {b}"),
            Range::Between { min: Some(a), max: None } => format!("at least {a}"),
            Range::Between { min: None, max: Some(b) } => format!("at most {b}"),
            Range::Between { min: None, max: None } => "any number".into(),
        }
    }
}

impl Scenario {
    /// Reads and checks a scenario file; errors name the file and the problem.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }

    /// A scenario from its TOML text, checked.
    pub fn parse(text: &str) -> Result<Self, String> {
        let scenario: Scenario = toml::from_str(text).map_err(|e| e.to_string())?;
        scenario.check()?;
        Ok(scenario)
    }

    /// What serde cannot see: numbers out of range, a fault that is not in the
    /// simulator's language, patients from nowhere.
    pub fn check(&self) -> Result<(), String> {
        self.site.opening()?;
        if !(self.duration_h > 0.0 && self.duration_h <= 24.0) {
            return Err(format!("duration_h must be more than 0 and at most 24, got {}", self.duration_h));
        }
        if self.patients.list.is_empty() && self.patients.arrivals.is_none() {
            return Err("patients: give a list ([[patients.list]]) or an arrival process ([patients.arrivals])".into());
        }
        if let Some(a) = &self.patients.arrivals {
            if !(a.per_hour > 0.0 && a.per_hour.is_finite()) {
                return Err(format!("patients.arrivals.per_hour must be positive, got {}", a.per_hour));
            }
            if a.mix.is_empty() || a.mix.values().any(|w| !(*w >= 0.0 && w.is_finite())) || a.mix.values().sum::<f64>() <= 0.0 {
                return Err("patients.arrivals.mix needs at least one product with a positive weight".into());
            }
            for (name, share) in [("no_show", a.no_show), ("refuses", a.refuses), ("cancels", a.cancels), ("ineligible", a.ineligible)] {
                if !(0.0..=1.0).contains(&share) {
                    return Err(format!("patients.arrivals.{name} is a share between 0 and 1, got {share}"));
                }
            }
        }
        for (i, p) in self.patients.list.iter().enumerate() {
            if !(p.at_min >= 0.0 && p.at_min.is_finite()) {
                return Err(format!("patients.list[{i}].at_min must be 0 or more, got {}", p.at_min));
            }
        }
        for (name, share) in self.clinic.mistakes.shares() {
            if !(0.0..=1.0).contains(&share) {
                return Err(format!("clinic.mistakes.{name} is a share between 0 and 1, got {share}"));
            }
        }
        for w in [self.clinic.validation_s, self.clinic.administration_s] {
            if !(w[0] >= 0.0 && w[1] >= w[0] && w[1].is_finite()) {
                return Err(format!("clinic delays are [least, most] seconds, got {w:?}"));
            }
        }
        for (i, a) in self.actions.iter().enumerate() {
            let recall = a.recall_lot.as_deref().map(|lot| !lot.trim().is_empty());
            let clear = a.clear_fault.as_deref().map(|code| !code.trim().is_empty());
            let restart = a.restart_controller_after_s.map(|s| s >= 0.0 && s.is_finite());
            let maintenance = a.maintenance_min.map(|m| m > 0.0 && m <= 24.0 * 60.0);
            let given = [recall, clear, restart, maintenance];
            let one = given.iter().flatten().count() == 1 && given.iter().flatten().all(|ok| *ok);
            if !(a.at_min >= 0.0 && a.at_min.is_finite()) || !one {
                return Err(format!(
                    "actions[{i}]: at_min must be 0 or more, with one of recall_lot (a lot), clear_fault (a fault code), restart_controller_after_s (seconds, 0 or more) or maintenance_min (minutes, more than 0)"
                ));
            }
            if a.crash_after_commits.is_some() && restart.is_none() {
                return Err(format!("actions[{i}]: crash_after_commits goes with restart_controller_after_s (the crash, then the restart)"));
            }
        }
        for (i, f) in self.faults.iter().enumerate() {
            let triggers = [f.at_min.is_some(), f.on_pick.is_some(), f.on_convey.is_some()].iter().filter(|t| **t).count();
            if triggers != 1 {
                return Err(format!("faults[{i}] ({:?}) needs exactly one of at_min, on_pick, on_convey", f.fault));
            }
            f.fault.parse::<simulator::injection::Fault>().map_err(|why| format!("faults[{i}]: {why}"))?;
        }
        for (name, share) in self.expect.patients.by_outcome() {
            let ok = |x: Option<f64>| x.is_none_or(|x| (0.0..=1.0).contains(&x));
            if !ok(share.min) || !ok(share.max) || share.min.zip(share.max).is_some_and(|(a, b)| a > b) {
                return Err(format!("expect.patients.{name} is a share between 0 and 1 (min at most max), got {share:?}"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        name = "t"
        duration_h = 1
        [stock]
        [[stock.batch]]
        gtin = "06901234000016"
        lot = "L"
        expiry = "2030-01-31"
        serial_prefix = "S"
        count = 2
        first_slot = "R0-0-0"
        [patients.arrivals]
        per_hour = 10
        mix = { HepB = 1 }
    "#;

    #[test]
    fn a_minimal_file_loads_and_mistakes_are_named() {
        let s: Scenario = toml::from_str(MINIMAL).expect("parses");
        s.check().expect("valid");
        let typo = toml::from_str::<Scenario>(&MINIMAL.replace("per_hour", "per_hr")).expect_err("typo").to_string();
        assert!(typo.contains("per_hr"), "{typo}");
        let mut bad = s.clone();
        bad.faults.push(ScheduledFault { at_min: Some(1.0), on_pick: None, on_convey: None, fault: "gremlins".into() });
        assert!(bad.check().expect_err("unknown fault").contains("faults[0]"));
        bad.faults[0] = ScheduledFault { at_min: Some(1.0), on_pick: Some(2), on_convey: None, fault: "jam".into() };
        assert!(bad.check().expect_err("two triggers").contains("exactly one"));
        assert!(Range::Between { min: Some(2), max: None }.contains(5) && !Range::Exactly(3).contains(4));
        let shares = toml::from_str::<Scenario>(&format!("{MINIMAL}\n[expect.patients]\ngiven = {{ min = 1.5 }}\n")).expect("parses");
        assert!(shares.check().expect_err("a share above 1").contains("expect.patients.given"));
        let typo = toml::from_str::<Scenario>(&format!("{MINIMAL}\n[expect.patients]\ngivn = {{ min = 0.5 }}\n")).expect_err("unknown outcome").to_string();
        assert!(typo.contains("givn"), "{typo}");
        let careless = toml::from_str::<Scenario>(&format!("{MINIMAL}\n[clinic.mistakes]\nwrong_scans = 1.2\n")).expect("parses");
        assert!(careless.check().expect_err("a mistake's share above 1").contains("clinic.mistakes.wrong_scans"));
        let typo = toml::from_str::<Scenario>(&format!("{MINIMAL}\n[clinic.mistakes]\nwrong_scan = 0.1\n")).expect_err("unknown mistake").to_string();
        assert!(typo.contains("wrong_scan"), "{typo}");
        let defaults = s.expect.patients.by_outcome();
        assert_eq!(defaults.len(), 2, "refused and waiting are checked unless set: {defaults:?}");
        assert!(defaults.iter().all(|(_, share)| !share.contains(0.01) && share.contains(0.0)));
    }
}
