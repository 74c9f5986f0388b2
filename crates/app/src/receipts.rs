//! The receipts of an Ente's notices as GPD's receipts API gives them: a
//! list by IUV within a window of payment dates, and one receipt's XML;
//! and as the back office searches them.
//!
//! Receipts are the Reporting area's: every use case here states it. An
//! operator limited to some offices sees the receipts of those offices'
//! positions only (a receipt of no known position belongs to no office).

use crate::Ctx;
use crate::error::{AppError, At, Kind, Place};
use chrono::{DateTime, Months, Utc};
use incasso_core::access::{Access, Area};
use incasso_store::reporting::{ReceiptDetail, ReceiptQuery, ReceiptRow};
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
    ctx.caller.require(ente, Area::Reporting, Access::Read)?;
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
    ctx.caller.require(ente, Area::Reporting, Access::Read)?;
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

/// The offices the caller is limited to, or `None` when they see every
/// office (an administrator, an accountant, a program's key).
pub(crate) fn office_scope(ctx: &Ctx) -> Option<Vec<String>> {
    match &ctx.caller {
        crate::Caller::Operator(o) => o.rights.office_scope().map(<[String]>::to_vec),
        _ => None,
    }
}

/// A page of the Ente's receipts, searched and sorted as asked, and
/// whether another page follows. `query.limit` is the page's size.
pub async fn search(
    ctx: &Ctx,
    ente: &str,
    mut query: ReceiptQuery,
) -> Result<crate::digitfin::Listed<ReceiptRow>, AppError> {
    ctx.caller.require(ente, Area::Reporting, Access::Read)?;
    let limit = query.limit;
    if !(1..=crate::sheet::MAX_EXPORT_ROWS).contains(&limit) {
        return Err(AppError::invalid(
            "BAD_LIMIT",
            format!("limit: da 1 a {}", crate::sheet::MAX_EXPORT_ROWS),
        ));
    }
    if let (Some(from), Some(before)) = (query.paid_from, query.paid_before)
        && from >= before
    {
        return Err(AppError::invalid(
            "BAD_DATE_RANGE",
            "pagata dal / al: la prima data deve precedere la seconda",
        ));
    }
    query.offices = office_scope(ctx);
    query.limit = limit + 1;
    let mut items = ctx
        .store()
        .search_receipts(ente, &query)
        .await
        .at(Place::new("receipts.search", ente, ""))?;
    let has_next = items.len() > limit as usize;
    items.truncate(limit as usize);
    Ok(crate::digitfin::Listed { items, has_next })
}

/// One of the Ente's receipts, whole. Outside the caller's offices it is
/// not found, as if it did not exist.
pub async fn detail(ctx: &Ctx, ente: &str, receipt_id: &str) -> Result<ReceiptDetail, AppError> {
    ctx.caller.require(ente, Area::Reporting, Access::Read)?;
    let found = ctx
        .store()
        .receipt_detail(ente, receipt_id)
        .await
        .at(Place::new("receipts.detail", ente, receipt_id))?;
    if let Some(offices) = office_scope(ctx)
        && !found
            .row
            .office
            .as_ref()
            .is_some_and(|o| offices.contains(o))
    {
        return Err(AppError::new(
            Kind::NotFound,
            "NOT_FOUND",
            "ricevuta non trovata",
        ));
    }
    Ok(found)
}
