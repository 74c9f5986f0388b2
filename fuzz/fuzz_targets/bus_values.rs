//! The field parsers of supplies: amounts and dates in each layout form,
//! and MyPay's `bilancio` XML-in-a-column. What they accept must read back
//! the same from the form incasso writes.
#![no_main]

use chrono::Datelike;
use incasso_bus::layout::{AmountFormat, DateFormat};
use incasso_bus::normalize::{parse_amount, parse_bilancio, parse_date};
use incasso_core::Cents;
use libfuzzer_sys::fuzz_target;

fn plain_cents(c: Cents) -> String {
    c.0.to_string()
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for (format, write) in [
        (AmountFormat::Cents, plain_cents as fn(Cents) -> String),
        (AmountFormat::Dot, Cents::to_decimal),
        (AmountFormat::Italian, Cents::to_italian),
    ] {
        if let Some(cents) = parse_amount(text, format) {
            assert_eq!(parse_amount(&write(cents), format), Some(cents), "{text:?}");
        }
    }
    for (format, pattern) in [
        (DateFormat::DayMonthYear, "%d/%m/%Y"),
        (DateFormat::Compact, "%Y%m%d"),
        (DateFormat::Iso, "%Y-%m-%d"),
    ] {
        if let Some(date) = parse_date(text, format)
            // Files write four-digit years; chrono's own parsing takes more.
            && (1000..=9999).contains(&date.year())
        {
            let written = date.format(pattern).to_string();
            assert_eq!(parse_date(&written, format), Some(date), "{text:?}");
        }
    }
    let _ = parse_bilancio(text, 2026);
});
