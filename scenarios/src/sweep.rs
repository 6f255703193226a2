//! Capacity planning: one scenario run over a grid of settings (`--vary
//! booths=4..8 --vary arrivals_per_hour=200..600:100`), each point with a few
//! seeds, on every core; per point the planner's figures (throughput, the
//! patients' wait from check-in to dose, order to booth, booth utilisation, units
//! wasted, any safety check failed), as rows for a table and plots.

use crate::format::Scenario;
use serde::Serialize;
use std::collections::BTreeMap;

/// The settings a sweep can vary, and what each sets in the scenario.
pub const SETTINGS: &[(&str, &str)] = &[
    ("booths", "workstation.simulator.booths: jab booths (1 to 12)"),
    ("arrivals_per_hour", "patients.arrivals.per_hour: mean arrivals per hour"),
    ("ordering", "clinic.ordering: check_in or when_called"),
    ("duration_h", "duration_h: hours of arrivals"),
];

/// One varied setting and its values, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    pub name: String,
    pub values: Vec<String>,
}

impl std::str::FromStr for Axis {
    type Err = String;

    /// `name=A..B` (whole numbers, step 1), `name=A..B:STEP`, or `name=v1,v2,…`.
    fn from_str(text: &str) -> Result<Self, String> {
        let (name, spec) = text.split_once('=').ok_or_else(|| format!("--vary {text:?}: expected NAME=A..B[:STEP] or NAME=V1,V2"))?;
        let name = name.trim().to_owned();
        if !SETTINGS.iter().any(|(known, _)| *known == name) {
            let known: Vec<&str> = SETTINGS.iter().map(|(n, _)| *n).collect();
            return Err(format!("--vary: {name:?} is not a setting a sweep varies ({})", known.join(", ")));
        }
        let values: Vec<String> = match spec.split_once("..") {
            Some((from, to)) => {
                let (to, step) = to.split_once(':').unwrap_or((to, "1"));
                let number = |s: &str| s.trim().parse::<f64>().map_err(|_| format!("--vary {name}: {s:?} is not a number"));
                let (from, to, step) = (number(from)?, number(to)?, number(step)?);
                if !(step > 0.0) || from > to || ((to - from) / step) > 1000.0 {
                    return Err(format!("--vary {name}: {from}..{to}:{step} is not a range of at most 1000 steps"));
                }
                let count = ((to - from) / step + 1e-9).floor() as usize + 1;
                (0..count).map(|i| trim_number(from + step * i as f64)).collect()
            }
            None => spec.split(',').map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()).collect(),
        };
        if values.is_empty() {
            return Err(format!("--vary {name}: no values"));
        }
        Ok(Axis { name, values })
    }
}

fn trim_number(v: f64) -> String {
    if v.fract() == 0.0 { format!("{v:.0}") } else { format!("{v}") }
}

/// `scenario` with one setting changed, or why it cannot be.
pub fn apply(scenario: &mut Scenario, name: &str, value: &str) -> Result<(), String> {
    let number = || value.parse::<f64>().map_err(|_| format!("{name}: {value:?} is not a number"));
    match name {
        "booths" => {
            let booths = value.parse::<i64>().ok().filter(|b| (1..=12).contains(b)).ok_or_else(|| format!("booths: {value:?} is not 1 to 12"))?;
            let simulator = scenario.workstation.simulator.get_or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let table = simulator.as_table_mut().ok_or("workstation.simulator must be a table")?;
            table.insert("booths".into(), toml::Value::Integer(booths));
        }
        "arrivals_per_hour" => {
            let arrivals = scenario.patients.arrivals.as_mut().ok_or("arrivals_per_hour: the scenario has no [patients.arrivals] to vary")?;
            arrivals.per_hour = number().ok().filter(|r| *r > 0.0).ok_or_else(|| format!("arrivals_per_hour: {value:?} is not a positive rate"))?;
        }
        "ordering" => scenario.clinic.ordering = value.parse()?,
        "duration_h" => scenario.duration_h = number().ok().filter(|h| *h > 0.0).ok_or_else(|| format!("duration_h: {value:?} is not a positive number of hours"))?,
        other => return Err(format!("{other:?} is not a setting a sweep varies")),
    }
    Ok(())
}

/// Every combination of the axes' values, the first axis varying slowest.
pub fn grid(axes: &[Axis]) -> Vec<BTreeMap<String, String>> {
    axes.iter().fold(vec![BTreeMap::new()], |points, axis| {
        points.iter().flat_map(|p| axis.values.iter().map(move |v| {
            let mut p = p.clone();
            p.insert(axis.name.clone(), v.clone());
            p
        })).collect()
    })
}

/// One run of one point of the grid.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub point: BTreeMap<String, String>,
    pub seed: u64,
    pub patients: usize,
    pub given: u64,
    pub throughput_per_hour: f64,
    pub wait_p50_s: f64,
    pub wait_p95_s: f64,
    pub order_to_booth_p50_s: f64,
    pub order_to_booth_p95_s: f64,
    /// Booths busy on average while patients arrived, as a share of the booths.
    pub booth_utilisation: f64,
    /// Units that left the store and were not given (rejected or failed with a unit).
    pub units_wasted: u64,
    /// Patients not given a dose (refused, rejected, failed, cancelled, still waiting).
    pub patients_not_given: u64,
    /// The safety checks this run failed (names); empty when all held.
    pub safety_failed: Vec<String>,
    pub wall_s: f64,
}

