//! Fleet metrics: the workstation's figures as OpenMetrics text (prometheus-client)
//! on `[telemetry] metrics_listen`, for a city's Prometheus to scrape. Counters and
//! histograms are kept as things happen (dispenses by outcome and reason, the time
//! each stage took, the journal's writes, gRPC calls by method and code); the
//! state of the machine (queue, booths, faults, temperatures, alarms, each field
//! device's Modbus link) is read at each scrape.

use crate::dispatch::Dispatcher;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::sync::{Arc, OnceLock};

type Labels = Vec<(String, String)>;

/// The metrics kept as things happen, process-wide (one controller per process;
/// in a simulation with several controllers they add up).
#[derive(Debug)]
pub struct Recorded {
    pub dispenses: Family<Labels, Counter>,
    pub stage_seconds: Family<Labels, Histogram>,
    pub grpc_requests: Family<Labels, Counter>,
    pub grpc_seconds: Family<Labels, Histogram>,
    /// Events the broker acknowledged (repeats after an outage or a crash included).
    pub feed_published: Counter,
}

fn seconds_buckets() -> Histogram {
    // 1 ms to about 9 minutes.
    Histogram::new(exponential_buckets(0.001, 2.0, 20))
}

/// The process's recorded metrics.
pub fn recorded() -> &'static Recorded {
    static RECORDED: OnceLock<Recorded> = OnceLock::new();
    RECORDED.get_or_init(|| Recorded {
        dispenses: Family::default(),
        stage_seconds: Family::new_with_constructor(seconds_buckets as fn() -> Histogram),
        grpc_requests: Family::default(),
        grpc_seconds: Family::new_with_constructor(seconds_buckets as fn() -> Histogram),
        feed_published: Counter::default(),
    })
}

/// A dispense ended: its outcome and, if refused, its first violation (the reason).
pub fn dispense_ended(outcome: &str, reason: Option<&str>) {
    let labels = vec![("outcome".to_owned(), outcome.to_owned()), ("reason".to_owned(), reason.unwrap_or("none").to_owned())];
    recorded().dispenses.get_or_create(&labels).inc();
}

/// A dispense left `stage` after `seconds` in it.
pub fn stage_left(stage: &str, seconds: f64) {
    recorded().stage_seconds.get_or_create(&vec![("stage".to_owned(), stage.to_owned())]).observe(seconds);
}

/// A gRPC call answered: its method, its status code, how long the answer took to begin.
pub fn grpc_answered(method: &str, code: &str, seconds: f64) {
    let labels = vec![("method".to_owned(), method.to_owned()), ("code".to_owned(), code.to_owned())];
    recorded().grpc_requests.get_or_create(&labels).inc();
    recorded().grpc_seconds.get_or_create(&labels).observe(seconds);
}

/// The state of one workstation, read at each scrape.
#[derive(Debug)]
struct Now(Dispatcher);

fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, values: &[(Labels, f64)]) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in values {
        ConstGauge::new(*value).encode(family.encode_family(labels)?)?;
    }
    Ok(())
}

fn counter(encoder: &mut DescriptorEncoder, name: &str, help: &str, values: &[(Labels, u64)]) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, value) in values {
        ConstCounter::new(*value).encode(family.encode_family(labels)?)?;
    }
    Ok(())
}

fn label(key: &str, value: impl Into<String>) -> Labels {
    vec![(key.to_owned(), value.into())]
}

