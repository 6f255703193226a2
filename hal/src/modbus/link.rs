//! [`ModbusLink`]: one Modbus device over RTU (serial) or TCP, with per-request
//! timeouts, bounded retries with backoff, and reconnection after a timeout or a
//! broken link, so an unplugged device that comes back needs no restart.

use crate::error::{DeviceError, ErrorKind};
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::Mutex as SyncMutex;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio_modbus::client::{Client, Context, Writer};
use tokio_modbus::{ExceptionCode, Request, Response, Slave};
use tokio_serial::SerialPort;

/// How a device is reached.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "transport", rename_all = "lowercase", deny_unknown_fields)]
pub enum Transport {
    /// Modbus RTU on a serial port (RS-485 adapter, or a pseudo-terminal in simulation).
    Rtu { path: String, baud: u32, unit: u8 },
    /// Modbus TCP.
    Tcp { address: SocketAddr, unit: u8 },
    /// The same framing over an in-memory stream to a simulated device: scenario
    /// runs on a virtual clock, where a pseudo-terminal or a socket would let the
    /// paused clock race ahead of the bytes. Never in a devices file.
    #[serde(skip)]
    Memory(MemoryPort),
}

/// Which Modbus framing an in-memory line carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// RTU: unit, PDU, CRC-16.
    Rtu,
    /// TCP: the MBAP header, then unit and PDU.
    Tcp,
}

/// Opens a new in-memory connection to a device (as the link does after a timeout).
pub type Connect = std::sync::Arc<dyn Fn() -> std::io::Result<tokio::io::DuplexStream> + Send + Sync>;

/// An in-memory line to a simulated device.
#[derive(Clone)]
pub struct MemoryPort {
    pub name: String,
    pub framing: Framing,
    pub unit: u8,
    pub connect: Connect,
}

impl std::fmt::Debug for MemoryPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryPort").field("name", &self.name).field("framing", &self.framing).field("unit", &self.unit).finish_non_exhaustive()
    }
}

impl PartialEq for MemoryPort {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.framing == other.framing && self.unit == other.unit && std::sync::Arc::ptr_eq(&self.connect, &other.connect)
    }
}

impl Eq for MemoryPort {}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transport::Rtu { path, baud, unit } => write!(f, "rtu:{path}@{baud} unit {unit}"),
            Transport::Tcp { address, unit } => write!(f, "tcp:{address} unit {unit}"),
            Transport::Memory(port) => write!(f, "memory:{} ({:?} framing) unit {}", port.name, port.framing, port.unit),
        }
    }
}

/// Timing of requests, retries and heartbeats (defaults as in REGISTERS.md).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LinkTiming {
    pub request_timeout_ms: u64,
    /// Attempts after the first one, for timeouts and broken links.
    pub retries: u32,
    /// Backoff before retry n is `backoff_ms · 2ⁿ⁻¹`.
    pub backoff_ms: u64,
    pub heartbeat_period_ms: u64,
    /// No change of the device's heartbeat for this long raises "device silent".
    pub heartbeat_timeout_ms: u64,
    /// How often a running job's slot is polled.
    pub poll_ms: u64,
}

impl Default for LinkTiming {
    fn default() -> Self {
        Self { request_timeout_ms: 100, retries: 3, backoff_ms: 10, heartbeat_period_ms: 100, heartbeat_timeout_ms: 500, poll_ms: 20 }
    }
}

impl LinkTiming {
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
    pub fn poll(&self) -> Duration {
        Duration::from_millis(self.poll_ms)
    }
    pub fn heartbeat_period(&self) -> Duration {
        Duration::from_millis(self.heartbeat_period_ms)
    }
    pub fn heartbeat_timeout(&self) -> Duration {
        Duration::from_millis(self.heartbeat_timeout_ms)
    }
}

