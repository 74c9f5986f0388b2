//! The treasurer's OPI "giornale di cassa".
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = incasso_recon::opi::parse(data);
});
