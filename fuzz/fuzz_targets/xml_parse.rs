//! The hardened XML reader under every XML incasso accepts (SOAP, FdR,
//! OPI, camt). A document it accepts must also survive being written back
//! out, which pagoPA receipts are (payloads are stored as documents).
#![no_main]

use incasso_xml::{Limits, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(root) = parse(data, Limits::default()) {
        let _ = root.to_document();
    }
});
