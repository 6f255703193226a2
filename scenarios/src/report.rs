//! The run's report: JSON with every metric and a timeline of events, and an HTML
//! page with plots drawn as inline SVG (queue and booths in use over time, the
//! order-to-booth distribution, the cabinet temperature against its alarm band,
//! faults on the timeline), readable offline with no scripts.

use crate::bound::Bound;
use crate::expect::Check;
use crate::measure::Metrics;
use crate::sampling::Sample;
use crate::plots::{self, GanttRow, Lines, Series};
use crate::run::Raw;
use serde::Serialize;
use std::fmt::Write;

/// Something that happened, at a virtual time.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// Virtual seconds since opening.
    pub t_s: f64,
    pub kind: String,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scenario: String,
    pub description: String,
    pub seed: u64,
    /// When the clinic ordered (`check_in` or `when_called`).
    pub ordering: String,
    pub passed: bool,
    pub checks: Vec<Check>,
    pub metrics: Metrics,
    pub bound: Bound,
    /// Achieved throughput as a share of the bound.
    pub bound_fraction: f64,
    pub samples: Vec<Sample>,
    /// (virtual seconds, probe, °C) for every probe (the cabinet's and the belt tunnel's).
    pub temperatures: Vec<(f64, String, f64)>,
    pub alarm_band: (f64, f64),
    pub timeline: Vec<Event>,
    /// Each dispense's stages as the journal recorded them: (id, [(virtual
    /// seconds, stage code)]), for the Gantt chart and the stations' utilisation.
    pub stages: Vec<(String, Vec<(f64, String)>)>,
    /// The heat budget each unit still in store had used at the end (0 to 1).
    pub heat_used: Vec<f64>,
    /// The run's end, virtual seconds since the start.
    pub end_s: f64,
}

