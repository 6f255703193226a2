//! A field device's controller logic as the simulator runs it: the register image of
//! REGISTERS.md, the task handshake, job slots running the physical models, the
//! two-way heartbeat, alarms, power cuts and silence.

use super::models::FieldModel;
use hal::modbus::map::{self, JobResult, JobState, hr, ir, status};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::task::AbortHandle;
use tokio::time::Instant;

/// How long `TASK_RECEIVED` stays set after a task block is written (one scan cycle).
const SCAN_CYCLE: Duration = Duration::from_millis(5);
/// No change of the controller's heartbeat for this long stops all motion.
const CONTROLLER_HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(1);
const DEVICE_HEARTBEAT_PERIOD: Duration = Duration::from_millis(100);

#[derive(Debug, Default)]
struct JobSlot {
    seq: u16,
    code: u16,
    state: u16,
    result: u16,
    actual: u16,
    motion: bool,
    abort: Option<AbortHandle>,
}

#[derive(Debug)]
struct CoreState {
    powered_at: Instant,
    holding: Vec<u16>,
    last_seq: u16,
    received_at: Option<Instant>,
    refusal: u16,
    jobs: [JobSlot; ir::JOB_SLOT_COUNT as usize],
    alarms: u32,
    homed: bool,
    controller_heartbeat: Option<(u16, Instant)>,
    heartbeat_lost: bool,
    heartbeats: HeartbeatRecord,
    /// No answers until then: power off, or a device gone silent.
    off_until: Option<Instant>,
    silent_until: Option<Instant>,
}

impl CoreState {
    fn new() -> Self {
        Self {
            powered_at: Instant::now(),
            holding: vec![0; usize::from(hr::END)],
            last_seq: 0,
            received_at: None,
            refusal: 0,
            jobs: Default::default(),
            alarms: 0,
            homed: false,
            controller_heartbeat: None,
            heartbeat_lost: false,
            heartbeats: HeartbeatRecord::default(),
            off_until: None,
            silent_until: None,
        }
    }
}

/// How the controller's heartbeat reached a device: the gaps between its changes
/// and how often the device gave it up for lost (for benches: a starved controller
/// runtime shows here first).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HeartbeatRecord {
    /// Changes seen.
    pub changes: u64,
    /// The gaps between two changes by whole milliseconds: `gaps_by_ms[i]` counts
    /// gaps of `i` ms, the last bucket those of [`HeartbeatRecord::LONGEST_MS`] or
    /// more. A histogram, so a device served for days keeps a fixed size.
    pub gaps_by_ms: Vec<u64>,
    /// Times the device stopped motion for a missing heartbeat.
    pub lost: u32,
}

impl HeartbeatRecord {
    /// The last bucket of [`Self::gaps_by_ms`] (10 s, ten times the timeout).
    pub const LONGEST_MS: usize = 10_000;

    fn count_gap(&mut self, gap: Duration) {
        if self.gaps_by_ms.is_empty() {
            self.gaps_by_ms = vec![0; Self::LONGEST_MS + 1];
        }
        self.gaps_by_ms[(gap.as_millis() as usize).min(Self::LONGEST_MS)] += 1;
    }

    /// The gaps counted since `before` (an earlier copy of this record), by millisecond.
    pub fn gaps_since(&self, before: &Self) -> Vec<u64> {
        self.gaps_by_ms.iter().enumerate().map(|(i, n)| n - before.gaps_by_ms.get(i).copied().unwrap_or(0)).collect()
    }
}

/// A request addressed registers the map does not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutsideMap;

/// One simulated field device (cold store controller or conveyor PLC).
#[derive(Debug)]
pub struct DeviceCore {
    model: Arc<dyn FieldModel>,
    unit: u8,
    state: Mutex<CoreState>,
}

impl DeviceCore {
    pub(crate) fn new(model: Arc<dyn FieldModel>, unit: u8) -> Arc<Self> {
        let core = Arc::new(Self { model, unit, state: Mutex::new(CoreState::new()) });
        tokio::spawn(watchdog(Arc::downgrade(&core)));
        core
    }

