//! The controller's recent log lines, kept in memory as well as written to stderr,
//! so a maintenance crew can export the log of a time window over the API without
//! a shell on the machine. Bounded: the oldest lines go first.

use chrono::{DateTime, Utc};
use std::collections::VecDeque;
use std::io::Write;
use std::sync::{Mutex, OnceLock};

/// Lines kept (about a day of a busy clinic at the default `warn`/`info` levels).
const CAPACITY: usize = 50_000;

fn book() -> &'static Mutex<VecDeque<(DateTime<Utc>, String)>> {
    static BOOK: OnceLock<Mutex<VecDeque<(DateTime<Utc>, String)>>> = OnceLock::new();
    BOOK.get_or_init(|| Mutex::new(VecDeque::new()))
}

/// Keeps one formatted line.
pub fn keep(line: &str) {
    let mut book = book().lock().unwrap_or_else(|p| p.into_inner());
    if book.len() == CAPACITY {
        book.pop_front();
    }
    book.push_back((Utc::now(), line.trim_end().to_owned()));
}

/// The lines logged between `from` and `to`, oldest first.
pub fn between(from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<String> {
    let book = book().lock().unwrap_or_else(|p| p.into_inner());
    book.iter().filter(|(at, _)| *at >= from && *at <= to).map(|(_, line)| line.clone()).collect()
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines, coloured only on a terminal.
    #[default]
    Text,
    /// One JSON object per line (tracing-subscriber's JSON), spans included: for a
    /// log shipper.
    Json,
}

/// Installs the process's logger: `RUST_LOG` or `default_filter`, to stderr and the
/// book, in `format`; colour only when stderr is a terminal.
pub fn init(format: LogFormat, default_filter: &str) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default_filter.into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(Tee);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder.json().with_current_span(true).with_span_list(true).init(),
    }
}

/// A `tracing_subscriber` writer: each event to stderr and into the book.
#[derive(Debug, Default, Clone, Copy)]
pub struct Tee;

/// One event's bytes, kept when the event has been formatted.
#[derive(Debug, Default)]
pub struct TeeLine(Vec<u8>);

impl Write for TeeLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for TeeLine {
    fn drop(&mut self) {
        let _ = std::io::stderr().write_all(&self.0);
        // Colour codes are for terminals, not for the service desk's file.
        keep(&strip_ansi(&String::from_utf8_lossy(&self.0)));
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Tee {
    type Writer = TeeLine;
    fn make_writer(&'a self) -> Self::Writer {
        TeeLine::default()
    }
}

fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // ESC [ ... letter
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_kept_by_time_without_colour() {
        let before = Utc::now();
        {
            let mut line = TeeLine::default();
            line.write_all(b"\x1b[33m WARN\x1b[0m logbook-test: door open\n").expect("write");
        }
        let lines = between(before, Utc::now());
        assert!(lines.iter().any(|l| l == " WARN logbook-test: door open"), "{lines:?}");
        assert!(between(before - chrono::Duration::hours(2), before - chrono::Duration::hours(1)).iter().all(|l| !l.contains("logbook-test")));
    }
}
