//! Reading a unit's code from scan-station frames: decode real pixels with rxing
//! (restricted to the symbologies vaccine labels use), preprocessing only as far as
//! it helps (the label's region, then the whole frame, then the region with its
//! contrast stretched), parse the text, and vote across frames while the rollers
//! turn the vial.

use hal::Frame;
use hal::codes::{CodeError, UnitCode};
use rxing::common::HybridBinarizer;
use rxing::{BarcodeFormat, BinaryBitmap, DecodeHints, Luma8Source, MultiFormatReader, RXingResultMetadataType, RXingResultMetadataValue, Reader};
use std::collections::HashSet;

/// A code read off one frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// `]d2` for GS1 DataMatrix, `]C0` for Code 128, … (ISO/IEC 15424), or the format name.
    pub symbology: String,
    /// The raw text the symbol carries (GS1 separators included).
    pub text: String,
    pub code: UnitCode,
}

/// Why one frame gave no code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("no code found in the frame")]
    NoCode,
    #[error("code {text:?} could not be parsed: {error}")]
    Unparseable { text: String, error: CodeError },
}

/// Which preprocessing a frame needed before it decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Preprocessing {
    WholeFrame,
    LabelRegion,
    Stretched,
}

/// Decodes one 8-bit greyscale frame, trying the cheap way first.
pub fn decode_frame(frame: &Frame) -> Result<Decoded, FrameError> {
    decode_staged(frame).map(|(decoded, _)| decoded)
}

/// [`decode_frame`], also saying which stage read it.
pub fn decode_staged(frame: &Frame) -> Result<(Decoded, Preprocessing), FrameError> {
    let Some(bounds) = label_bounds(frame) else {
        // Nothing stands out: the whole frame is all there is to try.
        return decode_pixels(frame).map(|d| (d, Preprocessing::WholeFrame));
    };
    // A label in view with no ink on it (the vial turned its printed side away):
    // nothing any stage could read, so none is tried.
    if blank(frame, bounds) {
        return Err(FrameError::NoCode);
    }
    // The label's region first: a quarter of the pixels to binarise and search.
    let region = cut(frame, bounds);
    let mut errors = Vec::new();
    for stage in [Preprocessing::LabelRegion, Preprocessing::WholeFrame, Preprocessing::Stretched] {
        let read = match stage {
            Preprocessing::LabelRegion => decode_pixels(&region),
            Preprocessing::WholeFrame => decode_pixels(frame),
            Preprocessing::Stretched => decode_pixels(&stretch_contrast(&region)),
        };
        match read {
            Ok(d) => return Ok((d, stage)),
            Err(e) => errors.push(e),
        }
    }
    // A symbol that decoded but did not parse says more than "no code".
    Err(errors.into_iter().find(|e| matches!(e, FrameError::Unparseable { .. })).unwrap_or(FrameError::NoCode))
}

/// The symbologies a vaccine label carries, most common first: a vial's GS1
/// DataMatrix, then the 20-digit code's Code 128.
const SYMBOLOGIES: [BarcodeFormat; 2] = [BarcodeFormat::DATA_MATRIX, BarcodeFormat::CODE_128];

fn decode_pixels(frame: &Frame) -> Result<Decoded, FrameError> {
    let source = Luma8Source::new_with_slice(&frame.pixels, frame.width, frame.height).map_err(|_| FrameError::NoCode)?;
    // One binarised image for both symbologies (it is computed once, on first use).
    let mut bitmap = BinaryBitmap::new(HybridBinarizer::new(source));
    // One symbology at a time, the usual one first: a reader for both tries the 1-D
    // rows first, which costs a DataMatrix frame a third of its time for nothing.
    let result = SYMBOLOGIES
        .iter()
        .find_map(|format| {
            // Not rxing's `TryHarder`: on every variant of the decode bench it read no
            // frame more than the plain search, at three times the cost.
            let hints = DecodeHints { PossibleFormats: Some(HashSet::from([*format])), ..Default::default() };
            MultiFormatReader::default().decode_with_hints(&mut bitmap, &hints).ok()
        })
        .ok_or(FrameError::NoCode)?;
    let text = result.getText().to_owned();
    let symbology = match result.getRXingResultMetadata().get(&RXingResultMetadataType::SYMBOLOGY_IDENTIFIER) {
        Some(RXingResultMetadataValue::SymbologyIdentifier(id)) => id.clone(),
        _ => format!("{:?}", result.getBarcodeFormat()),
    };
    let code = UnitCode::parse(&text).map_err(|error| FrameError::Unparseable { text: text.clone(), error })?;
    Ok(Decoded { symbology, text, code })
}

