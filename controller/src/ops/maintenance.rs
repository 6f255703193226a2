//! What a maintenance crew can ask of the workstation beyond maintenance mode
//! itself (which the dispatcher keeps): each field device's status, raw register
//! reads, the self-test, and the camera snapshot.

use crate::dispatch::{DispatchError, Dispatcher};
use hal::diagnostics::FieldDiagnostics;
use hal::modbus::map::{self, status};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use crate::journal::StepKind;
use crate::motion::Authority;

/// One field device as the crew sees it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeviceReport {
    pub name: String,
    pub transport: String,
    pub firmware: String,
    pub serial_number: String,
    pub map_version: u16,
    pub alive: bool,
    pub last_heartbeat: Option<chrono::DateTime<chrono::Utc>>,
    pub stats: hal::modbus::link::LinkStats,
    pub homed: bool,
    pub busy: bool,
    pub alarms: Vec<String>,
    /// Why the device could not be read, if it could not.
    pub error: Option<String>,
}

/// Reads each field device's identity, link health and status word.
pub async fn device_reports(dispatcher: &Dispatcher) -> Vec<DeviceReport> {
    let mut reports = Vec::new();
    for device in &dispatcher.devices().field {
        let health = *device.health().borrow();
        let since_change = health.changed_at.elapsed();
        let mut report = DeviceReport {
            name: device.name().to_owned(),
            transport: device.transport(),
            alive: !health.silent,
            last_heartbeat: health.last_heartbeat.map(|_| dispatcher.now() - chrono::Duration::from_std(since_change).unwrap_or_default()),
            stats: device.stats(),
            ..DeviceReport::default()
        };
        let read = async {
            let identity = device.identity().await?;
            let status = device.status().await?;
            Ok::<_, hal::DeviceError>((identity, status))
        };
        match read.await {
            Ok((identity, word)) => {
                report.firmware = identity.firmware;
                report.serial_number = identity.serial_number;
                report.map_version = identity.map_version;
                report.homed = word.has(status::HOMED);
                report.busy = word.has(status::BUSY);
                report.alarms = word.alarms.iter().map(|a| a.code.to_owned()).collect();
            }
            Err(e) => report.error = Some(crate::ops::faults::describe(&e)),
        }
        reports.push(report);
    }
    reports
}

/// The field device a crew names ("store" is the cold store).
pub fn field_device(dispatcher: &Dispatcher, name: &str) -> Result<Arc<dyn FieldDiagnostics>, DispatchError> {
    let wanted = if name.trim().eq_ignore_ascii_case("store") { "cold store" } else { name.trim() };
    let devices = &dispatcher.devices().field;
    devices.iter().find(|d| d.name().eq_ignore_ascii_case(wanted)).cloned().ok_or_else(|| {
        let known: Vec<&str> = devices.iter().map(|d| d.name()).collect();
        let known = if known.is_empty() { "none: no device of this workstation is on a field bus".to_owned() } else { known.join(", ") };
        DispatchError::InvalidArgument { field: "device", reason: format!("{name:?} is not a device here (known: {known})") }
    })
}

/// Reads `count` registers from `address`, input or holding.
pub async fn read_registers(dispatcher: &Dispatcher, device: &str, holding: bool, address: u16, count: u16) -> Result<Vec<u16>, DispatchError> {
    if count == 0 || count > 125 {
        return Err(DispatchError::InvalidArgument { field: "count", reason: format!("{count}: Modbus reads 1 to 125 registers at a time") });
    }
    if u32::from(address) + u32::from(count) > 65_536 {
        return Err(DispatchError::InvalidArgument { field: "address", reason: format!("{address} + {count} runs past register 65535") });
    }
    let device = field_device(dispatcher, device)?;
    let values = device.read_registers(holding, address, count).await?;
    Ok(values)
}

/// One self-test step's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepResult {
    pub step: u32,
    pub steps: u32,
    pub name: String,
    pub outcome: Outcome,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    Failed,
    Skipped,
}

/// The self-test's checks, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Check {
    Identity(usize),
    Heartbeat(usize),
    Alarms(usize),
    Interlocks,
    Probes,
    ProbesAgree,
    Camera,
    Home,
    JogPicker,
    JogBelt,
}