impl Report {
    pub fn new(scenario: &crate::format::Scenario, seed: u64, raw: &Raw, metrics: Metrics, bound: Bound, checks: Vec<Check>) -> anyhow::Result<Self> {
        let journal = raw.assembled.dispatcher.journal();
        let since = |t: chrono::DateTime<chrono::Utc>| (t - raw.start).num_milliseconds() as f64 / 1000.0;
        let temperatures = journal
            .readings_between(raw.start, raw.end)?
            .into_iter()
            .filter_map(|(at, probe, c)| c.map(|c| (since(at), probe, c)))
            .collect();
        let mut timeline: Vec<Event> = Vec::new();
        for d in &raw.finals {
            timeline.push(Event { t_s: since(d.created_at), kind: "order".into(), detail: format!("{} {} for booth {}", d.id, d.order.product_id, d.order.booth.0) });
            if let Some(end) = d.finished_at {
                let why: Vec<&str> = d.violations.iter().map(|v| v.id.as_str()).collect();
                let mut detail = if why.is_empty() { format!("{} {}", d.id, d.stage.describe()) } else { format!("{} {} ({})", d.id, d.stage.describe(), why.join(", ")) };
                if d.stage != controller::dispense::status::Stage::Administered && !d.detail.is_empty() {
                    detail = format!("{detail}: {}", d.detail);
                }
                timeline.push(Event { t_s: since(end), kind: d.stage.describe().into(), detail });
            }
        }
        for e in journal.entries_of_kind(controller::ops::faultboard::JOURNAL_KIND, raw.start)? {
            if let Ok(f) = serde_json::from_str::<controller::ops::faultboard::ActiveFault>(&e.detail) {
                timeline.push(Event { t_s: since(e.at), kind: format!("fault {}", e.step), detail: format!("{} {}", f.id, f.detail) });
            }
        }
        for (kind, raised, cleared) in journal.alarms_since(raw.start)? {
            let at = |t: &str| chrono::DateTime::parse_from_rfc3339(t).map(|t| since(t.with_timezone(&chrono::Utc))).unwrap_or(0.0);
            timeline.push(Event { t_s: at(&raised), kind: "alarm raised".into(), detail: kind.clone() });
            if let Some(c) = cleared {
                timeline.push(Event { t_s: at(&c), kind: "alarm cleared".into(), detail: kind });
            }
        }
        timeline.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));
        let mut stages = Vec::new();
        for d in &raw.finals {
            let lines = journal.entries(&d.id)?.into_iter().filter(|e| e.kind == controller::journal::StepKind::Stage).map(|e| (since(e.at), e.step)).collect();
            stages.push((d.id.clone(), lines));
        }
        let in_store = controller::journal::StockFilter { state: Some(controller::rules::inventory::UnitState::InStore), ..Default::default() };
        let heat_used = journal.list_stock(&in_store, None, 100_000)?.into_iter().map(|r| r.heat_consumed).collect();
        let rules = &raw.assembled.config.coldchain.rules;
        Ok(Self {
            scenario: scenario.name.clone(),
            description: scenario.description.clone(),
            seed,
            ordering: scenario.clinic.ordering.as_str().to_owned(),
            passed: checks.iter().all(|c| c.passed),
            bound_fraction: metrics.throughput_per_hour / bound.per_hour.max(1e-9),
            checks,
            metrics,
            bound,
            samples: raw.samples.clone(),
            temperatures,
            alarm_band: (rules.freeze_celsius, rules.high_celsius),
            timeline,
            stages,
            heat_used,
            end_s: since(raw.end),
        })
    }

    pub fn html(&self) -> String {
        let mut page = String::new();
        let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
        let _ = write!(
            page,
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>{name}</title><style>\
             body{{font-family:system-ui,sans-serif;margin:2em;max-width:1000px;color:#222}} table{{border-collapse:collapse}} \
             td,th{{padding:.2em .8em;border-bottom:1px solid #ddd;text-align:left}} .pass{{color:#1a7f37}} .fail{{color:#cf222e;font-weight:bold}} \
             svg{{background:#fafafa;border:1px solid #ddd;margin:.5em 0}} .small{{color:#666;font-size:.9em}}</style></head><body>",
            name = esc(&self.scenario)
        );
        let verdict = if self.passed { "<span class=pass>PASSED</span>" } else { "<span class=fail>FAILED</span>" };
        let m = &self.metrics;
        let _ = write!(page, "<h1>{} — {verdict}</h1><p>{}</p>", esc(&self.scenario), esc(&self.description));
        let _ = write!(
            page,
            "<p class=small>seed {} · {:.1} virtual hours in {:.1} s of wall time ({:.0}x)</p>",
            self.seed, m.virtual_hours, m.wall_s, m.speedup
        );
        page.push_str("<h2>Expectations</h2><table><tr><th></th><th>check</th><th>detail</th></tr>");
        for c in &self.checks {
            let mark = if c.passed { "<span class=pass>✓</span>" } else { "<span class=fail>✗</span>" };
            let _ = write!(page, "<tr><td>{mark}</td><td>{}</td><td>{}</td></tr>", esc(&c.name), esc(&c.detail));
        }
        page.push_str("</table><h2>Figures</h2><table>");
        let rejected: Vec<String> = m.rejected_by.iter().map(|(k, v)| format!("{k} ×{v}")).collect();
        for (k, v) in [
            ("patients / orders", format!("{} / {}", m.patients, m.orders)),
            ("patients by outcome", m.patients_by_outcome.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")),
            ("given by product", m.administered_by_product.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")),
            (
                "controller restarts",
                format!(
                    "{} (serving again after {} s); dispenses resumed {}, ended {}; units quarantined {}, stray carriers binned {}",
                    m.restarts.restarts,
                    m.restarts.restart_to_serving_s.iter().map(|s| format!("{s:.1}")).collect::<Vec<_>>().join(", "),
                    m.restarts.dispenses_resumed,
                    m.restarts.dispenses_ended,
                    m.restarts.units_quarantined,
                    m.restarts.strays_binned
                ),
            ),
            ("vial monitors", format!("at most {:.3} % of a heat budget used by a unit in store; {} held at the end point", m.heat_budget_used_max * 100.0, m.held_at_heat_end_point)),
            (
                "freeze",
                match (m.freeze_reached_min, m.last_freeze_sensitive_given_after_s) {
                    (None, _) => "the cabinet never reached the freeze limit".to_owned(),
                    (Some(t), None) => format!("limit reached at minute {t:.0}; no freeze-sensitive dose after"),
                    (Some(t), Some(s)) => format!("limit reached at minute {t:.0}; last freeze-sensitive dose {s:.0} s after"),
                },
            ),
            ("administered", m.administered.to_string()),
            ("rejected", format!("{} {}", m.rejected, if rejected.is_empty() { String::new() } else { format!("({})", rejected.join(", ")) })),
            ("failed / cancelled", format!("{} / {}", m.failed, m.cancelled)),
            ("throughput", format!("{:.1} per hour", m.throughput_per_hour)),
            ("mechanical bound", format!("{:.1} per hour ({}); achieved {:.1} %", self.bound.per_hour, self.bound.bottleneck, self.bound_fraction * 100.0)),
            ("order to booth", format!("p50 {:.0} s, p95 {:.0} s, max {:.0} s (n = {})", m.order_to_booth_s.p50, m.order_to_booth_s.p95, m.order_to_booth_s.max, m.order_to_booth_s.n)),
            ("patient wait (check-in to dose)", format!("p50 {:.0} s, p95 {:.0} s, max {:.0} s (n = {})", m.patient_wait_s.p50, m.patient_wait_s.p95, m.patient_wait_s.max, m.patient_wait_s.n)),
            ("ordering", self.ordering.clone()),
            ("cold-chain alarms", format!("{:?}", m.cold_chain_alarms)),
            ("faults on the board", format!("{:?}", m.fault_codes)),
            ("final state", m.final_state.clone()),
        ] {
            let _ = write!(page, "<tr><td>{k}</td><td>{}</td></tr>", esc(&v));
        }
        let stages: Vec<String> = self.bound.stages.iter().map(|(s, r)| format!("{s} {r:.0}/h")).collect();
        let _ = write!(page, "</table><p class=small>stage rates: {}</p>", esc(&stages.join(" · ")));

        page.push_str(&self.charts());
        page.push_str("<h2>Timeline</h2><table><tr><th>h:mm:ss</th><th>event</th><th>detail</th></tr>");
        for e in self.timeline.iter().filter(|e| e.kind != "order" && e.kind != "administered").take(500) {
            let t = e.t_s.max(0.0) as u64;
            let _ = write!(page, "<tr><td>{}:{:02}:{:02}</td><td>{}</td><td>{}</td></tr>", t / 3600, t / 60 % 60, t % 60, esc(&e.kind), esc(&e.detail));
        }
        page.push_str("</table>");
        page.push_str(DRAWN_CHECK);
        page.push_str("</body></html>\n");
        page
    }

    /// Every chart of the report, each in a `<figure class=chart data-chart=NAME>`.
    fn charts(&self) -> String {
        let hours = |t: f64| t / 3600.0;
        let m = &self.metrics;
        let faults: Vec<(f64, String)> = self.timeline.iter().filter(|e| e.kind.starts_with("fault raised") || e.kind == "alarm raised").map(|e| (hours(e.t_s), e.detail.clone())).collect();
        let series = |name: &str, points: Vec<(f64, f64)>| Series { name: name.into(), points };
        let mut charts: Vec<(&str, &str, Result<String, String>)> = Vec::new();
        charts.push((
            "load",
            "Orders queued, units in flight and booths in use",
            plots::line_chart(&Lines {
                title: "Queue, units in flight, booths in use".into(),
                x: "hours since opening".into(),
                y: "count".into(),
                series: vec![
                    series("orders queued", self.samples.iter().map(|s| (hours(s.t_s), s.queued as f64)).collect()),
                    series("units in flight", self.samples.iter().map(|s| (hours(s.t_s), s.in_flight as f64)).collect()),
                    series("booths in use", self.samples.iter().map(|s| (hours(s.t_s), s.booths_busy as f64)).collect()),
                ],
                rules: vec![],
                markers: faults.clone(),
            }),
        ));
        charts.push(("throughput", "Throughput over time", plots::line_chart(&Lines {
            title: "Doses given per hour (10-minute windows)".into(),
            x: "hours since opening".into(),
            y: "doses per hour".into(),
            series: vec![series("doses per hour", self.throughput_over_time(600.0))],
            rules: vec![("mechanical bound".into(), self.bound.per_hour)],
            markers: faults.clone(),
        })));
        charts.push(("utilisation", "Stations' utilisation", plots::bars("Share of the run each station was busy", "% of the run", &self.utilisation())));
        charts.push(("gantt", "Units through the stations (the first 40 dispenses)", plots::gantt("Units through the stations", "minutes since opening", &self.gantt_rows(40))));
        charts.push(("wait", "Patients' wait, check-in to dose", plots::histogram("Patients' wait, check-in to dose", "seconds", &m.patient_wait_s.values, 20)));
        charts.push(("to-booth", "Order to booth", plots::histogram("Order to booth tray", "seconds", &m.order_to_booth_s.values, 20)));
        let mut probes: Vec<&str> = self.temperatures.iter().map(|t| t.1.as_str()).collect();
        probes.sort_unstable();
        probes.dedup();
        charts.push(("temperatures", "Temperatures, every probe", plots::line_chart(&Lines {
            title: "Temperatures, every probe".into(),
            x: "hours since opening".into(),
            y: "°C".into(),
            series: probes.iter().map(|p| series(p, self.temperatures.iter().filter(|t| t.1 == *p).map(|t| (hours(t.0), t.2)).collect())).collect(),
            rules: vec![(format!("high {:.1} °C", self.alarm_band.1), self.alarm_band.1), (format!("freeze {:.1} °C", self.alarm_band.0), self.alarm_band.0)],
            markers: faults,
        })));
        let heat: Vec<f64> = self.heat_used.iter().map(|h| h * 100.0).collect();
        charts.push(("heat", "Vial monitors: heat budget used by the units still in store", plots::histogram("Heat budget used, units in store at the end", "% of the budget", &heat, 10)));
        let mut out = String::new();
        for (name, heading, chart) in charts {
            let _ = write!(out, "<h2>{heading}</h2><figure class=chart data-chart=\"{name}\">");
            match chart {
                Ok(svg) => out.push_str(&svg),
                Err(e) => {
                    let _ = write!(out, "<p class=fail>chart not drawn: {}</p>", e.replace('<', "&lt;"));
                }
            }
            out.push_str("</figure>");
        }
        out
    }

    /// Doses given per hour in windows of `window_s`, at each window's middle (hours).
    fn throughput_over_time(&self, window_s: f64) -> Vec<(f64, f64)> {
        let given: Vec<f64> = self.timeline.iter().filter(|e| e.kind == controller::dispense::status::Stage::Administered.describe()).map(|e| e.t_s).collect();
        let windows = (self.end_s / window_s).ceil().max(1.0) as usize;
        (0..windows)
            .map(|w| {
                let (a, b) = (w as f64 * window_s, (w + 1) as f64 * window_s);
                let n = given.iter().filter(|t| **t >= a && **t < b).count() as f64;
                ((a + b) / 2.0 / 3600.0, n * 3600.0 / window_s)
            })
            .collect()
    }

    /// Each dispense's stages as (start, end, stage) in virtual seconds; a stage
    /// still open at the end runs to the end.
    fn intervals(&self) -> impl Iterator<Item = (&str, Vec<(f64, f64, &str)>)> + '_ {
        self.stages.iter().map(|(id, lines)| {
            let mut segments = Vec::new();
            for (i, (t, stage)) in lines.iter().enumerate() {
                let final_stage = controller::dispense::status::Stage::from_code(stage).is_some_and(|s| s.is_final());
                if final_stage {
                    continue;
                }
                let end = lines.get(i + 1).map_or(self.end_s, |n| n.0);
                segments.push((*t, end, stage.as_str()));
            }
            (id.as_str(), segments)
        })
    }

    /// The share of the run each station was busy: the picker (picking), the belt
    /// (a unit riding it), the scan station (scanning and verifying), the booths.
    fn utilisation(&self) -> Vec<(String, f64)> {
        let groups: [(&str, &[&str]); 3] = [("picker", &["picking"]), ("belt", &["on_belt", "to_booth", "to_reject"]), ("scan station", &["scanning", "verifying"])];
        let mut out: Vec<(String, f64)> = groups
            .iter()
            .map(|(name, stages)| {
                let mut spans: Vec<(f64, f64)> = self.intervals().flat_map(|(_, s)| s.into_iter().filter(|seg| stages.contains(&seg.2)).map(|seg| (seg.0, seg.1))).collect();
                spans.sort_by(|a, b| a.0.total_cmp(&b.0));
                // The union of the spans: a station busy with two units at once counts once.
                let (mut busy, mut reach) = (0.0, f64::NEG_INFINITY);
                for (a, b) in spans {
                    let a = a.max(reach);
                    if b > a {
                        busy += b - a;
                    }
                    reach = reach.max(b);
                }
                ((*name).to_owned(), 100.0 * busy / self.end_s.max(1e-9))
            })
            .collect();
        out.push(("booths".into(), 100.0 * crate::sampling::booth_utilisation(self.samples.iter())));
        out
    }

    /// The Gantt chart's rows: the first `n` dispenses, minutes since opening.
    fn gantt_rows(&self, n: usize) -> Vec<GanttRow> {
        self.intervals()
            .take(n)
            .map(|(id, segments)| GanttRow { name: id.to_owned(), segments: segments.into_iter().map(|(a, b, s)| (a / 60.0, b / 60.0, s.replace('_', " "))).collect() })
            .collect()
    }
}

/// Run by the browser that opens the report: each chart is marked
/// `data-drawn=yes` when its SVG laid out with a size and marks in it (what the
/// browser test reads back).
const DRAWN_CHECK: &str = "<script>document.querySelectorAll('figure.chart').forEach(function(f){var s=f.querySelector('svg');var ok=false;\
if(s){var b=s.getBBox();ok=b.width>100&&b.height>100&&s.querySelectorAll('polyline,rect,circle,path,line,polygon').length>5;}\
f.setAttribute('data-drawn',ok?'yes':'no');});</script>";

