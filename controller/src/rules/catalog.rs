//! The product catalog: which codes belong to which vaccine product, what is printed
//! for people, and the clinical facts the checks need (dose, route and sites, ages,
//! intervals, live/inactivated, cold-chain limits). Loaded from TOML at start.

use serde::Deserialize;
use std::path::Path;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Product {
    /// Short id the clinic orders by, e.g. `HepB`.
    pub id: String,
    pub name: String,
    /// 规格, e.g. `10 µg / 0.5 mL`.
    pub specification: String,
    /// The dose given, in mL.
    pub dose_ml: f64,
    /// IM, SC, ID or PO.
    pub route: String,
    /// Where it may be given, e.g. `deltoid`.
    pub sites: Vec<String>,
    /// Doses in the series.
    pub doses: u32,
    /// Youngest eligible age, in days.
    pub min_age_days: u32,
    /// The schedule's "finish before", in days; none when there is no limit.
    #[serde(default)]
    pub max_age_days: Option<u32>,
    /// Least days between two doses of the series.
    pub min_interval_days: u32,
    /// Live attenuated (two live injectables on different days must be 28 days apart).
    pub live: bool,
    /// Adsorbed vaccines that a freeze excursion destroys.
    pub freeze_sensitive: bool,
    /// Minutes a unit may spend out of refrigeration from leaving the store to the jab.
    pub out_of_fridge_limit_min: u32,
    /// Stricter cold-chain limits for this product (each can only tighten the
    /// cabinet's); an excursion under them holds this product's units.
    #[serde(default)]
    pub cold_chain: Option<ProductColdChain>,
    /// Its vial monitor: a WHO category (`"VVM30"`) or two reference points; each
    /// unit's heat budget is integrated against it. None: no budget is kept.
    #[serde(default)]
    pub heat_stability: Option<crate::rules::heat_stability::HeatStability>,
    /// GS1 GTINs of the product's single-unit packages.
    #[serde(default)]
    pub gtins: Vec<String>,
    /// 7-digit product identifiers of the 20-digit traceability code.
    #[serde(default)]
    pub cn_product_ids: Vec<String>,
}

/// A product's own cold-chain limits (see [`crate::coldchain::rules::ColdChainRules`]).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProductColdChain {
    pub heat_s: Option<i64>,
    pub freeze_celsius: Option<f64>,
    pub freeze_s: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    #[serde(rename = "product")]
    pub products: Vec<Product>,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("cannot read catalog {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("catalog {path} is not valid: {error}")]
    Parse { path: String, error: toml::de::Error },
    #[error("catalog: {0}")]
    Invalid(String),
}

impl Catalog {
    pub fn load(path: &Path) -> Result<Self, CatalogError> {
        let text = std::fs::read_to_string(path).map_err(|error| CatalogError::Read { path: path.display().to_string(), error })?;
        let catalog: Catalog = toml::from_str(&text).map_err(|error| CatalogError::Parse { path: path.display().to_string(), error })?;
        catalog.validate()?;
        Ok(catalog)
    }

    /// Ids are unique and no code belongs to two products.
    fn validate(&self) -> Result<(), CatalogError> {
        let mut ids = std::collections::HashSet::new();
        let mut codes = std::collections::HashMap::new();
        for p in &self.products {
            if !ids.insert(p.id.as_str()) {
                return Err(CatalogError::Invalid(format!("product id {:?} appears twice", p.id)));
            }
            let bad = |field: &str, why: String| Err(CatalogError::Invalid(format!("product {}: {field} {why}", p.id)));
            if !["IM", "SC", "ID", "PO"].contains(&p.route.as_str()) {
                return bad("route", format!("{:?} is not one of IM, SC, ID, PO", p.route));
            }
            if !(p.dose_ml > 0.0 && p.dose_ml.is_finite()) {
                return bad("dose_ml", format!("must be positive, got {}", p.dose_ml));
            }
            if p.sites.is_empty() || p.doses == 0 {
                return bad("sites/doses", "need at least one site and one dose".into());
            }
            if p.max_age_days.is_some_and(|max| max < p.min_age_days) {
                return bad("max_age_days", format!("is below min_age_days {}", p.min_age_days));
            }
            for code in p.gtins.iter().chain(&p.cn_product_ids) {
                if let Some(other) = codes.insert(code.as_str(), p.id.as_str()) {
                    return Err(CatalogError::Invalid(format!("code {code} belongs to both {other} and {}", p.id)));
                }
            }
        }
        Ok(())
    }

    pub fn product(&self, id: &str) -> Option<&Product> {
        self.products.iter().find(|p| p.id == id)
    }

    /// The product a GTIN belongs to.
    pub fn product_with_gtin(&self, gtin: &str) -> Option<&Product> {
        self.products.iter().find(|p| p.gtins.iter().any(|g| g == gtin))
    }

    /// The product a scanned code belongs to.
    pub fn product_of(&self, code: &hal::codes::UnitCode) -> Option<&Product> {
        match code {
            hal::codes::UnitCode::Gs1(c) => self.products.iter().find(|p| p.gtins.contains(&c.gtin)),
            hal::codes::UnitCode::Cn20(c) => self.products.iter().find(|p| p.cn_product_ids.iter().any(|id| id == c.product_id())),
        }
    }
}
