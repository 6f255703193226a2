//! An outbox event as the city receives it: its topic,
//! `vaccination/{site}/{workstation}/{kind}`, and its JSON body — the envelope
//! (event id, sequence number, kind, who, when) around the event's data. A
//! dispense's end carries a summary (the patient by pseudonym) and, for an
//! administered dose, its FHIR R4 Immunization.

use crate::dispense::status::DispenseStatus;
use crate::journal::{EventKind, Journal, OutboxEvent};
use crate::rules::catalog::Catalog;
use serde_json::{Value, json};

/// Who is speaking on the feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub site: String,
    pub workstation: String,
}

impl Identity {
    /// The topic an event of `kind` is published on.
    pub fn topic(&self, kind: EventKind) -> String {
        format!("vaccination/{}/{}/{}", self.site, self.workstation, kind.as_str())
    }
}

/// The message body of one event.
pub fn body(event: &OutboxEvent, identity: &Identity, journal: &Journal, catalog: &Catalog) -> Value {
    let data: Value = serde_json::from_str(&event.data).unwrap_or_else(|e| json!({ "unreadable": e.to_string(), "raw": event.data }));
    let data = match event.kind {
        EventKind::Dispense => match serde_json::from_value::<DispenseStatus>(data.clone()) {
            Ok(status) => dispense(&status, journal, catalog),
            Err(e) => json!({ "unreadable": e.to_string() }),
        },
        _ => data,
    };
    json!({
        "id": event.id,
        "sequence": event.seq,
        "kind": event.kind.as_str(),
        "site": identity.site,
        "workstation": identity.workstation,
        "event_time": event.at.to_rfc3339(),
        "data": data,
    })
}

/// A dispense's end: what happened, with the unit and the patient's pseudonym;
/// an administered dose's immunization record names the patient (the
/// provincial platform files it under them).
fn dispense(status: &DispenseStatus, journal: &Journal, catalog: &Catalog) -> Value {
    let order = &status.order;
    let immunization = crate::ops::trace::immunization(status, catalog).ok();
    json!({
        "dispense": {
            "id": status.id,
            "request_id": status.request_id,
            "stage": status.stage.code(),
            "detail": status.detail,
            "product": order.product_id,
            "dose_number": order.dose_number,
            "booth": order.booth.0,
            "patient_ref": journal.patient_ref(&order.patient_id),
            "unit": status.unit.as_ref().map(|u| json!({ "code": u.code, "gtin": u.gtin, "lot": u.lot, "expiry": u.expiry.to_string() })),
            "violations": status.violations.iter().map(|v| json!(v.id)).collect::<Vec<_>>(),
            "create_time": status.created_at.to_rfc3339(),
            "booth_arrival_time": status.at_booth_at.map(|t| t.to_rfc3339()),
            "finish_time": status.finished_at.map(|t| t.to_rfc3339()),
        },
        "immunization": immunization,
    })
}
