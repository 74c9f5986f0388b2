//! Receipts on the citizen portal: the *quietanza* (a PDF made from the RT)
//! and finding a receipt by IUV with the debtor's or payer's fiscal code.
//!
//! Every receipt stored from `paSendRT` counts, whatever the channel that
//! took the money (Checkout, a PSP's desk, App IO, a POS): the RT is the
//! same document. An anonymous visitor who names a receipt that does not
//! exist and one who names somebody else's get the same answer, word for
//! word, so nothing can be learnt by trying.

use crate::error::{AppError, At, Kind, Place};
use crate::{Caller, Ctx};
use chrono::{DateTime, Utc};
use incasso_core::Cents;
use incasso_core::access::{Access, Area};
use incasso_notice::receipt::{Beneficiary, Party, Quietanza, render_receipt};
use incasso_notice::{Creditor, Language};
use incasso_pagopa::wire::{self, Receipt, Request};
use incasso_store::mail::ReceiptCopy;

/// What the portal shows of a receipt found by IUV and fiscal code: what
/// was paid, to whom, when and through whom; never who paid or owed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptSummary {
    pub ente: String,
    pub ente_name: String,
    pub iuv: String,
    pub notice_number: String,
    pub description: String,
    pub amount: Cents,
    pub paid_at: Option<DateTime<Utc>>,
    pub psp_name: String,
    pub receipt_id: String,
}

/// The one answer to a receipt that cannot be shown to this visitor.
pub fn not_found() -> AppError {
    AppError::new(
        Kind::NotFound,
        "RECEIPT_NOT_FOUND",
        "Nessuna ricevuta corrisponde a questo codice IUV e codice fiscale: controlla i dati e riprova.",
    )
}

/// An IUV as the portal accepts it: 15 (aux digit 0), 17 (aux digit 3)
/// or 25 characters (an RF creditor reference), letters and digits.
pub fn check_iuv(iuv: &str) -> Result<String, AppError> {
    let iuv = iuv.trim().to_ascii_uppercase();
    if !matches!(iuv.len(), 15 | 17 | 25) || !iuv.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(AppError::invalid(
            "BAD_IUV",
            "Il codice IUV ha 15, 17 o 25 caratteri, solo lettere e cifre: lo trovi sull'avviso o sulla ricevuta.",
        ));
    }
    Ok(iuv)
}

/// A fiscal code, personal (16 characters) or numeric (11 digits).
pub fn check_fiscal_code(fc: &str) -> Result<String, AppError> {
    let fc: String = fc
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    incasso_core::codes::check_fiscal_code(&fc).map_err(|_| {
        AppError::invalid(
            "BAD_FISCAL_CODE",
            "Il codice fiscale non è valido: 16 caratteri per una persona, 11 cifre per un'impresa o un ente.",
        )
    })?;
    Ok(fc)
}

/// The receipt of the Ente's notice with `iuv`, if the visitor who gave
/// `fiscal_code` is its debtor or its payer; else [`not_found`].
pub async fn find(
    ctx: &Ctx,
    ente: &str,
    iuv: &str,
    fiscal_code: &str,
) -> Result<ReceiptSummary, AppError> {
    let (copy, receipt) = owned_receipt(ctx, ente, iuv, fiscal_code).await?;
    let ente_name = ente_name(ctx, ente, receipt.as_ref()).await?;
    Ok(ReceiptSummary {
        ente: ente.to_string(),
        ente_name,
        iuv: copy.iuv.clone(),
        notice_number: copy.notice_number.clone(),
        description: receipt
            .as_ref()
            .map(|r| r.description.clone())
            .unwrap_or_default(),
        amount: Cents(copy.amount),
        paid_at: copy.payment_date_time,
        psp_name: copy.psp_name.clone(),
        receipt_id: copy.receipt_id.clone(),
    })
}

/// The receipt PDF for an anonymous visitor who gave the IUV and the
/// debtor's or payer's fiscal code (the same check as [`find`]).
pub async fn find_pdf(
    ctx: &Ctx,
    ente: &str,
    iuv: &str,
    fiscal_code: &str,
) -> Result<Vec<u8>, AppError> {
    let (copy, receipt) = owned_receipt(ctx, ente, iuv, fiscal_code).await?;
    render(ctx, ente, &copy, receipt.as_ref()).await
}

