//! `wsctl sensors` (interlocks and the latest probe readings) and `wsctl temps
//! --since 24h` (the recorded temperatures with a small chart and the alarm band).

use super::Ctx;
use crate::failure::Result;
use crate::show;
use dispense_proto::v1 as pb;

#[derive(Debug, clap::Args)]
pub struct Temps {
    /// How far back (e.g. 24h, 30m, 7d).
    #[arg(long, default_value = "24h", value_parser = show::span)]
    since: chrono::Duration,
    /// Chart width in columns (one time bucket each).
    #[arg(long, default_value_t = 60)]
    width: u32,
}

fn bucket_json(b: &pb::TemperatureBucket) -> serde_json::Value {
    let num = |v: f64| if v.is_finite() { serde_json::json!(v) } else { serde_json::Value::Null };
    serde_json::json!({"probe": b.probe, "start_time": show::when_json(b.start_time.as_ref()), "min": num(b.min_celsius), "mean": num(b.mean_celsius), "max": num(b.max_celsius), "readings": b.readings, "unread": b.unread})
}

async fn history(ctx: &Ctx, since: chrono::Duration, points: u32) -> Result<pb::ListTemperaturesResponse> {
    let since = show::timestamp(chrono::Utc::now() - since);
    // Every page.
    let mut request = pb::ListTemperaturesRequest { start_time: Some(since), max_points: points, ..Default::default() };
    let mut history = ctx.monitoring().list_temperatures(request.clone()).await?.into_inner();
    while !history.next_page_token.is_empty() {
        request.page_token = std::mem::take(&mut history.next_page_token);
        let page = ctx.monitoring().list_temperatures(request.clone()).await?.into_inner();
        history.buckets.extend(page.buckets);
        history.next_page_token = page.next_page_token;
    }
    history.buckets.sort_by(|a, b| a.probe.cmp(&b.probe).then_with(|| show::time(a.start_time.as_ref()).cmp(&show::time(b.start_time.as_ref()))));
    Ok(history)
}

pub async fn sensors(ctx: &Ctx) -> Result<()> {
    let status = ctx.maintenance().get_status(pb::GetStatusRequest {}).await?.into_inner();
    let i = status.interlocks.unwrap_or_default();
    // The last two minutes in one bucket per probe: its latest state in brief.
    let recent = history(ctx, chrono::Duration::minutes(2), 1).await?;
    if ctx.json {
        return show::json(&serde_json::json!({
            "interlocks": {"readable": i.readable, "estop_pressed": i.estop_pressed, "restock_door_open": i.restock_door_open, "light_curtain_broken": i.light_curtain_broken},
            "probes": recent.buckets.iter().map(bucket_json).collect::<Vec<_>>(),
            "alarm_band": [recent.low_alarm_celsius, recent.high_alarm_celsius],
        }));
    }
    let yes_no = |b: bool, yes: &str, no: &str| if b { yes.to_owned() } else { no.to_owned() };
    let mut rows = vec![
        vec!["e-stop".into(), yes_no(i.estop_pressed, "PRESSED", "released")],
        vec!["restock door".into(), yes_no(i.restock_door_open, "OPEN", "closed")],
        vec!["light curtains".into(), yes_no(i.light_curtain_broken, "BROKEN", "clear")],
    ];
    if !i.readable {
        rows.push(vec!["interlocks".into(), "NOT READABLE".into()]);
    }
    for b in &recent.buckets {
        let value = if b.mean_celsius.is_finite() { format!("{:.1} °C (last 2 min: {:.1} to {:.1})", b.mean_celsius, b.min_celsius, b.max_celsius) } else { "NOT READABLE".into() };
        rows.push(vec![b.probe.clone(), value]);
    }
    if recent.buckets.is_empty() {
        rows.push(vec!["probes".into(), "no reading in the last 2 minutes".into()]);
    }
    show::table(&["SENSOR", "NOW"], &rows);
    println!("alarm band {:.1} to {:.1} °C", recent.low_alarm_celsius, recent.high_alarm_celsius);
    Ok(())
}

