//! Reporting flows from FdR 3's REST interface: a header and pages of
//! payments. The input is split on NUL bytes (never valid in JSON text):
//! the first part is the header, each further part a page.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|b| *b == 0);
    let header = parts.next().unwrap_or_default();
    let pages: Vec<Vec<u8>> = parts.map(<[u8]>::to_vec).collect();
    let _ = incasso_recon::fdr3::parse(header, &pages);
});
