//! Parser for GS1 element strings as sent by handheld scanners reading GS1-128,
//! GS1 DataMatrix, GS1 QR or GS1 DataBar: raw (optional AIM identifier such as
//! `]C1`, FNC1 as ASCII 29 or the text `<GS>`) or human-readable
//! `(01)09506000134352(17)201225(10)ABC123`. It pulls out what inventory needs:
//! GTIN, lot, expiry, serial, count and SSCC.
//!
//! Deliberately not done: AIs outside the small table below are rejected (their
//! length is unknowable, so nothing after them could be trusted); GS1 Digital
//! Link URIs are not recognised; AI 11/13/15/310n/400 are validated and
//! dropped; association rules are not checked beyond "01 and 02 are exclusive".
//! In the parenthesised form a value cannot contain `(`.
//!
//! Two-digit years are read as 2000+YY, not the GS1 sliding window, so the
//! result does not depend on today's date; the two differ only for years the
//! window would put in the 1900s (YY 77-99 in 2026), which no live label has.

use crate::catalog::barcode::{gtin_check_digit, gtin_check_digit_valid};
use time::{Date, Month};

/// FNC1 as transmitted by scanners.
const GS: char = '\u{1d}';
/// AIM symbology identifiers that announce GS1 data; other identifiers (e.g.
/// `]E0` EAN-13, `]C0` plain Code 128) mean a plain barcode.
const GS1_AIM_PREFIXES: [&str; 4] = ["]C1", "]d2", "]Q3", "]e0"];

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Gs1Data {
    /// 14 digits from AI 01, else AI 02.
    pub gtin: Option<String>,
    /// True when `gtin` came from AI 02 (GTIN of the trade items inside a
    /// logistic unit, not of the unit itself).
    pub contained_gtin: bool,
    pub lot: Option<String>,
    pub expiry: Option<Date>,
    pub serial: Option<String>,
    /// AI 30 (variable count) or AI 37 (count of trade items).
    pub count: Option<u32>,
    pub sscc: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Gs1Error {
    #[error("GS1 scan contains no data, only a symbology identifier or separators")]
    NoData,
    #[error("GS1 scan contains {0:?}; GS1 data may only contain plain ASCII characters")]
    NonAscii(char),
    #[error("expected a GS1 application identifier (2-4 digits) at {found:?}")]
    ExpectedAi { found: String },
    #[error(
        "unknown GS1 application identifier {0}; this service cannot tell where its value ends"
    )]
    UnknownAi(String),
    #[error("GS1 AI {ai}: value is empty")]
    EmptyValue { ai: String },
    #[error("GS1 AI {ai}: expected {expected} characters, got {got} (truncated scan?)")]
    WrongLength {
        ai: String,
        expected: usize,
        got: usize,
    },
    #[error("GS1 AI {ai}: value longer than {max} characters (missing <GS> separator after it?)")]
    TooLong { ai: String, max: usize },
    #[error("GS1 AI {ai}: {value:?} must contain digits only")]
    NotNumeric { ai: String, value: String },
    #[error("GS1 AI {ai}: character {ch:?} is not allowed in GS1 data")]
    BadChar { ai: String, ch: char },
    #[error("GS1 AI {ai}: check digit should be {expected} in {value}; re-scan the label")]
    CheckDigit {
        ai: String,
        expected: u8,
        value: String,
    },
    #[error("GS1 AI {ai}: {value} is not a valid date (expected YYMMDD)")]
    BadDate { ai: String, value: String },
    #[error("GS1 AI {ai} appears more than once with different values")]
    Conflict { ai: String },
    #[error("GS1 AI 01 and AI 02 cannot appear in the same scan")]
    GtinAndContainedGtin,
}

enum Len {
    Fixed(usize),
    Upto(usize),
}

enum Field {
    Sscc,
    Gtin,
    ContainedGtin,
    Lot,
    Date,
    Expiry,
    Serial,
    Count,
    Ignored,
}

struct Ai {
    code: &'static str,
    len: Len,
    numeric: bool,
    field: Field,
}

const fn ai(code: &'static str, len: Len, numeric: bool, field: Field) -> Ai {
    Ai {
        code,
        len,
        numeric,
        field,
    }
}

