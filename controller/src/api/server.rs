//! Serves the API on a socket: every `dispense.v1` service behind the
//! authentication layer, TLS if configured, `grpc.health.v1` and server reflection.

use crate::api::auth::layer::{AuthLayer, Authenticator};
use crate::api::dispensing::DispensingApi;
use crate::api::maintenance::MaintenanceApi;
use crate::api::monitoring::MonitoringApi;
use crate::api::stock::StockApi;
use crate::api::trace::TraceApi;
use crate::config::Config;
use crate::dispatch::Dispatcher;
use anyhow::Context;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// The server's TLS settings from the config's PEM files.
fn tls(files: &crate::config::TlsFiles) -> anyhow::Result<tonic::transport::ServerTlsConfig> {
    let read = |path: &std::path::Path| std::fs::read(path).with_context(|| format!("cannot read TLS file {}", path.display()));
    let mut tls = tonic::transport::ServerTlsConfig::new().identity(tonic::transport::Identity::from_pem(read(&files.cert)?, read(&files.key)?));
    if let Some(ca) = &files.client_ca {
        // Optional: a caller may present a certificate or a bearer token.
        tls = tls.client_ca_root(tonic::transport::Certificate::from_pem(read(ca)?)).client_auth_optional(true);
    }
    Ok(tls)
}

/// Serves the API on `listener` until `shutdown` completes: every `dispense.v1`
/// service behind the gate (authentication, roles, rate and stream limits), TLS if
/// configured, the standard `grpc.health.v1` service (SERVING while the workstation
/// accepts orders) and server reflection, so generic tools work without our .proto files.
pub async fn serve(dispatcher: Dispatcher, config: &Config, listener: TcpListener, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
    // Small answers must leave at once, not wait for Nagle's algorithm (40 ms stalls).
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let (reporter, health) = tonic_health::server::health_reporter();
    let mut state = dispatcher.watch_state();
    let health_of = dispatcher.clone();
    tokio::spawn(async move {
        loop {
            let serving = state.borrow_and_update().accepts_orders() && !health_of.is_stopping();
            let status = if serving { tonic_health::ServingStatus::Serving } else { tonic_health::ServingStatus::NotServing };
            reporter.set_service_status("", status).await;
            reporter.set_service_status(SERVICE_NAME, status).await;
            if state.changed().await.is_err() {
                return;
            }
        }
    });
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(dispense_proto::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("server reflection")?;
    let limits = config.server.limits.clone();
    let gate = Arc::new(Authenticator::new(&config.auth, limits.clone()));
    let band = (config.coldchain.rules.freeze_celsius, config.coldchain.rules.high_celsius);
    let max = limits.max_message_bytes;
    let mut builder = tonic::transport::Server::builder().max_concurrent_streams(limits.max_concurrent_streams).http2_keepalive_interval(Some(Duration::from_secs(30)));
    if let Some(files) = &config.server.tls {
        builder = builder.tls_config(tls(files)?).context("TLS configuration")?;
    } else if !config.server.listen.ip().is_loopback() {
        // Only reachable with the override (Config::load refuses it otherwise).
        tracing::warn!(listen = %config.server.listen, "INSECURE: serving plain HTTP/2 off loopback (server.insecure_plaintext_off_loopback): tokens and patient data cross the network in clear");
    }
    builder
        .layer(AuthLayer(gate))
        .add_service(health)
        .add_service(reflection)
        .add_service(DispensingApi::new(dispatcher.clone()).into_server().max_decoding_message_size(max))
        .add_service(StockApi::new(dispatcher.clone()).into_server().max_decoding_message_size(max))
        .add_service(TraceApi::new(dispatcher.clone()).into_server().max_decoding_message_size(max))
        .add_service(MonitoringApi::new(dispatcher.clone(), band).into_server().max_decoding_message_size(max))
        .add_service(MaintenanceApi::new(dispatcher).into_server().max_decoding_message_size(max))
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
        .context("gRPC server")
}

/// The clinic service's full name, as health checks and reflection know it.
pub const SERVICE_NAME: &str = "dispense.v1.DispensingService";