impl Collector for Now {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let d = &self.0;
        let state = d.workstation_state();
        let queue = d.queue();
        let queued = queue.iter().filter(|s| s.stage == crate::dispense::status::Stage::Queued).count();
        gauge(&mut encoder, "workstation_up", "1 while this controller runs (0 once stopped)", &[(vec![], if d.is_stopped() { 0.0 } else { 1.0 })])?;
        gauge(&mut encoder, "workstation_state", "The workstation's state (1 for the current one)", &[(label("state", state.name()), 1.0)])?;
        gauge(&mut encoder, "workstation_queue_length", "Dispenses queued, no unit picked yet", &[(vec![], queued as f64)])?;
        gauge(&mut encoder, "workstation_dispenses_in_flight", "Dispenses not yet finished", &[(vec![], d.in_flight() as f64)])?;
        let booths = d.watch_booths().borrow().clone();
        let busy = booths.booths.iter().filter(|b| b.holder.is_some()).count();
        gauge(&mut encoder, "workstation_booths_in_use", "Booths holding a dispense", &[(vec![], busy as f64)])?;
        let mut by_code: std::collections::BTreeMap<String, f64> = std::collections::BTreeMap::new();
        for f in d.telemetry().faults.active() {
            *by_code.entry(f.code).or_default() += 1.0;
        }
        let faults: Vec<(Labels, f64)> = by_code.into_iter().map(|(code, n)| (label("code", code), n)).collect();
        gauge(&mut encoder, "workstation_faults_active", "Active faults by code", &faults)?;
        let sample = d.telemetry().temperatures().borrow().clone();
        let temperatures: Vec<(Labels, f64)> = sample.iter().flat_map(|s| s.readings.iter().filter_map(|(p, c)| c.map(|c| (label("probe", p.clone()), c)))).collect();
        gauge(&mut encoder, "workstation_temperature_celsius", "Each probe's last reading (a probe that could not be read is absent)", &temperatures)?;
        let alarms = d.journal().active_alarms().map(|a| a.len()).unwrap_or(0);
        gauge(&mut encoder, "workstation_coldchain_alarms_active", "Cold-chain alarms raised and not cleared", &[(vec![], alarms as f64)])?;
        let devices: Vec<(String, hal::modbus::link::LinkStats)> = d.devices().field.iter().map(|f| (f.name().to_owned(), f.stats())).collect();
        let stat = |get: fn(&hal::modbus::link::LinkStats) -> u64| -> Vec<(Labels, u64)> { devices.iter().map(|(n, s)| (label("device", n.clone()), get(s))).collect() };
        counter(&mut encoder, "workstation_modbus_requests", "Modbus requests sent to each field device", &stat(|s| s.requests))?;
        counter(&mut encoder, "workstation_modbus_retries", "Modbus requests sent again", &stat(|s| s.retries))?;
        counter(&mut encoder, "workstation_modbus_failures", "Modbus requests that timed out or got an exception", &stat(|s| s.timeouts + s.exceptions))?;
        counter(&mut encoder, "workstation_modbus_reconnects", "Links reopened after a timeout", &stat(|s| s.reconnects))?;
        if d.journal().outbox_enabled() {
            let backlog = d.journal().outbox_backlog().unwrap_or_default();
            gauge(&mut encoder, "workstation_feed_backlog_events", "Events in the outbox the broker has not acknowledged", &[(vec![], backlog.events as f64)])?;
        }
        Ok(())
    }
}

/// The registry of one workstation: what is recorded and what is read at a scrape.
pub fn registry(dispatcher: Dispatcher) -> Registry {
    let r = recorded();
    let mut registry = Registry::default();
    registry.register("workstation_dispenses", "Dispenses ended, by outcome and reason (the first violation)", r.dispenses.clone());
    registry.register("workstation_dispense_stage_seconds", "Time a dispense spent in each stage", r.stage_seconds.clone());
    registry.register("workstation_journal_write_seconds", "Journal writes, each a commit to disk", dispatcher.journal().write_seconds());
    registry.register("workstation_grpc_requests", "gRPC calls by method and status code", r.grpc_requests.clone());
    registry.register("workstation_grpc_seconds", "Time to the start of each gRPC answer, by method and status code", r.grpc_seconds.clone());
    registry.register("workstation_feed_published", "Events the MQTT broker acknowledged", r.feed_published.clone());
    registry.register_collector(Box::new(Now(dispatcher)));
    registry
}

/// The metrics as text: OpenMetrics when `openmetrics`, else Prometheus's text
/// format 0.0.4 (what `promtool check metrics` and older scrapers read).
pub fn text(registry: &Registry, openmetrics: bool) -> String {
    let mut out = String::new();
    // Writing into a String does not fail.
    let _ = if openmetrics { prometheus_client::encoding::text::encode(&mut out, registry) } else { prometheus_client::encoding::prometheus_text::encode(&mut out, registry) };
    out
}

/// Serves `GET /metrics` on `listener` until `shutdown` completes: OpenMetrics
/// to a scraper that asks for it (`Accept: application/openmetrics-text`, as
/// Prometheus does), Prometheus text to the rest.
pub async fn serve(dispatcher: Dispatcher, listener: tokio::net::TcpListener, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
    let registry = Arc::new(registry(dispatcher));
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move |headers: axum::http::HeaderMap| {
            let registry = registry.clone();
            async move {
                let openmetrics = headers.get(axum::http::header::ACCEPT).and_then(|a| a.to_str().ok()).is_some_and(|a| a.contains("application/openmetrics-text"));
                let kind = if openmetrics { "application/openmetrics-text; version=1.0.0; charset=utf-8" } else { "text/plain; version=0.0.4; charset=utf-8" };
                ([(axum::http::header::CONTENT_TYPE, kind)], text(&registry, openmetrics))
            }
        }),
    );
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}
