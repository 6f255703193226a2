//! Bad input never panics the server: property tests send requests with arbitrary
//! field values (any text, any number, NaN, huge, negative, malformed dates and
//! codes) to the validating methods of every service over a real socket. Every
//! answer must be a defined status (never INTERNAL or UNKNOWN, which a panicking
//! handler or an unchecked path would give); every INVALID_ARGUMENT names its field;
//! and the server still answers afterwards. Fixed seed, so a failure repeats.

use dispense_proto::v1 as pb;
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, RngAlgorithm, TestRng, TestRunner};
use tonic::Code;
use tonic_types::StatusExt;

mod common;
use common::{CLINIC, MAINTENANCE, PHARMACIST, serve_configured};

const SIMULATED: &str = "[hardware]\nkind = \"simulated\"\n[hardware.simulator]\nspeed = 40.0\nbooths = 4\n";
const GENEROUS: &str = "[server.limits]\nrequests_per_s = 100000.0\nburst = 100000.0\n";

/// Text a careless or hostile client might send.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("HepB".to_owned()),
        Just("2024-02-30".to_owned()),
        Just("(01)06901234000016(17)270331(10)EARLY(21)HE0001".to_owned()),
        Just("\u{0}\u{1d}]d2".to_owned()),
        "[0-9]{1,25}",
        ".{0,40}",
        proptest::collection::vec(any::<char>(), 0..300).prop_map(|c| c.into_iter().collect()),
    ]
}

fn date() -> impl Strategy<Value = String> {
    prop_oneof![(1900i32..2100, 1u32..13, 1u32..29).prop_map(|(y, m, d)| format!("{y:04}-{m:02}-{d:02}")), text()]
}

fn order() -> impl Strategy<Value = pb::PatientOrder> {
    let history = proptest::collection::vec((text(), any::<u32>(), date()).prop_map(|(product_id, dose_number, date)| pb::PriorDose { product_id, dose_number, date }), 0..4);
    (text(), text(), prop_oneof![Just("HepB".to_owned()), text()], prop_oneof![0u32..6, any::<u32>()], any::<u32>(), date(), (text(), any::<f64>(), text(), text(), any::<bool>()), history).prop_map(
        |(patient_id, patient_name, product_id, booth, dose_number, birth_date, (specification, dose_ml, route, site, attested), history)| pb::PatientOrder {
            patient_id,
            patient_name,
            product_id,
            booth,
            dose_number,
            birth_date,
            specification,
            dose_ml,
            route,
            site,
            health_check_attested: attested,
            history,
        },
    )
}

/// One arbitrary request to one of the validating methods.
#[derive(Debug, Clone)]
enum Call {
    Start(pb::StartDispenseRequest),
    Cancel(pb::CancelDispenseRequest),
    Validate(pb::ConfirmValidationRequest),
    Administer(pb::ConfirmAdministrationRequest),
    ListStock(pb::ListStockRequest),
    StockIn(pb::StockInRequest),
    Recall(pb::RecallBatchRequest),
    UnitTrace(pb::GetUnitTraceRequest),
    Jog(pb::JogRequest),
    Registers(pb::ReadRegistersRequest),
    Maintenance(pb::EnterMaintenanceRequest),
}

fn call() -> impl Strategy<Value = Call> {
    prop_oneof![
        (text(), proptest::option::of(order())).prop_map(|(request_id, order)| Call::Start(pb::StartDispenseRequest { request_id, order })),
        (text(), text()).prop_map(|(dispense_id, reason)| Call::Cancel(pb::CancelDispenseRequest { dispense_id, reason })),
        (text(), text()).prop_map(|(dispense_id, booth_scan)| Call::Validate(pb::ConfirmValidationRequest { dispense_id, booth_scan })),
        (text(), text(), text()).prop_map(|(dispense_id, nurse_id, site)| Call::Administer(pb::ConfirmAdministrationRequest { dispense_id, nurse_id, site })),
        (text(), text(), date(), any::<i32>(), any::<bool>(), any::<u32>(), text()).prop_map(|(product_id, lot, expires_by, state, held_only, page_size, page_token)| {
            Call::ListStock(pb::ListStockRequest { product_id, lot, expires_by, state, held_only, page_size, page_token })
        }),
        (text(), text(), date(), proptest::option::of(any::<f64>()), proptest::collection::vec(text(), 0..6), text()).prop_map(|(product_id, lot, expiry, arrival_celsius, codes, note)| {
            Call::StockIn(pb::StockInRequest { product_id, lot, expiry, arrival_celsius, codes, note })
        }),
        (text(), text(), text()).prop_map(|(gtin, lot, reason)| Call::Recall(pb::RecallBatchRequest { gtin, lot, reason })),
        text().prop_map(|code| Call::UnitTrace(pb::GetUnitTraceRequest { code })),
        (any::<i32>(), any::<i32>()).prop_map(|(axis, distance_mm)| Call::Jog(pb::JogRequest { axis, distance_mm })),
        (text(), any::<i32>(), any::<u32>(), any::<u32>()).prop_map(|(device, table, address, count)| Call::Registers(pb::ReadRegistersRequest { device, table, address, count })),
        (text(), any::<u32>(), any::<bool>()).prop_map(|(reason, timeout_s, force)| Call::Maintenance(pb::EnterMaintenanceRequest { reason, timeout_s, force })),
    ]
}

