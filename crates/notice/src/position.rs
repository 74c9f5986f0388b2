//! From a stored debt position to its notice: which options are printed,
//! in which variant, and when a notice must not be printed at all.

use crate::{Creditor, Language, Notice, Payments, Recipient, Slip};
use chrono::{DateTime, Utc};
use incasso_core::ente::Ente;
use incasso_core::position::{DebtPosition, OptionStatus, PaymentOption, PositionStatus};

/// Why a notice is not printed. Each has a stable code and an Italian
/// message for whoever asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("la posizione è annullata: il suo avviso non è più pagabile")]
    Cancelled,
    #[error("la posizione è già pagata")]
    Paid,
    #[error("la posizione non è ancora pubblicata")]
    NotPublished,
    #[error("la posizione è scaduta")]
    Expired,
    #[error("avviso sconosciuto per questa posizione")]
    UnknownNotice,
}

impl Refusal {
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Cancelled => "NOTICE_CANCELLED",
            Refusal::Paid => "NOTICE_PAID",
            Refusal::NotPublished => "NOTICE_NOT_PUBLISHED",
            Refusal::Expired => "NOTICE_EXPIRED",
            Refusal::UnknownNotice => "NOTICE_UNKNOWN",
        }
    }
}

fn slip(o: &PaymentOption) -> Option<Slip> {
    Some(Slip {
        notice_number: o.notice_number.as_ref()?.as_str().to_string(),
        amount: o.amount,
        due_date: incasso_core::time::to_rome(o.due_date).date(),
    })
}

fn unpaid(o: &PaymentOption) -> bool {
    o.status == OptionStatus::Unpaid
}

/// The notice of `p` (of its option `only`, when given) for `ente`.
pub fn from_position(
    ente: &Ente,
    logo: Option<Vec<u8>>,
    p: &DebtPosition,
    only: Option<&str>,
    language: Language,
    now: DateTime<Utc>,
) -> Result<Notice, Refusal> {
    match p.effective_status(now) {
        PositionStatus::Invalid => return Err(Refusal::Cancelled),
        PositionStatus::Paid | PositionStatus::Reported => return Err(Refusal::Paid),
        PositionStatus::Draft => return Err(Refusal::NotPublished),
        PositionStatus::Expired => return Err(Refusal::Expired),
        PositionStatus::Published | PositionStatus::Valid | PositionStatus::PartiallyPaid => {}
    }
    let payments = match only {
        Some(nav) => {
            let o = p
                .options
                .iter()
                .find(|o| o.notice_number.as_ref().is_some_and(|n| n.as_str() == nav))
                .ok_or(Refusal::UnknownNotice)?;
            if !unpaid(o) {
                return Err(Refusal::Paid);
            }
            // Once an installment is paid, the single solution is no longer
            // payable (the Node refuses it): its notice is not printed.
            let started = p.options.iter().any(|o| o.is_partial_payment && !unpaid(o));
            if started && !o.is_partial_payment {
                return Err(Refusal::Paid);
            }
            Payments::Single(slip(o).ok_or(Refusal::UnknownNotice)?)
        }
        None => {
            let mut singles: Vec<Slip> = p
                .options
                .iter()
                .filter(|o| !o.is_partial_payment && unpaid(o))
                .filter_map(slip)
                .collect();
            let mut installments: Vec<Slip> = p
                .options
                .iter()
                .filter(|o| o.is_partial_payment && unpaid(o))
                .filter_map(slip)
                .collect();
            singles.sort_by_key(|s| s.due_date);
            installments.sort_by_key(|s| s.due_date);
            // Once an installment is paid, the single solution is gone.
            let started = p.options.iter().any(|o| o.is_partial_payment && !unpaid(o));
            match (singles.len(), installments.is_empty()) {
                (_, false) => Payments::Installments {
                    single: if started {
                        None
                    } else {
                        singles.into_iter().next()
                    },
                    installments,
                },
                (0, true) => return Err(Refusal::Paid),
                (1, true) => Payments::Single(singles.remove(0)),
                (_, true) => Payments::Alternatives(singles),
            }
        }
    };
    let first = p.options.iter().find(|o| unpaid(o)).or(p.options.first());
    let d = &p.debtor;
    let town = [d.postal_code.as_deref(), d.city.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    let town = match &d.province {
        Some(pr) if !town.is_empty() => format!("{town} ({pr})"),
        _ => town,
    };
    let street = [d.street_name.as_deref(), d.civic_number.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    let address = [street, town]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(", ");
    Ok(Notice {
        language,
        creditor: Creditor {
            name: ente.name.clone(),
            fiscal_code: ente.fiscal_code.clone(),
            cbill_code: ente.cbill_code.clone(),
            postal_account: ente.postal_iban.as_deref().and_then(crate::postal_account),
            logo,
        },
        recipient: Recipient {
            name: d.full_name.clone(),
            fiscal_code: d.fiscal_code.clone(),
            address: (!address.is_empty()).then_some(address),
        },
        subject: first.map(|o| o.description.clone()).unwrap_or_default(),
        payments,
    })
}
