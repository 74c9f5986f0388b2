//! Debt positions on pagoPA GPD's model, their validation and their life
//! cycle.
//!
//! A position belongs to one Ente and one debtor. It has payment options:
//! single solutions (`is_partial_payment == false`) and installments. With
//! installments there is at most one single solution; without, there may be
//! several, each its own notice number, as a traffic fine's reduced amount
//! within five days and full amount after: paying any one settles the
//! position, and the others can no longer be paid. Each option has 1 to 5 transfers (the beneficiaries), and each
//! transfer of the Ente's own can be split into accertamenti quotas.
//!
//! The states and transitions are GPD's, so that a GPD client sees the same
//! behaviour here:
//!
//! ```text
//! DRAFT --publish--> PUBLISHED --validity date reached--> VALID
//!   ^                    |                                  |  \--due date passed, switchToExpired--> EXPIRED
//!   +------update--------+----------------------------------+
//! PUBLISHED | VALID --invalidate--> INVALID
//! VALID --installment paid--> PARTIALLY_PAID --last installment paid--> PAID
//! VALID --single solution paid--> PAID --all transfers reported--> REPORTED
//! ```

use crate::accertamento::AccertamentoRef;
use crate::codes::notice::{NoticeNumber, check_iuv_for_segregation, notice_number_from_iuv};
use crate::codes::{check_fiscal_code, check_numeric_fiscal_code, check_personal_fiscal_code};
use crate::ente::{check_ente_fiscal_code, check_iban_field, check_postal_iban_field};
use crate::error::{Checker, Invalid, codes};
use crate::money::Cents;
use crate::taxonomy;
use crate::text::is_plausible_email;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

pub const MAX_TRANSFERS: usize = 5;
pub const MAX_METADATA: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PositionStatus {
    Draft,
    Published,
    Valid,
    Invalid,
    Expired,
    PartiallyPaid,
    Paid,
    Reported,
}

impl PositionStatus {
    pub const ALL: [PositionStatus; 8] = [
        Self::Draft,
        Self::Published,
        Self::Valid,
        Self::Invalid,
        Self::Expired,
        Self::PartiallyPaid,
        Self::Paid,
        Self::Reported,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "DRAFT",
            Self::Published => "PUBLISHED",
            Self::Valid => "VALID",
            Self::Invalid => "INVALID",
            Self::Expired => "EXPIRED",
            Self::PartiallyPaid => "PARTIALLY_PAID",
            Self::Paid => "PAID",
            Self::Reported => "REPORTED",
        }
    }

    /// Some money has been collected: the position is frozen for good.
    pub fn has_payments(self) -> bool {
        matches!(self, Self::PartiallyPaid | Self::Paid | Self::Reported)
    }
}

impl fmt::Display for PositionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PositionStatus {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Self::ALL.into_iter().find(|v| v.as_str() == s).ok_or(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OptionStatus {
    #[serde(rename = "PO_UNPAID")]
    Unpaid,
    #[serde(rename = "PO_PAID")]
    Paid,
    #[serde(rename = "PO_PARTIALLY_REPORTED")]
    PartiallyReported,
    #[serde(rename = "PO_REPORTED")]
    Reported,
}

impl OptionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unpaid => "PO_UNPAID",
            Self::Paid => "PO_PAID",
            Self::PartiallyReported => "PO_PARTIALLY_REPORTED",
            Self::Reported => "PO_REPORTED",
        }
    }

    pub fn is_paid(self) -> bool {
        self != Self::Unpaid
    }
}

impl FromStr for OptionStatus {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        [
            Self::Unpaid,
            Self::Paid,
            Self::PartiallyReported,
            Self::Reported,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
        .ok_or(())
    }
}

/// F: a natural person (persona fisica); G: a legal person (persona giuridica).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DebtorType {
    F,
    G,
}

impl DebtorType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::F => "F",
            Self::G => "G",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Debtor {
    pub kind: DebtorType,
    pub fiscal_code: String,
    pub full_name: String,
    pub street_name: Option<String>,
    pub civic_number: Option<String>,
    pub postal_code: Option<String>,
    pub city: Option<String>,
    pub province: Option<String>,
    pub region: Option<String>,
    pub country: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
}

