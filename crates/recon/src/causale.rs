//! The causale of a bank transfer, as the treasury reports it.
//!
//! A PSP pays an Ente one bank transfer per reporting flow, with the causale
//! `/PUR/LGPE-RIVERSAMENTO/URI/<flow id>` (or with `/TXT/<digit>` before
//! `/URI/`). Older single payments carry `/RFB/<IUV>[/<amount>]` or
//! `/RFS/<RF reference>[/<amount>]`. Between the PSP and the treasury's
//! journal, banks mangle the text: they upper-case it, put spaces inside
//! the markers (`LGPE- RIVERSAMENTO`, ` URI `) and inside the flow id's
//! date, and add their own words before and after. [`parse`] reads all of
//! that; what it cannot read is `None`, never a guess.
//!
//! A flow id read here is a candidate: the matcher still wants the amount
//! to agree, and tries the known flow ids against the causale with its
//! spaces removed ([`squeezed`]) when the candidate matches nothing.

use incasso_core::Cents;

/// What a causale says it pays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Causale {
    /// The transfer of a reporting flow.
    Flow { flow_id: String },
    /// `/RFB/`: one payment, by its IUV.
    SinglePayment { iuv: String, amount: Option<Cents> },
    /// `/RFS/`: one payment, by its ISO 11649 creditor reference.
    CreditorReference {
        reference: String,
        amount: Option<Cents>,
    },
}

/// The longest flow id the schema allows (`stIdentificativoFlusso`).
const FLOW_ID_MAX: usize = 35;

fn is_flow_id_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// Reads a causale. `None` when it names no flow and no single payment.
pub fn parse(text: &str) -> Option<Causale> {
    // ASCII upper-casing keeps every byte where it was, so positions found
    // in `upper` index `text` too (a flow id keeps its own case).
    let upper = text.to_ascii_uppercase();
    let bytes = upper.as_bytes();
    if let Some(at) = flow_marker(bytes)
        && let Some(id) = flow_id_after(text.as_bytes(), at)
    {
        return Some(Causale::Flow { flow_id: id });
    }
    if let Some(at) = find_marker(bytes, b"RFB") {
        let (iuv, amount) = reference_and_amount(text.as_bytes(), at);
        if (15..=35).contains(&iuv.len()) && iuv.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Some(Causale::SinglePayment { iuv, amount });
        }
    }
    if let Some(at) = find_marker(bytes, b"RFS") {
        let (reference, amount) = reference_and_amount(text.as_bytes(), at);
        let reference = reference.to_ascii_uppercase();
        if incasso_core::codes::rf::check_creditor_reference(&reference).is_ok() {
            return Some(Causale::CreditorReference { reference, amount });
        }
    }
    None
}

/// The causale without whitespace, upper-cased: where the matcher looks
/// for known flow ids that [`parse`] could not cut out cleanly.
pub fn squeezed(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_uppercase)
        .collect()
}

/// Where the flow id's marker ends: after `URI` following
/// `LGPE-RIVERSAMENTO` (however spaced), or after a bare `/URI/`.
fn flow_marker(upper: &[u8]) -> Option<usize> {
    let search_from = riversamento_end(upper).unwrap_or(0);
    let mut i = search_from;
    while let Some(found) = find(upper, b"URI", i) {
        let before_ok = found == 0 || matches!(upper[found - 1], b'/' | b' ' | b':' | b'.');
        let after = found + 3;
        let after_ok = after < upper.len() && matches!(upper[after], b'/' | b' ' | b':' | b'=');
        // Without the LGPE marker only the exact `/URI/` form counts: a
        // bare word "URI" in free text is not a flow.
        let strict_ok = search_from > 0
            || (found > 0
                && upper[found - 1] == b'/'
                && after < upper.len()
                && upper[after] == b'/');
        if before_ok && after_ok && strict_ok {
            let mut end = after;
            while end < upper.len() && matches!(upper[end], b'/' | b' ' | b':' | b'=') {
                end += 1;
            }
            return Some(end);
        }
        i = found + 1;
    }
    None
}

