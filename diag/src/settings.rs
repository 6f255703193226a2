//! Where the workstation is and who the caller is: from flags, environment
//! variables (`WSCTL_ADDR`, `WSCTL_TOKEN`, `WSCTL_CA`, `WSCTL_CERT`, `WSCTL_KEY`,
//! `WSCTL_DOMAIN`) or a small TOML file (`--config`, `WSCTL_CONFIG`, or
//! `wsctl/config.toml` in the user's config folder: `$XDG_CONFIG_HOME`, else
//! `~/.config`), in that order of precedence; and how long to wait for the
//! connection and for each answer (an unreachable host fails in seconds).

use crate::failure::{Exit, Failure, Result};
use dispense_proto::client::{Authorized, ClientTls};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The connection options on the command line (each also from its variable).
#[derive(Debug, Clone, clap::Args)]
pub struct Flags {
    /// The workstation's gRPC address (https:// for TLS).
    #[arg(long, env = "WSCTL_ADDR", global = true)]
    pub addr: Option<String>,
    /// Bearer token (the workstation stores only its hash).
    #[arg(long, env = "WSCTL_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// CA certificate (PEM) that signed the workstation's certificate.
    #[arg(long, env = "WSCTL_CA", global = true)]
    pub ca: Option<PathBuf>,
    /// Client certificate (PEM), for a workstation that maps certificates to roles.
    #[arg(long, env = "WSCTL_CERT", global = true)]
    pub cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, env = "WSCTL_KEY", global = true)]
    pub key: Option<PathBuf>,
    /// The name in the workstation's certificate, if not the address's host.
    #[arg(long, env = "WSCTL_DOMAIN", global = true)]
    pub domain: Option<String>,
    /// A TOML file with any of: addr, token, ca, cert, key, domain.
    #[arg(long, env = "WSCTL_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// How long to wait for the connection (e.g. 5s).
    #[arg(long, env = "WSCTL_CONNECT_TIMEOUT", global = true, default_value = "5s", value_parser = crate::show::span)]
    pub connect_timeout: chrono::Duration,
    /// How long to wait for each answer to begin (e.g. 30s); a watch then runs until stopped.
    #[arg(long, env = "WSCTL_TIMEOUT", global = true, default_value = "30s", value_parser = crate::show::span)]
    pub timeout: chrono::Duration,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    addr: Option<String>,
    token: Option<String>,
    ca: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    domain: Option<String>,
}

const DEFAULT_ADDR: &str = "http://127.0.0.1:50051";

fn load(path: &Path) -> Result<File> {
    let text = std::fs::read_to_string(path).map_err(|e| Failure::new(Exit::BadInput, format!("config {}: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| Failure::new(Exit::BadInput, format!("config {}: {e}", path.display())))
}

impl Flags {
    /// Fills what the flags and variables left open from the config file.
    fn resolved(&self) -> Result<Flags> {
        // dirs follows the XDG base directories: $XDG_CONFIG_HOME, else ~/.config.
        let home = dirs::config_dir().map(|d| d.join("wsctl/config.toml"));
        let file = match (&self.config, home) {
            (Some(path), _) => load(path)?,
            (None, Some(path)) if path.is_file() => load(&path)?,
            _ => File::default(),
        };
        Ok(Flags {
            addr: self.addr.clone().or(file.addr),
            token: self.token.clone().or(file.token),
            ca: self.ca.clone().or(file.ca),
            cert: self.cert.clone().or(file.cert),
            key: self.key.clone().or(file.key),
            domain: self.domain.clone().or(file.domain),
            config: self.config.clone(),
            connect_timeout: self.connect_timeout,
            timeout: self.timeout,
        })
    }

    /// The connect and request timeouts the flags set.
    pub fn timeouts(&self) -> Result<dispense_proto::client::Timeouts> {
        let span = |d: chrono::Duration, flag: &str| d.to_std().ok().filter(|d| !d.is_zero()).ok_or_else(|| Failure::new(Exit::BadInput, format!("{flag} must be more than nothing")));
        Ok(dispense_proto::client::Timeouts { connect: span(self.connect_timeout, "--connect-timeout")?, request: span(self.timeout, "--timeout")? })
    }

    /// Connects as these settings say; the channel and the address it goes to.
    pub async fn connect(&self) -> Result<(Authorized, String)> {
        let s = self.resolved()?;
        let addr = s.addr.clone().unwrap_or_else(|| DEFAULT_ADDR.to_owned());
        let read = |p: &PathBuf| std::fs::read(p).map_err(|e| Failure::new(Exit::BadInput, format!("{}: {e}", p.display())));
        let tls = match (&s.ca, &s.cert, &s.key) {
            (None, None, None) => None,
            (ca, cert, key) => {
                let identity = match (cert, key) {
                    (Some(c), Some(k)) => Some((read(c)?, read(k)?)),
                    (None, None) => None,
                    _ => return Err(Failure::new(Exit::BadInput, "--cert and --key go together")),
                };
                let ca_pem = ca.as_ref().map(read).transpose()?.ok_or_else(|| Failure::new(Exit::BadInput, "TLS needs --ca (the CA that signed the workstation's certificate)"))?;
                Some(ClientTls { ca_pem, domain: s.domain.clone(), identity })
            }
        };
        let timeouts = s.timeouts()?;
        let channel = dispense_proto::client::connect_with(&addr, s.token.as_deref(), tls.as_ref(), timeouts)
            .await
            .map_err(|e| Failure::new(Exit::Unreachable, format!("cannot reach the workstation at {addr}: {e}")))?;
        Ok((channel, addr))
    }
}
