//! Barcode classification and GTIN normalisation for the product catalog.
//!
//! Every GTIN (EAN-8, UPC-A, EAN-13, GTIN-14) is keyed by its 14-digit form so
//! that the same product scanned or typed as UPC-A, EAN-13 or GTIN-14 finds
//! the same catalog row; anything else is kept as an opaque key.
//!
//! Deliberately not done here: product look-up, GS1 element strings (see
//! `crate::scanner::gs1`), UPC-E expansion (an 8-digit UPC-E is read as
//! GTIN-8), and GS1 company-prefix or restricted-circulation checks.
//!
//! The mod-10 check is hand-written because `gtin-validate` (last release
//! 1.3.0, January 2020) only checks exact 8/12/13/14-digit lengths and does not
//! normalise to GTIN-14, while `crate::scanner::gs1` also needs it for 18-digit
//! SSCCs.

use std::fmt;

/// Longest input accepted; real symbols are far shorter, so anything longer is
/// a paste accident or abuse, not a barcode.
const MAX_LEN: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Symbology {
    Gtin8,
    Gtin12,
    Gtin13,
    Gtin14,
    Other,
}

impl Symbology {
    /// The name stored in `product_barcodes.symbology` and shown by the API.
    pub fn code(self) -> &'static str {
        match self {
            Symbology::Gtin8 => "gtin8",
            Symbology::Gtin12 => "gtin12",
            Symbology::Gtin13 => "gtin13",
            Symbology::Gtin14 => "gtin14",
            Symbology::Other => "other",
        }
    }
}

impl fmt::Display for Symbology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Symbology::Gtin8 => "GTIN-8 (EAN-8)",
            Symbology::Gtin12 => "GTIN-12 (UPC-A)",
            Symbology::Gtin13 => "GTIN-13 (EAN-13)",
            Symbology::Gtin14 => "GTIN-14",
            Symbology::Other => "barcode",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Barcode {
    /// The input with surrounding whitespace removed.
    pub raw: String,
    pub symbology: Symbology,
    /// Catalog lookup key: the zero-padded GTIN-14 for the GTIN family, the
    /// trimmed text otherwise.
    pub key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BarcodeError {
    #[error("barcode is empty; scan the item again or type the digits under the bars")]
    Empty,
    #[error("barcode is {len} characters long; at most {MAX_LEN} are accepted")]
    TooLong { len: usize },
    #[error(
        "barcode contains control character U+{code:04X}; remove it \
         (often a scanner prefix/suffix setting) and try again"
    )]
    ControlCharacter { code: u32 },
    #[error(
        "{symbology} {code} is invalid: check digit should be {expected}, not {found}; \
         re-scan or check the digits for a typo"
    )]
    CheckDigit {
        symbology: Symbology,
        code: String,
        expected: u8,
        found: u8,
    },
}

/// Classifies `input` and builds its catalog key.
pub fn parse(input: &str) -> Result<Barcode, BarcodeError> {
    let raw = input.trim();
    if raw.is_empty() {
        return Err(BarcodeError::Empty);
    }
    let len = raw.chars().count();
    if len > MAX_LEN {
        return Err(BarcodeError::TooLong { len });
    }
    if let Some(c) = raw.chars().find(|c| c.is_control()) {
        return Err(BarcodeError::ControlCharacter { code: u32::from(c) });
    }

    let symbology = if raw.bytes().all(|b| b.is_ascii_digit()) {
        match raw.len() {
            8 => Symbology::Gtin8,
            12 => Symbology::Gtin12,
            13 => Symbology::Gtin13,
            14 => Symbology::Gtin14,
            // Other lengths are internal numbers / Code 128 data, not GTINs.
            _ => Symbology::Other,
        }
    } else {
        Symbology::Other
    };

    let key = if symbology == Symbology::Other {
        raw.to_string()
    } else {
        let (body, last) = raw.split_at(raw.len() - 1);
        let expected = gtin_check_digit(body);
        let found = last.bytes().next().map_or(0, |b| b - b'0');
        if expected != found {
            return Err(BarcodeError::CheckDigit {
                symbology,
                code: raw.to_string(),
                expected,
                found,
            });
        }
        format!("{raw:0>14}")
    };

    Ok(Barcode {
        raw: raw.to_string(),
        symbology,
        key,
    })
}

/// GS1 mod-10 check digit for `body` (all digits before the check digit), for
/// any length: GTIN-8/12/13/14, SSCC, GLN, ...
///
/// Callers must pass ASCII digits; any other character counts as 0 so that a
/// bad caller gets a wrong digit rather than a panic.
pub fn gtin_check_digit(body: &str) -> u8 {
    // Weights alternate 3,1,3,... starting from the digit next to the check
    // digit, which is why the same code works for every length.
    let sum: u32 = body
        .chars()
        .rev()
        .enumerate()
        .map(|(i, c)| c.to_digit(10).unwrap_or(0) * if i % 2 == 0 { 3 } else { 1 })
        .sum();
    // sum % 10 < 10, so the cast cannot truncate.
    ((10 - sum % 10) % 10) as u8
}

