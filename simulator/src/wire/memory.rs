//! The field devices over in-memory streams, for scenario runs on a virtual clock:
//! the same register map, the same Modbus RTU and TCP framing, the same line faults
//! (the relay of [`super::line`] sits between the controller's end and the device),
//! but no pseudo-terminal or socket, whose bytes a paused clock would not wait for.
//! Each connection the controller's link opens gets a fresh stream and server.

use super::line::{LineControl, relay};
use super::service::ModbusService;
use hal::modbus::link::{Connect, Framing, MemoryPort};
use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio_modbus::server::Service;
use tokio_modbus::{ExceptionCode, Request, Response, SlaveRequest};

/// Room in each in-memory pipe: a few frames.
const PIPE_BYTES: usize = 4096;

/// The line `service` answers on, as a port for the controller's link. RTU lines
/// carry bytes at `baud` (10 bits each) through the fault relay (noise, a pulled
/// cable); TCP lines refuse new connections while unplugged and, like the socket
/// server, are not touched by line noise.
pub fn port(name: &str, framing: Framing, unit: u8, service: ModbusService, line: Arc<LineControl>, baud: u32) -> MemoryPort {
    let byte_time = Duration::from_secs_f64(10.0 / f64::from(baud.max(1)));
    let connect: Connect = Arc::new(move || {
        if framing == Framing::Tcp && line.unplugged() {
            return Err(std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "unplugged"));
        }
        let (controller_end, device_side) = tokio::io::duplex(PIPE_BYTES);
        let device_end = match framing {
            // TCP's own checksums and retransmission hide line noise, as on the socket server.
            Framing::Tcp => device_side,
            Framing::Rtu => {
                let (relay_inner, device_end) = tokio::io::duplex(PIPE_BYTES);
                let (out_read, out_write) = tokio::io::split(device_side);
                let (in_read, in_write) = tokio::io::split(relay_inner);
                tokio::spawn(relay(out_read, in_write, line.clone(), byte_time));
                tokio::spawn(relay(in_read, out_write, line.clone(), byte_time));
                device_end
            }
        };
        tokio::spawn(serve(device_end, framing, service.clone()));
        Ok(controller_end)
    });
    MemoryPort { name: name.to_owned(), framing, unit, connect }
}

/// Bytes that arrive after this much silence start a new frame (RTU's 3.5
/// character gap, generously): a garbled frame is dropped, not joined to the next.
const FRAME_GAP: Duration = Duration::from_millis(5);