/// The end of `LGPE-RIVERSAMENTO`, with any spaces, dashes or underscores
/// between its words.
fn riversamento_end(upper: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(at) = find(upper, b"LGPE", from) {
        let mut j = at + 4;
        while j < upper.len() && matches!(upper[j], b' ' | b'-' | b'_') {
            j += 1;
        }
        if upper[j..].starts_with(b"RIVERSAMENTO") {
            return Some(j + b"RIVERSAMENTO".len());
        }
        from = at + 1;
    }
    None
}

/// The flow id starting at `at`. A space inside it is dropped where the id
/// is clearly not over: inside its leading date (`2026-10- 02...`), or
/// next to one of its own dashes or underscores (`...PSP -1`).
fn flow_id_after(text: &[u8], at: usize) -> Option<String> {
    let mut id = String::new();
    let mut i = at;
    loop {
        while i < text.len() && is_flow_id_char(text[i]) && id.len() < FLOW_ID_MAX {
            id.push(text[i] as char);
            i += 1;
        }
        if id.len() >= FLOW_ID_MAX || i >= text.len() || text[i] != b' ' {
            break;
        }
        let mut next = i;
        while next < text.len() && text[next] == b' ' {
            next += 1;
        }
        if next >= text.len() || !is_flow_id_char(text[next]) {
            break;
        }
        let inside_date = id.len() < 10 && id.bytes().all(|b| b.is_ascii_digit() || b == b'-');
        let at_separator = id.ends_with(['-', '_']) || matches!(text[next], b'-' | b'_');
        if !(inside_date || at_separator) {
            break;
        }
        i = next;
    }
    (!id.is_empty()).then_some(id)
}

/// `/XXX/` (or `/XXX `, as banks write it): the position after it. The
/// leading slash is required: "rfb" in free text names nothing.
fn find_marker(upper: &[u8], marker: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(at) = find(upper, marker, from) {
        let before_ok = at > 0 && upper[at - 1] == b'/';
        let after = at + marker.len();
        if before_ok && after < upper.len() && matches!(upper[after], b'/' | b' ') {
            let mut end = after;
            while end < upper.len() && matches!(upper[end], b'/' | b' ') {
                end += 1;
            }
            return Some(end);
        }
        from = at + 1;
    }
    None
}

/// `<reference>[/<amount>]` from `at`: the reference runs to the next `/`
/// or space; an amount follows a `/` and uses a dot or a comma.
fn reference_and_amount(text: &[u8], at: usize) -> (String, Option<Cents>) {
    let mut end = at;
    while end < text.len() && text[end].is_ascii_alphanumeric() {
        end += 1;
    }
    let reference = String::from_utf8_lossy(&text[at..end]).into_owned();
    let mut amount = None;
    if end < text.len() && text[end] == b'/' {
        let start = end + 1;
        let mut stop = start;
        while stop < text.len()
            && (text[stop].is_ascii_digit() || matches!(text[stop], b'.' | b','))
        {
            stop += 1;
        }
        amount = parse_amount(&String::from_utf8_lossy(&text[start..stop]));
    }
    (reference, amount)
}

