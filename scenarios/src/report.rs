//! The run's report: JSON with every metric and a timeline of events, and an HTML
//! page with plots drawn as inline SVG (queue and booths in use over time, the
//! order-to-booth distribution, the cabinet temperature against its alarm band,
//! faults on the timeline), readable offline with no scripts.

use crate::bound::Bound;
use crate::expect::Check;
use crate::measure::Metrics;
use crate::sampling::Sample;
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

        let hours = |t: f64| t / 3600.0;
        let queue: Vec<(f64, f64)> = self.samples.iter().map(|s| (hours(s.t_s), s.queued as f64)).collect();
        let busy: Vec<(f64, f64)> = self.samples.iter().map(|s| (hours(s.t_s), s.booths_busy as f64)).collect();
        let faults: Vec<(f64, String)> = self.timeline.iter().filter(|e| e.kind.starts_with("fault raised") || e.kind == "alarm raised").map(|e| (hours(e.t_s), e.detail.clone())).collect();
        page.push_str("<h2>Queue and booths in use</h2>");
        page.push_str(&line_chart(&[("orders queued", "#0969da", &queue), ("booths in use", "#bf8700", &busy)], &[], &faults, "hours", "count"));
        page.push_str("<h2>Order to booth</h2>");
        page.push_str(&histogram(&m.order_to_booth_s.values, 20, "seconds from order to booth tray"));
        page.push_str("<h2>Temperatures, every probe</h2>");
        let mut probes: Vec<&str> = self.temperatures.iter().map(|t| t.1.as_str()).collect();
        probes.sort_unstable();
        probes.dedup();
        let colours = ["#0969da", "#8250df", "#1a7f37"];
        let series: Vec<(String, &str, Vec<(f64, f64)>)> = probes
            .iter()
            .zip(colours.iter().cycle())
            .map(|(p, c)| ((*p).to_owned(), *c, self.temperatures.iter().filter(|t| t.1 == *p).map(|t| (hours(t.0), t.2)).collect()))
            .collect();
        let refs: Vec<(&str, &str, &[(f64, f64)])> = series.iter().map(|(n, c, v)| (n.as_str(), *c, v.as_slice())).collect();
        let band = [(self.alarm_band.1, format!("high {:.1} °C", self.alarm_band.1)), (self.alarm_band.0, format!("freeze {:.1} °C", self.alarm_band.0))];
        page.push_str(&line_chart(&refs, &band, &faults, "hours", "°C"));
        page.push_str("<h2>Timeline</h2><table><tr><th>h:mm:ss</th><th>event</th><th>detail</th></tr>");
        for e in self.timeline.iter().filter(|e| e.kind != "order" && e.kind != "administered").take(500) {
            let t = e.t_s.max(0.0) as u64;
            let _ = write!(page, "<tr><td>{}:{:02}:{:02}</td><td>{}</td><td>{}</td></tr>", t / 3600, t / 60 % 60, t % 60, esc(&e.kind), esc(&e.detail));
        }
        page.push_str("</table></body></html>\n");
        page
    }
}

const W: f64 = 900.0;
const H: f64 = 260.0;
const PAD: f64 = 45.0;

