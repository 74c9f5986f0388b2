//! What the notice's codes carry: the QR code read by banking apps and PSP
//! counters, and the Poste GS1 DataMatrix read at the post office
//! (`spec/README.md`, "Notice (avviso) codes").

use incasso_core::Cents;

/// `PAGOPA|002|<NAV>|<Ente fiscal code>|<amount in cents>`.
pub fn qr_payload(notice_number: &str, ente_fiscal_code: &str, amount: Cents) -> String {
    format!("PAGOPA|002|{notice_number}|{ente_fiscal_code}|{}", amount.0)
}

/// The 12-digit postal account of a Poste IBAN (its last 12 characters).
pub fn postal_account(postal_iban: &str) -> Option<String> {
    let compact: String = postal_iban.chars().filter(|c| !c.is_whitespace()).collect();
    let account = compact.get(compact.len().checked_sub(12)?..)?;
    account
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| account.to_string())
}

/// Text right-padded with spaces (or cut) to exactly `width` characters,
/// folded to what a DataMatrix reader at the post office expects (ASCII).
fn field(text: &str, width: usize) -> String {
    let mut out: String = fold_to_ascii(text).chars().take(width).collect();
    while out.chars().count() < width {
        out.push(' ');
    }
    out
}

/// Latin letters without their accents (Italian and German names), other
/// characters outside printable ASCII as `?`.
pub fn fold_to_ascii(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let folded = match c {
            ' '..='~' => {
                out.push(c);
                continue;
            }
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => "a",
            'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å' => "A",
            'è' | 'é' | 'ê' | 'ë' => "e",
            'È' | 'É' | 'Ê' | 'Ë' => "E",
            'ì' | 'í' | 'î' | 'ï' => "i",
            'Ì' | 'Í' | 'Î' | 'Ï' => "I",
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' => "o",
            'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ö' => "O",
            'ù' | 'ú' | 'û' | 'ü' => "u",
            'Ù' | 'Ú' | 'Û' | 'Ü' => "U",
            'ç' => "c",
            'Ç' => "C",
            'ñ' => "n",
            'Ñ' => "N",
            'ß' => "ss",
            '\u{2018}' | '\u{2019}' => "'",
            '\u{201C}' | '\u{201D}' => "\"",
            '\u{2013}' | '\u{2014}' => "-",
            '€' => "EUR",
            c if c.is_whitespace() => " ",
            _ => "?",
        };
        out.push_str(folded);
    }
    out
}

/// What the Poste DataMatrix carries:
/// `codfase=NBPA;` `18`+NAV `12`+account `10`+amount `3` `896` `1P1`
/// Ente fiscal code (11), debtor fiscal code (16), debtor name (40),
/// subject (110), 12 spaces, `A`. The symbol adds GS1's FNC1 in front.
pub fn datamatrix_payload(
    notice_number: &str,
    postal_account: &str,
    amount: Cents,
    ente_fiscal_code: &str,
    debtor_fiscal_code: &str,
    debtor_name: &str,
    subject: &str,
) -> String {
    format!(
        "codfase=NBPA;18{notice_number}12{postal_account:0>12}10{:010}3896{}{}{}{}{}{}A",
        amount.0.max(0),
        "1P1",
        field(ente_fiscal_code, 11),
        field(debtor_fiscal_code, 16),
        field(debtor_name, 40),
        field(subject, 110),
        " ".repeat(12),
    )
}

/// A code printed in groups of four, as on the official notice.
pub fn in_groups_of_four(code: &str) -> String {
    code.as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qr_payload_is_pagopas() {
        assert_eq!(
            qr_payload("301000000000012345", "80000130585", Cents(123_456)),
            "PAGOPA|002|301000000000012345|80000130585|123456"
        );
    }

    #[test]
    fn datamatrix_payload_has_every_field_at_its_width() {
        let p = datamatrix_payload(
            "301000000000012345",
            "1234567890",
            Cents(4_200),
            "80000130585",
            "RSSMRA85T10A562S",
            "Niccolò Rossi",
            "TARI 2027",
        );
        assert_eq!(p.len(), 256, "{p}");
        assert!(p.starts_with("codfase=NBPA;18301000000000012345120012345678901000000042003896"));
        assert_eq!(&p[66..77], "80000130585");
        assert_eq!(&p[77..93], "RSSMRA85T10A562S");
        assert_eq!(p[93..133].trim_end(), "Niccolo Rossi");
        assert_eq!(p[133..243].trim_end(), "TARI 2027");
        assert!(p.ends_with(&format!("{}A", " ".repeat(12))));
    }

    #[test]
    fn postal_account_is_the_ibans_last_twelve_digits() {
        assert_eq!(
            postal_account("IT98A0760103200001234567890").as_deref(),
            Some("001234567890")
        );
        assert_eq!(postal_account("IT98"), None);
    }

    #[test]
    fn codes_in_groups_of_four() {
        assert_eq!(
            in_groups_of_four("301000000000012345"),
            "3010 0000 0000 0123 45"
        );
    }
}
