//! The workstation's TOML configuration. Relative paths are resolved against the
//! config file's folder, so a config and its catalog and manifest travel together.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the workstation stands: its time zone.
    #[serde(default)]
    pub site: SiteConfig,
    pub server: ServerConfig,
    pub journal: JournalConfig,
    pub catalog: CatalogConfig,
    #[serde(default)]
    pub stock: StockConfig,
    #[serde(default)]
    pub scan: ScanConfig,
    #[serde(default)]
    pub checks: ChecksConfig,
    #[serde(default)]
    pub coldchain: crate::coldchain::watch::ColdChainConfig,
    pub hardware: HardwareConfig,
    /// Who may call, by bearer token or client certificate, and in which role.
    pub auth: crate::api::auth::layer::AuthConfig,
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    /// The event feed to the city's MQTT broker; off when absent.
    pub events: Option<crate::feed::EventsConfig>,
}

/// `[telemetry]`: what a fleet's monitoring reads.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// Where to serve Prometheus metrics (`GET /metrics`, OpenMetrics text), e.g.
    /// `127.0.0.1:9464`; off when unset.
    pub metrics_listen: Option<SocketAddr>,
}

/// `[site]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteConfig {
    /// The site's IANA time zone (e.g. `Asia/Shanghai`): every judgement by date
    /// (expiry, today, age, intervals) is made on its local calendar.
    #[serde(default = "default_zone")]
    pub time_zone: chrono_tz::Tz,
}

impl Default for SiteConfig {
    fn default() -> Self {
        Self { time_zone: default_zone() }
    }
}

fn default_zone() -> chrono_tz::Tz {
    crate::journal::clock::DEFAULT_ZONE
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Where gRPC listens, e.g. `127.0.0.1:50051`.
    pub listen: SocketAddr,
    /// TLS (rustls); without it the API speaks plain HTTP/2, for loopback only:
    /// a config listening elsewhere without TLS is refused (bearer tokens would
    /// cross the network in clear) unless the override below is set.
    pub tls: Option<TlsFiles>,
    /// For a closed network only (an isolated cable to one clinic PC): serve plain
    /// HTTP/2 on a non-loopback address. Logged as a warning at every start.
    #[serde(default)]
    pub insecure_plaintext_off_loopback: bool,
    #[serde(default)]
    pub limits: crate::api::auth::layer::Limits,
}

/// `[server.tls]`: PEM files, relative to the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// The server's certificate chain.
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
    /// CA that client certificates must chain to; set, clients may present one
    /// (optional: a bearer token works too) and `[[auth.certificates]]` maps it to a role.
    pub client_ca: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalConfig {
    /// The SQLite file; its folder is created if missing.
    pub path: PathBuf,
    /// Whether each commit waits for the host's fsync (SQLite `synchronous=FULL`,
    /// the default, and the only setting for a workstation). `false` is for
    /// simulation only: there crashes are simulated, so the host's disk buys
    /// nothing and its waits were a fifth of a scenario's wall time.
    #[serde(default = "fsync_by_default")]
    pub host_fsync: bool,
}

fn fsync_by_default() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogConfig {
    pub path: PathBuf,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StockConfig {
    /// A loading manifest imported at start (units already journalled are skipped).
    pub manifest: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScanConfig {
    pub max_frames: u32,
    /// Frames that must read the same code before it is taken (a misread needs to repeat itself).
    pub agree: u32,
    /// Seconds after a unit starts leaving the scan station before the next may run
    /// in: the belt's minimum spacing (a vial's length and a margin at belt speed).
    pub clearance_s: f64,
}

impl Default for ScanConfig {
    fn default() -> Self {
        Self { max_frames: 8, agree: 2, clearance_s: 1.0 }
    }
}

/// Timing of the checks around the jab.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChecksConfig {
    /// Seconds from verification to the expected jab: expiry and out-of-fridge
    /// limits are judged at that time.
    pub expected_to_jab_s: u64,
    /// Seconds the guardian has to validate at the booth before the unit is rejected.
    pub validation_timeout_s: u64,
    /// Units lost the same way in a row (unreadable; jammed or dropped) before
    /// picking stops until a crew clears the fault.
    pub stop_picking_after: u32,
}

impl Default for ChecksConfig {
    fn default() -> Self {
        Self { expected_to_jab_s: 600, validation_timeout_s: 600, stop_picking_after: 3 }
    }
}

/// Which hardware the controller drives.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum HardwareConfig {
    /// Simulated device models called in process, no wire. The controller cannot
    /// build these (it does not know the simulator): a binary on the simulation side
    /// (`wssim serve`, the demo, tests) reads `[hardware.simulator]` and hands the
    /// controller the devices; this binary refuses such a config.
    Simulated {
        #[serde(default)]
        simulator: toml::Table,
    },
    /// Field devices over Modbus RTU/TCP and a camera opened through OpenCV: the
    /// real workstation, or `wssim hardware`, which writes the devices file.
    Wire {
        /// A devices file (`hal::modbus::drivers::WireConfig`): transports, camera, booths.
        devices: PathBuf,
        /// How long to wait for a fresh camera frame before the grab fails.
        #[serde(default = "default_frame_timeout_ms")]
        frame_timeout_ms: u64,
    },
}