/// The label's region of the frame (its bounds), cut out.
fn cut(frame: &Frame, (x0, y0, cw, ch): (usize, usize, usize, usize)) -> Frame {
    let w = frame.width as usize;
    let mut pixels = Vec::with_capacity(cw * ch);
    for y in y0..y0 + ch {
        pixels.extend_from_slice(&frame.pixels[y * w + x0..y * w + x0 + cw]);
    }
    Frame { width: cw as u32, height: ch as u32, pixels }
}

/// The label's bounding box (left, top, width, height; the paper is the frame's
/// brightest large area), with a margin, or `None` when nothing stands out.
pub fn label_bounds(frame: &Frame) -> Option<(usize, usize, usize, usize)> {
    let (w, h) = (frame.width as usize, frame.height as usize);
    if w == 0 || h == 0 || frame.pixels.len() < w * h {
        return None;
    }
    // Every other pixel of every other row: a label is a hundred pixels and more
    // across, and the box gets a margin of eight.
    const STEP: usize = 2;
    let mut histogram = [0usize; 256];
    let mut samples = 0;
    for line in frame.pixels[..w * h].chunks_exact(w).step_by(STEP) {
        for &p in line.iter().step_by(STEP) {
            histogram[usize::from(p)] += 1;
            samples += 1;
        }
    }
    // The brightest 15 % of pixels: paper (and glare, which a box tolerates).
    let mut seen = 0;
    let threshold = (0..256).rev().find(|&v| {
        seen += histogram[v];
        seen * 100 >= samples * 15
    })?;
    // Bright pixels per sampled row and column, counted in one pass in memory order.
    let (rows, cols) = (h.div_ceil(STEP), w.div_ceil(STEP));
    let (mut per_row, mut per_col) = (vec![0usize; rows], vec![0usize; cols]);
    for (y, line) in frame.pixels[..w * h].chunks_exact(w).step_by(STEP).enumerate() {
        for (x, &p) in line.iter().step_by(STEP).enumerate() {
            if usize::from(p) >= threshold {
                per_row[y] += 1;
                per_col[x] += 1;
            }
        }
    }
    // Rows (columns) at least a tenth bright: the paper's extent.
    let row_is_paper = |y: &usize| per_row[*y] * 10 >= cols;
    let col_is_paper = |x: &usize| per_col[*x] * 10 >= rows;
    let (y0, y1) = ((0..rows).find(row_is_paper)? * STEP, (0..rows).rev().find(row_is_paper)? * STEP + STEP - 1);
    let (x0, x1) = ((0..cols).find(col_is_paper)? * STEP, (0..cols).rev().find(col_is_paper)? * STEP + STEP - 1);
    let margin = 8;
    let (x0, y0, x1, y1) = (x0.saturating_sub(margin), y0.saturating_sub(margin), (x1 + margin).min(w - 1), (y1 + margin).min(h - 1));
    if x1 <= x0 + 20 || y1 <= y0 + 20 {
        return None;
    }
    Some((x0, y0, x1 - x0 + 1, y1 - y0 + 1))
}

/// Whether the middle half of the label's box holds no ink: fewer than 1 % of its
/// pixels darker than the paper by 40 % of the box's range (paper to the darkest
/// background round it). A printed symbol darkens a third or more of them, a faded
/// print too (its ink and its paper fade together); a blank label, lit unevenly and
/// noisy, none. Wrongly called blank, a frame is only not read: never misread.
fn blank(frame: &Frame, (x0, y0, cw, ch): (usize, usize, usize, usize)) -> bool {
    let w = frame.width as usize;
    let (floor, paper) = {
        // Percentiles of every fourth row, from a histogram.
        let mut histogram = [0usize; 256];
        let mut sampled = 0;
        for y in (y0..y0 + ch).step_by(4) {
            for &p in &frame.pixels[y * w + x0..y * w + x0 + cw] {
                histogram[usize::from(p)] += 1;
                sampled += 1;
            }
        }
        let at = |q: usize| {
            let mut seen = 0;
            (0..=255u16).find(|&v| {
                seen += histogram[usize::from(v)];
                seen * 100 > sampled * q
            })
            .unwrap_or(255)
        };
        (at(5), at(90))
    };
    let dark = paper - paper.saturating_sub(floor) * 4 / 10;
    let (xs, ys) = (x0 + cw / 4..x0 + cw * 3 / 4, y0 + ch / 4..y0 + ch * 3 / 4);
    let total = xs.len() * ys.len();
    let inked = ys.flat_map(|y| xs.clone().map(move |x| y * w + x)).filter(|&i| u16::from(frame.pixels[i]) < dark).count();
    total > 0 && inked * 100 < total
}