/// Reads frames off `stream` and answers each as the device would.
async fn serve(stream: DuplexStream, framing: Framing, service: ModbusService) {
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 512];
    loop {
        let read = if buf.is_empty() {
            rd.read(&mut chunk).await
        } else {
            match tokio::time::timeout(FRAME_GAP, rd.read(&mut chunk)).await {
                Ok(read) => read,
                Err(_) => {
                    buf.clear();
                    continue;
                }
            }
        };
        let n = match read {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        loop {
            let taken = match framing {
                Framing::Rtu => take_rtu(&mut buf),
                Framing::Tcp => take_tcp(&mut buf),
            };
            match taken {
                Taken::More => break,
                Taken::Garbled => {
                    // A real device cannot frame it and stays silent; the controller retries.
                    buf.clear();
                    break;
                }
                Taken::Frame { unit, pdu, header } => {
                    let Some(answer) = answer(&service, unit, &pdu) else { continue };
                    let bytes = match framing {
                        Framing::Rtu => with_crc([&[unit][..], &answer].concat()),
                        Framing::Tcp => [&header[..4], &(answer.len() as u16 + 1).to_be_bytes()[..], &[unit], &answer].concat(),
                    };
                    if wr.write_all(&bytes).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

enum Taken {
    More,
    Garbled,
    Frame { unit: u8, pdu: Vec<u8>, header: Vec<u8> },
}

/// One RTU request off the front of `buf`: its length follows from the function code.
fn take_rtu(buf: &mut Vec<u8>) -> Taken {
    let Some(&function) = buf.get(1) else { return Taken::More };
    let len = match function {
        3 | 4 | 6 => 8,
        16 => match buf.get(6) {
            Some(&count) => 9 + usize::from(count),
            None => return Taken::More,
        },
        _ => return Taken::Garbled,
    };
    if buf.len() < len {
        return Taken::More;
    }
    let frame: Vec<u8> = buf.drain(..len).collect();
    if crc16(&frame[..len - 2]).to_le_bytes() != frame[len - 2..] {
        return Taken::Garbled;
    }
    Taken::Frame { unit: frame[0], pdu: frame[1..len - 2].to_vec(), header: Vec::new() }
}

/// One TCP request (MBAP header, unit, PDU) off the front of `buf`.
fn take_tcp(buf: &mut Vec<u8>) -> Taken {
    if buf.len() < 7 {
        return Taken::More;
    }
    let len = usize::from(u16::from_be_bytes([buf[4], buf[5]]));
    if buf[2..4] != [0, 0] || !(2..=254).contains(&len) {
        return Taken::Garbled;
    }
    if buf.len() < 6 + len {
        return Taken::More;
    }
    let frame: Vec<u8> = buf.drain(..6 + len).collect();
    Taken::Frame { unit: frame[6], pdu: frame[7..].to_vec(), header: frame[..6].to_vec() }
}

/// The answer PDU to a request PDU, or none (not this unit, a silent device, a PDU that does not parse).
fn answer(service: &ModbusService, unit: u8, pdu: &[u8]) -> Option<Vec<u8>> {
    let (&function, body) = pdu.split_first()?;
    let word = |i: usize| body.get(2 * i..2 * i + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    let request = match function {
        3 => Request::ReadHoldingRegisters(word(0)?, word(1)?),
        4 => Request::ReadInputRegisters(word(0)?, word(1)?),
        6 => Request::WriteSingleRegister(word(0)?, word(1)?),
        16 => {
            let (start, count) = (word(0)?, word(1)?);
            let values: Option<Vec<u16>> = (0..usize::from(count)).map(|i| body.get(5 + 2 * i..7 + 2 * i).map(|b| u16::from_be_bytes([b[0], b[1]]))).collect();
            Request::WriteMultipleRegisters(start, Cow::Owned(values?))
        }
        _ => return Some(vec![function | 0x80, u8::from(ExceptionCode::IllegalFunction)]),
    };
    // The service answers at once: its future is `Ready`.
    let outcome = service.call(SlaveRequest { slave: unit, request }).into_inner();
    Some(match outcome {
        Ok(None) => return None,
        Ok(Some(Response::ReadHoldingRegisters(values) | Response::ReadInputRegisters(values))) => {
            let mut out = vec![function, (values.len() * 2) as u8];
            out.extend(values.iter().flat_map(|v| v.to_be_bytes()));
            out
        }
        Ok(Some(Response::WriteSingleRegister(a, v))) => [vec![function], a.to_be_bytes().to_vec(), v.to_be_bytes().to_vec()].concat(),
        Ok(Some(Response::WriteMultipleRegisters(a, n))) => [vec![function], a.to_be_bytes().to_vec(), n.to_be_bytes().to_vec()].concat(),
        Ok(Some(_)) => vec![function | 0x80, u8::from(ExceptionCode::ServerDeviceFailure)],
        Err(code) => vec![function | 0x80, u8::from(code)],
    })
}

/// `frame` with its CRC-16/MODBUS appended, low byte first.
fn with_crc(mut frame: Vec<u8>) -> Vec<u8> {
    let crc = crc16(&frame);
    frame.extend(crc.to_le_bytes());
    frame
}

fn crc16(bytes: &[u8]) -> u16 {
    bytes.iter().fold(0xFFFF, |mut crc, &b| {
        crc ^= u16::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xA001 } else { crc >> 1 };
        }
        crc
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_the_modbus_reference() {
        // Read holding registers 0..2 of unit 1: the CRC every Modbus guide quotes.
        assert_eq!(with_crc(vec![0x01, 0x03, 0x00, 0x00, 0x00, 0x02]), [0x01, 0x03, 0x00, 0x00, 0x00, 0x02, 0xC4, 0x0B]);
    }

    #[test]
    fn frames_are_taken_whole_and_garbled_ones_refused() {
        let mut buf = with_crc(vec![0x01, 0x04, 0x00, 0x0A, 0x00, 0x04]);
        buf.truncate(5);
        assert!(matches!(take_rtu(&mut buf), Taken::More));
        let mut good = with_crc(vec![0x01, 0x10, 0x00, 0x01, 0x00, 0x01, 0x02, 0x12, 0x34]);
        let Taken::Frame { unit, pdu, .. } = take_rtu(&mut good) else { panic!("a whole frame") };
        assert_eq!((unit, pdu[0]), (1, 0x10));
        let mut bad = with_crc(vec![0x01, 0x03, 0x00, 0x00, 0x00, 0x02]);
        bad[3] ^= 0x40;
        assert!(matches!(take_rtu(&mut bad), Taken::Garbled));
        let mut tcp = vec![0, 7, 0, 0, 0, 6, 2, 4, 0, 20, 0, 3];
        let Taken::Frame { unit, header, .. } = take_tcp(&mut tcp) else { panic!("a whole MBAP frame") };
        assert_eq!((unit, header[1]), (2, 7));
    }
}
