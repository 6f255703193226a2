//! The simulated workstation's geometry and nominal timings (machine seconds).

use serde::Deserialize;

/// Everything the simulated hardware needs to know; all fields have the reference
/// workstation's defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimConfig {
    /// Speed factor: 1.0 is real time, 10.0 runs every device ten times faster.
    pub speed: f64,
    /// Seed for sensor noise and timing jitter, so runs repeat.
    pub seed: u64,
    pub booths: u8,
    pub racks: u8,
    pub rows: u8,
    pub columns: u8,
    pub cabinet_celsius: f64,
    /// The room: the air the cabinet leaks towards and the booths stand in.
    pub ambient_celsius: f64,
    pub timings: Timings,
}

impl SimConfig {
    /// Reads a `[hardware.simulator]` table (as a controller config keeps it,
    /// unread), with errors naming the field.
    pub fn from_table(table: &toml::Table) -> Result<Self, String> {
        let config: Self = table.clone().try_into().map_err(|e: toml::de::Error| format!("hardware.simulator: {}", e.message()))?;
        if !(config.speed > 0.0 && config.speed.is_finite()) {
            return Err(format!("hardware.simulator.speed must be positive, got {}", config.speed));
        }
        Ok(config)
    }

    pub fn geometry(&self) -> hal::StoreGeometry {
        hal::StoreGeometry { racks: self.racks, rows: self.rows, columns: self.columns }
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        Self { speed: 1.0, seed: 7, booths: 6, racks: 4, rows: 5, columns: 10, cabinet_celsius: 5.0, ambient_celsius: 25.0, timings: Timings::default() }
    }
}

/// Nominal timings of the reference workstation (DESIGN.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timings {
    /// Picking the nearest slot, and the farthest one; in between by distance.
    pub pick_min_s: f64,
    pub pick_max_s: f64,
    pub hatch_s: f64,
    pub belt_speed_mps: f64,
    /// One camera frame while the rollers turn the vial.
    pub frame_s: f64,
    /// Belt positions, metres from the hatch.
    pub scan_position_m: f64,
    pub first_booth_m: f64,
    pub booth_spacing_m: f64,
    /// How long the simulated nurse leaves a unit in the tray before taking it.
    pub nurse_pickup_s: f64,
    /// Opening a booth's gate: the waiting unit drops into the tray.
    pub gate_drop_s: f64,
}

impl Default for Timings {
    fn default() -> Self {
        Self {
            pick_min_s: 4.0,
            pick_max_s: 8.0,
            hatch_s: 1.0,
            belt_speed_mps: 0.25,
            frame_s: 0.4,
            scan_position_m: 1.0,
            first_booth_m: 2.0,
            booth_spacing_m: 0.75,
            nurse_pickup_s: 6.0,
            gate_drop_s: 0.5,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> toml::Table {
        text.parse().expect("toml")
    }

    #[test]
    fn a_table_is_read_and_its_mistakes_named() {
        let config = SimConfig::from_table(&table("speed = 20.0\nbooths = 4")).expect("valid");
        assert_eq!((config.speed, config.booths, config.racks), (20.0, 4, 4));
        let typo = SimConfig::from_table(&table("boths = 4")).expect_err("typo");
        assert!(typo.contains("boths"), "{typo}");
        let zero = SimConfig::from_table(&table("speed = 0.0")).expect_err("zero speed");
        assert!(zero.contains("hardware.simulator.speed"), "{zero}");
    }
}