/// What the link has seen, for the maintenance status and the figures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkStats {
    pub requests: u64,
    pub retries: u64,
    pub timeouts: u64,
    pub reconnects: u64,
    pub exceptions: u64,
}

/// One device on one transport. Requests are serialised (a Modbus line carries one
/// transaction at a time); cheap to share behind an `Arc`.
pub struct ModbusLink {
    device: &'static str,
    transport: Transport,
    timing: LinkTiming,
    context: Mutex<Option<Context>>,
    stats: SyncMutex<LinkStats>,
}

impl std::fmt::Debug for ModbusLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModbusLink").field("device", &self.device).field("transport", &self.transport).finish_non_exhaustive()
    }
}

/// Whether a failed attempt is worth repeating on a fresh connection.
enum Attempt<T> {
    Done(T),
    Retry(DeviceError),
    Fail(DeviceError),
}

impl ModbusLink {
    pub fn new(device: &'static str, transport: Transport, timing: LinkTiming) -> Self {
        Self { device, transport, timing, context: Mutex::new(None), stats: SyncMutex::new(LinkStats::default()) }
    }

    pub fn device(&self) -> &'static str {
        self.device
    }

    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    pub fn timing(&self) -> &LinkTiming {
        &self.timing
    }

    pub fn stats(&self) -> LinkStats {
        self.stats.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn count(&self, f: impl FnOnce(&mut LinkStats)) {
        f(&mut self.stats.lock().unwrap_or_else(|p| p.into_inner()));
    }

    pub async fn read_input(&self, address: u16, count: u16) -> Result<Vec<u16>, DeviceError> {
        self.call(|ctx| Box::pin(async move { checked_read(ctx, Request::ReadInputRegisters(address, count), count).await })).await
    }

    pub async fn read_holding(&self, address: u16, count: u16) -> Result<Vec<u16>, DeviceError> {
        self.call(|ctx| Box::pin(async move { checked_read(ctx, Request::ReadHoldingRegisters(address, count), count).await })).await
    }

    pub async fn write(&self, address: u16, values: &[u16]) -> Result<(), DeviceError> {
        let values = values.to_vec();
        self.call(move |ctx| {
            let values = values.clone();
            Box::pin(async move { ctx.write_multiple_registers(address, &values).await })
        })
        .await
    }

    /// Runs one request with the retry policy: a timeout or a broken transport drops
    /// the connection (a late answer must never be taken for the next request's) and
    /// tries again after a growing pause; a device exception is final.
    async fn call<T, F>(&self, request: F) -> Result<T, DeviceError>
    where
        F: for<'c> Fn(&'c mut Context) -> std::pin::Pin<Box<dyn Future<Output = tokio_modbus::Result<T>> + Send + 'c>>,
    {
        let mut last = None;
        for attempt in 0..=self.timing.retries {
            if attempt > 0 {
                self.count(|s| s.retries += 1);
                tokio::time::sleep(Duration::from_millis(self.timing.backoff_ms << (attempt - 1).min(6))).await;
            }
            match self.attempt(&request).await {
                Attempt::Done(value) => return Ok(value),
                Attempt::Fail(e) => return Err(e),
                Attempt::Retry(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| self.error(ErrorKind::NoResponse, "no attempt made")))
    }

    async fn attempt<T, F>(&self, request: &F) -> Attempt<T>
    where
        F: for<'c> Fn(&'c mut Context) -> std::pin::Pin<Box<dyn Future<Output = tokio_modbus::Result<T>> + Send + 'c>>,
    {
        let mut guard = self.context.lock().await;
        if guard.is_none() {
            match self.connect().await {
                Ok(ctx) => *guard = Some(ctx),
                Err(e) => return Attempt::Retry(e),
            }
        }
        let Some(ctx) = guard.as_mut() else { return Attempt::Retry(self.error(ErrorKind::NoResponse, "not connected")) };
        self.count(|s| s.requests += 1);
        match tokio::time::timeout(self.timing.request_timeout(), request(ctx)).await {
            Ok(Ok(Ok(value))) => Attempt::Done(value),
            Ok(Ok(Err(exception))) => {
                self.count(|s| s.exceptions += 1);
                Attempt::Fail(self.exception(exception))
            }
            Ok(Err(e)) => {
                *guard = None;
                Attempt::Retry(self.error(ErrorKind::NoResponse, format!("{}: {e}", self.transport)))
            }
            Err(_) => {
                *guard = None;
                self.count(|s| s.timeouts += 1);
                Attempt::Retry(self.error(ErrorKind::Timeout, format!("{}: no answer within {:?}", self.transport, self.timing.request_timeout())))
            }
        }
    }

    async fn connect(&self) -> Result<Context, DeviceError> {
        self.count(|s| s.reconnects += 1);
        let opened = tokio::time::timeout(self.timing.request_timeout(), async {
            match &self.transport {
                Transport::Rtu { path, baud, unit } => {
                    let port = tokio_serial::SerialStream::open(&tokio_serial::new(path, *baud)).map_err(|e| e.to_string())?;
                    // Bytes of an answer that came too late must not start the next frame.
                    port.clear(tokio_serial::ClearBuffer::All).map_err(|e| e.to_string())?;
                    Ok::<_, String>(tokio_modbus::client::rtu::attach_slave(port, Slave(*unit)))
                }
                Transport::Tcp { address, unit } => {
                    let stream = tokio::net::TcpStream::connect(address).await.map_err(|e| e.to_string())?;
                    stream.set_nodelay(true).map_err(|e| e.to_string())?;
                    Ok(tokio_modbus::client::tcp::attach_slave(stream, Slave(*unit)))
                }
                Transport::Memory(port) => {
                    let stream = (port.connect)().map_err(|e| e.to_string())?;
                    Ok(match port.framing {
                        Framing::Rtu => tokio_modbus::client::rtu::attach_slave(stream, Slave(port.unit)),
                        Framing::Tcp => tokio_modbus::client::tcp::attach_slave(stream, Slave(port.unit)),
                    })
                }
            }
        })
        .await;
        match opened {
            Ok(Ok(ctx)) => Ok(ctx),
            Ok(Err(why)) => Err(self.error(ErrorKind::NoResponse, format!("cannot open {}: {why}", self.transport))),
            Err(_) => Err(self.error(ErrorKind::Timeout, format!("opening {} timed out", self.transport))),
        }
    }

    fn exception(&self, code: ExceptionCode) -> DeviceError {
        self.error(ErrorKind::Exception, format!("{} answered with exception {code:?}", self.transport))
    }

    pub(crate) fn error(&self, kind: ErrorKind, detail: impl Into<String>) -> DeviceError {
        DeviceError::new(self.device, kind, detail)
    }
}


/// Reads registers and checks the answer is the one asked for: the same function
/// and exactly `count` registers. Anything else (a late answer to an earlier
/// request, a frame with a valid CRC but the wrong length) is a broken line, not
/// data: the connection is dropped and the request tried again, and never indexed.
async fn checked_read(ctx: &mut Context, request: Request<'static>, count: u16) -> tokio_modbus::Result<Vec<u16>> {
    let answer = ctx.call(request).await?;
    let words = match answer {
        Ok(Response::ReadInputRegisters(words) | Response::ReadHoldingRegisters(words)) => words,
        Ok(other) => return Err(mismatch(format!("answer {other:?} to a register read"))),
        Err(exception) => return Ok(Err(exception)),
    };
    if words.len() != usize::from(count) {
        return Err(mismatch(format!("{} registers in the answer, {count} asked for", words.len())));
    }
    Ok(Ok(words))
}

fn mismatch(detail: String) -> tokio_modbus::Error {
    tokio_modbus::Error::Transport(std::io::Error::new(std::io::ErrorKind::InvalidData, detail))
}
