//! Traceability codes printed on the smallest vaccine package: GS1 element strings
//! (carried by GS1 DataMatrix) and the 20-digit Chinese drug traceability code
//! (carried by Code 128). Parsing names the exact field and position that is wrong.
//!
//! This lives in `hal` because a label is what the scan station reads: it is the
//! camera's wire format, shared by the controller (which reads it) and the
//! simulator (which prints it).

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use std::fmt;

/// ASCII group separator: ends a variable-length GS1 field that is not last.
pub const GS: char = '\u{1d}';

/// A unit's code as read from its label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum UnitCode {
    Gs1(Gs1Code),
    Cn20(Cn20Code),
}

/// The GS1 fields a vaccine unit carries. `expiry` is already resolved (day `00`
/// means the last day of the month).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gs1Code {
    pub gtin: String,
    pub expiry: Option<NaiveDate>,
    pub lot: Option<String>,
    pub serial: Option<String>,
}

/// The 20-digit code: 7-digit product identifier, then 13 digits of serial and check
/// digits (whose algorithm is not public, so it is accepted structurally).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cn20Code {
    pub digits: String,
}

impl Cn20Code {
    /// The 7-digit product identifier (药品标识码).
    pub fn product_id(&self) -> &str {
        &self.digits[..7]
    }
}

/// Why a code could not be parsed, naming the field and the character position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error("empty code")]
    Empty,
    #[error("unknown application identifier {ai:?} at position {position}")]
    UnknownAi { ai: String, position: usize },
    #[error("AI ({ai}) at position {position}: expected {expected}, found {found:?}")]
    BadField { ai: &'static str, position: usize, expected: &'static str, found: String },
    #[error("GTIN {gtin}: check digit is {found}, expected {expected}")]
    GtinCheckDigit { gtin: String, expected: u8, found: u8 },
    #[error("AI ({ai}) appears twice (second at position {position})")]
    DuplicateAi { ai: &'static str, position: usize },
    #[error("character {found:?} at position {position} is not allowed in a GS1 element string")]
    BadCharacter { position: usize, found: char },
    #[error("GS1 code has no GTIN (AI 01)")]
    MissingGtin,
    #[error("not a GS1 element string nor a 20-digit traceability code: {0:?}")]
    Unrecognised(String),
}

impl UnitCode {
    /// Parses what a reader returned: a GS1 element string (with or without the `]d2`
    /// symbology identifier and a leading FNC1/GS), the human-readable `(01)…(17)…`
    /// form, or a 20-digit traceability code.
    pub fn parse(text: &str) -> Result<Self, CodeError> {
        let text = text.trim_end_matches(['\r', '\n']);
        if text.is_empty() {
            return Err(CodeError::Empty);
        }
        let twenty_digits = |t: &str| t.len() == 20 && t.bytes().all(|b| b.is_ascii_digit());
        // Plain Code 128 (symbology identifier ]C0) carries the 20-digit code.
        if let Some(digits) = text.strip_prefix("]C0").filter(|t| twenty_digits(t)) {
            return Ok(UnitCode::Cn20(Cn20Code { digits: digits.to_owned() }));
        }
        // Without a symbology identifier, 20 digits are the Chinese code unless they
        // form a complete, valid GS1 element string (a GTIN with its check digit…).
        if twenty_digits(text) {
            return Ok(match parse_gs1(text) {
                Ok(gs1) if text.starts_with("01") => UnitCode::Gs1(gs1),
                _ => UnitCode::Cn20(Cn20Code { digits: text.to_owned() }),
            });
        }
        let body = ["]d2", "]C1", "]Q3"].iter().find_map(|p| text.strip_prefix(p)).unwrap_or(text);
        let body = body.strip_prefix(GS).unwrap_or(body);
        if body.starts_with('(') {
            return parse_gs1(&hri_to_element_string(body)?).map(UnitCode::Gs1);
        }
        if body.starts_with(|c: char| c.is_ascii_digit()) {
            return parse_gs1(body).map(UnitCode::Gs1);
        }
        Err(CodeError::Unrecognised(text.to_owned()))
    }