impl Temps {
    pub async fn run(self, ctx: &Ctx) -> Result<()> {
        let width = self.width.clamp(10, 200);
        let start = chrono::Utc::now() - self.since;
        let h = history(ctx, self.since, width).await?;
        if ctx.json {
            return show::json(&serde_json::json!({"alarm_band": [h.low_alarm_celsius, h.high_alarm_celsius], "buckets": h.buckets.iter().map(bucket_json).collect::<Vec<_>>()}));
        }
        let mut probes: Vec<&str> = h.buckets.iter().map(|b| b.probe.as_str()).collect();
        probes.dedup();
        if probes.is_empty() {
            println!("no readings recorded in that time");
            return Ok(());
        }
        for probe in probes {
            let series: Vec<&pb::TemperatureBucket> = h.buckets.iter().filter(|b| b.probe == probe).collect();
            let finite: Vec<f64> = series.iter().flat_map(|b| [b.min_celsius, b.max_celsius]).filter(|v| v.is_finite()).collect();
            // One column per stretch of time, empty where nothing was recorded.
            let column_ms = (self.since.num_milliseconds() as f64 / f64::from(width)).max(1.0);
            let mut columns: Vec<Option<&pb::TemperatureBucket>> = vec![None; width as usize];
            for b in &series {
                let at = show::time(b.start_time.as_ref()).unwrap_or(start);
                let column = (((at - start).num_milliseconds() as f64 / column_ms).round() as usize).min(width as usize - 1);
                columns[column] = Some(b);
            }
            let (lo, hi) = finite.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(*v), b.max(*v)));
            println!("{probe}: {} buckets, {:.1} to {:.1} °C", series.len(), lo, hi);
            for line in chart(&columns, h.low_alarm_celsius, h.high_alarm_celsius) {
                println!("{line}");
            }
            println!("        {:<w$}now", format!("-{}", humanize(self.since)), w = width as usize - 2);
        }
        Ok(())
    }
}

/// "24h", "30m": a span as the crew typed it.
fn humanize(span: chrono::Duration) -> String {
    match span.num_seconds() {
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// Ten rows from the warmest to the coldest, a column per stretch of time: `#`
/// where the stretch's range covers the row, `-` on the alarm band's edges, `?`
/// where the probe could not be read, blank where nothing was recorded.
pub fn chart(columns: &[Option<&pb::TemperatureBucket>], low: f64, high: f64) -> Vec<String> {
    const ROWS: usize = 10;
    let values = columns.iter().flatten().flat_map(|b| [b.min_celsius, b.max_celsius]).filter(|v| v.is_finite());
    let (mut top, mut bottom) = values.fold((high + 1.0, low - 1.0), |(t, b), v| (t.max(v), b.min(v)));
    top = top.ceil();
    bottom = bottom.floor();
    let step = (top - bottom) / ROWS as f64;
    let mut lines = Vec::new();
    for row in 0..ROWS {
        let row_top = top - step * row as f64;
        let row_bottom = row_top - step;
        let on_edge = |edge: f64| edge <= row_top && edge > row_bottom;
        let mut line = format!("{row_top:6.1} |");
        for column in columns {
            let cell = if column.is_some_and(|b| !b.mean_celsius.is_finite()) {
                '?'
            } else if column.is_some_and(|b| b.max_celsius > row_bottom && b.min_celsius <= row_top) {
                '#'
            } else if on_edge(high) || on_edge(low) {
                '-'
            } else {
                ' '
            };
            line.push(cell);
        }
        if on_edge(high) {
            line.push_str(&format!("  alarm above {high:.1}"));
        }
        if on_edge(low) {
            line.push_str(&format!("  alarm at or below {low:.1}"));
        }
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_shows_the_band_and_a_spike() {
        let steady = pb::TemperatureBucket { probe: "cabinet-a".into(), min_celsius: 5.0, mean_celsius: 5.0, max_celsius: 5.0, readings: 6, ..Default::default() };
        let spike = pb::TemperatureBucket { max_celsius: 9.5, mean_celsius: 6.0, ..steady.clone() };
        let unread = pb::TemperatureBucket { min_celsius: f64::NAN, mean_celsius: f64::NAN, max_celsius: f64::NAN, readings: 0, unread: 3, ..steady.clone() };
        let lines = chart(&[Some(&steady), Some(&spike), Some(&unread), None], -0.5, 8.0);
        assert_eq!(lines.len(), 10);
        assert!(lines.iter().any(|l| l.contains("alarm above 8.0")));
        assert!(lines.iter().any(|l| l.contains("alarm at or below -0.5")));
        let top = &lines[0];
        assert_eq!(&top[top.find('|').expect("axis") + 1..][..3], " #?", "only the spike reaches the top row: {top}");
        assert!(lines.iter().all(|l| l.chars().nth(l.find('|').expect("axis") + 3) == Some('?')), "unread bucket marked");
        let band = lines.iter().find(|l| l.contains("alarm above")).expect("band row");
        assert_eq!(band.chars().nth(band.find('|').expect("axis") + 4), Some('-'), "an empty column still shows the band: {band}");
    }
}
