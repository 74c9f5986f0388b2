//! Italian fiscal codes: the 11-digit numeric code of legal entities (which
//! is also the Partita IVA algorithm) and the 16-character personal code.
//!
//! Inputs are expected already normalized (trimmed, uppercase): the checks
//! refuse lowercase instead of fixing it, so that what is stored is exactly
//! what was checked.

use super::CodeError;

/// Positions (0-based) of the personal code that hold digits, which omocodia
/// may replace with a letter to disambiguate two identical codes.
const OMOCODIA_POSITIONS: [usize; 7] = [6, 7, 9, 10, 12, 13, 14];

/// Letters that replace the digits 0..9 in omocodic codes, in digit order.
const OMOCODIA_LETTERS: &[u8; 10] = b"LMNPQRSTUV";

/// Month letters, January to December.
const MONTH_LETTERS: &[u8; 12] = b"ABCDEHLMPRST";

/// Values of characters in odd (1st, 3rd, ...) positions for the check
/// character, indexed by 0..9 for digits and 0..25 for letters (a digit and
/// the letter with the same index share the value).
const ODD_VALUES: [u32; 26] = [
    1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23,
];

/// Computes the check digit (0..9) of a numeric fiscal code or Partita IVA
/// from its first ten digits, given as values 0..9.
///
/// Digits in even positions (2nd, 4th, ...) are doubled, subtracting 9 when
/// the result exceeds 9; the check digit brings the total to a multiple of
/// ten. Values above 9 are a caller bug: the result is then meaningless but
/// the function does not panic.
pub fn numeric_check_digit(first10: &[u8; 10]) -> u8 {
    let sum: u32 = first10
        .iter()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

/// Checks an 11-digit numeric fiscal code (legal entities) or Partita IVA.
pub fn check_numeric_fiscal_code(s: &str) -> Result<(), CodeError> {
    let found = s.chars().count();
    if found != 11 {
        return Err(CodeError::Length {
            expected: "11",
            found,
        });
    }
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CodeError::Charset);
    }
    let digits: Vec<u8> = s.bytes().map(|b| b - b'0').collect();
    // The all-zero code passes the check digit but is a common placeholder,
    // never an actual registration.
    if digits.iter().all(|&d| d == 0) {
        return Err(CodeError::Format("codice fiscale composto da soli zeri"));
    }
    let mut first10 = [0u8; 10];
    first10.copy_from_slice(&digits[..10]);
    if numeric_check_digit(&first10) != digits[10] {
        return Err(CodeError::CheckDigit);
    }
    Ok(())
}

/// Index 0..25 of a character for the check-character tables: digits map to
/// 0..9 and letters to 0..25. Anything else maps to `None`.
fn table_index(c: u8) -> Option<usize> {
    match c {
        b'0'..=b'9' => Some(usize::from(c - b'0')),
        b'A'..=b'Z' => Some(usize::from(c - b'A')),
        _ => None,
    }
}

/// Computes the check character of a personal fiscal code from its first 15
/// characters (uppercase letters and digits, omocodia letters included).
///
/// Only meaningful for 15 characters in `[A-Z0-9]`; any other character
/// counts as zero, so that the function never panics on odd input.
pub fn personal_check_char(first15: &str) -> char {
    let sum: u32 = first15
        .bytes()
        .enumerate()
        .map(|(i, c)| match table_index(c) {
            // Positions are counted from 1 in the rules, so index 0 is "odd".
            Some(idx) if i % 2 == 0 => ODD_VALUES[idx],
            Some(idx) => idx as u32,
            None => 0,
        })
        .sum();
    char::from(b'A' + (sum % 26) as u8)
}

/// Value of a digit position of the personal code, undoing omocodia.
fn omocodia_digit(c: u8) -> Option<u8> {
    if c.is_ascii_digit() {
        return Some(c - b'0');
    }
    OMOCODIA_LETTERS
        .iter()
        .position(|&l| l == c)
        .map(|p| p as u8)
}

