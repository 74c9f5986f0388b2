//! An Ente's own layout, as an operator uploads it in the back office
//! (TOML), and a file read with it. The input is split on the first NUL
//! byte: the layout's text, then the file.
#![no_main]

use incasso_bus::layout::LayoutKind;
use incasso_bus::{Layout, normalize, read, treasury};
use libfuzzer_sys::fuzz_target;
use std::io::Cursor;

fuzz_target!(|data: &[u8]| {
    let Some(at) = data.iter().position(|b| *b == 0) else {
        return;
    };
    let Ok(text) = std::str::from_utf8(&data[..at]) else {
        return;
    };
    let Ok(layout) = Layout::from_toml(text) else {
        return;
    };
    let file = Cursor::new(data[at + 1..].to_vec());
    if layout.kind == LayoutKind::Treasury {
        let _ = treasury::movements(&layout, "80000130585", file);
        return;
    }
    if !layout.loads() {
        return;
    }
    let Ok(records) = read::records(&layout, file) else {
        return;
    };
    for record in records.flatten() {
        let _ = normalize::row(&layout, &record);
    }
});
