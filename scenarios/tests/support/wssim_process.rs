//! Starts `wssim hardware` as a separate process for tests and benchmarks, and
//! reads back from its output where its control endpoint is.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A running `wssim hardware`; killed when dropped, however the caller ends.
pub struct WssimProcess {
    child: Child,
    /// `host:port` of the HTTP control endpoint.
    pub control: String,
    /// The devices file it wrote.
    pub devices_file: PathBuf,
}

impl WssimProcess {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for WssimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `[hardware]` section: store on a pty, conveyor and HTTP on free loopback ports.
pub const HARDWARE: &str = "[hardware]\nstore = { transport = \"rtu\" }\nconveyor = { transport = \"tcp\", bind = \"127.0.0.1:0\" }\nhttp = \"127.0.0.1:0\"\n";

/// Writes a wssim config into `dir` (the repository's stock, this speed and hardware section).
pub fn write_config(dir: &Path, speed: f64, hardware: &str) -> PathBuf {
    let stock = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/stock.toml");
    let text = format!("stock = {:?}\ndevices_out = \"devices.toml\"\n[simulator]\nspeed = {speed:?}\n{hardware}", stock.display().to_string());
    let path = dir.join("wssim.toml");
    std::fs::write(&path, text).expect("write wssim config");
    path
}

/// Starts wssim with a config written into `dir` and waits until it has written its
/// devices file.
pub fn start(dir: &Path, speed: f64) -> WssimProcess {
    let config = write_config(dir, speed, HARDWARE);
    let mut child = Command::new(env!("CARGO_BIN_EXE_wssim"))
        .args(["hardware", "--config"])
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("wssim starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut control = None;
    for line in BufReader::new(stdout).lines().take(10) {
        let line = line.expect("wssim output");
        if let Some(url) = line.split_whitespace().find(|w| w.starts_with("http://") && w.ends_with("/fault")) {
            control = Some(url.trim_start_matches("http://").trim_end_matches("/fault").to_owned());
        }
        if line.contains("devices file") {
            break;
        }
    }
    let control = control.expect("wssim printed its control endpoint");
    WssimProcess { child, control, devices_file: dir.join("devices.toml") }
}
