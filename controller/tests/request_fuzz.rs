//! Bad input never panics the server: property tests send requests with arbitrary
//! field values (any text, any number, NaN, huge, negative, malformed dates and
//! codes, times and durations at and beyond protobuf's limits, page sizes and
//! tokens of every kind) to every method of the contract over a real socket (the
//! test fails if one of the role matrix's methods was never reached). Every
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
            patient_ref: String::new(),
        },
    )
}

/// A time anywhere protobuf can carry one, and beyond (nanos out of range).
fn time() -> impl Strategy<Value = Option<prost_types::Timestamp>> {
    let (earliest, latest) = (chrono::DateTime::<chrono::Utc>::MIN_UTC.timestamp(), chrono::DateTime::<chrono::Utc>::MAX_UTC.timestamp());
    // The ends of what the server's time type holds, where a day's arithmetic overflows.
    let extreme = prop_oneof![Just(i64::MIN), Just(i64::MAX), Just(earliest), earliest..earliest + 86_400 * 2, Just(latest), latest - 86_400 * 2..=latest, Just(-62_135_596_800), Just(253_402_300_799), Just(0), any::<i64>(), 1_600_000_000i64..1_900_000_000];
    let nanos = prop_oneof![Just(0), Just(-1), Just(999_999_999), Just(1_000_000_000), any::<i32>()];
    proptest::option::of((extreme, nanos).prop_map(|(seconds, nanos)| prost_types::Timestamp { seconds, nanos }))
}

fn duration() -> impl Strategy<Value = Option<prost_types::Duration>> {
    let seconds = prop_oneof![Just(i64::MIN), Just(i64::MAX), Just(-1), Just(0), Just(1), Just(60), Just(14_400), Just(14_401), any::<i64>()];
    let nanos = prop_oneof![Just(0), Just(-1), Just(1_000_000_000), any::<i32>()];
    proptest::option::of((seconds, nanos).prop_map(|(seconds, nanos)| prost_types::Duration { seconds, nanos }))
}

fn size() -> impl Strategy<Value = i32> {
    prop_oneof![Just(0), Just(1), Just(-1), Just(i32::MIN), Just(i32::MAX), any::<i32>()]
}

/// One arbitrary request to any method of the contract (the test checks that
/// every method of the role matrix is reached).
#[derive(Debug, Clone)]
enum Call {
    Start(pb::StartDispenseRequest),
    Cancel(pb::CancelDispenseRequest),
    Validate(pb::ConfirmValidationRequest),
    Administer(pb::ConfirmAdministrationRequest),
    GetDispense(pb::GetDispenseRequest),
    WatchDispense(pb::WatchDispenseRequest),
    ListQueue(pb::ListQueueRequest),
    ListStock(pb::ListStockRequest),
    CountStock(pb::CountStockRequest),
    StockIn(pb::StockInRequest),
    Recall(pb::RecallBatchRequest),
    Quarantine(pb::QuarantineUnitRequest),
    Release(pb::ReleaseHoldRequest),
    UnitTrace(pb::GetUnitTraceRequest),
    PatientTrace(pb::GetPatientTraceRequest),
    Immunization(pb::ExportImmunizationRequest),
    WatchWorkstation,
    WatchTemperatures,
    WatchBooths,
    ListTemperatures(pb::ListTemperaturesRequest),
    GetStatus,
    ListFaults(pb::ListFaultsRequest),
    ClearFault(pb::ClearFaultRequest),
    Maintenance(pb::EnterMaintenanceRequest),
    ExitMaintenance,
    Home,
    Jog(pb::JogRequest),
    SelfTest,
    Registers(pb::ReadRegistersRequest),
    Snapshot,
    ExportLogs(pb::ExportLogsRequest),
}