    pub fn unit(&self) -> u8 {
        self.unit
    }

    fn state(&self) -> MutexGuard<'_, CoreState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The controller's heartbeat as this device saw it, from power-on.
    pub fn heartbeats(&self) -> HeartbeatRecord {
        self.state().heartbeats.clone()
    }

    /// Whether the device answers requests now.
    pub fn answering(&self) -> bool {
        let now = Instant::now();
        let s = self.state();
        s.off_until.is_none_or(|t| now >= t) && s.silent_until.is_none_or(|t| now >= t)
    }

    /// The device stops answering for a while (a hung firmware, a bus fault).
    pub fn go_silent(&self, duration: Duration) {
        self.state().silent_until = Some(Instant::now() + duration);
    }

    /// Power cut: every job stops where it is, and after `duration` the device
    /// restarts with its registers cleared, unhomed, with the power-restored alarm.
    pub fn power_cut(&self, duration: Duration) {
        let mut s = self.state();
        for job in &mut s.jobs {
            if let Some(abort) = job.abort.take() {
                abort.abort();
            }
        }
        let mut fresh = CoreState::new();
        fresh.powered_at = Instant::now() + duration;
        fresh.off_until = Some(fresh.powered_at);
        fresh.alarms = 1 << self.model.power_restored_alarm();
        *s = fresh;
    }

    /// The whole input register image, as a read would see it now.
    pub fn input_registers(&self) -> Vec<u16> {
        let mut regs = vec![0u16; usize::from(ir::END)];
        self.model.fill_inputs(&mut regs);
        let conditions = self.model.alarm_conditions(&regs);
        let interlock_open = self.model.interlock_open();
        let mut s = self.state();
        s.alarms |= conditions;
        let now = Instant::now();
        let (major, minor, patch) = self.model.firmware();
        regs[usize::from(ir::DEVICE_TYPE)] = self.model.kind() as u16;
        regs[usize::from(ir::MAP_VERSION)] = map::MAP_VERSION;
        regs[usize::from(ir::FIRMWARE_MAJOR_MINOR)] = (u16::from(major) << 8) | u16::from(minor);
        regs[usize::from(ir::FIRMWARE_PATCH)] = patch;
        let serial = map::text_to_registers(self.model.serial_number(), usize::from(ir::SERIAL_NUMBER_LEN));
        regs[usize::from(ir::SERIAL_NUMBER)..usize::from(ir::SERIAL_NUMBER + ir::SERIAL_NUMBER_LEN)].copy_from_slice(&serial);
        regs[usize::from(ir::DEVICE_HEARTBEAT)] = (now.saturating_duration_since(s.powered_at).as_millis() / DEVICE_HEARTBEAT_PERIOD.as_millis()) as u16;
        let received = s.received_at.is_some_and(|t| now - t < SCAN_CYCLE);
        let busy = s.jobs.iter().any(|j| j.state == JobState::Running as u16);
        let mut word = 0;
        for (on, bit) in [
            (s.homed && !s.heartbeat_lost && s.alarms & self.model.stopping_alarms() == 0, status::READY),
            (busy, status::BUSY),
            (received, status::TASK_RECEIVED),
            (s.homed, status::HOMED),
            (s.alarms != 0, status::ALARM),
            (s.heartbeat_lost, status::CONTROLLER_HEARTBEAT_LOST),
            (interlock_open, status::INTERLOCK_OPEN),
        ] {
            if on {
                word |= bit;
            }
        }
        regs[usize::from(ir::STATUS)] = word;
        let [hi, lo] = map::u32_to_registers(s.alarms);
        regs[usize::from(ir::ALARMS)] = lo;
        regs[usize::from(ir::ALARMS + 1)] = hi;
        regs[usize::from(ir::TASK_SEQ_ECHO)] = s.last_seq;
        regs[usize::from(ir::TASK_REFUSAL)] = s.refusal;
        for (i, job) in s.jobs.iter().enumerate() {
            let at = usize::from(ir::JOB_SLOTS) + i * usize::from(ir::JOB_SLOT_LEN);
            regs[at..at + 4].copy_from_slice(&[job.seq, job.state, job.result, job.actual]);
        }
        drop(s);
        regs
    }

