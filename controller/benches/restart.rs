//! Restart after a kill (run with `cargo bench -p controller --bench restart`): the
//! daemon on simulated hardware over real wires is SIGKILLed mid-dispense, then
//! restarted; prints the time from process start to serving, the part of it spent
//! homing (excluded from the figure the issue asks for) and in recovery.

#[path = "../tests/common/mod.rs"]
mod common;

use common::daemon::{clinic, spawn_daemon, wire_rig};
use std::time::{Duration, Instant};

/// A `key=value` number from the daemon's "startup phases" log line.
fn field(log: &[String], key: &str) -> f64 {
    log.iter()
        .find(|l| l.contains("startup phases"))
        .and_then(|l| l.split_whitespace().find_map(|w| w.strip_prefix(&format!("{key}="))))
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_hardware, config) = wire_rig(dir.path()).await;
        let mut rows = Vec::new();
        for (round, delay_ms) in [300u64, 800, 1_300, 1_800, 2_400, 500, 1_100, 2_000].into_iter().enumerate() {
            let daemon = spawn_daemon(&config);
            let client = common::clinic_client(&daemon.address).await;
            for booth in 1..=3u32 {
                tokio::spawn(clinic(client.clone(), format!("bench{round}-{booth}"), booth));
            }
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            drop(daemon);
            let t = Instant::now();
            let daemon = spawn_daemon(&config);
            let total = t.elapsed().as_secs_f64() * 1e3;
            let (homing, recovery, waited, settled) =
                (field(&daemon.startup_log, "homing_ms"), field(&daemon.startup_log, "recovery_ms"), field(&daemon.startup_log, "waited_ms"), field(&daemon.startup_log, "settled"));
            println!(
                "kill after {delay_ms:5} ms: ready {total:7.1} ms = homing {homing:5.0} + waiting for motion {waited:5.0} + recovery {recovery:5.0} ({settled} dispenses settled) + start-up; excl. homing {:7.1} ms",
                total - homing
            );
            rows.push((total - homing, recovery));
            drop(daemon);
        }
        let mut excl: Vec<f64> = rows.iter().map(|r| r.0).collect();
        excl.sort_by(f64::total_cmp);
        println!("restart to Ready excluding homing: median {:.1} ms, max {:.1} ms over {} kills (simulator at 25x: motions left running take 1/25 of real time)", excl[excl.len() / 2], excl[excl.len() - 1], excl.len());
    });
}