// No code is a prefix of another, so a prefix match finds the AI in raw data.
const AIS: &[Ai] = &[
    ai("00", Len::Fixed(18), true, Field::Sscc),
    ai("01", Len::Fixed(14), true, Field::Gtin),
    ai("02", Len::Fixed(14), true, Field::ContainedGtin),
    ai("10", Len::Upto(20), false, Field::Lot),
    ai("11", Len::Fixed(6), true, Field::Date),
    ai("13", Len::Fixed(6), true, Field::Date),
    ai("15", Len::Fixed(6), true, Field::Date),
    ai("17", Len::Fixed(6), true, Field::Expiry),
    ai("21", Len::Upto(20), false, Field::Serial),
    ai("30", Len::Upto(8), true, Field::Count),
    ai("37", Len::Upto(8), true, Field::Count),
    ai("3100", Len::Fixed(6), true, Field::Ignored),
    ai("3101", Len::Fixed(6), true, Field::Ignored),
    ai("3102", Len::Fixed(6), true, Field::Ignored),
    ai("3103", Len::Fixed(6), true, Field::Ignored),
    ai("3104", Len::Fixed(6), true, Field::Ignored),
    ai("3105", Len::Fixed(6), true, Field::Ignored),
    ai("400", Len::Upto(30), false, Field::Ignored),
];

/// Parses a scan. `Ok(None)` means it is not a GS1 element string and should
/// be handled as a plain barcode; once it is recognised as GS1, anything
/// malformed is an error rather than a silent partial result.
pub fn parse(scan: &str) -> Result<Option<Gs1Data>, Gs1Error> {
    // Scanners are often configured to append CR/LF or Tab; GS must survive.
    let scan = scan.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'));
    let (body, prefixed) = match GS1_AIM_PREFIXES.iter().find_map(|p| scan.strip_prefix(p)) {
        Some(rest) => (rest, true),
        None => (scan, false),
    };
    let parenthesised = body
        .strip_prefix('(')
        .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()));
    let separated = body.contains(GS) || body.contains("<GS>");
    // Exactly 14 digits is a plain GTIN-14 that may well start with 01/02.
    let bare = (body.starts_with("01") || body.starts_with("02"))
        && body.len() > 14
        && body.bytes().take(16).all(|b| b.is_ascii_digit());
    if !(prefixed || parenthesised || separated || bare) {
        return Ok(None);
    }
    // Everything below slices by byte offset, which is safe once input is ASCII.
    if let Some(c) = body.chars().find(|c| !c.is_ascii()) {
        return Err(Gs1Error::NonAscii(c));
    }

    let mut b = Builder::default();
    if parenthesised {
        parse_parenthesised(body, &mut b)?;
    } else {
        parse_raw(&body.replace("<GS>", "\u{1d}"), &mut b)?;
    }
    b.finish().map(Some)
}

fn parse_raw(s: &str, b: &mut Builder) -> Result<(), Gs1Error> {
    let mut rest = s;
    loop {
        // A leading FNC1 and doubled/trailing separators carry no data.
        rest = rest.trim_start_matches(GS);
        if rest.is_empty() {
            return Ok(());
        }
        let ai = lookup(rest)?;
        rest = &rest[ai.code.len()..];
        let mut end = rest.find(GS).unwrap_or(rest.len());
        if let Len::Fixed(n) = ai.len {
            // Predefined-length AIs need no separator: the next AI follows directly.
            end = end.min(n);
        }
        b.apply(ai, &rest[..end])?;
        rest = &rest[end..];
    }
}

fn parse_parenthesised(s: &str, b: &mut Builder) -> Result<(), Gs1Error> {
    let mut rest = s;
    while !rest.is_empty() {
        let expected_ai = || Gs1Error::ExpectedAi {
            found: rest.chars().take(10).collect(),
        };
        let inner = rest.strip_prefix('(').ok_or_else(expected_ai)?;
        let close = inner.find(')').ok_or_else(expected_ai)?;
        let code = &inner[..close];
        let ai = match AIS.iter().find(|a| a.code == code) {
            Some(ai) => ai,
            None if (2..=4).contains(&code.len()) && code.bytes().all(|c| c.is_ascii_digit()) => {
                return Err(Gs1Error::UnknownAi(code.to_string()))
            }
            None => return Err(expected_ai()),
        };
        let value = &inner[close + 1..];
        let end = value.find('(').unwrap_or(value.len());
        b.apply(ai, &value[..end])?;
        rest = &value[end..];
    }
    Ok(())
}

