//! Output: aligned tables for people, JSON for scripts, and time as a crew reads it.

use chrono::{DateTime, Utc};

/// Prints rows under headers, each column as wide as its widest cell.
pub fn table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(headers.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// Pretty JSON on stdout.
pub fn json(value: &serde_json::Value) -> crate::failure::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

pub fn time(t: Option<&prost_types::Timestamp>) -> Option<DateTime<Utc>> {
    t.and_then(|t| DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0)))
}

/// "2026-11-24 11:07:10" (UTC), or "-".
pub fn when(t: Option<&prost_types::Timestamp>) -> String {
    time(t).map_or_else(|| "-".into(), |t| t.format("%Y-%m-%d %H:%M:%S").to_string())
}

/// RFC 3339, or null, for JSON.
pub fn when_json(t: Option<&prost_types::Timestamp>) -> serde_json::Value {
    time(t).map_or(serde_json::Value::Null, |t| serde_json::Value::String(t.to_rfc3339()))
}

/// "1.2 s ago", "3 min ago".
pub fn ago(t: Option<&prost_types::Timestamp>) -> String {
    let Some(t) = time(t) else { return "never".into() };
    let s = (Utc::now() - t).num_milliseconds() as f64 / 1000.0;
    match s {
        s if s < 60.0 => format!("{s:.1} s ago"),
        s if s < 3600.0 => format!("{:.0} min ago", s / 60.0),
        s => format!("{:.1} h ago", s / 3600.0),
    }
}

/// An enum's proto name without its prefix, lower case: WORKSTATION_STATE_READY -> ready.
pub fn name(full: &str, prefix: &str) -> String {
    full.trim_start_matches(prefix).to_ascii_lowercase()
}

/// A span like "24h", "30m", "7d", "90s" as a duration.
pub fn span(text: &str) -> Result<chrono::Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: i64 = number.parse().map_err(|_| format!("{text:?}: expected a number and a unit, e.g. 24h, 30m, 7d"))?;
    match unit {
        "s" => Ok(chrono::Duration::seconds(n)),
        "m" | "min" => Ok(chrono::Duration::minutes(n)),
        "h" => Ok(chrono::Duration::hours(n)),
        "d" => Ok(chrono::Duration::days(n)),
        _ => Err(format!("{text:?}: the unit must be s, m, h or d")),
    }
}

pub fn timestamp(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: t.timestamp(), nanos: t.timestamp_subsec_nanos() as i32 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_as_a_crew_writes_them() {
        assert_eq!(span("24h"), Ok(chrono::Duration::hours(24)));
        assert_eq!(span("7d"), Ok(chrono::Duration::days(7)));
        assert!(span("soon").is_err());
        assert!(span("3w").expect_err("weeks").contains("unit"));
    }
}
