//! Fault injection: the faults an engineer can inject, their text form (one line,
//! used by fault scripts and the control endpoint), and scripts that fire them at a
//! machine time or on the n-th occurrence of an event.

use hal::{BoothId, SlotAddress};
use std::fmt;
use std::str::FromStr;

/// Which field device a line fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line {
    Store,
    Conveyor,
}

/// What the camera's view suffers from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CameraFault {
    #[default]
    Clear,
    Blur,
    Glare,
    Occlusion,
}

/// One fault, or the end of one.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// The next belt run stops short of its target: a jam.
    Jam,
    /// The next pick drops the unit inside the store.
    GripFailure,
    /// The booth diverters do not move: units meant for a booth ride on to the bin.
    DiverterStuck(bool),
    /// A booth's tray sensor reads occupied whatever is there (`None` frees it).
    TrayStuck(Option<BoothId>),
    Door(bool),
    Estop(bool),
    LightCurtain(bool),
    /// The compressor stops working (true) or is repaired (false; also ends a
    /// compressor stuck on).
    CompressorFailure(bool),
    /// The compressor runs without stopping (a failed thermostat): the cabinet
    /// cools towards −6 °C until `compressor ok`.
    CompressorStuckOn,
    /// Cabinet probes A and/or B give no reading (`probe ok`: both read again).
    ProbeFailure { a: bool, b: bool },
    /// Cabinet probe B reads this many degrees off.
    ProbeOffset(f64),
    /// Both devices lose power for this many wall seconds, then restart unhomed.
    PowerLoss(f64),
    /// Corrupts one byte of this fraction of the serial chunks on the line.
    Noise(Line, f64),
    /// The device stops answering for this many wall seconds.
    Silent(Line, f64),
    /// The device's cable is pulled for this many wall seconds.
    Unplug(Line, f64),
    Camera(CameraFault),
    /// The unit in a slot carries this printed label instead of its own.
    Mislabel(SlotAddress, String),
    /// Someone took the unit out of a slot by hand.
    Remove(SlotAddress),
    /// Someone put a unit with this label into an empty slot by hand.
    Place(SlotAddress, String),
}

/// A fault line that cannot be understood, with what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("fault `{line}`: {problem}")]
pub struct FaultParseError {
    pub line: String,
    pub problem: String,
}

pub const FAULT_HELP: &str = "jam | grip-failure | diverter stuck|ok | tray-stuck BOOTH|off | door open|close | estop on|off | curtain on|off | \
compressor fail|ok|stuck-on | probe fail a|b|both | probe ok | probe-offset DEGREES | power-loss SECONDS | noise store|conveyor RATE | \
silent store|conveyor SECONDS | unplug store|conveyor SECONDS | camera blur|glare|occlusion|clear | mislabel SLOT LABEL | remove SLOT | place SLOT LABEL";