/// Stretches the 2nd–98th percentile of grey to the full range: a faded print or a
/// dim light becomes black on white again.
fn stretch_contrast(frame: &Frame) -> Frame {
    let mut sorted = frame.pixels.clone();
    sorted.sort_unstable();
    let at = |q: usize| sorted.get(sorted.len() * q / 100).copied().unwrap_or(0);
    let (lo, hi) = (at(2), at(98));
    let span = f32::from(hi.saturating_sub(lo).max(1));
    let pixels = frame.pixels.iter().map(|&p| ((f32::from(p.saturating_sub(lo)) / span) * 255.0).min(255.0) as u8).collect();
    Frame { width: frame.width, height: frame.height, pixels }
}

/// Votes across the frames of one unit: a code is accepted once it has been read
/// `agree` times and no other code was read; two different codes on one unit mean
/// its label cannot be trusted.
#[derive(Debug, Clone)]
pub struct Vote {
    agree: u32,
    tally: Vec<(Decoded, u32)>,
    unparseable: Vec<String>,
}

/// What a vote concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Not decided yet: grab another frame.
    Undecided,
    Read(Decoded),
    /// Different codes were read off one unit.
    Conflict(Vec<String>),
}

impl Vote {
    pub fn new(agree: u32) -> Self {
        Self { agree: agree.max(1), tally: Vec::new(), unparseable: Vec::new() }
    }

    /// Counts one frame's result.
    pub fn count(&mut self, frame: Result<Decoded, FrameError>) -> Verdict {
        match frame {
            Ok(decoded) => match self.tally.iter_mut().find(|(d, _)| d.code == decoded.code) {
                Some((_, votes)) => *votes += 1,
                None => self.tally.push((decoded, 1)),
            },
            Err(FrameError::Unparseable { text, error }) => self.unparseable.push(format!("{text:?}: {error}")),
            Err(FrameError::NoCode) => {}
        }
        if self.tally.len() > 1 {
            return Verdict::Conflict(self.tally.iter().map(|(d, _)| d.code.canonical()).collect());
        }
        match self.tally.first() {
            Some((decoded, votes)) if *votes >= self.agree => Verdict::Read(decoded.clone()),
            _ => Verdict::Undecided,
        }
    }