/// The receipt PDF of the Ente's notice with `iuv`, for whoever may see it:
/// incasso itself and the intermediary, the Ente's keys and operators who
/// read its receipts or positions, and the citizen whose fiscal code is
/// the debtor's or the payer's. Anybody else, and a receipt that does not
/// exist, is [`not_found`] to a citizen or visitor and forbidden to an
/// operator of another Ente.
pub async fn quietanza_pdf(ctx: &Ctx, ente: &str, iuv: &str) -> Result<Vec<u8>, AppError> {
    let staff = ctx
        .caller
        .require(ente, Area::Reporting, Access::Read)
        .or_else(|_| ctx.caller.require(ente, Area::Positions, Access::Read));
    match (&ctx.caller, staff) {
        (_, Ok(())) => {
            let iuv = check_iuv(iuv)?;
            let place = Place::new("portal.receipts.pdf", ente, &iuv);
            let copy = ctx
                .store()
                .paid_receipt_of_iuv(ente, &iuv)
                .await
                .at(place)?
                .ok_or_else(not_found)?;
            let receipt = parse_rt(&copy);
            render(ctx, ente, &copy, receipt.as_ref()).await
        }
        (Caller::Public, Err(_)) => Err(not_found()),
        (caller, Err(e)) => match citizen_fiscal_code(caller) {
            Some(fc) => find_pdf(ctx, ente, iuv, &fc).await,
            None => Err(e),
        },
    }
}

/// The fiscal code of a citizen signed in to the portal.
fn citizen_fiscal_code(caller: &Caller) -> Option<String> {
    match caller {
        Caller::Citizen(c) => Some(c.fiscal_code.clone()),
        _ => None,
    }
}

/// The paid receipt of `iuv` with its RT, when `fiscal_code` is its
/// debtor's or payer's; else [`not_found`], whatever the reason.
async fn owned_receipt(
    ctx: &Ctx,
    ente: &str,
    iuv: &str,
    fiscal_code: &str,
) -> Result<(ReceiptCopy, Option<Receipt>), AppError> {
    let iuv = check_iuv(iuv)?;
    let fiscal_code = check_fiscal_code(fiscal_code)?;
    let place = Place::new("portal.receipts.find", ente, &iuv);
    let Some(copy) = ctx
        .store()
        .paid_receipt_of_iuv(ente, &iuv)
        .await
        .at(place)?
    else {
        return Err(not_found());
    };
    let receipt = parse_rt(&copy);
    let same = |other: &str| other.trim().eq_ignore_ascii_case(&fiscal_code);
    let debtor = copy.debtor.as_deref().is_some_and(same)
        || receipt.as_ref().is_some_and(|r| same(&r.debtor.id));
    let payer = receipt
        .as_ref()
        .and_then(|r| r.payer.as_ref())
        .is_some_and(|p| same(&p.id));
    if debtor || payer {
        Ok((copy, receipt))
    } else {
        Err(not_found())
    }
}

/// The RT as the Node sent it. A stored receipt always parses (it was
/// parsed to be stored); if one did not, the PDF is made from the columns.
pub(crate) fn parse_rt(copy: &ReceiptCopy) -> Option<Receipt> {
    match wire::parse_request(copy.raw_xml.as_bytes(), Default::default()) {
        Ok(Request::SendRt { receipt, .. }) => Some(*receipt),
        _ => {
            tracing::warn!(
                ente = %copy.ente, receipt = %copy.receipt_id,
                "stored receipt not readable as paSendRT: receipt PDF made from its columns"
            );
            None
        }
    }
}

async fn ente_name(ctx: &Ctx, ente: &str, receipt: Option<&Receipt>) -> Result<String, AppError> {
    match ctx.store().get_ente(ente).await {
        Ok(e) => Ok(e.name),
        Err(incasso_store::StoreError::NotFound(_)) => Ok(receipt
            .map(|r| r.company_name.clone())
            .unwrap_or_else(|| ente.to_string())),
        Err(e) => Err(AppError::internal(
            &Place::new("portal.receipts.ente", ente, ""),
            &e,
        )),
    }
}