    pub fn holding_registers(&self) -> Vec<u16> {
        self.state().holding.clone()
    }

    /// Applies a write of holding registers and reacts to what it touched; a write
    /// reaching past the map is refused whole.
    pub fn write_holding(self: &Arc<Self>, address: u16, values: &[u16]) -> Result<(), OutsideMap> {
        let end = usize::from(address) + values.len();
        if end > usize::from(hr::END) {
            return Err(OutsideMap);
        }
        let touches = |reg: u16| (usize::from(address)..end).contains(&usize::from(reg));
        let mut s = self.state();
        s.holding[usize::from(address)..end].copy_from_slice(values);
        if touches(hr::CONTROLLER_HEARTBEAT) {
            let value = s.holding[usize::from(hr::CONTROLLER_HEARTBEAT)];
            if s.controller_heartbeat.is_none_or(|(v, _)| v != value) {
                let now = Instant::now();
                if let Some((_, before)) = s.controller_heartbeat {
                    s.heartbeats.count_gap(now - before);
                }
                s.heartbeats.changes += 1;
                s.controller_heartbeat = Some((value, now));
                s.heartbeat_lost = false;
            }
        }
        if touches(hr::ALARM_RESET) && s.holding[usize::from(hr::ALARM_RESET)] == 1 {
            s.holding[usize::from(hr::ALARM_RESET)] = 0;
            // Alarms whose cause is still there come straight back on the next read.
            s.alarms = 0;
        }
        if touches(hr::TASK_BLOCK) {
            self.take_task(&mut s);
        }
        Ok(())
    }

    /// The handshake's device half: a new sequence number starts a job in its slot,
    /// or records the refusal; the same number again is a retried write and ignored.
    fn take_task(self: &Arc<Self>, s: &mut CoreState) {
        let block = &s.holding[usize::from(hr::TASK_BLOCK)..usize::from(hr::TASK_BLOCK + hr::TASK_BLOCK_LEN)];
        let (seq, code, params) = (block[0], block[1], [block[2], block[3], block[4], block[5]]);
        if seq == 0 || seq == s.last_seq {
            return;
        }
        let text = map::registers_to_text(&s.holding[usize::from(hr::TEXT)..usize::from(hr::END)]);
        s.last_seq = seq;
        s.received_at = Some(Instant::now());
        let slot_index = usize::from(seq % ir::JOB_SLOT_COUNT);
        if s.jobs[slot_index].state == JobState::Running as u16 {
            // Never overwrite a running job (a unit on the move): refuse the task.
            s.refusal = JobResult::Busy as u16;
            return;
        }
        let refusal = self.refusal(s, code);
        let started = match refusal {
            Some(r) => Err(r),
            None => self.model.start(code, params, text),
        };
        let slot = &mut s.jobs[slot_index];
        *slot = JobSlot { seq, code, ..JobSlot::default() };
        match started {
            Err(result) => {
                s.refusal = result as u16;
                let slot = &mut s.jobs[slot_index];
                slot.state = JobState::Failed as u16;
                slot.result = result as u16;
                if let Some(bit) = self.model.alarm_for(result) {
                    s.alarms |= 1 << bit;
                }
            }
            Ok(job) => {
                s.refusal = 0;
                let slot = &mut s.jobs[slot_index];
                slot.state = JobState::Running as u16;
                slot.motion = job.motion;
                let core = Arc::downgrade(self);
                let handle = tokio::spawn(async move {
                    let outcome = job.run.await;
                    if let Some(core) = core.upgrade() {
                        core.finish(seq, outcome);
                    }
                });
                s.jobs[slot_index].abort = Some(handle.abort_handle());
            }
        }
    }