/// Runs the self-test in maintenance mode under `actor`'s lock, sending each step's
/// result as it completes. Motions (home, jogs) run only with every interlock closed.
pub async fn self_test(dispatcher: &Dispatcher, actor: &str, results: mpsc::Sender<StepResult>) -> Result<(), DispatchError> {
    dispatcher.require_lease(actor)?;
    dispatcher.journal().note(None, StepKind::Maintenance, "self-test", &format!("by {actor}"))?;
    let field = dispatcher.devices().field.clone();
    let mut checks: Vec<Check> = Vec::new();
    for i in 0..field.len() {
        checks.extend([Check::Identity(i), Check::Heartbeat(i), Check::Alarms(i)]);
    }
    checks.extend([Check::Interlocks, Check::Probes, Check::ProbesAgree, Check::Camera, Check::Home, Check::JogPicker, Check::JogBelt]);
    let steps = checks.len() as u32;
    let mut failed = 0;
    for (i, check) in checks.iter().enumerate() {
        let (name, outcome, detail) = run_check(dispatcher, actor, &field, check).await;
        if outcome == Outcome::Failed {
            failed += 1;
        }
        let result = StepResult { step: i as u32 + 1, steps, name, outcome, detail };
        if results.send(result).await.is_err() {
            break; // The crew hung up; stop moving things for nobody.
        }
    }
    dispatcher.journal().note(None, StepKind::Maintenance, "self-test done", &format!("{failed} of {steps} failed; by {actor}"))?;
    Ok(())
}

async fn run_check(dispatcher: &Dispatcher, actor: &str, field: &[Arc<dyn FieldDiagnostics>], check: &Check) -> (String, Outcome, String) {
    use Outcome::{Failed, Passed, Skipped};
    let verdict = |ok: bool, detail: String| (if ok { Passed } else { Failed }, detail);
    let devices = dispatcher.devices();
    let (name, (outcome, detail)) = match check {
        Check::Identity(i) => {
            let d = &field[*i];
            let found = match d.identity().await {
                Ok(id) if id.map_version == map::MAP_VERSION => verdict(true, format!("{:?} firmware {} serial {}", id.device_type, id.firmware, id.serial_number)),
                Ok(id) => verdict(false, format!("register map version {} (controller speaks {})", id.map_version, map::MAP_VERSION)),
                Err(e) => verdict(false, crate::ops::faults::describe(&e)),
            };
            (format!("{}: identity", d.name()), found)
        }
        Check::Heartbeat(i) => {
            let d = &field[*i];
            let h = *d.health().borrow();
            let age = h.changed_at.elapsed();
            (format!("{}: heartbeat", d.name()), verdict(!h.silent, format!("last change {} ms ago", age.as_millis())))
        }
        Check::Alarms(i) => {
            let d = &field[*i];
            let found = match d.status().await {
                Ok(s) if s.alarms.is_empty() => verdict(true, "no alarm latched".into()),
                Ok(s) => verdict(false, s.alarms.iter().map(|a| format!("{} {}", a.code, a.cause)).collect::<Vec<_>>().join("; ")),
                Err(e) => verdict(false, crate::ops::faults::describe(&e)),
            };
            (format!("{}: alarms", d.name()), found)
        }
        Check::Interlocks => {
            let found = match devices.interlocks.read().await {
                Ok(s) if s.all_closed() => verdict(true, "e-stop released, restock door closed, light curtains clear".into()),
                Ok(s) => verdict(false, format!("{} open", s.open_names().join(", "))),
                Err(e) => verdict(false, crate::ops::faults::describe(&e)),
            };
            ("interlocks closed".into(), found)
        }
        Check::Probes => {
            let mut lines = Vec::new();
            let mut ok = true;
            for probe in &devices.probes {
                match probe.read_celsius().await {
                    Ok(t) if (-40.0..=60.0).contains(&t) => lines.push(format!("{} {t:.1} °C", probe.name())),
                    Ok(t) => {
                        ok = false;
                        lines.push(format!("{} {t:.1} °C is not a plausible reading", probe.name()));
                    }
                    Err(e) => {
                        ok = false;
                        lines.push(format!("{}: {e}", probe.name()));
                    }
                }
            }
            ("temperature probes".into(), verdict(ok, lines.join(", ")))
        }
        Check::ProbesAgree => {
            let mut cabinet = Vec::new();
            for probe in devices.probes.iter().filter(|p| p.name().starts_with("cabinet")) {
                if let Ok(t) = probe.read_celsius().await {
                    cabinet.push(t);
                }
            }
            let spread = cabinet.iter().cloned().fold(f64::NEG_INFINITY, f64::max) - cabinet.iter().cloned().fold(f64::INFINITY, f64::min);
            let found = if cabinet.len() < 2 { (Skipped, "fewer than two cabinet probes answered".into()) } else { verdict(spread <= 1.0, format!("spread {spread:.2} °C (limit 1.0)")) };
            ("cabinet probes agree".into(), found)
        }
        Check::Camera => {
            let found = match tokio::time::timeout(Duration::from_secs(5), devices.camera.grab_frame()).await {
                Ok(Ok(f)) if f.width > 0 && f.height > 0 => {
                    let mean = f.pixels.iter().map(|&p| u64::from(p)).sum::<u64>() / f.pixels.len().max(1) as u64;
                    verdict((5..=250).contains(&mean), format!("{}x{} frame, mean grey {mean}", f.width, f.height))
                }
                Ok(Ok(f)) => verdict(false, format!("empty frame {f:?}")),
                Ok(Err(e)) => verdict(false, crate::ops::faults::describe(&e)),
                Err(_) => verdict(false, "no frame within 5 s".into()),
            };
            ("scan camera".into(), found)
        }
        Check::Home => ("home picker and belt".into(), moved(dispatcher.home(Authority::Crew(actor), &format!("self-test by {actor}")).await, "picker and belt at their references".into())),
        Check::JogPicker => ("picker jog x ±10 mm".into(), jog_there_and_back(dispatcher, actor, Some(hal::PickerAxis::X)).await),
        Check::JogBelt => ("belt jog ±10 mm".into(), jog_there_and_back(dispatcher, actor, None).await),
    };
    (name, outcome, detail)
}