impl Call {
    /// The method the call reaches, as the role matrix names it.
    fn method(&self) -> &'static str {
        match self {
            Call::Start(_) => "dispense.v1.DispensingService/StartDispense",
            Call::Cancel(_) => "dispense.v1.DispensingService/CancelDispense",
            Call::Validate(_) => "dispense.v1.DispensingService/ConfirmValidation",
            Call::Administer(_) => "dispense.v1.DispensingService/ConfirmAdministration",
            Call::GetDispense(_) => "dispense.v1.DispensingService/GetDispense",
            Call::WatchDispense(_) => "dispense.v1.DispensingService/WatchDispense",
            Call::ListQueue(_) => "dispense.v1.DispensingService/ListQueue",
            Call::ListStock(_) => "dispense.v1.StockService/ListStock",
            Call::CountStock(_) => "dispense.v1.StockService/CountStock",
            Call::StockIn(_) => "dispense.v1.StockService/StockIn",
            Call::Recall(_) => "dispense.v1.StockService/RecallBatch",
            Call::Quarantine(_) => "dispense.v1.StockService/QuarantineUnit",
            Call::Release(_) => "dispense.v1.StockService/ReleaseHold",
            Call::UnitTrace(_) => "dispense.v1.TraceService/GetUnitTrace",
            Call::PatientTrace(_) => "dispense.v1.TraceService/GetPatientTrace",
            Call::Immunization(_) => "dispense.v1.TraceService/ExportImmunization",
            Call::WatchWorkstation => "dispense.v1.MonitoringService/WatchWorkstation",
            Call::WatchTemperatures => "dispense.v1.MonitoringService/WatchTemperatures",
            Call::WatchBooths => "dispense.v1.MonitoringService/WatchBooths",
            Call::ListTemperatures(_) => "dispense.v1.MonitoringService/ListTemperatures",
            Call::GetStatus => "dispense.v1.MaintenanceService/GetStatus",
            Call::ListFaults(_) => "dispense.v1.MaintenanceService/ListFaults",
            Call::ClearFault(_) => "dispense.v1.MaintenanceService/ClearFault",
            Call::Maintenance(_) => "dispense.v1.MaintenanceService/EnterMaintenance",
            Call::ExitMaintenance => "dispense.v1.MaintenanceService/ExitMaintenance",
            Call::Home => "dispense.v1.MaintenanceService/Home",
            Call::Jog(_) => "dispense.v1.MaintenanceService/Jog",
            Call::SelfTest => "dispense.v1.MaintenanceService/SelfTest",
            Call::Registers(_) => "dispense.v1.MaintenanceService/ReadRegisters",
            Call::Snapshot => "dispense.v1.MaintenanceService/CameraSnapshot",
            Call::ExportLogs(_) => "dispense.v1.MaintenanceService/ExportLogs",
        }
    }
}

