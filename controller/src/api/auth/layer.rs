//! Authentication, a tower layer under every gRPC service: it
//! authenticates each call (a bearer token, compared by its SHA-256 against the
//! config, or a verified client certificate's common name), applies the role
//! matrix ([`crate::api::auth::roles`]), limits each caller's request rate and open streams,
//! and hands the handlers the [`Caller`] to journal as the actor.

use crate::api::auth::roles::{self, Caller, Needs, Role};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::Status;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

/// `[auth]`: who may call. Tokens are stored as SHA-256 hashes only.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    #[serde(default)]
    pub tokens: Vec<TokenEntry>,
    /// Client certificates (verified against `[server.tls] client_ca`) by common name.
    #[serde(default)]
    pub certificates: Vec<CertificateEntry>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    /// Who holds the token: the actor the journal records.
    pub name: String,
    pub role: Role,
    /// Lower-case hex SHA-256 of the token (`workstation token` prints one).
    pub sha256: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateEntry {
    pub common_name: String,
    pub role: Role,
}

/// `[server.limits]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest request message accepted, bytes.
    pub max_message_bytes: usize,
    /// Server streams (watches, self-test, log export) one caller may hold open.
    pub max_streams_per_client: usize,
    /// Sustained requests per second per caller (token bucket)...
    pub requests_per_s: f64,
    /// ...and the burst it allows.
    pub burst: f64,
    /// HTTP/2 streams per connection.
    pub max_concurrent_streams: u32,
    /// Dispenses in progress at most: StartDispense beyond is RESOURCE_EXHAUSTED
    /// (reason QUEUE_FULL) with a RetryInfo saying when to try again.
    pub max_in_flight: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_message_bytes: 1 << 20, max_streams_per_client: 32, requests_per_s: 50.0, burst: 100.0, max_concurrent_streams: 256, max_in_flight: 500 }
    }
}

impl AuthConfig {
    /// Names the first problem: a malformed hash, a name given twice.
    pub fn check(&self) -> Result<(), String> {
        let mut names = std::collections::HashSet::new();
        for t in &self.tokens {
            if t.sha256.len() != 64 || !t.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!("auth.tokens {:?}: sha256 must be 64 hex digits", t.name));
            }
            if !names.insert(t.name.as_str()) {
                return Err(format!("auth.tokens: {:?} is named twice", t.name));
            }
        }
        if self.tokens.is_empty() && self.certificates.is_empty() {
            return Err("auth: no tokens and no certificates: nobody could call the workstation".into());
        }
        Ok(())
    }
}

/// The SHA-256 of a token, lower-case hex: what the config stores.
pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// A new random token (256 bits from the OS, hex).
pub fn new_token() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness from the OS: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Rate buckets kept before full ones are dropped (a full bucket is the same as none).
const EVICT_ABOVE: usize = 1024;