/// pagoPA's placeholder for a debtor whose fiscal code is unknown.
pub const ANONYMOUS_DEBTOR: &str = "ANONIMO";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    pub hash_document: String,
    pub stamp_type: String,
    pub provincial_residence: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountingQuota {
    pub accertamento: AccertamentoRef,
    pub amount: Cents,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    /// 1 to 5; pagoPA's `idTransfer`, and the FdR's `indiceDatiSingoloPagamento`.
    pub id_transfer: u8,
    pub amount: Cents,
    pub organization_fiscal_code: String,
    pub company_name: Option<String>,
    pub remittance_information: String,
    /// Taxonomy code ("dati specifici di riscossione").
    pub category: String,
    pub iban: Option<String>,
    pub postal_iban: Option<String>,
    pub stamp: Option<Stamp>,
    pub metadata: Vec<(String, String)>,
    /// How this transfer is booked over accertamenti. Empty: the service's
    /// default accertamento takes it all.
    pub quotas: Vec<AccountingQuota>,
    pub reported: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentOption {
    /// `None` on input asks incasso's IUV coordinator for one.
    pub iuv: Option<String>,
    pub notice_number: Option<NoticeNumber>,
    pub amount: Cents,
    pub description: String,
    /// `true` for an installment, `false` for the single solution.
    pub is_partial_payment: bool,
    pub due_date: DateTime<Utc>,
    pub retention_date: Option<DateTime<Utc>>,
    pub fee: Cents,
    pub notification_fee: Cents,
    pub status: OptionStatus,
    pub payment_date: Option<DateTime<Utc>>,
    pub reporting_date: Option<DateTime<Utc>>,
    pub metadata: Vec<(String, String)>,
    pub transfers: Vec<Transfer>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DebtPosition {
    /// The management application's own key (GPD's "identificativo univoco
    /// posizione debitoria"), unique within the Ente.
    pub iupd: String,
    pub debtor: Debtor,
    pub company_name: String,
    pub office_name: Option<String>,
    pub validity_date: Option<DateTime<Utc>>,
    pub switch_to_expired: bool,
    pub pay_stand_in: bool,
    pub status: PositionStatus,
    pub inserted_date: Option<DateTime<Utc>>,
    pub publish_date: Option<DateTime<Utc>>,
    pub payment_date: Option<DateTime<Utc>>,
    pub last_updated_date: Option<DateTime<Utc>>,
    pub options: Vec<PaymentOption>,
}

/// What validation needs to know beyond the position itself.
pub struct PositionRules<'a> {
    pub ente_fiscal_code: &'a str,
    pub now: DateTime<Utc>,
    /// The segregation codes of the Ente's stations: an IUV that a management
    /// application brings must carry one of them.
    pub segregation_codes: &'a [u8],
}

impl DebtPosition {
    /// GPD's reported states, from what the current reporting flows list
    /// as paid: `listed` has each listed transfer (IUV, `idTransfer`) and
    /// when its first flow came. A listed transfer of a paid option is
    /// reported; an option is PO_REPORTED when all its transfers are,
    /// PO_PARTIALLY_REPORTED when some are; a PAID position whose paid
    /// options are all reported is REPORTED. Derived, never stored: the
    /// flows are the fact, and deriving costs nothing where flows arrive.
    pub fn show_reporting(&mut self, listed: &HashMap<(String, u8), DateTime<Utc>>) {
        let mut any_paid = false;
        let mut all_reported = true;
        for option in &mut self.options {
            if !matches!(
                option.status,
                OptionStatus::Paid | OptionStatus::PartiallyReported | OptionStatus::Reported
            ) {
                continue;
            }
            any_paid = true;
            let iuv = option.iuv.clone().unwrap_or_default();
            let mut first: Option<DateTime<Utc>> = None;
            for t in &mut option.transfers {
                if let Some(at) = listed.get(&(iuv.clone(), t.id_transfer)) {
                    t.reported = true;
                    first = Some(first.map_or(*at, |f| f.min(*at)));
                }
            }
            let reported = option.transfers.iter().filter(|t| t.reported).count();
            if reported == 0 {
                all_reported = false;
                continue;
            }
            option.status = if reported == option.transfers.len() {
                OptionStatus::Reported
            } else {
                all_reported = false;
                OptionStatus::PartiallyReported
            };
            option.reporting_date = option.reporting_date.or(first);
        }
        if self.status == PositionStatus::Paid && any_paid && all_reported {
            self.status = PositionStatus::Reported;
        }
    }

    /// A new draft with GPD's defaults for everything its maker did not say
    /// (not yet stored, published or paid; payable in stand-in).
    pub fn draft(
        iupd: String,
        debtor: Debtor,
        company_name: String,
        options: Vec<PaymentOption>,
    ) -> Self {
        DebtPosition {
            iupd,
            debtor,
            company_name,
            office_name: None,
            validity_date: None,
            switch_to_expired: false,
            pay_stand_in: true,
            status: PositionStatus::Draft,
            inserted_date: None,
            publish_date: None,
            payment_date: None,
            last_updated_date: None,
            options,
        }
    }

    /// Checks every rule that needs no database. Reports all the errors.
    pub fn validate(&self, rules: &PositionRules<'_>) -> Result<(), Invalid> {
        let mut c = Checker::new();
        if !is_valid_iupd(&self.iupd) {
            c.fail(
                "iupd",
                codes::BAD_FORMAT,
                "iupd: da 1 a 100 caratteri tra lettere, cifre, spazi, '-', '_' e '*'",
            );
        }
        self.debtor.check(&mut c);
        c.text("companyName", &self.company_name, 140);
        if let Some(office) = &self.office_name {
            c.max_len("officeName", office, 140);
        }
        if let Some(validity) = self.validity_date
            && validity <= rules.now
        {
            c.fail(
                "validityDate",
                codes::DATE_IN_PAST,
                "la data di validità deve essere futura",
            );
        }
        if self.options.is_empty() {
            c.fail(
                "paymentOption",
                codes::NO_PAYMENT_OPTIONS,
                "serve almeno un'opzione di pagamento",
            );
        }
        let singles = self
            .options
            .iter()
            .filter(|o| !o.is_partial_payment)
            .count();
        let installments = self.options.len() - singles;
        if singles > 1 && installments > 0 {
            c.fail(
                "paymentOption",
                codes::MULTIPLE_SINGLE_SOLUTIONS,
                "con le rate è ammessa una sola soluzione in unica rata",
            );
        }
        let mut seen_iuvs = HashSet::new();
        for (i, option) in self.options.iter().enumerate() {
            let path = format!("paymentOption[{i}]");
            option.check(&mut c, &path, rules, self.validity_date);
            if let Some(iuv) = &option.iuv
                && !seen_iuvs.insert(iuv.as_str())
            {
                c.fail(
                    format!("{path}.iuv"),
                    codes::DUPLICATE_IUV,
                    "IUV ripetuto nella stessa posizione",
                );
            }
        }
        c.finish()
    }

    /// The status as it is at `now`: a published position becomes valid on
    /// its validity date, and one with `switch_to_expired` expires after its
    /// last due date. Stored states catch up with this in the background; the
    /// Node and the APIs always answer with this one.
    pub fn effective_status(&self, now: DateTime<Utc>) -> PositionStatus {
        match self.status {
            PositionStatus::Published if self.validity_date.is_none_or(|v| v <= now) => {
                self.expire_if_due(now)
            }
            PositionStatus::Valid => self.expire_if_due(now),
            other => other,
        }
    }

    fn expire_if_due(&self, now: DateTime<Utc>) -> PositionStatus {
        let last_due = self.options.iter().map(|o| o.due_date).max();
        if self.switch_to_expired && last_due.is_some_and(|d| d < now) {
            PositionStatus::Expired
        } else {
            PositionStatus::Valid
        }
    }

    pub fn has_paid_option(&self) -> bool {
        self.options.iter().any(|o| o.status.is_paid())
    }

    /// Whether the content may still be replaced by an update. A position
    /// with any money collected never changes again, nor does one that has
    /// expired or been cancelled.
    pub fn check_updatable(&self, now: DateTime<Utc>) -> Result<(), TransitionError> {
        if self.status.has_payments() || self.has_paid_option() {
            return Err(TransitionError::AlreadyPaid);
        }
        match self.effective_status(now) {
            PositionStatus::Draft | PositionStatus::Published | PositionStatus::Valid => Ok(()),
            other => Err(TransitionError::NotAllowed {
                action: "modificare",
                status: other,
            }),
        }
    }

    pub fn check_deletable(&self) -> Result<(), TransitionError> {
        if self.status.has_payments() || self.has_paid_option() {
            return Err(TransitionError::AlreadyPaid);
        }
        Ok(())
    }

    /// DRAFT -> PUBLISHED, or straight to VALID when there is no validity
    /// date (GPD sets it to the publication instant).
    pub fn publish(&mut self, now: DateTime<Utc>) -> Result<(), TransitionError> {
        if self.status != PositionStatus::Draft {
            return Err(TransitionError::NotAllowed {
                action: "pubblicare",
                status: self.status,
            });
        }
        // GPD refuses, rather than silently moves, a validity date that has
        // passed while the position was a draft.
        if self.validity_date.is_some_and(|v| v <= now) {
            return Err(TransitionError::ValidityDatePassed);
        }
        if let Some(option) = self.options.iter().find(|o| o.due_date < now) {
            return Err(TransitionError::DueDatePassed {
                iuv: option.iuv.clone().unwrap_or_default(),
            });
        }
        self.publish_date = Some(now);
        if self.validity_date.is_some() {
            self.status = PositionStatus::Published;
        } else {
            self.validity_date = Some(now);
            self.status = PositionStatus::Valid;
        }
        self.last_updated_date = Some(now);
        Ok(())
    }

    pub fn invalidate(&mut self, now: DateTime<Utc>) -> Result<(), TransitionError> {
        if self.status.has_payments() || self.has_paid_option() {
            return Err(TransitionError::AlreadyPaid);
        }
        match self.effective_status(now) {
            PositionStatus::Published | PositionStatus::Valid => {
                self.status = PositionStatus::Invalid;
                self.last_updated_date = Some(now);
                Ok(())
            }
            other => Err(TransitionError::NotAllowed {
                action: "annullare",
                status: other,
            }),
        }
    }

    /// Records the payment of one option (by index) and moves the position:
    /// the single solution settles the whole position; installments settle it
    /// when the last one is paid. A paid option is never paid again.
    pub fn pay_option(
        &mut self,
        index: usize,
        paid_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), TransitionError> {
        let status = self.effective_status(now);
        let option = self
            .options
            .get(index)
            .ok_or(TransitionError::UnknownOption)?;
        if option.status.is_paid()
            || matches!(status, PositionStatus::Paid | PositionStatus::Reported)
        {
            return Err(TransitionError::AlreadyPaid);
        }
        match status {
            PositionStatus::Valid | PositionStatus::PartiallyPaid => {}
            PositionStatus::Expired => return Err(TransitionError::Expired),
            PositionStatus::Invalid => return Err(TransitionError::Cancelled),
            other => {
                return Err(TransitionError::NotAllowed {
                    action: "pagare",
                    status: other,
                });
            }
        }
        if !option.is_partial_payment && status == PositionStatus::PartiallyPaid {
            return Err(TransitionError::InstallmentsStarted);
        }
        let option = &mut self.options[index];
        option.status = OptionStatus::Paid;
        option.payment_date = Some(paid_at);
        let settled = !self.options[index].is_partial_payment
            || self
                .options
                .iter()
                .filter(|o| o.is_partial_payment)
                .all(|o| o.status.is_paid());
        self.status = if settled {
            self.payment_date = Some(paid_at);
            PositionStatus::Paid
        } else {
            PositionStatus::PartiallyPaid
        };
        self.last_updated_date = Some(now);
        Ok(())
    }

    /// Sets the notification fee of one option (by index), as SEND asks
    /// GPD to: the option's amount, and that of the Ente's own transfer
    /// (the first, by id, paid to `ente`), lose the fee set before and gain
    /// the new one, so that the Node is asked for, and the notice shows,
    /// what the debtor now owes. Only an unpaid option takes a fee.
    /// The transfer's accertamento quotas stay as loaded: the fee is spread
    /// over them by the breakdown, as any difference is.
    pub fn set_notification_fee(
        &mut self,
        index: usize,
        fee: Cents,
        ente: &str,
        now: DateTime<Utc>,
    ) -> Result<(), NotificationFeeError> {
        if fee.0 < 0 {
            return Err(NotificationFeeError::Negative);
        }
        let option = self
            .options
            .get_mut(index)
            .ok_or(NotificationFeeError::NotUnpaid)?;
        if option.status != OptionStatus::Unpaid {
            return Err(NotificationFeeError::NotUnpaid);
        }
        let difference = fee.0 - option.notification_fee.0;
        let transfer = option
            .transfers
            .iter_mut()
            .filter(|t| t.organization_fiscal_code == ente || t.organization_fiscal_code.is_empty())
            .min_by_key(|t| t.id_transfer)
            .ok_or(NotificationFeeError::NoOwnTransfer)?;
        let (Some(amount), Some(transfer_amount)) = (
            option.amount.0.checked_add(difference),
            transfer.amount.0.checked_add(difference),
        ) else {
            return Err(NotificationFeeError::OutOfRange);
        };
        transfer.amount = Cents(transfer_amount);
        option.amount = Cents(amount);
        option.notification_fee = fee;
        self.last_updated_date = Some(now);
        Ok(())
    }

    /// The sum of everything the debtor owes through the single solution
    /// (the largest of several alternatives: what is owed if none is paid
    /// early), or through all installments when there is none.
    pub fn total_amount(&self) -> Option<Cents> {
        match self
            .options
            .iter()
            .filter(|o| !o.is_partial_payment)
            .map(|o| o.amount)
            .max()
        {
            Some(single) => Some(single),
            None => Cents::sum(self.options.iter().map(|o| o.amount)),
        }
    }
}

/// Why a notification fee was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotificationFeeError {
    #[error("notificationFee: non può essere negativo")]
    Negative,
    #[error("l'opzione di pagamento non è più da pagare: il costo di notifica non si può cambiare")]
    NotUnpaid,
    #[error(
        "l'opzione di pagamento non ha un versamento all'ente a cui aggiungere il costo di notifica"
    )]
    NoOwnTransfer,
    #[error("notificationFee: importo fuori scala")]
    OutOfRange,
}