/// A motion step's verdict: passed; skipped when the controller would not move
/// (an interlock open, a unit on the belt, the lease lapsed: H-05); failed when the
/// device failed.
fn moved(result: Result<(), DispatchError>, passed: String) -> (Outcome, String) {
    match result {
        Ok(()) => (Outcome::Passed, passed),
        Err(DispatchError::Device(e)) => (Outcome::Failed, crate::ops::faults::describe(&e)),
        Err(refused) => (Outcome::Skipped, format!("not moved: {refused}")),
    }
}

/// Jogs an axis 10 mm out and back; `None` is the belt.
async fn jog_there_and_back(dispatcher: &Dispatcher, actor: &str, axis: Option<hal::PickerAxis>) -> (Outcome, String) {
    let started = std::time::Instant::now();
    let result = async {
        for mm in [10, -10] {
            dispatcher.jog(actor, axis, mm).await?;
        }
        Ok(())
    };
    moved(result.await, format!("out and back in {} ms", started.elapsed().as_millis()))
}

/// A frame from the scan station, decoded, as a PNG with the label region marked.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub png: Vec<u8>,
    pub width: u32,
    pub height: u32,
    pub code: Option<String>,
    pub detail: String,
    pub region: Option<(usize, usize, usize, usize)>,
}

pub async fn snapshot(dispatcher: &Dispatcher) -> Result<Snapshot, DispatchError> {
    let frame = dispatcher.devices().camera.grab_frame().await?;
    let region = crate::scan::label_bounds(&frame);
    let (code, detail) = match crate::scan::decode_frame(&frame) {
        Ok(decoded) => (Some(decoded.code.canonical()), format!("{} read", decoded.symbology)),
        Err(e) => (None, e.to_string()),
    };
    let png = hal::camera::png_with_mark(&frame, region).map_err(DispatchError::Internal)?;
    Ok(Snapshot { png, width: frame.width, height: frame.height, code, detail, region })
}