fn lookup(rest: &str) -> Result<&'static Ai, Gs1Error> {
    if let Some(ai) = AIS.iter().find(|a| rest.starts_with(a.code)) {
        return Ok(ai);
    }
    let digits: Vec<u8> = rest
        .bytes()
        .take_while(u8::is_ascii_digit)
        .take(4)
        .collect();
    let [d0, d1, ..] = digits[..] else {
        return Err(Gs1Error::ExpectedAi {
            found: rest.chars().take(10).collect(),
        });
    };
    // Best guess at the AI's length from its first two digits, only so the
    // error names the AI the way the GS1 tables do.
    let len = match (d0 - b'0') * 10 + (d1 - b'0') {
        23..=25 | 40..=43 => 3,
        31..=36 | 39 | 70..=72 | 80..=82 => 4,
        _ => 2,
    };
    Err(Gs1Error::UnknownAi(
        String::from_utf8_lossy(&digits[..len.min(digits.len())]).into_owned(),
    ))
}

/// GS1 AI encodable character set 82.
fn is_cset82(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!\"%&'()*+,-./:;<=>?_".contains(c)
}

#[derive(Default)]
struct Builder {
    data: Gs1Data,
    contained: Option<String>,
    elements: usize,
}

impl Builder {
    fn apply(&mut self, ai: &Ai, value: &str) -> Result<(), Gs1Error> {
        let code = || ai.code.to_string();
        match ai.len {
            _ if value.is_empty() => return Err(Gs1Error::EmptyValue { ai: code() }),
            Len::Fixed(n) if value.len() != n => {
                return Err(Gs1Error::WrongLength {
                    ai: code(),
                    expected: n,
                    got: value.len(),
                })
            }
            Len::Upto(max) if value.len() > max => {
                return Err(Gs1Error::TooLong { ai: code(), max })
            }
            _ => {}
        }
        if ai.numeric && !value.bytes().all(|b| b.is_ascii_digit()) {
            let value = value.to_string();
            return Err(Gs1Error::NotNumeric { ai: code(), value });
        }
        if let Some(ch) = value.chars().find(|&c| !is_cset82(c)) {
            return Err(Gs1Error::BadChar { ai: code(), ch });
        }
        if matches!(ai.field, Field::Sscc | Field::Gtin | Field::ContainedGtin)
            && !gtin_check_digit_valid(value)
        {
            return Err(Gs1Error::CheckDigit {
                ai: code(),
                expected: gtin_check_digit(&value[..value.len() - 1]),
                value: value.to_string(),
            });
        }
        self.elements += 1;
        let text = value.to_string();
        let d = &mut self.data;
        match ai.field {
            Field::Sscc => set_once(&mut d.sscc, text, ai),
            Field::Gtin => set_once(&mut d.gtin, text, ai),
            Field::ContainedGtin => set_once(&mut self.contained, text, ai),
            Field::Lot => set_once(&mut d.lot, text, ai),
            Field::Serial => set_once(&mut d.serial, text, ai),
            Field::Date => parse_date(ai, value).map(drop),
            Field::Expiry => set_once(&mut d.expiry, parse_date(ai, value)?, ai),
            // Length and digit checks above keep this within u32; the Err arm is defensive.
            Field::Count => match value.parse() {
                Ok(n) => set_once(&mut d.count, n, ai),
                Err(_) => Err(Gs1Error::NotNumeric {
                    ai: code(),
                    value: text,
                }),
            },
            Field::Ignored => Ok(()),
        }
    }

    fn finish(self) -> Result<Gs1Data, Gs1Error> {
        let mut data = self.data;
        if self.elements == 0 {
            return Err(Gs1Error::NoData);
        }
        if let Some(contained) = self.contained {
            if data.gtin.is_some() {
                return Err(Gs1Error::GtinAndContainedGtin);
            }
            data.gtin = Some(contained);
            data.contained_gtin = true;
        }
        Ok(data)
    }
}

