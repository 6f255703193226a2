//! Fleet metrics: the daemon, on simulated hardware over real wires with
//! `[telemetry] metrics_listen`, serves OpenMetrics text that Prometheus's own
//! `promtool check metrics` accepts (Debian `prometheus`, installed by
//! scripts/setup.sh), with the figures a city's monitoring reads.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::daemon::{clinic, scrape, spawn_daemon, wire_rig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_pass_promtool_and_count_what_happened() {
    let promtool = ["/usr/bin/promtool", "/usr/local/bin/promtool"].into_iter().find(|p| std::path::Path::new(p).exists()).expect("promtool is not installed: run scripts/setup.sh");
    let dir = tempfile::tempdir().expect("tempdir");
    let (_hardware, config) = wire_rig(dir.path()).await;
    let port = common::broker::free_port();
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(&config, format!("{text}\n[telemetry]\nmetrics_listen = \"127.0.0.1:{port}\"\n")).expect("config");
    let daemon = spawn_daemon(&config);
    let client = common::clinic_client(&daemon.address).await;
    clinic(client, "metered-1".into(), 1).await;
    let address = format!("127.0.0.1:{port}");
    // The dispense's end is counted as the runner lets go: poll for it.
    let until = Instant::now() + Duration::from_secs(10);
    let body = loop {
        let body = scrape(&address, true);
        if body.contains("workstation_dispenses_total{outcome=\"administered\",reason=\"none\"} 1") || Instant::now() > until {
            break body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for expected in [
        "workstation_dispenses_total{outcome=\"administered\",reason=\"none\"} 1",
        "workstation_dispense_stage_seconds_count{stage=\"picking\"} 1",
        "workstation_dispense_stage_seconds_count{stage=\"awaiting_validation\"} 1",
        "workstation_journal_write_seconds_count",
        "workstation_grpc_requests_total{method=\"dispense.v1.DispensingService/StartDispense\",code=\"Ok\"} 1",
        "workstation_queue_length 0",
        "workstation_booths_in_use",
        "workstation_state{state=\"ready\"} 1",
        "workstation_temperature_celsius{probe=\"cabinet-a\"}",
        "workstation_coldchain_alarms_active 0",
        "workstation_modbus_requests_total{device=\"cold store\"}",
        "workstation_modbus_requests_total{device=\"conveyor\"}",
        "# EOF",
    ] {
        assert!(body.contains(expected), "the metrics show {expected:?}:\n{body}");
    }
    // Prometheus's text format, as promtool and plain scrapers read it.
    let body = scrape(&address, false);
    assert!(body.contains("# TYPE workstation_dispenses_total counter") && !body.contains("# EOF"), "{body}");
    let mut check = Command::new(promtool).args(["check", "metrics"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("promtool runs");
    check.stdin.take().expect("stdin").write_all(body.as_bytes()).expect("metrics to promtool");
    let verdict = check.wait_with_output().expect("promtool ends");
    assert!(verdict.status.success(), "promtool check metrics: {}{}", String::from_utf8_lossy(&verdict.stdout), String::from_utf8_lossy(&verdict.stderr));
    eprintln!("promtool check metrics: exit 0 {}{}", String::from_utf8_lossy(&verdict.stdout), String::from_utf8_lossy(&verdict.stderr));
    drop(daemon);
}