/// Runs one point with one seed.
pub fn run_point(base: &Scenario, point: &BTreeMap<String, String>, seed: u64) -> anyhow::Result<Row> {
    let mut scenario = base.clone();
    for (name, value) in point {
        apply(&mut scenario, name, value).map_err(anyhow::Error::msg)?;
    }
    scenario.check().map_err(anyhow::Error::msg)?;
    let raw = crate::run::run(&scenario, seed, &|_, _, _| {})?;
    let m = crate::measure::metrics(&raw, scenario.duration_h)?;
    let while_arriving = raw.samples.iter().filter(|s| s.t_s <= scenario.duration_h * 3600.0);
    let wasted = raw.finals.iter().filter(|d| d.unit.is_some() && d.stage != controller::dispense::status::Stage::Administered).count() as u64;
    let given_patients = m.patients_by_outcome.get("given").copied().unwrap_or(0);
    Ok(Row {
        point: point.clone(),
        seed,
        patients: m.patients,
        given: m.administered,
        throughput_per_hour: m.throughput_per_hour,
        wait_p50_s: m.patient_wait_s.p50,
        wait_p95_s: m.patient_wait_s.p95,
        order_to_booth_p50_s: m.order_to_booth_s.p50,
        order_to_booth_p95_s: m.order_to_booth_s.p95,
        booth_utilisation: crate::sampling::booth_utilisation(while_arriving),
        units_wasted: wasted,
        patients_not_given: (m.patients as u64).saturating_sub(given_patients),
        safety_failed: crate::expect::safety_checks(&m).into_iter().filter(|c| !c.passed).map(|c| c.name).collect(),
        wall_s: raw.wall.as_secs_f64(),
    })
}

/// Runs every point of `points` with `seeds` seeds each (the scenario's seed, then
/// the next ones), `jobs` at once; `each` hears of every row as it ends. Rows come
/// back in grid order.
pub fn sweep(base: &Scenario, points: &[BTreeMap<String, String>], seeds: u64, jobs: usize, each: &(dyn Fn(&Row) + Sync)) -> anyhow::Result<Vec<Row>> {
    let work: Vec<(usize, BTreeMap<String, String>, u64)> =
        points.iter().enumerate().flat_map(|(i, p)| (0..seeds.max(1)).map(move |k| (i, p.clone(), base.seed.wrapping_add(k)))).collect();
    let done = crate::parallel::each(&work, jobs, |(i, point, seed)| {
        let row = run_point(base, point, *seed).map_err(|e| anyhow::anyhow!("point {point:?}, seed {seed}: {e:#}"))?;
        each(&row);
        Ok::<_, anyhow::Error>((*i, row))
    });
    let mut rows = done.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    rows.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.seed.cmp(&b.1.seed)));
    Ok(rows.into_iter().map(|(_, r)| r).collect())
}

/// A point's figures over its seeds: the mean of each (the worst for safety).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub point: BTreeMap<String, String>,
    pub seeds: usize,
    pub throughput_per_hour: f64,
    pub wait_p50_s: f64,
    pub wait_p95_s: f64,
    pub order_to_booth_p95_s: f64,
    pub booth_utilisation: f64,
    pub units_wasted: f64,
    pub patients_not_given: f64,
    pub safety_failed: Vec<String>,
}

/// The rows of each point folded into one summary, in grid order.
pub fn summarise(rows: &[Row]) -> Vec<Summary> {
    let mut by_point: Vec<(BTreeMap<String, String>, Vec<&Row>)> = Vec::new();
    for row in rows {
        match by_point.iter_mut().find(|(p, _)| *p == row.point) {
            Some((_, rs)) => rs.push(row),
            None => by_point.push((row.point.clone(), vec![row])),
        }
    }
    by_point
        .into_iter()
        .map(|(point, rs)| {
            let mean = |f: &dyn Fn(&Row) -> f64| rs.iter().map(|r| f(r)).sum::<f64>() / rs.len() as f64;
            let mut safety: Vec<String> = rs.iter().flat_map(|r| r.safety_failed.clone()).collect();
            safety.sort();
            safety.dedup();
            Summary {
                point,
                seeds: rs.len(),
                throughput_per_hour: mean(&|r| r.throughput_per_hour),
                wait_p50_s: mean(&|r| r.wait_p50_s),
                wait_p95_s: mean(&|r| r.wait_p95_s),
                order_to_booth_p95_s: mean(&|r| r.order_to_booth_p95_s),
                booth_utilisation: mean(&|r| r.booth_utilisation),
                units_wasted: mean(&|r| r.units_wasted as f64),
                patients_not_given: mean(&|r| r.patients_not_given as f64),
                safety_failed: safety,
            }
        })
        .collect()
}

