//! Traceability: after a dose is administered, the unit's chain of custody, the
//! patient's trace and the FHIR Immunization come out of the journal, through the
//! library and through `workstation trace`.

use controller::ops::trace::{immunization, patient_trace, unit_trace};
use dispense_proto::v1 as pb;
use std::process::Command;

mod common;
use common::{order, serve_workstation, start, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administered_dose_is_traceable_from_stock_in_to_the_jab() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hardware = "[hardware]\nkind = \"simulated\"\n[hardware.simulator]\nspeed = 40.0\nbooths = 4\n";
    let (assembled, mut client) = serve_workstation(dir.path(), hardware).await;
    let site = pb::PatientOrder { site: "deltoid".into(), ..order("HepB", 2) };
    let id = start(&mut client, "trace-1", site).await.dispense_id;
    let at_booth = wait_for(&mut client, &id, pb::DispenseStage::AwaitingValidation).await;
    let code = at_booth.unit.expect("unit").code;
    client.confirm_validation(pb::ConfirmValidationRequest { dispense_id: id.clone(), booth_scan: code.clone() }).await.expect("validate");
    wait_for(&mut client, &id, pb::DispenseStage::AwaitingAdministration).await;
    client.confirm_administration(pb::ConfirmAdministrationRequest { dispense_id: id.clone(), nurse_id: "N7".into(), ..Default::default() }).await.expect("administer");
    wait_for(&mut client, &id, pb::DispenseStage::Administered).await;

    let journal = assembled.dispatcher.journal();
    let trace = unit_trace(journal, &code).expect("journal").expect("known unit");
    assert_eq!(trace.state, "administered");
    let steps: Vec<&str> = trace.events.iter().map(|e| e.step.as_str()).collect();
    for step in ["stocked", "picked", "Pick", "frame", "Read", "Verify", "checks", "delivered", "administered"] {
        assert!(steps.contains(&step), "{step} missing from {steps:?}");
    }
    let frame = trace.events.iter().find(|e| e.step == "frame").expect("scan evidence");
    assert!(frame.detail.contains("fnv1a64:"), "the frame that read the code is fingerprinted: {}", frame.detail);
    let checks = trace.events.iter().find(|e| e.step == "checks").expect("verification evidence");
    assert!(checks.detail.contains("age") && checks.detail.contains("cold chain") && checks.detail.ends_with("all passed"), "{}", checks.detail);
    let stocked = steps.iter().position(|s| *s == "stocked").expect("stocked");
    let administered = steps.iter().rposition(|s| *s == "administered").expect("administered");
    assert!(stocked < administered, "in order");

    let patient = patient_trace(journal, "P0001").expect("journal");
    assert_eq!(patient.dispenses.len(), 1);
    assert_eq!(patient.dispenses[0].status.id, id);

    let status = journal.dispense(&id).expect("journal").expect("dispense");
    let catalog = controller::rules::catalog::Catalog::load(&dir.path().join("catalog.toml")).expect("catalog");
    let fhir = immunization(&status, &catalog).expect("administered");
    assert_eq!(fhir["resourceType"], "Immunization");
    assert_eq!(fhir["status"], "completed");
    assert_eq!(fhir["lotNumber"], "EARLY");
    assert_eq!(fhir["expirationDate"], "2027-03-31");
    assert_eq!(fhir["route"]["coding"][0]["code"], "IM");
    assert_eq!(fhir["site"]["text"], "deltoid");
    assert_eq!(fhir["doseQuantity"]["value"], 0.5);
    assert_eq!(fhir["performer"][0]["actor"]["reference"], "Practitioner/N7");
    assert_eq!(fhir["patient"]["reference"], "Patient/P0001");
    assert_eq!(fhir["protocolApplied"][0]["doseNumberPositiveInt"], 1);
    assert!(fhir["occurrenceDateTime"].is_string());

    // The same through the command line, reading the live journal (WAL readers).
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_workstation")).arg("trace").arg("--config").arg(dir.path().join("ws.toml")).args(args).output().expect("runs");
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (ok, csv, err) = run(&["--unit", &code, "--csv"]);
    assert!(ok, "{err}");
    assert!(csv.starts_with("seq,at,dispense_id,patient_ref,unit_code,kind,step,detail\r\n") && csv.contains(",administered,"), "{csv}");
    let (ok, json, err) = run(&["--fhir", &id]);
    assert!(ok, "{err}");
    let parsed: serde_json::Value = serde_json::from_str(&json).expect("FHIR JSON");
    assert_eq!(parsed["lotNumber"], "EARLY");
    let (ok, _, err) = run(&["--unit", "(01)06901234000016(21)NOPE"]);
    assert!(!ok && err.contains("not in the journal"), "{err}");
    let (ok, _, err) = run(&["--fhir", "D000099"]);
    assert!(!ok && err.contains("D000099"), "{err}");
}
