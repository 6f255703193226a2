//! A digital vaccine vial monitor (DOMAIN.md): a product's heat stability as two
//! reference points (days to the end point at two temperatures), the Arrhenius
//! model they fix, and the share of a unit's heat budget a stretch of time at a
//! temperature consumes. Budget consumed = Σ Δt / t_end(T); at 1.0 the unit is at
//! its end point and is not used, whatever its expiry.

use serde::Deserialize;

const KELVIN: f64 = 273.15;
const SECONDS_PER_DAY: f64 = 86_400.0;

/// A product's heat stability: a WHO VVM category or explicit reference points.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(try_from = "StabilityText")]
pub struct HeatStability {
    /// (°C, days to the end point at that temperature), the warmer first.
    warm: (f64, f64),
    cool: (f64, f64),
}

/// How the catalog writes it: `"VVM30"`, or `{ points = [[37, 30], [25, 193]] }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum StabilityText {
    Category(String),
    Points {
        points: [[f64; 2]; 2],
    },
}

impl TryFrom<StabilityText> for HeatStability {
    type Error = String;

    fn try_from(text: StabilityText) -> Result<Self, String> {
        match text {
            StabilityText::Category(name) => Self::category(&name).ok_or_else(|| format!("unknown heat-stability category {name:?} (VVM30, VVM14, VVM7 or VVM2)")),
            StabilityText::Points { points: [[t1, d1], [t2, d2]] } => Self::from_points((t1, d1), (t2, d2)),
        }
    }
}

impl HeatStability {
    /// The WHO categories (PQS E006 as widely cited): days to the end point at 37 °C
    /// and 25 °C; VVM2 has none at 25 °C and is fixed by 225 days at 5 °C.
    pub fn category(name: &str) -> Option<Self> {
        let (warm, cool) = match name {
            "VVM30" => ((37.0, 30.0), (25.0, 193.0)),
            "VVM14" => ((37.0, 14.0), (25.0, 90.0)),
            "VVM7" => ((37.0, 7.0), (25.0, 45.0)),
            "VVM2" => ((37.0, 2.0), (5.0, 225.0)),
            _ => return None,
        };
        Some(Self { warm, cool })
    }

    /// Two reference points, each (°C, days); the warmer must be the quicker.
    pub fn from_points(a: (f64, f64), b: (f64, f64)) -> Result<Self, String> {
        let (warm, cool) = if a.0 > b.0 { (a, b) } else { (b, a) };
        let finite = [warm.0, warm.1, cool.0, cool.1].iter().all(|v| v.is_finite());
        if !finite || warm.0 == cool.0 || warm.1 <= 0.0 || cool.1 <= warm.1 {
            return Err(format!("heat-stability points {a:?} and {b:?}: two different temperatures, the warmer reaching its end point sooner (days > 0)"));
        }
        Ok(Self { warm, cool })
    }

    /// Ea/R of the fitted model, kelvin.
    fn activation(&self) -> f64 {
        let (tw, tc) = (self.warm.0 + KELVIN, self.cool.0 + KELVIN);
        (self.cool.1 / self.warm.1).ln() / (1.0 / tc - 1.0 / tw)
    }

    /// Seconds at `celsius` to reach the end point from a fresh unit.
    pub fn end_point_s(&self, celsius: f64) -> f64 {
        let t = celsius + KELVIN;
        let tw = self.warm.0 + KELVIN;
        self.warm.1 * SECONDS_PER_DAY * (self.activation() * (1.0 / t - 1.0 / tw)).exp()
    }

    /// The share of the budget `seconds` at `celsius` consume.
    pub fn consumed(&self, celsius: f64, seconds: f64) -> f64 {
        seconds / self.end_point_s(celsius)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn days(s: f64) -> f64 {
        s / SECONDS_PER_DAY
    }

    #[test]
    fn the_model_passes_through_its_reference_points() {
        let vvm30 = HeatStability::category("VVM30").expect("known");
        assert!((days(vvm30.end_point_s(37.0)) - 30.0).abs() < 1e-6);
        assert!((days(vvm30.end_point_s(25.0)) - 193.0).abs() < 1e-6);
        // DOMAIN.md: about 17 years at +5 °C, Ea about 119 kJ/mol.
        let years = days(vvm30.end_point_s(5.0)) / 365.25;
        assert!((15.0..20.0).contains(&years), "{years} years at 5 °C");
        assert!((vvm30.activation() * 8.314 / 1000.0 - 119.0).abs() < 2.0, "{} kJ/mol", vvm30.activation() * 8.314 / 1000.0);
        let vvm2 = HeatStability::category("VVM2").expect("known");
        assert!((days(vvm2.end_point_s(5.0)) - 225.0).abs() < 1e-6);
    }

    #[test]
    fn warmth_consumes_the_budget_faster_and_shares_add_up() {
        let vvm14 = HeatStability::category("VVM14").expect("known");
        let hour_at = |c: f64| vvm14.consumed(c, 3600.0);
        assert!(hour_at(5.0) < hour_at(25.0) && hour_at(25.0) < hour_at(37.0));
        assert!((vvm14.consumed(37.0, 7.0 * SECONDS_PER_DAY) - 0.5).abs() < 1e-9, "half the days, half the budget");
        assert!(hour_at(5.0) < 1e-4, "an hour in a working fridge consumes almost nothing");
    }

    #[test]
    fn the_catalog_writes_it_as_a_category_or_two_points_and_mistakes_are_named() {
        #[derive(Deserialize)]
        struct P {
            s: HeatStability,
        }
        let category: P = toml::from_str("s = \"VVM7\"").expect("category");
        assert_eq!(category.s, HeatStability::category("VVM7").expect("known"));
        let points: P = toml::from_str("s = { points = [[25, 90], [37, 14]] }").expect("points");
        assert_eq!(points.s, HeatStability::category("VVM14").expect("known"), "either order");
        let unknown = toml::from_str::<P>("s = \"VVM99\"").err().expect("unknown").to_string();
        assert!(unknown.contains("VVM99"), "{unknown}");
        assert!(HeatStability::from_points((37.0, 30.0), (25.0, 10.0)).is_err(), "the cooler must last longer");
    }
}
