//! The layouts incasso ships, embedded in the binary. Each is documented in
//! its own file under `crates/bus/layouts/`.

use crate::layout::{Layout, LayoutError};

const BUILTIN: &[(&str, &str)] = &[
    ("incasso-csv", include_str!("../layouts/incasso-csv.toml")),
    ("govpay-csv", include_str!("../layouts/govpay-csv.toml")),
    (
        "govpay-csv-documenti",
        include_str!("../layouts/govpay-csv-documenti.toml"),
    ),
    ("govpay-json", include_str!("../layouts/govpay-json.toml")),
    ("mypay-1_4", include_str!("../layouts/mypay-1_4.toml")),
    ("gpd-json", include_str!("../layouts/gpd-json.toml")),
    ("legacy-fixed", include_str!("../layouts/legacy-fixed.toml")),
    (
        "regolarizzazioni-csv",
        include_str!("../layouts/regolarizzazioni-csv.toml"),
    ),
    (
        "tesoreria-csv",
        include_str!("../layouts/tesoreria-csv.toml"),
    ),
];

pub fn names() -> impl Iterator<Item = &'static str> {
    BUILTIN.iter().map(|(n, _)| *n)
}

/// A built-in layout's TOML text: a starting point for an Ente's own.
pub fn source(name: &str) -> Option<&'static str> {
    BUILTIN.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

pub fn get(name: &str) -> Option<Result<Layout, LayoutError>> {
    BUILTIN
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| Layout::from_toml(text))
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_builtin_layout_parses_and_names_itself() {
        for name in super::names() {
            let layout = super::get(name)
                .unwrap()
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(layout.name, name);
        }
    }
}
