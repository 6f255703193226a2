//! The mechanical throughput bound: from the configured timings, the rate each
//! stage of the machine can sustain, and the bottleneck among them. A dispense
//! passes the picker (one unit at a time), the scan station (one unit at a time)
//! and a booth (one patient at a time, from the unit's drop into the tray until the
//! dose is given; the next unit waits at the booth's gate meanwhile); the slowest
//! stage bounds the whole.

use serde::Serialize;
use simulator::SimConfig;

#[derive(Debug, Clone, Serialize)]
pub struct Bound {
    /// Each stage and the dispenses per hour it can sustain.
    pub stages: Vec<(String, f64)>,
    pub bottleneck: String,
    pub per_hour: f64,
}

/// The stages' rates for this machine and this clinic's mean validation and
/// administration times; `frames` is how many frames a clean read takes.
pub fn bound(sim: &SimConfig, validation_mean_s: f64, administration_mean_s: f64, frames: u32) -> Bound {
    let t = &sim.timings;
    // The picker's mean trip over the slots (a uniform spread of distances), plus the hatch.
    let picker_s = (t.pick_min_s + t.pick_max_s) / 2.0 + t.hatch_s;
    // The scan station holds a unit from the hatch run until it has read it.
    let scan_s = t.scan_position_m / t.belt_speed_mps + f64::from(frames) * t.frame_s;
    // A booth serves one patient at a time: the next unit, waiting at the gate, drops
    // into the tray once the dose before is given and the nurse has emptied the tray.
    let tray_s = (validation_mean_s + administration_mean_s).max(t.nurse_pickup_s) + t.gate_drop_s;
    let stages = vec![
        ("picker".to_owned(), 3600.0 / picker_s),
        ("scan station".to_owned(), 3600.0 / scan_s),
        (format!("{} booths", sim.booths), f64::from(sim.booths) * 3600.0 / tray_s),
    ];
    let (bottleneck, per_hour) = stages.iter().cloned().min_by(|a, b| a.1.total_cmp(&b.1)).unwrap_or_default();
    Bound { stages, bottleneck, per_hour }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slowest_stage_bounds_the_machine() {
        let sim = SimConfig::default();
        // Picker: (4 + 8) / 2 + 1 = 7 s -> 514/h; scan: 1 / 0.25 + 2 x 0.4 = 4.8 s -> 750/h;
        // 6 booths of 40 + 60 + 0.5 s (the drop from the gate) -> 215/h.
        let b = bound(&sim, 40.0, 60.0, 2);
        assert_eq!(b.bottleneck, "6 booths");
        assert!((b.per_hour - 6.0 * 3600.0 / 100.5).abs() < 1e-9);
        let quick = bound(&sim, 1.0, 1.0, 2);
        assert_eq!(quick.bottleneck, "picker", "with instant patients the picker limits");
    }
}
