//! The simulator's small HTTP endpoint on loopback: the scan-station camera as an
//! MJPEG stream (`GET /scan.mjpg`, opened by the controller through OpenCV exactly
//! as an IP camera), a single `GET /snapshot.jpg`, and the fault-injection control
//! (`POST /fault` with one fault line as the body; `GET /state`).

use crate::camera::SimCamera;
use crate::injection::Fault;
use hal::{Frame, ScanCamera};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the control endpoint acts on.
pub(crate) trait Control: Send + Sync + 'static {
    fn inject(&self, fault: &Fault) -> Result<(), String>;
    fn state(&self) -> String;
}

const BOUNDARY: &str = "scanframe";
/// Enough to tell a blurred code from a sharp one; the decoder reads them all.
const JPEG_QUALITY: u8 = 90;

/// Serves the endpoint on an already bound listener.
pub(crate) fn spawn(listener: TcpListener, camera: Arc<SimCamera>, control: Arc<dyn Control>) {
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let (camera, control) = (camera.clone(), control.clone());
            tokio::spawn(async move {
                if let Err(e) = handle(stream, &camera, control.as_ref()).await {
                    tracing::debug!("http client: {e}");
                }
            });
        }
    });
}

async fn handle(mut stream: TcpStream, camera: &SimCamera, control: &dyn Control) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let (head, body) = read_request(&mut stream).await?;
    let request_line = head.lines().next().unwrap_or_default().to_owned();
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    match (method, path) {
        ("GET", "/scan.mjpg") => {
            let header = format!("HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary={BOUNDARY}\r\nCache-Control: no-cache\r\n\r\n");
            stream.write_all(header.as_bytes()).await?;
            loop {
                // The camera model paces the stream: one frame per roller step.
                let frame = camera.grab_frame().await.map_err(std::io::Error::other)?;
                let jpeg = encode_jpeg(&frame)?;
                let part = format!("--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n", jpeg.len());
                stream.write_all(part.as_bytes()).await?;
                stream.write_all(&jpeg).await?;
                stream.write_all(b"\r\n").await?;
            }
        }
        ("GET", "/snapshot.jpg") => {
            let frame = camera.grab_frame().await.map_err(std::io::Error::other)?;
            respond(&mut stream, "200 OK", "image/jpeg", &encode_jpeg(&frame)?).await
        }
        ("POST", "/fault") => {
            let text = String::from_utf8_lossy(&body).trim().to_owned();
            match text.parse::<Fault>().map_err(|e| e.to_string()).and_then(|f| control.inject(&f)) {
                Ok(()) => respond(&mut stream, "200 OK", "text/plain", format!("injected: {text}\n").as_bytes()).await,
                Err(why) => respond(&mut stream, "400 Bad Request", "text/plain", format!("{why}\n").as_bytes()).await,
            }
        }
        ("GET", "/state") => respond(&mut stream, "200 OK", "text/plain", control.state().as_bytes()).await,
        _ => respond(&mut stream, "404 Not Found", "text/plain", b"routes: GET /scan.mjpg, GET /snapshot.jpg, POST /fault, GET /state\n").await,
    }
}

/// Reads the request head and a `Content-Length` body (requests here are tiny).
async fn read_request(stream: &mut TcpStream) -> std::io::Result<(String, Vec<u8>)> {
    let mut data = Vec::new();
    let mut buf = [0u8; 1024];
    let head_end = loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed in the request head"));
        }
        data.extend_from_slice(&buf[..n]);
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if data.len() > 16 * 1024 {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "request head too large"));
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let length = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap_or(0)))
        .unwrap_or(0)
        .min(64 * 1024);
    let mut body = data[head_end..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&buf[..n]);
    }
    Ok((head, body))
}

async fn respond(stream: &mut TcpStream, status: &str, content_type: &str, body: &[u8]) -> std::io::Result<()> {
    let head = format!("HTTP/1.0 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.shutdown().await
}

pub fn encode_jpeg(frame: &Frame) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let (w, h) = (u16::try_from(frame.width).map_err(std::io::Error::other)?, u16::try_from(frame.height).map_err(std::io::Error::other)?);
    jpeg_encoder::Encoder::new(&mut out, JPEG_QUALITY)
        .encode(&frame.pixels, w, h, jpeg_encoder::ColorType::Luma)
        .map_err(std::io::Error::other)?;
    Ok(out)
}
