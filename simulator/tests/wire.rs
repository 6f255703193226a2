//! The hardware-mode simulator driven through the real drivers over real wires:
//! Modbus RTU on pseudo-terminals, Modbus TCP on loopback, the camera through
//! OpenCV. Protocol round trips, every injected fault, the interlocks.

use hal::modbus::drivers::{WireConfig, WireDevices};
use hal::modbus::link::{LinkTiming, ModbusLink, Transport};
use hal::modbus::map::{self, hr, ir, status, task};
use hal::{BoothDisplay, BoothId, Booths, ColdStore, Conveyor, ErrorKind, Interlocks, ScanCamera, SlotAddress, Station, TemperatureProbe, TrackingId, TrayState};
use simulator::injection::{Fault, Line};
use simulator::wire::{Endpoint, Exposure, HardwarePlan, HardwareSim};
use simulator::{SimConfig, SimWorkstation};
use std::time::Duration;

mod support;
use support::unit;

const NEAR: SlotAddress = SlotAddress::new(0, 0, 0);
const OTHER: SlotAddress = SlotAddress::new(0, 0, 1);
/// The last slot (index 199): its occupancy bit lives far from the job slots.
const FAR: SlotAddress = SlotAddress::new(3, 4, 9);


fn rtu() -> Exposure {
    Exposure::Rtu { baud: 115_200 }
}

fn tcp() -> Exposure {
    Exposure::Tcp { bind: "127.0.0.1:0".parse().expect("address") }
}

/// A hardware simulator at 20x and the drivers connected to it as the controller would.
async fn start(store: Exposure, conveyor: Exposure) -> (HardwareSim, WireDevices) {
    start_at(20.0, store, conveyor).await
}

async fn start_at(speed: f64, store: Exposure, conveyor: Exposure) -> (HardwareSim, WireDevices) {
    let config = SimConfig { speed, ..SimConfig::default() };
    let sim = SimWorkstation::new(config, &[unit(NEAR, "A"), unit(OTHER, "B"), unit(FAR, "C")]);
    let plan = HardwarePlan { store, conveyor, http: "127.0.0.1:0".parse().expect("address") };
    let hw = HardwareSim::start(sim, &plan).await.expect("hardware simulator starts");
    let wire = WireConfig::from_toml(&hw.wire_config_toml()).expect("the devices file parses as the controller's WireConfig");
    let devices = WireDevices::open(&wire);
    (hw, devices)
}