    /// Why the frames ran out, for the Unreadable violation.
    pub fn summary(&self, frames: u32) -> String {
        let mut s = format!("no code read {} time(s) in {frames} frames", self.agree);
        if let Some((d, votes)) = self.tally.first() {
            s.push_str(&format!("; {} read {votes} time(s)", d.code.canonical()));
        }
        if let Some(last) = self.unparseable.last() {
            s.push_str(&format!("; {} unparseable read(s), last {last}", self.unparseable.len()));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hal::codes::Gs1Code;
    use rand::SeedableRng;
    use simulator::label::{FRAMES_PER_TURN, encode_symbol, render_frame};

    fn gs1() -> Gs1Code {
        Gs1Code {
            gtin: "06901234000016".into(),
            expiry: chrono::NaiveDate::from_ymd_opt(2027, 6, 30),
            lot: Some("HB2506A".into()),
            serial: Some("HB0001".into()),
        }
    }

    #[test]
    fn gs1_datamatrix_pixels_decode_to_the_printed_code() {
        let symbol = encode_symbol(&gs1().element_string()).expect("encodes");
        let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
        let frame = render_frame(Some(&symbol), 0, &mut rng);
        let decoded = decode_frame(&frame).expect("a clean frame decodes");
        assert_eq!(decoded.symbology, "]d2", "FNC1 in first position marks GS1");
        assert_eq!(decoded.code, UnitCode::Gs1(gs1()));
    }

    #[test]
    fn twenty_digit_code128_pixels_decode() {
        let symbol = encode_symbol("81234567890123456789").expect("encodes");
        let mut rng = rand::rngs::SmallRng::seed_from_u64(2);
        let decoded = decode_frame(&render_frame(Some(&symbol), 1, &mut rng)).expect("decodes");
        assert_eq!(decoded.code.canonical(), "81234567890123456789");
    }

    #[test]
    fn code_facing_away_or_absent_gives_no_code() {
        let symbol = encode_symbol(&gs1().element_string()).expect("encodes");
        let mut rng = rand::rngs::SmallRng::seed_from_u64(3);
        let away = render_frame(Some(&symbol), FRAMES_PER_TURN - 1, &mut rng);
        assert_eq!(decode_frame(&away), Err(FrameError::NoCode));
        assert_eq!(decode_frame(&render_frame(None, 0, &mut rng)), Err(FrameError::NoCode));
    }

    fn faded(frame: &Frame, contrast: f32) -> Frame {
        let pixels = frame.pixels.iter().map(|&p| (128.0 + (f32::from(p) - 128.0) * contrast) as u8).collect();
        Frame { pixels, ..frame.clone() }
    }

    #[test]
    fn a_faded_label_is_read_after_cropping_and_stretching() {
        let symbol = encode_symbol(&gs1().element_string()).expect("encodes");
        let mut rng = rand::rngs::SmallRng::seed_from_u64(4);
        let mut stretched = 0;
        for phase in [0, 1, 2, 4, 5, 6] {
            let frame = faded(&render_frame(Some(&symbol), phase, &mut rng), 0.2);
            let (decoded, stage) = decode_staged(&frame).expect("a faded label still reads");
            assert_eq!(decoded.code, UnitCode::Gs1(gs1()));
            stretched += usize::from(stage == Preprocessing::Stretched);
        }
        assert!(stretched > 0, "at 20 % contrast some frames need the contrast stretched");
    }

    #[test]
    fn only_a_label_turned_away_is_called_blank() {
        let symbol = encode_symbol(&gs1().element_string()).expect("encodes");
        let mut rng = rand::rngs::SmallRng::seed_from_u64(9);
        for phase in 0..8 {
            for contrast in [1.0, 0.2] {
                let frame = faded(&render_frame(Some(&symbol), phase, &mut rng), contrast);
                let bounds = label_bounds(&frame).expect("the label stands out");
                let away = phase % FRAMES_PER_TURN == FRAMES_PER_TURN - 1;
                // A printed side is never skipped; a blank one is at full contrast (a
                // faded blank one may be tried in vain: that costs time, not reads).
                if !away || contrast == 1.0 {
                    assert_eq!(blank(&frame, bounds), away, "phase {phase} at {contrast} contrast");
                }
            }
        }
    }

    fn read(serial: &str) -> Result<Decoded, FrameError> {
        let code = UnitCode::Gs1(Gs1Code { serial: Some(serial.into()), ..gs1() });
        Ok(Decoded { symbology: "]d2".into(), text: code.canonical(), code })
    }

    #[test]
    fn a_code_is_taken_once_enough_frames_agree() {
        let mut vote = Vote::new(2);
        assert_eq!(vote.count(read("A")), Verdict::Undecided);
        assert_eq!(vote.count(Err(FrameError::NoCode)), Verdict::Undecided);
        assert!(matches!(vote.count(read("A")), Verdict::Read(d) if d.code.canonical().ends_with("(21)A")));
    }

    #[test]
    fn two_codes_on_one_unit_are_a_conflict_and_running_out_is_explained() {
        let mut vote = Vote::new(2);
        vote.count(read("A"));
        assert!(matches!(vote.count(read("B")), Verdict::Conflict(codes) if codes.len() == 2));
        let mut vote = Vote::new(3);
        vote.count(read("A"));
        vote.count(Err(FrameError::Unparseable { text: "01x".into(), error: hal::codes::CodeError::Empty }));
        let why = vote.summary(8);
        assert!(why.contains("in 8 frames") && why.contains("read 1 time") && why.contains("unparseable"), "{why}");
    }
}
