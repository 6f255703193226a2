//! The wire between controller and device, with its faults: a serial line on a
//! pseudo-terminal (relayed with the transmission time of its baud rate, and with
//! injected noise or a pulled cable), or a Modbus TCP port.

use super::core::DeviceCore;
use super::service::ModbusService;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;
use tokio_serial::SerialStream;

/// Faults on one device's wire.
#[derive(Debug)]
pub struct LineControl {
    state: Mutex<LineState>,
}

#[derive(Debug)]
struct LineState {
    /// Fraction of chunks in which one bit flips.
    noise: f64,
    unplugged_until: Option<Instant>,
    corrupted: u64,
    rng: SmallRng,
}

impl LineControl {
    pub fn new(seed: u64) -> Self {
        Self { state: Mutex::new(LineState { noise: 0.0, unplugged_until: None, corrupted: 0, rng: SmallRng::seed_from_u64(seed) }) }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, LineState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set_noise(&self, rate: f64) {
        self.state().noise = rate.clamp(0.0, 1.0);
    }

    pub fn unplug(&self, duration: Duration) {
        self.state().unplugged_until = Some(Instant::now() + duration);
    }

    pub fn unplugged(&self) -> bool {
        self.state().unplugged_until.is_some_and(|t| Instant::now() < t)
    }

    /// Chunks corrupted so far.
    pub fn corrupted(&self) -> u64 {
        self.state().corrupted
    }

    /// What reaches the other end of the wire: nothing while unplugged, and now and
    /// then a flipped bit.
    fn pass(&self, bytes: &mut [u8]) -> bool {
        let mut s = self.state();
        if s.unplugged_until.is_some_and(|t| Instant::now() < t) {
            return false;
        }
        let noise = s.noise;
        if noise > 0.0 && !bytes.is_empty() && s.rng.random_bool(noise) {
            let at = s.rng.random_range(0..bytes.len());
            bytes[at] ^= 1 << s.rng.random_range(0..8);
            s.corrupted += 1;
        }
        true
    }
}

/// Serves `core` as Modbus RTU on a new pseudo-terminal and returns the path the
/// controller opens. Between the two sits a relay that takes as long as the bytes
/// need at `baud` (10 bits each) and applies the line's faults.
pub fn serve_rtu(core: Arc<DeviceCore>, line: Arc<LineControl>, baud: u32) -> std::io::Result<String> {
    let (device_end, relay_device_side) = SerialStream::pair()?;
    let (relay_outer_side, exposed) = SerialStream::pair()?;
    let path = tokio_serial::SerialPort::name(&exposed).ok_or_else(|| std::io::Error::other("pseudo-terminal has no name"))?;
    let service = ModbusService::new(core, line.clone());
    tokio::spawn(async move {
        if let Err(e) = tokio_modbus::server::rtu::Server::new(device_end).serve_forever(service).await {
            tracing::warn!("RTU server stopped: {e}");
        }
    });
    let (dev_read, dev_write) = tokio::io::split(relay_device_side);
    let (out_read, out_write) = tokio::io::split(relay_outer_side);
    let byte_time = Duration::from_secs_f64(10.0 / f64::from(baud.max(1)));
    tokio::spawn(relay(out_read, dev_write, line.clone(), byte_time));
    tokio::spawn(async move {
        // Holding the exposed end open keeps the pty alive between controller
        // connections (otherwise the relay would read EIO when the controller closes it).
        let _exposed = exposed;
        relay(dev_read, out_write, line, byte_time).await;
    });
    Ok(path)
}

pub(super) async fn relay<R, W>(mut from: R, mut to: W, line: Arc<LineControl>, byte_time: Duration)
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    let mut buf = [0u8; 512];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) => {
                tracing::debug!("serial relay read: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        tokio::time::sleep(byte_time * n as u32).await;
        let chunk = &mut buf[..n];
        if line.pass(chunk) && to.write_all(chunk).await.is_err() {
            return;
        }
    }
}

/// Serves `core` as Modbus TCP on `bind`; returns the bound address. While the line is
/// unplugged new connections are dropped and open ones get no answers.
pub async fn serve_tcp(core: Arc<DeviceCore>, line: Arc<LineControl>, bind: SocketAddr) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(bind).await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        let server = tokio_modbus::server::tcp::Server::new(listener);
        let on_connected = |stream: tokio::net::TcpStream, _peer: SocketAddr| {
            let accepted = (!line.unplugged()).then(|| (ModbusService::new(core.clone(), line.clone()), stream));
            async move { Ok(accepted) }
        };
        if let Err(e) = server.serve(&on_connected, |e| tracing::debug!("Modbus TCP connection: {e}")).await {
            tracing::warn!("Modbus TCP server stopped: {e}");
        }
    });
    Ok(address)
}
