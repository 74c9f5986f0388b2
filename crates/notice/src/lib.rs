//! The official pagoPA payment notice (*avviso di pagamento*) as PDF.
//!
//! Pure: a [`Notice`] in, PDF bytes out, no I/O. The layout follows
//! pagoPA's notice (`spec/pagopa/docs/sanp-3.0-archive/3_02_00_avviso_di_pagamento.rst`
//! and the print service's templates): the Ente and the debtor, how much
//! and by when, where to pay, then one payment form per channel: banks and
//! other channels (QR code, CBILL) and, when the Ente has a postal account,
//! Poste's (GS1 DataMatrix). Installments follow on their own pages, three
//! to a page, or two when each carries a Poste form too.
//!
//! Codes are drawn as vector squares, so they scan at any print resolution;
//! text is Titillium Web (OFL, `fonts/`), embedded and subset by krilla.

mod codes;
pub mod issued;
pub mod position;
pub mod receipt;
mod render;
pub mod sample;
pub mod text;

pub use codes::{datamatrix_payload, in_groups_of_four, postal_account, qr_payload};
pub use render::{Packing, render, render_packed};

use chrono::NaiveDate;
use incasso_core::Cents;

/// The fonts, in the binary.
pub mod fonts {
    pub const REGULAR: &[u8] = include_bytes!("../fonts/TitilliumWeb-Regular.ttf");
    pub const BOLD: &[u8] = include_bytes!("../fonts/TitilliumWeb-Bold.ttf");
}

/// Languages a notice is printed in: Italian, or Italian and German side by
/// side (Enti of South Tyrol).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Language {
    #[default]
    Italian,
    ItalianGerman,
}

impl std::str::FromStr for Language {
    type Err = String;

    /// `it`, or `it-de` (also `de`) for Italian and German.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "it" => Ok(Language::Italian),
            "it-de" | "de" => Ok(Language::ItalianGerman),
            other => Err(format!("lingua '{other}' non prevista: it oppure it-de")),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Creditor {
    pub name: String,
    pub fiscal_code: String,
    /// Printed for home banking; the notice says so when there is none.
    pub cbill_code: Option<String>,
    /// The 12-digit Poste account: when present, the Poste form is printed.
    pub postal_account: Option<String>,
    /// The Ente's logo (PNG or JPEG); a notice without one (or with one that
    /// cannot be read) is laid out without it.
    pub logo: Option<Vec<u8>>,
}

#[derive(Debug, Clone, Default)]
pub struct Recipient {
    pub name: String,
    pub fiscal_code: String,
    /// One line: street, number, postal code, town.
    pub address: Option<String>,
}

/// One payable notice number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slip {
    pub notice_number: String,
    pub amount: Cents,
    pub due_date: NaiveDate,
}

#[derive(Debug, Clone)]
pub enum Payments {
    /// One notice number.
    Single(Slip),
    /// Alternatives, one of which is paid: the reduced and ordinary amounts
    /// of a traffic fine, each with its deadline (earliest first).
    Alternatives(Vec<Slip>),
    /// A single solution (if offered) and installments.
    Installments {
        single: Option<Slip>,
        installments: Vec<Slip>,
    },
}

impl Payments {
    /// Every slip on the notice, in print order.
    pub fn slips(&self) -> Vec<&Slip> {
        match self {
            Payments::Single(s) => vec![s],
            Payments::Alternatives(v) => v.iter().collect(),
            Payments::Installments {
                single,
                installments,
            } => single.iter().chain(installments).collect(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Notice {
    pub language: Language,
    pub creditor: Creditor,
    pub recipient: Recipient,
    /// What is paid (*oggetto del pagamento*).
    pub subject: String,
    pub payments: Payments,
}

#[derive(Debug, thiserror::Error)]
pub enum NoticeError {
    #[error("avviso senza importi da pagare")]
    Empty,
    #[error("codice non generabile: {0}")]
    Code(String),
    #[error("generazione del PDF non riuscita: {0}")]
    Pdf(String),
}

/// `1.234,56` (the Italian way; the currency is printed beside it).
pub fn italian_amount(amount: Cents) -> String {
    amount.to_italian()
}

/// `dd/mm/yyyy`.
pub fn italian_date(d: NaiveDate) -> String {
    d.format("%d/%m/%Y").to_string()
}
