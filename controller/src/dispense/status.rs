//! Where a dispense stands (its stage) and its status as the clinic sees it.
//! No gRPC types here; `api` translates.

use crate::rules::order::PatientOrder;
use crate::rules::verify::Violation;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

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

    pub const ALL: [Stage; 13] = [
        Stage::Queued,
        Stage::Picking,
        Stage::OnBelt,
        Stage::Scanning,
        Stage::Verifying,
        Stage::ToBooth,
        Stage::AwaitingValidation,
        Stage::AwaitingAdministration,
        Stage::ToReject,
        Stage::Administered,
        Stage::Rejected,
        Stage::Failed,
        Stage::Cancelled,
    ];

    /// The stable code the journal stores (its `stage` column): rename a variant
    /// freely, never its code.
    pub fn code(self) -> &'static str {
        match self {
            Stage::Queued => "queued",
            Stage::Picking => "picking",
            Stage::OnBelt => "on_belt",
            Stage::Scanning => "scanning",
            Stage::Verifying => "verifying",
            Stage::ToBooth => "to_booth",
            Stage::AwaitingValidation => "awaiting_validation",
            Stage::AwaitingAdministration => "awaiting_administration",
            Stage::ToReject => "to_reject",
            Stage::Administered => "administered",
            Stage::Rejected => "rejected",
            Stage::Failed => "failed",
            Stage::Cancelled => "cancelled",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }

    /// Lower-case words for progress lines and people.
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
    /// The unit was in the booth's tray while the controller restarted: nobody
    /// watched it meanwhile, so the guardian's validation must carry a booth scan
    /// identifying it again (H-16).
    #[serde(default)]
    pub booth_scan_required: bool,
}
