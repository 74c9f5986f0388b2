//! The identifier codes of the Italian public payment system, with their
//! check-digit algorithms. Each check returns a [`CodeError`] whose `code()`
//! is stable for programs and whose `Display` is Italian for people.

pub mod fiscal_code;
pub mod iban;
pub mod notice;
pub mod rf;

pub use fiscal_code::{check_fiscal_code, check_numeric_fiscal_code, check_personal_fiscal_code};
pub use iban::{check_iban, is_postal_iban};
pub use notice::{NoticeNumber, ParsedNotice};
pub use rf::{check_creditor_reference, make_creditor_reference};

/// Why a code was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error("lunghezza errata: attesi {expected} caratteri, trovati {found}")]
    Length {
        expected: &'static str,
        found: usize,
    },
    #[error("contiene caratteri non ammessi")]
    Charset,
    #[error("carattere di controllo errato")]
    CheckDigit,
    #[error("formato non valido: {0}")]
    Format(&'static str),
}

impl CodeError {
    /// A stable, language-independent code for programs.
    pub fn code(&self) -> &'static str {
        match self {
            CodeError::Length { .. } => "LENGTH",
            CodeError::Charset => "CHARSET",
            CodeError::CheckDigit => "CHECK_DIGIT",
            CodeError::Format(_) => "FORMAT",
        }
    }
}
