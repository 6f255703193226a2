//! The product catalog: which codes belong to which vaccine product, and what is
//! printed for people. Loaded from TOML at start.

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
    /// IM, SC, ID, PO.
    pub route: String,
    /// GS1 GTINs of the product's single-unit packages.
    #[serde(default)]
    pub gtins: Vec<String>,
    /// 7-digit product identifiers of the 20-digit traceability code.
    #[serde(default)]
    pub cn_product_ids: Vec<String>,
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

    /// The product a scanned code belongs to.
    pub fn product_of(&self, code: &hal::codes::UnitCode) -> Option<&Product> {
        match code {
            hal::codes::UnitCode::Gs1(c) => self.products.iter().find(|p| p.gtins.contains(&c.gtin)),
            hal::codes::UnitCode::Cn20(c) => self.products.iter().find(|p| p.cn_product_ids.iter().any(|id| id == c.product_id())),
        }
    }
}
