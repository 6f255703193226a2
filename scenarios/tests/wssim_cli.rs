//! `wssim hardware` as a separate process: it serves the devices, writes a devices
//! file the drivers open unchanged, takes faults on its control endpoint, and
//! refuses a broken config or fault script with a reason.

use hal::modbus::drivers::{WireConfig, WireDevices};
use hal::{ColdStore, Interlocks, SlotAddress};
use std::io::{Read, Write};
use std::process::Command;
use std::time::Duration;

mod support;
use support::wssim_process::{self, HARDWARE, write_config};

/// One HTTP request to the control endpoint; returns the status line and body.
fn http(address: &str, method: &str, path: &str, body: &str) -> (String, String) {
    let mut stream = std::net::TcpStream::connect(address).expect("connect to control endpoint");
    write!(stream, "{method} {path} HTTP/1.0\r\nContent-Length: {}\r\n\r\n{body}", body.len()).expect("send");
    let mut reply = String::new();
    stream.read_to_string(&mut reply).expect("reply");
    let (head, body) = reply.split_once("\r\n\r\n").expect("http reply");
    (head.lines().next().unwrap_or_default().to_owned(), body.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wssim_hardware_serves_devices_a_controller_can_drive_and_takes_faults() {
    let dir = tempfile::tempdir().expect("tempdir");
    let running = wssim_process::start(dir.path(), 20.0);
    let control = running.control.clone();

    let wire = WireConfig::from_toml(&std::fs::read_to_string(&running.devices_file).expect("devices file written")).expect("devices file parses");
    assert_eq!(wire.booths, 6);
    let devices = WireDevices::open(&wire);
    let identity = devices.store_device.identity().await.expect("store answers on its pty");
    assert_eq!(identity.serial_number, "SIM-CS-0001");
    assert!(devices.store.slot_occupied(SlotAddress::new(0, 0, 0)).await.expect("occupancy"));

    let (status, body) = http(&control, "POST", "/fault", "door open");
    assert!(status.contains("200"), "{status} {body}");
    assert!(devices.interlocks.read().await.expect("interlocks").restock_door_open);
    let (status, body) = http(&control, "POST", "/fault", "door ajar");
    assert!(status.contains("400") && body.contains("expected open or close"), "{status} {body}");
    let (_, state) = http(&control, "GET", "/state", "");
    assert!(state.contains("restock_door_open true"), "{state}");
    tokio::time::sleep(Duration::from_millis(10)).await;
    drop(running);
}

#[test]
fn a_broken_config_or_script_is_refused_with_a_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_wssim")).args(args).output().expect("wssim runs");
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let bad = write_config(dir.path(), 20.0, &HARDWARE.replace("store = { transport = \"rtu\" }", "store = { transport = \"can\" }"));
    let (ok, err) = run(&["hardware", "--config", bad.to_str().expect("utf-8")]);
    assert!(!ok && err.contains("can"), "{err}");

    let good = write_config(dir.path(), 20.0, HARDWARE);
    let script = dir.path().join("faults.txt");
    std::fs::write(&script, "at 5 door open\nat soon estop on\n").expect("script");
    let (ok, err) = run(&["hardware", "--config", good.to_str().expect("utf-8"), "--faults", script.to_str().expect("utf-8")]);
    assert!(!ok && err.contains("line 2") && err.contains("soon"), "{err}");
}
