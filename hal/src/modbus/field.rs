//! [`FieldDevice`]: what both Modbus devices share on top of the link: identity,
//! status and alarms, the two-way heartbeat, and the task handshake of REGISTERS.md.

use super::link::ModbusLink;
use super::map::{self, DeviceType, JobResult, JobState, hr, ir, status};
use crate::error::{DeviceError, ErrorKind};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;
use tokio::sync::{Mutex, watch};
use tokio::time::Instant;

/// Who answers at the address: IR 0–11.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub device_type: DeviceType,
    pub map_version: u16,
    pub firmware: String,
    pub serial_number: String,
}

/// The status word and the active alarms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceStatus {
    pub word: u16,
    pub alarms: Vec<&'static map::Alarm>,
}

impl DeviceStatus {
    pub fn has(&self, bit: u16) -> bool {
        self.word & bit != 0
    }

    /// Whether the device came back from a power loss since its alarms were last
    /// reset: what it kept in memory (which carrier is where) cannot be trusted.
    pub fn power_restored(&self) -> bool {
        let restored = [&map::STORE_ALARMS[usize::from(map::store_alarm::POWER_RESTORED)], &map::CONVEYOR_ALARMS[usize::from(map::conveyor_alarm::POWER_RESTORED)]];
        self.alarms.iter().any(|a| restored.iter().any(|r| a.code == r.code))
    }
}

/// Link health as the heartbeat task sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Health {
    /// The device's heartbeat has not changed (or could not be read) for the timeout.
    pub silent: bool,
    pub last_heartbeat: Option<u16>,
    /// When the heartbeat was last seen to change.
    pub changed_at: Instant,
}

/// A job that reached `DONE`, with where the device says the unit ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobDone {
    pub actual: u16,
}

/// A task for the device: code, four parameters and (for displays) text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task<'a> {
    pub code: u16,
    pub params: [u16; 4],
    pub text: Option<&'a str>,
    /// Longest the job may run before the controller gives up on it.
    pub deadline: Duration,
}

/// How long the device may take to take over a written task block (one scan cycle
/// is ≤ 10 ms; this leaves room for a slow bus).
const HANDSHAKE_DEADLINE: Duration = Duration::from_secs(2);

#[derive(Debug)]
pub struct FieldDevice {
    link: Arc<ModbusLink>,
    kind: DeviceType,
    /// One task block on the wire at a time: the handshake has a single mailbox.
    mailbox: Mutex<()>,
    /// The controller heartbeat's value, shared by the heartbeat task and `hand_over`.
    beat: Arc<AtomicU16>,
    /// Job slots holding this driver's running jobs: new tasks get other slots.
    busy_slots: Arc<std::sync::Mutex<HashSet<u16>>>,
    health: watch::Receiver<Health>,
    heartbeat: tokio::task::JoinHandle<()>,
}

impl Drop for FieldDevice {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

impl FieldDevice {
    /// Starts the heartbeat task (needs a tokio runtime). Connecting is lazy: a device
    /// that is not there yet shows as silent, and works as soon as it answers.
    pub fn start(link: ModbusLink, kind: DeviceType) -> Self {
        let link = Arc::new(link);
        let (tx, health) = watch::channel(Health { silent: false, last_heartbeat: None, changed_at: Instant::now() });
        let beat = Arc::new(AtomicU16::new(0));
        let heartbeat = tokio::spawn(heartbeat_loop(link.clone(), beat.clone(), tx));
        Self { link, kind, mailbox: Mutex::new(()), beat, busy_slots: Arc::default(), health, heartbeat }
    }

    /// Stops sending the controller's heartbeat (the controller is going away):
    /// the device stops its motions once it misses it.
    pub fn stop_heartbeat(&self) {
        self.heartbeat.abort();
    }

    pub fn link(&self) -> &ModbusLink {
        &self.link
    }

    pub fn kind(&self) -> DeviceType {
        self.kind
    }

