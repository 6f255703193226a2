//! `workstation trace`: a unit's chain of custody, a patient's dispenses (JSON or
//! CSV), or an administered dose as a FHIR R4 Immunization, from the journal.

use anyhow::Context;
use controller::config::Config;
use controller::journal::Journal;
use controller::ops::trace;
use controller::rules::catalog::Catalog;

/// `workstation trace`: prints the export asked for; an unknown code, patient or
/// dispense is an error naming it.
pub fn run(config: &Config, unit: Option<String>, patient: Option<String>, fhir: Option<String>, csv: bool) -> anyhow::Result<()> {
    let path = &config.journal.path;
    anyhow::ensure!(path.is_file(), "no journal at {}", path.display());
    let journal = Journal::open(path).with_context(|| format!("journal {}", path.display()))?;
    match (unit, patient, fhir) {
        (Some(code), None, None) => {
            let canonical = hal::codes::UnitCode::parse(&code).map(|c| c.canonical()).unwrap_or(code.clone());
            let trace = trace::unit_trace(&journal, &canonical)?.with_context(|| format!("unit {code} is not in the journal"))?;
            println!("{}", if csv { trace::events_csv(&trace.events) } else { trace::pretty(&trace) });
        }
        (None, Some(id), None) => {
            let trace = trace::patient_trace(&journal, &id)?;
            anyhow::ensure!(!trace.dispenses.is_empty(), "patient {id} has no dispenses in the journal");
            if csv {
                let events: Vec<trace::TraceEvent> = trace.dispenses.into_iter().flat_map(|d| d.events).collect();
                println!("{}", trace::events_csv(&events));
            } else {
                println!("{}", trace::pretty(&trace));
            }
        }
        (None, None, Some(id)) => {
            let status = journal.dispense(&id)?.with_context(|| format!("dispense {id} is not in the journal"))?;
            let catalog = Catalog::load(&config.catalog.path)?;
            println!("{}", serde_json::to_string_pretty(&trace::immunization(&status, &catalog)?)?);
        }
        _ => anyhow::bail!("give one of --unit CODE, --patient ID or --fhir DISPENSE"),
    }
    Ok(())
}

