//! The domain view of a dispense: the patient order, its stages, and its status as
//! the clinic sees it. No gRPC types here; `api` translates.

use chrono::{DateTime, Utc};
use hal::BoothId;
use serde::{Deserialize, Serialize};

use crate::verify::Violation;

/// One patient's order for one dose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatientOrder {
    pub patient_id: String,
    pub patient_name: String,
    /// Catalog product id, e.g. `HepB`.
    pub product_id: String,
    pub booth: BoothId,
    pub dose_number: u32,
}

/// Where a dispense stands; the last three are final.
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
}

impl Stage {
    pub fn is_final(self) -> bool {
        matches!(self, Stage::Administered | Stage::Rejected | Stage::Failed)
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
}