/// The planner's question: for each value of `load` (e.g. arrivals_per_hour, with
/// the other settings but `capacity` as they are), the smallest `capacity` (e.g.
/// booths) whose p95 wait is at most `wait_s` with no safety check failed.
pub fn smallest_meeting(summaries: &[Summary], capacity: &str, wait_s: f64) -> Vec<(BTreeMap<String, String>, Option<String>)> {
    let mut answers: Vec<(BTreeMap<String, String>, Option<String>)> = Vec::new();
    for s in summaries {
        let mut rest = s.point.clone();
        let Some(cap) = rest.remove(capacity) else { continue };
        let meets = s.wait_p95_s <= wait_s && s.safety_failed.is_empty();
        let entry = match answers.iter_mut().position(|(p, _)| *p == rest) {
            Some(i) => &mut answers[i],
            None => {
                answers.push((rest, None));
                answers.last_mut().expect("just pushed")
            }
        };
        let smaller = |a: &str, b: &str| a.parse::<f64>().ok().zip(b.parse::<f64>().ok()).is_some_and(|(a, b)| a < b);
        if meets && entry.1.as_deref().is_none_or(|best| smaller(&cap, best)) {
            entry.1 = Some(cap);
        }
    }
    answers
}

/// The rows as CSV: the varied settings first, then the figures.
pub fn csv(rows: &[Row]) -> String {
    let names: Vec<String> = rows.first().map(|r| r.point.keys().cloned().collect()).unwrap_or_default();
    let mut out = names.join(",");
    out.push_str(if names.is_empty() { "" } else { "," });
    out.push_str("seed,patients,given,throughput_per_hour,wait_p50_s,wait_p95_s,order_to_booth_p50_s,order_to_booth_p95_s,booth_utilisation,units_wasted,patients_not_given,safety_failed,wall_s\n");
    for r in rows {
        let mut fields: Vec<String> = names.iter().map(|n| r.point.get(n).cloned().unwrap_or_default()).collect();
        fields.extend([
            r.seed.to_string(),
            r.patients.to_string(),
            r.given.to_string(),
            format!("{:.2}", r.throughput_per_hour),
            format!("{:.1}", r.wait_p50_s),
            format!("{:.1}", r.wait_p95_s),
            format!("{:.1}", r.order_to_booth_p50_s),
            format!("{:.1}", r.order_to_booth_p95_s),
            format!("{:.3}", r.booth_utilisation),
            r.units_wasted.to_string(),
            r.patients_not_given.to_string(),
            format!("\"{}\"", r.safety_failed.join("; ")),
            format!("{:.2}", r.wall_s),
        ]);
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_parse_ranges_steps_and_lists_and_name_mistakes() {
        let a: Axis = "booths=4..8".parse().expect("range");
        assert_eq!(a.values, ["4", "5", "6", "7", "8"]);
        let a: Axis = "arrivals_per_hour=200..600:100".parse().expect("stepped");
        assert_eq!(a.values, ["200", "300", "400", "500", "600"]);
        let a: Axis = "ordering=check_in,when_called".parse().expect("list");
        assert_eq!(a.values, ["check_in", "when_called"]);
        assert!("booth=4..8".parse::<Axis>().expect_err("unknown").contains("not a setting"));
        assert!("booths=8..4".parse::<Axis>().expect_err("backwards").contains("not a range"));
        assert!("booths=1..9:0".parse::<Axis>().expect_err("no step").contains("not a range"));
        assert!("booths".parse::<Axis>().expect_err("no =").contains("NAME="));
    }

    #[test]
    fn the_grid_is_every_combination() {
        let axes = vec![Axis { name: "booths".into(), values: vec!["4".into(), "5".into()] }, Axis { name: "ordering".into(), values: vec!["check_in".into(), "when_called".into()] }];
        let grid = grid(&axes);
        assert_eq!(grid.len(), 4);
        assert_eq!(grid[1].get("ordering").map(String::as_str), Some("when_called"));
        assert_eq!(grid[2].get("booths").map(String::as_str), Some("5"));
    }

    #[test]
    fn the_smallest_capacity_meeting_the_wait_is_found_per_load() {
        let s = |booths: &str, rate: &str, p95: f64| Summary {
            point: BTreeMap::from([("booths".into(), booths.into()), ("arrivals_per_hour".into(), rate.into())]),
            seeds: 1,
            throughput_per_hour: 0.0,
            wait_p50_s: 0.0,
            wait_p95_s: p95,
            order_to_booth_p95_s: 0.0,
            booth_utilisation: 0.0,
            units_wasted: 0.0,
            patients_not_given: 0.0,
            safety_failed: vec![],
        };
        let answers = smallest_meeting(&[s("4", "500", 900.0), s("6", "500", 280.0), s("5", "500", 310.0), s("10", "500", 100.0), s("4", "200", 60.0)], "booths", 300.0);
        let at = |rate: &str| answers.iter().find(|(p, _)| p.get("arrivals_per_hour").map(String::as_str) == Some(rate)).and_then(|(_, b)| b.clone());
        assert_eq!(at("500").as_deref(), Some("6"), "5 misses the wait, 6 is the smallest that meets it (not 10)");
        assert_eq!(at("200").as_deref(), Some("4"));
    }
}