/// A caller's budget of requests.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// An open server stream; it counts against its caller's limit until dropped.
#[derive(Debug, Clone)]
pub struct StreamPermit(#[allow(dead_code)] Arc<OwnedSemaphorePermit>);

/// Decides each call.
#[derive(Debug)]
pub struct Authenticator {
    tokens: HashMap<String, Caller>,
    certificates: HashMap<String, Caller>,
    limits: Limits,
    buckets: Mutex<HashMap<String, Bucket>>,
    streams: Mutex<HashMap<String, Arc<Semaphore>>>,
}

/// A refusal with its stable reason, in the API's own error domain.
fn refused(code: tonic::Code, reason: &str, message: String) -> Status {
    crate::api::errors::defined(code, reason, message, HashMap::new())
}

impl Authenticator {
    pub fn new(auth: &AuthConfig, limits: Limits) -> Self {
        let caller = |name: &str, role| Caller { name: name.to_owned(), role };
        Self {
            tokens: auth.tokens.iter().map(|t| (t.sha256.to_ascii_lowercase(), caller(&t.name, t.role))).collect(),
            certificates: auth.certificates.iter().map(|c| (c.common_name.clone(), caller(&c.common_name, c.role))).collect(),
            limits,
            buckets: Mutex::new(HashMap::new()),
            streams: Mutex::new(HashMap::new()),
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Admits a call or says why not; on admission the caller (if the method needs
    /// one) goes into the request's extensions, and a stream's permit comes back to
    /// be kept with the response body for as long as the stream is open.
    pub fn admit<B>(&self, request: &mut http::Request<B>) -> Result<Option<StreamPermit>, Status> {
        let path = request.uri().path().to_owned();
        let needs = roles::needs(&path);
        let remote = remote_addr(request);
        let address = || format!("address {}", remote.map_or_else(|| "unknown".into(), |a| a.ip().to_string()));
        if needs == Needs::Nobody {
            // The health check needs no credentials (probes and load balancers call
            // it), but it is no free lunch: it costs its address's budget and a
            // watch counts against the address's open streams.
            let key = address();
            self.spend(&key)?;
            return roles::is_stream(&path).then(|| self.stream_permit(&key)).transpose();
        }
        let caller = match self.identify(request) {
            Ok(caller) => caller,
            Err(status) => {
                // Guessing tokens costs the guesser's address its budget.
                self.spend(&address())?;
                tracing::warn!(path, remote = ?remote, "refused: {}", status.message());
                return Err(status);
            }
        };
        self.spend(&caller.name)?;
        match needs {
            Needs::Unknown => {
                tracing::warn!(path, caller = caller.name, "refused: unknown method");
                return Err(refused(tonic::Code::Unimplemented, "UNKNOWN_METHOD", format!("{path} is not a method this workstation serves")));
            }
            Needs::OneOf(roles) if !roles.contains(&caller.role) => {
                let wanted: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
                tracing::warn!(path, caller = caller.name, role = %caller.role, "refused: role not allowed");
                return Err(refused(
                    tonic::Code::PermissionDenied,
                    "ROLE_NOT_ALLOWED",
                    format!("{} (role {}) may not call {path}; it needs the role {}", caller.name, caller.role, wanted.join(" or ")),
                ));
            }
            Needs::OneOf(_) | Needs::AnyRole | Needs::Nobody => {}
        }
        let permit = roles::is_stream(&path).then(|| self.stream_permit(&caller.name)).transpose()?;
        request.extensions_mut().insert(caller);
        Ok(permit)
    }

    fn identify<B>(&self, request: &http::Request<B>) -> Result<Caller, Status> {
        let unauthenticated = |why: String| refused(tonic::Code::Unauthenticated, "UNAUTHENTICATED", why);
        if let Some(value) = request.headers().get(http::header::AUTHORIZATION) {
            let text = value.to_str().map_err(|_| unauthenticated("the authorization header is not text".into()))?;
            let token = text.strip_prefix("Bearer ").ok_or_else(|| unauthenticated("the authorization header must be \"Bearer <token>\"".into()))?;
            return self.tokens.get(&token_hash(token.trim())).cloned().ok_or_else(|| unauthenticated("the bearer token is not known to this workstation".into()));
        }
        let certs = request.extensions().get::<TlsConnectInfo<TcpConnectInfo>>().and_then(|info| info.peer_certs());
        if let Some(leaf) = certs.as_ref().and_then(|c| c.first()) {
            let name = common_name(leaf.as_ref()).ok_or_else(|| unauthenticated("the client certificate has no common name".into()))?;
            return self.certificates.get(&name).cloned().ok_or_else(|| unauthenticated(format!("client certificate {name:?} is not mapped to a role")));
        }
        Err(unauthenticated("no credentials: send \"authorization: Bearer <token>\" or a client certificate".into()))
    }

    /// Takes one request from the key's bucket.
    fn spend(&self, key: &str) -> Result<(), Status> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let (rate, burst) = (self.limits.requests_per_s, self.limits.burst);
        if buckets.len() >= EVICT_ABOVE && !buckets.contains_key(key) {
            // Forget callers whose budget has filled up again: a full bucket is
            // what a new one would be, so nobody gains a burst by it, and the map
            // holds only the callers of the last few seconds however many come.
            buckets.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < burst);
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket { tokens: burst, at: now });
        bucket.tokens = (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * rate).min(burst);
        bucket.at = now;
        if bucket.tokens < 1.0 {
            return Err(refused(tonic::Code::ResourceExhausted, "RATE_LIMITED", format!("{key}: more than {rate} requests per second (burst {burst}); slow down")));
        }
        bucket.tokens -= 1.0;
        Ok(())
    }

    fn stream_permit(&self, name: &str) -> Result<StreamPermit, Status> {
        let limit = self.limits.max_streams_per_client;
        let mut streams = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        if streams.len() >= EVICT_ABOVE && !streams.contains_key(name) {
            // Callers with no stream open hold nothing worth keeping.
            streams.retain(|_, s| s.available_permits() < limit);
        }
        let semaphore = streams.entry(name.to_owned()).or_insert_with(|| Arc::new(Semaphore::new(limit))).clone();
        drop(streams);
        semaphore.try_acquire_owned().map(|p| StreamPermit(Arc::new(p))).map_err(|_| {
            refused(tonic::Code::ResourceExhausted, "TOO_MANY_STREAMS", format!("{name} already has {limit} streams open; close one first"))
        })
    }
}

fn remote_addr<B>(request: &http::Request<B>) -> Option<SocketAddr> {
    let ext = request.extensions();
    ext.get::<TcpConnectInfo>()
        .and_then(|i| i.remote_addr())
        .or_else(|| ext.get::<TlsConnectInfo<TcpConnectInfo>>().and_then(|i| i.get_ref().remote_addr()))
}

/// The subject's common name of a DER certificate.
fn common_name(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    cert.subject().iter_common_name().next()?.as_str().ok().map(str::to_owned)
}

/// The tower layer putting a [`Authenticator`] in front of a service.
#[derive(Debug, Clone)]
pub struct AuthLayer(pub Arc<Authenticator>);

impl<S> tower::Layer<S> for AuthLayer {
    type Service = AuthService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        AuthService { inner, authenticator: self.0.clone() }
    }
}

#[derive(Debug, Clone)]
pub struct AuthService<S> {
    inner: S,
    authenticator: Arc<Authenticator>,
}

type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S> tower::Service<http::Request<tonic::body::Body>> for AuthService<S>
where
    S: tower::Service<http::Request<tonic::body::Body>, Response = http::Response<tonic::body::Body>> + Send,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<tonic::body::Body>) -> Self::Future {
        let started = std::time::Instant::now();
        let method = request.uri().path().trim_start_matches('/').to_owned();
        let answered: Self::Future = match self.authenticator.admit(&mut request) {
            Ok(None) => Box::pin(self.inner.call(request)),
            Ok(Some(permit)) => {
                let response = self.inner.call(request);
                Box::pin(async move { Ok(response.await?.map(|body| keep_while_open(body, permit))) })
            }
            Err(status) => Box::pin(std::future::ready(Ok(status.into_http()))),
        };
        Box::pin(async move {
            let response = answered.await?;
            // An error answer carries its code in the headers (trailers only); a
            // successful one in trailers, after the body: counted as OK here.
            let code = response.headers().get("grpc-status").and_then(|v| v.to_str().ok()).and_then(|c| c.parse::<i32>().ok()).unwrap_or(0);
            crate::ops::metrics::grpc_answered(&method, &format!("{:?}", tonic::Code::from(code)), started.elapsed().as_secs_f64());
            Ok(response)
        })
    }
}