fn call() -> impl Strategy<Value = Call> {
    let dispensing = prop_oneof![
        (text(), proptest::option::of(order())).prop_map(|(request_id, order)| Call::Start(pb::StartDispenseRequest { request_id, order })),
        (text(), text()).prop_map(|(dispense_id, reason)| Call::Cancel(pb::CancelDispenseRequest { dispense_id, reason })),
        (text(), text()).prop_map(|(dispense_id, booth_scan)| Call::Validate(pb::ConfirmValidationRequest { dispense_id, booth_scan })),
        (text(), text(), text()).prop_map(|(dispense_id, nurse_id, site)| Call::Administer(pb::ConfirmAdministrationRequest { dispense_id, nurse_id, site })),
        text().prop_map(|dispense_id| Call::GetDispense(pb::GetDispenseRequest { dispense_id })),
        text().prop_map(|dispense_id| Call::WatchDispense(pb::WatchDispenseRequest { dispense_id })),
        (size(), text()).prop_map(|(page_size, page_token)| Call::ListQueue(pb::ListQueueRequest { page_size, page_token })),
    ];
    let stock = prop_oneof![
        (text(), text(), date(), any::<i32>(), any::<bool>(), size(), text()).prop_map(|(product_id, lot, expires_by, state, held_only, page_size, page_token)| {
            Call::ListStock(pb::ListStockRequest { product_id, lot, expires_by, state, held_only, page_size, page_token })
        }),
        any::<u32>().prop_map(|warn_days| Call::CountStock(pb::CountStockRequest { warn_days })),
        (text(), text(), date(), proptest::option::of(any::<f64>()), proptest::collection::vec(text(), 0..6), text()).prop_map(|(product_id, lot, expiry, arrival_celsius, codes, note)| {
            Call::StockIn(pb::StockInRequest { product_id, lot, expiry, arrival_celsius, codes, note })
        }),
        (text(), text(), text()).prop_map(|(gtin, lot, reason)| Call::Recall(pb::RecallBatchRequest { gtin, lot, reason })),
        (text(), text()).prop_map(|(code, reason)| Call::Quarantine(pb::QuarantineUnitRequest { code, reason })),
        (text(), text()).prop_map(|(code, reason)| Call::Release(pb::ReleaseHoldRequest { code, reason })),
    ];
    let trace_and_monitoring = prop_oneof![
        text().prop_map(|code| Call::UnitTrace(pb::GetUnitTraceRequest { code })),
        text().prop_map(|patient_id| Call::PatientTrace(pb::GetPatientTraceRequest { patient_id })),
        text().prop_map(|dispense_id| Call::Immunization(pb::ExportImmunizationRequest { dispense_id })),
        Just(Call::WatchWorkstation),
        Just(Call::WatchTemperatures),
        Just(Call::WatchBooths),
        (time(), time(), prop_oneof![Just(0u32), Just(1), Just(2000), Just(2001), any::<u32>()], size(), text())
            .prop_map(|(start_time, end_time, max_points, page_size, page_token)| Call::ListTemperatures(pb::ListTemperaturesRequest { start_time, end_time, max_points, page_size, page_token })),
    ];
    let maintenance = prop_oneof![
        Just(Call::GetStatus),
        (any::<bool>(), time(), size(), text()).prop_map(|(include_past, start_time, page_size, page_token)| Call::ListFaults(pb::ListFaultsRequest { include_past, start_time, page_size, page_token })),
        (text(), text()).prop_map(|(fault_id, reason)| Call::ClearFault(pb::ClearFaultRequest { fault_id, reason })),
        (text(), duration(), any::<bool>()).prop_map(|(reason, timeout, force)| Call::Maintenance(pb::EnterMaintenanceRequest { reason, timeout, force })),
        Just(Call::ExitMaintenance),
        Just(Call::Home),
        (any::<i32>(), any::<i32>()).prop_map(|(axis, distance_mm)| Call::Jog(pb::JogRequest { axis, distance_mm })),
        Just(Call::SelfTest),
        (text(), any::<i32>(), any::<u32>(), any::<u32>()).prop_map(|(device, table, address, count)| Call::Registers(pb::ReadRegistersRequest { device, table, address, count })),
        Just(Call::Snapshot),
        (time(), time()).prop_map(|(start_time, end_time)| Call::ExportLogs(pb::ExportLogsRequest { start_time, end_time })),
    ];
    prop_oneof![dispensing, stock, trace_and_monitoring, maintenance]
}

/// Requests with times at the ends of what the server's time type can hold.
fn time_edges() -> Vec<Call> {
    let (earliest, latest) = (chrono::DateTime::<chrono::Utc>::MIN_UTC.timestamp(), chrono::DateTime::<chrono::Utc>::MAX_UTC.timestamp());
    let mut calls = Vec::new();
    for seconds in [earliest, earliest + 3600, latest, latest - 3600, i64::MIN, i64::MAX] {
        for nanos in [0, -1] {
            let t = Some(prost_types::Timestamp { seconds, nanos });
            calls.push(Call::ExportLogs(pb::ExportLogsRequest { start_time: None, end_time: t }));
            calls.push(Call::ExportLogs(pb::ExportLogsRequest { start_time: t, end_time: None }));
            calls.push(Call::ListTemperatures(pb::ListTemperaturesRequest { start_time: None, end_time: t, ..Default::default() }));
            calls.push(Call::ListTemperatures(pb::ListTemperaturesRequest { start_time: t, end_time: t, max_points: 2000, ..Default::default() }));
            calls.push(Call::ListFaults(pb::ListFaultsRequest { include_past: true, start_time: t, ..Default::default() }));
            calls.push(Call::Maintenance(pb::EnterMaintenanceRequest { reason: "edge".into(), timeout: Some(prost_types::Duration { seconds, nanos }), force: true }));
        }
    }
    calls
}

