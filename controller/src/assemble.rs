//! Assembles a workstation from its config (catalog, journal, devices, dispatcher)
//! and serves the gRPC API on a socket, behind TLS and the gate.

use crate::api::DispensingApi;
use crate::api::maintenance::MaintenanceApi;
use crate::api::monitoring::MonitoringApi;
use crate::api::stock::StockApi;
use crate::api::trace::TraceApi;
use crate::gate::{GateLayer, Gatekeeper};
use crate::catalog::Catalog;
use crate::config::{Config, HardwareConfig};
use crate::dispatcher::{Dispatcher, Settings};
use crate::journal::Journal;
use anyhow::Context;
use hal::modbus::drivers::{WireConfig, WireDevices};
use std::time::Duration;
use simulator::SimWorkstation;
use std::sync::Arc;
use tokio::net::TcpListener;

/// A workstation ready to serve: the dispatcher and, on simulated hardware, the
/// simulator (for tests and the demo to look inside).
#[derive(Debug)]
pub struct Assembled {
    pub dispatcher: Dispatcher,
    pub simulator: Option<SimWorkstation>,
    pub config: Config,
}

/// Opens everything the config names, imports the loading manifest and homes the picker.
pub async fn assemble(config: Config) -> anyhow::Result<Assembled> {
    assemble_with_clock(config, crate::clock::Clock::system()).await
}

/// [`assemble`] going by `clock` (a scenario's virtual day) instead of the system's.
pub async fn assemble_with_clock(config: Config, clock: crate::clock::Clock) -> anyhow::Result<Assembled> {
    let manifest = load_manifest(&config)?;
    let (devices, simulator) = match &config.hardware {
        HardwareConfig::Simulated { simulator } => {
            let sim = SimWorkstation::new(simulator.clone(), &manifest);
            (sim.devices(), Some(sim))
        }
        HardwareConfig::Wire { devices, frame_timeout_ms } => (open_wire(devices, *frame_timeout_ms).await?, None),
    };
    assemble_on(config, clock, devices, simulator).await
}

/// [`assemble_with_clock`] on devices the caller has opened (a scenario's field
/// devices over in-memory Modbus lines); `simulator` is what they simulate.
pub async fn assemble_on(config: Config, clock: crate::clock::Clock, devices: hal::Devices, simulator: Option<SimWorkstation>) -> anyhow::Result<Assembled> {
    let catalog = Catalog::load(&config.catalog.path)?;
    let manifest = load_manifest(&config)?;
    if let Some(dir) = config.journal.path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create journal folder {}", dir.display()))?;
    }
    let journal = Arc::new(Journal::open_with_clock(&config.journal.path, clock).with_context(|| format!("journal {}", config.journal.path.display()))?);
    let added = journal.import_manifest(&manifest)?;
    tracing::info!(added, total = manifest.len(), "loading manifest imported");
    let settings = Settings {
        scan_max_frames: config.scan.max_frames,
        scan_agree: config.scan.agree,
        scan_clearance: Duration::from_secs_f64(config.scan.clearance_s),
        expected_to_jab: Duration::from_secs(config.checks.expected_to_jab_s),
        validation_timeout: Duration::from_secs(config.checks.validation_timeout_s),
        ..Settings::default()
    };
    let dispatcher = Dispatcher::new(journal.clone(), devices.clone(), catalog.clone(), settings);
    let telemetry = dispatcher.telemetry().clone();
    crate::coldwatch::spawn(dispatcher.tasks(), devices.clone(), journal, Arc::new(catalog), config.coldchain.clone(), telemetry.clone());
    crate::telemetry::supervise(dispatcher.tasks(), devices, telemetry.faults, SUPERVISION_PERIOD);
    // A motion the previous run left going must end before anything else moves.
    let t = std::time::Instant::now();
    crate::recovery::wait_until_still(dispatcher.devices(), Duration::from_secs(120)).await.context("waiting for the devices to stop")?;
    let waited = t.elapsed();
    let t = std::time::Instant::now();
    dispatcher.home().await.context("homing the picker")?;
    let homing = t.elapsed();
    // Settle what the last run left unfinished before any new order is taken.
    let started = std::time::Instant::now();
    let report = crate::recovery::recover(dispatcher.journal(), dispatcher.devices()).await.context("recovery")?;
    tracing::info!(
        waited_ms = waited.as_millis() as u64,
        homing_ms = homing.as_millis() as u64,
        recovery_ms = started.elapsed().as_millis() as u64,
        settled = report.settled,
        "startup phases"
    );
    if report.settled > 0 || !report.strays.is_empty() {
        tracing::warn!(
            settled = report.settled,
            binned = report.binned.len(),
            returned = report.returned_to_stock.len(),
            in_tray = report.quarantined_in_tray.len(),
            lost = report.lost.len(),
            strays = report.strays.len(),
            "recovered in {:?}",
            started.elapsed()
        );
    }
    Ok(Assembled { dispatcher, simulator, config })
}

/// The loading manifest the config names (none: an empty store).
pub fn load_manifest(config: &Config) -> anyhow::Result<Vec<hal::manifest::ManifestUnit>> {
    let Some(path) = &config.stock.manifest else { return Ok(Vec::new()) };
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read manifest {}", path.display()))?;
    hal::manifest::parse(&text).with_context(|| format!("manifest {}", path.display()))
}

/// Opens the field devices and the camera a devices file names, and reports who
/// answers (device type, firmware, serial) before anything moves.
async fn open_wire(path: &std::path::Path, frame_timeout_ms: u64) -> anyhow::Result<hal::Devices> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read devices file {}", path.display()))?;
    let wire = WireConfig::from_toml(&text).with_context(|| format!("devices file {}", path.display()))?;
    let drivers = WireDevices::open(&wire);
    check_who_answers(&drivers).await?;
    let camera = hal::camera::OpenCvCamera::open(&wire.camera, Duration::from_millis(frame_timeout_ms));
    Ok(drivers.into_devices(Arc::new(camera)))
}

/// Asks each field device who it is (device type, firmware, serial) and waits for
/// its heartbeat, before anything moves.
pub async fn check_who_answers(drivers: &WireDevices) -> anyhow::Result<()> {
    for device in [&drivers.store_device, &drivers.conveyor_device] {
        let identity = device.identity().await.with_context(|| format!("{} at {}", device.link().device(), device.link().transport()))?;
        tracing::info!(device = device.link().device(), transport = %device.link().transport(), firmware = %identity.firmware, serial = %identity.serial_number, "field device found");
        device.wait_heartbeat(Duration::from_secs(5)).await?;
    }
    Ok(())
}

/// How often the supervisor reads the interlocks and the devices' alarms.
const SUPERVISION_PERIOD: Duration = Duration::from_millis(250);

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
    tokio::spawn(async move {
        loop {
            let serving = crate::workstation::accepts_orders(*state.borrow_and_update());
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
    let gate = Arc::new(Gatekeeper::new(&config.auth, limits.clone()));
    let band = (config.coldchain.rules.freeze_celsius, config.coldchain.rules.high_celsius);
    let max = limits.max_message_bytes;
    let mut builder = tonic::transport::Server::builder().max_concurrent_streams(limits.max_concurrent_streams).http2_keepalive_interval(Some(Duration::from_secs(30)));
    if let Some(files) = &config.server.tls {
        builder = builder.tls_config(tls(files)?).context("TLS configuration")?;
    }
    builder
        .layer(GateLayer(gate))
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
