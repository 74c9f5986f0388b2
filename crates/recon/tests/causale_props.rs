//! The causale parser against generated causali: every way the spec and
//! the banks write a flow's or a payment's causale reads back to what was
//! written, and nothing at all makes it panic.

use incasso_core::Cents;
use incasso_recon::causale::{Causale, parse, squeezed};
use proptest::prelude::*;

/// Flow ids as PSPs make them: settlement date, PSP id, a progressive.
fn realistic_flow_id() -> impl Strategy<Value = String> {
    (
        2020u32..2040,
        1u32..13,
        1u32..29,
        "[A-Z0-9]{4,16}",
        "[A-Za-z0-9]{1,12}",
    )
        .prop_map(|(y, m, d, psp, n)| {
            let mut id = format!("{y}-{m:02}-{d:02}{psp}-{n}");
            id.truncate(35);
            id
        })
}

/// Any id the schema allows that begins and ends with a letter or digit.
fn schema_flow_id() -> impl Strategy<Value = String> {
    "[A-Za-z0-9]([A-Za-z0-9_-]{0,33}[A-Za-z0-9])?"
}

fn bank_words() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec![
            "BONIFICO",
            "SEPA",
            "DA",
            "ACCREDITO",
            "RIF",
            "ORD",
            "PAGOPA",
            "SPA",
            "02/10/2026",
        ]),
        0..4,
    )
    .prop_map(|w| w.join(" "))
}

fn marker() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["-", "- ", " -", " ", "_", " - "]),
        prop::sample::select(vec!["/URI/", " URI ", "/URI ", " URI/"]),
        prop::option::of(0u8..10),
        any::<bool>(),
    )
        .prop_map(|(dash, uri, txt, lower)| {
            let txt = txt.map(|d| format!("/TXT/{d}")).unwrap_or_default();
            let m = format!("/PUR/LGPE{dash}RIVERSAMENTO{txt}{uri}");
            if lower { m.to_lowercase() } else { m }
        })
}

proptest! {
    #[test]
    fn a_flow_causale_reads_back_its_flow_id(
        id in realistic_flow_id(),
        marker in marker(),
        before in bank_words(),
        after in bank_words(),
    ) {
        let text = format!("{before} {marker}{id} {after}");
        prop_assert_eq!(parse(&text), Some(Causale::Flow { flow_id: id }));
    }

    #[test]
    fn any_schema_flow_id_reads_back_from_the_canonical_form(id in schema_flow_id()) {
        let text = format!("/PUR/LGPE-RIVERSAMENTO/URI/{id}");
        prop_assert_eq!(parse(&text), Some(Causale::Flow { flow_id: id }));
    }

    #[test]
    fn a_space_inside_the_date_is_read_through(id in realistic_flow_id(), at in 1usize..10) {
        let mut mangled = id.clone();
        mangled.insert(at, ' ');
        let text = format!("/PUR/LGPE-RIVERSAMENTO/URI/{mangled}");
        prop_assert_eq!(parse(&text), Some(Causale::Flow { flow_id: id.clone() }));
        // And the squeezed text still holds the id, for the matcher.
        prop_assert!(squeezed(&text).contains(&id.to_uppercase()));
    }

    #[test]
    fn a_single_payment_reads_back_its_iuv_and_amount(
        iuv in "[0-9]{17}",
        cents in 1i64..100_000_000_000,
        comma in any::<bool>(),
        txt in bank_words(),
    ) {
        let mut amount = format!("{}.{:02}", cents / 100, cents % 100);
        if comma {
            amount = amount.replace('.', ",");
        }
        let text = format!("/RFB/{iuv}/{amount}/TXT/{txt}");
        prop_assert_eq!(
            parse(&text),
            Some(Causale::SinglePayment { iuv, amount: Some(Cents(cents)) })
        );
    }

    #[test]
    fn nothing_makes_the_parser_panic(text in "\\PC{0,200}") {
        let _ = parse(&text);
        let _ = squeezed(&text);
    }

    #[test]
    fn free_text_without_markers_names_nothing(text in "[a-z ,.]{0,120}") {
        prop_assert_eq!(parse(&text), None);
    }
}
