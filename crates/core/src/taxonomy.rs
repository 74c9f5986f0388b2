//! The official pagoPA taxonomy of collection services (*tassonomia dei
//! servizi di incasso*), version 33, embedded in the binary.
//!
//! Each entry's code ("DATI SPECIFICI DI INCASSO", e.g. `9/0101100IM/`) is
//! what a transfer's category must carry; SANP 3 / GPD payloads use the bare
//! form without the `9/` prefix and trailing `/` (`0101100IM`).

use std::collections::HashMap;
use std::sync::LazyLock;

use chrono::NaiveDate;
use serde::Deserialize;

/// The source file. Its validity dates are written month first
/// (`MM/DD/YYYY`) despite being an Italian document: several only parse
/// that way (`02/15/2021`, `02/27/2023`), the others fall on the first of a
/// month that way (monthly releases), and one entry (`9/0115119AP/`) would
/// otherwise end before it starts.
const SOURCE: &str = include_str!("../data/tassonomia.json");

const DATE_FORMAT: &str = "%m/%d/%Y";

/// One service of the taxonomy.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TaxonomyEntry {
    /// Full code, e.g. `9/0101100IM/`.
    pub code: String,
    /// "TIPO SERVIZIO", e.g. "Rendite catastali (ICI, IMU, TUC, ecc.)".
    pub service_type: String,
    /// "NOME MACRO AREA", e.g. "TRIBUTI".
    pub macro_area: String,
    /// "TIPO ENTE CREDITORE", e.g. "COMUNE/UNIONE DI COMUNI / CONSORZI".
    pub creditor_type: String,
    /// First day of validity (inclusive).
    pub valid_from: NaiveDate,
    /// Last day of validity (inclusive).
    pub valid_to: NaiveDate,
}

impl TaxonomyEntry {
    /// The code without `9/` and the trailing `/`, as SANP 3 payloads carry
    /// it, e.g. `0101100IM`.
    pub fn bare_code(&self) -> &str {
        normalize(&self.code)
    }

    /// Whether the entry is valid on `date` (both ends inclusive).
    pub fn is_valid_on(&self, date: NaiveDate) -> bool {
        self.valid_from <= date && date <= self.valid_to
    }
}

#[derive(Deserialize)]
struct RawEntry {
    #[serde(rename = "DATI SPECIFICI DI INCASSO")]
    code: String,
    #[serde(rename = "TIPO SERVIZIO")]
    service_type: String,
    #[serde(rename = "NOME MACRO AREA")]
    macro_area: String,
    #[serde(rename = "TIPO ENTE CREDITORE")]
    creditor_type: String,
    #[serde(rename = "DATA INIZIO VALIDITA")]
    valid_from: String,
    #[serde(rename = "DATA FINE VALIDITA")]
    valid_to: String,
}

struct Taxonomy {
    entries: Vec<TaxonomyEntry>,
    /// Bare code -> index into `entries`.
    by_code: HashMap<String, usize>,
}

fn parse_date(code: &str, s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, DATE_FORMAT)
        .unwrap_or_else(|e| panic!("embedded taxonomy: bad date {s:?} for {code}: {e}"))
}

/// Panics only if the embedded file is broken, which the tests rule out.
fn load() -> Taxonomy {
    let raw: Vec<RawEntry> =
        serde_json::from_str(SOURCE).expect("embedded taxonomy is valid JSON of the known shape");
    let entries: Vec<TaxonomyEntry> = raw
        .into_iter()
        .map(|r| TaxonomyEntry {
            valid_from: parse_date(&r.code, &r.valid_from),
            valid_to: parse_date(&r.code, &r.valid_to),
            code: r.code,
            service_type: r.service_type,
            macro_area: r.macro_area,
            creditor_type: r.creditor_type,
        })
        .collect();
    let by_code = entries
        .iter()
        .enumerate()
        .map(|(i, e)| (e.bare_code().to_owned(), i))
        .collect();
    Taxonomy { entries, by_code }
}

static TAXONOMY: LazyLock<Taxonomy> = LazyLock::new(load);