impl NotificationFeeError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Negative => "BAD_NOTIFICATION_FEE",
            Self::NotUnpaid => "OPTION_NOT_UNPAID",
            Self::NoOwnTransfer => "NO_OWN_TRANSFER",
            Self::OutOfRange => "BAD_NOTIFICATION_FEE",
        }
    }
}

/// Why a life-cycle action was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("impossibile {action} una posizione in stato {status}")]
    NotAllowed {
        action: &'static str,
        status: PositionStatus,
    },
    #[error("la posizione ha già pagamenti: non può più essere modificata né annullata")]
    AlreadyPaid,
    #[error("la posizione è scaduta")]
    Expired,
    #[error("la posizione è stata annullata")]
    Cancelled,
    #[error("una rata è già stata pagata: la soluzione unica non è più pagabile")]
    InstallmentsStarted,
    #[error("l'opzione di pagamento {iuv} ha la scadenza nel passato")]
    DueDatePassed { iuv: String },
    #[error("opzione di pagamento inesistente")]
    UnknownOption,
    #[error("la data di validità è già passata: aggiornarla prima di pubblicare")]
    ValidityDatePassed,
}

impl TransitionError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotAllowed { .. } => "STATUS_NOT_ALLOWED",
            Self::AlreadyPaid => "ALREADY_PAID",
            Self::Expired => "EXPIRED",
            Self::Cancelled => "CANCELLED",
            Self::InstallmentsStarted => "INSTALLMENTS_STARTED",
            Self::DueDatePassed { .. } => "DUE_DATE_PASSED",
            Self::UnknownOption => "UNKNOWN_OPTION",
            Self::ValidityDatePassed => "VALIDITY_DATE_PASSED",
        }
    }
}

