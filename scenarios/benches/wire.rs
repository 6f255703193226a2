//! Figures of the wire layer (run with `cargo bench -p simulator --bench wire`):
//! Modbus round trips over a pseudo-terminal at 115200 baud and over loopback TCP,
//! how long the drivers take to notice a silent device and its return, and the
//! CPU the `wssim hardware` process uses idle and with a full belt.

use hal::modbus::drivers::{WireConfig, WireDevices};
use hal::modbus::link::{LinkTiming, ModbusLink, Transport};
use hal::modbus::map::ir;
use hal::{BoothId, ColdStore, Conveyor, ScanCamera, SlotAddress, Station, TrackingId};
use simulator::injection::{Fault, Line};
use simulator::wire::{Endpoint, Exposure, HardwarePlan, HardwareSim};
use simulator::{SimConfig, SimWorkstation};
use std::time::{Duration, Instant};

#[path = "../tests/support/wssim_process.rs"]
#[allow(dead_code)] // the bench uses only part of the helper
mod wssim_process;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

async fn hardware(store: Exposure, conveyor: Exposure) -> HardwareSim {
    let sim = SimWorkstation::new(SimConfig { speed: 20.0, ..SimConfig::default() }, &[]);
    let plan = HardwarePlan { store, conveyor, http: "127.0.0.1:0".parse().expect("address") };
    HardwareSim::start(sim, &plan).await.expect("hardware simulator")
}

fn transport(endpoint: &Endpoint) -> Transport {
    match endpoint.clone() {
        Endpoint::Rtu { path, baud, unit } => Transport::Rtu { path, baud, unit },
        Endpoint::Tcp { address, unit } => Transport::Tcp { address, unit },
        Endpoint::Memory(port) => Transport::Memory(port),
    }
}

async fn round_trips() {
    let hw = hardware(Exposure::Rtu { baud: 115_200 }, Exposure::Tcp { bind: "127.0.0.1:0".parse().expect("address") }).await;
    for (name, endpoint) in [("RTU, pty at 115200 baud", hw.store_endpoint()), ("TCP, loopback", hw.conveyor_endpoint())] {
        let link = ModbusLink::new("bench", transport(endpoint), LinkTiming::default());
        for _ in 0..50 {
            link.read_input(ir::STATUS, 4).await.expect("warm-up");
        }
        let mut times = Vec::with_capacity(2000);
        for _ in 0..2000 {
            let t = Instant::now();
            link.read_input(ir::STATUS, 4).await.expect("read");
            times.push(t.elapsed());
        }
        times.sort();
        println!(
            "round trip, read 4 input registers, {name:<24} n=2000  p50 {}  p99 {}  max {}",
            ms(percentile(&times, 0.5)),
            ms(percentile(&times, 0.99)),
            ms(times[times.len() - 1])
        );
    }
}

async fn silent_device() {
    let hw = hardware(Exposure::Rtu { baud: 115_200 }, Exposure::Tcp { bind: "127.0.0.1:0".parse().expect("address") }).await;
    let wire = WireConfig::from_toml(&hw.wire_config_toml()).expect("devices");
    let devices = WireDevices::open(&wire);
    let (mut detect, mut recover) = (Vec::new(), Vec::new());
    for line in [Line::Store, Line::Conveyor] {
        let device = if line == Line::Store { &devices.store_device } else { &devices.conveyor_device };
        device.wait_heartbeat(Duration::from_secs(5)).await.expect("heartbeat");
        let mut health = device.health();
        for _ in 0..10 {
            let silent_for = Duration::from_secs(2);
            let t0 = Instant::now();
            hw.inject(&Fault::Silent(line, silent_for.as_secs_f64())).expect("silent");
            health.wait_for(|h| h.silent).await.expect("health");
            detect.push(t0.elapsed());
            health.wait_for(|h| !h.silent).await.expect("health");
            recover.push(t0.elapsed().saturating_sub(silent_for));
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    for (what, mut v) in [("silent device detected after", detect), ("answering again -> fault cleared after", recover)] {
        v.sort();
        println!("{what:<40} n={}  p50 {}  max {}", v.len(), ms(percentile(&v, 0.5)), ms(v[v.len() - 1]));
    }
}

/// utime + stime of a process, in seconds (Linux /proc, USER_HZ = 100).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("proc stat");
    let fields: Vec<&str> = stat.rsplit_once(')').expect("stat").1.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().expect("utime") + fields[12].parse::<f64>().expect("stime");
    ticks / 100.0
}

async fn simulator_cpu() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wssim = wssim_process::start(dir.path(), 10.0);
    let pid = wssim.pid();
    let wire = WireConfig::from_toml(&std::fs::read_to_string(&wssim.devices_file).expect("devices")).expect("devices");
    let devices = WireDevices::open(&wire);
    devices.store_device.wait_heartbeat(Duration::from_secs(5)).await.expect("heartbeat");
    devices.conveyor_device.wait_heartbeat(Duration::from_secs(5)).await.expect("heartbeat");
    devices.store.home().await.expect("home");
    devices.conveyor.home().await.expect("home");

    let window = Duration::from_secs(10);
    let (c0, t0) = (cpu_seconds(pid), Instant::now());
    tokio::time::sleep(window).await;
    let idle = (cpu_seconds(pid) - c0) / t0.elapsed().as_secs_f64();
    println!("wssim CPU, idle (heartbeats from both drivers, no camera client)    {:.1} % of one core", idle * 100.0);

    // A full belt: units picked back to back, each carried past the scan station to
    // the next booth, while a camera client pulls the stream as the controller does.
    let camera = hal::camera::OpenCvCamera::open(&wire.camera, Duration::from_secs(5));
    let (c0, t0) = (cpu_seconds(pid), Instant::now());
    let mut runs = Vec::new();
    let mut carried = 0;
    let mut slot = 0u8;
    while t0.elapsed() < window && slot < 200 {
        let (store, conveyor) = (devices.store.clone(), devices.conveyor.clone());
        let carrier = TrackingId(1000 + u64::from(slot));
        let at = SlotAddress::new(slot / 50, (slot / 10) % 5, slot % 10);
        slot += 1;
        if !store.slot_occupied(at).await.expect("occupancy") {
            continue;
        }
        store.pick_to_hatch(at, carrier).await.expect("pick");
        store.release_to_belt(carrier).await.expect("release");
        let booth = BoothId(slot % 6 + 1);
        runs.push(tokio::spawn(async move {
            conveyor.convey(carrier, Station::Scan).await?;
            conveyor.convey(carrier, Station::Booth(booth)).await
        }));
        carried += 1;
        let _ = camera.grab_frame().await;
    }
    let busy = (cpu_seconds(pid) - c0) / t0.elapsed().as_secs_f64();
    let delivered = count_delivered(runs).await;
    println!("wssim CPU, full belt ({carried} units carried at 10x, {delivered} delivered, camera streaming)  {:.1} % of one core", busy * 100.0);
    drop(wssim);
}

async fn count_delivered(runs: Vec<tokio::task::JoinHandle<hal::devices::Result<()>>>) -> usize {
    let mut ok = 0;
    for r in runs {
        if matches!(r.await, Ok(Ok(()))) {
            ok += 1;
        }
    }
    ok
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    runtime.block_on(async {
        round_trips().await;
        silent_device().await;
        simulator_cpu().await;
    });
}
