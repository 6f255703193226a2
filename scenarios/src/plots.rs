//! Charts as SVG text, drawn with plotters: line charts, bar charts and a Gantt
//! chart, each with ticked, captioned axes (units in the captions) and a legend,
//! for the sweep's page and the scenario reports.

use plotters::prelude::*;

/// One line of a chart: its name and its (x, y) points, in x order.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// A line chart: its title, axis captions, lines, dashed horizontal rules (label,
/// y) and vertical event markers (x, label).
#[derive(Debug, Clone, Default)]
pub struct Lines {
    pub title: String,
    pub x: String,
    pub y: String,
    pub series: Vec<Series>,
    pub rules: Vec<(String, f64)>,
    pub markers: Vec<(f64, String)>,
}

const SIZE: (u32, u32) = (760, 400);
const RED: RGBColor = RGBColor(207, 34, 46);

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// A line chart with a dashed horizontal `limit` (its label and y), if given.
pub fn lines(title: &str, x_caption: &str, y_caption: &str, series: &[Series], limit: Option<(&str, f64)>) -> Result<String, String> {
    line_chart(&Lines { title: title.into(), x: x_caption.into(), y: y_caption.into(), series: series.to_vec(), rules: limit.map(|(l, y)| (l.to_owned(), y)).into_iter().collect(), markers: vec![] })
}

pub fn line_chart(chart: &Lines) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let xs = chart.series.iter().flat_map(|s| s.points.iter().map(|p| p.0)).chain(chart.markers.iter().map(|m| m.0));
        let ys: Vec<f64> = chart.series.iter().flat_map(|s| s.points.iter().map(|p| p.1)).chain(chart.rules.iter().map(|r| r.1)).collect();
        let (x0, x1) = bounds(xs);
        let (y0, y1) = bounds(ys.iter().copied());
        let (y0, y1) = if y0 >= 0.0 { (0.0, y1 * 1.1) } else { (y0 - (y1 - y0) * 0.05, y1 + (y1 - y0) * 0.05) };
        let mut c = ChartBuilder::on(&root).caption(&chart.title, ("sans-serif", 18)).margin(12).x_label_area_size(44).y_label_area_size(64).build_cartesian_2d(x0..x1, y0..y1.max(y0 + 1e-9)).map_err(err)?;
        c.configure_mesh().x_desc(&chart.x).y_desc(&chart.y).x_labels(8).y_labels(8).label_style(("sans-serif", 12)).draw().map_err(err)?;
        for (i, s) in chart.series.iter().enumerate() {
            let colour = Palette99::pick(i).to_rgba();
            c.draw_series(LineSeries::new(s.points.iter().copied(), colour.stroke_width(2)))
                .map_err(err)?
                .label(s.name.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2)));
            if s.points.len() <= 40 {
                c.draw_series(s.points.iter().map(|&p| Circle::new(p, 3, colour.filled()))).map_err(err)?;
            }
        }
        for (label, y) in &chart.rules {
            c.draw_series(DashedLineSeries::new(vec![(x0, *y), (x1, *y)], 6, 4, RED.stroke_width(1)))
                .map_err(err)?
                .label(label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], RED));
        }
        for (x, _) in &chart.markers {
            c.draw_series(std::iter::once(PathElement::new(vec![(*x, y0), (*x, y1)], RED.mix(0.4)))).map_err(err)?;
        }
        if !chart.series.is_empty() || !chart.rules.is_empty() {
            c.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).label_font(("sans-serif", 12)).draw().map_err(err)?;
        }
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// A bar chart: one bar per (label, value), the labels along the x axis.
pub fn bars(title: &str, y_caption: &str, bars: &[(String, f64)]) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let top = bars.iter().map(|b| b.1).fold(0.0f64, f64::max).max(1e-9) * 1.1;
        let labels: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
        let mut c = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d((0..bars.len()).into_segmented(), 0.0..top)
            .map_err(err)?;
        c.configure_mesh()
            .y_desc(y_caption)
            .x_labels(bars.len().max(1))
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .label_style(("sans-serif", 12))
            .draw()
            .map_err(err)?;
        let blue = RGBColor(9, 105, 218);
        c.draw_series(bars.iter().enumerate().map(|(i, b)| {
            let mut bar = Rectangle::new([(SegmentValue::Exact(i), 0.0), (SegmentValue::Exact(i + 1), b.1)], blue.filled());
            bar.set_margin(0, 0, 6, 6);
            bar
        }))
        .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// A histogram of `values` in `bins` equal ranges, as bars labelled by range.
