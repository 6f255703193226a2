//! Connecting to the workstation as a client: a channel (plain or TLS, optionally
//! with a client certificate) and the bearer token every call carries.

use tonic::metadata::AsciiMetadataValue;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Request, Status};

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Debug, Clone)]
pub struct Bearer(Option<AsciiMetadataValue>);

impl Bearer {
    /// `None`: no header (a client certificate identifies the caller).
    pub fn new(token: Option<&str>) -> Result<Self, String> {
        token
            .map(|t| format!("Bearer {t}").parse::<AsciiMetadataValue>().map_err(|_| "a token must be printable ASCII".to_owned()))
            .transpose()
            .map(Self)
    }
}

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// A channel with the caller's token on every call.
pub type Authorized = InterceptedService<Channel, Bearer>;

/// TLS settings of a client: the CA that signed the server's certificate, the name
/// to expect in it, and optionally the client's own certificate and key (PEM).
#[derive(Debug, Clone, Default)]
pub struct ClientTls {
    pub ca_pem: Vec<u8>,
    pub domain: Option<String>,
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
}

/// How long a client waits: for the connection, and for each call's answer to
/// begin (a stream's messages then come as they come).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: std::time::Duration,
    pub request: std::time::Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self { connect: std::time::Duration::from_secs(5), request: std::time::Duration::from_secs(30) }
    }
}

/// Connects to `address` (`http://host:port`, or `https://` with `tls`) with the
/// default [`Timeouts`]: an unreachable host is an error in seconds, not a hang.
pub async fn connect(address: &str, token: Option<&str>, tls: Option<&ClientTls>) -> Result<Authorized, Box<dyn std::error::Error + Send + Sync>> {
    connect_with(address, token, tls, Timeouts::default()).await
}

/// [`connect`] with these timeouts.
pub async fn connect_with(address: &str, token: Option<&str>, tls: Option<&ClientTls>, timeouts: Timeouts) -> Result<Authorized, Box<dyn std::error::Error + Send + Sync>> {
    let mut endpoint = Endpoint::from_shared(address.to_owned())?.connect_timeout(timeouts.connect).timeout(timeouts.request);
    if let Some(tls) = tls {
        let mut config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&tls.ca_pem));
        if let Some(domain) = &tls.domain {
            config = config.domain_name(domain.clone());
        }
        if let Some((cert, key)) = &tls.identity {
            config = config.identity(Identity::from_pem(cert, key));
        }
        endpoint = endpoint.tls_config(config)?;
    }
    let channel = endpoint.connect().await?;
    Ok(InterceptedService::new(channel, Bearer::new(token)?))
}