/// `123.45`, `123,45` or `123` (euro) in cents.
fn parse_amount(s: &str) -> Option<Cents> {
    let s = s.replace(',', ".");
    let (units, decimals) = match s.split_once('.') {
        Some((u, d)) if d.len() == 2 => (u, d),
        Some(_) => return None,
        None => (s.as_str(), "00"),
    };
    if units.is_empty() || !units.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let units: i64 = units.parse().ok()?;
    let decimals: i64 = decimals.parse().ok()?;
    Some(Cents(units.checked_mul(100)?.checked_add(decimals)?))
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if from >= hay.len() {
        return None;
    }
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(id: &str) -> Option<Causale> {
        Some(Causale::Flow {
            flow_id: id.to_string(),
        })
    }

    /// Causali as treasuries print them, and what each must read as.
    #[test]
    fn the_corpus_reads_as_expected() {
        let id = "2026-10-02PSPEITMMXXX-S000000001";
        let corpus: &[(&str, Option<Causale>)] = &[
            (
                "/PUR/LGPE-RIVERSAMENTO/URI/2026-10-02PSPEITMMXXX-S000000001",
                flow(id),
            ),
            (
                "/PUR/LGPE-RIVERSAMENTO/TXT/1/URI/2026-10-02PSPEITMMXXX-S000000001",
                flow(id),
            ),
            (
                "/pur/lgpe-riversamento/uri/2026-10-02PSPEITMMXXX-S000000001",
                flow(id),
            ),
            (
                "/PUR/LGPE- RIVERSAMENTO/URI/2026-10-02PSPEITMMXXX-S000000001",
                flow(id),
            ),
            (
                "/PUR/LGPE -RIVERSAMENTO/URI/2026-10-02PSPEITMMXXX-S000000001",
                flow(id),
            ),
            (
                "/PUR/LGPE RIVERSAMENTO URI 2026-10-02PSPEITMMXXX-S000000001",
                flow(id),
            ),
            (
                "/PUR/LGPE-RIVERSAMENTO/URI/2026-10- 02PSPEITMMXXX-S000000001",
                flow(id),
            ),
            (
                "/PUR/LGPE-RIVERSAMENTO/URI/2026 -10-02PSPEITMMXXX-S000000001",
                flow(id),
            ),
            (
                "/PUR/LGPE-RIVERSAMENTO/URI/2026-10-02PSPEITMMXXX -S000000001",
                flow(id),
            ),
            (
                "BONIFICO SEPA DA PSP ESEMPIO SPA /PUR/LGPE-RIVERSAMENTO/URI/2026-10-02PSPEITMMXXX-S000000001 DATA REG 02/10/2026",
                flow(id),
            ),
            (
                "RIVERSAMENTO PAGOPA /PUR/LGPE-RIVERSAMENTO/URI/2026-10-02PSPEITMMXXX-S000000001/",
                flow(id),
            ),
            ("URI/2026-10-02PSPEITMMXXX-S000000001", None),
            ("/URI/2026-10-02PSPEITMMXXX-S000000001", flow(id)),
            (
                "/RFB/01000000001234519/150.00/TXT/TARI 2026",
                Some(Causale::SinglePayment {
                    iuv: "01000000001234519".into(),
                    amount: Some(Cents(15_000)),
                }),
            ),
            (
                "/RFB/01000000001234519",
                Some(Causale::SinglePayment {
                    iuv: "01000000001234519".into(),
                    amount: None,
                }),
            ),
            (
                "/RFB/01000000001234519/12,50",
                Some(Causale::SinglePayment {
                    iuv: "01000000001234519".into(),
                    amount: Some(Cents(1_250)),
                }),
            ),
            (
                "/RFS/RF18539007547034/10.00",
                Some(Causale::CreditorReference {
                    reference: "RF18539007547034".into(),
                    amount: Some(Cents(1_000)),
                }),
            ),
            ("/RFS/RF00539007547034/10.00", None),
            ("/RFB/123/1.00", None),
            ("PAGAMENTO RFB 01000000001234519", None),
            ("PAGAMENTO TARI ROSSI MARIO", None),
            ("SOSPESO URI ERRATO", None),
            ("", None),
        ];
        for (text, expected) in corpus {
            assert_eq!(&parse(text), expected, "causale {text:?}");
        }
    }

    #[test]
    fn a_flow_id_stops_at_the_schema_length_and_at_free_text() {
        let long = format!("/PUR/LGPE-RIVERSAMENTO/URI/{}", "A".repeat(50));
        assert_eq!(parse(&long), flow(&"A".repeat(35)));
        assert_eq!(
            parse("/PUR/LGPE-RIVERSAMENTO/URI/2026-10-02PSPEITMMXXX-S1 PAGAMENTI DEL GIORNO"),
            flow("2026-10-02PSPEITMMXXX-S1")
        );
    }

    #[test]
    fn squeezing_drops_every_space_and_upper_cases() {
        assert_eq!(squeezed("/uri/2026-10- 02 psp -1"), "/URI/2026-10-02PSP-1");
    }
}
