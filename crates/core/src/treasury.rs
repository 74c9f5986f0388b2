//! What the treasury bank reports: the movements on the Ente's account.
//!
//! pagoPA money arrives as provisional receipts (*sospesi di entrata*):
//! money on the account that the Ente has not yet attributed. The Ente
//! regularizes each sospeso with a collection order (*reversale*). A
//! reversed movement (`STORNATO`) undoes the movement it names.

use crate::Cents;
use chrono::NaiveDate;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreasuryMovement {
    /// The bank's own id of the movement, unique for the Ente and stable
    /// across re-sent journals: the natural key of an import.
    pub movement_id: String,
    /// The Ente's fiscal code, as the journal states it.
    pub ente: String,
    /// The treasury account (`conto_evidenza`, or the IBAN in camt).
    pub account: String,
    /// The financial year (`esercizio`).
    pub year: i32,
    pub direction: Direction,
    pub document: DocumentKind,
    pub operation: Operation,
    /// The document's number: for a sospeso, the number a reversale must
    /// quote to regularize it.
    pub document_number: String,
    pub amount: Cents,
    pub booking_date: NaiveDate,
    pub value_date: Option<NaiveDate>,
    /// Who paid (the PSP, for pagoPA money).
    pub payer: Option<String>,
    pub causale: String,
    /// `codice_riferimento_operazione`: the transfer's TRN.
    pub trn: Option<String>,
    pub end_to_end_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Income,
    Outgoing,
}

/// `tipo_documento`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocumentKind {
    /// SOSPESO ENTRATA: where pagoPA money lands.
    ProvisionalIncome,
    /// REVERSALE: a collection order.
    CollectionOrder,
    /// Anything else the journal carries (payments, transfers, ...), kept
    /// by name and never matched.
    Other(String),
}

impl DocumentKind {
    pub fn from_opi(text: &str) -> DocumentKind {
        match text {
            "SOSPESO ENTRATA" => DocumentKind::ProvisionalIncome,
            "REVERSALE" => DocumentKind::CollectionOrder,
            other => DocumentKind::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            DocumentKind::ProvisionalIncome => "SOSPESO ENTRATA",
            DocumentKind::CollectionOrder => "REVERSALE",
            DocumentKind::Other(s) => s,
        }
    }
}

/// `tipo_operazione`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// ESEGUITO: the movement happened.
    Executed,
    /// STORNATO: it is undone.
    Reversed,
    /// REGOLARIZZATO: a sospeso was regularized.
    Regularized,
    /// RIPRISTINATO: a regularization was undone.
    Restored,
}

impl Operation {
    pub fn from_opi(text: &str) -> Option<Operation> {
        match text {
            "ESEGUITO" => Some(Operation::Executed),
            "STORNATO" => Some(Operation::Reversed),
            "REGOLARIZZATO" => Some(Operation::Regularized),
            "RIPRISTINATO" => Some(Operation::Restored),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Executed => "ESEGUITO",
            Operation::Reversed => "STORNATO",
            Operation::Regularized => "REGOLARIZZATO",
            Operation::Restored => "RIPRISTINATO",
        }
    }
}

impl TreasuryMovement {
    /// Whether this is pagoPA-style money to reconcile: an executed
    /// provisional receipt on the income side.
    pub fn is_open_sospeso(&self) -> bool {
        self.direction == Direction::Income
            && self.document == DocumentKind::ProvisionalIncome
            && self.operation == Operation::Executed
    }

    /// The key a reversal (`STORNATO`) and the movement it undoes share.
    pub fn document_key(&self) -> (i32, &str, &str, &str) {
        (
            self.year,
            self.account.as_str(),
            self.document.as_str(),
            self.document_number.as_str(),
        )
    }
}