#[derive(Clone)]
struct Clients {
    dispensing: pb::dispensing_service_client::DispensingServiceClient<dispense_proto::client::Authorized>,
    stock: pb::stock_service_client::StockServiceClient<dispense_proto::client::Authorized>,
    trace: pb::trace_service_client::TraceServiceClient<dispense_proto::client::Authorized>,
    monitoring: pb::monitoring_service_client::MonitoringServiceClient<dispense_proto::client::Authorized>,
    maintenance: pb::maintenance_service_client::MaintenanceServiceClient<dispense_proto::client::Authorized>,
}

/// A server stream's answer: its first message (or its end), within a deadline.
async fn first<T>(stream: Result<tonic::Response<tonic::Streaming<T>>, tonic::Status>) -> Result<(), tonic::Status> {
    let mut stream = stream?.into_inner();
    match tokio::time::timeout(std::time::Duration::from_secs(5), stream.message()).await {
        Ok(answer) => answer.map(drop),
        Err(_) => Ok(()), // a watch with nothing new yet is a fine answer
    }
}

impl Clients {
    async fn send(&mut self, call: Call) -> Result<(), tonic::Status> {
        match call {
            Call::Start(r) => self.dispensing.start_dispense(r).await.map(drop),
            Call::Cancel(r) => self.dispensing.cancel_dispense(r).await.map(drop),
            Call::Validate(r) => self.dispensing.confirm_validation(r).await.map(drop),
            Call::Administer(r) => self.dispensing.confirm_administration(r).await.map(drop),
            Call::GetDispense(r) => self.dispensing.get_dispense(r).await.map(drop),
            Call::WatchDispense(r) => first(self.dispensing.watch_dispense(r).await).await,
            Call::ListQueue(r) => self.dispensing.list_queue(r).await.map(drop),
            Call::ListStock(r) => self.stock.list_stock(r).await.map(drop),
            Call::CountStock(r) => self.stock.count_stock(r).await.map(drop),
            Call::StockIn(r) => self.stock.stock_in(r).await.map(drop),
            Call::Recall(r) => self.stock.recall_batch(r).await.map(drop),
            Call::Quarantine(r) => self.stock.quarantine_unit(r).await.map(drop),
            Call::Release(r) => self.stock.release_hold(r).await.map(drop),
            Call::UnitTrace(r) => self.trace.get_unit_trace(r).await.map(drop),
            Call::PatientTrace(r) => self.trace.get_patient_trace(r).await.map(drop),
            Call::Immunization(r) => self.trace.export_immunization(r).await.map(drop),
            Call::WatchWorkstation => first(self.monitoring.watch_workstation(pb::WatchWorkstationRequest {}).await).await,
            Call::WatchTemperatures => first(self.monitoring.watch_temperatures(pb::WatchTemperaturesRequest {}).await).await,
            Call::WatchBooths => first(self.monitoring.watch_booths(pb::WatchBoothsRequest {}).await).await,
            Call::ListTemperatures(r) => self.monitoring.list_temperatures(r).await.map(drop),
            Call::GetStatus => self.maintenance.get_status(pb::GetStatusRequest {}).await.map(drop),
            Call::ListFaults(r) => self.maintenance.list_faults(r).await.map(drop),
            Call::ClearFault(r) => self.maintenance.clear_fault(r).await.map(drop),
            Call::Maintenance(r) => {
                let entered = self.maintenance.enter_maintenance(r).await.map(drop);
                // Leave again, so the next orders are judged on their content.
                let _ = self.maintenance.exit_maintenance(pb::ExitMaintenanceRequest {}).await;
                entered
            }
            Call::ExitMaintenance => self.maintenance.exit_maintenance(pb::ExitMaintenanceRequest {}).await.map(drop),
            Call::Home => self.maintenance.home(pb::HomeRequest {}).await.map(drop),
            Call::Jog(r) => self.maintenance.jog(r).await.map(drop),
            Call::SelfTest => first(self.maintenance.self_test(pb::SelfTestRequest {}).await).await,
            Call::Registers(r) => self.maintenance.read_registers(r).await.map(drop),
            Call::Snapshot => self.maintenance.camera_snapshot(pb::CameraSnapshotRequest {}).await.map(drop),
            Call::ExportLogs(r) => {
                let mut stream = self.maintenance.export_logs(r).await?.into_inner();
                while stream.message().await?.is_some() {}
                Ok(())
            }
        }
    }
}