/// GPD's pattern for an iupd, `[\w*\h-]+` matched whole (Java's `\w` is
/// ASCII): letters, digits, `_`, `*`, `-`, spaces and tabs; at most 100 of
/// them. Anything else (a `/`, a `.`, a `?`) could be stored but never read
/// back by its URL.
pub fn is_valid_iupd(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'*' | b'-' | b' ' | b'\t'))
}

impl Debtor {
    /// A debtor known only by fiscal code and name.
    pub fn named(kind: DebtorType, fiscal_code: String, full_name: String) -> Self {
        Debtor {
            kind,
            fiscal_code,
            full_name,
            street_name: None,
            civic_number: None,
            postal_code: None,
            city: None,
            province: None,
            region: None,
            country: None,
            email: None,
            phone: None,
        }
    }

    fn check(&self, c: &mut Checker) {
        let cf = self.fiscal_code.as_str();
        match self.kind {
            DebtorType::F => {
                if cf != ANONYMOUS_DEBTOR
                    && let Err(e) = check_fiscal_code(cf)
                {
                    c.fail(
                        "fiscalCode",
                        codes::BAD_FISCAL_CODE,
                        format!("codice fiscale del debitore non valido ({e})"),
                    );
                }
            }
            DebtorType::G => {
                let ok = if cf.len() == 16 {
                    check_personal_fiscal_code(cf).is_ok()
                } else {
                    check_numeric_fiscal_code(cf).is_ok()
                };
                if !ok {
                    c.fail(
                        "fiscalCode",
                        codes::BAD_VAT_NUMBER,
                        "partita IVA o codice fiscale del debitore non valido",
                    );
                }
            }
        }
        // pagoPA's paGetPayment carries the debtor name as stText70.
        c.text("fullName", &self.full_name, 70);
        let optional = [
            ("streetName", &self.street_name, 70),
            ("civicNumber", &self.civic_number, 16),
            ("postalCode", &self.postal_code, 16),
            ("city", &self.city, 35),
            ("province", &self.province, 35),
            ("region", &self.region, 35),
            ("phone", &self.phone, 20),
        ];
        for (field, value, max) in optional {
            if let Some(v) = value {
                c.max_len(field, v, max);
            }
        }
        if let Some(country) = &self.country
            && !(country.len() == 2 && country.bytes().all(|b| b.is_ascii_uppercase()))
        {
            c.fail(
                "country",
                codes::BAD_FORMAT,
                "nazione: due lettere maiuscole (ISO 3166)",
            );
        }
        if let Some(email) = &self.email
            && !is_plausible_email(email)
        {
            c.fail("email", codes::BAD_FORMAT, "indirizzo e-mail non valido");
        }
    }
}

