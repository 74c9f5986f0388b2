//! A notice looked up by its number on the portal: what is owed, to whom,
//! by when, and whether it can be paid; never who owes it. Anyone who holds
//! a notice number may see this much, as at a PSP's counter or on pagoPA's
//! own Checkout.

use crate::Ctx;
use crate::error::{AppError, Kind, Place};
use chrono::NaiveDate;
use incasso_core::Cents;
use incasso_core::codes::{CodeError, NoticeNumber};
use incasso_core::position::{OptionStatus, PositionStatus};
use incasso_notice::Language;
use incasso_pagopa::fault::FaultCode;
use incasso_store::{StoreError, StoredPosition};

/// Whether a notice can be paid now, and if not why, as the citizen is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeStatus {
    Payable,
    Paid,
    Expired,
    Cancelled,
    /// A single solution whose position already has an installment paid:
    /// the remaining installments are to be paid instead.
    InstallmentsStarted,
}

impl NoticeStatus {
    /// Stable, for pages and tests (`data-status`).
    pub fn code(self) -> &'static str {
        match self {
            NoticeStatus::Payable => "PAYABLE",
            NoticeStatus::Paid => "PAID",
            NoticeStatus::Expired => "EXPIRED",
            NoticeStatus::Cancelled => "CANCELLED",
            NoticeStatus::InstallmentsStarted => "INSTALLMENTS_STARTED",
        }
    }

    /// Why it cannot be paid, in plain Italian (`None` if it can).
    pub fn refusal(self) -> Option<(&'static str, &'static str)> {
        match self {
            NoticeStatus::Payable => None,
            NoticeStatus::Paid => Some(("NOTICE_PAID", "Questo avviso risulta già pagato.")),
            NoticeStatus::Expired => Some((
                "NOTICE_EXPIRED",
                "Questo avviso è scaduto e non si può più pagare: rivolgersi all'ente.",
            )),
            NoticeStatus::Cancelled => Some((
                "NOTICE_CANCELLED",
                "Questo avviso è stato annullato dall'ente e non va pagato.",
            )),
            NoticeStatus::InstallmentsStarted => Some((
                "NOTICE_INSTALLMENTS_STARTED",
                "Una rata di questo debito è già stata pagata: pagare le rate rimanenti, \
                 non la soluzione unica.",
            )),
        }
    }
}

/// What an anonymous visitor may see of a notice: never the debtor's name
/// or fiscal code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicNotice {
    /// The creditor Ente's fiscal code.
    pub ente: String,
    /// The creditor's name, as on the notice.
    pub company_name: String,
    pub office_name: Option<String>,
    pub notice_number: String,
    pub iuv: String,
    /// The causale.
    pub description: String,
    pub amount: Cents,
    /// In Rome.
    pub due_date: NaiveDate,
    /// An installment of a plan (a single solution otherwise).
    pub installment: bool,
    pub status: NoticeStatus,
}

/// What the person typed, without the spaces and dashes of the printed
/// notice's groups of digits.
pub fn normalize(input: &str) -> String {
    input
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-' && *c != '.')
        .collect()
}

/// A typed notice number checked: 18 digits and their check digits.
pub fn parse_notice_number(input: &str) -> Result<NoticeNumber, AppError> {
    let nav = normalize(input);
    NoticeNumber::parse(&nav)
        .map(|p| p.notice_number)
        .map_err(|e| {
            let detail = match e {
                CodeError::Length { found: 0, .. } => "Inserire il codice avviso.".to_string(),
                CodeError::Length { found, .. } => {
                    format!("Il codice avviso ha 18 cifre: ne sono state inserite {found}.")
                }
                CodeError::Charset => "Il codice avviso è fatto solo di cifre.".to_string(),
                _ => {
                    "Il codice avviso non è corretto: controllare le cifre sull'avviso.".to_string()
                }
            };
            AppError::invalid("BAD_NOTICE_NUMBER", detail)
        })
}

/// The one answer for a notice this portal does not know, whether it does
/// not exist, is another Ente's or is not yet published: nothing can be
/// learnt by trying numbers.
pub fn unknown_notice() -> AppError {
    AppError::new(
        Kind::NotFound,
        "NOTICE_NOT_FOUND",
        "Non risulta nessun avviso con questo codice presso l'ente scelto: \
         controllare il codice avviso e l'ente creditore.",
    )
}

