//! Who sees patients, over a real socket: every method of the role matrix called
//! by every role allowed to call it, against a workstation holding one patient's
//! unit at a booth and another patient's order refused on their dose history. The
//! answers to observer and maintenance callers must hold no patient's id, name,
//! birth date or history (not even in a violation's text or an exported journal
//! line), only the pseudonymous reference; the answers to clinic and pharmacist
//! callers carry the identity where the method is about patients (so the test can
//! tell the two apart).

use controller::api::auth::roles::{MATRIX, Role};
use dispense_proto::client::Authorized;
use dispense_proto::v1 as pb;
use std::time::Duration;

mod common;
use common::{CLINIC, MAINTENANCE, OBSERVER, PHARMACIST};

const SIMULATED: &str = "[hardware]\nkind = \"simulated\"\n[hardware.simulator]\nspeed = 40.0\nbooths = 4\n";
const NAME: &str = "Zhao Wenjing-Privacy";
const PATIENT: &str = "PID-77310042";
const OTHER_NAME: &str = "Qian Lei-Privacy";
const OTHER: &str = "PID-55120977";
/// What the refused order's violation says about the patient's history.
const HISTORY_TEXT: &str = "history has";

/// What a test needs to address the patients' records.
struct Known {
    given: String,
    refused: String,
    unit_code: String,
    birth_date: String,
}

/// One bounded look at a server stream: its messages for a moment, or its error.
async fn drain<T: std::fmt::Debug>(answer: Result<tonic::Response<tonic::Streaming<T>>, tonic::Status>) -> String {
    let mut stream = match answer {
        Ok(s) => s.into_inner(),
        Err(e) => return format!("{e:?}"),
    };
    let mut seen = String::new();
    while let Ok(Ok(Some(message))) = tokio::time::timeout(Duration::from_millis(300), stream.message()).await {
        seen.push_str(&format!("{message:?}\n"));
        if seen.len() > 4 << 20 {
            break;
        }
    }
    seen
}

fn shown<T: std::fmt::Debug>(answer: Result<tonic::Response<T>, tonic::Status>) -> String {
    match answer {
        Ok(r) => format!("{:?}", r.into_inner()),
        Err(e) => format!("{e:?}"),
    }
}

/// Everything `method` answers a caller on `channel`, as text.
async fn answer(method: &str, channel: Authorized, known: &Known) -> String {
    let mut dispensing = pb::dispensing_service_client::DispensingServiceClient::new(channel.clone());
    let mut stock = pb::stock_service_client::StockServiceClient::new(channel.clone());
    let mut trace = pb::trace_service_client::TraceServiceClient::new(channel.clone());
    let mut monitoring = pb::monitoring_service_client::MonitoringServiceClient::new(channel.clone());
    let mut maintenance = pb::maintenance_service_client::MaintenanceServiceClient::new(channel);
    let ids = [known.given.clone(), known.refused.clone()];
    let name = method.rsplit('/').next().unwrap_or_default();
    let mut out = String::new();
    match name {
        "StartDispense" => out += &shown(dispensing.start_dispense(pb::StartDispenseRequest::default()).await),
        "CancelDispense" => out += &shown(dispensing.cancel_dispense(pb::CancelDispenseRequest { dispense_id: known.refused.clone(), reason: "x".into() }).await),
        "ConfirmValidation" => out += &shown(dispensing.confirm_validation(pb::ConfirmValidationRequest { dispense_id: known.refused.clone(), ..Default::default() }).await),
        "ConfirmAdministration" => out += &shown(dispensing.confirm_administration(pb::ConfirmAdministrationRequest { dispense_id: known.refused.clone(), nurse_id: "N1".into(), ..Default::default() }).await),
        "GetDispense" => {
            for id in &ids {
                out += &shown(dispensing.get_dispense(pb::GetDispenseRequest { dispense_id: id.clone() }).await);
            }
        }
        "WatchDispense" => {
            for id in &ids {
                out += &drain(dispensing.watch_dispense(pb::WatchDispenseRequest { dispense_id: id.clone() }).await).await;
            }
        }
        "ListQueue" => out += &shown(dispensing.list_queue(pb::ListQueueRequest::default()).await),
        "ListStock" => out += &shown(stock.list_stock(pb::ListStockRequest::default()).await),
        "CountStock" => out += &shown(stock.count_stock(pb::CountStockRequest::default()).await),
        "StockIn" => out += &shown(stock.stock_in(pb::StockInRequest::default()).await),
        "RecallBatch" => out += &shown(stock.recall_batch(pb::RecallBatchRequest::default()).await),
        "QuarantineUnit" => out += &shown(stock.quarantine_unit(pb::QuarantineUnitRequest::default()).await),
        "ReleaseHold" => out += &shown(stock.release_hold(pb::ReleaseHoldRequest::default()).await),
        "GetUnitTrace" => out += &shown(trace.get_unit_trace(pb::GetUnitTraceRequest { code: known.unit_code.clone() }).await),
        "GetPatientTrace" => {
            for patient in [PATIENT, OTHER] {
                out += &shown(trace.get_patient_trace(pb::GetPatientTraceRequest { patient_id: patient.into() }).await);
            }
        }
        "ExportImmunization" => out += &shown(trace.export_immunization(pb::ExportImmunizationRequest { dispense_id: known.given.clone() }).await),
        "WatchWorkstation" => out += &drain(monitoring.watch_workstation(pb::WatchWorkstationRequest {}).await).await,
        "WatchTemperatures" => out += &drain(monitoring.watch_temperatures(pb::WatchTemperaturesRequest {}).await).await,
        "WatchBooths" => out += &drain(monitoring.watch_booths(pb::WatchBoothsRequest {}).await).await,
        "ListTemperatures" => out += &shown(monitoring.list_temperatures(pb::ListTemperaturesRequest::default()).await),
        "GetStatus" => out += &shown(maintenance.get_status(pb::GetStatusRequest {}).await),
        "ListFaults" => out += &shown(maintenance.list_faults(pb::ListFaultsRequest { include_past: true, ..Default::default() }).await),
        "ClearFault" => out += &shown(maintenance.clear_fault(pb::ClearFaultRequest::default()).await),
        // Without force, and with a unit in flight, this is refused: nothing moves.
        "EnterMaintenance" => out += &shown(maintenance.enter_maintenance(pb::EnterMaintenanceRequest { reason: "look".into(), ..Default::default() }).await),
        "ExitMaintenance" => out += &shown(maintenance.exit_maintenance(pb::ExitMaintenanceRequest {}).await),
        "Home" => out += &shown(maintenance.home(pb::HomeRequest {}).await),
        "Jog" => out += &shown(maintenance.jog(pb::JogRequest::default()).await),
        "SelfTest" => out += &drain(maintenance.self_test(pb::SelfTestRequest {}).await).await,
        "ReadRegisters" => out += &shown(maintenance.read_registers(pb::ReadRegistersRequest::default()).await),
        "CameraSnapshot" => out += &shown(maintenance.camera_snapshot(pb::CameraSnapshotRequest {}).await),
        "ExportLogs" => {
            let text = drain(maintenance.export_logs(pb::ExportLogsRequest::default()).await).await;
            // The export's bytes are shown by Debug as numbers: decode them.
            let mut stream = maintenance.export_logs(pb::ExportLogsRequest::default()).await.expect("export").into_inner();
            let mut bytes = Vec::new();
            while let Some(chunk) = stream.message().await.expect("chunk") {
                bytes.extend(chunk.data);
            }
            out += &text;
            out += &String::from_utf8_lossy(&bytes);
        }
        other => panic!("the privacy test does not know {other}: add it"),
    }
    out
}