fn default_frame_timeout_ms() -> u64 {
    2_000
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("config {path} is not valid: {error}")]
    Parse { path: String, error: toml::de::Error },
    #[error("config {path}: {problem}")]
    Invalid { path: String, problem: String },
}

impl Config {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read { path: shown.clone(), error })?;
        let mut config: Config = toml::from_str(&text).map_err(|error| ConfigError::Parse { path: shown.clone(), error })?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.journal.path = base.join(&config.journal.path);
        config.catalog.path = base.join(&config.catalog.path);
        config.stock.manifest = config.stock.manifest.map(|m| base.join(m));
        if let Some(tls) = &mut config.server.tls {
            tls.cert = base.join(&tls.cert);
            tls.key = base.join(&tls.key);
            tls.client_ca = tls.client_ca.as_ref().map(|ca| base.join(ca));
        }
        config.auth.check().map_err(|problem| ConfigError::Invalid { path: shown.clone(), problem })?;
        if let Some(events) = &mut config.events {
            events.resolve(base);
            events.validate().map_err(|problem| ConfigError::Invalid { path: shown.clone(), problem })?;
        }
        if !config.auth.certificates.is_empty() && config.server.tls.as_ref().is_none_or(|t| t.client_ca.is_none()) {
            return Err(ConfigError::Invalid { path: shown, problem: "auth.certificates needs server.tls.client_ca to verify them".into() });
        }
        let server = &config.server;
        if server.tls.is_none() && !server.listen.ip().is_loopback() && !server.insecure_plaintext_off_loopback {
            return Err(ConfigError::Invalid {
                path: shown,
                problem: format!(
                    "server.listen {} is not a loopback address and [server.tls] is not set: bearer tokens and patient data would cross the network in clear. \
                     Configure [server.tls], listen on 127.0.0.1, or (closed networks only) set server.insecure_plaintext_off_loopback = true",
                    server.listen
                ),
            });
        }
        let limits = &config.server.limits;
        if !(limits.requests_per_s > 0.0 && limits.burst >= 1.0 && limits.max_streams_per_client > 0 && limits.max_message_bytes >= 1024 && limits.max_in_flight > 0) {
            return Err(ConfigError::Invalid { path: shown, problem: "server.limits: requests_per_s > 0, burst >= 1, max_streams_per_client >= 1, max_message_bytes >= 1024, max_in_flight >= 1".into() });
        }
        if !(config.coldchain.sample_s > 0.0 && config.coldchain.sample_s.is_finite()) {
            return Err(ConfigError::Invalid { path: shown, problem: format!("coldchain.sample_s must be positive, got {}", config.coldchain.sample_s) });
        }
        if config.checks.stop_picking_after == 0 {
            return Err(ConfigError::Invalid { path: shown, problem: "checks.stop_picking_after must be at least 1".into() });
        }
        if config.checks.validation_timeout_s == 0 {
            return Err(ConfigError::Invalid { path: shown, problem: "checks.validation_timeout_s must be at least 1".into() });
        }
        if config.scan.agree == 0 || config.scan.agree > config.scan.max_frames {
            return Err(ConfigError::Invalid { path: shown, problem: format!("scan.agree must be 1 to scan.max_frames ({}), got {}", config.scan.max_frames, config.scan.agree) });
        }
        if !(0.0..=60.0).contains(&config.scan.clearance_s) {
            return Err(ConfigError::Invalid { path: shown, problem: format!("scan.clearance_s must be 0 to 60 seconds, got {}", config.scan.clearance_s) });
        }
        if config.scan.max_frames == 0 {
            return Err(ConfigError::Invalid { path: shown, problem: "scan.max_frames must be at least 1".into() });
        }
        match &mut config.hardware {
            HardwareConfig::Simulated { .. } => {}
            HardwareConfig::Wire { devices, .. } => *devices = base.join(&*devices),
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("ws.toml");
        std::fs::write(&path, text).expect("write config");
        path
    }

    const VALID: &str = r#"
        [server]
        listen = "127.0.0.1:0"
        [journal]
        path = "var/j.db"
        [catalog]
        path = "catalog.toml"
        [hardware]
        kind = "simulated"
        [hardware.simulator]
        speed = 20.0
        booths = 4
        [[auth.tokens]]
        name = "front-desk"
        role = "clinic"
        sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
    "#;

    #[test]
    fn paths_resolve_against_the_config_folder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = Config::load(&write(dir.path(), VALID)).expect("valid");
        assert_eq!(config.journal.path, dir.path().join("var/j.db"));
        assert_eq!(config.site.time_zone, chrono_tz::Asia::Shanghai, "the default site is in mainland China");
        let HardwareConfig::Simulated { simulator } = config.hardware else { panic!("simulated hardware") };
        assert_eq!(simulator.get("booths").and_then(toml::Value::as_integer), Some(4), "kept for the simulation side to read");
    }

    #[test]
    fn wire_hardware_names_a_devices_file_beside_the_config() {
        let dir = tempfile::tempdir().expect("tempdir");
        let start = VALID.find("[hardware]").expect("hardware section");
        let auth = VALID.find("[[auth.tokens]]").expect("auth section");
        let wire = format!("{}[hardware]\nkind = \"wire\"\ndevices = \"wire/devices.toml\"\n{}", &VALID[..start], &VALID[auth..]);
        let config = Config::load(&write(dir.path(), &wire)).expect("valid");
        let HardwareConfig::Wire { devices, frame_timeout_ms } = config.hardware else { panic!("wire hardware") };
        assert_eq!((devices, frame_timeout_ms), (dir.path().join("wire/devices.toml"), 2_000));
    }

    #[test]
    fn plain_http_off_loopback_is_refused_unless_loudly_overridden() {
        let dir = tempfile::tempdir().expect("tempdir");
        for listen in ["0.0.0.0:50051", "192.168.1.20:50051", "[::]:50051"] {
            let open = VALID.replace("listen = \"127.0.0.1:0\"", &format!("listen = \"{listen}\""));
            let e = Config::load(&write(dir.path(), &open)).expect_err(listen).to_string();
            assert!(e.contains("not a loopback address") && e.contains("server.tls"), "{e}");
            let overridden = open.replace(&format!("listen = \"{listen}\""), &format!("listen = \"{listen}\"\ninsecure_plaintext_off_loopback = true"));
            Config::load(&write(dir.path(), &overridden)).expect("the override is for closed networks");
        }
        Config::load(&write(dir.path(), &VALID.replace("127.0.0.1:0", "[::1]:0"))).expect("IPv6 loopback is loopback");
    }

    #[test]
    fn mistakes_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let typo = Config::load(&write(dir.path(), &VALID.replace("listen", "lisen"))).expect_err("invalid").to_string();
        assert!(typo.contains("lisen"), "{typo}");
        let zone = Config::load(&write(dir.path(), &format!("[site]\ntime_zone = \"Mars/Olympus\"\n{VALID}"))).expect_err("invalid").to_string();
        assert!(zone.contains("time_zone") && zone.contains("Mars/Olympus"), "{zone}");
        let role = Config::load(&write(dir.path(), &VALID.replace("\"clinic\"", "\"janitor\""))).expect_err("invalid").to_string();
        assert!(role.contains("janitor"), "{role}");
        let missing = Config::load(&dir.path().join("nope.toml")).expect_err("invalid").to_string();
        assert!(missing.contains("nope.toml"), "{missing}");
    }
}