/// True when `digits` is at least two ASCII digits and its last digit is the
/// GS1 mod-10 check digit of the rest. Accepts any length.
pub fn gtin_check_digit_valid(digits: &str) -> bool {
    if digits.len() < 2 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let (body, last) = digits.split_at(digits.len() - 1);
    last.bytes().next() == Some(b'0' + gtin_check_digit(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_gtins() {
        let cases = [
            ("96385074", Symbology::Gtin8, "00000096385074"),
            ("012345678905", Symbology::Gtin12, "00012345678905"),
            ("036000291452", Symbology::Gtin12, "00036000291452"),
            ("4006381333931", Symbology::Gtin13, "04006381333931"),
            ("5901234123457", Symbology::Gtin13, "05901234123457"),
            ("0012345678905", Symbology::Gtin13, "00012345678905"),
            ("04006381333931", Symbology::Gtin14, "04006381333931"),
            ("10012345678902", Symbology::Gtin14, "10012345678902"),
        ];
        for (input, symbology, key) in cases {
            let b = parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!((b.symbology, b.key.as_str()), (symbology, key), "{input}");
            assert_eq!(b.raw, input);
        }
    }

    #[test]
    fn invalid_check_digits() {
        let cases = [
            ("96385075", Symbology::Gtin8, 4),
            ("012345678904", Symbology::Gtin12, 5),
            ("4006381333932", Symbology::Gtin13, 1),
            ("04006381333930", Symbology::Gtin14, 1),
        ];
        for (input, symbology, expected) in cases {
            let err = parse(input).expect_err(input);
            assert!(
                matches!(err, BarcodeError::CheckDigit { symbology: s, expected: e, .. }
                    if s == symbology && e == expected),
                "{input}: {err:?}"
            );
            let msg = err.to_string();
            assert!(
                msg.contains(&format!("check digit should be {expected}")),
                "{msg}"
            );
        }
    }

    #[test]
    fn equivalent_forms_share_a_key() {
        let groups = [
            &["4006381333931", "04006381333931", " 4006381333931\n"][..],
            &["012345678905", "0012345678905", "00012345678905"][..],
            &["96385074", "0000096385074", "00000096385074"][..],
        ];
        for group in groups {
            let keys: Vec<String> = group.iter().map(|c| parse(c).expect("valid").key).collect();
            assert!(keys.windows(2).all(|w| w[0] == w[1]), "{group:?}: {keys:?}");
        }
    }

    #[test]
    fn opaque_codes_are_kept_verbatim() {
        let cases = [
            ("ABC-123/x", "ABC-123/x"),
            ("https://example.com/p?id=7", "https://example.com/p?id=7"),
            ("  LOT 42  ", "LOT 42"),
            ("1234567", "1234567"), // 7 digits: not a GTIN length
            ("123456789012345", "123456789012345"), // 15 digits
            ("4006381333932X", "4006381333932X"), // not all digits: no check
            ("\u{ff14}006381333931", "\u{ff14}006381333931"), // full-width digit
        ];
        for (input, key) in cases {
            let b = parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!((b.symbology, b.key.as_str()), (Symbology::Other, key));
        }
    }

    #[test]
    fn rejected_inputs() {
        let long = "x".repeat(MAX_LEN + 1);
        let cases: [(&str, BarcodeError); 5] = [
            ("", BarcodeError::Empty),
            (" \t\r\n", BarcodeError::Empty),
            (&long, BarcodeError::TooLong { len: MAX_LEN + 1 }),
            (
                "0109\u{1d}10ABC",
                BarcodeError::ControlCharacter { code: 0x1d },
            ),
            ("AB\0C", BarcodeError::ControlCharacter { code: 0 }),
        ];
        for (input, err) in cases {
            assert_eq!(parse(input), Err(err), "{input:?}");
        }
        assert!(parse(&"x".repeat(MAX_LEN)).is_ok());
    }

    #[test]
    fn check_digit_helpers_work_for_any_length() {
        assert_eq!(gtin_check_digit("10614141123456789"), 7); // SSCC body
        assert!(gtin_check_digit_valid("106141411234567897"));
        assert!(gtin_check_digit_valid("00")); // smallest well-formed input
        for bad in ["", "7", "106141411234567898", "10614141123456789X", "９６"] {
            assert!(!gtin_check_digit_valid(bad), "{bad:?}");
        }
        assert_eq!(gtin_check_digit("12a"), gtin_check_digit("120"));
    }

    #[test]
    fn garbage_never_panics() {
        let alphabet: Vec<char> = "0123456789 \t\u{1d}\u{0}aZ-é\u{ff14}(".chars().collect();
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        for _ in 0..500 {
            let len = next(160);
            let s: String = (0..len).map(|_| alphabet[next(alphabet.len())]).collect();
            let _ = parse(&s);
            let _ = gtin_check_digit_valid(&s);
            let _ = gtin_check_digit(&s);
        }
    }
}