#[test]
fn arbitrary_requests_get_defined_answers_and_never_break_the_server() {
    // A strategy over every request of the contract is deep: generating from it
    // needs more stack than a test thread has in a debug build.
    std::thread::Builder::new().stack_size(256 << 20).spawn(every_method_answers).expect("thread").join().expect("the property held");
}

fn every_method_answers() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let clients = runtime.block_on(async {
        let (_assembled, address) = serve_configured(dir.path(), GENEROUS, SIMULATED, "").await;
        Clients {
            dispensing: pb::dispensing_service_client::DispensingServiceClient::new(common::channel(address, CLINIC).await),
            stock: pb::stock_service_client::StockServiceClient::new(common::channel(address, PHARMACIST).await),
            trace: pb::trace_service_client::TraceServiceClient::new(common::channel(address, CLINIC).await),
            monitoring: pb::monitoring_service_client::MonitoringServiceClient::new(common::channel(address, CLINIC).await),
            maintenance: pb::maintenance_service_client::MaintenanceServiceClient::new(common::channel(address, MAINTENANCE).await),
        }
    });
    let config = RunnerConfig { cases: 900, failure_persistence: None, ..RunnerConfig::default() };
    let mut runner = TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]));
    let seen = std::cell::RefCell::new(std::collections::BTreeMap::<String, usize>::new());
    let reached = std::cell::RefCell::new(std::collections::BTreeSet::<&'static str>::new());
    let judge = |call: Call| -> Result<(), String> {
        let shown = format!("{call:?}");
        reached.borrow_mut().insert(call.method());
        let answer = runtime.block_on(Box::pin(clients.clone().send(call)));
        let code = answer.as_ref().err().map_or(Code::Ok, |s| s.code());
        *seen.borrow_mut().entry(format!("{code:?}")).or_default() += 1;
        if let Err(status) = &answer {
            if matches!(status.code(), Code::Internal | Code::Unknown | Code::Unavailable | Code::Cancelled) {
                return Err(format!("{shown} -> {status:?}"));
            }
            if status.code() == Code::InvalidArgument && !status.get_error_details().bad_request().is_some_and(|b| !b.field_violations.is_empty()) {
                return Err(format!("INVALID_ARGUMENT without a field: {shown} -> {status:?}"));
            }
        }
        Ok(())
    };
    // First every time-bearing method at the very ends of time, where a default
    // span's arithmetic would overflow (ExportLogs once panicked there).
    for call in time_edges() {
        judge(call).unwrap_or_else(|e| panic!("{e}"));
    }
    runner
        .run(&call(), |call| {
            judge(call).map_err(|e| proptest::test_runner::TestCaseError::fail(e))
        })
        .expect("every request answered with a defined status");
    // The server is still there and sane.
    runtime.block_on(clients.clone().dispensing.list_queue(pb::ListQueueRequest::default())).expect("still serving");
    let reached = reached.into_inner();
    let missed: Vec<&str> = controller::api::auth::roles::MATRIX.iter().map(|(m, _)| *m).filter(|m| !reached.contains(m)).collect();
    assert!(missed.is_empty(), "methods the property test never called: {missed:?}");
    let seen = seen.into_inner();
    assert!(seen.get("InvalidArgument").copied().unwrap_or(0) > 100, "the generator reaches validation: {seen:?}");
    eprintln!("answers: {seen:?}");
}