    /// The canonical identity of the unit, used as its key in stock records: the
    /// human-readable form for GS1, the 20 digits for the Chinese code.
    pub fn canonical(&self) -> String {
        match self {
            UnitCode::Gs1(c) => c.human_readable(),
            UnitCode::Cn20(c) => c.digits.clone(),
        }
    }

    pub fn symbology_name(&self) -> &'static str {
        match self {
            UnitCode::Gs1(_) => "GS1 DataMatrix",
            UnitCode::Cn20(_) => "Code 128 (20-digit)",
        }
    }
}

impl fmt::Display for UnitCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical())
    }
}

impl Gs1Code {
    /// `(01)…(17)…(10)…(21)…`, the form printed under the symbol.
    pub fn human_readable(&self) -> String {
        let mut s = format!("(01){}", self.gtin);
        if let Some(d) = self.expiry {
            s.push_str(&format!("(17){}", yymmdd(d)));
        }
        if let Some(lot) = &self.lot {
            s.push_str(&format!("(10){lot}"));
        }
        if let Some(serial) = &self.serial {
            s.push_str(&format!("(21){serial}"));
        }
        s
    }

    /// The element string to encode in a symbol: fixed-length fields first, each
    /// variable-length field but the last ended by GS. No leading FNC1: the encoder adds it.
    pub fn element_string(&self) -> String {
        let mut s = format!("01{}", self.gtin);
        if let Some(d) = self.expiry {
            s.push_str(&format!("17{}", yymmdd(d)));
        }
        let variable: Vec<String> = [("10", &self.lot), ("21", &self.serial)]
            .into_iter()
            .filter_map(|(ai, v)| v.as_ref().map(|v| format!("{ai}{v}")))
            .collect();
        s.push_str(&variable.join(&GS.to_string()));
        s
    }
}

fn yymmdd(d: NaiveDate) -> String {
    format!("{:02}{:02}{:02}", d.year() % 100, d.month(), d.day())
}

/// The GS1 mod-10 check digit of the data digits (weights 3,1,3,… from the right).
pub fn gs1_check_digit(data: &str) -> u8 {
    let sum: u32 = data
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| u32::from(b - b'0') * if i % 2 == 0 { 3 } else { 1 })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

/// How the data after an AI is delimited.
#[derive(Clone, Copy)]
enum Length {
    Fixed(usize),
    UpTo(usize),
}

/// The AIs a vaccine label may carry. Lengths from the GS1 General Specifications;
/// `31nn`–`36nn` (4-digit AIs) and `41n` (3-digit) are fixed-length too.
fn ai_spec(digits: &str) -> Option<(&'static str, usize, Length)> {
    let two = digits.get(..2)?;
    Some(match two {
        "00" => ("00", 2, Length::Fixed(18)),
        "01" => ("01", 2, Length::Fixed(14)),
        "02" => ("02", 2, Length::Fixed(14)),
        "10" => ("10", 2, Length::UpTo(20)),
        "11" => ("11", 2, Length::Fixed(6)),
        "13" => ("13", 2, Length::Fixed(6)),
        "15" => ("15", 2, Length::Fixed(6)),
        "16" => ("16", 2, Length::Fixed(6)),
        "17" => ("17", 2, Length::Fixed(6)),
        "20" => ("20", 2, Length::Fixed(2)),
        "21" => ("21", 2, Length::UpTo(20)),
        "22" => ("22", 2, Length::UpTo(20)),
        "30" => ("30", 2, Length::UpTo(8)),
        "31" | "32" | "33" | "34" | "35" | "36" => ("31nn-36nn", 4, Length::Fixed(6)),
        "41" => ("41n", 3, Length::Fixed(13)),
        _ => return None,
    })
}

