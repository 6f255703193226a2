//! Property tests of the code parser: every code we can print parses back to
//! itself in each form a reader returns, and no input at all makes it panic.

use chrono::{Datelike, NaiveDate};
use hal::codes::{CodeError, GS, Gs1Code, UnitCode, gs1_check_digit};
use proptest::prelude::*;

/// A valid GTIN-14: 13 random digits and their check digit.
fn gtin() -> impl Strategy<Value = String> {
    "[0-9]{13}".prop_map(|data| format!("{data}{}", gs1_check_digit(&data)))
}

/// Any day of 2000–2099 (what YYMMDD can say).
fn expiry() -> impl Strategy<Value = NaiveDate> {
    (0i64..36_524).prop_map(|d| NaiveDate::from_ymd_opt(2000, 1, 1).expect("date") + chrono::Duration::days(d))
}

/// Lot and serial: GS1's character set 82, minus the parentheses of the printed form.
fn field() -> impl Strategy<Value = String> {
    "[A-Za-z0-9!%&*+,./:;<=>?_-]{1,20}"
}

fn gs1() -> impl Strategy<Value = Gs1Code> {
    (gtin(), proptest::option::of(expiry()), proptest::option::of(field()), proptest::option::of(field()))
        .prop_map(|(gtin, expiry, lot, serial)| Gs1Code { gtin, expiry, lot, serial })
}

proptest! {
    // A fixed seed keeps CI repeatable; set PROPTEST_CASES higher to search further.
    #![proptest_config(ProptestConfig { rng_seed: proptest::test_runner::RngSeed::Fixed(0x5eed_c0de), ..ProptestConfig::with_cases(2_000) })]

    #[test]
    fn gs1_codes_round_trip_in_every_printed_form(code in gs1()) {
        let unit = UnitCode::Gs1(code.clone());
        let element = code.element_string();
        for form in [element.clone(), format!("]d2{element}"), format!("]d2{GS}{element}"), code.human_readable(), format!("{element}\r\n")] {
            prop_assert_eq!(UnitCode::parse(&form), Ok(unit.clone()), "form {:?}", form);
        }
        prop_assert_eq!(UnitCode::parse(&unit.canonical()).map(|u| u.canonical()), Ok(unit.canonical()));
    }

    // Codes in use start with 8; any 20 digits are the Chinese code when the reader
    // says plain Code 128 (]C0).
    #[test]
    fn twenty_digit_codes_round_trip(digits in "8[0-9]{19}", any in "[0-9]{20}") {
        let parsed = UnitCode::parse(&digits);
        prop_assert!(matches!(&parsed, Ok(UnitCode::Cn20(c)) if c.digits == digits && c.product_id() == &digits[..7]));
        let parsed = UnitCode::parse(&format!("]C0{any}"));
        prop_assert!(matches!(&parsed, Ok(UnitCode::Cn20(c)) if c.digits == any));
    }

    #[test]
    fn a_wrong_gtin_check_digit_is_named(code in gs1(), bump in 1u8..10) {
        let check = code.gtin.as_bytes()[13] - b'0';
        let wrong = format!("{}{}", &code.gtin[..13], (check + bump) % 10);
        let bad = Gs1Code { gtin: wrong.clone(), ..code };
        let is_check_digit_error = matches!(UnitCode::parse(&format!("]d2{}", bad.element_string())), Err(CodeError::GtinCheckDigit { gtin, .. }) if gtin == wrong);
        prop_assert!(is_check_digit_error);
    }

    #[test]
    fn day_zero_is_the_last_day_of_the_month(gtin in gtin(), year in 0u32..100, month in 1u32..=12) {
        let parsed = UnitCode::parse(&format!("01{gtin}17{year:02}{month:02}00"));
        let Ok(UnitCode::Gs1(code)) = parsed else { return Err(TestCaseError::fail("did not parse")) };
        let expiry = code.expiry.expect("expiry");
        prop_assert_eq!((expiry.year() as u32 - 2000, expiry.month()), (year, month));
        prop_assert!((expiry + chrono::Duration::days(1)).day() == 1, "{} is the month's last day", expiry);
    }

    // The parser meets whatever a camera or a clinic sends: it answers, never panics.
    #[test]
    fn arbitrary_text_never_panics(text in ".{0,80}") {
        let _ = UnitCode::parse(&text);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
        let _ = UnitCode::parse(&String::from_utf8_lossy(&bytes));
    }

    // Found by the test above: a multi-byte character inside a GS1 field.
    #[test]
    fn non_ascii_in_a_gs1_string_is_named(gtin in gtin(), junk in "[^\\x00-\\x7f]{1,3}") {
        let parsed = UnitCode::parse(&format!("01{gtin}10{junk}"));
        prop_assert!(matches!(parsed, Err(CodeError::BadCharacter { position: 18, .. })), "{:?}", parsed);
    }

    #[test]
    fn near_misses_never_panic(prefix in prop_oneof![Just("]d2"), Just("01"), Just("(01)"), Just("]d2\u{1d}01"), Just("")], tail in "[0-9()\u{1d}A-Z]{0,60}") {
        let _ = UnitCode::parse(&format!("{prefix}{tail}"));
    }
}