#[derive(Clone)]
struct Clients {
    dispensing: pb::dispensing_service_client::DispensingServiceClient<dispense_proto::client::Authorized>,
    stock: pb::stock_service_client::StockServiceClient<dispense_proto::client::Authorized>,
    trace: pb::trace_service_client::TraceServiceClient<dispense_proto::client::Authorized>,
    maintenance: pb::maintenance_service_client::MaintenanceServiceClient<dispense_proto::client::Authorized>,
}

impl Clients {
    async fn send(&mut self, call: Call) -> Result<(), tonic::Status> {
        match call {
            Call::Start(r) => self.dispensing.start_dispense(r).await.map(drop),
            Call::Cancel(r) => self.dispensing.cancel_dispense(r).await.map(drop),
            Call::Validate(r) => self.dispensing.confirm_validation(r).await.map(drop),
            Call::Administer(r) => self.dispensing.confirm_administration(r).await.map(drop),
            Call::ListStock(r) => self.stock.list_stock(r).await.map(drop),
            Call::StockIn(r) => self.stock.stock_in(r).await.map(drop),
            Call::Recall(r) => self.stock.recall_batch(r).await.map(drop),
            Call::UnitTrace(r) => self.trace.get_unit_trace(r).await.map(drop),
            Call::Jog(r) => self.maintenance.jog(r).await.map(drop),
            Call::Registers(r) => self.maintenance.read_registers(r).await.map(drop),
            Call::Maintenance(r) => {
                let entered = self.maintenance.enter_maintenance(r).await.map(drop);
                // Leave again, so the next orders are judged on their content.
                let _ = self.maintenance.exit_maintenance(pb::ExitMaintenanceRequest {}).await;
                entered
            }
        }
    }
}

#[test]
fn arbitrary_requests_get_defined_answers_and_never_break_the_server() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let clients = runtime.block_on(async {
        let (_assembled, address) = serve_configured(dir.path(), GENEROUS, SIMULATED, "").await;
        Clients {
            dispensing: pb::dispensing_service_client::DispensingServiceClient::new(common::channel(address, CLINIC).await),
            stock: pb::stock_service_client::StockServiceClient::new(common::channel(address, PHARMACIST).await),
            trace: pb::trace_service_client::TraceServiceClient::new(common::channel(address, CLINIC).await),
            maintenance: pb::maintenance_service_client::MaintenanceServiceClient::new(common::channel(address, MAINTENANCE).await),
        }
    });
    let config = RunnerConfig { cases: 600, failure_persistence: None, ..RunnerConfig::default() };
    let mut runner = TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]));
    let seen = std::cell::RefCell::new(std::collections::BTreeMap::<String, usize>::new());
    runner
        .run(&call(), |call| {
            let shown = format!("{call:?}");
            let answer = runtime.block_on(clients.clone().send(call));
            let code = answer.as_ref().err().map_or(Code::Ok, |s| s.code());
            *seen.borrow_mut().entry(format!("{code:?}")).or_default() += 1;
            if let Err(status) = &answer {
                prop_assert!(!matches!(status.code(), Code::Internal | Code::Unknown | Code::Unavailable | Code::Cancelled), "{shown} -> {status:?}");
                if status.code() == Code::InvalidArgument {
                    let named = status.get_error_details().bad_request().is_some_and(|b| !b.field_violations.is_empty());
                    prop_assert!(named, "INVALID_ARGUMENT without a field: {shown} -> {status:?}");
                }
            }
            Ok(())
        })
        .expect("every request answered with a defined status");
    // The server is still there and sane.
    runtime.block_on(clients.clone().dispensing.list_queue(pb::ListQueueRequest {})).expect("still serving");
    let seen = seen.into_inner();
    assert!(seen.get("InvalidArgument").copied().unwrap_or(0) > 100, "the generator reaches validation: {seen:?}");
    eprintln!("answers: {seen:?}");
}
