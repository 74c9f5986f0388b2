//! A year's budget of accertamenti as a clerk uploads it in the back office
//! (`incasso_bus::accertamenti::parse_csv`, behind
//! `incasso_app::admin::parse_accertamenti_csv`): with a budget year given
//! for rows without an `anno` column, and without one.
#![no_main]

use incasso_bus::accertamenti::{MAX_ROWS, parse_csv};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for year in [None, Some(2026)] {
        match parse_csv(data, year) {
            Ok(list) => {
                // Taken whole: at least a row, at most the limit, each one
                // passing core's rules, no year and code twice.
                assert!(!list.is_empty() && list.len() <= MAX_ROWS);
                for (i, acc) in list.iter().enumerate() {
                    assert!(acc.validate().is_ok(), "{acc:?}");
                    assert!(
                        !list[..i]
                            .iter()
                            .any(|a| a.year == acc.year && a.code == acc.code),
                        "{acc:?} twice"
                    );
                }
            }
            // Refused: with at least the reason why.
            Err(refused) => assert!(!refused.0.is_empty()),
        }
    }
});
