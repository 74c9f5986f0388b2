//! IBAN (ISO 13616) with the ISO 7064 mod 97-10 check, per-country lengths
//! from the SWIFT IBAN registry and the Italian/San Marino BBAN layout.

use super::CodeError;

/// IBAN length per country (SWIFT IBAN registry). Countries missing here
/// are refused rather than accepted with an unchecked length.
const COUNTRY_LENGTHS: &[(&str, usize)] = &[
    ("AD", 24),
    ("AE", 23),
    ("AL", 28),
    ("AT", 20),
    ("AZ", 28),
    ("BA", 20),
    ("BE", 16),
    ("BG", 22),
    ("BH", 22),
    ("BR", 29),
    ("BY", 28),
    ("CH", 21),
    ("CR", 22),
    ("CY", 28),
    ("CZ", 24),
    ("DE", 22),
    ("DK", 18),
    ("DO", 28),
    ("EE", 20),
    ("EG", 29),
    ("ES", 24),
    ("FI", 18),
    ("FO", 18),
    ("FR", 27),
    ("GB", 22),
    ("GE", 22),
    ("GI", 23),
    ("GL", 18),
    ("GR", 27),
    ("GT", 28),
    ("HR", 21),
    ("HU", 28),
    ("IE", 22),
    ("IL", 23),
    ("IQ", 23),
    ("IS", 26),
    ("IT", 27),
    ("JO", 30),
    ("KW", 30),
    ("KZ", 20),
    ("LB", 28),
    ("LC", 32),
    ("LI", 21),
    ("LT", 20),
    ("LU", 20),
    ("LV", 21),
    ("MC", 27),
    ("MD", 24),
    ("ME", 22),
    ("MK", 19),
    ("MR", 27),
    ("MT", 31),
    ("MU", 30),
    ("NL", 18),
    ("NO", 15),
    ("PK", 24),
    ("PL", 28),
    ("PS", 29),
    ("PT", 25),
    ("QA", 29),
    ("RO", 24),
    ("RS", 22),
    ("SA", 24),
    ("SC", 31),
    ("SE", 24),
    ("SI", 19),
    ("SK", 24),
    ("SM", 27),
    ("ST", 25),
    ("SV", 28),
    ("TL", 23),
    ("TN", 24),
    ("TR", 26),
    ("UA", 29),
    ("VA", 22),
    ("VG", 24),
    ("XK", 20),
];

/// `CodeError::Length` wants a `&'static str`; IBANs are at most 34 long.
const LENGTH_NAMES: [&str; 35] = [
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16",
    "17", "18", "19", "20", "21", "22", "23", "24", "25", "26", "27", "28", "29", "30", "31", "32",
    "33", "34",
];

/// ABI code of Poste Italiane (BancoPosta accounts).
const POSTE_ABI: &str = "07601";

/// Remainder mod 97 of the concatenation of `parts`, with letters replaced
/// by 10..35 (case-insensitively) as ISO 7064 mod 97-10 wants. Other
/// characters are skipped: callers validate the charset first.
pub(crate) fn mod97<'a>(parts: impl IntoIterator<Item = &'a str>) -> u32 {
    let mut rem = 0u32;
    for c in parts.into_iter().flat_map(str::bytes) {
        rem = match c {
            b'0'..=b'9' => (rem * 10 + u32::from(c - b'0')) % 97,
            b'A'..=b'Z' => (rem * 100 + u32::from(c - b'A') + 10) % 97,
            b'a'..=b'z' => (rem * 100 + u32::from(c - b'a') + 10) % 97,
            _ => rem,
        };
    }
    rem
}

/// Computes the two IBAN check digits for a country code and a BBAN, e.g.
/// `iban_check_digits("IT", "X0542811101000000123456") == "60"`.
///
/// Letters count case-insensitively and other characters are ignored; the
/// result is only meaningful for an alphanumeric BBAN, so validate the full
/// IBAN with [`check_iban`].
pub fn iban_check_digits(country: &str, bban: &str) -> String {
    let rem = mod97([bban, country, "00"]);
    format!("{:02}", 98 - rem)
}

