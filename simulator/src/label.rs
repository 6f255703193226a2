//! Renders what the scan-station camera sees: the unit's label with its printed
//! code (GS1 DataMatrix, or Code 128 for the 20-digit code) as real 8-bit pixels,
//! wrapped on the vial, tilted, shifted as the rollers turn it, with faded prints,
//! defocus, glare, the odd fingertip and sensor noise.

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
        rxing::oned::Code128Writer.encode_with_hints(label, &BarcodeFormat::CODE_128, 0, 0, &hints)
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
///
/// The label is drawn flat, then wrapped onto the vial (a cylinder seen from the
/// side: modules squeeze and darken towards the edges), tilted by a few degrees,
/// and each frame gets its own print contrast, focus and, now and then, a glare
/// spot or a fingertip in view, all drawn from `rng` so a seed repeats a run.
pub fn render_frame(symbol: Option<&BitMatrix>, turn_phase: u64, rng: &mut impl Rng) -> Frame {
    let (w, h) = (FRAME_WIDTH, FRAME_HEIGHT);
    let mut pixels = vec![BACKGROUND; (w * h) as usize];
    if let Some(symbol) = symbol {
        let look = Look::draw(rng);
        let facing_away = turn_phase % FRAMES_PER_TURN == FRAMES_PER_TURN - 1;
        let label = flat_label(symbol, !facing_away, look.ink);
        let shift = (turn_phase % FRAMES_PER_TURN) as f64 * 12.0;
        wrap_onto_vial(&mut pixels, w, h, &label, shift, look.tilt);
        if look.blur {
            soften(&mut pixels, w as usize, h as usize);
        }
        if let Some((gx, gy)) = look.glare {
            glare(&mut pixels, w, h, gx, gy);
        }
        if look.fingertip {
            fingertip(&mut pixels, w, h);
        }
    }
    // Sensor noise, -10 to +10 grey levels, from one random byte per pixel.
    let mut noise = vec![0u8; pixels.len()];
    rng.fill_bytes(&mut noise);
    for (p, n) in pixels.iter_mut().zip(noise) {
        *p = (i16::from(*p) + i16::from(n % 21) - 10).clamp(0, 255) as u8;
    }
    Frame { width: w, height: h, pixels }
}

/// How one frame looks: drawn per frame from the seeded generator.
struct Look {
    /// Degrees the label sits tilted on the vial.
    tilt: f64,
    /// Ink grey: 28 is a fresh print, up to 110 a faded one.
    ink: u8,
    blur: bool,
    glare: Option<(u32, u32)>,
    fingertip: bool,
}

impl Look {
    fn draw(rng: &mut impl Rng) -> Self {
        Self {
            tilt: rng.random_range(-6.0..6.0),
            ink: if rng.random_bool(0.2) { rng.random_range(60..110) } else { INK },
            blur: rng.random_bool(0.15),
            glare: rng.random_bool(0.1).then(|| (rng.random_range(120..280), rng.random_range(90..210))),
            fingertip: rng.random_bool(0.03),
        }
    }
}

/// The label as printed: paper with the symbol and its quiet zone.
struct FlatLabel {
    width: u32,
    height: u32,
    pixels: Vec<u8>,
}

fn flat_label(symbol: &BitMatrix, printed_side_visible: bool, ink: u8) -> FlatLabel {
    // 1-D symbols are one row high in the matrix: print them as 60 px tall bars of
    // narrower modules (a 20-digit Code 128 is about 145 modules wide).
    let one_d = symbol.getHeight() == 1;
    let module = if one_d { MODULE_PX_1D } else { MODULE_PX };
    let (sw, sh) = (symbol.getWidth() * module, if one_d { 60 } else { symbol.getHeight() * module });
    // Quiet zones: 10 modules for Code 128, and a generous 6 for DataMatrix (needs 1).
    let quiet = if one_d { 10 } else { 6 } * module;
    let (width, height) = ((sw + 2 * quiet).min(FRAME_WIDTH - 20), (sh + 2 * quiet).min(FRAME_HEIGHT - 20));
    let mut pixels = vec![PAPER; (width * height) as usize];
    if printed_side_visible {
        for y in 0..sh.min(height - quiet) {
            for x in 0..sw.min(width - quiet) {
                let (mx, my) = (x / module, if one_d { 0 } else { y / module });
                if symbol.get(mx, my) {
                    pixels[((quiet + y) * width + quiet + x) as usize] = ink;
                }
            }
        }
    }
    FlatLabel { width, height, pixels }
}

