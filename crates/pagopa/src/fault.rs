//! paForNode fault codes. pagoPA does not use SOAP faults: a KO answer is a
//! normal response with `outcome=KO` and a `fault` bean.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultCode {
    SyntaxExtraXsd,
    WrongDomain,
    WrongBroker,
    WrongStation,
    PaymentUnknown,
    PaymentDuplicate,
    PaymentInProgress,
    PaymentExpired,
    PaymentCancelled,
    Semantics,
    ReceiptDuplicate,
    SystemError,
}

impl FaultCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SyntaxExtraXsd => "PAA_SINTASSI_EXTRAXSD",
            Self::WrongDomain => "PAA_ID_DOMINIO_ERRATO",
            Self::WrongBroker => "PAA_ID_INTERMEDIARIO_ERRATO",
            Self::WrongStation => "PAA_STAZIONE_INT_ERRATA",
            Self::PaymentUnknown => "PAA_PAGAMENTO_SCONOSCIUTO",
            Self::PaymentDuplicate => "PAA_PAGAMENTO_DUPLICATO",
            Self::PaymentInProgress => "PAA_PAGAMENTO_IN_CORSO",
            Self::PaymentExpired => "PAA_PAGAMENTO_SCADUTO",
            Self::PaymentCancelled => "PAA_PAGAMENTO_ANNULLATO",
            Self::Semantics => "PAA_SEMANTICA",
            Self::ReceiptDuplicate => "PAA_RECEIPT_DUPLICATA",
            Self::SystemError => "PAA_SYSTEM_ERROR",
        }
    }

    /// The standard `faultString` of each code, as pagoPA's catalogue words it.
    pub fn fault_string(self) -> &'static str {
        match self {
            Self::SyntaxExtraXsd => "Errore di sintassi extra XSD.",
            Self::WrongDomain => {
                "Il codice identificativo dell'Ente Creditore non è gestito dalla stazione"
            }
            Self::WrongBroker => "Identificativo intermediario non corrispondente",
            Self::WrongStation => "Stazione intermediario non corrispondente",
            Self::PaymentUnknown => "Pagamento in attesa risulta sconosciuto all'Ente Creditore",
            Self::PaymentDuplicate => "Pagamento in attesa risulta concluso all'Ente Creditore",
            Self::PaymentInProgress => "Pagamento in attesa risulta in corso all'Ente Creditore",
            Self::PaymentExpired => "Pagamento in attesa risulta scaduto all'Ente Creditore",
            Self::PaymentCancelled => "Pagamento in attesa risulta annullato all'Ente Creditore",
            Self::Semantics => "Errore semantico",
            Self::ReceiptDuplicate => "La receipt è già stata ricevuta",
            Self::SystemError => "Errore generico",
        }
    }

    pub const ALL: [FaultCode; 12] = [
        Self::SyntaxExtraXsd,
        Self::WrongDomain,
        Self::WrongBroker,
        Self::WrongStation,
        Self::PaymentUnknown,
        Self::PaymentDuplicate,
        Self::PaymentInProgress,
        Self::PaymentExpired,
        Self::PaymentCancelled,
        Self::Semantics,
        Self::ReceiptDuplicate,
        Self::SystemError,
    ];

    pub fn parse(s: &str) -> Option<FaultCode> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for FaultCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A KO answer: the code, the Ente it concerns (`id`), and a description of
/// this occurrence for the person who reads the Node's logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub code: FaultCode,
    pub id: String,
    pub description: String,
}

impl Fault {
    pub fn new(code: FaultCode, id: impl Into<String>, description: impl Into<String>) -> Self {
        Fault {
            code,
            id: id.into(),
            description: description.into(),
        }
    }
}
