//! The clinic's services beyond starting a dispense, over a real socket on simulated
//! hardware: cancel while queued (and not after), stock queries and changes, traces
//! and the FHIR export, and the subscriptions (workstation state and faults, booths,
//! temperatures).

use dispense_proto::v1 as pb;
use futures::StreamExt;
use simulator::injection::Fault;
use std::time::Duration;
use tonic::Code;
use tonic_types::StatusExt;

mod common;
use common::{PHARMACIST, OBSERVER, order, serve_configured, start, wait_for};
use controller::journal::StepKind;

const SIMULATED: &str = "[hardware]\nkind = \"simulated\"\n[hardware.simulator]\nspeed = 40.0\nbooths = 4\n";

/// A wait that fails the test after 20 s.
fn within<F: std::future::Future>(f: F) -> tokio::time::Timeout<F> {
    tokio::time::timeout(Duration::from_secs(20), f)
}

fn reason(status: &tonic::Status) -> String {
    status.get_error_details().error_info().map(|i| i.reason.clone()).unwrap_or_default()
}

async fn in_store(stock: &mut pb::stock_service_client::StockServiceClient<dispense_proto::client::Authorized>) -> usize {
    let request = pb::ListStockRequest { state: pb::UnitState::InStore as i32, ..Default::default() };
    stock.list_stock(request).await.expect("list").into_inner().units.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_dispense_cancels_a_picked_one_does_not_and_the_dose_exports_as_fhir() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (assembled, address) = serve_configured(dir.path(), "", SIMULATED, "").await;
    let mut client = common::clinic_client(address).await;
    let mut stock = pb::stock_service_client::StockServiceClient::new(common::channel(address, PHARMACIST).await);
    let before = in_store(&mut stock).await;

    let first = start(&mut client, "c-1", order("HepB", 1)).await.dispense_id;
    wait_for(&mut client, &first, pb::DispenseStage::AwaitingValidation).await;
    // The next patient's unit comes to booth 1's gate and waits there; the one after is queued.
    let next = start(&mut client, "c-2", order("HepB", 1)).await.dispense_id;
    let at_gate = wait_for(&mut client, &next, pb::DispenseStage::ToBooth).await;
    assert!(at_gate.unit.is_some(), "{at_gate:?}");
    let second = start(&mut client, "c-3", order("HepB", 1)).await.dispense_id;
    let queued = client.get_dispense(pb::GetDispenseRequest { dispense_id: second.clone() }).await.expect("get").into_inner().dispense.expect("dispense");
    assert_eq!(queued.stage, pb::DispenseStage::Queued as i32, "booth 1 and its gate are taken: {queued:?}");

    let late = client.cancel_dispense(pb::CancelDispenseRequest { dispense_id: first.clone(), reason: "changed mind".into() }).await.expect_err("at the booth");
    assert_eq!((late.code(), reason(&late).as_str()), (Code::FailedPrecondition, "NOT_CANCELLABLE"));
    let no_reason = client.cancel_dispense(pb::CancelDispenseRequest { dispense_id: second.clone(), reason: " ".into() }).await.expect_err("reason required");
    assert_eq!(no_reason.get_error_details().bad_request().expect("BadRequest").field_violations[0].field, "reason");

    let cancelled = client.cancel_dispense(pb::CancelDispenseRequest { dispense_id: second.clone(), reason: "patient left".into() }).await.expect("cancel");
    let cancelled = cancelled.into_inner().dispense.expect("dispense");
    assert_eq!(cancelled.stage, pb::DispenseStage::Cancelled as i32);
    assert!(cancelled.finished && cancelled.unit.is_none(), "{cancelled:?}");
    assert!(cancelled.detail.contains("front-desk") && cancelled.detail.contains("patient left"), "{cancelled:?}");
    let again = client.cancel_dispense(pb::CancelDispenseRequest { dispense_id: second.clone(), reason: "twice".into() }).await.expect_err("already cancelled");
    assert_eq!(reason(&again), "NOT_CANCELLABLE");
    assert_eq!(in_store(&mut stock).await, before - 2, "the cancelled dispense took no unit");

    client.confirm_validation(pb::ConfirmValidationRequest { dispense_id: first.clone(), booth_scan: String::new() }).await.expect("validate");
    wait_for(&mut client, &first, pb::DispenseStage::AwaitingAdministration).await;
    let given = pb::ConfirmAdministrationRequest { dispense_id: first.clone(), nurse_id: "N1".into(), site: "left deltoid".into() };
    client.confirm_administration(given).await.expect("administer");
    wait_for(&mut client, &first, pb::DispenseStage::Administered).await;
    // Only now does the unit waiting at the gate drop into the tray.
    wait_for(&mut client, &next, pb::DispenseStage::AwaitingValidation).await;
    client.confirm_validation(pb::ConfirmValidationRequest { dispense_id: next.clone(), booth_scan: String::new() }).await.expect("validate");
    wait_for(&mut client, &next, pb::DispenseStage::AwaitingAdministration).await;
    let given_next = pb::ConfirmAdministrationRequest { dispense_id: next.clone(), nurse_id: "N1".into(), site: "right deltoid".into() };
    client.confirm_administration(given_next).await.expect("administer");
    wait_for(&mut client, &next, pb::DispenseStage::Administered).await;
    let queue = client.list_queue(pb::ListQueueRequest::default()).await.expect("queue").into_inner();
    assert!(queue.dispenses.is_empty(), "{queue:?}");

    let mut trace = pb::trace_service_client::TraceServiceClient::new(common::channel(address, common::CLINIC).await);
    let fhir = trace.export_immunization(pb::ExportImmunizationRequest { dispense_id: first.clone() }).await.expect("fhir").into_inner().fhir_json;
    let fhir: serde_json::Value = serde_json::from_str(&fhir).expect("JSON");
    assert_eq!(fhir["resourceType"], "Immunization");
    assert_eq!(fhir["site"]["text"], "left deltoid", "the site used, as the nurse reported it");
    assert_eq!(fhir["performer"][0]["actor"]["display"], "N1");
    let not_given = trace.export_immunization(pb::ExportImmunizationRequest { dispense_id: second.clone() }).await.expect_err("cancelled");
    assert_eq!(reason(&not_given), "NOT_ADMINISTERED");
    let patient = trace.get_patient_trace(pb::GetPatientTraceRequest { patient_id: "P0001".into() }).await.expect("patient").into_inner();
    assert_eq!(patient.dispenses.len(), 3);
    assert!(patient.dispenses[2].events.iter().any(|e| e.detail.contains("patient left")), "{:?}", patient.dispenses[2]);
    let recovered = assembled.dispatcher.journal().unfinished_dispenses().expect("journal");
    assert!(recovered.is_empty(), "a cancelled dispense is final for recovery too: {recovered:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_is_queried_stocked_held_released_counted_and_traced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (assembled, address) = serve_configured(dir.path(), "", SIMULATED, "").await;
    let mut stock = pb::stock_service_client::StockServiceClient::new(common::channel(address, PHARMACIST).await);
    let hepb = pb::ListStockRequest { product_id: "HepB".into(), state: pb::UnitState::InStore as i32, ..Default::default() };
    let units = stock.list_stock(hepb.clone()).await.expect("list").into_inner().units;
    assert_eq!(units.iter().map(|u| u.lot.as_str()).collect::<Vec<_>>(), ["EARLY", "EARLY", "LATE", "LATE"], "earliest expiry first");
    let page = stock.list_stock(pb::ListStockRequest { page_size: 3, ..hepb.clone() }).await.expect("page").into_inner();
    assert_eq!(page.units.len(), 3);
    assert!(!page.next_page_token.is_empty() && page.next_page_token.parse::<u64>().is_err(), "an opaque token, not an offset: {}", page.next_page_token);
    let rest = stock.list_stock(pb::ListStockRequest { page_token: page.next_page_token.clone(), page_size: 3, ..hepb.clone() }).await.expect("page").into_inner();
    assert_eq!((rest.units.len(), rest.next_page_token.as_str()), (1, ""));
    // The token belongs to the filter, not the page size (AIP-158): a larger page goes on from it.
    let larger = stock.list_stock(pb::ListStockRequest { page_token: page.next_page_token, page_size: 10, ..hepb.clone() }).await.expect("a larger page").into_inner();
    assert_eq!(larger.units.iter().map(|u| u.code.as_str()).collect::<Vec<_>>(), rest.units.iter().map(|u| u.code.as_str()).collect::<Vec<_>>());
    let bad = stock.list_stock(pb::ListStockRequest { product_id: "Nope".into(), ..Default::default() }).await.expect_err("unknown product");
    assert_eq!(bad.get_error_details().bad_request().expect("BadRequest").field_violations[0].field, "product_id");
    let bad = stock.list_stock(pb::ListStockRequest { expires_by: "soon".into(), ..Default::default() }).await.expect_err("bad date");
    assert!(bad.message().starts_with("expires_by"), "{bad:?}");

    let delivery = pb::StockInRequest {
        product_id: "HepB".into(),
        lot: "NEW1".into(),
        expiry: "2029-06-30".into(),
        arrival_celsius: Some(4.5),
        codes: vec!["(01)06901234000016(17)290630(10)NEW1(21)N0001".into(), "(01)06901234000016(17)290630(10)NEW1(21)N0002".into(), units[0].code.clone()],
        note: "DN-2026-11-24".into(),
    };
    let report = stock.stock_in(delivery).await.expect("stock-in").into_inner();
    assert_eq!(report.accepted.len(), 2, "{report:?}");
    assert_eq!(report.refused.len(), 1);
    assert!(report.refused[0].reason.contains("duplicate"), "{report:?}");
    let new = report.accepted[0].code.clone();
    // The crew puts each accepted unit in the slot stock-in gave it.
    let sim = assembled.simulator.clone().expect("simulated");
    for unit in &report.accepted {
        sim.inject(&Fault::Place(unit.slot.parse().expect("slot"), unit.code.clone())).expect("placed");
    }

    stock.quarantine_unit(pb::QuarantineUnitRequest { code: new.clone(), reason: "cracked cap".into() }).await.expect("quarantine");
    let held = stock.list_stock(pb::ListStockRequest { held_only: true, ..Default::default() }).await.expect("held").into_inner().units;
    assert_eq!(held.len(), 1);
    assert_eq!((held[0].hold, held[0].hold_reason.as_str()), (pb::HoldKind::Quarantined as i32, "cracked cap"));
    stock.release_hold(pb::ReleaseHoldRequest { code: new.clone(), reason: "cap intact on inspection".into() }).await.expect("release");
    let missing = stock.release_hold(pb::ReleaseHoldRequest { code: new.clone(), reason: "again".into() }).await.expect_err("not held");
    assert_eq!(missing.code(), Code::NotFound);

    let count = stock.count_stock(pb::CountStockRequest { warn_days: 0 }).await.expect("count").into_inner();
    assert_eq!(count.in_journal, 7, "{count:?}");
    assert_eq!(count.occupied, 7, "the sensors agree with the journal: {count:?}");
    assert!(count.discrepancies.is_empty());

    let mut trace = pb::trace_service_client::TraceServiceClient::new(common::channel(address, PHARMACIST).await);
    let unit = trace.get_unit_trace(pb::GetUnitTraceRequest { code: new.clone() }).await.expect("trace").into_inner();
    assert_eq!(unit.unit.expect("unit").product_id, "HepB");
    let steps: Vec<&str> = unit.events.iter().map(|e| e.step.as_str()).collect();
    assert!(steps.contains(&"stocked") && steps.contains(&"quarantined"), "{steps:?}");
    assert!(unit.events.iter().any(|e| e.detail.contains("pharmacy")), "the actor is on the record");
    let garbled = trace.get_unit_trace(pb::GetUnitTraceRequest { code: "(01)123".into() }).await.expect_err("garbled");
    assert_eq!(garbled.code(), Code::InvalidArgument);
    let unknown = trace.get_unit_trace(pb::GetUnitTraceRequest { code: "(01)06901234000016(17)290630(10)X(21)NOPE".into() }).await.expect_err("unknown");
    assert_eq!(unknown.code(), Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_follow_state_faults_booths_and_temperatures() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hardware = format!("{SIMULATED}[coldchain]\nsample_s = 0.2\n");
    let (assembled, address) = serve_configured(dir.path(), "", &hardware, "").await;
    let sim = assembled.simulator.clone().expect("simulated");
    let mut monitoring = pb::monitoring_service_client::MonitoringServiceClient::new(common::channel(address, OBSERVER).await);
    let mut states = monitoring.watch_workstation(pb::WatchWorkstationRequest {}).await.expect("watch").into_inner();
    let mut booths = monitoring.watch_booths(pb::WatchBoothsRequest {}).await.expect("booths").into_inner();
    let mut temperatures = monitoring.watch_temperatures(pb::WatchTemperaturesRequest {}).await.expect("temps").into_inner();

    let first = states.message().await.expect("stream").expect("picture");
    assert_eq!(first.state, pb::WorkstationState::Ready as i32, "{first:?}");

    let mut client = common::clinic_client(address).await;
    let id = start(&mut client, "s-1", order("HepB", 2)).await.dispense_id;
    within(async {
        while let Some(p) = states.next().await {
            let p = p.expect("picture");
            if p.state == pb::WorkstationState::Dispensing as i32 && p.in_flight == 1 {
                return;
            }
        }
    })
    .await
    .expect("dispensing seen");
    let holder = within(async {
        while let Some(b) = booths.next().await {
            let b = b.expect("booths");
            assert_eq!(b.booths.len(), 4);
            if let Some(two) = b.booths.iter().find(|x| x.booth == 2 && x.stage == pb::DispenseStage::AwaitingValidation as i32) {
                return two.clone();
            }
        }
        panic!("booth stream ended");
    })
    .await
    .expect("booth 2 at validation");
    // A wall screen (observer) sees whom by pseudonym only.
    assert_eq!((holder.dispense_id.as_str(), holder.patient_name.as_str()), (id.as_str(), ""));
    assert!(holder.patient_ref.starts_with("pt-") && holder.patient_ref.len() == 15, "{holder:?}");

    let sample = within(temperatures.next()).await.expect("in time").expect("sample").expect("ok");
    assert_eq!(sample.readings.len(), 3, "{sample:?}");
    let cabinet = sample.readings.iter().find(|r| r.probe == "cabinet-a").and_then(|r| r.celsius).expect("cabinet-a read");
    assert!((2.0..8.0).contains(&cabinet), "{cabinet}");
    assert_eq!((sample.low_alarm_celsius, sample.high_alarm_celsius), (-0.5, 8.0));

    sim.inject(&Fault::Door(true)).expect("door");
    let fault = within(async {
        while let Some(p) = states.next().await {
            if let Some(f) = p.expect("picture").faults.into_iter().find(|f| f.id == "WS-INTERLOCK@interlocks") {
                return f;
            }
        }
        panic!("state stream ended");
    })
    .await
    .expect("interlock fault raised");
    assert!(fault.detail.contains("restock door") && !fault.remedy.is_empty(), "{fault:?}");
    sim.inject(&Fault::Door(false)).expect("door");
    within(async {
        while let Some(p) = states.next().await {
            if p.expect("picture").faults.iter().all(|f| f.id != "WS-INTERLOCK@interlocks") {
                return;
            }
        }
    })
    .await
    .expect("interlock fault cleared when the door closed");
    wait_for(&mut client, &id, pb::DispenseStage::AwaitingValidation).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forced_maintenance_holds_units_in_flight_until_it_ends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (assembled, address) = serve_configured(dir.path(), "", SIMULATED, "").await;
    let mut client = common::clinic_client(address).await;
    let mut maintenance = pb::maintenance_service_client::MaintenanceServiceClient::new(common::channel(address, common::MAINTENANCE).await);
    let id = start(&mut client, "f-1", order("HepB", 3)).await.dispense_id;
    wait_for(&mut client, &id, pb::DispenseStage::OnBelt).await;
    let refused = maintenance.enter_maintenance(pb::EnterMaintenanceRequest { reason: "belt check".into(), ..Default::default() }).await.expect_err("unit in flight");
    assert_eq!(reason(&refused), "WRONG_WORKSTATION_STATE");
    let forced = pb::EnterMaintenanceRequest { reason: "smoke from the belt motor".into(), force: true, timeout: Some(prost_types::Duration { seconds: 60, nanos: 0 }) };
    maintenance.enter_maintenance(forced).await.expect("forced");
    let motions = assembled.simulator.as_ref().expect("sim").motions_started();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let held = client.get_dispense(pb::GetDispenseRequest { dispense_id: id.clone() }).await.expect("get").into_inner().dispense.expect("dispense");
    assert!(!held.finished, "{held:?}");
    assert!(assembled.simulator.as_ref().expect("sim").motions_started() <= motions + 1, "no new motion in maintenance (one may have been under way)");
    let new_order = client.start_dispense(pb::StartDispenseRequest { request_id: "f-2".into(), order: Some(order("HepB", 1)) }).await.expect_err("no orders");
    assert_eq!(reason(&new_order), "WORKSTATION_NOT_READY");
    let back = maintenance.exit_maintenance(pb::ExitMaintenanceRequest {}).await.expect("exit").into_inner();
    assert_eq!(back.state, pb::WorkstationState::Dispensing as i32);
    let done = wait_for(&mut client, &id, pb::DispenseStage::AwaitingValidation).await;
    assert_eq!(done.stage, pb::DispenseStage::AwaitingValidation as i32, "{done:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unit_recalled_while_it_waits_at_the_booth_is_never_given() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (assembled, address) = serve_configured(dir.path(), "", SIMULATED, "").await;
    let mut client = common::clinic_client(address).await;
    let id = start(&mut client, "h-1", order("HepB", 2)).await.dispense_id;
    let at_booth = wait_for(&mut client, &id, pb::DispenseStage::AwaitingValidation).await;
    let lot = at_booth.unit.expect("unit").lot;
    let mut stock = pb::stock_service_client::StockServiceClient::new(common::channel(address, PHARMACIST).await);
    stock.recall_batch(pb::RecallBatchRequest { lot: lot.clone(), reason: "recall notice 99".into(), ..Default::default() }).await.expect("recall");

    let refused = client.confirm_validation(pb::ConfirmValidationRequest { dispense_id: id.clone(), booth_scan: String::new() }).await;
    if let Err(refused) = refused {
        // The clinic is told at once, unless the runner was quicker and already rejected it.
        assert!(matches!(reason(&refused).as_str(), "UNIT_HELD" | "WRONG_STAGE"), "{refused:?}");
    }
    let done = wait_for(&mut client, &id, pb::DispenseStage::Rejected).await;
    assert_eq!(done.stage, pb::DispenseStage::Rejected as i32, "{done:?}");
    assert!(done.violations.iter().any(|v| v.id == "Recalled"), "{done:?}");
    let sim = assembled.simulator.clone().expect("simulated");
    // The booth no longer offers the unit: it says not to give it (H-02).
    let display = sim.booth_display(hal::BoothId(2)).expect("a warning");
    assert!(display.product_name.starts_with("DO NOT GIVE") && display.lot.is_empty(), "{display:?}");
    let record = assembled.dispatcher.journal().stock_record(&done.unit.expect("unit").code).expect("journal").expect("record");
    assert_eq!(record.state, controller::rules::inventory::UnitState::Rejected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unit_quarantined_while_it_waits_at_the_gate_goes_to_the_bin_not_the_tray() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (assembled, address) = serve_configured(dir.path(), "", SIMULATED, "").await;
    let sim = assembled.simulator.clone().expect("simulated");
    let mut client = common::clinic_client(address).await;
    let first = start(&mut client, "g-1", order("HepB", 3)).await.dispense_id;
    wait_for(&mut client, &first, pb::DispenseStage::AwaitingValidation).await;
    let next = start(&mut client, "g-2", order("HepB", 3)).await.dispense_id;
    let code = wait_for(&mut client, &next, pb::DispenseStage::ToBooth).await.unit.expect("unit").code;
    // Wait until it has reached the gate (the simulator's belt table says so).
    within(async {
        while !sim.devices().conveyor.units_on_belt().await.expect("belt").iter().any(|(_, at)| *at == hal::Station::Gate(hal::BoothId(3))) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the unit reached booth 3's gate");
    let mut stock = pb::stock_service_client::StockServiceClient::new(common::channel(address, PHARMACIST).await);
    stock.quarantine_unit(pb::QuarantineUnitRequest { code: code.clone(), reason: "vial reported cracked".into() }).await.expect("quarantine");

    client.confirm_validation(pb::ConfirmValidationRequest { dispense_id: first.clone(), booth_scan: String::new() }).await.expect("validate");
    wait_for(&mut client, &first, pb::DispenseStage::AwaitingAdministration).await;
    client.confirm_administration(pb::ConfirmAdministrationRequest { dispense_id: first.clone(), nurse_id: "N3".into(), ..Default::default() }).await.expect("administer");
    let refused = wait_for(&mut client, &next, pb::DispenseStage::Rejected).await;
    assert_eq!(refused.stage, pb::DispenseStage::Rejected as i32, "{refused:?}");
    assert!(refused.booth_arrival_time.is_none() && refused.violations.iter().any(|v| v.id == "Quarantined"), "{refused:?}");
    assert_eq!(sim.deliveries().len(), 1, "only the first unit reached the tray");
    assert_eq!(sim.reject_bin().len(), 1, "the quarantined unit rejoined the belt to the bin");
    let journal = assembled.dispatcher.journal();
    assert!(journal.entries(&next).expect("journal").iter().any(|e| e.kind == StepKind::Evidence && e.detail.contains("checked again at the gate: Quarantined")));
}