impl PaymentOption {
    fn check(
        &self,
        c: &mut Checker,
        path: &str,
        rules: &PositionRules<'_>,
        validity: Option<DateTime<Utc>>,
    ) {
        check_amount(c, &format!("{path}.amount"), self.amount);
        c.text(&format!("{path}.description"), &self.description, 140);
        if self.due_date <= rules.now {
            c.fail(
                format!("{path}.dueDate"),
                codes::DATE_IN_PAST,
                "la data di scadenza deve essere futura",
            );
        }
        if let Some(v) = validity
            && self.due_date < v
        {
            c.fail(
                format!("{path}.dueDate"),
                codes::DATE_ORDER,
                "la scadenza precede la data di validità",
            );
        }
        if let Some(r) = self.retention_date
            && r < self.due_date
        {
            c.fail(
                format!("{path}.retentionDate"),
                codes::DATE_ORDER,
                "la data di conservazione precede la scadenza",
            );
        }
        self.check_code(c, path, rules);
        check_metadata(c, &format!("{path}.paymentOptionMetadata"), &self.metadata);
        self.check_transfers(c, path, rules);
    }

    fn check_code(&self, c: &mut Checker, path: &str, rules: &PositionRules<'_>) {
        let field = format!("{path}.iuv");
        match (&self.iuv, &self.notice_number) {
            (None, None) => {}
            (None, Some(_)) => c.fail(
                &field,
                codes::REQUIRED,
                "con il numero avviso serve anche lo IUV",
            ),
            (Some(iuv), nav) => {
                // Legacy notices (aux digit 0, 1, 2) come with their NAV; a bare
                // IUV is a current aux-3 one and must carry a segregation code
                // of this Ente.
                let parsed = match nav {
                    Some(nav) => NoticeNumber::parse(nav.as_str()),
                    None => notice_number_from_iuv(3, None, iuv)
                        .and_then(|n| NoticeNumber::parse(n.as_str())),
                };
                match parsed {
                    Err(e) => c.fail(&field, codes::BAD_IUV, format!("IUV non valido ({e})")),
                    Ok(p) if p.iuv != *iuv => c.fail(
                        &field,
                        codes::BAD_IUV,
                        "lo IUV non corrisponde al numero avviso",
                    ),
                    Ok(p) if p.aux_digit == 3 => {
                        let seg = p.segregation_code.unwrap_or(u8::MAX);
                        if !rules.segregation_codes.contains(&seg) {
                            c.fail(
                                &field,
                                codes::BAD_IUV,
                                format!(
                                    "il codice di segregazione {seg:02} non appartiene a nessuna stazione dell'ente"
                                ),
                            );
                        } else if let Err(e) = check_iuv_for_segregation(iuv, seg) {
                            c.fail(&field, codes::BAD_IUV, format!("IUV non valido ({e})"));
                        }
                    }
                    Ok(_) => {}
                }
            }
        }
    }

