//! pagoPA GPD's JSON wire models and their mapping onto incasso's debt
//! positions, both ways:
//!
//! - [`v1`]: `gpd.json`'s `PaymentPositionModel` and its answers
//! - [`v2`]: many v1 positions in one body
//! - [`v3`]: `gpd_v3.json`'s options and installments
//!
//! The HTTP side (routes, extractors, error mapping) is `incasso-server`'s
//! `gpd` module. These models are a crate of their own, with no I/O, so that
//! what GPD clients send can be fuzzed (`fuzz/fuzz_targets/gpd_json.rs`)
//! without building sqlx, axum and the rest of the server into every fuzz
//! build.

mod dates;
pub mod v1;
pub mod v2;
pub mod v3;

pub use dates::{Instant, parse_instant};

/// Why a GPD body does not map onto a position: its shape (an `idTransfer`
/// that is not a number, a malformed notice number or quota reference) or,
/// in v3, what a position cannot keep. Always the caller's to fix: the
/// server answers 400 with [`code`](Self::code) and
/// [`detail`](Self::detail) as they are.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct WireError {
    /// Stable, language-independent code (`BAD_FORMAT`, `BAD_IUV`,
    /// `V3_OPTIONS_DIFFER`, ...).
    pub code: &'static str,
    /// Italian, naming the field by its path in the request.
    pub detail: String,
}

impl WireError {
    pub(crate) fn new(code: &'static str, detail: impl Into<String>) -> Self {
        WireError {
            code,
            detail: detail.into(),
        }
    }
}
