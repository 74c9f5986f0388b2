//! What a log line must never carry in full: a person's fiscal code, an
//! IBAN, an incasso API key, a long hexadecimal secret. Masked by shape,
//! not by check digit, so a mistyped code is masked too; an Ente's 11-digit
//! fiscal code is public and left alone. The log writer runs every line
//! through [`redact`], whatever field or message carried the value.

use std::borrow::Cow;

/// `line` with every fiscal code, IBAN, API key and long hex run masked:
/// the fiscal code and the IBAN keep their last 3 characters (enough to
/// tell two apart when reading a log), the key its public id.
pub fn redact(line: &str) -> Cow<'_, str> {
    let bytes = line.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if !is_word(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && is_word(bytes[i]) {
            i += 1;
        }
        let word = &line[start..i];
        if let Some(masked) = mask(word) {
            let o = out.get_or_insert_with(|| String::with_capacity(line.len()));
            o.push_str(&line[copied..start]);
            o.push_str(&masked);
            copied = i;
        }
    }
    match out {
        None => Cow::Borrowed(line),
        Some(mut o) => {
            o.push_str(&line[copied..]);
            Cow::Owned(o)
        }
    }
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn mask(word: &str) -> Option<String> {
    if let Some(rest) = word.strip_prefix("inc_")
        && let Some((id, secret)) = rest.split_once('_')
        && !secret.is_empty()
    {
        return Some(format!("inc_{id}_***"));
    }
    if looks_like_fiscal_code(word) || looks_like_iban(word) {
        return Some(keep_tail(word, 3));
    }
    if word.len() >= 40 && word.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Some("***".into());
    }
    None
}

fn keep_tail(word: &str, keep: usize) -> String {
    let n = word.len();
    format!("{}{}", "*".repeat(n - keep), &word[n - keep..])
}

/// `LLLLLL DD L DD L DDD L`, any case, digits possibly replaced by
/// omocodia letters.
fn looks_like_fiscal_code(w: &str) -> bool {
    const LETTERS: [usize; 9] = [0, 1, 2, 3, 4, 5, 8, 11, 15];
    const OMOCODIA: &[u8] = b"LMNPQRSTUV";
    let b = w.as_bytes();
    b.len() == 16
        && (0..16).all(|i| {
            let c = b[i].to_ascii_uppercase();
            if LETTERS.contains(&i) {
                c.is_ascii_uppercase()
            } else {
                c.is_ascii_digit() || OMOCODIA.contains(&c)
            }
        })
}

/// Two letters, two check digits, then 11 to 30 letters or digits.
fn looks_like_iban(w: &str) -> bool {
    let b = w.as_bytes();
    (15..=34).contains(&b.len())
        && b[..2].iter().all(u8::is_ascii_uppercase)
        && b[2..4].iter().all(u8::is_ascii_digit)
        && b[4..]
            .iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn personal_data_and_secrets_are_masked() {
        let line = r#"{"debtor":"RSSMRA85T10A562S","iban":"IT65B0200805364000104567891","key":"inc_0a1b2c3d4e5f_00112233445566778899aabbccddeeff0011223344556677","cf":"rssmra85t10a562s","x":"MRTMTT25D09F205Z"}"#;
        let out = redact(line);
        for secret in [
            "RSSMRA85T10A562S",
            "rssmra85t10a562s",
            "MRTMTT25D09F205Z",
            "IT65B0200805364000104567891",
            "00112233445566778899aabbccddeeff0011223344556677",
        ] {
            assert!(!out.contains(secret), "{secret} in {out}");
        }
        assert!(out.contains("*************62S"), "{out}");
        assert!(out.contains("************************891"), "{out}");
        assert!(out.contains("inc_0a1b2c3d4e5f_***"), "{out}");
    }

    #[test]
    fn everything_else_is_left_as_it_is() {
        for line in [
            "ente=80000130585 iuv=01000000000000123 nav=301000000000000123 amount=12345",
            "GET /gpd/v1/organizations/80000130585/debtpositions/IUPD-1 200",
            "station 15376371009_01 sealed",
            "",
            "Niccolò Ré: €12,34",
        ] {
            assert!(matches!(redact(line), Cow::Borrowed(_)), "{line}");
        }
    }

    #[test]
    fn a_mistyped_code_is_masked_too() {
        // Wrong check character: still a person's code.
        assert!(!redact("RSSMRA85T10A562X").contains("RSSMRA"));
    }
}