    pub fn health(&self) -> watch::Receiver<Health> {
        self.health.clone()
    }

    /// Waits until the heartbeat has been exchanged once: the device refuses motion
    /// until it has seen the controller's heartbeat.
    pub async fn wait_heartbeat(&self, timeout: Duration) -> Result<(), DeviceError> {
        let mut health = self.health.clone();
        match tokio::time::timeout(timeout, health.wait_for(|h| h.last_heartbeat.is_some())).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(self.error(ErrorKind::NoResponse, format!("no heartbeat exchanged with {} within {timeout:?}", self.link.transport()))),
        }
    }

    fn error(&self, kind: ErrorKind, detail: impl Into<String>) -> DeviceError {
        self.link.error(kind, detail)
    }

    /// Reads IR 0–11 and checks that the right kind of device, with a map this
    /// driver understands, answers.
    pub async fn identity(&self) -> Result<Identity, DeviceError> {
        let r = self.link.read_input(ir::DEVICE_TYPE, ir::SERIAL_NUMBER + ir::SERIAL_NUMBER_LEN).await?;
        let device_type = DeviceType::from_register(r[0])
            .ok_or_else(|| self.error(ErrorKind::Exception, format!("unknown device type {} at {}", r[0], self.link.transport())))?;
        if device_type != self.kind {
            return Err(self.error(ErrorKind::Exception, format!("expected a {:?} at {}, found a {device_type:?}", self.kind, self.link.transport())));
        }
        if r[1] != map::MAP_VERSION {
            return Err(self.error(ErrorKind::Exception, format!("register map version {} (this driver speaks {})", r[1], map::MAP_VERSION)));
        }
        let serial = &r[usize::from(ir::SERIAL_NUMBER)..usize::from(ir::SERIAL_NUMBER + ir::SERIAL_NUMBER_LEN)];
        Ok(Identity {
            device_type,
            map_version: r[1],
            firmware: format!("{}.{}.{}", r[2] >> 8, r[2] & 0xff, r[3]),
            serial_number: map::registers_to_text(serial),
        })
    }

    pub async fn status(&self) -> Result<DeviceStatus, DeviceError> {
        let r = self.link.read_input(ir::STATUS, 3).await?;
        Ok(DeviceStatus { word: r[0], alarms: map::active_alarms(self.kind, map::registers_to_u32(r[2], r[1])) })
    }

    pub async fn reset_alarms(&self) -> Result<(), DeviceError> {
        self.link.write(hr::ALARM_RESET, &[1]).await
    }