/// Methods whose answers are about patients: a caller who may see patients finds them there.
const ABOUT_PATIENTS: &[&str] = &["GetDispense", "WatchDispense", "ListQueue", "GetPatientTrace", "WatchBooths"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_method_shows_patients_only_to_clinic_and_pharmacist() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_assembled, address) = common::serve_configured(dir.path(), "", SIMULATED, "").await;
    let mut clinic = common::clinic_client(address).await;
    let born = chrono::Utc::now().date_naive() - chrono::Duration::days(300);
    let history = vec![pb::PriorDose { product_id: "HepB".into(), dose_number: 1, date: (born + chrono::Duration::days(1)).to_string() }];
    let given = pb::PatientOrder { patient_id: PATIENT.into(), patient_name: NAME.into(), dose_number: 2, history, ..common::order("HepB", 2) };
    let given = common::start(&mut clinic, "privacy-1", given).await.dispense_id;
    let at_booth = common::wait_for(&mut clinic, &given, pb::DispenseStage::AwaitingValidation).await;
    assert_eq!(at_booth.stage(), pb::DispenseStage::AwaitingValidation, "{at_booth:?}");
    // Dose 3 with no history: refused on the patient's own history.
    let refused = pb::PatientOrder { patient_id: OTHER.into(), patient_name: OTHER_NAME.into(), dose_number: 3, ..common::order("HepB", 3) };
    let refused = common::start(&mut clinic, "privacy-2", refused).await.dispense_id;
    let refused_end = common::wait_for(&mut clinic, &refused, pb::DispenseStage::Rejected).await;
    assert!(refused_end.violations.iter().any(|v| v.message.contains(HISTORY_TEXT)), "the clinic sees why: {refused_end:?}");
    let known = Known { given, refused, unit_code: at_booth.unit.expect("unit").code, birth_date: born.to_string() };

    let tokens = [(Role::Clinic, CLINIC), (Role::Pharmacist, PHARMACIST), (Role::Maintenance, MAINTENANCE), (Role::Observer, OBSERVER)];
    let secrets = [NAME, PATIENT, OTHER_NAME, OTHER, known.birth_date.as_str(), HISTORY_TEXT];
    let mut cells = 0;
    for (method, allowed) in MATRIX {
        for (role, token) in tokens.iter().filter(|(role, _)| allowed.contains(role)) {
            let text = answer(method, common::channel(address, token).await, &known).await;
            let sees_patients = matches!(role, Role::Clinic | Role::Pharmacist);
            if sees_patients {
                let name = method.rsplit('/').next().unwrap_or_default();
                if ABOUT_PATIENTS.contains(&name) {
                    assert!(text.contains(NAME), "{role} calling {method} sees the patient: {text}");
                }
            } else {
                if method.ends_with("/GetDispense") || method.ends_with("/WatchBooths") {
                    assert!(text.contains("pt-"), "{role} calling {method} tells patients apart by reference: {text}");
                }
                for secret in secrets {
                    assert!(!text.contains(secret), "{role} calling {method} saw {secret:?}: {text}");
                }
            }
            cells += 1;
        }
    }
    eprintln!("privacy matrix: {cells} method-role cells checked");
    assert_eq!(cells, MATRIX.iter().map(|(_, roles)| roles.len()).sum::<usize>());
}