/// Checks a 16-character personal fiscal code: structure
/// `LLLLLL DD L DD L DDD L` (digits possibly replaced by omocodia letters),
/// month letter, day of birth (1..31, or 41..71 for women) and the check
/// character. The input must be uppercase.
pub fn check_personal_fiscal_code(s: &str) -> Result<(), CodeError> {
    let found = s.chars().count();
    if found != 16 {
        return Err(CodeError::Length {
            expected: "16",
            found,
        });
    }
    let b = s.as_bytes();
    if !b
        .iter()
        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    {
        return Err(CodeError::Charset);
    }
    let mut digits = [0u8; 7];
    for (slot, &pos) in digits.iter_mut().zip(OMOCODIA_POSITIONS.iter()) {
        *slot = omocodia_digit(b[pos])
            .ok_or(CodeError::Format("struttura del codice fiscale non valida"))?;
    }
    let letter_positions = [0, 1, 2, 3, 4, 5, 8, 11, 15];
    if !letter_positions.iter().all(|&p| b[p].is_ascii_uppercase()) {
        return Err(CodeError::Format("struttura del codice fiscale non valida"));
    }
    if !MONTH_LETTERS.contains(&b[8]) {
        return Err(CodeError::Format("mese di nascita non valido"));
    }
    // digits[2..4] are positions 9 and 10: the day, plus 40 for women.
    let day = digits[2] * 10 + digits[3];
    if !matches!(day, 1..=31 | 41..=71) {
        return Err(CodeError::Format("giorno di nascita non valido"));
    }
    if personal_check_char(&s[..15]) != char::from(b[15]) {
        return Err(CodeError::CheckDigit);
    }
    Ok(())
}