fn parse_gs1(s: &str) -> Result<Gs1Code, CodeError> {
    // GS1 element strings are ASCII (character set 82 plus GS): anything else is
    // refused here, which also keeps every index below on a character boundary.
    if let Some((position, found)) = s.char_indices().find(|(_, c)| !c.is_ascii() || (c.is_ascii_control() && *c != GS)) {
        return Err(CodeError::BadCharacter { position, found });
    }
    let mut code = Gs1Code { gtin: String::new(), expiry: None, lot: None, serial: None };
    let mut pos = 0;
    while pos < s.len() {
        let rest = &s[pos..];
        let (ai, ai_len, length) = ai_spec(rest).ok_or_else(|| CodeError::UnknownAi {
            ai: rest.chars().take(2).collect(),
            position: pos,
        })?;
        if rest.len() < ai_len {
            return Err(CodeError::UnknownAi { ai: rest.to_owned(), position: pos });
        }
        let data_start = pos + ai_len;
        let (value, next) = match length {
            Length::Fixed(n) => {
                let value = s.get(data_start..data_start + n).ok_or_else(|| CodeError::BadField {
                    ai,
                    position: data_start,
                    expected: "more characters (field is cut short)",
                    found: s[data_start..].to_owned(),
                })?;
                (value, data_start + n)
            }
            Length::UpTo(max) => {
                let end = s[data_start..].find(GS).map_or(s.len(), |i| data_start + i);
                let value = &s[data_start..end];
                if value.is_empty() || value.chars().count() > max {
                    return Err(CodeError::BadField {
                        ai,
                        position: data_start,
                        expected: "1 to 20 characters",
                        found: value.to_owned(),
                    });
                }
                (value, if end < s.len() { end + 1 } else { end })
            }
        };
        store_field(&mut code, ai, value, data_start)?;
        pos = next;
    }
    if code.gtin.is_empty() {
        return Err(CodeError::MissingGtin);
    }
    Ok(code)
}

fn store_field(code: &mut Gs1Code, ai: &'static str, value: &str, position: usize) -> Result<(), CodeError> {
    let duplicate = || CodeError::DuplicateAi { ai, position };
    match ai {
        "01" => {
            if !code.gtin.is_empty() {
                return Err(duplicate());
            }
            code.gtin = parse_gtin(value, position)?;
        }
        "17" => {
            if code.expiry.is_some() {
                return Err(duplicate());
            }
            code.expiry = Some(parse_yymmdd(ai, value, position)?);
        }
        "10" => {
            if code.lot.replace(value.to_owned()).is_some() {
                return Err(duplicate());
            }
        }
        "21" => {
            if code.serial.replace(value.to_owned()).is_some() {
                return Err(duplicate());
            }
        }
        // Other well-formed AIs are accepted and not kept: a vaccine is identified
        // by GTIN, expiry, lot and serial.
        _ => {
            if matches!(ai, "00" | "02" | "11" | "13" | "15" | "16" | "20" | "31nn-36nn" | "41n")
                && !value.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(CodeError::BadField { ai, position, expected: "digits", found: value.to_owned() });
            }
        }
    }
    Ok(())
}

fn parse_gtin(value: &str, position: usize) -> Result<String, CodeError> {
    if !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CodeError::BadField { ai: "01", position, expected: "14 digits", found: value.to_owned() });
    }
    let expected = gs1_check_digit(&value[..13]);
    let found = value.as_bytes()[13] - b'0';
    if expected != found {
        return Err(CodeError::GtinCheckDigit { gtin: value.to_owned(), expected, found });
    }
    Ok(value.to_owned())
}

fn parse_yymmdd(ai: &'static str, value: &str, position: usize) -> Result<NaiveDate, CodeError> {
    let bad = || CodeError::BadField { ai, position, expected: "a date YYMMDD", found: value.to_owned() };
    if !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n = |i: usize| value[i..i + 2].parse::<u32>().map_err(|_| bad());
    // Two-digit years: this product lives in this century, so 20YY.
    let (year, month, day) = (2000 + n(0)? as i32, n(2)?, n(4)?);
    if day == 0 {
        // Day 00 means the last day of the month.
        let first_of_next = if month == 12 {
            NaiveDate::from_ymd_opt(year + 1, 1, 1)
        } else {
            NaiveDate::from_ymd_opt(year, month + 1, 1)
        };
        return first_of_next
            .filter(|_| (1..=12).contains(&month))
            .and_then(|d| d.pred_opt())
            .ok_or_else(bad);
    }
    NaiveDate::from_ymd_opt(year, month, day).ok_or_else(bad)
}