/// Renders the quietanza of a stored receipt.
pub(crate) async fn render(
    ctx: &Ctx,
    ente: &str,
    copy: &ReceiptCopy,
    receipt: Option<&Receipt>,
) -> Result<Vec<u8>, AppError> {
    let place = Place::new("portal.receipts.render", ente, &copy.receipt_id);
    let name = ente_name(ctx, ente, receipt).await?;
    let logo = ctx.store().logo(ente).await.at(place)?.map(|(_, b)| b);
    let q = quietanza(ente, &name, logo, copy, receipt);
    // Rendering takes a few milliseconds of CPU: off the async workers.
    tokio::task::spawn_blocking(move || render_receipt(&q))
        .await
        .map_err(|e| AppError::internal(&place, &e))?
        .map_err(|e| AppError::internal(&place, &e))
}

/// What the PDF prints, from the RT (or, failing that, the columns).
pub(crate) fn quietanza(
    ente: &str,
    ente_name: &str,
    logo: Option<Vec<u8>>,
    copy: &ReceiptCopy,
    receipt: Option<&Receipt>,
) -> Quietanza {
    let creditor = Creditor {
        name: ente_name.to_string(),
        fiscal_code: ente.to_string(),
        logo,
        ..Creditor::default()
    };
    let paid_at = receipt
        .and_then(|r| r.payment_date_time)
        .or_else(|| copy.payment_date_time.map(incasso_core::time::to_rome));
    let Some(r) = receipt else {
        return Quietanza {
            language: Language::Italian,
            creditor,
            debtor: Party {
                name: String::new(),
                fiscal_code: copy.debtor.clone().unwrap_or_default(),
            },
            notice_number: copy.notice_number.clone(),
            iuv: copy.iuv.clone(),
            amount: Cents(copy.amount),
            psp_name: copy.psp_name.clone(),
            paid_at,
            receipt_id: copy.receipt_id.clone(),
            ..Quietanza::default()
        };
    };
    let party = |s: &wire::Subject| Party {
        name: s.full_name.clone(),
        fiscal_code: s.id.clone(),
    };
    Quietanza {
        language: Language::Italian,
        creditor,
        debtor: party(&r.debtor),
        // The payer is printed only when it is somebody else.
        payer: r
            .payer
            .as_ref()
            .filter(|p| !p.id.eq_ignore_ascii_case(&r.debtor.id))
            .map(party),
        notice_number: r.notice_number.clone(),
        iuv: copy.iuv.clone(),
        description: r.description.clone(),
        amount: r.payment_amount,
        fee: r.fee.filter(|f| f.0 > 0),
        psp_name: r.psp_company_name.clone(),
        psp_id: r.id_psp.clone(),
        paid_at,
        receipt_id: r.receipt_id.clone(),
        payment_method: r.payment_method.clone(),
        channel: Some(r.channel_description.clone()).filter(|c| !c.is_empty()),
        transfers: r
            .transfers
            .iter()
            .map(|t| Beneficiary {
                name: t
                    .company_name
                    .clone()
                    .or_else(|| (t.fiscal_code_pa == ente).then(|| ente_name.to_string())),
                fiscal_code: t.fiscal_code_pa.clone(),
                iban: t.iban.clone(),
                amount: t.amount,
                remittance: t.remittance_information.clone(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iuv_and_fiscal_code_are_checked_before_any_lookup() {
        assert_eq!(
            check_iuv(" 01000000000012345 ").unwrap(),
            "01000000000012345"
        );
        assert!(check_iuv("010000000000123").is_ok());
        assert!(check_iuv("RF18ABCDEFGHIJKLMNOPQRSTU").is_ok());
        for bad in ["", "123", "0100000000001234", "01000000000012345'--"] {
            assert_eq!(check_iuv(bad).unwrap_err().code, "BAD_IUV", "{bad}");
        }
        assert_eq!(
            check_fiscal_code("rssmra80a01h501u").unwrap(),
            "RSSMRA80A01H501U"
        );
        assert!(check_fiscal_code("80000130585").is_ok());
        assert_eq!(
            check_fiscal_code("RSSMRA80A01H501X").unwrap_err().code,
            "BAD_FISCAL_CODE"
        );
    }
}