/// What `look` sees once it sees it (`Ok`), looked for every 50 ms up to 10 s: a
/// loaded machine may take a while to get there. Panics naming `what` and the last miss.
async fn eventually<T>(what: &str, mut look: impl AsyncFnMut() -> Result<T, String>) -> T {
    let by = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match look().await {
            Ok(seen) => return seen,
            Err(miss) => assert!(tokio::time::Instant::now() < by, "{what}: {miss}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn homed(store: Exposure, conveyor: Exposure) -> (HardwareSim, WireDevices) {
    let (hw, d) = start(store, conveyor).await;
    // The devices refuse motion until they have seen the controller's heartbeat.
    for device in [&d.store_device, &d.conveyor_device] {
        device.wait_heartbeat(Duration::from_secs(5)).await.expect("heartbeat exchanged");
    }
    d.store.home().await.expect("store homes");
    d.conveyor.home().await.expect("conveyor homes");
    (hw, d)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unit_travels_from_slot_to_booth_over_rtu_and_tcp() {
    let (hw, d) = homed(rtu(), tcp()).await;
    assert!(matches!(hw.store_endpoint(), Endpoint::Rtu { path, .. } if path.starts_with("/dev/pts/")));

    let store_id = d.store_device.identity().await.expect("store identity");
    assert_eq!((store_id.device_type, store_id.firmware.as_str(), store_id.serial_number.as_str()), (map::DeviceType::ColdStore, "2.4.1", "SIM-CS-0001"));
    let conveyor_id = d.conveyor_device.identity().await.expect("conveyor identity");
    assert_eq!(conveyor_id.device_type, map::DeviceType::Conveyor);

    assert!(d.store.slot_occupied(NEAR).await.expect("occupancy"));
    assert!(d.store.slot_occupied(FAR).await.expect("occupancy"));
    assert!(!d.store.slot_occupied(SlotAddress::new(3, 4, 8)).await.expect("occupancy"));
    assert_eq!(d.store.occupied_slots().await.expect("all occupancy"), [NEAR, OTHER, FAR]);
    let carrier = TrackingId(70_001);
    d.store.pick_to_hatch(NEAR, carrier).await.expect("pick");
    assert!(!d.store.slot_occupied(NEAR).await.expect("occupancy after pick"));
    assert_eq!(d.store.hatch().await.expect("hatch"), Some(carrier), "the hatch reports its carrier");
    d.store.release_to_belt(carrier).await.expect("release");
    assert_eq!(d.store.hatch().await.expect("hatch"), None);
    assert_eq!(d.conveyor.units_on_belt().await.expect("belt table"), [(carrier, Station::Hatch)]);
    d.conveyor.convey(carrier, Station::Scan).await.expect("to scan");
    assert_eq!(d.conveyor.units_on_belt().await.expect("belt table"), [(carrier, Station::Scan)]);
    d.conveyor.convey(carrier, Station::Booth(BoothId(2))).await.expect("to booth 2");
    assert_eq!(d.conveyor.tray(BoothId(2)).await.expect("tray"), TrayState::Occupied);
    let display = BoothDisplay { patient_name: "刘洋".into(), product_name: "HepB".into(), lot: "L1".into(), expiry: "2027-01-31".into() };
    d.conveyor.show(BoothId(2), &display).await.expect("display");
    assert_eq!(hw.workstation().booth_display(BoothId(2)), Some(display), "the display text crossed the wire intact");
    assert_eq!(hw.workstation().deliveries().len(), 1);

    let temps: Vec<f64> = futures_temps(&d).await;
    assert!(temps.iter().all(|t| (3.0..8.0).contains(t)), "{temps:?}");
    assert!(d.interlocks.read().await.expect("interlocks").all_closed());
}

async fn futures_temps(d: &WireDevices) -> Vec<f64> {
    let mut out = Vec::new();
    for p in &d.probes {
        out.push(p.read_celsius().await.expect("probe"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_motion_with_an_interlock_open_and_an_estop_stops_a_running_belt() {
    let (hw, d) = homed(tcp(), rtu()).await;
    hw.inject(&Fault::Door(true)).expect("door");
    let motions = hw.workstation().motions_started();
    let err = d.store.pick_to_hatch(NEAR, TrackingId(1)).await.expect_err("door open");
    assert_eq!(err.kind(), ErrorKind::Interlock);
    assert_eq!(hw.workstation().motions_started(), motions, "no motion started");
    let codes: Vec<_> = d.store_device.status().await.expect("status").alarms.iter().map(|a| a.code).collect();
    assert!(codes.contains(&"CS-01"), "{codes:?}");
    assert!(d.interlocks.read().await.expect("interlocks").restock_door_open);

    hw.inject(&Fault::Door(false)).expect("door");
    d.store.pick_to_hatch(NEAR, TrackingId(1)).await.expect("pick once closed");
    d.store.release_to_belt(TrackingId(1)).await.expect("release");
    let belt = d.conveyor.clone();
    let run = tokio::spawn(async move { belt.convey(TrackingId(1), Station::Reject).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    hw.inject(&Fault::Estop(true)).expect("e-stop");
    let err = run.await.expect("join").expect_err("e-stop stops the belt");
    assert_eq!(err.kind(), ErrorKind::Interlock);
    assert!(hw.workstation().reject_bin().is_empty(), "the unit stopped on the belt");
    let st = d.conveyor_device.status().await.expect("status");
    assert!(st.has(status::INTERLOCK_OPEN) && !st.has(status::READY));
    assert!(st.alarms.iter().any(|a| a.code == "CV-01"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_device_stops_motion_when_the_controller_heartbeat_stops() {
    // Real time: homing takes 2 s and the pick 4 s, longer than the 1 s timeout.
    let (hw, drivers) = start_at(1.0, tcp(), tcp()).await;
    drop(drivers); // their heartbeat task would keep the device alive
    let Endpoint::Tcp { address, unit } = hw.store_endpoint().clone() else { panic!("tcp") };
    // A bare link without the driver's heartbeat task: heartbeats while homing, then none.
    let link = ModbusLink::new("cold store", Transport::Tcp { address, unit }, LinkTiming::default());
    link.write(hr::CONTROLLER_HEARTBEAT, &[1]).await.expect("heartbeat");
    link.write(hr::TASK_BLOCK, &[1, task::HOME, 0, 0, 0, 0]).await.expect("home task");
    for beat in 2..30 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        link.write(hr::CONTROLLER_HEARTBEAT, &[beat]).await.expect("heartbeat");
    }
    let home = link.read_input(ir::JOB_SLOTS + ir::JOB_SLOT_LEN, 2).await.expect("job slot");
    assert_eq!(home, [1, map::JobState::Done as u16], "homed while the heartbeat ran");
    link.write(hr::TASK_BLOCK, &[2, task::PICK_TO_HATCH, 0, 0, 1, 0]).await.expect("pick task");
    let slot = eventually("the pick ended", async || {
        let slot = link.read_input(ir::JOB_SLOTS + 2 * ir::JOB_SLOT_LEN, 4).await.expect("job slot");
        let ended = [map::JobState::Done, map::JobState::Failed].iter().any(|&state| slot[1] == state as u16);
        if ended { Ok(slot) } else { Err(format!("{slot:?}")) }
    })
    .await;
    assert_eq!((slot[0], slot[1], slot[2]), (2, map::JobState::Failed as u16, map::JobResult::HeartbeatLost as u16), "{slot:?}");
    let st = link.read_input(ir::STATUS, 3).await.expect("status");
    assert!(st[0] & status::CONTROLLER_HEARTBEAT_LOST != 0);
    assert!(map::active_alarms(map::DeviceType::ColdStore, map::registers_to_u32(st[2], st[1])).iter().any(|a| a.code == "CS-06"));
    assert_eq!(hw.workstation().occupied_slots(), 3, "the pick stopped before the unit left its slot");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_task_block_never_starts_a_second_motion() {
    let (hw, d) = homed(tcp(), tcp()).await;
    let Endpoint::Tcp { address, unit } = hw.store_endpoint().clone() else { panic!("tcp") };
    let link = ModbusLink::new("cold store", Transport::Tcp { address, unit }, LinkTiming::default());
    let echo = link.read_input(ir::TASK_SEQ_ECHO, 1).await.expect("echo")[0];
    let seq = echo + 1;
    let before = hw.workstation().motions_started();
    let block = [seq, task::PICK_TO_HATCH, 0, 0, 9, 0];
    link.write(hr::TASK_BLOCK, &block).await.expect("task");
    link.write(hr::TASK_BLOCK, &block).await.expect("same task again (a retried write)");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(hw.workstation().motions_started(), before + 1);
    drop(d);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_device_is_detected_and_its_return_noticed() {
    let (hw, d) = homed(rtu(), tcp()).await;
    let mut health = d.store_device.health();
    assert!(!health.borrow().silent);
    // Silent long enough that a loaded machine still notices and reads while it lasts.
    hw.inject(&Fault::Silent(Line::Store, 4.0)).expect("silent");
    tokio::time::timeout(Duration::from_secs(3), health.wait_for(|h| h.silent)).await.expect("detected in time").expect("health");
    let err = d.store.slot_occupied(NEAR).await.expect_err("no answers while silent");
    assert_eq!(err.kind(), ErrorKind::Timeout);
    tokio::time::timeout(Duration::from_secs(10), health.wait_for(|h| !h.silent)).await.expect("recovered").expect("health");
    assert!(d.store.slot_occupied(NEAR).await.expect("answers again"), "same driver, no restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serial_noise_is_absorbed_by_retries() {
    let (hw, _) = start(rtu(), tcp()).await;
    // One chunk in twenty damaged; with six retries a read fails only if seven
    // attempts in a row are hit (about one in ten million).
    let mut wire = WireConfig::from_toml(&hw.wire_config_toml()).expect("devices");
    wire.timing.retries = 6;
    let d = WireDevices::open(&wire);
    hw.inject(&Fault::Noise(Line::Store, 0.05)).expect("noise");
    for _ in 0..80 {
        d.store_device.identity().await.expect("identity read despite noise");
    }
    assert!(hw.line(Line::Store).corrupted() > 0, "noise was injected");
    assert!(d.store_device.link().stats().retries > 0, "and retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unplugged_device_comes_back_without_a_restart() {
    for (store, line) in [(tcp(), Line::Store), (rtu(), Line::Store)] {
        let (hw, d) = homed(store, tcp()).await;
        let reconnects = d.store_device.link().stats().reconnects;
        hw.inject(&Fault::Unplug(line, 1.5)).expect("unplug");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(d.store.slot_occupied(NEAR).await.is_err(), "unplugged");
        // Plugged back in after 1.5 s.
        let occupied = eventually("plugged back in", async || d.store.slot_occupied(NEAR).await.map_err(|e| e.to_string())).await;
        assert!(occupied);
        assert!(d.store_device.link().stats().reconnects > reconnects);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jams_and_grip_failures_are_defined_faults_with_alarms() {
    let (hw, d) = homed(tcp(), tcp()).await;
    hw.inject(&Fault::GripFailure).expect("grip");
    let err = d.store.pick_to_hatch(NEAR, TrackingId(5)).await.expect_err("dropped");
    assert_eq!(err.kind(), ErrorKind::GripFailure);
    assert_eq!(hw.workstation().dropped().len(), 1);
    assert!(d.store_device.status().await.expect("status").alarms.iter().any(|a| a.code == "CS-02"));

    d.store.pick_to_hatch(OTHER, TrackingId(6)).await.expect("pick");
    d.store.release_to_belt(TrackingId(6)).await.expect("release");
    hw.inject(&Fault::Jam).expect("jam");
    let err = d.conveyor.convey(TrackingId(6), Station::Scan).await.expect_err("jam");
    assert_eq!(err.kind(), ErrorKind::Jam);
    assert!(d.conveyor_device.status().await.expect("status").alarms.iter().any(|a| a.code == "CV-02"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_power_cut_loses_running_jobs_and_needs_homing() {
    let (hw, d) = homed(tcp(), tcp()).await;
    let store = d.store.clone();
    let pick = tokio::spawn(async move { store.pick_to_hatch(NEAR, TrackingId(8)).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    hw.inject(&Fault::PowerLoss(0.3)).expect("power loss");
    let err = pick.await.expect("join").expect_err("job lost");
    assert!(matches!(err.kind(), ErrorKind::NoResponse | ErrorKind::Timeout), "{err}");
    // Power returns after 0.3 s.
    let st = eventually("status after power returns", async || d.store_device.status().await.map_err(|e| e.to_string())).await;
    assert!(!st.has(status::HOMED));
    assert!(st.alarms.iter().any(|a| a.code == "CS-07"));
    let err = d.store.pick_to_hatch(NEAR, TrackingId(9)).await.expect_err("not homed");
    assert_eq!(err.kind(), ErrorKind::NotHomed, "{err}");
    d.store.home().await.expect("home after power loss");
    d.store.pick_to_hatch(NEAR, TrackingId(9)).await.expect("pick after homing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_device_or_address_is_a_clear_error() {
    let (hw, d) = start(tcp(), tcp()).await;
    let Endpoint::Tcp { address, .. } = hw.conveyor_endpoint().clone() else { panic!("tcp") };
    let link = ModbusLink::new("conveyor", Transport::Tcp { address, unit: 2 }, LinkTiming::default());
    let err = link.read_input(hal::modbus::map::ir::END, 4).await.expect_err("outside the map");
    assert_eq!(err.kind(), ErrorKind::Exception);
    assert!(err.to_string().contains("IllegalDataAddress"), "{err}");
    let wrong = hal::modbus::field::FieldDevice::start(link, map::DeviceType::ColdStore);
    let err = wrong.identity().await.expect_err("a conveyor is not a store");
    assert!(err.to_string().contains("found a Conveyor"), "{err}");
    drop(d);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_camera_stream_opens_through_opencv_and_shows_the_label() {
    let (hw, d) = homed(tcp(), tcp()).await;
    d.store.pick_to_hatch(NEAR, TrackingId(3)).await.expect("pick");
    d.store.release_to_belt(TrackingId(3)).await.expect("release");
    d.conveyor.convey(TrackingId(3), Station::Scan).await.expect("to scan");
    let camera = hal::camera::OpenCvCamera::open(&hw.camera_url(), Duration::from_secs(5));
    let frame = camera.grab_frame().await.expect("a frame through OpenCV");
    assert_eq!((frame.width, frame.height), (400, 300));
    // The empty station is dark; each frame's look (tilt, blur, a fingertip, the
    // label turned away) is drawn at random, so only a floor is asked of the paper.
    let bright = frame.pixels.iter().filter(|&&p| p > 200).count();
    assert!(bright > 3_000, "the label paper is in view ({bright} bright pixels)");

    hw.inject(&Fault::Camera(simulator::injection::CameraFault::Occlusion)).expect("occlusion");
    let mut dark = 0;
    for _ in 0..3 {
        let frame = camera.grab_frame().await.expect("frame");
        dark = dark.max(frame.pixels.iter().filter(|&&p| p < 40).count());
    }
    assert!(dark > 50_000, "half the view is covered ({dark} dark pixels)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cold_chain_faults_show_in_the_probes_and_the_alarm_word() {
    // 200x and a cabinet near its limit: a failed compressor warms it past 8 °C in a
    // fraction of a second of wall time.
    let config = SimConfig { speed: 200.0, cabinet_celsius: 7.8, ..SimConfig::default() };
    let sim = SimWorkstation::new(config, &[]);
    let plan = HardwarePlan { store: rtu(), conveyor: tcp(), http: "127.0.0.1:0".parse().expect("address") };
    let hw = HardwareSim::start(sim, &plan).await.expect("hardware");
    let d = WireDevices::open(&WireConfig::from_toml(&hw.wire_config_toml()).expect("devices"));
    hw.inject(&Fault::CompressorFailure(true)).expect("compressor");
    eventually("warmed past 8 °C", async || {
        let cabinet = d.probes[0].read_celsius().await.expect("probe a");
        if cabinet > 8.0 { Ok(()) } else { Err(format!("{cabinet} °C")) }
    })
    .await;
    let codes: Vec<_> = d.store_device.status().await.expect("status").alarms.iter().map(|a| a.code).collect();
    assert!(codes.contains(&"CS-03") && codes.contains(&"CS-05"), "{codes:?}");

    hw.inject(&Fault::ProbeOffset(2.5)).expect("offset");
    let (a, b) = (d.probes[0].read_celsius().await.expect("a"), d.probes[1].read_celsius().await.expect("b"));
    assert!((b - a - 2.5).abs() < 0.3, "probe B reads 2.5 °C high: {a} vs {b}");
    assert!(d.store_device.status().await.expect("status").alarms.iter().any(|a| a.code == "CS-04"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stuck_sensors_light_curtains_and_camera_faults_reach_the_wire() {
    let (hw, d) = homed(tcp(), rtu()).await;
    hw.inject(&"tray-stuck 3".parse::<Fault>().expect("fault")).expect("stuck");
    assert_eq!(d.conveyor.tray(BoothId(3)).await.expect("tray"), TrayState::Occupied, "reads occupied with nothing in it");
    hw.inject(&Fault::TrayStuck(None)).expect("freed");
    assert_eq!(d.conveyor.tray(BoothId(3)).await.expect("tray"), TrayState::Empty);

    d.store.pick_to_hatch(NEAR, TrackingId(4)).await.expect("pick");
    d.store.release_to_belt(TrackingId(4)).await.expect("release");
    hw.inject(&Fault::LightCurtain(true)).expect("curtain");
    assert!(d.interlocks.read().await.expect("interlocks").light_curtain_broken);
    let err = d.conveyor.convey(TrackingId(4), Station::Scan).await.expect_err("curtain broken");
    assert_eq!(err.kind(), ErrorKind::Interlock);
    hw.inject(&Fault::LightCurtain(false)).expect("curtain");
    d.conveyor.convey(TrackingId(4), Station::Scan).await.expect("to scan once clear");

    let camera = hal::camera::OpenCvCamera::open(&hw.camera_url(), Duration::from_secs(5));
    // A frame already on its way when a fault is injected shows the view before
    // it: look at the frames that follow, until a deadline.
    async fn until(camera: &hal::camera::OpenCvCamera, seen: impl Fn(&hal::Frame) -> usize, wanted: impl Fn(usize) -> bool) -> usize {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let n = seen(&camera.grab_frame().await.expect("frame"));
            if wanted(n) || std::time::Instant::now() > deadline {
                return n;
            }
        }
    }
    hw.inject(&Fault::Camera(simulator::injection::CameraFault::Glare)).expect("glare");
    let saturated = until(&camera, |f| f.pixels.iter().filter(|&&p| p > 245).count(), |n| n > 20_000).await;
    assert!(saturated > 20_000, "a band of glare ({saturated} saturated pixels)");
    hw.inject(&Fault::Camera(simulator::injection::CameraFault::Blur)).expect("blur");
    let edges = until(&camera, |f| f.pixels.windows(2).filter(|w| w[0].abs_diff(w[1]) > 100).count(), |n| n < 50).await;
    assert!(edges < 50, "a blurred view has no sharp edges left ({edges})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_driver_alarms_when_target_and_actual_station_differ() {
    let (hw, d) = homed(tcp(), tcp()).await;
    d.store.pick_to_hatch(NEAR, TrackingId(11)).await.expect("pick");
    d.store.release_to_belt(TrackingId(11)).await.expect("release");
    d.conveyor.convey(TrackingId(11), Station::Scan).await.expect("to scan");
    hw.inject(&"diverter stuck".parse::<Fault>().expect("fault")).expect("diverter");
    let err = d.conveyor.convey(TrackingId(11), Station::Booth(BoothId(2))).await.expect_err("ended in the bin");
    assert_eq!(err.kind(), ErrorKind::WrongPosition);
    assert!(err.to_string().contains("sent to booth 2 but last seen at reject bin"), "{err}");
    assert!(hw.workstation().deliveries().is_empty());
    assert_eq!(hw.workstation().reject_bin().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_short_tasks_never_overwrite_a_running_belt_run() {
    // Half speed of real: the belt run to the scan station takes 2 s of wall time.
    let (hw, d) = start_at(2.0, tcp(), tcp()).await;
    for device in [&d.store_device, &d.conveyor_device] {
        device.wait_heartbeat(Duration::from_secs(5)).await.expect("heartbeat");
    }
    d.store.home().await.expect("home");
    d.conveyor.home().await.expect("home");
    d.store.pick_to_hatch(NEAR, TrackingId(21)).await.expect("pick");
    d.store.release_to_belt(TrackingId(21)).await.expect("release");
    let belt = d.conveyor.clone();
    let run = tokio::spawn(async move { belt.convey(TrackingId(21), Station::Scan).await });
    let display = BoothDisplay { patient_name: "P".into(), product_name: "HepB".into(), lot: "L".into(), expiry: "2027-01-31".into() };
    for i in 0..2 * map::ir::JOB_SLOT_COUNT {
        let booth = BoothId((i % 6) as u8 + 1);
        d.conveyor.show(booth, &display).await.expect("display task");
        d.conveyor.clear(booth).await.expect("clear task");
    }
    run.await.expect("join").expect("the belt run finished, never overwritten");
    assert!(hw.workstation().booth_display(BoothId(1)).is_none());
}

/// H-09: the fault endpoint and Modbus TCP take anyone's commands, so the simulator
/// listens only on loopback unless told otherwise, and says why.
#[tokio::test]
async fn the_simulator_refuses_to_listen_beyond_loopback_unless_allowed() {
    let units = hal::manifest::parse("[[batch]]\ngtin = \"06901234000016\"\nlot = \"L\"\nexpiry = \"2030-12-31\"\nserial_prefix = \"S\"\ncount = 1\nfirst_slot = \"R0-0-0\"\n").expect("stock");
    let open = HardwarePlan { store: Exposure::Rtu { baud: 115_200 }, conveyor: Exposure::Tcp { bind: "0.0.0.0:0".parse().expect("address") }, http: "127.0.0.1:0".parse().expect("address") };
    let refused = HardwareSim::start(SimWorkstation::new(SimConfig::default(), &units), &open).await.expect_err("refused");
    assert!(refused.to_string().contains("0.0.0.0:0") && refused.to_string().contains("allow_remote"), "{refused}");
    let http = HardwarePlan { conveyor: Exposure::Tcp { bind: "127.0.0.1:0".parse().expect("address") }, http: "0.0.0.0:0".parse().expect("address"), ..open };
    assert!(HardwareSim::start(SimWorkstation::new(SimConfig::default(), &units), &http).await.is_err(), "the fault endpoint too");
    let allowed = HardwareSim::start_reachable(SimWorkstation::new(SimConfig::default(), &units), &http, true).await;
    assert!(allowed.is_ok(), "explicitly allowed: {allowed:?}");
}
