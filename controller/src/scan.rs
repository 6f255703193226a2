//! Reading a unit's code from scan-station frames: decode real pixels with rxing
//! (restricted to the symbologies vaccine labels use), then parse the text.

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

/// Decodes one 8-bit greyscale frame.
pub fn decode_frame(frame: &Frame) -> Result<Decoded, FrameError> {
    let source = Luma8Source::new_with_slice(&frame.pixels, frame.width, frame.height).map_err(|_| FrameError::NoCode)?;
    let mut bitmap = BinaryBitmap::new(HybridBinarizer::new(source));
    let hints = DecodeHints {
        PossibleFormats: Some(HashSet::from([BarcodeFormat::DATA_MATRIX, BarcodeFormat::CODE_128])),
        TryHarder: Some(true),
        ..Default::default()
    };
    let result = MultiFormatReader::default().decode_with_hints(&mut bitmap, &hints).map_err(|_| FrameError::NoCode)?;
    let text = result.getText().to_owned();
    let symbology = match result.getRXingResultMetadata().get(&RXingResultMetadataType::SYMBOLOGY_IDENTIFIER) {
        Some(RXingResultMetadataValue::SymbologyIdentifier(id)) => id.clone(),
        _ => format!("{:?}", result.getBarcodeFormat()),
    };
    let code = UnitCode::parse(&text).map_err(|error| FrameError::Unparseable { text: text.clone(), error })?;
    Ok(Decoded { symbology, text, code })
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
}