/// Turns `(01)…(17)…(10)…` into an element string with GS after each variable field.
fn hri_to_element_string(hri: &str) -> Result<String, CodeError> {
    let mut out = String::new();
    let mut rest = hri;
    let mut position = 0;
    while !rest.is_empty() {
        let close = rest.find(')').filter(|_| rest.starts_with('(')).ok_or_else(|| {
            CodeError::Unrecognised(format!("bad human-readable GS1 at position {position}: {hri}"))
        })?;
        let ai = &rest[1..close];
        let after = &rest[close + 1..];
        let value_end = after.find('(').unwrap_or(after.len());
        let spec = ai_spec(ai)
            .filter(|(_, len, _)| *len == ai.len())
            .ok_or_else(|| CodeError::UnknownAi { ai: ai.to_owned(), position })?;
        out.push_str(ai);
        out.push_str(&after[..value_end]);
        if matches!(spec.2, Length::UpTo(_)) && value_end < after.len() {
            out.push(GS);
        }
        position += close + 1 + value_end;
        rest = &after[value_end..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Gs1Code {
        Gs1Code {
            gtin: "06901234000016".into(),
            expiry: NaiveDate::from_ymd_opt(2027, 6, 30),
            lot: Some("HB2506A".into()),
            serial: Some("000123".into()),
        }
    }

    #[test]
    fn check_digit_matches_gs1_example() {
        // GS1's worked example: 629104150021 -> 3
        assert_eq!(gs1_check_digit("629104150021"), 3);
        assert_eq!(gs1_check_digit("0690123400001"), 6);
    }

    #[test]
    fn element_string_round_trips() {
        let code = sample();
        let text = code.element_string();
        assert_eq!(text, "01069012340000161727063010HB2506A\u{1d}21000123");
        assert_eq!(UnitCode::parse(&text), Ok(UnitCode::Gs1(code.clone())));
        assert_eq!(UnitCode::parse(&format!("]d2\u{1d}{text}")), Ok(UnitCode::Gs1(code.clone())));
        assert_eq!(UnitCode::parse(&code.human_readable()), Ok(UnitCode::Gs1(code)));
    }

    #[test]
    fn day_zero_is_last_day_of_month() {
        let UnitCode::Gs1(c) = UnitCode::parse("010690123400001617280200").expect("parses") else {
            panic!("not GS1")
        };
        assert_eq!(c.expiry, NaiveDate::from_ymd_opt(2028, 2, 29));
        let UnitCode::Gs1(c) = UnitCode::parse("010690123400001617271200").expect("parses") else {
            panic!("not GS1")
        };
        assert_eq!(c.expiry, NaiveDate::from_ymd_opt(2027, 12, 31));
    }

    #[test]
    fn errors_name_field_and_position() {
        assert_eq!(
            UnitCode::parse("01069012340000191727063010X"),
            Err(CodeError::GtinCheckDigit { gtin: "06901234000019".into(), expected: 6, found: 9 })
        );
        assert_eq!(
            UnitCode::parse("01069012340000161727133010X"),
            Err(CodeError::BadField { ai: "17", position: 18, expected: "a date YYMMDD", found: "271330".into() })
        );
        assert_eq!(
            UnitCode::parse("0106901234000016991"),
            Err(CodeError::UnknownAi { ai: "99".into(), position: 16 })
        );
        assert!(matches!(UnitCode::parse("010690123400"), Err(CodeError::BadField { ai: "01", .. })));
        assert_eq!(UnitCode::parse("1727063010X"), Err(CodeError::MissingGtin));
        assert!(matches!(UnitCode::parse("hello"), Err(CodeError::Unrecognised(_))));
        assert_eq!(UnitCode::parse(""), Err(CodeError::Empty));
    }

    #[test]
    fn twenty_digit_code_is_structural() {
        let code = UnitCode::parse("81234567890123456789").expect("20 digits parse");
        let UnitCode::Cn20(c) = &code else { panic!("not CN20") };
        assert_eq!(c.product_id(), "8123456");
        assert_eq!(code.canonical(), "81234567890123456789");
        assert!(matches!(UnitCode::parse("8123456789012345678"), Err(CodeError::UnknownAi { .. })));
    }
}
