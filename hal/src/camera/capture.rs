//! [`OpenCvCamera`]: a grabber thread keeps reading the capture (so the driver never
//! hands out a stale buffered frame) and `grab_frame` waits for the next fresh one.

use crate::devices::{Result, ScanCamera};
use crate::error::{DeviceError, ErrorKind};
use crate::types::Frame;
use async_trait::async_trait;
use opencv::core::{Mat, MatTraitConst, MatTraitConstManual};
use opencv::imgproc;
use opencv::videoio::{self, VideoCapture, VideoCaptureTrait, VideoCaptureTraitConst};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::watch;

const DEVICE: &str = "camera";

/// A frame as the grabber thread publishes it: a sequence number so a caller can wait
/// for one taken after it asked, or the reason the capture is down.
type Latest = std::result::Result<(u64, Arc<Frame>), String>;

/// A camera (index like `"0"`, or a URL like `http://host:port/scan.mjpg`) read by a
/// dedicated thread. Dropping the driver stops the thread.
#[derive(Debug)]
pub struct OpenCvCamera {
    source: String,
    latest: watch::Receiver<Latest>,
    stop: Arc<AtomicBool>,
    frame_timeout: Duration,
}

impl OpenCvCamera {
    /// Starts the grabber thread; the capture is (re)opened there, so a camera that is
    /// not there yet is not an error until a frame is asked for.
    pub fn open(source: &str, frame_timeout: Duration) -> Self {
        let (tx, latest) = watch::channel(Err(format!("{source} not opened yet")));
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = stop.clone();
        let thread_source = source.to_owned();
        std::thread::Builder::new()
            .name("camera-grabber".into())
            .spawn(move || grab_loop(&thread_source, &tx, &thread_stop))
            .map_err(|e| tracing::error!("cannot start the camera thread: {e}"))
            .ok();
        Self { source: source.to_owned(), latest, stop, frame_timeout }
    }

    pub fn source(&self) -> &str {
        &self.source
    }
}

impl Drop for OpenCvCamera {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[async_trait]
impl ScanCamera for OpenCvCamera {
    async fn grab_frame(&self) -> Result<Frame> {
        let mut latest = self.latest.clone();
        // Only a frame produced after this call shows what is at the station now.
        latest.mark_unchanged();
        let waited = tokio::time::timeout(self.frame_timeout, async {
            loop {
                latest.changed().await.map_err(|_| "grabber thread ended".to_owned())?;
                if let Ok((_, frame)) = &*latest.borrow_and_update() {
                    return Ok::<_, String>(Frame::clone(frame));
                }
            }
        })
        .await;
        match waited {
            Ok(Ok(frame)) => Ok(frame),
            Ok(Err(why)) => Err(DeviceError::new(DEVICE, ErrorKind::NoResponse, why)),
            Err(_) => {
                let why = match &*self.latest.borrow() {
                    Err(why) => why.clone(),
                    Ok(_) => "no fresh frame".to_owned(),
                };
                Err(DeviceError::new(DEVICE, ErrorKind::Timeout, format!("{}: {why} within {:?}", self.source, self.frame_timeout)))
            }
        }
    }
}

/// Opens a source: all digits is a device index (whatever backend the platform has),
/// anything else a file or URL, through FFmpeg (GStreamer, tried first by `CAP_ANY`,
/// cannot open an MJPEG URL without a pipeline and fills the log with errors).
fn open_capture(source: &str) -> opencv::Result<VideoCapture> {
    match source.parse::<i32>() {
        Ok(index) => VideoCapture::new(index, videoio::CAP_ANY),
        Err(_) => VideoCapture::from_file(source, videoio::CAP_FFMPEG),
    }
}

fn grab_loop(source: &str, tx: &watch::Sender<Latest>, stop: &AtomicBool) {
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) && !tx.is_closed() {
        let mut capture = match open_capture(source) {
            Ok(c) if c.is_opened().unwrap_or(false) => c,
            Ok(_) => {
                publish(tx, Err(format!("cannot open {source}")));
                std::thread::sleep(Duration::from_millis(200));
                continue;
            }
            Err(e) => {
                publish(tx, Err(format!("cannot open {source}: {e}")));
                std::thread::sleep(Duration::from_millis(200));
                continue;
            }
        };
        let mut mat = Mat::default();
        loop {
            if stop.load(Ordering::Relaxed) || tx.is_closed() {
                return;
            }
            match capture.read(&mut mat) {
                Ok(true) if !mat.empty() => match to_luma(&mat) {
                    Ok(frame) => {
                        seq += 1;
                        publish(tx, Ok((seq, Arc::new(frame))));
                    }
                    Err(e) => tracing::warn!("camera frame conversion failed: {e}"),
                },
                // The stream ended or broke: reopen it (an unplugged camera comes back).
                Ok(_) | Err(_) => {
                    publish(tx, Err(format!("{source}: stream lost, reopening")));
                    break;
                }
            }
        }
    }
}