    /// Runs a task through the handshake and waits for its job to end. A device that
    /// refused the task because it has not seen the controller's heartbeat since it
    /// came back (a restart, a power cut) is beaten and handed the task again: the
    /// refused motion never started.
    pub async fn run(&self, task: Task<'_>) -> Result<JobDone, DeviceError> {
        let started = Instant::now();
        loop {
            match self.hand_over(&task).await {
                Ok((seq, _slot)) => return self.wait_job(seq, task.deadline).await,
                Err(e) if e.kind() == ErrorKind::HeartbeatLost && started.elapsed() <= HANDSHAKE_DEADLINE => {
                    write_beat(&self.link, &self.beat).await?;
                    tokio::time::sleep(self.link.timing().poll()).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Writes the task block while `TASK_RECEIVED` is clear and waits until the device
    /// has taken it over; returns its sequence number and the claim on its job slot.
    async fn hand_over(&self, task: &Task<'_>) -> Result<(u16, SlotClaim), DeviceError> {
        let _mailbox = self.mailbox.lock().await;
        let poll = self.link.timing().poll();
        let started = Instant::now();
        let echo = loop {
            let r = match self.link.read_input(ir::STATUS, 4).await {
                Ok(r) => r,
                // Nothing is handed over yet: a read the line garbled is asked again
                // within the handshake's deadline, as the echo reads below are.
                Err(e) if transient(&e) && started.elapsed() <= HANDSHAKE_DEADLINE => {
                    tokio::time::sleep(poll).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let heartbeat_lost = r[0] & status::CONTROLLER_HEARTBEAT_LOST != 0;
            if !heartbeat_lost && r[0] & status::TASK_RECEIVED == 0 {
                break r[3];
            }
            if started.elapsed() > HANDSHAKE_DEADLINE {
                let why = if heartbeat_lost { "the device still misses the controller heartbeat" } else { "the device has not taken over the previous task" };
                return Err(self.error(ErrorKind::Busy, why));
            }
            if heartbeat_lost {
                // The link came back before the next heartbeat tick: beat now, so the
                // device takes motion again, and look at the status once more.
                write_beat(&self.link, &self.beat).await?;
                continue;
            }
            tokio::time::sleep(poll).await;
        };
        // The device ignores a block whose seq equals the last one it accepted, which
        // makes a retried write harmless; the next number is therefore never that one,
        // nor 0, nor one whose slot holds a job of ours still running.
        let claim = {
            let mut busy = self.busy_slots.lock().unwrap_or_else(|p| p.into_inner());
            let seq = (1..=ir::JOB_SLOT_COUNT)
                .map(|k| echo.wrapping_add(k))
                .find(|&seq| seq != 0 && !busy.contains(&(seq % ir::JOB_SLOT_COUNT)))
                .ok_or_else(|| self.error(ErrorKind::Busy, "every job slot holds a running job"))?;
            busy.insert(seq % ir::JOB_SLOT_COUNT);
            SlotClaim { seq, busy: self.busy_slots.clone() }
        };
        let seq = claim.seq;
        if let Some(text) = task.text {
            let room = usize::from(hr::TEXT_LEN) * 2;
            if text.len() > room {
                // A guardian validates what the display shows: never a cut-off line.
                return Err(self.error(ErrorKind::Exception, format!("display text is {} bytes; the display holds {room}", text.len())));
            }
            let registers = map::text_to_registers(text, usize::from(hr::TEXT_LEN));
            for (i, chunk) in registers.chunks(60).enumerate() {
                self.link.write(hr::TEXT + 60 * i as u16, chunk).await?;
            }
        }
        let [p0, p1, p2, p3] = task.params;
        // A write whose answer was lost may still have reached the device: the
        // status echo below tells (and the same seq again is ignored by the device).
        if let Err(e) = self.link.write(hr::TASK_BLOCK, &[seq, task.code, p0, p1, p2, p3]).await {
            if !transient(&e) {
                return Err(e);
            }
            tracing::warn!(device = self.link.device(), "task {seq} write unconfirmed, looking at the echo: {e}");
        }
        loop {
            let r = match self.link.read_input(ir::STATUS, 5).await {
                Ok(r) => r,
                Err(e) if transient(&e) && started.elapsed() <= HANDSHAKE_DEADLINE => {
                    tokio::time::sleep(poll).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let (word, echo, refusal) = (r[0], r[3], r[4]);
            if echo == seq && word & status::TASK_RECEIVED == 0 {
                if let Some(kind) = JobResult::from_register(refusal).and_then(JobResult::error_kind) {
                    return Err(self.error(kind, format!("task {} refused: {}", task.code, describe(refusal))));
                }
                return Ok((seq, claim));
            }
            if started.elapsed() > HANDSHAKE_DEADLINE {
                return Err(self.error(ErrorKind::Timeout, format!("task {seq} not taken over (echo {echo})")));
            }
            tokio::time::sleep(poll).await;
        }
    }

    async fn wait_job(&self, seq: u16, deadline: Duration) -> Result<JobDone, DeviceError> {
        let slot = ir::JOB_SLOTS + (seq % ir::JOB_SLOT_COUNT) * ir::JOB_SLOT_LEN;
        let started = Instant::now();
        loop {
            tokio::time::sleep(self.link.timing().poll()).await;
            // The job runs on the device whatever the line does: a poll that got no
            // answer is asked again, until the job's deadline.
            let r = match self.link.read_input(slot, ir::JOB_SLOT_LEN).await {
                Ok(r) => r,
                Err(e) if transient(&e) && started.elapsed() <= deadline => {
                    tracing::debug!(device = self.link.device(), "job {seq} poll: {e}");
                    continue;
                }
                Err(e) => return Err(e),
            };
            let (job_seq, state, result, actual) = (r[0], JobState::from_register(r[1]), r[2], r[3]);
            if job_seq != seq {
                return Err(self.error(ErrorKind::NoResponse, format!("job {seq} lost: the slot now holds job {job_seq} (device restarted?)")));
            }
            match state {
                Some(JobState::Done) => return Ok(JobDone { actual }),
                Some(JobState::Failed) => {
                    let kind = JobResult::from_register(result).and_then(JobResult::error_kind).unwrap_or(ErrorKind::Exception);
                    return Err(self.error(kind, format!("job {seq} failed: {}", describe(result))));
                }
                Some(JobState::Running | JobState::Idle) => {}
                None => return Err(self.error(ErrorKind::Exception, format!("job {seq}: invalid state {}", r[1]))),
            }
            if started.elapsed() > deadline {
                return Err(self.error(ErrorKind::Timeout, format!("job {seq} still running after {deadline:?}")));
            }
        }
    }
}

/// A job slot this driver uses, freed when the job has ended (or was given up).
#[derive(Debug)]
struct SlotClaim {
    seq: u16,
    busy: Arc<std::sync::Mutex<HashSet<u16>>>,
}

impl Drop for SlotClaim {
    fn drop(&mut self) {
        self.busy.lock().unwrap_or_else(|p| p.into_inner()).remove(&(self.seq % ir::JOB_SLOT_COUNT));
    }
}

/// A failure of the line rather than an answer of the device: worth asking again.
fn transient(e: &DeviceError) -> bool {
    matches!(e.kind(), ErrorKind::Timeout | ErrorKind::NoResponse | ErrorKind::Crc)
}

fn describe(result: u16) -> String {
    match JobResult::from_register(result) {
        Some(r) => format!("{r:?}"),
        None => format!("result code {result}"),
    }
}

/// Writes the next value of the controller's heartbeat.
async fn write_beat(link: &ModbusLink, beat: &AtomicU16) -> Result<(), DeviceError> {
    let value = beat.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
    link.write(hr::CONTROLLER_HEARTBEAT, &[value]).await
}

/// Writes the controller's heartbeat and watches the device's, both every period.
async fn heartbeat_loop(link: Arc<ModbusLink>, beat: Arc<AtomicU16>, health: watch::Sender<Health>) {
    let timing = *link.timing();
    let mut ticker = tokio::time::interval(timing.heartbeat_period());
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let written = write_beat(&link, &beat).await;
        let read = match written {
            Ok(()) => link.read_input(ir::DEVICE_HEARTBEAT, 1).await.map(|r| r[0]).ok(),
            Err(_) => None,
        };
        let now = Instant::now();
        health.send_if_modified(|h| {
            let changed = read.is_some() && read != h.last_heartbeat;
            if changed {
                // Watchers hear of the first heartbeat and of a return from silence,
                // not of every tick.
                let first = h.last_heartbeat.is_none();
                let was_silent = h.silent;
                if was_silent {
                    tracing::info!(device = link.device(), "device heartbeat back after {:?}", now - h.changed_at);
                }
                h.last_heartbeat = read;
                h.changed_at = now;
                h.silent = false;
                return first || was_silent;
            }
            if !h.silent && now - h.changed_at >= timing.heartbeat_timeout() {
                h.silent = true;
                tracing::warn!(device = link.device(), transport = %link.transport(), "device silent: heartbeat unchanged for {:?}", now - h.changed_at);
                return true;
            }
            false
        });
    }
}