/// Checks an IBAN in electronic form: uppercase letters and digits, no
/// spaces; known country with its length; check digits (ISO 7064 mod 97);
/// for Italy and San Marino, the BBAN layout CIN letter + ABI (5 digits) +
/// CAB (5 digits) + account (12 alphanumerics).
///
/// The CIN letter's value is not recomputed: the pagoPA sample messages
/// carry IBANs whose CIN is wrong but whose mod 97 check is right, and the
/// mod 97 check already catches typing errors.
pub fn check_iban(s: &str) -> Result<(), CodeError> {
    if !s
        .bytes()
        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    {
        return Err(CodeError::Charset);
    }
    // ASCII from here on, so byte length is character count and slicing is safe.
    let found = s.len();
    if found < 5 {
        return Err(CodeError::Length {
            expected: "15-34",
            found,
        });
    }
    let b = s.as_bytes();
    if !(b[0].is_ascii_uppercase()
        && b[1].is_ascii_uppercase()
        && b[2].is_ascii_digit()
        && b[3].is_ascii_digit())
    {
        return Err(CodeError::Format("struttura IBAN non valida"));
    }
    let country = &s[..2];
    let expected = COUNTRY_LENGTHS
        .iter()
        .find(|(c, _)| *c == country)
        .map(|&(_, len)| len)
        .ok_or(CodeError::Format("paese IBAN non riconosciuto"))?;
    if found != expected {
        return Err(CodeError::Length {
            expected: LENGTH_NAMES[expected],
            found,
        });
    }
    if country == "IT" || country == "SM" {
        check_italian_bban(&b[4..])?;
    }
    // 00, 01 and 99 are never produced (98 - (0..=96)) yet 99 and 01 can
    // still satisfy mod 97 == 1 by aliasing 02 and 98.
    let check = &s[2..4];
    if !("02"..="98").contains(&check) {
        return Err(CodeError::CheckDigit);
    }
    if mod97([&s[4..], &s[..4]]) != 1 {
        return Err(CodeError::CheckDigit);
    }
    Ok(())
}

/// BBAN of IT and SM: CIN letter, ABI and CAB (5 digits each), 12
/// alphanumerics of account number.
fn check_italian_bban(bban: &[u8]) -> Result<(), CodeError> {
    let well_formed = bban.len() == 23
        && bban[0].is_ascii_uppercase()
        && bban[1..11].iter().all(u8::is_ascii_digit)
        && bban[11..]
            .iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    if well_formed {
        Ok(())
    } else {
        Err(CodeError::Format("struttura BBAN italiana non valida"))
    }
}