/// Replaces what `grab_frame` sees (the previous value is of no more use).
fn publish(tx: &watch::Sender<Latest>, latest: Latest) {
    drop(tx.send_replace(latest));
}

/// Converts a BGR (or already grey) capture frame to the 8-bit luma the decoder reads.
fn to_luma(mat: &Mat) -> opencv::Result<Frame> {
    let mut grey = Mat::default();
    if mat.channels() == 1 {
        grey = mat.try_clone()?;
    } else {
        imgproc::cvt_color_def(mat, &mut grey, imgproc::COLOR_BGR2GRAY)?;
    }
    let width = u32::try_from(grey.cols()).unwrap_or(0);
    let height = u32::try_from(grey.rows()).unwrap_or(0);
    let pixels = if grey.is_continuous() { grey.data_bytes()?.to_vec() } else { grey.try_clone()?.data_bytes()?.to_vec() };
    Ok(Frame { width, height, pixels })
}

/// Reads an image file (any format OpenCV's imgcodecs knows: PNG, JPEG, BMP, TIFF…)
/// as an 8-bit grey frame, the form the decoder reads.
pub fn load_grey(path: &std::path::Path) -> std::result::Result<Frame, String> {
    let shown = path.display();
    if !path.is_file() {
        return Err(format!("{shown}: no such file"));
    }
    let text = path.to_str().ok_or_else(|| format!("{shown}: path is not UTF-8"))?;
    let mat = opencv::imgcodecs::imread(text, opencv::imgcodecs::IMREAD_GRAYSCALE).map_err(|e| format!("{shown}: {e}"))?;
    if mat.empty() {
        return Err(format!("{shown}: not an image OpenCV can read"));
    }
    to_luma(&mat).map_err(|e| format!("{shown}: {e}"))
}

/// Encodes a grey frame as a colour PNG with `mark` (left, top, width, height)
/// outlined in green: the maintenance snapshot, showing where the decoder looked.
pub fn png_with_mark(frame: &Frame, mark: Option<(usize, usize, usize, usize)>) -> std::result::Result<Vec<u8>, String> {
    let encode = || -> opencv::Result<Vec<u8>> {
        let rows = i32::try_from(frame.height).unwrap_or(0);
        let cols = i32::try_from(frame.width).unwrap_or(0);
        let grey = Mat::new_rows_cols_with_data(rows, cols, &frame.pixels[..(rows * cols) as usize])?;
        let mut colour = Mat::default();
        imgproc::cvt_color_def(&grey, &mut colour, imgproc::COLOR_GRAY2BGR)?;
        if let Some((x, y, w, h)) = mark {
            let as_i32 = |v: usize| i32::try_from(v).unwrap_or(i32::MAX);
            let rect = opencv::core::Rect::new(as_i32(x), as_i32(y), as_i32(w), as_i32(h));
            imgproc::rectangle(&mut colour, rect, opencv::core::Scalar::new(0.0, 200.0, 0.0, 0.0), 3, imgproc::LINE_8, 0)?;
        }
        let mut png = opencv::core::Vector::<u8>::new();
        opencv::imgcodecs::imencode(".png", &colour, &mut png, &opencv::core::Vector::new())?;
        Ok(opencv::core::VectorToVec::to_vec(&png))
    };
    if frame.pixels.len() < frame.width as usize * frame.height as usize || frame.width == 0 {
        return Err(format!("{frame:?} has too few pixels"));
    }
    encode().map_err(|e| format!("PNG encoding: {e}"))
}