/// The stored notice `nav` of Ente `ente` and its index, with its status;
/// what is not there (or not yet published) is [`unknown_notice`].
pub(crate) async fn find(
    ctx: &Ctx,
    ente: &str,
    nav: &str,
) -> Result<(StoredPosition, usize, NoticeStatus), AppError> {
    let at = Place::new("portal.notice", ente, nav);
    let (stored, index) = match ctx.store().find_by_notice_number(ente, nav).await {
        Ok(found) => found,
        Err(StoreError::NotFound(_)) => return Err(unknown_notice()),
        Err(e) => return Err(crate::error::from_store(e, &at)),
    };
    let status = status_of(&stored, index, ctx)?;
    Ok((stored, index, status))
}

fn status_of(stored: &StoredPosition, index: usize, ctx: &Ctx) -> Result<NoticeStatus, AppError> {
    let p = &stored.position;
    let o = &p.options[index];
    let nav = o.notice_number.as_ref().map(|n| n.as_str()).unwrap_or("");
    Ok(
        match crate::node::payable_fault(p, index, ctx.now(), "", nav) {
            Ok(()) => NoticeStatus::Payable,
            Err(f) => match f.code {
                FaultCode::PaymentDuplicate
                    if o.status == OptionStatus::Unpaid
                        && p.effective_status(ctx.now()) == PositionStatus::PartiallyPaid =>
                {
                    NoticeStatus::InstallmentsStarted
                }
                FaultCode::PaymentDuplicate => NoticeStatus::Paid,
                FaultCode::PaymentExpired => NoticeStatus::Expired,
                FaultCode::PaymentCancelled => NoticeStatus::Cancelled,
                // Drafts and positions not yet valid are nobody's business.
                _ => return Err(unknown_notice()),
            },
        },
    )
}

/// Looks notice `nav` up at Ente `ente`, for whoever holds its number.
pub async fn lookup(ctx: &Ctx, ente: &str, nav: &str) -> Result<PublicNotice, AppError> {
    let nav = parse_notice_number(nav)?;
    let (stored, index, status) = find(ctx, ente, nav.as_str()).await?;
    let p = &stored.position;
    let o = &p.options[index];
    Ok(PublicNotice {
        ente: ente.to_string(),
        company_name: p.company_name.clone(),
        office_name: p.office_name.clone(),
        notice_number: nav.as_str().to_string(),
        iuv: nav.iuv().to_string(),
        description: o.description.clone(),
        amount: o.amount,
        due_date: incasso_core::time::to_rome(o.due_date).date(),
        installment: o.is_partial_payment,
        status,
    })
}

/// The notice's PDF for whoever holds its number, only while it can be
/// paid. It names the debtor, as the printed notice does: the door serves
/// it only to a POST that carries the number (never in a URL) and under
/// the lookup rate limit, so it cannot be harvested by trying numbers.
pub async fn notice_pdf(
    ctx: &Ctx,
    ente: &str,
    nav: &str,
    lang: Language,
) -> Result<Vec<u8>, AppError> {
    let nav = parse_notice_number(nav)?;
    let (stored, _, status) = find(ctx, ente, nav.as_str()).await?;
    if let Some((code, text)) = status.refusal() {
        return Err(AppError::conflict(code, text));
    }
    crate::notices::render(ctx, ente, &stored, Some(nav.as_str()), lang).await
}

/// The Enti whose notices any portal of this installation takes (all of
/// them are the intermediary's), as (fiscal code, name), by name: the
/// citizen picks the creditor written on the notice.
pub async fn enti(ctx: &Ctx) -> Result<Vec<(String, String)>, AppError> {
    let mut enti: Vec<(String, String)> = ctx
        .store()
        .list_enti()
        .await
        .map_err(|e| crate::error::from_store(e, &Place::new("portal.enti", "", "")))?
        .into_iter()
        .map(|e| (e.fiscal_code, e.name))
        .collect();
    enti.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
    Ok(enti)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_numbers_are_read_as_printed() {
        let nav = NoticeNumber::generate(1, 42).unwrap();
        let spaced: String = nav
            .as_str()
            .chars()
            .enumerate()
            .flat_map(|(i, c)| (i > 0 && i % 4 == 0).then_some(' ').into_iter().chain([c]))
            .collect();
        assert_eq!(parse_notice_number(&spaced).unwrap(), nav);
        let e = parse_notice_number("12345").unwrap_err();
        assert_eq!(e.code, "BAD_NOTICE_NUMBER");
        assert!(
            e.detail.contains("ne sono state inserite 5"),
            "{}",
            e.detail
        );
        let mut wrong = nav.as_str().to_string();
        wrong.replace_range(17..18, if wrong.ends_with('0') { "1" } else { "0" });
        let e = parse_notice_number(&wrong).unwrap_err();
        assert!(e.detail.contains("non è corretto"), "{}", e.detail);
        assert_eq!(
            parse_notice_number("").unwrap_err().detail,
            "Inserire il codice avviso."
        );
    }
}
