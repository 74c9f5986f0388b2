//! Validation errors: which field, why (in Italian, for the clerk or citizen
//! who reads it) and a stable code (for the program that reacts to it).

use serde::Serialize;

/// One rejected field. `field` is a path in the caller's terms, for example
/// `paymentOption[0].transfer[1].iban`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub code: &'static str,
    pub message: String,
}

/// A rejected input: every field error found, not just the first, so that a
/// clerk can fix a record in one go.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", summary(.0))]
pub struct Invalid(pub Vec<FieldError>);

fn summary(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| format!("{}: {}", e.field, e.message))
        .collect::<Vec<_>>()
        .join("; ")
}

impl Invalid {
    pub fn one(field: impl Into<String>, code: &'static str, message: impl Into<String>) -> Self {
        Invalid(vec![FieldError {
            field: field.into(),
            code,
            message: message.into(),
        }])
    }

    /// The code of the first error, for callers that need a single one.
    pub fn first_code(&self) -> &'static str {
        self.0.first().map(|e| e.code).unwrap_or("INVALID")
    }
}

/// Stable error codes. They are part of the API: never rename one.
pub mod codes {
    pub const REQUIRED: &str = "REQUIRED";
    pub const TOO_LONG: &str = "TOO_LONG";
    pub const BAD_FORMAT: &str = "BAD_FORMAT";
    pub const BAD_FISCAL_CODE: &str = "BAD_FISCAL_CODE";
    pub const BAD_VAT_NUMBER: &str = "BAD_VAT_NUMBER";
    pub const BAD_IBAN: &str = "BAD_IBAN";
    pub const NOT_POSTAL_IBAN: &str = "NOT_POSTAL_IBAN";
    pub const BAD_IUV: &str = "BAD_IUV";
    pub const DUPLICATE_IUV: &str = "DUPLICATE_IUV";
    pub const AMOUNT_NOT_POSITIVE: &str = "AMOUNT_NOT_POSITIVE";
    pub const AMOUNT_OUT_OF_RANGE: &str = "AMOUNT_OUT_OF_RANGE";
    pub const AMOUNT_MISMATCH: &str = "AMOUNT_MISMATCH";
    pub const TOO_MANY_TRANSFERS: &str = "TOO_MANY_TRANSFERS";
    pub const NO_TRANSFERS: &str = "NO_TRANSFERS";
    pub const DUPLICATE_TRANSFER_ID: &str = "DUPLICATE_TRANSFER_ID";
    pub const FIRST_TRANSFER_NOT_OWN: &str = "FIRST_TRANSFER_NOT_OWN";
    pub const UNKNOWN_TAXONOMY: &str = "UNKNOWN_TAXONOMY";
    pub const QUOTAS_MISMATCH: &str = "QUOTAS_MISMATCH";
    pub const QUOTAS_NOT_OWN: &str = "QUOTAS_NOT_OWN";
    pub const UNKNOWN_ACCERTAMENTO: &str = "UNKNOWN_ACCERTAMENTO";
    pub const DATE_IN_PAST: &str = "DATE_IN_PAST";
    pub const DATE_ORDER: &str = "DATE_ORDER";
    pub const NO_PAYMENT_OPTIONS: &str = "NO_PAYMENT_OPTIONS";
    pub const MULTIPLE_SINGLE_SOLUTIONS: &str = "MULTIPLE_SINGLE_SOLUTIONS";
    pub const TOO_MANY_METADATA: &str = "TOO_MANY_METADATA";
    pub const DUPLICATE_METADATA_KEY: &str = "DUPLICATE_METADATA_KEY";
    pub const IBAN_AND_STAMP: &str = "IBAN_AND_STAMP";
    pub const NO_IBAN: &str = "NO_IBAN";
    pub const OUT_OF_RANGE: &str = "OUT_OF_RANGE";
}

/// Collects field errors under a path prefix, so nested validators can
/// report `paymentOption[2].amount` without knowing where they were called.
#[derive(Debug, Default)]
pub struct Checker {
    errors: Vec<FieldError>,
}

impl Checker {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn fail(
        &mut self,
        field: impl Into<String>,
        code: &'static str,
        message: impl Into<String>,
    ) {
        self.errors.push(FieldError {
            field: field.into(),
            code,
            message: message.into(),
        });
    }

    /// A required text of at most `max` characters (counted as characters,
    /// not bytes: Italian names carry accents).
    pub fn text(&mut self, field: &str, value: &str, max: usize) {
        if value.trim().is_empty() {
            self.fail(field, codes::REQUIRED, "campo obbligatorio");
        } else {
            self.max_len(field, value, max);
        }
    }

    pub fn max_len(&mut self, field: &str, value: &str, max: usize) {
        let n = value.chars().count();
        if n > max {
            self.fail(
                field,
                codes::TOO_LONG,
                format!("troppo lungo: massimo {max} caratteri, trovati {n}"),
            );
        }
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    pub fn finish(self) -> Result<(), Invalid> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(Invalid(self.errors))
        }
    }
}
