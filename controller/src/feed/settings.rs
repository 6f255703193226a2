//! `[events]`: where the event feed goes (an MQTT 5 broker), who this workstation
//! is on it, its credentials, and the outbox's bounds.

use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsConfig {
    /// `mqtt://host:port` (plain, for loopback or a closed network) or
    /// `mqtts://host:port` (TLS; port 8883 when left out).
    pub broker: String,
    /// The site's id in the city's topics: `vaccination/{site}/{workstation}/{kind}`.
    pub site: String,
    /// This workstation's id there (and its MQTT client id).
    pub workstation: String,
    pub username: Option<String>,
    /// A file holding the password (kept out of the config, which is shared more widely).
    pub password_file: Option<PathBuf>,
    /// CA certificate (PEM) the broker's certificate must chain to, for `mqtts`.
    pub ca: Option<PathBuf>,
    /// Client certificate and key (PEM) for brokers that authenticate clients by certificate.
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    /// How long events the broker took stay in the outbox (for a consumer that
    /// asks the workstation to replay); events it has not taken are never deleted.
    #[serde(default = "default_retention_days")]
    pub retention_days: u32,
    /// The backlog fault: raised when more events than this wait for the broker…
    #[serde(default = "default_backlog_events")]
    pub backlog_fault_events: i64,
    /// …or when the oldest has waited longer than this many minutes.
    #[serde(default = "default_backlog_minutes")]
    pub backlog_fault_minutes: u32,
}

fn default_retention_days() -> u32 {
    7
}

fn default_backlog_events() -> i64 {
    10_000
}

fn default_backlog_minutes() -> u32 {
    15
}

/// Where the broker is and how to speak to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broker {
    pub host: String,
    pub port: u16,
    pub tls: bool,
}

impl EventsConfig {
    /// Checks what can be checked before any connection: the broker's address and
    /// that topic segments hold no MQTT wildcard or separator.
    pub fn validate(&self) -> Result<(), String> {
        self.broker()?;
        for (name, value) in [("site", &self.site), ("workstation", &self.workstation)] {
            if value.is_empty() || value.contains(['/', '+', '#']) {
                return Err(format!("[events] {name} = {value:?}: a topic segment must be non-empty and hold no '/', '+' or '#'"));
            }
        }
        if self.client_cert.is_some() != self.client_key.is_some() {
            return Err("[events] client_cert and client_key go together".into());
        }
        if self.backlog_fault_events < 1 {
            return Err("[events] backlog_fault_events must be at least 1".into());
        }
        Ok(())
    }

    /// The broker's address, from `broker`.
    pub fn broker(&self) -> Result<Broker, String> {
        let bad = |why: &str| format!("[events] broker = {:?}: {why} (write mqtt://host:port or mqtts://host:port)", self.broker);
        let (tls, rest) = match self.broker.split_once("://") {
            Some(("mqtt", rest)) => (false, rest),
            Some(("mqtts", rest)) => (true, rest),
            Some((scheme, _)) => return Err(bad(&format!("unknown scheme {scheme:?}"))),
            None => return Err(bad("no scheme")),
        };
        let rest = rest.trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) => (host, port.parse::<u16>().map_err(|_| bad(&format!("port {port:?} is not a number up to 65535")))?),
            None => (rest, if tls { 8883 } else { 1883 }),
        };
        if host.is_empty() || host.contains('/') {
            return Err(bad("no host"));
        }
        Ok(Broker { host: host.trim_start_matches('[').trim_end_matches(']').to_owned(), port, tls })
    }

    /// Resolves the files against the config's folder.
    pub fn resolve(&mut self, base: &Path) {
        for path in [&mut self.password_file, &mut self.ca, &mut self.client_cert, &mut self.client_key].into_iter().flatten() {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        }
    }

    pub fn retention(&self) -> Duration {
        Duration::from_secs(u64::from(self.retention_days) * 86_400)
    }

    pub fn backlog_age_limit(&self) -> Duration {
        Duration::from_secs(u64::from(self.backlog_fault_minutes) * 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(broker: &str) -> EventsConfig {
        toml::from_str(&format!("broker = {broker:?}\nsite = \"futian-03\"\nworkstation = \"ws-01\"")).expect("parses")
    }

    #[test]
    fn broker_addresses_are_read_or_refused_by_name() {
        assert_eq!(config("mqtt://127.0.0.1:1884").broker(), Ok(Broker { host: "127.0.0.1".into(), port: 1884, tls: false }));
        assert_eq!(config("mqtts://broker.city.example").broker(), Ok(Broker { host: "broker.city.example".into(), port: 8883, tls: true }));
        assert_eq!(config("mqtt://[::1]:1883").broker(), Ok(Broker { host: "::1".into(), port: 1883, tls: false }));
        assert!(config("http://x:1").broker().expect_err("refused").contains("unknown scheme \"http\""));
        assert!(config("broker:1883").broker().expect_err("refused").contains("no scheme"));
        assert!(config("mqtt://x:99999").broker().expect_err("refused").contains("port \"99999\""));
        let mut wild = config("mqtt://x:1");
        wild.site = "a/#".into();
        assert!(wild.validate().expect_err("refused").contains("[events] site"));
    }
}