impl FromStr for Fault {
    type Err = FaultParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let fail = |problem: String| FaultParseError { line: text.trim().to_owned(), problem };
        let words: Vec<&str> = text.split_whitespace().collect();
        let arg = |i: usize, what: &str| words.get(i).copied().ok_or_else(|| fail(format!("missing {what}")));
        let number = |i: usize, what: &str| -> Result<f64, FaultParseError> {
            let w = arg(i, what)?;
            w.parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0).ok_or_else(|| fail(format!("{what} must be a non-negative number, got `{w}`")))
        };
        let switch = |i: usize, on: &str, off: &str| -> Result<bool, FaultParseError> {
            match arg(i, &format!("{on}|{off}"))? {
                w if w == on => Ok(true),
                w if w == off => Ok(false),
                w => Err(fail(format!("expected {on} or {off}, got `{w}`"))),
            }
        };
        let line = |i: usize| -> Result<Line, FaultParseError> {
            match arg(i, "device (store|conveyor)")? {
                "store" => Ok(Line::Store),
                "conveyor" => Ok(Line::Conveyor),
                w => Err(fail(format!("unknown device `{w}` (store or conveyor)"))),
            }
        };
        let fault = match *words.first().ok_or_else(|| fail("empty fault".into()))? {
            "jam" => Fault::Jam,
            "grip-failure" => Fault::GripFailure,
            "tray-stuck" => match arg(1, "booth number or off")? {
                "off" => Fault::TrayStuck(None),
                w => Fault::TrayStuck(Some(BoothId(w.parse().map_err(|_| fail(format!("booth must be a number, got `{w}`")))?))),
            },
            "diverter" => Fault::DiverterStuck(switch(1, "stuck", "ok")?),
            "door" => Fault::Door(switch(1, "open", "close")?),
            "estop" => Fault::Estop(switch(1, "on", "off")?),
            "curtain" => Fault::LightCurtain(switch(1, "on", "off")?),
            "compressor" => match arg(1, "fail, ok or stuck-on")? {
                "stuck-on" => Fault::CompressorStuckOn,
                _ => Fault::CompressorFailure(switch(1, "fail", "ok")?),
            },
            "probe" => match (arg(1, "fail or ok")?, words.get(2).copied()) {
                ("ok", None) => Fault::ProbeFailure { a: false, b: false },
                ("fail", Some("a")) => Fault::ProbeFailure { a: true, b: false },
                ("fail", Some("b")) => Fault::ProbeFailure { a: false, b: true },
                ("fail", Some("both")) => Fault::ProbeFailure { a: true, b: true },
                _ => return Err(fail("expected `probe fail a|b|both` or `probe ok`".into())),
            },
            "probe-offset" => {
                let w = arg(1, "degrees")?;
                Fault::ProbeOffset(w.parse::<f64>().ok().filter(|v| v.is_finite()).ok_or_else(|| fail(format!("degrees must be a number, got `{w}`")))?)
            }
            "power-loss" => Fault::PowerLoss(number(1, "seconds")?),
            "noise" => {
                let rate = number(2, "rate")?;
                if rate > 1.0 {
                    return Err(fail(format!("rate is a fraction of frames, 0 to 1, got {rate}")));
                }
                Fault::Noise(line(1)?, rate)
            }
            "silent" => Fault::Silent(line(1)?, number(2, "seconds")?),
            "unplug" => Fault::Unplug(line(1)?, number(2, "seconds")?),
            "camera" => Fault::Camera(match arg(1, "blur|glare|occlusion|clear")? {
                "blur" => CameraFault::Blur,
                "glare" => CameraFault::Glare,
                "occlusion" => CameraFault::Occlusion,
                "clear" => CameraFault::Clear,
                w => return Err(fail(format!("unknown camera fault `{w}`"))),
            }),
            "mislabel" | "place" => {
                let slot = arg(1, "slot")?.parse::<SlotAddress>().map_err(|e| fail(e.to_string()))?;
                let label = words.get(2..).filter(|w| !w.is_empty()).map(|w| w.join(" ")).ok_or_else(|| fail("missing label".into()))?;
                if words[0] == "place" { Fault::Place(slot, label) } else { Fault::Mislabel(slot, label) }
            }
            "remove" => Fault::Remove(arg(1, "slot")?.parse::<SlotAddress>().map_err(|e| fail(e.to_string()))?),
            other => return Err(fail(format!("unknown fault `{other}`; faults are: {FAULT_HELP}"))),
        };
        Ok(fault)
    }
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Line::Store => "store",
            Line::Conveyor => "conveyor",
        })
    }
}

