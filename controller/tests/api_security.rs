//! The API's security over a real socket: every method of the role matrix called by
//! every role (and by nobody), TLS with bearer tokens and with client certificates
//! mapped to roles, the per-caller rate and stream limits and the message size
//! limit, and privileged actions journalled with the caller's name.

use controller::api::auth::roles::{MATRIX, Role, is_stream};
use dispense_proto::client::{Authorized, ClientTls};
use dispense_proto::v1 as pb;
use std::str::FromStr;
use std::time::Duration;
use tonic::Code;
use tonic_types::StatusExt;

mod common;
use common::pki::Pki;
use common::{CLINIC, MAINTENANCE, OBSERVER, PHARMACIST, serve_configured, serve_workstation_at};
use controller::journal::StepKind;

const SIMULATED: &str = "[hardware]\nkind = \"simulated\"\n[hardware.simulator]\nspeed = 40.0\nbooths = 4\n";

/// Calls `method` with an empty request (every field at its default) and returns the
/// status code; a stream counts as answered once its headers arrive.
async fn call(channel: Authorized, method: &str) -> tonic::Status {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("ready");
    let path = http::uri::PathAndQuery::from_str(&format!("/{method}")).expect("path");
    let codec = tonic_prost::ProstCodec::<(), ()>::default();
    let result = if is_stream(method) {
        grpc.server_streaming(tonic::Request::new(()), path, codec).await.map(drop)
    } else {
        grpc.unary(tonic::Request::new(()), path, codec).await.map(drop)
    };
    result.err().unwrap_or_else(|| tonic::Status::ok(""))
}

