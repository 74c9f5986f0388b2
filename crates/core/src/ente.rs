//! The Ente Creditore, its offices and the stations that connect it to the
//! pagoPA Node.

use crate::codes::{check_iban, check_numeric_fiscal_code, is_postal_iban};
use crate::error::{Checker, Invalid, codes};
use crate::text::{is_plausible_email, is_safe_identifier};
use serde::{Deserialize, Serialize};

/// An Ente Creditore. Its 11-digit fiscal code is its identity everywhere:
/// in URLs, in the Node's `idPA`, in notice QR codes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ente {
    pub fiscal_code: String,
    pub name: String,
    /// The code in the IPA index of public administrations (`c_h501` style).
    pub ipa_code: Option<String>,
    /// The bank account pagoPA money is credited to.
    pub iban: Option<String>,
    /// A Poste Italiane account: when present, notices get the Poste section.
    pub postal_iban: Option<String>,
    /// The 5-character CBILL code printed on notices for home banking.
    pub cbill_code: Option<String>,
    pub email: Option<String>,
}

impl Ente {
    pub fn validate(&self) -> Result<(), Invalid> {
        let mut c = Checker::new();
        check_ente_fiscal_code(&mut c, "fiscalCode", &self.fiscal_code);
        c.text("name", &self.name, 140);
        if let Some(ipa) = &self.ipa_code
            && !is_safe_identifier(ipa, 16)
        {
            c.fail("ipaCode", codes::BAD_FORMAT, "codice IPA non valido");
        }
        if let Some(iban) = &self.iban {
            check_iban_field(&mut c, "iban", iban);
        }
        if let Some(iban) = &self.postal_iban {
            check_postal_iban_field(&mut c, "postalIban", iban);
        }
        if let Some(cbill) = &self.cbill_code
            && !(cbill.len() == 5 && cbill.bytes().all(|b| b.is_ascii_alphanumeric()))
        {
            c.fail(
                "cbillCode",
                codes::BAD_FORMAT,
                "il codice CBILL è di 5 caratteri alfanumerici",
            );
        }
        if let Some(email) = &self.email
            && !is_plausible_email(email)
        {
            c.fail("email", codes::BAD_FORMAT, "indirizzo e-mail non valido");
        }
        c.finish()
    }
}

pub(crate) fn check_ente_fiscal_code(c: &mut Checker, field: &str, value: &str) {
    if let Err(e) = check_numeric_fiscal_code(value) {
        c.fail(
            field,
            codes::BAD_FISCAL_CODE,
            format!("codice fiscale dell'ente non valido ({e})"),
        );
    }
}

pub(crate) fn check_iban_field(c: &mut Checker, field: &str, value: &str) {
    if let Err(e) = check_iban(value) {
        c.fail(field, codes::BAD_IBAN, format!("IBAN non valido ({e})"));
    }
}

pub(crate) fn check_postal_iban_field(c: &mut Checker, field: &str, value: &str) {
    match check_iban(value) {
        Err(e) => c.fail(field, codes::BAD_IBAN, format!("IBAN non valido ({e})")),
        Ok(()) if !is_postal_iban(value) => c.fail(
            field,
            codes::NOT_POSTAL_IBAN,
            "non è un IBAN di conto corrente postale (ABI 07601)",
        ),
        Ok(()) => {}
    }
}

/// An office (ufficio) of an Ente: the unit that owns services and positions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Office {
    pub code: String,
    pub name: String,
    pub email: Option<String>,
}

impl Office {
    pub fn validate(&self) -> Result<(), Invalid> {
        let mut c = Checker::new();
        if !is_safe_identifier(&self.code, 35) {
            c.fail(
                "code",
                codes::BAD_FORMAT,
                "codice ufficio: da 1 a 35 caratteri tra lettere, cifre, '-', '_' e '.'",
            );
        }
        c.text("name", &self.name, 140);
        if let Some(email) = &self.email
            && !is_plausible_email(email)
        {
            c.fail("email", codes::BAD_FORMAT, "indirizzo e-mail non valido");
        }
        c.finish()
    }
}

/// A station (stazione) of an intermediary (broker) through which an Ente
/// reaches the Node. The segregation code is the Ente's, per station: it is
/// the first two digits of every IUV that station owns, which is how the
/// Node and incasso know which station a notice belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StationLink {
    pub broker_id: String,
    pub station_id: String,
    pub segregation_code: u8,
}

impl StationLink {
    pub fn validate(&self) -> Result<(), Invalid> {
        let mut c = Checker::new();
        if check_numeric_fiscal_code(&self.broker_id).is_err() {
            c.fail(
                "brokerId",
                codes::BAD_FISCAL_CODE,
                "l'identificativo dell'intermediario è il suo codice fiscale di 11 cifre",
            );
        }
        if !is_safe_identifier(&self.station_id, 35) {
            c.fail(
                "stationId",
                codes::BAD_FORMAT,
                "identificativo stazione: da 1 a 35 caratteri tra lettere, cifre, '-', '_' e '.'",
            );
        }
        if self.segregation_code > 99 {
            c.fail(
                "segregationCode",
                codes::OUT_OF_RANGE,
                "il codice di segregazione è di due cifre (00-99)",
            );
        }
        c.finish()
    }

    /// The two-digit form used in IUVs and in `demo.json`.
    pub fn segregation_code_str(&self) -> String {
        format!("{:02}", self.segregation_code)
    }
}