    fn refusal(&self, s: &CoreState, code: u16) -> Option<JobResult> {
        let motion = self.model.is_motion(code)?;
        if !motion {
            return None;
        }
        if s.heartbeat_lost || s.controller_heartbeat.is_none() {
            return Some(JobResult::HeartbeatLost);
        }
        if self.model.interlock_open() {
            self.model.refused_for_interlock();
            return Some(JobResult::Interlock);
        }
        if !s.homed && !self.model.is_home(code) {
            return Some(JobResult::NotHomed);
        }
        None
    }

    fn finish(&self, seq: u16, outcome: Result<u16, (JobResult, u16)>) {
        let mut s = self.state();
        let index = usize::from(seq % ir::JOB_SLOT_COUNT);
        if s.jobs[index].seq != seq || s.jobs[index].state != JobState::Running as u16 {
            return;
        }
        let home = outcome.is_ok() && self.model.is_home(s.jobs[index].code);
        let slot = &mut s.jobs[index];
        slot.abort = None;
        match outcome {
            Ok(actual) => {
                slot.state = JobState::Done as u16;
                slot.actual = actual;
            }
            Err((result, actual)) => {
                slot.state = JobState::Failed as u16;
                slot.result = result as u16;
                slot.actual = actual;
                if let Some(bit) = self.model.alarm_for(result) {
                    s.alarms |= 1 << bit;
                }
            }
        }
        if home {
            s.homed = true;
        }
    }

    /// Stops every running motion job with `result` (safety stop).
    fn stop_motion(&self, s: &mut CoreState, result: JobResult) {
        let mut stopped = false;
        for job in s.jobs.iter_mut().filter(|j| j.motion && j.state == JobState::Running as u16) {
            if let Some(abort) = job.abort.take() {
                abort.abort();
            }
            job.state = JobState::Failed as u16;
            job.result = result as u16;
            stopped = true;
        }
        if stopped && let Some(bit) = self.model.alarm_for(result) {
            s.alarms |= 1 << bit;
        }
    }
}

/// Every 50 ms: stop motion when the controller's heartbeat has stopped or an
/// interlock has opened (the real safety chain cuts the drives at once).
async fn watchdog(core: std::sync::Weak<DeviceCore>) {
    let mut ticker = tokio::time::interval(Duration::from_millis(50));
    loop {
        ticker.tick().await;
        let Some(core) = core.upgrade() else { return };
        let interlock_open = core.model.interlock_open();
        let mut s = core.state();
        if s.off_until.is_some_and(|t| Instant::now() < t) {
            continue;
        }
        if let Some((_, changed)) = s.controller_heartbeat
            && !s.heartbeat_lost
            && changed.elapsed() > CONTROLLER_HEARTBEAT_TIMEOUT
        {
            s.heartbeat_lost = true;
            s.heartbeats.lost += 1;
            s.alarms |= 1 << core.model.heartbeat_alarm();
            core.stop_motion(&mut s, JobResult::HeartbeatLost);
        }
        if interlock_open {
            core.stop_motion(&mut s, JobResult::Interlock);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_gaps_are_counted_by_millisecond_and_differenced() {
        let mut record = HeartbeatRecord::default();
        record.count_gap(Duration::from_micros(100_400));
        let before = record.clone();
        for gap in [100, 100, 107, 60_000] {
            record.count_gap(Duration::from_millis(gap));
        }
        let since = record.gaps_since(&before);
        assert_eq!(since.len(), HeartbeatRecord::LONGEST_MS + 1, "a fixed size whatever the run's length");
        assert_eq!((since[100], since[107], since[HeartbeatRecord::LONGEST_MS]), (2, 1, 1), "the minute-long gap in the last bucket");
        assert_eq!(since.iter().sum::<u64>(), 4, "the gap before the copy is not counted again");
    }
}
