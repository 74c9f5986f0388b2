//! Notice number (NAV, *numero avviso*) and IUV, as defined by the AgID
//! "Specifiche attuative dei codici identificativi di versamento" (SACI)
//! 1.3.1, chapter 2, § 2.2 (Tabella 2 and §§ 2.2.2.1-2.2.2.4):
//!
//! | aux | NAV layout                                  | IUV                    | check digits over      |
//! |-----|---------------------------------------------|------------------------|------------------------|
//! | 0   | `0` + application code (2) + base (13) + cc | base + cc (15)         | aux + app code + base  |
//! | 1   | `1` + base (17)                             | base (17)              | none                   |
//! | 2   | `2` + base (15) + cc                        | base + cc (17)         | aux + base             |
//! | 3   | `3` + segregation code (2) + base (13) + cc | seg + base + cc (17)   | aux + seg + base       |
//!
//! In every checked scheme the two check digits are the first 16 digits of
//! the NAV taken as a number, mod 93. Only aux digit 3 is generated; the
//! others survive in old data and are only parsed.

use std::fmt;
use std::str::FromStr;

use super::CodeError;

/// Largest IUV base of the aux-3 scheme (13 digits).
const MAX_SEQUENCE: u64 = 9_999_999_999_999;

/// Remainder mod 93 of the number written by the digits of `digits`,
/// computed digit by digit so any length works. Non-digit characters are
/// skipped: callers validate the charset first.
pub fn check_digits_mod93(digits: &str) -> u8 {
    digits
        .bytes()
        .filter(u8::is_ascii_digit)
        .fold(0u32, |rem, d| (rem * 10 + u32::from(d - b'0')) % 93) as u8
}

/// An 18-digit notice number whose check digits (where its scheme has any)
/// were verified. Obtained only from [`NoticeNumber::parse`],
/// [`NoticeNumber::generate`] or [`notice_number_from_iuv`]; deserializing
/// validates too.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct NoticeNumber(String);

/// A notice number taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedNotice {
    /// The whole notice number.
    pub notice_number: NoticeNumber,
    /// First digit, 0..=3: selects the layout.
    pub aux_digit: u8,
    /// Segregation code (aux digit 3 only): the IUV generation point.
    pub segregation_code: Option<u8>,
    /// Application code (aux digit 0 only): the pending-payments archive.
    pub application_code: Option<u8>,
    /// The IUV: 15 digits for aux digit 0, 17 otherwise.
    pub iuv: String,
}

impl NoticeNumber {
    /// The 18 digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The aux digit (0..=3).
    pub fn aux_digit(&self) -> u8 {
        self.0.as_bytes()[0] - b'0'
    }

    /// The IUV contained in the notice number.
    pub fn iuv(&self) -> &str {
        // Aux 0 puts the 2-digit application code before the IUV.
        if self.aux_digit() == 0 {
            &self.0[3..]
        } else {
            &self.0[1..]
        }
    }

    /// Parses and validates a notice number: exactly 18 digits (no spaces),
    /// a known aux digit and, for aux digits 0, 2 and 3, the check digits.
    pub fn parse(s: &str) -> Result<ParsedNotice, CodeError> {
        let found = s.chars().count();
        if found != 18 {
            return Err(CodeError::Length {
                expected: "18",
                found,
            });
        }
        if !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CodeError::Charset);
        }
        // 18 ASCII digits from here on: slicing is safe.
        let aux_digit = s.as_bytes()[0] - b'0';
        let two_digits = |from: usize| two_digit_value(&s[from..from + 2]) as u8;
        let (segregation_code, application_code, iuv_start) = match aux_digit {
            0 => (None, Some(two_digits(1)), 3),
            1 => (None, None, 1),
            2 => (None, None, 1),
            3 => (Some(two_digits(1)), None, 1),
            _ => return Err(CodeError::Format("aux digit non ammesso")),
        };
        if aux_digit != 1 {
            let expected = check_digits_mod93(&s[..16]);
            if u32::from(expected) != two_digit_value(&s[16..]) {
                return Err(CodeError::CheckDigit);
            }
        }
        Ok(ParsedNotice {
            notice_number: NoticeNumber(s.to_owned()),
            aux_digit,
            segregation_code,
            application_code,
            iuv: s[iuv_start..].to_owned(),
        })
    }

    /// Generates an aux-3 notice number:
    /// `3` + segregation code (2) + sequence (13) + check digits (2).
    pub fn generate(segregation_code: u8, sequence: u64) -> Result<NoticeNumber, CodeError> {
        if segregation_code > 99 {
            return Err(CodeError::Format("codice di segregazione oltre 99"));
        }
        if sequence > MAX_SEQUENCE {
            return Err(CodeError::Format("progressivo oltre 13 cifre"));
        }
        let head = format!("3{segregation_code:02}{sequence:013}");
        let check = check_digits_mod93(&head);
        Ok(NoticeNumber(format!("{head}{check:02}")))
    }
}

