//! The domain view of a dispense: the patient order, its stages, and its status as
//! the clinic sees it. No gRPC types here; `api` translates.

use chrono::{DateTime, NaiveDate, Utc};
use hal::BoothId;
use serde::{Deserialize, Serialize};

use crate::verify::Violation;

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

/// Where a dispense stands; the last four are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Stage {
    Queued,
    Picking,
    OnBelt,
    Scanning,
    Verifying,
    ToBooth,
    AwaitingValidation,
    AwaitingAdministration,
    ToReject,
    Administered,
    Rejected,
    Failed,
    /// Cancelled by the clinic while queued; no unit was picked.
    Cancelled,
}

impl Stage {
    pub fn is_final(self) -> bool {
        matches!(self, Stage::Administered | Stage::Rejected | Stage::Failed | Stage::Cancelled)
    }

    /// Lower-case words for progress lines and the journal.
    pub fn describe(self) -> &'static str {
        match self {
            Stage::Queued => "queued",
            Stage::Picking => "picking",
            Stage::OnBelt => "on belt",
            Stage::Scanning => "scanning",
            Stage::Verifying => "verifying",
            Stage::ToBooth => "to booth",
            Stage::AwaitingValidation => "at booth, awaiting validation",
            Stage::AwaitingAdministration => "validated, awaiting administration",
            Stage::ToReject => "to reject bin",
            Stage::Administered => "administered",
            Stage::Rejected => "rejected",
            Stage::Failed => "failed",
            Stage::Cancelled => "cancelled",
        }
    }
}

/// The unit a dispense took, as its stock record describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitInfo {
    pub code: String,
    pub gtin: String,
    pub lot: String,
    pub expiry: chrono::NaiveDate,
    pub slot: String,
}

/// Everything the clinic may ask about one dispense.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DispenseStatus {
    pub id: String,
    pub request_id: String,
    pub order: PatientOrder,
    pub stage: Stage,
    pub unit: Option<UnitInfo>,
    pub violations: Vec<Violation>,
    pub detail: String,
    pub created_at: DateTime<Utc>,
    pub at_booth_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The nurse who administered the dose (for the immunization record).
    #[serde(default)]
    pub administered_by: Option<String>,
    /// The injection site the nurse used.
    #[serde(default)]
    pub administered_site: Option<String>,
}
