//! The patient's order for one dose, with what the seven verifications compare.
//! No gRPC types here; `api` translates.

use chrono::NaiveDate;
use hal::BoothId;
use serde::{Deserialize, Serialize};


/// One patient's order for one dose, with what the seven verifications compare.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatientOrder {
    pub patient_id: String,
    pub patient_name: String,
    /// Catalog product id, e.g. `HepB`.
    pub product_id: String,
    pub booth: BoothId,
    pub dose_number: u32,
    /// For the age check.
    pub birth_date: NaiveDate,
    /// What the clinic's schedule says to give; each checked against the catalog
    /// when given (absent: the catalog's value is taken as ordered).
    #[serde(default)]
    pub specification: Option<String>,
    /// Dose in microlitres (an exact integer, so orders compare exactly).
    #[serde(default)]
    pub dose_ul: Option<u32>,
    #[serde(default)]
    pub route: Option<String>,
    #[serde(default)]
    pub site: Option<String>,
    /// The clinic attests the health and contraindication check (一查) was done.
    #[serde(default)]
    pub health_check_attested: bool,
    /// The patient's earlier doses, from the vaccination certificate.
    #[serde(default)]
    pub history: Vec<PriorDose>,
}

/// A dose the patient had before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriorDose {
    pub product_id: String,
    pub dose_number: u32,
    pub date: NaiveDate,
}

impl PatientOrder {
    /// An order with only the required fields (tests, the demo).
    pub fn new(patient_id: &str, patient_name: &str, product_id: &str, booth: BoothId, dose_number: u32, birth_date: NaiveDate) -> Self {
        Self {
            patient_id: patient_id.into(),
            patient_name: patient_name.into(),
            product_id: product_id.into(),
            booth,
            dose_number,
            birth_date,
            specification: None,
            dose_ul: None,
            route: None,
            site: None,
            health_check_attested: true,
            history: Vec::new(),
        }
    }
}
