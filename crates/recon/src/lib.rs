//! Reconciliation, the pure part: what a PSP reported and what the treasury
//! received, read and checked, and matched to each other.
//!
//! - [`causale`]: the bank transfer's causale, read the way banks write it
//!   (spaces inside markers, text around them), into the flow it pays or
//!   the single payment of the old forms.
//! - [`fdr`]: reporting flows (`FlussoRiversamento` 1.0.4 and 1.0.5),
//!   read with the schema's rules, and written for the simulator.
//! - [`opi`] and [`camt`]: the treasury's movements, from the OPI journal
//!   (*giornale di cassa* 1.7.1 and 1.8) or ISO 20022 camt.053/054.
//! - [`breakdown`]: money split over accertamenti, to the cent.
//! - [`reversale`]: regularization proposals as OPI reversali.
//! - [`regularization`]: the rules of a sospeso tied to its flows by hand.
//! - [`matching`]: sospesi matched to flows, anomalies, and each transfer
//!   classified by which of its four sources agree.
//!
//! Nothing here touches the database or the network.

pub mod breakdown;
pub mod camt;
pub mod causale;
pub mod fdr;
pub mod fdr3;
pub mod matching;
pub mod opi;
pub mod regularization;
pub mod reversale;

/// A treasury file refused, with where and why (in Italian, for the clerk).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("file della tesoreria non valido: {location}: {message}")]
pub struct TreasuryError {
    pub location: String,
    pub message: String,
}

impl TreasuryError {
    /// The stable code programs read.
    pub const CODE: &'static str = "TREASURY_INVALID";

    pub fn at(location: impl Into<String>, message: impl Into<String>) -> TreasuryError {
        TreasuryError {
            location: location.into(),
            message: message.into(),
        }
    }
}

/// An amount as XML schemas write it: digits, a dot and exactly two
/// decimals (`\d+\.\d{2}`), no sign.
pub(crate) fn two_decimals(t: &str) -> Option<incasso_core::Cents> {
    let (units, decimals) = t.split_once('.')?;
    (!units.is_empty()
        && decimals.len() == 2
        && units.bytes().all(|b| b.is_ascii_digit())
        && decimals.bytes().all(|b| b.is_ascii_digit()))
    .then(|| incasso_core::Cents::parse_decimal(t))
    .flatten()
}