    fn check_transfers(&self, c: &mut Checker, path: &str, rules: &PositionRules<'_>) {
        let path = format!("{path}.transfer");
        if self.transfers.is_empty() {
            c.fail(
                &path,
                codes::NO_TRANSFERS,
                "serve almeno un versamento (transfer)",
            );
            return;
        }
        if self.transfers.len() > MAX_TRANSFERS {
            c.fail(
                &path,
                codes::TOO_MANY_TRANSFERS,
                format!(
                    "al massimo {MAX_TRANSFERS} beneficiari per opzione, trovati {}",
                    self.transfers.len()
                ),
            );
        }
        let mut ids = HashSet::new();
        for (j, t) in self.transfers.iter().enumerate() {
            let tp = format!("{path}[{j}]");
            if !(1..=MAX_TRANSFERS as u8).contains(&t.id_transfer) {
                c.fail(
                    format!("{tp}.idTransfer"),
                    codes::OUT_OF_RANGE,
                    "idTransfer va da 1 a 5",
                );
            } else if !ids.insert(t.id_transfer) {
                c.fail(
                    format!("{tp}.idTransfer"),
                    codes::DUPLICATE_TRANSFER_ID,
                    "idTransfer ripetuto",
                );
            }
            t.check(c, &tp, rules);
        }
        // pagoPA: the first transfer is always the Ente that owns the notice.
        if let Some(first) = self.transfers.iter().min_by_key(|t| t.id_transfer)
            && first.organization_fiscal_code != rules.ente_fiscal_code
        {
            c.fail(
                format!("{path}[0].organizationFiscalCode"),
                codes::FIRST_TRANSFER_NOT_OWN,
                "il primo versamento deve essere a favore dell'ente che emette l'avviso",
            );
        }
        match Cents::sum(self.transfers.iter().map(|t| t.amount)) {
            Some(total) if total == self.amount => {}
            total => c.fail(
                &path,
                codes::AMOUNT_MISMATCH,
                format!(
                    "la somma dei versamenti ({}) è diversa dall'importo dell'opzione ({})",
                    total
                        .map(|t| t.to_italian())
                        .unwrap_or_else(|| "fuori scala".into()),
                    self.amount.to_italian()
                ),
            ),
        }
    }
}