/// Strips surrounding whitespace, a leading `9/` and a trailing `/`.
fn normalize(category: &str) -> &str {
    let s = category.trim();
    let s = s.strip_prefix("9/").unwrap_or(s);
    s.strip_suffix('/').unwrap_or(s)
}

/// Finds a taxonomy entry by full (`9/0101100IM/`) or bare (`0101100IM`)
/// code. Matching is case-sensitive: the codes are uppercase.
pub fn lookup(category: &str) -> Option<&'static TaxonomyEntry> {
    let taxonomy = &*TAXONOMY;
    taxonomy
        .by_code
        .get(normalize(category))
        .and_then(|&i| taxonomy.entries.get(i))
}

/// Whether `category` is a known code valid on `date`.
pub fn is_valid_on(category: &str, date: NaiveDate) -> bool {
    lookup(category).is_some_and(|e| e.is_valid_on(date))
}

/// All entries, in the order of the official file.
pub fn all() -> &'static [TaxonomyEntry] {
    &TAXONOMY.entries
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
    }

    #[test]
    fn all_entries_parse() {
        assert_eq!(all().len(), 623);
        assert_eq!(TAXONOMY.by_code.len(), 623, "codes are unique");
        for e in all() {
            assert!(e.valid_from <= e.valid_to, "{}", e.code);
            assert!(
                e.code.starts_with("9/") && e.code.ends_with('/'),
                "{}",
                e.code
            );
            assert_eq!(e.bare_code().len(), 9, "{}", e.code);
        }
    }

    #[test]
    fn known_code_both_forms() {
        let full = lookup("9/0101100IM/").expect("known code");
        assert_eq!(full.code, "9/0101100IM/");
        assert_eq!(full.bare_code(), "0101100IM");
        assert_eq!(full.macro_area, "TRIBUTI");
        assert_eq!(full.creditor_type, "COMUNE/UNIONE DI COMUNI / CONSORZI");
        assert_eq!(full.service_type, "Rendite catastali (ICI, IMU, TUC, ecc.)");
        assert_eq!(full.valid_from, date(1900, 1, 1));
        assert_eq!(full.valid_to, date(2080, 1, 1));
        let bare = lookup("0101100IM").expect("known code");
        assert!(std::ptr::eq(full, bare));
        assert!(lookup(" 9/0101100IM/ ").is_some());
        assert!(lookup("9/0101100IM").is_some());
    }

    #[test]
    fn unknown_codes() {
        assert!(lookup("9/9999999XX/").is_none());
        assert!(lookup("0101100XX").is_none());
        assert!(lookup("").is_none());
        assert!(lookup("9/").is_none());
        assert!(lookup("0101100im").is_none());
        assert!(!is_valid_on("0101100XX", date(2024, 1, 1)));
    }

    #[test]
    fn dates_are_month_first() {
        // Only parses as MM/DD/YYYY.
        let e = lookup("0101107TS").expect("known code");
        assert_eq!(e.valid_from, date(2021, 2, 15));
        // Valid from 05/03/2021 to 12/01/2021, i.e. May 3 to December 1.
        let e = lookup("9/0115119AP/").expect("known code");
        assert_eq!(e.valid_from, date(2021, 5, 3));
        assert_eq!(e.valid_to, date(2021, 12, 1));
        assert!(!is_valid_on("0115119AP", date(2021, 5, 2)));
        assert!(is_valid_on("0115119AP", date(2021, 5, 3)));
        assert!(is_valid_on("0115119AP", date(2021, 12, 1)));
        assert!(!is_valid_on("0115119AP", date(2021, 12, 2)));
        assert!(is_valid_on("9/0101100IM/", date(2024, 6, 30)));
    }

    proptest! {
        #[test]
        fn every_entry_is_found_both_ways(i in 0usize..623) {
            let e = &all()[i];
            prop_assert!(std::ptr::eq(lookup(&e.code).expect("full"), e));
            prop_assert!(std::ptr::eq(lookup(e.bare_code()).expect("bare"), e));
        }

        #[test]
        fn random_strings_never_panic(s in ".{0,20}") {
            let _ = lookup(&s);
            let _ = is_valid_on(&s, date(2024, 1, 1));
        }
    }
}
