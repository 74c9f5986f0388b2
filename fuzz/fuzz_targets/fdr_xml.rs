//! Reporting flows (FlussoRiversamento) as the Node's SOAP interface gives
//! them.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = incasso_recon::fdr::parse(data);
});
