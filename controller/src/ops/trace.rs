//! Traceability exports from the journal: a unit's chain of custody (stocked,
//! held, picked, scanned, verified, delivered, validated, administered or rejected)
//! and a patient's dispenses, as JSON or CSV, and an administered dose as an HL7
//! FHIR R4 `Immunization` resource.

use crate::rules::catalog::Catalog;
use crate::journal::{Entry, Journal, JournalError};
use crate::dispense::status::{DispenseStatus, Stage};
use serde::Serialize;
use serde_json::{Value, json};

/// One unit's record and every journal step that concerns it.
#[derive(Debug, Serialize)]
pub struct UnitTrace {
    pub code: String,
    pub gtin: String,
    pub lot: String,
    pub expiry: String,
    pub slot: String,
    pub state: String,
    pub hold: Option<String>,
    pub events: Vec<TraceEvent>,
}

/// A journal step as exported.
#[derive(Debug, Clone, Serialize)]
pub struct TraceEvent {
    pub seq: i64,
    pub at: String,
    pub dispense_id: Option<String>,
    /// The dispense's patient, pseudonymous ([`crate::journal::Journal::patient_ref`]), where known.
    pub patient_ref: Option<String>,
    pub unit_code: Option<String>,
    pub kind: String,
    pub step: String,
    pub detail: String,
}

impl From<Entry> for TraceEvent {
    fn from(e: Entry) -> Self {
        Self { seq: e.seq, at: e.at.to_rfc3339(), dispense_id: e.dispense_id, patient_ref: None, unit_code: e.unit_code, kind: e.kind.as_str().to_owned(), step: e.step, detail: e.detail }
    }
}

/// A patient's dispenses, each with its steps.
#[derive(Debug, Serialize)]
pub struct PatientTrace {
    pub patient_id: String,
    pub dispenses: Vec<DispenseTrace>,
}

#[derive(Debug, Serialize)]
pub struct DispenseTrace {
    pub status: DispenseStatus,
    pub events: Vec<TraceEvent>,
}

/// The unit's trace; `None` when the journal has never heard of the code.
pub fn unit_trace(journal: &Journal, code: &str) -> Result<Option<UnitTrace>, JournalError> {
    let Some(record) = journal.stock_record(code)? else { return Ok(None) };
    let events = journal.unit_entries(code)?.into_iter().map(TraceEvent::from).collect();
    Ok(Some(UnitTrace {
        code: record.code,
        gtin: record.gtin,
        lot: record.lot,
        expiry: record.expiry.to_string(),
        slot: record.slot.to_string(),
        state: record.state.as_str().to_owned(),
        hold: record.hold.map(|(hold, why)| format!("{}: {why}", hold.as_str())),
        events,
    }))
}

pub fn patient_trace(journal: &Journal, patient_id: &str) -> Result<PatientTrace, JournalError> {
    let dispenses = journal
        .patient_dispenses(patient_id)?
        .into_iter()
        .map(|status| Ok(DispenseTrace { events: journal.entries(&status.id)?.into_iter().map(TraceEvent::from).collect(), status }))
        .collect::<Result<Vec<_>, JournalError>>()?;
    Ok(PatientTrace { patient_id: patient_id.to_owned(), dispenses })
}

/// Steps as CSV (RFC 4180: fields with commas, quotes or line breaks are quoted).
pub fn events_csv(events: &[TraceEvent]) -> String {
    let mut out = String::from(CSV_HEADER);
    for e in events {
        out.push_str(&csv_row(e));
    }
    out
}

/// The first line of [`events_csv`].
pub const CSV_HEADER: &str = "seq,at,dispense_id,patient_ref,unit_code,kind,step,detail\r\n";

/// One line of [`events_csv`], its fields quoted where they need it.
pub fn csv_row(e: &TraceEvent) -> String {
    let field = |s: &str| {
        if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_owned() }
    };
    let row = [
        e.seq.to_string(),
        e.at.clone(),
        e.dispense_id.clone().unwrap_or_default(),
        e.patient_ref.clone().unwrap_or_default(),
        e.unit_code.clone().unwrap_or_default(),
        e.kind.clone(),
        e.step.clone(),
        e.detail.clone(),
    ];
    let mut line = row.iter().map(|f| field(f)).collect::<Vec<_>>().join(",");
    line.push_str("\r\n");
    line
}

/// Why an immunization record cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum FhirError {
    #[error("dispense {0} was not administered (it is {1})")]
    NotAdministered(String, &'static str),
    #[error("dispense {0} has no unit")]
    NoUnit(String),
}

/// The administered dose as a FHIR R4 Immunization resource (fields as DOMAIN.md).
pub fn immunization(status: &DispenseStatus, catalog: &Catalog) -> Result<Value, FhirError> {
    if status.stage != Stage::Administered {
        return Err(FhirError::NotAdministered(status.id.clone(), status.stage.describe()));
    }
    let unit = status.unit.as_ref().ok_or_else(|| FhirError::NoUnit(status.id.clone()))?;
    let product = catalog.product(&status.order.product_id);
    let route = product.map(|p| p.route.as_str()).or(status.order.route.as_deref()).unwrap_or("");
    let (route_code, route_display) = match route {
        "IM" => ("IM", "Injection, intramuscular"),
        "SC" => ("SQ", "Injection, subcutaneous"),
        "ID" => ("IDINJ", "Injection, intradermal"),
        "PO" => ("PO", "Swallow, oral"),
        other => (other, other),
    };
    let mut resource = json!({
        "resourceType": "Immunization",
        "id": status.id,
        "identifier": [{ "system": "urn:gs1:unit-code", "value": unit.code }],
        "status": "completed",
        "vaccineCode": {
            "coding": [{ "system": "https://www.gs1.org/gtin", "code": unit.gtin, "display": product.map_or(status.order.product_id.as_str(), |p| p.name.as_str()) }],
            "text": status.order.product_id,
        },
        "patient": { "reference": format!("Patient/{}", status.order.patient_id), "display": status.order.patient_name },
        "occurrenceDateTime": status.finished_at.map(|t| t.to_rfc3339()),
        "primarySource": true,
        "lotNumber": unit.lot,
        "expirationDate": unit.expiry.to_string(),
        "route": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-RouteOfAdministration", "code": route_code, "display": route_display }] },
        "protocolApplied": [{ "doseNumberPositiveInt": status.order.dose_number }],
    });
    if let Some(p) = product {
        resource["doseQuantity"] = json!({ "value": p.dose_ml, "unit": "mL", "system": "http://unitsofmeasure.org", "code": "mL" });
    }
    // The site the nurse reported, else the one ordered.
    if let Some(site) = status.administered_site.as_ref().or(status.order.site.as_ref()) {
        resource["site"] = json!({ "text": site });
    }
    if let Some(nurse) = &status.administered_by {
        resource["performer"] = json!([{ "actor": { "reference": format!("Practitioner/{nurse}"), "display": nurse } }]);
    }
    Ok(resource)
}

/// Pretty JSON of an exported value (our own plain data always serialises).
pub fn pretty<T: Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let e = TraceEvent { seq: 1, at: "t".into(), dispense_id: None, patient_ref: Some("pt-1".into()), unit_code: Some("(01)1".into()), kind: "k".into(), step: "s".into(), detail: "a, \"b\"\nc".into() };
        let csv = events_csv(&[e]);
        assert_eq!(csv, "seq,at,dispense_id,patient_ref,unit_code,kind,step,detail\r\n1,t,,pt-1,(01)1,k,s,\"a, \"\"b\"\"\nc\"\r\n");
    }
}