/// Value of two ASCII digits (already validated).
fn two_digit_value(s: &str) -> u32 {
    s.bytes()
        .fold(0u32, |acc, d| acc * 10 + u32::from(d.wrapping_sub(b'0')))
}

impl fmt::Display for NoticeNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for NoticeNumber {
    type Err = CodeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        NoticeNumber::parse(s).map(|p| p.notice_number)
    }
}

impl<'de> serde::Deserialize<'de> for NoticeNumber {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Validating here keeps "a NoticeNumber is always valid" true for
        // values that come back from storage or the wire.
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Builds the notice number that carries `iuv` under `aux_digit`, and
/// validates it.
///
/// Aux digit 0 needs the application code and a 15-digit IUV; aux digits
/// 1, 2 and 3 take a 17-digit IUV and no application code (for aux 3 the
/// segregation code is the IUV's first two digits).
pub fn notice_number_from_iuv(
    aux_digit: u8,
    application_code: Option<u8>,
    iuv: &str,
) -> Result<NoticeNumber, CodeError> {
    let (expected_len, expected): (usize, &'static str) = match (aux_digit, application_code) {
        (0, Some(code)) if code <= 99 => (15, "15"),
        (0, Some(_)) => return Err(CodeError::Format("codice applicazione oltre 99")),
        (0, None) => {
            return Err(CodeError::Format(
                "codice applicazione obbligatorio con aux digit 0",
            ));
        }
        (1..=3, None) => (17, "17"),
        (1..=3, Some(_)) => {
            return Err(CodeError::Format(
                "codice applicazione ammesso solo con aux digit 0",
            ));
        }
        _ => return Err(CodeError::Format("aux digit non ammesso")),
    };
    let found = iuv.chars().count();
    if found != expected_len {
        return Err(CodeError::Length { expected, found });
    }
    if !iuv.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CodeError::Charset);
    }
    let nav = match application_code {
        Some(code) => format!("{aux_digit}{code:02}{iuv}"),
        None => format!("{aux_digit}{iuv}"),
    };
    NoticeNumber::parse(&nav).map(|p| p.notice_number)
}

