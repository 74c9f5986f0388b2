//! The SOAP door: every paForNode request the Node (or anyone reaching the
//! station's endpoint) may send.
#![no_main]

use incasso_pagopa::wire::parse_request;
use incasso_pagopa::xml::Limits;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_request(data, Limits::default());
});