fn reason(status: &tonic::Status) -> String {
    status.get_error_details().error_info().map(|i| i.reason.clone()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_method_admits_exactly_the_roles_of_the_matrix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_assembled, address) = serve_workstation_at(dir.path(), SIMULATED).await;
    let tokens = [(Role::Clinic, CLINIC), (Role::Pharmacist, PHARMACIST), (Role::Maintenance, MAINTENANCE), (Role::Observer, OBSERVER)];
    let mut checked = 0;
    for (method, allowed) in MATRIX {
        let anonymous = call(common::channel(address, "").await, method).await;
        assert_eq!(anonymous.code(), Code::Unauthenticated, "{method} without a token: {anonymous:?}");
        for (role, token) in tokens {
            let status = call(common::channel(address, token).await, method).await;
            if allowed.contains(&role) {
                assert!(
                    !matches!(status.code(), Code::PermissionDenied | Code::Unauthenticated | Code::Unimplemented),
                    "{role} may call {method} but got {status:?}"
                );
            } else {
                assert_eq!(status.code(), Code::PermissionDenied, "{role} must not call {method}: {status:?}");
                assert_eq!(reason(&status), "ROLE_NOT_ALLOWED");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, MATRIX.len() * 4);
    // The two the issue names, through the typed clients.
    let mut maintenance = pb::maintenance_service_client::MaintenanceServiceClient::new(common::channel(address, CLINIC).await);
    let jog = maintenance.jog(pb::JogRequest { axis: pb::Axis::Belt as i32, distance_mm: 10 }).await.expect_err("a clinic token cannot jog the belt");
    assert_eq!(jog.code(), Code::PermissionDenied);
    let mut dispensing = pb::dispensing_service_client::DispensingServiceClient::new(common::channel(address, OBSERVER).await);
    let order = pb::StartDispenseRequest { request_id: "obs-1".into(), order: Some(common::order("HepB", 1)) };
    assert_eq!(dispensing.start_dispense(order).await.expect_err("an observer cannot dispense").code(), Code::PermissionDenied);
    let wrong = call(common::channel(address, "not-a-token").await, "dispense.v1.DispensingService/ListQueue").await;
    assert_eq!(wrong.code(), Code::Unauthenticated);
    assert!(wrong.message().contains("not known"), "{wrong:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_tokens_and_client_certificates_mapped_to_roles() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new("clinic CA");
    let server = pki.server();
    for (name, text) in [("server.pem", &server.cert), ("server.key", &server.key), ("ca.pem", &pki.ca_pem())] {
        std::fs::write(dir.path().join(name), text).expect("write pem");
    }
    let tls = "[server.tls]\ncert = \"server.pem\"\nkey = \"server.key\"\nclient_ca = \"ca.pem\"\n";
    let certificates = "[[auth.certificates]]\ncommon_name = \"crew-laptop\"\nrole = \"maintenance\"\n";
    let (_assembled, address) = serve_configured(dir.path(), tls, SIMULATED, certificates).await;
    let url = format!("https://127.0.0.1:{}", address.port());
    let client_tls = |identity: Option<&common::pki::Pair>| ClientTls {
        ca_pem: pki.ca_pem().into_bytes(),
        domain: Some("localhost".into()),
        identity: identity.map(|p| (p.cert.clone().into_bytes(), p.key.clone().into_bytes())),
    };

    // A bearer token over TLS.
    let channel = dispense_proto::client::connect(&url, Some(CLINIC), Some(&client_tls(None))).await.expect("TLS connect");
    let mut clinic = pb::dispensing_service_client::DispensingServiceClient::new(channel);
    clinic.list_queue(pb::ListQueueRequest::default()).await.expect("a clinic token works over TLS");

    // A client certificate, no token: the crew's laptop is a maintenance caller.
    let laptop = pki.client("crew-laptop");
    let channel = dispense_proto::client::connect(&url, None, Some(&client_tls(Some(&laptop)))).await.expect("mTLS connect");
    let mut maintenance = pb::maintenance_service_client::MaintenanceServiceClient::new(channel.clone());
    maintenance.get_status(pb::GetStatusRequest {}).await.expect("the certificate's role may read the status");
    let mut dispensing = pb::dispensing_service_client::DispensingServiceClient::new(channel);
    let refused = dispensing.list_queue(pb::ListQueueRequest::default()).await.expect_err("maintenance has no patient queue");
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert!(refused.message().contains("crew-laptop"), "{refused:?}");

    // A certificate from the right CA but not mapped to a role.
    let stranger = pki.client("stranger");
    let channel = dispense_proto::client::connect(&url, None, Some(&client_tls(Some(&stranger)))).await.expect("mTLS connect");
    let unknown = pb::maintenance_service_client::MaintenanceServiceClient::new(channel).get_status(pb::GetStatusRequest {}).await.expect_err("not mapped");
    assert_eq!(unknown.code(), Code::Unauthenticated);
    assert!(unknown.message().contains("stranger"), "{unknown:?}");

    // A certificate from another CA never gets through the handshake.
    let forged = Pki::new("somebody else").client("crew-laptop");
    let outcome = async {
        let channel = dispense_proto::client::connect(&url, None, Some(&client_tls(Some(&forged)))).await.map_err(|e| e.to_string())?;
        pb::maintenance_service_client::MaintenanceServiceClient::new(channel).get_status(pb::GetStatusRequest {}).await.map_err(|e| e.to_string())
    };
    assert!(outcome.await.is_err(), "a certificate the CA did not sign is refused");

    // Plain HTTP/2 to a TLS port is not an API.
    let plain = async {
        let channel = dispense_proto::client::connect(&format!("http://{address}"), Some(CLINIC), None).await.map_err(|e| e.to_string())?;
        pb::dispensing_service_client::DispensingServiceClient::new(channel).list_queue(pb::ListQueueRequest::default()).await.map_err(|e| e.to_string())
    };
    assert!(tokio::time::timeout(Duration::from_secs(10), plain).await.map_or(true, |r| r.is_err()), "plaintext must not reach the API");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_streams_and_message_size_are_limited_per_caller() {
    let dir = tempfile::tempdir().expect("tempdir");
    let limits = "[server.limits]\nrequests_per_s = 1.0\nburst = 5.0\nmax_streams_per_client = 2\nmax_message_bytes = 4096\n";
    let (_assembled, address) = serve_configured(dir.path(), limits, SIMULATED, "").await;

    let mut clinic = common::clinic_client(address).await;
    let get = || pb::GetDispenseRequest { dispense_id: "D999".into() };
    for _ in 0..5 {
        assert_eq!(clinic.get_dispense(get()).await.expect_err("no such dispense").code(), Code::NotFound);
    }
    let limited = clinic.get_dispense(get()).await.expect_err("over the burst");
    assert_eq!(limited.code(), Code::ResourceExhausted);
    assert_eq!(reason(&limited), "RATE_LIMITED");
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(clinic.get_dispense(get()).await.expect_err("refilled").code(), Code::NotFound, "the bucket refills");

    // Streams: two open, the third refused until one closes.
    let mut monitoring = pb::monitoring_service_client::MonitoringServiceClient::new(common::channel(address, OBSERVER).await);
    let first = monitoring.watch_workstation(pb::WatchWorkstationRequest {}).await.expect("stream 1");
    let _second = monitoring.watch_workstation(pb::WatchWorkstationRequest {}).await.expect("stream 2");
    let third = monitoring.watch_workstation(pb::WatchWorkstationRequest {}).await.expect_err("stream 3");
    assert_eq!(reason(&third), "TOO_MANY_STREAMS");
    drop(first);
    let mut reopened = None;
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if let Ok(stream) = monitoring.watch_workstation(pb::WatchWorkstationRequest {}).await {
            reopened = Some(stream);
            break;
        }
    }
    assert!(reopened.is_some(), "closing a stream frees its place");

    // A request over the size limit is refused whole; nothing is stocked.
    let mut stock = pb::stock_service_client::StockServiceClient::new(common::channel(address, PHARMACIST).await);
    let codes = (0..200).map(|i| format!("(01)06901234000016(17)290101(10)BIG(21)U{i:06}")).collect();
    let big = pb::StockInRequest { product_id: "HepB".into(), lot: "BIG".into(), expiry: "2029-01-01".into(), codes, note: "DN-1".into(), ..Default::default() };
    let refused = stock.stock_in(big).await.expect_err("too large");
    assert!(matches!(refused.code(), Code::OutOfRange | Code::ResourceExhausted | Code::InvalidArgument), "{refused:?}");
    let listed = stock.list_stock(pb::ListStockRequest { lot: "BIG".into(), ..Default::default() }).await.expect("list").into_inner();
    assert!(listed.units.is_empty(), "nothing half-stocked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn privileged_actions_are_journalled_with_the_caller() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (assembled, address) = serve_workstation_at(dir.path(), SIMULATED).await;
    let mut stock = pb::stock_service_client::StockServiceClient::new(common::channel(address, PHARMACIST).await);
    let held = stock.recall_batch(pb::RecallBatchRequest { lot: "LATE".into(), reason: "recall notice 17".into(), ..Default::default() }).await.expect("recall").into_inner();
    assert_eq!(held.held, 2);
    let units = stock.list_stock(pb::ListStockRequest { lot: "LATE".into(), held_only: true, ..Default::default() }).await.expect("list").into_inner().units;
    assert_eq!(units.len(), 2);
    let trail = assembled.dispatcher.journal().unit_entries(&units[0].code).expect("journal");
    assert!(trail.iter().any(|e| e.kind == StepKind::Hold && e.detail.contains("by pharmacy")), "{trail:?}");

    let mut maintenance = pb::maintenance_service_client::MaintenanceServiceClient::new(common::channel(address, MAINTENANCE).await);
    maintenance.enter_maintenance(pb::EnterMaintenanceRequest { reason: "belt cleaning".into(), ..Default::default() }).await.expect("enter");
    let since = chrono::Utc::now() - chrono::Duration::minutes(5);
    let notes = assembled.dispatcher.journal().entries_between(since, chrono::Utc::now()).expect("journal");
    assert!(notes.iter().any(|e| e.kind == StepKind::Maintenance && e.detail.contains("belt cleaning") && e.detail.contains("crew-1")), "{notes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_is_refused_with_when_to_try_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_assembled, address) = serve_configured(dir.path(), "[server.limits]\nmax_in_flight = 2\n", SIMULATED, "").await;
    let mut clinic = common::clinic_client(address).await;
    let first = common::start(&mut clinic, "q-1", common::order("HepB", 1)).await;
    common::start(&mut clinic, "q-2", common::order("HepB", 2)).await;
    let refused = clinic.start_dispense(pb::StartDispenseRequest { request_id: "q-3".into(), order: Some(common::order("HepB", 3)) }).await.expect_err("a third is over the bound");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert_eq!(reason(&refused), "QUEUE_FULL");
    let retry = refused.get_details_retry_info().and_then(|r| r.retry_delay).expect("RetryInfo says when");
    assert!(retry >= Duration::from_secs(1), "{retry:?}");
    // A retry of an accepted order still finds its dispense while the queue is full.
    let again = common::start(&mut clinic, "q-1", common::order("HepB", 1)).await;
    assert_eq!((again.dispense_id, again.duplicate), (first.dispense_id, true));
}
