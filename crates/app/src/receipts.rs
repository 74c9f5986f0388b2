//! The receipts of an Ente's notices as GPD's receipts API gives them: a
//! list by IUV within a window of payment dates, and one receipt's XML.

use crate::Ctx;
use crate::error::{AppError, At, Kind, Place};
use chrono::{DateTime, Months, Utc};
use incasso_store::{ReceiptFilter, ReceiptSummary};

/// GPD's window: with no dates, the last three months; with one end, three
/// months from it; never more than three months.
pub const WINDOW_MONTHS: u32 = 3;

/// A page of the list and how many pages there are.
#[derive(Debug, Clone)]
pub struct ReceiptsPage {
    pub items: Vec<ReceiptSummary>,
    pub page: u32,
    pub total_pages: u32,
}

/// The receipts of the Ente's own notices paid between `from` and `to`
/// (completed as [`WINDOW_MONTHS`] says), filtered, by IUV. No receipt at
/// all is 404 and a page past the last is 400, as GPD answers.
pub async fn list(
    ctx: &Ctx,
    ente: &str,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    mut filter: ReceiptFilter,
) -> Result<ReceiptsPage, AppError> {
    ctx.caller.require_ente(ente)?;
    let now = ctx.now();
    let window = Months::new(WINDOW_MONTHS);
    let shift = |t: DateTime<Utc>, forward: bool| {
        if forward {
            t.checked_add_months(window)
        } else {
            t.checked_sub_months(window)
        }
        .ok_or_else(|| AppError::invalid("BAD_DATE_RANGE", "from/to: data fuori scala"))
    };
    let (from, to) = match (from, to) {
        (None, None) => (shift(now, false)?, now),
        (Some(f), None) => (f, shift(f, true)?.min(now)),
        (None, Some(t)) => (shift(t, false)?, t),
        (Some(f), Some(t)) => (f, t),
    };
    if from > to {
        return Err(AppError::invalid(
            "BAD_DATE_RANGE",
            "intervallo di date non valido: from deve precedere to",
        ));
    }
    if shift(from, true)? < to {
        return Err(AppError::invalid(
            "BAD_DATE_RANGE",
            format!("intervallo di date non valido: al più {WINDOW_MONTHS} mesi tra from e to"),
        ));
    }
    filter.from = Some(from);
    filter.to = Some(to);
    let (items, total) = ctx
        .store()
        .receipts_page(ente, &filter)
        .await
        .at(Place::new("receipts.list", ente, ""))?;
    if total == 0 {
        return Err(AppError::new(
            Kind::NotFound,
            "NOT_FOUND",
            "nessuna ricevuta trovata con questi filtri",
        ));
    }
    let size = u64::from(filter.page_size.max(1));
    let total_pages = total.div_ceil(size);
    if u64::from(filter.page) >= total_pages {
        return Err(AppError::invalid(
            "BAD_PAGE",
            format!("pageNum: le pagine vanno da 0 a {}", total_pages - 1),
        ));
    }
    Ok(ReceiptsPage {
        items,
        page: filter.page,
        total_pages: u32::try_from(total_pages).unwrap_or(u32::MAX),
    })
}

/// The receipt of the notice with `iuv`, as a document valid against
/// pagoPA's `paForNode.xsd`. A receipt that paid nothing (outcome KO) is
/// unprocessable, as GPD answers.
pub async fn document(ctx: &Ctx, ente: &str, iuv: &str) -> Result<String, AppError> {
    ctx.caller.require_ente(ente)?;
    let place = Place::new("receipts.document", ente, iuv);
    let (outcome, raw) = ctx.store().receipt_of_iuv(ente, iuv).await.at(place)?;
    if outcome != "OK" {
        return Err(AppError::new(
            Kind::Unprocessable,
            "RECEIPT_NOT_PAID",
            format!("la ricevuta dello IUV {iuv} non attesta un pagamento (esito {outcome})"),
        ));
    }
    incasso_pagopa::wire::receipt_document(&raw).map_err(|e| {
        AppError::internal(
            &place,
            &std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        )
    })
}
