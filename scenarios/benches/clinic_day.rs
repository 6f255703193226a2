//! A clinic day on the virtual clock (run with `cargo bench -p scenarios --bench
//! clinic_day`): `scenarios/bench/clinic-day.toml`, ten hours at 210 patients an
//! hour over six booths, and `library/rush-hour.toml`. Prints the wall time, the
//! virtual-to-wall ratio, the dispenses, the achieved share of the mechanical
//! bound, and the process's peak memory.

use std::path::Path;

fn peak_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse::<f64>().ok()).map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    for file in [here.join("bench/clinic-day.toml"), here.join("library/rush-hour.toml")] {
        let report = scenarios::run_file(&file, None, &|_, _, _| {}).expect("the scenario runs");
        let m = &report.metrics;
        println!(
            "{}: {} patients, {} dispenses ({} administered, {} rejected, {} failed); {:.2} virtual h in {:.1} s wall = {:.0}x; {:.1}/h = {:.1} % of the {:.1}/h bound ({}); p95 order to booth {:.0} s; {}",
            report.scenario,
            m.patients,
            m.orders,
            m.administered,
            m.rejected,
            m.failed,
            m.virtual_hours,
            m.wall_s,
            m.speedup,
            m.throughput_per_hour,
            report.bound_fraction * 100.0,
            report.bound.per_hour,
            report.bound.bottleneck,
            m.order_to_booth_s.p95,
            if report.passed { "expectations met" } else { "EXPECTATIONS FAILED" }
        );
    }
    println!("peak memory of the process (VmHWM): {:.1} MiB", peak_mib());
}
