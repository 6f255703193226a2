//! Who sees patients: a patient's identity (id, name, birth date) and dose history
//! go to clinic and pharmacist callers only. Every other role (observer dashboards,
//! maintenance crews) gets the same messages with those fields empty and the
//! patient's pseudonymous reference instead, so it can still tell patients apart.
//! Checks that judged the patient (age, dose series, intervals) keep their
//! violation id for every role; their text, which says the patient's age or
//! history, goes only to the roles that see patients.

use crate::api::auth::roles::{Caller, Role};
use crate::dispense::status::DispenseStatus;
use crate::rules::verify::ViolationId;
use dispense_proto::v1 as pb;

/// What a caller may see of patients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sight {
    /// Identity and history (clinic, pharmacist).
    Patients,
    /// The pseudonymous reference only (observer, maintenance).
    Pseudonyms,
}

impl Sight {
    pub(crate) fn of(caller: &Caller) -> Self {
        match caller.role {
            Role::Clinic | Role::Pharmacist => Sight::Patients,
            Role::Observer | Role::Maintenance => Sight::Pseudonyms,
        }
    }

    /// The sight of a request's caller; a request without one (never past the
    /// gate) sees pseudonyms only.
    pub(crate) fn of_request<T>(request: &tonic::Request<T>) -> Self {
        crate::api::auth::extract::caller(request).map_or(Sight::Pseudonyms, |c| Self::of(&c))
    }
}

/// Whether a violation's text tells about the patient rather than the unit.
pub(crate) fn about_patient(id: ViolationId) -> bool {
    matches!(id, ViolationId::AgeNotEligible | ViolationId::DoseNumberMismatch | ViolationId::IntervalTooShort)
}

/// A dispense as `sight` may see it.
pub(crate) fn dispense(mut d: pb::Dispense, sight: Sight) -> pb::Dispense {
    if sight == Sight::Patients {
        return d;
    }
    if let Some(order) = d.order.as_mut() {
        order.patient_id.clear();
        order.patient_name.clear();
        order.birth_date.clear();
        order.history.clear();
    }
    for v in &mut d.violations {
        let judged_patient = ViolationId::ALL.iter().any(|&id| id.as_str() == v.id && about_patient(id));
        if judged_patient && !v.message.is_empty() {
            // The dispense's detail may quote the violation.
            d.detail = withhold(&d.detail, std::slice::from_ref(&v.message));
            v.message.clear();
        }
    }
    d
}

/// The texts of a dispense that tell about its patient (its patient-judging
/// violations' messages): withheld from journal lines shown to those who may not
/// see patients.
pub(crate) fn patient_texts(s: &DispenseStatus) -> Vec<String> {
    s.violations.iter().filter(|v| about_patient(v.id) && !v.message.is_empty()).map(|v| v.message.clone()).collect()
}

/// `text` with each of `texts` withheld.
pub(crate) fn withhold(text: &str, texts: &[String]) -> String {
    texts.iter().fold(text.to_owned(), |t, m| t.replace(m.as_str(), WITHHELD))
}

/// A journal line's text for those who may not see patients: `texts` (the
/// dispense's, from [`patient_texts`]) withheld, and the whole order that
/// journals before version 7 wrote on a dispense's `accepted` line.
pub(crate) fn journal_line(kind: &str, step: &str, detail: &str, texts: &[String]) -> String {
    if kind == "stage" && step == "accepted" && detail.trim_start().starts_with('{') {
        return "(order withheld: about the patient)".into();
    }
    withhold(detail, texts)
}

const WITHHELD: &str = "(withheld: about the patient)";

/// A booth as `sight` may see it.
pub(crate) fn booth(mut b: pb::Booth, sight: Sight) -> pb::Booth {
    if sight == Sight::Pseudonyms {
        b.patient_name.clear();
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonymous_sight_empties_identity_history_and_patient_judgements() {
        let order = pb::PatientOrder {
            patient_id: "P9".into(),
            patient_name: "Li Na".into(),
            birth_date: "2025-01-02".into(),
            history: vec![pb::PriorDose::default()],
            patient_ref: "pt-0123456789ab".into(),
            product_id: "HepB".into(),
            ..Default::default()
        };
        let violations = vec![
            pb::Violation { id: ViolationId::DoseNumberMismatch.as_str().into(), message: "dose 3 ordered; history has 0 dose(s)".into() },
            pb::Violation { id: ViolationId::Expired.as_str().into(), message: "expired on 2026-01-01".into() },
        ];
        let d = pb::Dispense { order: Some(order), violations, detail: "refused: dose 3 ordered; history has 0 dose(s)".into(), ..Default::default() };
        assert_eq!(dispense(d.clone(), Sight::Patients), d, "clinic and pharmacist see it all");
        let seen = dispense(d, Sight::Pseudonyms);
        let o = seen.order.as_ref().expect("order");
        assert!(o.patient_id.is_empty() && o.patient_name.is_empty() && o.birth_date.is_empty() && o.history.is_empty(), "{o:?}");
        assert_eq!((o.patient_ref.as_str(), o.product_id.as_str()), ("pt-0123456789ab", "HepB"));
        assert_eq!(seen.violations[0].message, "", "the patient's history is not the observer's");
        assert_eq!(seen.violations[1].message, "expired on 2026-01-01", "the unit's faults are everyone's");
        assert!(!seen.detail.contains("history"), "{}", seen.detail);
    }

    #[test]
    fn orders_older_journals_wrote_on_their_accepted_line_are_withheld() {
        let old = r#"{"patient_id":"P9","patient_name":"Li Na"}"#;
        assert!(!journal_line("stage", "accepted", old, &[]).contains("Li Na"));
        assert_eq!(journal_line("stage", "accepted", "HepB dose 1 for booth 2, patient pt-1", &[]), "HepB dose 1 for booth 2, patient pt-1");
        assert_eq!(journal_line("outcome", "Violations", "dose 3 ordered", &["dose 3 ordered".into()]), WITHHELD);
    }
}