pub fn histogram(title: &str, x_caption: &str, values: &[f64], bins: usize) -> Result<String, String> {
    let (lo, hi) = bounds(values.iter().copied());
    let width = (hi - lo) / bins.max(1) as f64;
    let mut counts = vec![0.0; bins.max(1)];
    for v in values.iter().filter(|v| v.is_finite()) {
        counts[(((v - lo) / width) as usize).min(bins.max(1) - 1)] += 1.0;
    }
    let bars: Vec<(String, f64)> = counts.into_iter().enumerate().map(|(i, c)| (format!("{:.0}", lo + width * (i as f64 + 0.5)), c)).collect();
    self::bars(title, &format!("count (x: {x_caption}, bin centres)"), &bars)
}

/// One row of a Gantt chart: its name and its (start, end, stage) segments.
#[derive(Debug, Clone)]
pub struct GanttRow {
    pub name: String,
    pub segments: Vec<(f64, f64, String)>,
}

/// A Gantt chart: a row per item, each segment coloured by its stage (legend).
pub fn gantt(title: &str, x_caption: &str, rows: &[GanttRow]) -> Result<String, String> {
    let mut svg = String::new();
    {
        let height = (120 + 14 * rows.len() as u32).clamp(240, 1400);
        let root = SVGBackend::with_string(&mut svg, (SIZE.0, height)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let (x0, x1) = bounds(rows.iter().flat_map(|r| r.segments.iter().flat_map(|s| [s.0, s.1])));
        let names: Vec<String> = rows.iter().map(|r| r.name.clone()).collect();
        let mut stages: Vec<String> = rows.iter().flat_map(|r| r.segments.iter().map(|s| s.2.clone())).collect();
        stages.sort();
        stages.dedup();
        let mut c = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(80)
            .build_cartesian_2d(x0..x1, (0..rows.len()).into_segmented())
            .map_err(err)?;
        c.configure_mesh()
            .x_desc(x_caption)
            .x_labels(8)
            .y_labels(rows.len().clamp(1, 40))
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => names.get(*i).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .label_style(("sans-serif", 10))
            .draw()
            .map_err(err)?;
        for (k, stage) in stages.iter().enumerate() {
            let colour = Palette99::pick(k).to_rgba();
            let segments = rows.iter().enumerate().flat_map(|(i, r)| r.segments.iter().filter(|s| &s.2 == stage).map(move |s| (i, s.0, s.1)));
            c.draw_series(segments.map(|(i, a, b)| {
                let mut bar = Rectangle::new([(a, SegmentValue::Exact(i)), (b, SegmentValue::Exact(i + 1))], colour.filled());
                bar.set_margin(2, 2, 0, 0);
                bar
            }))
            .map_err(err)?
            .label(stage.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], colour.filled()));
        }
        c.configure_series_labels().background_style(WHITE.mix(0.85)).border_style(BLACK).label_font(("sans-serif", 12)).draw().map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// The range of some values, widened when they are all one (a chart needs width).
fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.filter(|v| v.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    match (lo.is_finite(), hi.is_finite()) {
        (true, true) if hi > lo => (lo, hi),
        (true, true) => (lo - 1.0, hi + 1.0),
        _ => (0.0, 1.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_has_its_lines_ticks_captions_and_limit() {
        let series = vec![Series { name: "4 booths".into(), points: vec![(200.0, 60.0), (300.0, 240.0)] }, Series { name: "5 booths".into(), points: vec![(200.0, 50.0), (300.0, 120.0)] }];
        let svg = lines("p95 wait", "arrivals per hour", "minutes", &series, Some(("5 min", 5.0))).expect("drawn");
        assert!(svg.starts_with("<svg"), "{}", &svg[..40.min(svg.len())]);
        for text in ["p95 wait", "arrivals per hour", "minutes", "4 booths", "5 booths", "5 min", "250"] {
            assert!(svg.contains(text), "the chart shows {text:?}");
        }
        assert!(svg.matches("<polyline").count() >= 3, "two series and the limit");
    }

    #[test]
    fn bars_histograms_and_gantt_charts_draw_their_parts() {
        let svg = bars("Stations busy", "% of the day", &[("picker".into(), 40.0), ("belt".into(), 75.0)]).expect("bars");
        assert!(svg.contains("picker") && svg.contains("belt") && svg.matches("<rect").count() >= 3, "{svg}");
        let svg = histogram("Wait", "seconds", &[1.0, 2.0, 2.5, 9.0], 4).expect("histogram");
        assert!(svg.contains("Wait") && svg.matches("<rect").count() >= 5);
        let rows = vec![
            GanttRow { name: "D000001".into(), segments: vec![(0.0, 1.0, "picking".into()), (1.0, 3.0, "on belt".into())] },
            GanttRow { name: "D000002".into(), segments: vec![(0.5, 2.0, "picking".into())] },
        ];
        let svg = gantt("Units through the stations", "minutes", &rows).expect("gantt");
        for text in ["D000001", "D000002", "picking", "on belt", "minutes"] {
            assert!(svg.contains(text), "the Gantt chart shows {text:?}");
        }
    }
}