/// Draws the label wrapped on a vial whose axis is vertical: a screen column at
/// distance `u` from the axis shows the label at arc length `R·asin(u/R)`, lit
/// less towards the edges; the whole is tilted by `tilt` degrees and moved by
/// `shift` pixels as the rollers turn the vial.
fn wrap_onto_vial(pixels: &mut [u8], w: u32, h: u32, label: &FlatLabel, shift: f64, tilt: f64) {
    let radius = f64::from(label.width) * 0.75;
    let (cx, cy) = (f64::from(w) / 2.0 - 18.0 + shift, f64::from(h) / 2.0);
    let (sin, cos) = tilt.to_radians().sin_cos();
    let half_w = radius * (f64::from(label.width) / 2.0 / radius).min(1.0).sin();
    let half_h = f64::from(label.height) / 2.0 + half_w * sin.abs();
    // The cylinder's arc angle and the light for each quarter pixel across it,
    // worked out once per frame rather than per pixel (a quarter pixel is finer
    // than the label's modules); between two, linearly: as sharp as asin itself.
    let steps = (radius * 4.0) as usize;
    let arc: Vec<f64> = (0..=2 * steps).map(|i| ((i as f64 / 4.0 - radius) / radius).clamp(-1.0, 1.0).asin()).collect();
    // cos(asin(t)) = sqrt(1 - t²): the light falls off towards the edges.
    let light: Vec<f64> = (0..=2 * steps).map(|i| (i as f64 / 4.0 - radius) / radius).map(|t| 0.75 + 0.25 * (1.0 - t * t).max(0.0).sqrt()).collect();
    let (lw, lh) = (f64::from(label.width), f64::from(label.height));
    let last = arc.len() - 1;
    for y in (cy - half_h - 2.0).max(0.0) as u32..((cy + half_h + 2.0) as u32).min(h) {
        let dy = f64::from(y) - cy;
        // Only the columns whose untilted position lies on the label's arc (|u| <
        // half_w, give or take a pixel): u grows by cos along a row.
        let (from, to) = ((-half_w - dy * sin) / cos - 1.0 + cx, (half_w - dy * sin) / cos + 1.0 + cx);
        let (x0, x1) = (from.max(0.0) as u32, (to.max(0.0) as u32 + 1).min(w));
        if x0 >= x1 {
            continue;
        }
        let row = &mut pixels[(y * w) as usize..((y + 1) * w) as usize];
        // Undo the tilt, then the cylinder: (u, v) step by (cos, -sin) per pixel.
        let dx = f64::from(x0) - cx;
        let (mut u, mut v) = (dx * cos + dy * sin, -dx * sin + dy * cos);
        for px in &mut row[x0 as usize..x1 as usize] {
            let (here_u, here_v) = (u, v);
            u += cos;
            v -= sin;
            if here_u.abs() >= radius {
                continue;
            }
            let at = (here_u + radius) * 4.0;
            let (i, frac) = (at as usize, at.fract());
            let next = (i + 1).min(last);
            let (lx, ly) = (radius * (arc[i] + (arc[next] - arc[i]) * frac) + lw / 2.0, here_v + lh / 2.0);
            if lx < 0.0 || ly < 0.0 || lx >= lw || ly >= lh {
                continue;
            }
            let grey = f64::from(label.pixels[(ly as u32 * label.width + lx as u32) as usize]);
            let lit = light[i] + (light[next] - light[i]) * frac;
            *px = (grey * lit) as u8;
        }
    }
}

/// A light defocus: one pass of a 3x3 mean (the frame's border kept), as sums of
/// three rows' running column sums.
fn soften(pixels: &mut [u8], w: usize, h: usize) {
    if w < 3 || h < 3 {
        return;
    }
    let src = pixels.to_vec();
    let mut columns = vec![0u32; w];
    for y in 1..h - 1 {
        for (x, c) in columns.iter_mut().enumerate() {
            *c = u32::from(src[(y - 1) * w + x]) + u32::from(src[y * w + x]) + u32::from(src[(y + 1) * w + x]);
        }
        for x in 1..w - 1 {
            pixels[y * w + x] = ((columns[x - 1] + columns[x] + columns[x + 1]) / 9) as u8;
        }
    }
}

/// A reflection of the station's light: a soft saturated spot.
fn glare(pixels: &mut [u8], w: u32, h: u32, gx: u32, gy: u32) {
    let r = 28.0;
    for y in gy.saturating_sub(30)..(gy + 30).min(h) {
        for x in gx.saturating_sub(30)..(gx + 30).min(w) {
            let d = ((f64::from(x) - f64::from(gx)).powi(2) + (f64::from(y) - f64::from(gy)).powi(2)).sqrt();
            if d < r {
                let p = &mut pixels[(y * w + x) as usize];
                let boost = 255.0 * (1.0 - d / r);
                *p = (f64::from(*p) + boost).min(255.0) as u8;
            }
        }
    }
}

/// A gloved fingertip covering a corner of the view.
fn fingertip(pixels: &mut [u8], w: u32, h: u32) {
    for y in h * 2 / 3..h {
        for x in 0..w / 4 {
            pixels[(y * w + x) as usize] = 60;
        }
    }
}