/// A stream's body that holds its permit: the permit goes when the body is dropped,
/// which is when the stream ends or the client goes away, whichever service (ours,
/// health, reflection) serves it.
fn keep_while_open(body: tonic::body::Body, permit: StreamPermit) -> tonic::body::Body {
    use http_body_util::BodyExt;
    tonic::body::Body::new(body.map_frame(move |frame| {
        let _kept = &permit;
        frame
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authenticator(limits: Limits) -> Authenticator {
        let auth = AuthConfig {
            tokens: vec![
                TokenEntry { name: "front-desk".into(), role: Role::Clinic, sha256: token_hash("clinic-secret") },
                TokenEntry { name: "wall-screen".into(), role: Role::Observer, sha256: token_hash("observer-secret") },
            ],
            certificates: vec![],
        };
        auth.check().expect("valid");
        Authenticator::new(&auth, limits)
    }

    fn request(path: &str, token: Option<&str>) -> http::Request<()> {
        let mut r = http::Request::builder().uri(path);
        if let Some(t) = token {
            r = r.header("authorization", format!("Bearer {t}"));
        }
        r.body(()).expect("request")
    }

    #[test]
    fn tokens_are_checked_by_hash_and_roles_by_the_matrix() {
        let auth = authenticator(Limits::default());
        let mut ok = request("/dispense.v1.DispensingService/StartDispense", Some("clinic-secret"));
        auth.admit(&mut ok).expect("clinic may dispense");
        assert_eq!(ok.extensions().get::<Caller>().map(|c| c.name.as_str()), Some("front-desk"));
        let denied = auth.admit(&mut request("/dispense.v1.DispensingService/StartDispense", Some("observer-secret"))).expect_err("observer");
        assert_eq!(denied.code(), tonic::Code::PermissionDenied);
        assert!(denied.message().contains("wall-screen") && denied.message().contains("clinic"), "{}", denied.message());
        for (token, why) in [(Some("guess"), "not known"), (None, "no credentials")] {
            let e = auth.admit(&mut request("/dispense.v1.DispensingService/GetDispense", token)).expect_err("refused");
            assert_eq!(e.code(), tonic::Code::Unauthenticated);
            assert!(e.message().contains(why), "{}", e.message());
        }
        auth.admit(&mut request("/grpc.health.v1.Health/Check", None)).expect("health needs nobody");
    }

    #[test]
    fn rate_and_streams_are_limited_per_caller() {
        let auth = authenticator(Limits { requests_per_s: 0.001, burst: 3.0, max_streams_per_client: 2, ..Limits::default() });
        let watch = "/dispense.v1.MonitoringService/WatchWorkstation";
        let first = auth.admit(&mut request(watch, Some("observer-secret"))).expect("1");
        let _second = auth.admit(&mut request(watch, Some("observer-secret"))).expect("2");
        let e = auth.admit(&mut request(watch, Some("observer-secret"))).expect_err("third stream");
        assert_eq!(e.code(), tonic::Code::ResourceExhausted);
        assert!(e.message().contains("streams"));
        drop(first); // the permit goes with the stream
        let e = auth.admit(&mut request(watch, Some("observer-secret"))).expect_err("bucket empty after 3");
        assert!(e.message().contains("requests per second"), "{}", e.message());
        // Another caller has its own budget.
        auth.admit(&mut request("/dispense.v1.DispensingService/GetDispense", Some("clinic-secret"))).expect("clinic unaffected");
    }

    #[test]
    fn unknown_paths_are_refused_even_for_a_known_caller() {
        let auth = authenticator(Limits::default());
        for path in ["/dispense.v1.Nope/Nothing", "/dispense.v1.DispensingService/DropTables", "/", "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"] {
            let e = auth.admit(&mut request(path, Some("clinic-secret"))).expect_err(path);
            assert_eq!(e.code(), tonic::Code::Unimplemented, "{path}: {e:?}");
            assert!(e.message().contains("not a method"), "{}", e.message());
        }
    }

    #[test]
    fn health_checks_cost_the_address_budget_and_watches_count_as_streams() {
        let auth = authenticator(Limits { requests_per_s: 0.001, burst: 2.0, max_streams_per_client: 1, ..Limits::default() });
        let watch = auth.admit(&mut request("/grpc.health.v1.Health/Watch", None)).expect("first health watch");
        assert!(watch.is_some(), "a health watch holds a stream permit");
        let e = auth.admit(&mut request("/grpc.health.v1.Health/Watch", None)).expect_err("second watch from the same address");
        assert_eq!(e.code(), tonic::Code::ResourceExhausted);
        drop(watch);
        let e = auth.admit(&mut request("/grpc.health.v1.Health/Check", None)).expect_err("budget spent after 2");
        assert!(e.message().contains("requests per second"), "{}", e.message());
    }

    #[test]
    fn rate_state_is_evicted_once_buckets_are_full_again() {
        let auth = authenticator(Limits { requests_per_s: 1e9, burst: 5.0, ..Limits::default() });
        for n in 0..(3 * EVICT_ABOVE) {
            // A failed guess is charged to an address key; each a new key.
            let _ = auth.spend(&format!("address 10.0.{}.{}", n / 256, n % 256));
        }
        let kept = auth.buckets.lock().expect("lock").len();
        assert!(kept <= EVICT_ABOVE + 1, "{kept} buckets kept for {} callers", 3 * EVICT_ABOVE);
        let auth = authenticator(Limits { requests_per_s: 0.001, burst: 5.0, ..Limits::default() });
        for n in 0..(2 * EVICT_ABOVE) {
            let _ = auth.spend(&format!("address {n}"));
        }
        // Buckets still refilling are kept: evicting them would hand out fresh bursts.
        assert_eq!(auth.buckets.lock().expect("lock").len(), 2 * EVICT_ABOVE);
    }

    #[test]
    fn a_bad_hash_in_the_config_is_named() {
        let auth = AuthConfig { tokens: vec![TokenEntry { name: "x".into(), role: Role::Clinic, sha256: "abc".into() }], certificates: vec![] };
        assert!(auth.check().expect_err("bad").contains("64 hex"));
    }
}
