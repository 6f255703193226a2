//! The simulated scan-station camera: renders the label of the unit at the scan
//! station, one frame per roller step, as real pixels.

use crate::injection::CameraFault;
use crate::label::{encode_symbol, render_frame};
use crate::world::Plant;
use async_trait::async_trait;
use hal::devices::Result;
use hal::{DeviceError, ErrorKind, Frame, ScanCamera, Station};
use rxing::common::BitMatrix;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Debug)]
pub(crate) struct SimCamera {
    shared: Arc<Plant>,
    /// Each label's symbol, encoded the first time the camera sees it: a label is
    /// printed once; each frame only wraps, turns and lights it anew.
    symbols: Mutex<HashMap<String, Arc<BitMatrix>>>,
}

impl SimCamera {
    pub fn new(shared: Arc<Plant>) -> Self {
        Self { shared, symbols: Mutex::default() }
    }

    fn symbol(&self, label: &str) -> Result<Arc<BitMatrix>> {
        let mut symbols = self.symbols.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(symbol) = symbols.get(label) {
            return Ok(symbol.clone());
        }
        let symbol = Arc::new(encode_symbol(label).map_err(|e| DeviceError::new("camera", ErrorKind::Exception, format!("label cannot be printed: {e}")))?);
        symbols.insert(label.to_owned(), symbol.clone());
        Ok(symbol)
    }
}

#[async_trait]
impl ScanCamera for SimCamera {
    async fn grab_frame(&self) -> Result<Frame> {
        self.shared.clock.sleep(self.shared.config.timings.frame_s).await;
        let mut world = self.shared.world();
        // A unit already running on from the scan station, or stopped after it set
        // off, has left the camera's view. (Should two ever be in view, the lowest
        // carrier is seen, so a run replays exactly.)
        let in_view = world
            .belt
            .iter()
            .filter(|(carrier, (at, _))| *at == Station::Scan && !world.moving.contains(carrier) && !world.left_scan.contains(carrier))
            .map(|(carrier, _)| *carrier)
            .min();
        let label = in_view.and_then(|carrier| world.belt.get_mut(&carrier)).map(|(_, unit)| {
            unit.frames += 1;
            unit.label.clone()
        });
        let symbol = label.map(|l| self.symbol(&l)).transpose()?;
        world.frames_grabbed += 1;
        let phase = world.frames_grabbed - 1;
        let mut frame = render_frame(symbol.as_deref(), phase, &mut world.rng);
        spoil(&mut frame, world.faults.camera);
        Ok(frame)
    }
}

/// What a dirty lens, a reflection or a finger in the way does to the view.
fn spoil(frame: &mut Frame, fault: CameraFault) {
    let (w, h) = (frame.width as usize, frame.height as usize);
    match fault {
        CameraFault::Clear => {}
        // A heavy box blur: a few passes of a 7-pixel running mean in each direction.
        CameraFault::Blur => {
            for _ in 0..3 {
                box_blur(&mut frame.pixels, w, h, 1, w);
                box_blur(&mut frame.pixels, h, w, w, 1);
            }
        }
        // A saturated band of light across the middle of the view.
        CameraFault::Glare => {
            for y in h * 2 / 5..h * 3 / 5 {
                for p in &mut frame.pixels[y * w..(y + 1) * w] {
                    *p = 255;
                }
            }
        }
        // Something dark covering the left half of the view.
        CameraFault::Occlusion => {
            for y in 0..h {
                for p in &mut frame.pixels[y * w..y * w + w / 2] {
                    *p = 20;
                }
            }
        }
    }
}

/// Running mean of 7 pixels along `len` pixels `step` apart, for each of `lines` lines
/// starting `stride` apart.
fn box_blur(pixels: &mut [u8], len: usize, lines: usize, step: usize, stride: usize) {
    const R: usize = 3;
    let mut line = vec![0u8; len];
    for l in 0..lines {
        for (i, v) in line.iter_mut().enumerate() {
            *v = pixels[l * stride + i * step];
        }
        for i in 0..len {
            let (a, b) = (i.saturating_sub(R), (i + R).min(len - 1));
            let sum: u32 = line[a..=b].iter().map(|&v| u32::from(v)).sum();
            pixels[l * stride + i * step] = (sum / (b - a + 1) as u32) as u8;
        }
    }
}