/// Checks a fiscal code of either kind, chosen by length: 11 characters for
/// the numeric code, 16 for the personal one.
pub fn check_fiscal_code(s: &str) -> Result<(), CodeError> {
    match s.chars().count() {
        11 => check_numeric_fiscal_code(s),
        16 => check_personal_fiscal_code(s),
        found => Err(CodeError::Length {
            expected: "11 o 16",
            found,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_numeric_codes() {
        // Each verified by hand with the algorithm, not taken on trust.
        for code in ["01234567897", "00743110157", "02438750586"] {
            assert_eq!(check_numeric_fiscal_code(code), Ok(()), "{code}");
            assert_eq!(check_fiscal_code(code), Ok(()), "{code}");
        }
        assert_eq!(
            numeric_check_digit(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
            7,
            "01234567897"
        );
    }

    #[test]
    fn numeric_errors() {
        assert_eq!(
            check_numeric_fiscal_code("01234567898"),
            Err(CodeError::CheckDigit)
        );
        assert_eq!(
            check_numeric_fiscal_code("0123456789"),
            Err(CodeError::Length {
                expected: "11",
                found: 10
            })
        );
        assert_eq!(
            check_numeric_fiscal_code("0123456789A"),
            Err(CodeError::Charset)
        );
        assert_eq!(
            check_numeric_fiscal_code("00000000000"),
            Err(CodeError::Format("codice fiscale composto da soli zeri"))
        );
        // Multi-byte characters are counted as characters, not bytes.
        assert!(matches!(
            check_numeric_fiscal_code("0123456789é"),
            Err(CodeError::Charset)
        ));
    }

    #[test]
    fn known_personal_codes() {
        for code in ["RSSMRA85T10A562S", "MRTMTT25D09F205Z", "BNCGVN80A01H501J"] {
            assert_eq!(check_personal_fiscal_code(code), Ok(()), "{code}");
            assert_eq!(check_fiscal_code(code), Ok(()), "{code}");
        }
        assert_eq!(personal_check_char("RSSMRA85T10A562"), 'S');
    }

    #[test]
    fn omocodic_code_is_accepted() {
        // RSSMRA85T10A562S with its last digit (2 -> N) replaced.
        let base = "RSSMRA85T10A56N";
        let code = format!("{base}{}", personal_check_char(base));
        assert_eq!(check_personal_fiscal_code(&code), Ok(()));
        // Female day (10 + 40 = 50), and all digits replaced.
        let base = "RSSMRAURTRLARSN";
        let code = format!("{base}{}", personal_check_char(base));
        assert_eq!(check_personal_fiscal_code(&code), Ok(()));
    }

    #[test]
    fn personal_errors() {
        assert_eq!(
            check_personal_fiscal_code("RSSMRA85T10A562T"),
            Err(CodeError::CheckDigit)
        );
        assert_eq!(
            check_personal_fiscal_code("rssmra85t10a562s"),
            Err(CodeError::Charset)
        );
        assert!(matches!(
            check_personal_fiscal_code("RSSMRA85Z10A562S"),
            Err(CodeError::Format(_))
        ));
        // Day 32 does not exist.
        let base = "RSSMRA85T32A562";
        let code = format!("{base}{}", personal_check_char(base));
        assert!(matches!(
            check_personal_fiscal_code(&code),
            Err(CodeError::Format(_))
        ));
        // A letter that is not an omocodia letter in a digit position.
        let base = "RSSMRA8AT10A562";
        let code = format!("{base}{}", personal_check_char(base));
        assert!(matches!(
            check_personal_fiscal_code(&code),
            Err(CodeError::Format(_))
        ));
        assert_eq!(
            check_fiscal_code("RSSMRA85T10A562"),
            Err(CodeError::Length {
                expected: "11 o 16",
                found: 15
            })
        );
    }

    fn numeric_code() -> impl Strategy<Value = String> {
        prop::array::uniform10(0u8..10)
            .prop_filter("not all zero", |d| d.iter().any(|&x| x != 0))
            .prop_map(|d| {
                let mut s: String = d.iter().map(|&x| char::from(b'0' + x)).collect();
                s.push(char::from(b'0' + numeric_check_digit(&d)));
                s
            })
    }

    fn personal_code() -> impl Strategy<Value = String> {
        let letter = || (b'A'..=b'Z').prop_map(char::from);
        (
            prop::collection::vec(letter(), 6),
            0u8..100,
            prop::sample::select(MONTH_LETTERS.to_vec()),
            prop::sample::select((1u8..=31).chain(41..=71).collect::<Vec<_>>()),
            letter(),
            0u16..1000,
            prop::array::uniform7(any::<bool>()),
        )
            .prop_map(|(name, year, month, day, town, place, omocodia)| {
                let mut s: Vec<u8> = name.iter().map(|&c| c as u8).collect();
                s.extend(format!("{year:02}").bytes());
                s.push(month);
                s.extend(format!("{day:02}").bytes());
                s.push(town as u8);
                s.extend(format!("{place:03}").bytes());
                for (&pos, replace) in OMOCODIA_POSITIONS.iter().zip(omocodia) {
                    if replace {
                        s[pos] = OMOCODIA_LETTERS[usize::from(s[pos] - b'0')];
                    }
                }
                let mut code = String::from_utf8(s).expect("ASCII");
                code.push(personal_check_char(&code));
                code
            })
    }

    const ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

    proptest! {
        #[test]
        fn generated_numeric_codes_are_valid(code in numeric_code()) {
            prop_assert_eq!(check_numeric_fiscal_code(&code), Ok(()));
            prop_assert_eq!(check_fiscal_code(&code), Ok(()));
        }

        #[test]
        fn numeric_single_digit_change_is_detected(
            code in numeric_code(), pos in 0usize..11, delta in 1u8..10,
        ) {
            let mut b = code.into_bytes();
            b[pos] = b'0' + (b[pos] - b'0' + delta) % 10;
            let changed = String::from_utf8(b).expect("ASCII");
            prop_assert!(check_numeric_fiscal_code(&changed).is_err());
        }

        #[test]
        fn numeric_adjacent_transposition_is_detected(code in numeric_code(), pos in 0usize..10) {
            let mut b = code.into_bytes();
            // Like Luhn, the algorithm cannot see 09 <-> 90.
            let pair = [b[pos], b[pos + 1]];
            prop_assume!(pair[0] != pair[1] && pair != *b"09" && pair != *b"90");
            b.swap(pos, pos + 1);
            let changed = String::from_utf8(b).expect("ASCII");
            prop_assert!(check_numeric_fiscal_code(&changed).is_err());
        }

        #[test]
        fn generated_personal_codes_are_valid(code in personal_code()) {
            prop_assert_eq!(check_personal_fiscal_code(&code), Ok(()));
            prop_assert_eq!(check_fiscal_code(&code), Ok(()));
        }

        #[test]
        fn personal_single_char_change_is_detected(
            code in personal_code(), pos in 0usize..16, replacement in prop::sample::select(ALNUM.to_vec()),
        ) {
            let mut b = code.into_bytes();
            prop_assume!(b[pos] != replacement);
            b[pos] = replacement;
            let changed = String::from_utf8(b).expect("ASCII");
            prop_assert!(check_personal_fiscal_code(&changed).is_err());
        }

        #[test]
        fn random_strings_never_panic(s in ".{0,40}") {
            let _ = check_fiscal_code(&s);
            let _ = check_numeric_fiscal_code(&s);
            let _ = check_personal_fiscal_code(&s);
            let _ = personal_check_char(&s);
        }

        #[test]
        fn random_alnum_never_panic(s in "[A-Z0-9]{11}|[A-Z0-9]{16}") {
            let _ = check_fiscal_code(&s);
        }
    }
}
