//! ISO 11649 structured creditor reference (`RF` + 2 check digits + up to
//! 21 alphanumerics), usable as IUV for payments started at the Ente (SACI
//! 1.3.1, § 2.3 schemes (D) and (F), and Appendice 1).

use super::CodeError;
use super::iban::mod97;

/// Builds the creditor reference for `reference` (1 to 21 ASCII letters or
/// digits, any case): `RF` + check digits + the reference in uppercase.
///
/// The check digits are 98 - (numeric(reference + "RF00") mod 97), with
/// letters worth A=10 ... Z=35 regardless of case.
pub fn make_creditor_reference(reference: &str) -> Result<String, CodeError> {
    let found = reference.chars().count();
    if !(1..=21).contains(&found) {
        return Err(CodeError::Length {
            expected: "1-21",
            found,
        });
    }
    if !reference.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(CodeError::Charset);
    }
    let reference = reference.to_ascii_uppercase();
    let check = 98 - mod97([reference.as_str(), "RF00"]);
    Ok(format!("RF{check:02}{reference}"))
}

/// Checks a creditor reference, in electronic form or printed in groups of
/// four (spaces are ignored), in any case.
pub fn check_creditor_reference(s: &str) -> Result<(), CodeError> {
    let compact: String = s
        .chars()
        .filter(|&c| c != ' ')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let found = compact.chars().count();
    if !(5..=25).contains(&found) {
        return Err(CodeError::Length {
            expected: "5-25",
            found,
        });
    }
    if !compact.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(CodeError::Charset);
    }
    // ASCII from here on: slicing is safe.
    if !compact.starts_with("RF") {
        return Err(CodeError::Format("deve iniziare con RF"));
    }
    let check = &compact[2..4];
    if !check.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CodeError::Format("cifre di controllo non numeriche"));
    }
    // 00, 01 and 99 are never produced (98 - (0..=96)), though 01 and 99
    // alias 98 and 02 under mod 97.
    if !("02"..="98").contains(&check) {
        return Err(CodeError::CheckDigit);
    }
    if mod97([&compact[4..], &compact[..4]]) != 1 {
        return Err(CodeError::CheckDigit);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn appendix_example() {
        // SACI Appendice 1: "w9" -> 329271500 -> check digits 45 -> RF45w9.
        assert_eq!(make_creditor_reference("w9"), Ok("RF45W9".into()));
        assert_eq!(check_creditor_reference("RF45w9"), Ok(()));
        assert_eq!(check_creditor_reference("RF45W9"), Ok(()));
        assert_eq!(check_creditor_reference("rf45w9"), Ok(()));
    }

    #[test]
    fn iso_example() {
        // The example of ISO 11649 itself.
        assert_eq!(
            make_creditor_reference("539007547034"),
            Ok("RF18539007547034".into())
        );
        assert_eq!(check_creditor_reference("RF18 5390 0754 7034"), Ok(()));
        assert_eq!(check_creditor_reference("RF18539007547034"), Ok(()));
    }

    #[test]
    fn chapter_3_example_has_wrong_check_digits() {
        // SACI § 3.2 prints "RF23 5674 8393 7849 4505 5087 5" only to show
        // the grouping: its check digits are wrong, the right ones are 78.
        assert_eq!(
            check_creditor_reference("RF23 5674 8393 7849 4505 5087 5"),
            Err(CodeError::CheckDigit)
        );
        assert_eq!(
            make_creditor_reference("567483937849450550875"),
            Ok("RF78567483937849450550875".into())
        );
        assert_eq!(
            check_creditor_reference("RF78 5674 8393 7849 4505 5087 5"),
            Ok(())
        );
    }

    #[test]
    fn errors() {
        assert_eq!(
            make_creditor_reference(""),
            Err(CodeError::Length {
                expected: "1-21",
                found: 0
            })
        );
        assert!(matches!(
            make_creditor_reference(&"1".repeat(22)),
            Err(CodeError::Length { .. })
        ));
        assert_eq!(make_creditor_reference("AB-12"), Err(CodeError::Charset));
        assert_eq!(make_creditor_reference("AB 12"), Err(CodeError::Charset));
        assert_eq!(make_creditor_reference("città"), Err(CodeError::Charset));
        assert!(matches!(
            check_creditor_reference("RF45"),
            Err(CodeError::Length { .. })
        ));
        assert_eq!(
            check_creditor_reference("XX45W9"),
            Err(CodeError::Format("deve iniziare con RF"))
        );
        assert!(matches!(
            check_creditor_reference("RFX5W9"),
            Err(CodeError::Format(_))
        ));
        assert_eq!(
            check_creditor_reference("RF46W9"),
            Err(CodeError::CheckDigit)
        );
        assert_eq!(check_creditor_reference("RF45W9-"), Err(CodeError::Charset));
    }

    #[test]
    fn aliased_check_digits_are_refused() {
        for n in 0..10_000u32 {
            let rf = make_creditor_reference(&n.to_string()).expect("valid");
            let alias = match &rf[2..4] {
                "02" => "99",
                "98" => "01",
                _ => continue,
            };
            assert_eq!(check_creditor_reference(&rf), Ok(()));
            let aliased = format!("RF{alias}{}", &rf[4..]);
            assert_eq!(
                check_creditor_reference(&aliased),
                Err(CodeError::CheckDigit)
            );
            return;
        }
        panic!("no reference with check digits 02 or 98 found");
    }

    proptest! {
        #[test]
        fn make_check_round_trip(reference in "[A-Za-z0-9]{1,21}") {
            let rf = make_creditor_reference(&reference).expect("valid reference");
            prop_assert!(rf.starts_with("RF"));
            prop_assert_eq!(&rf[4..], reference.to_ascii_uppercase());
            prop_assert_eq!(check_creditor_reference(&rf), Ok(()));
            prop_assert_eq!(check_creditor_reference(&rf.to_ascii_lowercase()), Ok(()));
            // Printed form, in groups of four.
            let printed = rf
                .as_bytes()
                .chunks(4)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect::<Vec<_>>()
                .join(" ");
            prop_assert_eq!(check_creditor_reference(&printed), Ok(()));
        }

        #[test]
        fn single_digit_change_is_detected(
            reference in "[A-Z0-9]{1,21}", pos in 2usize..25, delta in 1u8..10,
        ) {
            let rf = make_creditor_reference(&reference).expect("valid reference");
            let mut b = rf.into_bytes();
            prop_assume!(pos < b.len() && b[pos].is_ascii_digit());
            b[pos] = b'0' + (b[pos] - b'0' + delta) % 10;
            let changed = String::from_utf8(b).expect("ASCII");
            prop_assert!(check_creditor_reference(&changed).is_err());
        }

        #[test]
        fn single_letter_change_is_detected(
            reference in "[A-Z0-9]{1,21}", pos in 4usize..25, replacement in b'A'..=b'Z',
        ) {
            let rf = make_creditor_reference(&reference).expect("valid reference");
            let mut b = rf.into_bytes();
            prop_assume!(pos < b.len() && b[pos].is_ascii_uppercase() && b[pos] != replacement);
            b[pos] = replacement;
            let changed = String::from_utf8(b).expect("ASCII");
            prop_assert!(check_creditor_reference(&changed).is_err());
        }

        #[test]
        fn adjacent_digit_transposition_is_detected(
            reference in "[0-9]{2,21}",
            pos in prop::sample::select((4usize..24).chain([2]).collect::<Vec<_>>()),
        ) {
            // Within the check digits or within the reference; a swap across
            // the two moves digits far apart once rearranged, so it is not
            // guaranteed.
            let rf = make_creditor_reference(&reference).expect("valid reference");
            let mut b = rf.into_bytes();
            prop_assume!(pos + 1 < b.len() && b[pos] != b[pos + 1]);
            b.swap(pos, pos + 1);
            let changed = String::from_utf8(b).expect("ASCII");
            prop_assert!(check_creditor_reference(&changed).is_err());
        }

        #[test]
        fn random_strings_never_panic(s in ".{0,40}") {
            let _ = make_creditor_reference(&s);
            let _ = check_creditor_reference(&s);
        }

        #[test]
        fn random_rf_shaped_strings_never_panic(s in "[Rr][Ff][0-9A-Z ]{0,30}") {
            let _ = check_creditor_reference(&s);
        }
    }
}
