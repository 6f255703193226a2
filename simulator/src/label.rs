//! Renders what the scan-station camera sees: the unit's label with its printed
//! code (GS1 DataMatrix, or Code 128 for the 20-digit code) as real 8-bit pixels,
//! shifted as the rollers turn the vial and with sensor noise.

use hal::Frame;
use rand::Rng;
use rxing::common::BitMatrix;
use rxing::{BarcodeFormat, EncodeHints, Writer};

pub const FRAME_WIDTH: u32 = 400;
pub const FRAME_HEIGHT: u32 = 300;
/// Grey of the vial and background, of the label paper, and of the ink.
const BACKGROUND: u8 = 95;
const PAPER: u8 = 232;
const INK: u8 = 28;
/// Pixels per symbol module: a 24x24 DataMatrix comes out about 100 px wide.
const MODULE_PX: u32 = 4;
const MODULE_PX_1D: u32 = 2;
/// How many frames one turn of the vial takes; in the last of them the code faces away.
pub const FRAMES_PER_TURN: u64 = 4;

/// Encodes `label` in the symbology a vaccine label uses for it.
pub fn encode_symbol(label: &str) -> Result<BitMatrix, rxing::Exceptions> {
    let is_cn20 = label.len() == 20 && label.bytes().all(|b| b.is_ascii_digit());
    if is_cn20 {
        let hints = EncodeHints { Margin: Some("0".into()), ..Default::default() };
        rxing::oned::Code128Writer::default().encode_with_hints(label, &BarcodeFormat::CODE_128, 0, 0, &hints)
    } else {
        let hints = EncodeHints {
            Gs1Format: Some(true),
            DataMatrixCompact: Some(true),
            Margin: Some("0".into()),
            ..Default::default()
        };
        rxing::datamatrix::DataMatrixWriter.encode_with_hints(label, &BarcodeFormat::DATA_MATRIX, 0, 0, &hints)
    }
}

/// A frame of the scan station. `turn_phase` is the frame's position in the vial's
/// turn: the code moves across the view and, in the last phase, is on the far side.
pub fn render_frame(symbol: Option<&BitMatrix>, turn_phase: u64, rng: &mut impl Rng) -> Frame {
    let (w, h) = (FRAME_WIDTH, FRAME_HEIGHT);
    let mut pixels = vec![BACKGROUND; (w * h) as usize];
    if let Some(symbol) = symbol {
        let facing_away = turn_phase % FRAMES_PER_TURN == FRAMES_PER_TURN - 1;
        // 1-D symbols are one row high in the matrix: print them as 60 px tall bars of
        // narrower modules (a 20-digit Code 128 is about 145 modules wide).
        let one_d = symbol.getHeight() == 1;
        let module = if one_d { MODULE_PX_1D } else { MODULE_PX };
        let (sw, sh) = (symbol.getWidth() * module, if one_d { 60 } else { symbol.getHeight() * module });
        // Quiet zones: 10 modules for Code 128, and a generous 6 for DataMatrix (needs 1).
        let quiet = if one_d { 10 } else { 6 } * module;
        let (label_w, label_h) = ((sw + 2 * quiet).min(w - 20), (sh + 2 * quiet).min(h - 20));
        let shift = (turn_phase % FRAMES_PER_TURN) as u32 * 12;
        let (lx, ly) = (((w - label_w) / 2).saturating_sub(18) + shift, (h - label_h) / 2);
        fill(&mut pixels, w, lx, ly, label_w, label_h, PAPER);
        if !facing_away {
            for y in 0..sh {
                for x in 0..sw {
                    let (mx, my) = (x / module, if one_d { 0 } else { y / module });
                    if symbol.get(mx, my) {
                        let (px, py) = (lx + quiet + x, ly + quiet + y);
                        if px < w && py < h {
                            pixels[(py * w + px) as usize] = INK;
                        }
                    }
                }
            }
        }
    }
    for p in &mut pixels {
        let noise: i16 = rng.random_range(-10..=10);
        *p = (i16::from(*p) + noise).clamp(0, 255) as u8;
    }
    Frame { width: w, height: h, pixels }
}

fn fill(pixels: &mut [u8], stride: u32, x0: u32, y0: u32, w: u32, h: u32, value: u8) {
    for y in y0..y0 + h {
        for x in x0..x0 + w {
            if let Some(p) = pixels.get_mut((y * stride + x) as usize) {
                *p = value;
            }
        }
    }
}