/// When a scripted fault fires.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// At this machine time (seconds since the simulator started).
    At(f64),
    /// When the n-th pick (1-based) starts.
    OnPick(u64),
    /// When the n-th belt run starts.
    OnConvey(u64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScriptedFault {
    pub trigger: Trigger,
    pub fault: Fault,
}

/// Parses a fault script: one `at SECONDS FAULT`, `on pick N FAULT` or
/// `on convey N FAULT` per line; `#` starts a comment. Errors name the line.
pub fn parse_script(text: &str) -> Result<Vec<ScriptedFault>, String> {
    let mut script = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let at = |problem: String| format!("line {}: {problem}", n + 1);
        let words: Vec<&str> = line.split_whitespace().collect();
        let (trigger, rest) = match words.as_slice() {
            ["at", t, rest @ ..] => {
                let t = t.trim_end_matches('s').parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0).ok_or_else(|| at(format!("bad time `{t}`")))?;
                (Trigger::At(t), rest)
            }
            ["on", event, count, rest @ ..] => {
                let count = count.parse::<u64>().ok().filter(|c| *c > 0).ok_or_else(|| at(format!("bad count `{count}`")))?;
                match *event {
                    "pick" => (Trigger::OnPick(count), rest),
                    "convey" => (Trigger::OnConvey(count), rest),
                    other => return Err(at(format!("unknown event `{other}` (pick or convey)"))),
                }
            }
            _ => return Err(at(format!("`{line}`: expected `at SECONDS FAULT` or `on pick|convey N FAULT`"))),
        };
        let fault = rest.join(" ").parse::<Fault>().map_err(|e| at(e.to_string()))?;
        script.push(ScriptedFault { trigger, fault });
    }
    Ok(script)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fault_parses_from_its_line() {
        let cases = [
            ("jam", Fault::Jam),
            ("diverter stuck", Fault::DiverterStuck(true)),
            ("tray-stuck 3", Fault::TrayStuck(Some(BoothId(3)))),
            ("door open", Fault::Door(true)),
            ("estop off", Fault::Estop(false)),
            ("compressor fail", Fault::CompressorFailure(true)),
            ("compressor stuck-on", Fault::CompressorStuckOn),
            ("probe fail both", Fault::ProbeFailure { a: true, b: true }),
            ("probe fail b", Fault::ProbeFailure { a: false, b: true }),
            ("probe ok", Fault::ProbeFailure { a: false, b: false }),
            ("probe-offset -1.5", Fault::ProbeOffset(-1.5)),
            ("noise store 0.05", Fault::Noise(Line::Store, 0.05)),
            ("unplug conveyor 2", Fault::Unplug(Line::Conveyor, 2.0)),
            ("camera glare", Fault::Camera(CameraFault::Glare)),
            ("mislabel R1-2-3 (01)06901234000030", Fault::Mislabel(SlotAddress::new(1, 2, 3), "(01)06901234000030".into())),
            ("remove R0-0-1", Fault::Remove(SlotAddress::new(0, 0, 1))),
            ("place R3-4-9 0106901234000016", Fault::Place(SlotAddress::new(3, 4, 9), "0106901234000016".into())),
        ];
        for (line, fault) in cases {
            assert_eq!(line.parse::<Fault>(), Ok(fault), "{line}");
        }
    }

    #[test]
    fn bad_faults_say_what_is_wrong() {
        let err = |line: &str| line.parse::<Fault>().expect_err(line).problem;
        assert!(err("door ajar").contains("expected open or close"));
        assert!(err("noise belt 0.1").contains("unknown device `belt`"));
        assert!(err("noise store 3").contains("0 to 1"));
        assert!(err("levitate").contains("unknown fault `levitate`"));
        assert!(err("silent store").contains("missing seconds"));
    }

    #[test]
    fn scripts_name_the_bad_line() {
        let script = parse_script("# a morning\nat 30 door open\non pick 3 grip-failure\nat 40s door close\n").expect("valid script");
        assert_eq!(script.len(), 3);
        assert_eq!(script[1].trigger, Trigger::OnPick(3));
        assert_eq!(script[2].trigger, Trigger::At(40.0));
        let e = parse_script("at 1 jam\nsometime door open\n").expect_err("bad line");
        assert!(e.starts_with("line 2:"), "{e}");
    }
}