/// Lines over a shared x axis, dashed horizontal rules, and red markers with labels.
fn line_chart(series: &[(&str, &str, &[(f64, f64)])], rules: &[(f64, String)], markers: &[(f64, String)], x_label: &str, y_label: &str) -> String {
    let points = series.iter().flat_map(|s| s.2.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (0.0f64, 0.0f64, f64::INFINITY, f64::NEG_INFINITY);
    for (x, y) in points {
        x1 = x1.max(*x);
        y0 = y0.min(*y);
        y1 = y1.max(*y);
    }
    for (y, _) in rules {
        y0 = y0.min(*y);
        y1 = y1.max(*y);
    }
    for (x, _) in markers {
        x1 = x1.max(*x);
    }
    if !y0.is_finite() {
        return "<p class=small>no data</p>".into();
    }
    x0 = x0.min(0.0);
    let (y0, y1) = if y1 - y0 < 1.0 { (y0 - 0.5, y1 + 0.5) } else { (y0, y1) };
    let x1 = if x1 <= x0 { x0 + 1.0 } else { x1 };
    let sx = |x: f64| PAD + (x - x0) / (x1 - x0) * (W - 2.0 * PAD);
    let sy = |y: f64| H - PAD + -(y - y0) / (y1 - y0) * (H - 2.0 * PAD);
    let mut svg = format!("<svg width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" xmlns=\"http://www.w3.org/2000/svg\" font-size=\"11\">");
    let _ = write!(svg, "<line x1=\"{PAD}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#999\"/>", H - PAD, W - PAD, H - PAD);
    let _ = write!(svg, "<line x1=\"{PAD}\" y1=\"{PAD}\" x2=\"{PAD}\" y2=\"{}\" stroke=\"#999\"/>", H - PAD);
    for i in 0..=4 {
        let y = y0 + (y1 - y0) * f64::from(i) / 4.0;
        let _ = write!(svg, "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{y:.1}</text>", PAD - 4.0, sy(y) + 4.0);
        let x = x0 + (x1 - x0) * f64::from(i) / 4.0;
        let _ = write!(svg, "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{x:.1}</text>", sx(x), H - PAD + 15.0);
    }
    let _ = write!(svg, "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{x_label}</text><text x=\"10\" y=\"{}\">{y_label}</text>", W / 2.0, H - 8.0, PAD - 12.0);
    for (y, label) in rules {
        let _ = write!(svg, "<line x1=\"{PAD}\" y1=\"{0:.1}\" x2=\"{1}\" y2=\"{0:.1}\" stroke=\"#cf222e\" stroke-dasharray=\"6 4\"/><text x=\"{1}\" y=\"{2:.1}\" text-anchor=\"end\" fill=\"#cf222e\">{label}</text>", sy(*y), W - PAD, sy(*y) - 3.0);
    }
    for (x, label) in markers {
        let _ = write!(svg, "<line x1=\"{0:.1}\" y1=\"{PAD}\" x2=\"{0:.1}\" y2=\"{1}\" stroke=\"#cf222e\" stroke-opacity=\".5\"><title>{2}</title></line>", sx(*x), H - PAD, label.replace('<', "&lt;"));
    }
    for (i, (name, colour, points)) in series.iter().enumerate() {
        let path: Vec<String> = points.iter().map(|(x, y)| format!("{:.1},{:.1}", sx(*x), sy(*y))).collect();
        let _ = write!(svg, "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\" points=\"{}\"/>", path.join(" "));
        let _ = write!(svg, "<text x=\"{}\" y=\"{}\" fill=\"{colour}\">{name}</text>", PAD + 10.0 + 150.0 * i as f64, PAD - 12.0);
    }
    svg.push_str("</svg>");
    svg
}

/// Bars of how many values fall in each of `bins` equal ranges.
fn histogram(values: &[f64], bins: usize, x_label: &str) -> String {
    if values.is_empty() {
        return "<p class=small>no data</p>".into();
    }
    let (lo, hi) = values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(*v), b.max(*v)));
    let width = ((hi - lo) / bins as f64).max(1e-9);
    let mut counts = vec![0usize; bins];
    for v in values {
        counts[(((v - lo) / width) as usize).min(bins - 1)] += 1;
    }
    let top = counts.iter().copied().max().unwrap_or(1).max(1) as f64;
    let bar = (W - 2.0 * PAD) / bins as f64;
    let mut svg = format!("<svg width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" xmlns=\"http://www.w3.org/2000/svg\" font-size=\"11\">");
    for (i, c) in counts.iter().enumerate() {
        let h = *c as f64 / top * (H - 2.0 * PAD);
        let x = PAD + bar * i as f64;
        let _ = write!(svg, "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"#0969da\"><title>{:.0}–{:.0} s: {c}</title></rect>", H - PAD - h, bar - 2.0, lo + width * i as f64, lo + width * (i + 1) as f64);
    }
    let _ = write!(svg, "<text x=\"{PAD}\" y=\"{0}\">{lo:.0}</text><text x=\"{1}\" y=\"{0}\" text-anchor=\"end\">{hi:.0}</text>", H - PAD + 15.0, W - PAD);
    let _ = write!(svg, "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{x_label}</text><text x=\"10\" y=\"{}\">dispenses (max {top:.0})</text></svg>", W / 2.0, H - 8.0, PAD - 12.0);
    svg
}