/// An amount owed: more than zero, and at most what pagoPA can carry.
fn check_amount(c: &mut Checker, field: &str, amount: Cents) {
    if amount.0 <= 0 {
        c.fail(
            field.to_string(),
            codes::AMOUNT_NOT_POSITIVE,
            "l'importo deve essere maggiore di zero",
        );
    } else if amount.within_limit().is_none() {
        c.fail(
            field.to_string(),
            codes::AMOUNT_OUT_OF_RANGE,
            "importo fuori intervallo (al massimo 999.999.999,99 €)",
        );
    }
}

impl Transfer {
    fn check(&self, c: &mut Checker, tp: &str, rules: &PositionRules<'_>) {
        check_amount(c, &format!("{tp}.amount"), self.amount);
        check_ente_fiscal_code(
            c,
            &format!("{tp}.organizationFiscalCode"),
            &self.organization_fiscal_code,
        );
        if let Some(name) = &self.company_name {
            c.max_len(&format!("{tp}.companyName"), name, 140);
        }
        c.text(
            &format!("{tp}.remittanceInformation"),
            &self.remittance_information,
            140,
        );
        if taxonomy::lookup(&self.category).is_none() {
            c.fail(
                format!("{tp}.category"),
                codes::UNKNOWN_TAXONOMY,
                format!(
                    "codice tassonomia '{}' assente dalla tassonomia pagoPA",
                    self.category
                ),
            );
        }
        match (&self.iban, &self.postal_iban, &self.stamp) {
            (Some(_), _, Some(_)) | (_, Some(_), Some(_)) => c.fail(
                format!("{tp}.stamp"),
                codes::IBAN_AND_STAMP,
                "la marca da bollo esclude l'IBAN",
            ),
            (None, None, None) => c.fail(
                format!("{tp}.iban"),
                codes::NO_IBAN,
                "serve un IBAN, un IBAN postale o una marca da bollo",
            ),
            _ => {}
        }
        if let Some(iban) = &self.iban {
            check_iban_field(c, &format!("{tp}.iban"), iban);
        }
        if let Some(iban) = &self.postal_iban {
            check_postal_iban_field(c, &format!("{tp}.postalIban"), iban);
        }
        check_metadata(c, &format!("{tp}.transferMetadata"), &self.metadata);
        if !self.quotas.is_empty() {
            if self.organization_fiscal_code != rules.ente_fiscal_code {
                c.fail(
                    format!("{tp}.accountingQuotas"),
                    codes::QUOTAS_NOT_OWN,
                    "le quote di accertamento valgono solo per i versamenti all'ente stesso",
                );
            }
            for (k, q) in self.quotas.iter().enumerate() {
                if q.amount.0 <= 0 {
                    c.fail(
                        format!("{tp}.accountingQuotas[{k}].amount"),
                        codes::AMOUNT_NOT_POSITIVE,
                        "l'importo deve essere maggiore di zero",
                    );
                }
            }
            let sum = Cents::sum(self.quotas.iter().map(|q| q.amount));
            if sum != Some(self.amount) {
                c.fail(
                    format!("{tp}.accountingQuotas"),
                    codes::QUOTAS_MISMATCH,
                    format!(
                        "le quote di accertamento sommano a {} ma il versamento è di {}",
                        sum.map(|s| s.to_italian())
                            .unwrap_or_else(|| "fuori scala".into()),
                        self.amount.to_italian()
                    ),
                );
            }
        }
    }
}

fn check_metadata(c: &mut Checker, path: &str, metadata: &[(String, String)]) {
    if metadata.len() > MAX_METADATA {
        c.fail(
            path,
            codes::TOO_MANY_METADATA,
            format!("al massimo {MAX_METADATA} metadati"),
        );
    }
    let mut keys = HashSet::new();
    for (i, (k, v)) in metadata.iter().enumerate() {
        c.text(&format!("{path}[{i}].key"), k, 140);
        c.max_len(&format!("{path}[{i}].value"), v, 140);
        if !keys.insert(k.as_str()) {
            c.fail(
                format!("{path}[{i}].key"),
                codes::DUPLICATE_METADATA_KEY,
                "chiave di metadato ripetuta",
            );
        }
    }
}
