//! The service catalogue: what an Ente collects for, with its accounting
//! classification. Positions, spontaneous payments and file supplies refer
//! to a service by code.

use crate::accertamento::{AccertamentoRef, check_year};
use crate::ente::check_iban_field;
use crate::error::{Checker, Invalid, codes};
use crate::money::Cents;
use crate::taxonomy;
use crate::text::is_safe_identifier;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    pub code: String,
    pub name: String,
    pub office_code: Option<String>,
    /// pagoPA taxonomy code ("dati specifici di riscossione"), e.g.
    /// `9/0101100IM/`.
    pub taxonomy_code: String,
    pub default_accertamento: Option<AccertamentoRef>,
    /// Where the money goes when a position does not say; else the Ente's.
    pub iban: Option<String>,
    /// A fixed amount (a certificate fee) or `None` for a free amount.
    pub fixed_amount: Option<Cents>,
    /// Whether a citizen may start a payment without a notice
    /// (portal, or `paDemandPaymentNotice` at a PSP).
    pub spontaneous: bool,
    /// The 5-character service id pagoPA's catalogue gives this service,
    /// which a PSP sends in `paDemandPaymentNotice` (`idServizio`).
    pub pagopa_service_id: Option<String>,
    pub active: bool,
}

impl Service {
    pub fn validate(&self) -> Result<(), Invalid> {
        let mut c = Checker::new();
        if !is_safe_identifier(&self.code, 35) {
            c.fail(
                "code",
                codes::BAD_FORMAT,
                "codice servizio: da 1 a 35 caratteri tra lettere, cifre, '-', '_' e '.'",
            );
        }
        c.text("name", &self.name, 140);
        if taxonomy::lookup(&self.taxonomy_code).is_none() {
            c.fail(
                "taxonomyCode",
                codes::UNKNOWN_TAXONOMY,
                format!(
                    "codice tassonomia '{}' assente dalla tassonomia pagoPA",
                    self.taxonomy_code
                ),
            );
        }
        if let Some(acc) = &self.default_accertamento {
            check_year(&mut c, "defaultAccertamento.year", acc.year);
        }
        if let Some(iban) = &self.iban {
            check_iban_field(&mut c, "iban", iban);
        }
        if let Some(id) = &self.pagopa_service_id
            && id.chars().count() != 5
        {
            c.fail(
                "pagopaServiceId",
                codes::BAD_FORMAT,
                "l'identificativo di servizio pagoPA è di 5 caratteri",
            );
        }
        if let Some(amount) = self.fixed_amount
            && amount.0 <= 0
        {
            c.fail(
                "fixedAmount",
                codes::AMOUNT_NOT_POSITIVE,
                "l'importo deve essere maggiore di zero",
            );
        }
        c.finish()
    }
}
