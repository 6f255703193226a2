//! Generic gRPC tools work without our .proto files: `grpc.health.v1` says SERVING
//! while the workstation takes orders (NOT_SERVING in maintenance) and needs no
//! credentials; server reflection, for any authenticated caller, lists every
//! service and serves their descriptors.

use std::time::Duration;
use tokio_stream::StreamExt;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1::ServerReflectionRequest;

mod common;
use common::serve_workstation_at;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_follows_the_workstation_and_reflection_describes_the_api() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hardware = "[hardware]\nkind = \"simulated\"\n[hardware.simulator]\nspeed = 40.0\nbooths = 4\n";
    let (assembled, address) = serve_workstation_at(dir.path(), hardware).await;
    let channel = tonic::transport::Channel::from_shared(format!("http://{address}")).expect("uri").connect().await.expect("connect");

    let mut health = HealthClient::new(channel.clone());
    let status = |service: &str| HealthCheckRequest { service: service.into() };
    for service in ["", "dispense.v1.DispensingService"] {
        let answer = health.check(status(service)).await.expect("health check").into_inner();
        assert_eq!(answer.status(), ServingStatus::Serving, "{service:?}");
    }
    assembled.dispatcher.enter_maintenance("crew-1", "belt cleaning", std::time::Duration::from_secs(600), false).expect("maintenance");
    let mut answer = ServingStatus::Unknown;
    for _ in 0..500 {
        answer = health.check(status("dispense.v1.DispensingService")).await.expect("health check").into_inner().status();
        if answer == ServingStatus::NotServing {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(answer, ServingStatus::NotServing, "out of service in maintenance");

    let ask = |request: MessageRequest| ServerReflectionRequest { host: String::new(), message_request: Some(request) };
    let anonymous = ServerReflectionClient::new(channel).server_reflection_info(tokio_stream::iter([ask(MessageRequest::ListServices(String::new()))])).await;
    assert_eq!(anonymous.expect_err("reflection needs a caller").code(), tonic::Code::Unauthenticated);
    let mut reflection = ServerReflectionClient::new(common::channel(address, common::OBSERVER).await);
    let requests = tokio_stream::iter([ask(MessageRequest::ListServices(String::new())), ask(MessageRequest::FileContainingSymbol("dispense.v1.PatientOrder".into()))]);
    let mut answers = reflection.server_reflection_info(requests).await.expect("reflection").into_inner();
    let Some(Ok(list)) = answers.next().await else { panic!("no service list") };
    let Some(MessageResponse::ListServicesResponse(list)) = list.message_response else { panic!("not a service list") };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in [
        "dispense.v1.DispensingService",
        "dispense.v1.StockService",
        "dispense.v1.TraceService",
        "dispense.v1.MonitoringService",
        "dispense.v1.MaintenanceService",
        "grpc.health.v1.Health",
    ] {
        assert!(names.iter().any(|n| n == expected), "{expected} missing from {names:?}");
    }
    let Some(Ok(file)) = answers.next().await else { panic!("no descriptor") };
    let Some(MessageResponse::FileDescriptorResponse(file)) = file.message_response else { panic!("not a descriptor") };
    assert!(!file.file_descriptor_proto.is_empty(), "the descriptor of dispensing.proto is served");
}
