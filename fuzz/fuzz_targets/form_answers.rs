//! A spontaneous service's form (as the back office saves it) and a
//! citizen's answers to it (as the portal posts them), split on the first
//! NUL byte: the form's JSON, then the answers' JSON object. Each answer is
//! also read by the code parsers the portal and the pay page apply to what
//! people type (notice numbers, fiscal codes, IBANs, RF references).
#![no_main]

use incasso_core::codes::{fiscal_code, iban, notice, rf};
use incasso_core::form::{self, Answers, FormDef};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (definition, answers) = match data.iter().position(|b| *b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &b"{}"[..]),
    };
    let answers: Answers = serde_json::from_slice(answers).unwrap_or_default();
    for value in answers.values() {
        let _ = form::parse_amount(value);
        let _ = form::parse_date(value);
        let _ = notice::NoticeNumber::parse(value);
        let _ = fiscal_code::check_fiscal_code(value);
        let _ = iban::check_iban(value);
        let _ = rf::check_creditor_reference(value);
    }
    let Ok(definition) = serde_json::from_slice::<FormDef>(definition) else {
        return;
    };
    // Only a form that passes validation is ever saved, so only such a
    // form meets answers.
    if definition.validate().is_ok() {
        let _ = definition.check(&answers);
    }
});
