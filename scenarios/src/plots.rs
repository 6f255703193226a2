//! Charts as SVG text, drawn with plotters: line charts with ticked, labelled axes
//! and a legend, for the sweep's page and the scenario reports.

use plotters::prelude::*;

/// One line of a chart: its name and its (x, y) points, in x order.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// A line chart of `series`, with a dashed horizontal `limit` (its label and y)
/// if given; axis captions carry the units.
pub fn lines(title: &str, x_caption: &str, y_caption: &str, series: &[Series], limit: Option<(&str, f64)>) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (760, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let xs = series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
        let ys = series.iter().flat_map(|s| s.points.iter().map(|p| p.1)).chain(limit.map(|l| l.1));
        let (x0, x1) = bounds(xs);
        let (_, y1) = bounds(ys);
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(x0..x1, 0.0..(y1 * 1.1).max(1e-9))
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc(x_caption)
            .y_desc(y_caption)
            .x_labels(8)
            .y_labels(8)
            .label_style(("sans-serif", 12))
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, s) in series.iter().enumerate() {
            let colour = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(s.points.iter().copied(), colour.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label(s.name.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2)));
            chart.draw_series(s.points.iter().map(|&p| Circle::new(p, 3, colour.filled()))).map_err(|e| e.to_string())?;
        }
        if let Some((label, y)) = limit {
            let red = RGBColor(207, 34, 46);
            chart
                .draw_series(DashedLineSeries::new(vec![(x0, y), (x1, y)], 6, 4, red.stroke_width(1)))
                .map_err(|e| e.to_string())?
                .label(label.to_owned())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], red));
        }
        chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).label_font(("sans-serif", 12)).draw().map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
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
}
