//! A bank transfer's causale, as banks and treasurers mangle it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Causali reach the parser as text decoded from XML or CSV: any
    // string, never bytes.
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = incasso_recon::causale::parse(text);
    }
});