/// Whether `iban` is a valid Italian IBAN of a Poste Italiane account (ABI
/// 07601), which matters because postal accounts get the Poste DataMatrix
/// on the notice.
pub fn is_postal_iban(iban: &str) -> bool {
    check_iban(iban).is_ok() && iban.starts_with("IT") && iban.get(5..10) == Some(POSTE_ABI)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KNOWN_VALID: &[&str] = &[
        "IT60X0542811101000000123456",
        "IT45R0760103200000000001016",
        "IT61X0306909606100000012345",
        "SM86U0322509800000000270100",
        "DE89370400440532013000",
        "FR1420041010050500013M02606",
        "ES9121000418450200051332",
        "AT611904300234573201",
        "BE68539007547034",
        "NL91ABNA0417164300",
        "CH9300762011623852957",
        "LU280019400644750000",
        "PT50000201231234567890154",
        "IE29AIBK93115212345678",
        "GB82WEST12345698765432",
    ];

    #[test]
    fn known_ibans_are_valid() {
        for iban in KNOWN_VALID {
            assert_eq!(check_iban(iban), Ok(()), "{iban}");
        }
    }

    #[test]
    fn check_digits_helper_matches_known() {
        assert_eq!(iban_check_digits("IT", "X0542811101000000123456"), "60");
        assert_eq!(iban_check_digits("DE", "370400440532013000"), "89");
        assert_eq!(iban_check_digits("BE", "539007547034"), "68");
    }

    #[test]
    fn errors() {
        assert_eq!(
            check_iban("IT60X0542811101000000123457"),
            Err(CodeError::CheckDigit)
        );
        assert_eq!(
            check_iban("IT60 X054 2811 1010 0000 0123 456"),
            Err(CodeError::Charset)
        );
        assert_eq!(
            check_iban("it60x0542811101000000123456"),
            Err(CodeError::Charset)
        );
        assert_eq!(
            check_iban("IT60X054281110100000012345"),
            Err(CodeError::Length {
                expected: "27",
                found: 26
            })
        );
        assert_eq!(
            check_iban("ZZ60X0542811101000000123456"),
            Err(CodeError::Format("paese IBAN non riconosciuto"))
        );
        assert!(matches!(check_iban("6T60"), Err(CodeError::Length { .. })));
        assert!(matches!(check_iban(""), Err(CodeError::Length { .. })));
        // Digit instead of the CIN letter, check digits made consistent.
        let bban = "00542811101000000123456";
        let iban = format!("IT{}{bban}", iban_check_digits("IT", bban));
        assert_eq!(
            check_iban(&iban),
            Err(CodeError::Format("struttura BBAN italiana non valida"))
        );
    }

    #[test]
    fn aliased_check_digits_are_refused() {
        // Find a BBAN whose right check digits are 02 or 98, then alias them.
        for n in 0..10_000u32 {
            let bban = format!("X05428111010000{n:08}");
            let cd = iban_check_digits("IT", &bban);
            let alias = match cd.as_str() {
                "02" => "99",
                "98" => "01",
                _ => continue,
            };
            assert_eq!(check_iban(&format!("IT{cd}{bban}")), Ok(()));
            assert_eq!(
                check_iban(&format!("IT{alias}{bban}")),
                Err(CodeError::CheckDigit)
            );
            return;
        }
        panic!("no BBAN with check digits 02 or 98 found");
    }

    #[test]
    fn postal() {
        assert!(is_postal_iban("IT45R0760103200000000001016"));
        assert!(!is_postal_iban("IT60X0542811101000000123456"));
        // Right ABI but broken check digits.
        assert!(!is_postal_iban("IT46R0760103200000000001016"));
        assert!(!is_postal_iban("07601"));
    }

    fn italian_iban() -> impl Strategy<Value = String> {
        ("[A-Z]", "[0-9]{10}", "[0-9A-Z]{12}", prop::bool::ANY).prop_map(
            |(cin, abi_cab, account, san_marino)| {
                let country = if san_marino { "SM" } else { "IT" };
                let bban = format!("{cin}{abi_cab}{account}");
                format!("{country}{}{bban}", iban_check_digits(country, &bban))
            },
        )
    }

    proptest! {
        #[test]
        fn generated_ibans_are_valid(iban in italian_iban()) {
            prop_assert_eq!(check_iban(&iban), Ok(()));
        }

        #[test]
        fn generated_foreign_ibans_are_valid(bban in "[0-9]{18}") {
            let iban = format!("DE{}{bban}", iban_check_digits("DE", &bban));
            prop_assert_eq!(check_iban(&iban), Ok(()));
        }

        #[test]
        fn single_digit_change_is_detected(
            iban in italian_iban(), pos in 2usize..27, delta in 1u8..10,
        ) {
            let mut b = iban.into_bytes();
            prop_assume!(b[pos].is_ascii_digit());
            b[pos] = b'0' + (b[pos] - b'0' + delta) % 10;
            let changed = String::from_utf8(b).expect("ASCII");
            prop_assert!(check_iban(&changed).is_err());
        }

        #[test]
        fn adjacent_digit_transposition_is_detected(iban in italian_iban(), pos in 2usize..26) {
            let mut b = iban.into_bytes();
            prop_assume!(b[pos].is_ascii_digit() && b[pos + 1].is_ascii_digit() && b[pos] != b[pos + 1]);
            b.swap(pos, pos + 1);
            let changed = String::from_utf8(b).expect("ASCII");
            prop_assert!(check_iban(&changed).is_err());
        }

        #[test]
        fn random_strings_never_panic(s in ".{0,40}") {
            let _ = check_iban(&s);
            let _ = is_postal_iban(&s);
            let _ = iban_check_digits(&s, &s);
        }

        #[test]
        fn random_iban_shaped_strings_never_panic(s in "[A-Z]{2}[0-9]{2}[A-Z0-9]{0,30}") {
            let _ = check_iban(&s);
            let _ = is_postal_iban(&s);
        }
    }
}