/// GS1 allows a repeated AI only if it repeats the same value.
fn set_once<T: PartialEq>(slot: &mut Option<T>, value: T, ai: &Ai) -> Result<(), Gs1Error> {
    match slot {
        Some(old) if *old != value => Err(Gs1Error::Conflict {
            ai: ai.code.to_string(),
        }),
        _ => {
            *slot = Some(value);
            Ok(())
        }
    }
}

/// YYMMDD; day 00 (allowed when only the month is known) means the last day
/// of the month.
fn parse_date(ai: &Ai, value: &str) -> Result<Date, Gs1Error> {
    let bad = || Gs1Error::BadDate {
        ai: ai.code.to_string(),
        value: value.to_string(),
    };
    let num = |r: std::ops::Range<usize>| value.get(r).and_then(|s| s.parse::<u8>().ok());
    let (Some(yy), Some(mm), Some(dd)) = (num(0..2), num(2..4), num(4..6)) else {
        return Err(bad());
    };
    let year = 2000 + i32::from(yy);
    let month = Month::try_from(mm).map_err(|_| bad())?;
    let day = if dd == 0 { month.length(year) } else { dd };
    Date::from_calendar_date(year, month, day).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Compact, order-independent rendering so each table row fits on a line.
    fn summary(d: &Gs1Data) -> String {
        let gtin_ai = if d.contained_gtin { "02" } else { "01" };
        let parts = [
            d.sscc.as_ref().map(|v| format!("00:{v}")),
            d.gtin.as_ref().map(|v| format!("{gtin_ai}:{v}")),
            d.lot.as_ref().map(|v| format!("10:{v}")),
            d.expiry.map(|v| format!("17:{v}")),
            d.serial.as_ref().map(|v| format!("21:{v}")),
            d.count.map(|v| format!("n:{v}")),
        ];
        parts.into_iter().flatten().collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn valid_element_strings() {
        #[rustfmt::skip]
        let cases = [
            // GS1 General Specifications examples, in each input form.
            ("(01)09506000134352(17)201225(10)ABC123", "01:09506000134352 10:ABC123 17:2020-12-25"),
            // Fixed-length 01 and 17 need no FNC1 before the next AI.
            (concat!("]C1", "0109506000134352", "17201225", "10ABC123"), "01:09506000134352 10:ABC123 17:2020-12-25"),
            ("]d201095060001343521721063010AB-123<GS>2112345", "01:09506000134352 10:AB-123 17:2021-06-30 21:12345"),
            ("]d201095060001343521721063010AB-123\u{1d}2112345", "01:09506000134352 10:AB-123 17:2021-06-30 21:12345"),
            ("01095060001343521721063010AB-123\u{1d}2112345\r\n", "01:09506000134352 10:AB-123 17:2021-06-30 21:12345"),
            ("(00)106141411234567897", "00:106141411234567897"),
            ("]C100106141411234567897\u{1d}0209506000134352\u{1d}3724", "00:106141411234567897 02:09506000134352 n:24"),
            ("02095060001343523712", "02:09506000134352 n:12"),
            ("]e00109506000134352305", "01:09506000134352 n:5"),
            // Day 00 = last day of the month.
            ("(01)09506000134352(17)240200", "01:09506000134352 17:2024-02-29"),
            ("(01)09506000134352(17)230200", "01:09506000134352 17:2023-02-28"),
            ("(01)09506000134352(17)251100", "01:09506000134352 17:2025-11-30"),
            ("(01)09506000134352(17)991231", "01:09506000134352 17:2099-12-31"),
            // Validated but not returned.
            ("(01)09506000134352(11)200101(13)200100(15)211231", "01:09506000134352"),
            ("]C101095060001343523103000189400PO-7781<GS>21S1", "01:09506000134352 21:S1"),
            // Leading, trailing and doubled separators.
            ("]Q3\u{1d}0109506000134352\u{1d}\u{1d}10A\u{1d}", "01:09506000134352 10:A"),
            ("]C110AAAAABBBBBCCCCCDDDDD", "10:AAAAABBBBBCCCCCDDDDD"),
            ("]C110aZ!%&*+,-./:;<=>?_", "10:aZ!%&*+,-./:;<=>?_"),
            ("(10)A)B(10)A)B", "10:A)B"),
            ("]C1(01)09506000134352", "01:09506000134352"),
        ];
        for (input, want) in cases {
            match parse(input) {
                Ok(Some(d)) => assert_eq!(summary(&d), want, "{input:?}"),
                other => panic!("{input:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn malformed_gs1_is_an_error() {
        #[rustfmt::skip]
        let cases = [
            ("(01)09506000134353", "GS1 AI 01: check digit should be 2 in 09506000134353"),
            ("(00)106141411234567890", "GS1 AI 00: check digit should be 7"),
            ("]C10209506000134350", "GS1 AI 02: check digit should be 2"),
            ("(01)09506000134352(17)201345", "GS1 AI 17: 201345 is not a valid date"),
            ("(17)210230", "GS1 AI 17: 210230 is not a valid date"),
            ("(11)201300", "GS1 AI 11: 201300 is not a valid date"),
            ("]C199ABC", "unknown GS1 application identifier 99;"),
            ("]C1010950600013435224012345", "unknown GS1 application identifier 240;"),
            ("]C13109000100", "unknown GS1 application identifier 3109;"),
            ("(7003)2101011200", "unknown GS1 application identifier 7003;"),
            // Missing FNC1 after a variable AI: the lot swallows the GTIN.
            ("]C110ABC1230109506000134352", "GS1 AI 10: value longer than 20 characters"),
            ("(30)123456789", "GS1 AI 30: value longer than 8 characters"),
            ("]C1010950600013", "GS1 AI 01: expected 14 characters, got 10"),
            ("]C10109506<GS>10A", "GS1 AI 01: expected 14 characters, got 5"),
            ("(01)095060001343520", "GS1 AI 01: expected 14 characters, got 15"),
            ("]C117", "GS1 AI 17: value is empty"),
            ("]C110\u{1d}21X", "GS1 AI 10: value is empty"),
            ("(10)(21)X", "GS1 AI 10: value is empty"),
            ("]C1", "GS1 scan contains no data"),
            ("]d2\u{1d}<GS>", "GS1 scan contains no data"),
            ("]C110ABÉ", "GS1 scan contains 'É'"),
            ("]C110AB CD", "GS1 AI 10: character ' ' is not allowed"),
            ("(21)A#1", "GS1 AI 21: character '#' is not allowed"),
            ("]C13012A", "GS1 AI 30: \"12A\" must contain digits only"),
            ("]C1XYZ", "expected a GS1 application identifier (2-4 digits) at \"XYZ\""),
            ("]C10109506000134352-", "expected a GS1 application identifier (2-4 digits) at \"-\""),
            ("(0A)1", "expected a GS1 application identifier (2-4 digits) at \"(0A)1\""),
            ("(01", "expected a GS1 application identifier (2-4 digits) at \"(01\""),
            ("(10)A(10)B", "GS1 AI 10 appears more than once"),
            ("(30)5(37)6", "GS1 AI 37 appears more than once"),
            ("(01)09506000134352(02)09506000134352", "GS1 AI 01 and AI 02 cannot appear"),
        ];
        for (input, want) in cases {
            match parse(input) {
                Err(e) => assert!(e.to_string().starts_with(want), "{input:?}: {e}"),
                ok => panic!("{input:?}: expected error {want:?}, got {ok:?}"),
            }
        }
    }

    #[test]
    fn plain_barcodes_are_not_gs1() {
        #[rustfmt::skip]
        let cases = [
            "", "   ", "4006381333931", "09506000134352", "0109506000134", "ABC-123",
            "]E04006381333931", "]C0HELLO", "(A)123", "01-ABCDEFGHIJKLMNOP",
            "https://id.gs1.org/01/09506000134352", "01ÉÉÉÉÉÉÉÉÉÉÉÉÉÉ",
        ];
        for input in cases {
            assert_eq!(parse(input), Ok(None), "{input:?}");
        }
    }

    #[test]
    fn garbage_never_panics() {
        #[rustfmt::skip]
        let tokens = [
            "]C1", "]d2", "(", ")", "01", "0", "9", "17", "10", "\u{1d}", "<GS>", "<G", "A", "é",
            "00", "3103", "400", " ", "09506000134352", "99", "(01)", "30", "7",
        ];
        let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        for _ in 0..1000 {
            let scan: String = (0..next(12)).map(|_| tokens[next(tokens.len())]).collect();
            let _ = parse(&scan);
        }
    }
}