/// Checks that `iuv` is a 17-digit aux-3 IUV of the given segregation code:
/// its first two digits are the code and its check digits are right.
pub fn check_iuv_for_segregation(iuv: &str, segregation_code: u8) -> Result<(), CodeError> {
    if segregation_code > 99 {
        return Err(CodeError::Format("codice di segregazione oltre 99"));
    }
    notice_number_from_iuv(3, None, iuv)?;
    // notice_number_from_iuv accepted 17 ASCII digits, so slicing is safe.
    if two_digit_value(&iuv[..2]) != u32::from(segregation_code) {
        return Err(CodeError::Format("codice di segregazione diverso"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn spec_example() {
        // README "IUV and notice number": 3, 01, 0000000012345 -> 19.
        let nav = NoticeNumber::generate(1, 12345).expect("valid input");
        assert_eq!(nav.as_str(), "301000000001234519");
        assert_eq!(nav.to_string(), "301000000001234519");
        assert_eq!(nav.iuv(), "01000000001234519");
        let parsed = NoticeNumber::parse("301000000001234519").expect("valid");
        assert_eq!(
            parsed,
            ParsedNotice {
                notice_number: nav.clone(),
                aux_digit: 3,
                segregation_code: Some(1),
                application_code: None,
                iuv: "01000000001234519".into(),
            }
        );
        assert_eq!(
            notice_number_from_iuv(3, None, "01000000001234519"),
            Ok(nav)
        );
        assert_eq!(check_iuv_for_segregation("01000000001234519", 1), Ok(()));
    }

    #[test]
    fn mod93_streams_long_inputs() {
        assert_eq!(check_digits_mod93("3010000000012345"), 19);
        assert_eq!(check_digits_mod93(""), 0);
        assert_eq!(check_digits_mod93("93"), 0);
        // 10^30 mod 93: 10^15 = 10752688172043 * 93 + 1, so 10^30 = 1 too.
        assert_eq!(check_digits_mod93(&format!("1{}", "0".repeat(30))), 1);
        assert_eq!(check_digits_mod93(&"9".repeat(40)), {
            // 10^40 - 1 = 10^30 * 10^10 - 1 -> (10^10 mod 93) - 1.
            let p = 10_000_000_000u64 % 93;
            ((p + 93 - 1) % 93) as u8
        });
    }

    #[test]
    fn legacy_aux_0() {
        // 0 + app 12 + base 0000000054321 + mod 93 of 0120000000054321.
        let head = "0120000000054321";
        let nav = format!("{head}{:02}", check_digits_mod93(head));
        let parsed = NoticeNumber::parse(&nav).expect("valid");
        assert_eq!(parsed.aux_digit, 0);
        assert_eq!(parsed.application_code, Some(12));
        assert_eq!(parsed.segregation_code, None);
        assert_eq!(parsed.iuv, &nav[3..]);
        assert_eq!(parsed.iuv.len(), 15);
        assert_eq!(parsed.notice_number.iuv(), parsed.iuv);
        assert_eq!(
            notice_number_from_iuv(0, Some(12), &parsed.iuv),
            Ok(parsed.notice_number)
        );
        assert_eq!(
            notice_number_from_iuv(0, None, &nav[3..]),
            Err(CodeError::Format(
                "codice applicazione obbligatorio con aux digit 0"
            ))
        );
        let mut wrong = nav.into_bytes();
        wrong[17] = if wrong[17] == b'0' { b'1' } else { b'0' };
        let wrong = String::from_utf8(wrong).expect("ASCII");
        assert_eq!(NoticeNumber::parse(&wrong), Err(CodeError::CheckDigit));
    }

    #[test]
    fn legacy_aux_1_has_no_check_digits() {
        let parsed = NoticeNumber::parse("112345678901234567").expect("valid");
        assert_eq!(parsed.aux_digit, 1);
        assert_eq!(parsed.iuv, "12345678901234567");
        assert_eq!(parsed.segregation_code, None);
        assert_eq!(parsed.application_code, None);
        assert!(NoticeNumber::parse("112345678901234568").is_ok());
    }

    #[test]
    fn legacy_aux_2() {
        let head = "2123456789012345";
        let nav = format!("{head}{:02}", check_digits_mod93(head));
        let parsed = NoticeNumber::parse(&nav).expect("valid");
        assert_eq!(parsed.aux_digit, 2);
        assert_eq!(parsed.iuv, &nav[1..]);
        assert_eq!(parsed.segregation_code, None);
        assert_eq!(
            notice_number_from_iuv(2, None, &nav[1..]),
            Ok(parsed.notice_number)
        );
        let bad = format!("{head}{:02}", (check_digits_mod93(head) + 1) % 93);
        assert_eq!(NoticeNumber::parse(&bad), Err(CodeError::CheckDigit));
    }

    #[test]
    fn parse_errors() {
        assert_eq!(
            NoticeNumber::parse("30100000000123451"),
            Err(CodeError::Length {
                expected: "18",
                found: 17
            })
        );
        assert_eq!(
            NoticeNumber::parse("30100000000123451X"),
            Err(CodeError::Charset)
        );
        assert_eq!(
            NoticeNumber::parse(" 01000000001234519"),
            Err(CodeError::Charset)
        );
        assert_eq!(
            NoticeNumber::parse("301000000001234518"),
            Err(CodeError::CheckDigit)
        );
        assert_eq!(
            NoticeNumber::parse("401000000001234519"),
            Err(CodeError::Format("aux digit non ammesso"))
        );
    }

    #[test]
    fn generate_limits() {
        assert!(NoticeNumber::generate(99, MAX_SEQUENCE).is_ok());
        assert!(NoticeNumber::generate(0, 0).is_ok());
        assert!(matches!(
            NoticeNumber::generate(100, 1),
            Err(CodeError::Format(_))
        ));
        assert!(matches!(
            NoticeNumber::generate(1, MAX_SEQUENCE + 1),
            Err(CodeError::Format(_))
        ));
    }

    #[test]
    fn from_iuv_errors() {
        assert!(matches!(
            notice_number_from_iuv(3, Some(1), "01000000001234519"),
            Err(CodeError::Format(_))
        ));
        assert!(matches!(
            notice_number_from_iuv(4, None, "01000000001234519"),
            Err(CodeError::Format(_))
        ));
        assert_eq!(
            notice_number_from_iuv(3, None, "0100000000123451"),
            Err(CodeError::Length {
                expected: "17",
                found: 16
            })
        );
        assert_eq!(
            notice_number_from_iuv(3, None, "0100000000123451a"),
            Err(CodeError::Charset)
        );
        assert_eq!(
            notice_number_from_iuv(3, None, "01000000001234518"),
            Err(CodeError::CheckDigit)
        );
    }

    #[test]
    fn segregation_check() {
        assert_eq!(
            check_iuv_for_segregation("01000000001234519", 2),
            Err(CodeError::Format("codice di segregazione diverso"))
        );
        assert_eq!(
            check_iuv_for_segregation("01000000001234518", 1),
            Err(CodeError::CheckDigit)
        );
        assert!(matches!(
            check_iuv_for_segregation("01000000001234519", 100),
            Err(CodeError::Format(_))
        ));
    }

    #[test]
    fn serde_round_trip_validates() {
        let nav = NoticeNumber::generate(1, 12345).expect("valid input");
        let json = serde_json::to_string(&nav).expect("serializes");
        assert_eq!(json, "\"301000000001234519\"");
        let back: NoticeNumber = serde_json::from_str(&json).expect("deserializes");
        assert_eq!(back, nav);
        assert!(serde_json::from_str::<NoticeNumber>("\"301000000001234518\"").is_err());
        assert!(serde_json::from_str::<NoticeNumber>("301000000001234519").is_err());
    }

    proptest! {
        #[test]
        fn generate_parse_round_trip(seg in 0u8..100, seq in 0u64..=MAX_SEQUENCE) {
            let nav = NoticeNumber::generate(seg, seq).expect("in range");
            prop_assert_eq!(nav.as_str().len(), 18);
            let parsed = NoticeNumber::parse(nav.as_str()).expect("generated is valid");
            prop_assert_eq!(parsed.aux_digit, 3);
            prop_assert_eq!(parsed.segregation_code, Some(seg));
            prop_assert_eq!(parsed.application_code, None);
            prop_assert_eq!(&parsed.iuv[2..15], format!("{seq:013}"));
            prop_assert_eq!(&parsed.iuv, nav.iuv());
            prop_assert_eq!(check_iuv_for_segregation(&parsed.iuv, seg), Ok(()));
            prop_assert_eq!(notice_number_from_iuv(3, None, &parsed.iuv), Ok(nav.clone()));
            prop_assert_eq!(nav.as_str().parse::<NoticeNumber>(), Ok(nav));
        }

        #[test]
        fn single_digit_change_is_detected(
            seg in 0u8..100, seq in 0u64..=MAX_SEQUENCE, pos in 1usize..18, delta in 1u8..10,
        ) {
            // mod 93 sees every change of one digit (93 shares no factor
            // with 10 and exceeds 9); the aux digit is excluded because
            // 3 -> 1 lands on the unchecked scheme.
            let nav = NoticeNumber::generate(seg, seq).expect("in range");
            let mut b = nav.as_str().as_bytes().to_vec();
            b[pos] = b'0' + (b[pos] - b'0' + delta) % 10;
            let changed = String::from_utf8(b).expect("ASCII");
            prop_assert!(NoticeNumber::parse(&changed).is_err());
        }

        #[test]
        fn aux_digit_change_is_detected_except_to_1(
            seg in 0u8..100, seq in 0u64..=MAX_SEQUENCE, aux in prop::sample::select(vec![0u8, 2, 4, 5, 6, 7, 8, 9]),
        ) {
            let nav = NoticeNumber::generate(seg, seq).expect("in range");
            let changed = format!("{aux}{}", &nav.as_str()[1..]);
            prop_assert!(NoticeNumber::parse(&changed).is_err());
        }

        #[test]
        fn adjacent_transposition_is_detected(
            seg in 0u8..100, seq in 0u64..=MAX_SEQUENCE,
            pos in prop::sample::select((1usize..15).chain([16]).collect::<Vec<_>>()),
        ) {
            // Swapping within the first 16 digits changes the number by
            // 9 * (a - b) * 10^k, never a multiple of 93; swapping the two
            // check digits changes them. Across the boundary is not covered.
            let nav = NoticeNumber::generate(seg, seq).expect("in range");
            let mut b = nav.as_str().as_bytes().to_vec();
            prop_assume!(b[pos] != b[pos + 1]);
            b.swap(pos, pos + 1);
            let changed = String::from_utf8(b).expect("ASCII");
            prop_assert!(NoticeNumber::parse(&changed).is_err());
        }

        #[test]
        fn legacy_schemes_round_trip(aux in 0u8..3, app in 0u8..100, body in "[0-9]{17}") {
            let iuv = match aux {
                0 => {
                    let base = &body[..13];
                    let head = format!("0{app:02}{base}");
                    format!("{base}{:02}", check_digits_mod93(&head))
                }
                1 => body.clone(),
                _ => {
                    let base = &body[..15];
                    format!("{base}{:02}", check_digits_mod93(&format!("2{base}")))
                }
            };
            let app_code = (aux == 0).then_some(app);
            let nav = notice_number_from_iuv(aux, app_code, &iuv).expect("valid");
            let parsed = NoticeNumber::parse(nav.as_str()).expect("valid");
            prop_assert_eq!(parsed.aux_digit, aux);
            prop_assert_eq!(parsed.application_code, app_code);
            prop_assert_eq!(&parsed.iuv, &iuv);
            prop_assert_eq!(nav.iuv(), iuv.as_str());
        }

        #[test]
        fn random_strings_never_panic(s in ".{0,30}", n in any::<u8>(), m in any::<u64>()) {
            let _ = NoticeNumber::parse(&s);
            let _ = check_digits_mod93(&s);
            let _ = check_iuv_for_segregation(&s, n);
            let _ = notice_number_from_iuv(n % 6, Some(n), &s);
            let _ = notice_number_from_iuv(n % 6, None, &s);
            let _ = NoticeNumber::generate(n, m);
            let _ = serde_json::from_str::<NoticeNumber>(&format!("{s:?}"));
        }

        #[test]
        fn random_digit_strings_never_panic(s in "[0-9]{15,18}", n in any::<u8>()) {
            let _ = NoticeNumber::parse(&s);
            let _ = check_iuv_for_segregation(&s, n);
            let _ = notice_number_from_iuv(n % 6, Some(n % 120), &s);
            let _ = notice_number_from_iuv(n % 6, None, &s);
        }
    }
}
