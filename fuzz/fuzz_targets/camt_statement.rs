//! A bank's camt.053 / camt.054 statement of the treasury account.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = incasso_recon::camt::parse(data, "80000130585");
});
